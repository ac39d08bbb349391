"""Configuration: TOML fragments layered into typed sections.

Sources, lowest first:

1. the defaults each section declares (a dataclass returned by a plugin's
   ``gateway_config_schema`` hook);
2. the repository's ``conf.d/`` (one fragment per plugin, the same defaults
   written out for administrators to read), when the gateway runs from a
   source tree;
3. every ``--config-dir`` (or ``GATEWAY_CONFIG_DIR``) in the order given, the
   ``*.toml`` files of each in lexical order;
4. environment variables ``GATEWAY__SECTION__KEY`` whose value is a TOML value
   (``GATEWAY__HTTP__LISTEN='["0.0.0.0:80"]'``) or, failing that, a string.

Later keys win. A key nobody declared, or a value of the wrong type, stops
start-up with an error naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "GATEWAY__"
SOURCE_CONF_D = Path(__file__).resolve().parent.parent / "conf.d"
MASK = "********"


class ConfigError(Exception):
    """A configuration file or value that cannot be used; the message names where."""


def option(
    default: Any, help: str = "", *, secret: bool = False,
    check: Callable[[Any], object] | None = None,
) -> Any:
    """Declare one key of a config section dataclass.

    ``secret=True`` masks the value in ``gateway config show``. ``check`` is
    called with a configured value and raises ``ValueError`` to refuse it.
    """
    meta = {"help": help, "secret": secret, "check": check}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RawConfig:
    """Merged values before validation, with the origin of every key."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)

    def set(self, section: str, key: str, value: Any, origin: str) -> None:
        self.values.setdefault(section, {})[key] = value
        self.origins[(section, key)] = origin

    def origin(self, section: str, key: str | None = None) -> str:
        if key is not None and (section, key) in self.origins:
            return self.origins[(section, key)]
        for (sec, _), where in self.origins.items():
            if sec == section:
                return where
        return "defaults"


def fragment_files(directory: Path) -> list[Path]:
    """The ``*.toml`` files of one config directory, in lexical order."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: not a directory")
    return sorted(p for p in directory.iterdir() if p.suffix == ".toml" and p.is_file())


def read_layers(
    directories: Sequence[Path], environ: Mapping[str, str] | None = None
) -> RawConfig:
    """Read and merge every fragment of ``directories``, then the environment."""
    raw = RawConfig()
    for directory in directories:
        for path in fragment_files(directory):
            try:
                with path.open("rb") as fh:
                    document = tomllib.load(fh)
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: not valid TOML: {exc}") from None
            for section, table in document.items():
                if not isinstance(table, dict):
                    raise ConfigError(
                        f"{path}: key '{section}' outside a [section]; "
                        "every key belongs to a section such as [gateway]"
                    )
                for key, value in table.items():
                    raw.set(section, key, value, str(path))
    for name, text in (os.environ if environ is None else environ).items():
        if not name.startswith(ENV_PREFIX) or name.count("__") != 2:
            continue
        section, key = name[len(ENV_PREFIX) :].lower().split("__")
        raw.set(section, key, parse_env_value(text), f"environment {name}")
    return raw


def parse_env_value(text: str) -> Any:
    """A TOML value when the text is one (numbers, booleans, lists), else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def default_directories(config_dirs: Iterable[str | Path]) -> list[Path]:
    """The source tree's ``conf.d`` (when present) followed by the given directories."""
    dirs = [SOURCE_CONF_D] if SOURCE_CONF_D.is_dir() else []
    return dirs + [Path(d) for d in config_dirs]


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widen to float).

    Raises ``TypeError`` with a readable expectation on mismatch.
    """
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option_type in typing.get_args(tp):
            if option_type is type(None) and value is None:
                return None
            try:
                return coerce(value, option_type)
            except TypeError:
                continue
        raise TypeError(" or ".join(_type_name(t) for t in typing.get_args(tp)))
    if origin is list:
        (item_type,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise TypeError(f"a list of {_type_name(item_type)}")
        try:
            return [coerce(item, item_type) for item in value]
        except TypeError:
            raise TypeError(f"a list of {_type_name(item_type)}") from None
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError("a table")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError("true or false")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("a number")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("an integer")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise TypeError("a string")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise TypeError(_type_name(tp))
    return value


def build_section(name: str, schema: type, values: Mapping[str, Any], raw: RawConfig) -> Any:
    """Validate ``values`` against the dataclass ``schema``; return an instance."""
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise ConfigError(
                f"{raw.origin(name, key)}: [{name}] unknown key '{key}' (known keys: {known})"
            )
        try:
            kwargs[key] = coerce(value, hints[key])
        except TypeError as exc:
            raise ConfigError(
                f"{raw.origin(name, key)}: [{name}] {key} must be {exc}, got {value!r}"
            ) from None
        check = fields[key].metadata.get("check")
        if check is not None:
            try:
                check(kwargs[key])
            except ValueError as exc:
                raise ConfigError(f"{raw.origin(name, key)}: [{name}] {key}: {exc}") from None
    return schema(**kwargs)


class Config:
    """The validated configuration: one dataclass instance per section.

    ``config.http.listen`` or ``config["http"].listen``.
    """

    def __init__(self, sections: dict[str, Any], directories: Sequence[Path]):
        self._sections = sections
        self.directories = list(directories)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_sections"][name]
        except KeyError:
            raise AttributeError(f"no config section [{name}]") from None

    def __getitem__(self, name: str) -> Any:
        return self._sections[name]

    def __contains__(self, name: object) -> bool:
        return name in self._sections

    def sections(self) -> list[str]:
        return sorted(self._sections)

    def as_dict(self, *, mask_secrets: bool = True) -> dict[str, dict[str, Any]]:
        """Plain data for display; secret values are masked when set."""
        result: dict[str, dict[str, Any]] = {}
        for name in self.sections():
            section = self._sections[name]
            values = {}
            for f in dataclasses.fields(section):
                value = getattr(section, f.name)
                if mask_secrets and f.metadata.get("secret") and value:
                    value = MASK
                values[f.name] = value
            result[name] = values
        return result


def build_config(
    raw: RawConfig,
    schemas: Mapping[str, type],
    directories: Sequence[Path],
    ignored_sections: Iterable[str] = (),
) -> Config:
    """Validate merged values against every declared section.

    ``ignored_sections`` are sections of installed but disabled plugins: their
    fragments may stay in place without stopping start-up.
    """
    ignored = set(ignored_sections)
    for name in raw.values:
        if name not in schemas and name not in ignored:
            raise ConfigError(
                f"{raw.origin(name)}: unknown section [{name}] "
                f"(no loaded plugin declares it; known: {', '.join(sorted(schemas))})"
            )
    sections = {
        name: build_section(name, schema, raw.values.get(name, {}), raw)
        for name, schema in schemas.items()
    }
    return Config(sections, directories)
