"""OPTIONS: the methods and DAV compliance classes we offer (RFC 4918, 4791, 6352, 6638)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from plugins.dav.resources import Context

ALLOW = ("OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, REPORT, MKCOL, MKCALENDAR, "
         "MOVE, POST, ACL")
DAV_CLASSES = ("1, 3, access-control, calendar-access, addressbook, calendar-schedule, "
               "calendar-auto-schedule, extended-mkcol, calendar-proxy")


async def handle(ctx: Context, request: Request) -> Response:
    return Response(status_code=200, headers={"Allow": ALLOW, "DAV": DAV_CLASSES,
                                              "Content-Length": "0"})
