"""The CALDAV:free-busy-query REPORT (RFC 4791 7.10): busy time of a calendar as VFREEBUSY.

The answer is ``200`` with a ``text/calendar`` VFREEBUSY for the asked time-range:
one FREEBUSY line per type (BUSY, BUSY-TENTATIVE, BUSY-UNAVAILABLE, from the
appointments' busy status, which TRANSP, STATUS and X-MICROSOFT-CDO-BUSYSTATUS
set), recurrences expanded, through :mod:`gateway.convert.freebusy`. It needs
the ``read-free-busy`` privilege (free/busy rights or ReadAny on the folder):
someone who may only see free/busy finds another user's default calendar
(``/calendars/<address>/calendar/``) for this report, though nothing else of it.
The shared helpers (:func:`parse_utc`, :func:`may_see_free_busy`,
:func:`busy_time`) serve the outbox POST (:mod:`plugins.dav.m_post`) too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.convert.freebusy import folder_free_busy, render_vfreebusy
from gateway.store import Private, StoreError, permissions
from gateway.store.rights import Rights
from plugins.dav import body, paths, resources
from plugins.dav.errors import DavError
from plugins.dav.resources import Collection, Context
from plugins.dav.xmlns import CALDAV, tag
from plugins.dav.xmlout import Element

MAX_WINDOW = timedelta(days=731)
"""Widest time-range answered (two years)."""
FREE_BUSY = Rights.FREE_BUSY_SIMPLE | Rights.FREE_BUSY_DETAILED | Rights.READ_ANY
CALENDAR = int(Private.CALENDAR)
CONTENT_TYPE = "text/calendar; charset=utf-8"


def parse_utc(text: str | None) -> datetime | None:
    """An iCalendar UTC date-time (``20261129T120000Z``); 400 when malformed."""
    if text is None:
        return None
    try:
        return datetime.strptime(text.strip(), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise DavError(400, message=f"{text[:40]!r} is not a UTC date-time") from None


def window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """A bounded window from an open time-range; 400 when empty or too wide."""
    if start is None:
        if end is None:
            raise DavError(400, message="the time-range needs a start or an end")
        start = end - MAX_WINDOW
    if end is None:
        end = start + MAX_WINDOW
    if end <= start:
        raise DavError(400, message="the time-range ends before it starts")
    if end - start > MAX_WINDOW:
        raise DavError(400, message=f"the time-range is wider than {MAX_WINDOW.days} days")
    return start, end


def time_range(root: Element) -> tuple[datetime, datetime]:
    """The one CALDAV:time-range of the report body."""
    found = [c for c in root if c.tag == tag(CALDAV, "time-range")]
    if len(found) != 1:
        raise DavError(400, message="free-busy-query needs exactly one CALDAV:time-range")
    return window(parse_utc(found[0].get("start")), parse_utc(found[0].get("end")))


def may_see_free_busy(rights: Rights) -> bool:
    return bool(rights & FREE_BUSY)


async def busy_time(mbox: Any, folder_id: int, start: datetime, end: datetime
                    ) -> list[tuple[datetime, datetime, str]]:
    return await folder_free_busy(mbox, folder_id, start, end)


async def target(ctx: Context, path: str) -> tuple[Any, int, Rights]:
    """``(store, folder id, rights)`` of the calendar the report is about."""
    try:
        res = await resources.resolve(ctx, path)
    except DavError as exc:
        if exc.status != 404:
            raise
        return await hidden_default_calendar(ctx, path, exc)
    if not isinstance(res, Collection) or res.kind != "calendar":
        raise DavError(403, tag(CALDAV, "supported-report"),
                       "free-busy-query is a report on a calendar collection")
    return res.mbox, res.folder.id, res.rights


async def hidden_default_calendar(ctx: Context, path: str, missing: DavError
                                  ) -> tuple[Any, int, Rights]:
    """Another user's default calendar that the requester may see free/busy of only."""
    where = paths.parse(path, ctx.base)
    if where.kind != "collection" or where.home != "calendars" or \
            where.collection.lower() != "calendar" or not await ctx.user_exists(where.owner):
        raise missing
    try:
        mbox = await ctx.store(where.owner)
        rights = await mbox.read(permissions.rights_for, ctx.user, CALENDAR)
    except StoreError:
        raise missing from None
    if not may_see_free_busy(rights):
        raise missing
    return mbox, CALENDAR, rights


async def handle(ctx: Context, request: Request, root: Element) -> Response:
    start, end = time_range(root)
    mbox, folder_id, rights = await target(ctx, body.path_of(request))
    if not may_see_free_busy(rights):
        raise DavError(403, "{DAV:}need-privileges", "no read-free-busy privilege here")
    periods = await busy_time(mbox, folder_id, start, end)
    answer = render_vfreebusy(periods, start, end, stamp=datetime.now(UTC).replace(microsecond=0))
    return Response(answer, status_code=200, media_type=CONTENT_TYPE)
