"""The plugin manager factory and the host object handed to every hook.

One :class:`Host` per running gateway process: configuration, plugin manager,
logging, metrics, notifier and auth registry, plus the directory and store
once their subsystems attach them. There is no module-level plugin manager;
:func:`build_host` makes a fresh one each time.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, cast

import pluggy

from gateway import hookspecs, settings
from gateway.accesslog import AccessLog
from gateway.auth import AuthRegistry
from gateway.auth import mechanisms as auth_mechanisms
from gateway.config import (
    Config,
    ConfigError,
    RawConfig,
    build_config,
    coerce,
    default_directories,
    read_layers,
)
from gateway.metrics import Metrics
from gateway.notify import Notifier

ENTRY_POINT_GROUP = "gateway.plugins"
CORE = "core"
log = logging.getLogger("gateway")


@dataclass(frozen=True)
class PluginInfo:
    """What ``gateway plugins`` shows about one loaded plugin."""

    name: str
    version: str
    source: str
    """``"entry point (distribution)"``, ``"module"`` or ``"host"``."""
    plugin: Any


def _entry_points() -> list[EntryPoint]:
    """Entry points of the group, this distribution's built-ins first."""
    found = list(entry_points(group=ENTRY_POINT_GROUP))
    return sorted(found, key=lambda ep: (ep.value.split(".")[0] != "plugins", ep.name))


