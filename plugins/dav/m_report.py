"""REPORT: dispatch by the body's root element to the report modules (``r_*.py``).

A report the resource does not support answers 403 ``supported-report`` (RFC 3253
3.6); its properties are answered through :mod:`plugins.dav.props`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from plugins.dav import body, r_freebusy, r_multiget, r_query, r_sync
from plugins.dav.errors import DavError
from plugins.dav.resources import Context
from plugins.dav.xmlns import CALDAV, CARDDAV, DAV, tag
from plugins.dav.xmlout import Element

Report = Callable[[Context, Request, Element], Awaitable[Response]]
REPORTS: dict[str, Report] = {
    tag(CALDAV, "calendar-multiget"): r_multiget.handle,
    tag(CARDDAV, "addressbook-multiget"): r_multiget.handle,
    tag(CALDAV, "calendar-query"): r_query.calendar_query,
    tag(CARDDAV, "addressbook-query"): r_query.addressbook_query,
    tag(DAV, "sync-collection"): r_sync.handle,
    tag(CALDAV, "free-busy-query"): r_freebusy.handle,
}


def register(name: str, report: Report) -> None:
    """Add a report (the scheduling and principal modules register theirs)."""
    REPORTS[name] = report


async def handle(ctx: Context, request: Request) -> Response:
    root = await body.xml(ctx, request)
    assert root is not None
    report = REPORTS.get(root.tag)
    if report is None:
        raise DavError(403, tag(DAV, "supported-report"), f"{root.tag} is not supported")
    return await report(ctx, request, root)
