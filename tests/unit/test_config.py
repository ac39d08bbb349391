"""Configuration layering, validation and display."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.config import (
    MASK,
    SOURCE_CONF_D,
    ConfigError,
    build_config,
    option,
    read_layers,
)
from gateway.host import collect_schemas, load_config, make_plugin_manager


@dataclass
class Sample:
    name: str = option("x")
    count: int = option(1)
    ratio: float = option(0.5)
    flag: bool = option(False)
    items: list[str] = option(["a"])
    password: str = option("", secret=True)
    maybe: int | None = option(None)


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def test_later_directories_and_files_win(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write(first, "10-x.toml", '[s]\nname = "first"\ncount = 2\n')
    write(first, "20-x.toml", '[s]\nname = "second"\n')
    write(second, "00-x.toml", "[s]\ncount = 3\n")
    raw = read_layers([first, second], environ={})
    config = build_config(raw, {"s": Sample}, [first, second])
    assert config.s.name == "second"
    assert config.s.count == 3
    assert config.s.items == ["a"]


def test_environment_overrides_files(tmp_path: Path) -> None:
    write(tmp_path, "x.toml", '[s]\nname = "file"\n')
    environ = {"GATEWAY__S__NAME": "env", "GATEWAY__S__ITEMS": '["p", "q"]',
               "GATEWAY__S__COUNT": "7", "UNRELATED": "1"}
    config = build_config(read_layers([tmp_path], environ), {"s": Sample}, [tmp_path])
    assert (config.s.name, config.s.items, config.s.count) == ("env", ["p", "q"], 7)


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "x.toml", "[s]\ncuont = 2\n")
    with pytest.raises(ConfigError) as err:
        build_config(read_layers([tmp_path], {}), {"s": Sample}, [tmp_path])
    assert str(path) in str(err.value) and "cuont" in str(err.value)


@pytest.mark.parametrize(("key", "value"), [
    ("count", '"3"'), ("count", "true"), ("flag", "1"), ("items", '"a"'), ("items", "[1]"),
    ("ratio", '"x"'), ("name", "3"),
])
def test_wrong_type_names_file_and_key(tmp_path: Path, key: str, value: str) -> None:
    path = write(tmp_path, "x.toml", f"[s]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as err:
        build_config(read_layers([tmp_path], {}), {"s": Sample}, [tmp_path])
    assert str(path) in str(err.value) and f"{key} must be" in str(err.value)


def test_int_widens_to_float_and_optional(tmp_path: Path) -> None:
    write(tmp_path, "x.toml", "[s]\nratio = 2\nmaybe = 4\n")
    config = build_config(read_layers([tmp_path], {}), {"s": Sample}, [tmp_path])
    assert config.s.ratio == 2.0 and isinstance(config.s.ratio, float)
    assert config.s.maybe == 4


def test_unknown_section_and_ignored_sections(tmp_path: Path) -> None:
    path = write(tmp_path, "x.toml", "[imap]\nlisten = []\n")
    with pytest.raises(ConfigError, match=r"unknown section \[imap\]") as err:
        build_config(read_layers([tmp_path], {}), {"s": Sample}, [tmp_path])
    assert str(path) in str(err.value)
    build_config(read_layers([tmp_path], {}), {"s": Sample}, [tmp_path], ignored_sections=["imap"])


def test_invalid_toml_and_top_level_keys(tmp_path: Path) -> None:
    write(tmp_path, "x.toml", "[s\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_layers([tmp_path], {})
    write(tmp_path, "x.toml", "count = 1\n")
    with pytest.raises(ConfigError, match="outside a"):
        read_layers([tmp_path], {})


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        read_layers([tmp_path / "nope"], {})


def test_secrets_masked(tmp_path: Path) -> None:
    write(tmp_path, "x.toml", '[s]\npassword = "hunter2"\n')
    config = build_config(read_layers([tmp_path], {}), {"s": Sample}, [tmp_path])
    assert config.as_dict()["s"]["password"] == MASK
    assert config.as_dict(mask_secrets=False)["s"]["password"] == "hunter2"


def test_conf_d_states_the_declared_defaults() -> None:
    """Every repo fragment spells out exactly the defaults its plugin declares."""
    pm, _ = make_plugin_manager()
    schemas = collect_schemas(pm)
    seen = set()
    for path in sorted(SOURCE_CONF_D.glob("*.toml")):
        for section, values in tomllib.loads(path.read_text()).items():
            seen.add(section)
            assert section in schemas, f"{path}: [{section}] is declared by no plugin"
            defaults = {f.name: getattr(schemas[section](), f.name)
                        for f in dataclasses.fields(schemas[section])}
            assert values == defaults, f"{path}: [{section}] differs from the declared defaults"
    assert {"gateway", "http", "tls", "directory", "redis", "plugins", "status"} <= seen


def test_disabled_plugin_fragment_is_ignored(tmp_path: Path) -> None:
    write(tmp_path, "x.toml", '[plugins]\ndisabled = ["status"]\n[status]\nmetrics_allow = []\n')
    config, pm, plugins = load_config([tmp_path], environ={})
    assert "status" not in plugins and "status" not in config
    assert pm.is_blocked("status")


def test_plugins_disabled_must_be_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, "x.toml", '[plugins]\ndisabled = "status"\n')
    with pytest.raises(ConfigError, match="disabled must be a list") as err:
        load_config([tmp_path], environ={})
    assert str(path) in str(err.value)
