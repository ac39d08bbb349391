"""The trivial route of the HTTP overhead benchmark, served two ways.

``bare_app`` is a plain Starlette application for bare hypercorn; the module
is also a gateway plugin (``[plugins] modules = ["tests.bench.trivial"]``)
serving the very same handler through the full host.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route

from gateway import hookimpl


async def handler(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello\n")


bare_app = Starlette(routes=[Route("/bench", handler)])


@hookimpl
def gateway_http_routes(host: object) -> Sequence[BaseRoute]:
    return [Route("/bench", handler)]
