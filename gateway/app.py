"""The ASGI application: plugin routes behind the host's middleware.

Order of layers, outermost first (stated here and nowhere else):

1. ``ProxyHeadersMiddleware`` - real client and scheme from trusted proxies;
2. ``RequestMiddleware``      - request id, access log, metrics, 500 on crash;
3. ``LimitsMiddleware``       - 431/413 for heads and bodies over the ``[http]`` limits;
4. the router                 - every plugin's routes, collision-checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from a2wsgi import WSGIMiddleware
from starlette.routing import BaseRoute, Mount, Route, Router, WebSocketRoute
from starlette.routing import Host as HostRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.config import ConfigError
from gateway.middleware import LimitsMiddleware, ProxyHeadersMiddleware, RequestMiddleware

if TYPE_CHECKING:
    from gateway.host import Host

EXCHANGE_PREFIXES = frozenset(
    p.casefold()
    for p in ("/EWS", "/Autodiscover", "/Microsoft-Server-ActiveSync", "/mapi", "/rpc", "/OAB")
)
"""First path segments that Exchange clients send in varying case."""


@dataclass(frozen=True)
class PluginRoute:
    plugin: str
    route: BaseRoute

    @property
    def path(self) -> str:
        return getattr(self.route, "path", "") or "/"

    @property
    def is_prefix(self) -> bool:
        """A Mount claims everything under its path; a Route only its own path."""
        return isinstance(self.route, Mount)


class _TagPlugin:
    """Records which plugin answered, for the access log and metrics."""

    __slots__ = ("app", "plugin")

    def __init__(self, app: ASGIApp, plugin: str):
        self.app = app
        self.plugin = plugin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["gateway.plugin"] = self.plugin
        await self.app(scope, receive, send)


def _static_prefix(path: str) -> str:
    """The literal part of a route path, up to its first parameter, casefolded."""
    literal = path.split("{", 1)[0]
    literal = literal.rstrip("/") if "{" not in path else literal.rsplit("/", 1)[0]
    return literal.casefold() or "/"


def _first_segment(path: str) -> str:
    return "/" + path.lstrip("/").split("/", 1)[0].casefold()


def _overlaps(a: PluginRoute, b: PluginRoute) -> bool:
    pa, pb = _static_prefix(a.path), _static_prefix(b.path)
    if pa == pb:
        return True
    return any(
        outer.is_prefix and (p_outer == "/" or p_inner.startswith(p_outer + "/"))
        for outer, p_outer, p_inner in ((a, pa, pb), (b, pb, pa))
    )


def check_collisions(routes: Sequence[PluginRoute]) -> None:
    """Refuse two plugins claiming the same or nested paths (case-insensitively)."""
    for i, a in enumerate(routes):
        for b in routes[i + 1 :]:
            if a.plugin != b.plugin and _overlaps(a, b):
                raise ConfigError(
                    f"route collision: plugin {a.plugin!r} serves {a.path!r} and plugin "
                    f"{b.plugin!r} serves {b.path!r}; disable one in [plugins] disabled"
                )


def make_case_insensitive(route: BaseRoute) -> None:
    """Match this route, and every route below it, regardless of case."""
    regex = getattr(route, "path_regex", None)
    if regex is not None:
        route.path_regex = re.compile(regex.pattern, regex.flags | re.IGNORECASE)  # type: ignore[attr-defined]
    for child in getattr(route, "routes", None) or ():
        make_case_insensitive(child)


def collect_routes(host: Host) -> list[PluginRoute]:
    """Every plugin's HTTP routes and WSGI apps, in plugin order."""
    collected = []
    for plugin, routes in host.call_each("gateway_http_routes", host=host):
        for route in routes or ():
            if not isinstance(route, Route | Mount | WebSocketRoute | HostRoute):
                raise ConfigError(f"plugin {plugin!r} returned {route!r}, not a Starlette route")
            collected.append(PluginRoute(plugin, route))
    for plugin, apps in host.call_each("gateway_wsgi_apps", host=host):
        for path, wsgi_app in (apps or {}).items():
            mount = Mount(path.rstrip("/"), app=WSGIMiddleware(wsgi_app))  # type: ignore[arg-type]
            collected.append(PluginRoute(plugin, mount))
    return collected


def _tag(routes: Iterable[PluginRoute]) -> list[BaseRoute]:
    tagged = []
    for item in routes:
        route = item.route
        if _first_segment(item.path) in EXCHANGE_PREFIXES:
            make_case_insensitive(route)
        if isinstance(route, Mount | Route | WebSocketRoute):
            route.app = _TagPlugin(route.app, item.plugin)
        tagged.append(route)
    return tagged


def build_app(host: Host) -> ASGIApp:
    """Assemble the application; raises ``ConfigError`` on a route collision."""
    routes = collect_routes(host)
    check_collisions(routes)
    router = Router(routes=_tag(routes))
    http = host.config.http
    app: ASGIApp = LimitsMiddleware(router, http.max_body_bytes, http.max_header_bytes)
    app = RequestMiddleware(app, host.metrics, host.access_log if http.access_log else None)
    return ProxyHeadersMiddleware(app, http.trusted_proxies)
