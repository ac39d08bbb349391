"""Hook implementations: config section, HTTP route, TCP service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import click
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Mount, Route

from gateway import hookimpl
from gateway.cli import host_from_context
from gateway.config import option
from gateway.host import Host
from gateway.net import TcpService
from hello_plugin.lines import serve_connection


@dataclass
class HelloSection:
    greeting: str = option("Hello", "Word the plugin greets with.")
    listen: list[str] = option(["127.0.0.1:1790"], "Plain TCP listeners of the line service.")
    idle_timeout: float = option(300.0, "Seconds of silence before a TCP client is dropped.")


async def greet(host: Host, request: Request) -> PlainTextResponse:
    name = request.path_params.get("name", "world")
    return PlainTextResponse(f"{host.config.hello.greeting}, {name}!\n")


@hookimpl
def gateway_config_schema() -> Mapping[str, type]:
    return {"hello": HelloSection}


@hookimpl
def gateway_cli_commands(cli: click.Group) -> None:
    @cli.command("hello")
    @click.argument("name")
    @click.pass_context
    def hello(ctx: click.Context, name: str) -> None:
        """Print the configured greeting for NAME (example plugin)."""
        host = host_from_context(ctx)
        if "hello" not in host.config:
            raise click.ClickException("the hello plugin is disabled")
        click.echo(f"{host.config.hello.greeting}, {name}!")


@hookimpl
def gateway_http_routes(host: Host) -> Sequence[BaseRoute]:
    handler = partial(greet, host)
    return [Mount("/hello", routes=[Route("/", handler), Route("/{name}", handler)])]


@hookimpl
def gateway_tcp_services(host: Host) -> Sequence[TcpService]:
    section = host.config.hello
    return [
        TcpService(
            name="hello",
            handler=partial(serve_connection, host),
            listen=section.listen,
            idle_timeout=section.idle_timeout,
        )
    ]
