"""A plugin whose route overlaps the probe plugin's /probe mount."""

from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway import hookimpl


async def hello(request):
    return PlainTextResponse("collide\n")


@hookimpl
def gateway_http_routes(host):
    return [Route("/PROBE/info", hello)]
