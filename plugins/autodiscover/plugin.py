"""Hook implementations of the autodiscover plugin.

Routes (``/Autodiscover`` matches case-insensitively, see ``gateway_http_routes``):

* ``/Autodiscover/Autodiscover.xml``   POX (outlook 2006a, mobilesync), POST, authenticated;
* ``/Autodiscover/autodiscover.svc``   SOAP (MS-OXWSADISC), POST, authenticated;
* ``/Autodiscover/autodiscover.json``  JSON v2 (``/v1.0/{address}?Protocol=`` or ``?Email=``);
* ``/.well-known/autoconfig/mail/config-v1.1.xml``, ``/mail/config-v1.1.xml``  Thunderbird;
* ``/.well-known/caldav``, ``/.well-known/carddav``  redirects to the DAV context path.

What is advertised comes only from ``gateway_autodiscover_endpoints`` of the
enabled plugins; this plugin knows no other. ``gateway autodiscover check``
runs the client side against a server (:mod:`plugins.autodiscover.check`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial

import click
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import hookimpl
from gateway.auth.http import HttpAuth
from gateway.host import Host
from plugins.autodiscover import autoconfig, jsonv2, pox, soap
from plugins.autodiscover.settings import AutodiscoverSection

Handler = Callable[[Host, Request], Awaitable[Response]]
WELL_KNOWN_METHODS = ["GET", "HEAD", "PROPFIND", "OPTIONS", "REPORT"]


class PostOnly:
    """POST goes through authentication to ``handler``; other methods get ``refuse`` (405)."""

    def __init__(self, host: Host, handler: Handler,
                 refuse: Callable[[Request], Awaitable[Response]]):
        section: AutodiscoverSection = host.config.autodiscover

        async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            response = await handler(host, Request(scope, receive))
            await response(scope, receive, send)

        self.refuse = refuse
        self.authenticated: ASGIApp = HttpAuth(endpoint, host, "autodiscover",
                                               schemes=section.auth_schemes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] != "POST":
            response = await self.refuse(Request(scope, receive))
            await response(scope, receive, send)
            return
        await self.authenticated(scope, receive, send)


@hookimpl
def gateway_config_schema() -> Mapping[str, type]:
    return {"autodiscover": AutodiscoverSection}


@hookimpl
def gateway_http_routes(host: Host) -> Sequence[BaseRoute]:
    json_endpoint = partial(jsonv2.autodiscover_json, host)
    return [
        Mount("/Autodiscover", routes=[
            Route("/Autodiscover.xml", PostOnly(host, pox.pox, pox.method_not_allowed)),
            Route("/autodiscover.svc", PostOnly(host, soap.soap, soap.method_not_allowed)),
            Route("/autodiscover.json/v1.0/{address}", json_endpoint, methods=["GET", "HEAD"]),
            Route("/autodiscover.json", json_endpoint, methods=["GET", "HEAD"]),
        ]),
        Route("/.well-known/autoconfig/mail/config-v1.1.xml", partial(autoconfig.autoconfig, host),
              methods=["GET", "HEAD"]),
        Route("/mail/config-v1.1.xml", partial(autoconfig.autoconfig, host),
              methods=["GET", "HEAD"]),
        # DAV clients start discovery with PROPFIND (or OPTIONS) here, not only GET.
        Route("/.well-known/caldav", partial(autoconfig.well_known, host, "CalDAV"),
              methods=WELL_KNOWN_METHODS),
        Route("/.well-known/carddav", partial(autoconfig.well_known, host, "CardDAV"),
              methods=WELL_KNOWN_METHODS),
    ]


@hookimpl
def gateway_cli_commands(cli: click.Group) -> None:
    from plugins.autodiscover.check import autodiscover

    cli.add_command(autodiscover)
