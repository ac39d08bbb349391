"""A test plugin implementing every hook, loaded with ``[plugins] modules``.

It records what the host does to it as files under ``[probe] record_dir`` so
tests can read them across worker processes, and offers routes that drive the
host's services (notifier, auth registry, discovery hook).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import click
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from gateway import hookimpl
from gateway.auth import AuthResult, Credentials, Principal
from gateway.config import option
from gateway.discovery import DiscoveryRequest, Endpoint
from gateway.events import StoreEvent
from gateway.host import Host
from gateway.net import Connection, TcpService


@dataclass
class ProbeSection:
    record_dir: str = option("", "Where the probe writes what happened to it.")
    label: str = option("first", "A value tests change to see reloads.")
    listen: list[str] = option([], "Echo service listeners.")
    token: str = option("", "A secret, to see masking.", secret=True)
    proxy_protocol: bool = option(False, "Echo service expects PROXY headers.")
    trusted_proxies: list[str] = option([], "Who may send them.")


def record(host: Host, name: str, data: object = "") -> None:
    directory = Path(host.config.probe.record_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"{name}-{os.getpid()}").open("a") as fh:
        fh.write(json.dumps(data) + "\n")


class StaticMechanism:
    """Accepts alice/secret only."""

    name = "probe-static"
    kinds = frozenset({"password"})

    async def authenticate(self, credentials: Credentials) -> AuthResult:
        if credentials.username == "alice" and credentials.secret == b"secret":
            return AuthResult(Principal("alice@example.org", self.name))
        return AuthResult(reason="wrong password")


async def exchange(request: Request) -> Response:
    return PlainTextResponse(f"exchange {request.url.path}\n")


async def slow(request: Request) -> Response:
    await asyncio.sleep(float(request.query_params.get("seconds", "1")))
    return PlainTextResponse("slow done\n")


async def info(host: Host, request: Request) -> Response:
    client = request.client.host if request.client else None
    return JSONResponse({"pid": os.getpid(), "label": host.config.probe.label,
                         "client": client, "scheme": request.url.scheme,
                         "request_id": request.scope.get("gateway.request_id"),
                         "http_version": request.scope.get("http_version")})


async def publish(host: Host, request: Request) -> Response:
    body = await request.json()
    await host.notifier.publish(StoreEvent(**body))
    return PlainTextResponse("published\n")


async def auth(host: Host, request: Request) -> Response:
    q = request.query_params
    result = await host.auth.authenticate(Credentials(
        "password", "probe", request.client.host if request.client else "",
        q.get("user", ""), q.get("password", "").encode()))
    return JSONResponse({"ok": result.ok, "reason": result.reason,
                         "user": result.principal.username if result.principal else None})


async def discover(host: Host, request: Request) -> Response:
    question = DiscoveryRequest(request.query_params["address"], "json", str(request.base_url))
    endpoints = [
        {"plugin": plugin, "protocol": e.protocol, "url": e.url}
        for plugin, found in host.call_each("gateway_autodiscover_endpoints", host=host,
                                            request=question)
        for e in found or ()
    ]
    return JSONResponse(endpoints)


async def crash(request: Request) -> Response:
    raise RuntimeError("probe crash on purpose")


async def echo_body(request: Request) -> Response:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return PlainTextResponse(f"{size}\n")


def wsgi_app(environ: dict, start_response: object) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
    return [f"wsgi {environ['PATH_INFO']}\n".encode()]


async def echo(conn: Connection) -> None:
    await conn.write(b"* probe\r\n")
    while True:
        line = await conn.readline()
        if line.strip().upper() == b"QUIT":
            return
        if line.strip().upper() == b"WHO":
            line = f"{conn.peer[0]} tls={conn.tls}\r\n".encode()
        elif line.strip().upper() == b"STARTTLS":
            await conn.write(b"OK begin TLS\r\n")
            await conn.starttls()
            continue
        await conn.write(line)


@hookimpl
def gateway_config_schema() -> Mapping[str, type]:
    return {"probe": ProbeSection}


@hookimpl
def gateway_cli_commands(cli: click.Group) -> None:
    @cli.command("probe-hello")
    def probe_hello() -> None:
        """Say hello (a command added by the probe test plugin)."""
        click.echo("hello from the probe plugin")


@hookimpl
def gateway_http_routes(host: Host) -> Sequence[BaseRoute]:
    return [
        Mount("/EWS", routes=[Route("/Exchange.asmx", exchange, methods=["GET", "POST"])]),
        Mount("/probe", routes=[
            Route("/slow", slow),
            Route("/info", partial(info, host)),
            Route("/events", partial(publish, host), methods=["POST"]),
            Route("/auth", partial(auth, host)),
            Route("/discover", partial(discover, host)),
            Route("/crash", crash),
            Route("/body", echo_body, methods=["POST", "PUT"]),
        ]),
    ]


@hookimpl
def gateway_wsgi_apps(host: Host) -> Mapping[str, object]:
    return {"/probe-wsgi": wsgi_app}


@hookimpl
def gateway_tcp_services(host: Host) -> Sequence[TcpService]:
    probe = host.config.probe
    if not probe.listen:
        return []
    return [TcpService(name="probe", handler=echo, listen=probe.listen, starttls=True,
                       proxy_protocol=probe.proxy_protocol, trusted_proxies=probe.trusted_proxies)]


@hookimpl
def gateway_auth_mechanisms(host: Host) -> Sequence[StaticMechanism]:
    return [StaticMechanism()]


@hookimpl
async def gateway_startup(host: Host) -> None:
    record(host, "startup", host.config.probe.label)


@hookimpl
def gateway_reload(host: Host) -> None:
    record(host, "reload", host.config.probe.label)


@hookimpl
async def gateway_shutdown(host: Host) -> None:
    record(host, "shutdown")


@hookimpl
def gateway_store_event(host: Host, event: StoreEvent) -> None:
    record(host, "event", {"mailbox": event.mailbox, "kind": event.kind})


@hookimpl
def gateway_autodiscover_endpoints(host: Host, request: DiscoveryRequest) -> Sequence[Endpoint]:
    return [Endpoint("EWS", url=f"{request.base_url.rstrip('/')}/EWS/Exchange.asmx")]
