"""The whole plugin contract: every hook a plugin may implement.

A plugin is a module (or object) with functions decorated by
``gateway.hookimpl`` whose names are hooks below. It is found through the
``gateway.plugins`` entry-point group (built-ins register the same way) or
listed in ``[plugins] modules``, and switched off by ``[plugins] disabled``.
A hook name that is not declared here stops start-up, so a typo cannot pass
silently.

Hooks that receive ``host`` get the running :class:`gateway.host.Host`: its
``config``, ``log``, ``metrics``, ``notifier``, ``auth``, ``directory`` and
``store``. Plugins keep no module-level state; what they need lives on the
host or in objects their hooks return.

Unless a hook says otherwise, every implementation is called and the results
are collected; a hook marked *async allowed* may return an awaitable, which
the host awaits.

Phases, in the order a running gateway meets them:

1. configuration  - ``gateway_config_schema``
2. command line   - ``gateway_cli_commands``
3. assembly       - ``gateway_http_routes``, ``gateway_wsgi_apps``,
                    ``gateway_tcp_services``, ``gateway_auth_mechanisms``
4. lifecycle      - ``gateway_startup``, ``gateway_reload``, ``gateway_shutdown``
5. runtime        - ``gateway_store_event``, ``gateway_autodiscover_endpoints``
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    from starlette.routing import BaseRoute

    from gateway.auth import AuthMechanism
    from gateway.discovery import DiscoveryRequest, Endpoint
    from gateway.events import StoreEvent
    from gateway.host import Host
    from gateway.net import TcpService

hookspec = pluggy.HookspecMarker("gateway")

# --------------------------------------------------------------------------
# 1. Configuration
# --------------------------------------------------------------------------


@hookspec
def gateway_config_schema() -> Mapping[str, type]:
    """Declare config sections: ``{"section": DataclassType}``.

    Called once, before the configuration is read. Each field of the
    dataclass is one key; its annotation is the type checked at start-up
    (``str``, ``int``, ``float``, ``bool``, ``list[str]``, ``X | None``) and its
    default is the value when no fragment sets it. Use
    :func:`gateway.config.option` to add help text or mark a secret. A
    section name may be declared by one plugin only; by convention it is the
    plugin's name, so that disabling the plugin also silences its fragment.
    """


# --------------------------------------------------------------------------
# 2. Command line
# --------------------------------------------------------------------------


@hookspec
def gateway_cli_commands(cli: click.Group) -> None:
    """Add commands or groups to the ``gateway`` command.

    Called while the command line is built, for every installed plugin
    (configuration is not read yet, so ``[plugins] disabled`` does not hide
    commands). A command that needs the running configuration builds the
    host with :func:`gateway.cli.host_from_context`.
    """


# --------------------------------------------------------------------------
# 3. Assembly: called once per process, after configuration, before serving
# --------------------------------------------------------------------------


@hookspec
def gateway_http_routes(host: Host) -> Sequence[BaseRoute]:
    """Return Starlette routes (usually one ``Mount``) served over HTTP and HTTPS.

    Paths of all plugins are checked against each other at start-up; an
    overlap stops the gateway naming both plugins. Mounts under the
    Exchange-style prefixes (``/EWS``, ``/Autodiscover``,
    ``/Microsoft-Server-ActiveSync``, ``/mapi``, ``/rpc``, ``/OAB``) match
    case-insensitively, all the way down, because Exchange clients vary the
    case of those paths.
    """


@hookspec
def gateway_wsgi_apps(host: Host) -> Mapping[str, Any]:
    """Return ``{"/path": wsgi_application}`` for plugins that have a WSGI app.

    Each is mounted at its path through an ASGI-to-WSGI adapter running the
    application in a thread pool, and takes part in the collision check like
    any route.
    """


@hookspec
def gateway_tcp_services(host: Host) -> Sequence[TcpService]:
    """Return TCP line-protocol services (IMAP, SMTP, LMTP ...).

    The host binds each service's ``listen`` and ``listen_tls`` addresses,
    handles TLS, STARTTLS, PROXY protocol and limits (``gateway.net``), and
    calls the service's handler with one ``Connection`` per client, on the
    same event loop as HTTP.
    """


@hookspec
def gateway_auth_mechanisms(host: Host) -> Sequence[AuthMechanism]:
    """Return authentication mechanisms to add to ``host.auth``.

    Each mechanism has a unique ``name`` and ``kinds`` (the credential kinds
    it can check, e.g. ``"password"``, ``"gssapi"``). Protocol plugins never
    call a mechanism directly; they call ``host.auth.authenticate``.
    """


# --------------------------------------------------------------------------
# 4. Lifecycle: called in every worker process
# --------------------------------------------------------------------------


@hookspec
def gateway_startup(host: Host) -> Awaitable[None] | None:
    """Prepare a worker: open pools, start background tasks. *Async allowed.*

    Called after the listeners are bound and before the first connection is
    accepted. An exception stops the worker.
    """


@hookspec
def gateway_reload(host: Host) -> Awaitable[None] | None:
    """Pick up changes after SIGHUP. *Async allowed.*

    ``host.config`` already holds the re-read configuration (a reload with an
    invalid configuration is refused before this hook and the old one kept).
    Reload what can be reloaded: caches, cached directory lookups, per-request
    settings. Listeners and the plugin set change only on restart.
    """


@hookspec
def gateway_shutdown(host: Host) -> Awaitable[None] | None:
    """Release what ``gateway_startup`` took. *Async allowed.*

    Called after listeners stop accepting and in-flight requests drained (or
    the grace period ran out). Exceptions are logged and do not stop the
    other plugins' shutdown.
    """


# --------------------------------------------------------------------------
# 5. Runtime
# --------------------------------------------------------------------------


@hookspec
def gateway_store_event(host: Host, event: StoreEvent) -> Awaitable[None] | None:
    """Receive one store change (new mail, flag change, folder created ...). *Async allowed.*

    Called for events from this process and, when ``[redis] url`` is set,
    from every other process and node. Keep it quick: wake waiting sessions
    (IDLE, Ping, NotificationWait) and return; exceptions are logged.
    """


@hookspec
def gateway_autodiscover_endpoints(
    host: Host, request: DiscoveryRequest
) -> Sequence[Endpoint]:
    """Return the endpoints this plugin serves for one AutoDiscover request.

    A discovery plugin calls this for every enabled plugin and advertises the
    union, so it knows no protocol itself. ``request`` carries the user's
    address, the requested schema and the external base URL. Return an empty
    list when the plugin has nothing for this user or schema.
    """
