"""Hook implementations of the status plugin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from gateway import hookimpl
from gateway.config import option
from gateway.host import Host
from gateway.net.proxy import is_trusted
from gateway.settings import check_networks


@dataclass
class StatusSection:
    metrics_allow: list[str] = option(
        ["127.0.0.0/8", "::1"],
        "Client addresses or networks allowed to read /metrics (after trusted proxies).",
        check=check_networks)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n", headers={"cache-control": "no-store"})


async def metrics(host: Host, request: Request) -> Response:
    client = request.client.host if request.client else ""
    if not is_trusted(client, host.config.status.metrics_allow):
        return PlainTextResponse("metrics are not available to this address\n", status_code=403)
    return Response(host.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@hookimpl
def gateway_config_schema() -> Mapping[str, type]:
    return {"status": StatusSection}


@hookimpl
def gateway_http_routes(host: Host) -> Sequence[BaseRoute]:
    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/metrics", partial(metrics, host), methods=["GET"]),
    ]