def make_plugin_manager(
    disabled: Iterable[str] = (), modules: Iterable[str] = ()
) -> tuple[pluggy.PluginManager, dict[str, PluginInfo]]:
    """A new plugin manager: the host's own sections, built-ins, entry points, modules.

    Unknown hook names in any plugin stop here with the plugin named.
    """
    pm = pluggy.PluginManager("gateway")
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    pm.register(settings, name=CORE)
    pm.register(auth_mechanisms, name="auth")  # the password mechanism, part of the host
    infos[CORE] = PluginInfo(CORE, _version("groupware-gateway"), "host", settings)
    disabled = set(disabled)
    for ep in _entry_points():
        if ep.name in disabled:
            pm.set_blocked(ep.name)
            continue
        if ep.name in infos:
            raise ConfigError(f"two installed plugins are named {ep.name!r}")
        try:
            plugin = ep.load()
        except Exception as exc:
            raise ConfigError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc!r}") from exc
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        pm.register(plugin, name=ep.name)
        infos[ep.name] = PluginInfo(ep.name, version, f"entry point ({dist})", plugin)
    for dotted in modules:
        name = dotted.rsplit(".", 1)[-1]
        if name in disabled:
            continue
        if name in infos:
            raise ConfigError(f"[plugins] modules: a plugin named {name!r} is already loaded")
        try:
            plugin = importlib.import_module(dotted)
        except Exception as exc:
            raise ConfigError(f"[plugins] modules: cannot import {dotted!r}: {exc!r}") from exc
        if pm.is_registered(plugin):
            raise ConfigError(f"[plugins] modules: {dotted!r} is already loaded as plugin "
                              f"{pm.get_name(plugin)!r} (installed); remove it from the list")
        pm.register(plugin, name=name)
        infos[name] = PluginInfo(name, getattr(plugin, "__version__", "?"), "module", plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigError(f"plugin {exc.plugin!r}: {exc}") from None
    return pm, infos


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "source"


def _early(raw: RawConfig, key: str) -> list[str]:
    """Read a ``[plugins]`` list before the plugin set (and so the schema) is known."""
    value = raw.values.get("plugins", {}).get(key, [])
    try:
        return coerce(value, list[str])
    except TypeError:
        raise ConfigError(
            f"{raw.origin('plugins', key)}: [plugins] {key} must be a list of strings, "
            f"got {value!r}"
        ) from None


def collect_schemas(pm: pluggy.PluginManager) -> dict[str, type]:
    """Every declared section, refusing a section declared twice."""
    schemas: dict[str, type] = {}
    owners: dict[str, str] = {}
    for impl in pm.hook.gateway_config_schema.get_hookimpls():
        declared = cast(Mapping[str, type], impl.function() or {})
        for section, schema in declared.items():
            if section in owners:
                raise ConfigError(
                    f"config section [{section}] is declared by both plugin "
                    f"{owners[section]!r} and plugin {impl.plugin_name!r}"
                )
            owners[section] = impl.plugin_name
            schemas[section] = schema
    return schemas


def load_config(
    config_dirs: Sequence[str | Path] = (), environ: Mapping[str, str] | None = None
) -> tuple[Config, pluggy.PluginManager, dict[str, PluginInfo]]:
    """Read the layered configuration and the plugin set it selects."""
    directories = default_directories(config_dirs)
    raw = read_layers(directories, environ)
    disabled = _early(raw, "disabled")
    pm, infos = make_plugin_manager(disabled, _early(raw, "modules"))
    config = build_config(raw, collect_schemas(pm), directories, ignored_sections=disabled)
    return config, pm, infos


class Host:
    """Everything a hook may need about the running gateway."""

    def __init__(
        self,
        config: Config,
        pm: pluggy.PluginManager,
        plugins: Mapping[str, PluginInfo],
        config_dirs: Sequence[str | Path] = (),
        environ: Mapping[str, str] | None = None,
    ):
        self.config = config
        self.pm = pm
        self.plugins = dict(plugins)
        self.log = log
        self.metrics = Metrics()
        self.access_log = AccessLog()
        self.notifier = Notifier(self)
        self.auth = AuthRegistry()
        self.directory: Any = None
        """The user directory (:class:`gateway.directory.Directory`), open between
        ``startup()`` and ``shutdown()``."""
        self.store: Any = None
        """The mailbox stores (:class:`gateway.store.Store`), open between ``startup()``
        and ``shutdown()``; their events go out through ``notifier``."""
        self.mail: Any = None
        """Outbound mail (:class:`gateway.mail.MailService`): submission and the queue
        runner, running between ``startup()`` and ``shutdown()``."""
        self._mail: Any = None
        self.config_dirs = list(config_dirs)
        self._environ = environ

    @property
    def data_dir(self) -> Path:
        return Path(self.config.gateway.data_dir)

    def plugin_log(self, plugin: str) -> logging.Logger:
        return logging.getLogger(f"gateway.plugin.{plugin}")

    def call_each(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of ``hook``; return ``(plugin name, result)`` pairs.

        Results are in registration order (built-ins first), unlike pluggy's
        own last-registered-first order, so listings read naturally.
        """
        caller = getattr(self.pm.hook, hook)
        results = []
        for impl in caller.get_hookimpls():
            args = {name: kwargs[name] for name in impl.argnames}
            results.append((impl.plugin_name, impl.function(**args)))
        return results

    async def acall_each(self, hook: str, *, stop_on_error: bool, **kwargs: Any) -> None:
        """Call ``hook`` everywhere, awaiting awaitables.

        With ``stop_on_error`` the first exception propagates (start-up);
        otherwise each is logged and the rest still run (shutdown, events).
        """
        caller = getattr(self.pm.hook, hook)
        for impl in caller.get_hookimpls():
            args = {name: kwargs[name] for name in impl.argnames}
            try:
                result = impl.function(**args)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                if stop_on_error:
                    raise
                self.log.exception("plugin %r failed in %s", impl.plugin_name, hook)

    def register_auth_mechanisms(self) -> None:
        for plugin, mechanisms in self.call_each("gateway_auth_mechanisms", host=self):
            self.auth.add(mechanisms or (), plugin)

    async def startup(self) -> None:
        from gateway.directory import Directory

        await self.notifier.start()
        section = self.config.directory
        self.directory = await Directory.open(section.url, self.data_dir, section.cache_ttl)
        self.store = self._open_store()
        from gateway.mail import MailService

        self._mail = self.mail = MailService(self)
        await self._mail.start()
        await self.acall_each("gateway_startup", stop_on_error=True, host=self)

    def _open_store(self) -> Any:
        from gateway.store import Store, quota
        from gateway.store.store import publisher

        store = Store(self.data_dir, self.config.store, publisher(self.notifier.publish))

        async def limits(mailbox: Any) -> None:
            await quota.load(mailbox, self.directory)

        store.on_open = limits
        return store

    async def shutdown(self) -> None:
        await self.acall_each("gateway_shutdown", stop_on_error=False, host=self)
        if self._mail is not None:  # the one started here, even if a test swapped host.mail
            await self._mail.stop()
            self._mail = self.mail = None
        if self.store is not None:
            await self.store.close()
            self.store = None
        if self.directory is not None:
            await self.directory.close()
            self.directory = None
        await self.notifier.stop()
        self.access_log.flush()

    async def reload(self) -> bool:
        """Re-read the configuration (SIGHUP). Keep the old one when the new is invalid."""
        try:
            config, _, plugins = load_config(self.config_dirs, self._environ)
        except ConfigError as exc:
            self.log.error("reload refused, keeping the running configuration: %s", exc)
            return False
        if set(plugins) != set(self.plugins):
            self.log.warning("the plugin set changed; that takes effect on restart")
        for key in ("listen", "listen_tls"):
            if getattr(config.http, key) != getattr(self.config.http, key):
                self.log.warning("[http] %s changed; listeners change on restart", key)
        self.config = config
        logging.getLogger("gateway").setLevel(config.gateway.log_level.upper())
        if self.directory is not None:
            self.directory.invalidate()
        await self.acall_each("gateway_reload", stop_on_error=False, host=self)
        self.log.info("configuration reloaded")
        return True


def build_host(
    config_dirs: Sequence[str | Path] = (), environ: Mapping[str, str] | None = None
) -> Host:
    """Load configuration and plugins and run the assembly hooks that cannot wait.

    Raises :class:`ConfigError` for anything an administrator must fix.
    """
    config, pm, plugins = load_config(config_dirs, environ)
    host = Host(config, pm, plugins, config_dirs, environ)
    host.register_auth_mechanisms()
    return host
