"""POST to the schedule outbox: a free/busy request (RFC 6638 5, as Apple's clients use it).

The body is an iCalendar object with ``METHOD:REQUEST`` and one VFREEBUSY whose
ORGANIZER is the outbox's owner, whose ATTENDEEs are the people asked about and
whose DTSTART/DTEND are the window. The answer is a ``CALDAV:schedule-response``
with one ``CALDAV:response`` per recipient: ``2.0;Success`` with a VFREEBUSY
``METHOD:REPLY`` as ``calendar-data``; ``3.7`` for someone who is no user of
ours; ``3.8`` for a user whose free/busy the requester may not see (no
free/busy rights for them on that user's Calendar). Meetings are not POSTed:
they are scheduled implicitly when stored (:mod:`plugins.dav.scheduling`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from icalendar import Calendar
from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

from gateway.convert.freebusy import render_vfreebusy
from gateway.store import Private, StoreError, permissions
from gateway.xmlsafe import BodyTooLarge, read_body
from plugins.dav import body, m_options, paths, r_freebusy, schedule_boxes
from plugins.dav.errors import DavError
from plugins.dav.resources import Context
from plugins.dav.schedule_boxes import cal_address
from plugins.dav.xmlns import CALDAV, DAV, tag
from plugins.dav.xmlout import NSMAP, sub, xml_response

MAX_RECIPIENTS = 100
"""Most people one free/busy request may ask about."""
CALENDAR = int(Private.CALENDAR)
C = lambda name: tag(CALDAV, name)  # noqa: E731


async def handle(ctx: Context, request: Request) -> Response:
    where = paths.parse(body.path_of(request), ctx.base)
    box = None
    if where.kind == "collection" and where.home == "calendars" \
            and await ctx.user_exists(where.owner):
        box = await schedule_boxes.resolve_box(ctx, where.owner, where.collection)
    if box is None and where.collection.lower() == "outbox":
        raise DavError(404, message="no such outbox")
    if box is None or box.box != "outbox":
        return Response("POST goes to a schedule outbox\n", status_code=405,
                        headers={"Allow": m_options.ALLOW},
                        media_type="text/plain; charset=utf-8")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "text/calendar":
        raise DavError(415 if media.startswith("application/") else 403,
                       C("supported-calendar-data"), "the body must be text/calendar")
    try:
        data = await read_body(request, ctx.settings.max_resource_bytes)
    except BodyTooLarge:
        raise DavError(403, C("max-resource-size"),
                       f"larger than {ctx.settings.max_resource_bytes} bytes") from None
    uid, start, end, recipients = read_request(data, box.owner)
    root = etree.Element(C("schedule-response"), nsmap=NSMAP)
    stamp = datetime.now(UTC).replace(microsecond=0)
    for raw, address in recipients:
        status, reply = await answer(ctx, address, box.owner, uid, start, end, stamp)
        one = sub(root, C("response"))
        sub(sub(one, C("recipient")), tag(DAV, "href"), raw)
        sub(one, C("request-status"), status)
        if reply is not None:
            sub(one, C("calendar-data"), reply.decode("utf-8"))
    return xml_response(root, status=200)


def read_request(data: bytes, owner: str
                 ) -> tuple[str, datetime, datetime, list[tuple[str, str]]]:
    """``(UID, start, end, [(recipient as written, address)])`` of a free/busy request;
    403 with the precondition it breaks."""
    invalid = (403, C("valid-scheduling-message"))
    try:
        calendars = Calendar.from_ical(data, multiple=True)
    except Exception as exc:  # icalendar raises many kinds on garbage
        raise DavError(403, C("valid-calendar-data"), f"not valid iCalendar: {exc}") from None
    if len(calendars) != 1 or calendars[0].name != "VCALENDAR":
        raise DavError(403, C("valid-calendar-data"), "exactly one VCALENDAR expected")
    cal = calendars[0]
    busy = [c for c in cal.subcomponents if c.name == "VFREEBUSY"]
    others = [c for c in cal.subcomponents if c.name in ("VEVENT", "VTODO", "VJOURNAL")]
    if str(cal.get("METHOD", "")).upper() != "REQUEST" or len(busy) != 1 or others:
        raise DavError(*invalid, "the outbox takes a METHOD:REQUEST with one VFREEBUSY; "
                       "meetings are scheduled when they are stored")
    fb = busy[0]
    if cal_address(fb.get("ORGANIZER")) != owner:
        raise DavError(403, C("organizer-allowed"), f"the ORGANIZER must be mailto:{owner}")
    found = fb.get("ATTENDEE")
    attendees = [] if found is None else (found if isinstance(found, list) else [found])
    if not attendees:
        raise DavError(403, C("recipient-specified"), "no ATTENDEE to ask about")
    if len(attendees) > MAX_RECIPIENTS:
        raise DavError(403, C("max-attendees-per-instance"),
                       f"more than {MAX_RECIPIENTS} recipients")
    try:
        start, end = fb.decoded("DTSTART"), fb.decoded("DTEND")
    except (KeyError, ValueError) as exc:
        raise DavError(*invalid, f"DTSTART and DTEND are needed: {exc}") from None
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        raise DavError(*invalid, "DTSTART and DTEND must be date-times")
    start, end = r_freebusy.window(_utc(start), _utc(end))
    recipients = [(str(a), cal_address(a)) for a in attendees]
    return str(fb.get("UID", "")) or f"freebusy-{start:%Y%m%dT%H%M%SZ}", start, end, recipients


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


async def answer(ctx: Context, address: str, owner: str, uid: str, start: datetime,
                 end: datetime, stamp: datetime) -> tuple[str, bytes | None]:
    """The request-status and VFREEBUSY reply for one recipient."""
    if await schedule_boxes.recipient_kind(ctx, address) != "internal":
        return "3.7;Invalid calendar user", None
    try:
        mbox = await ctx.store(address)
        rights = await mbox.read(permissions.rights_for, ctx.user, CALENDAR)
        if not r_freebusy.may_see_free_busy(rights):
            return "3.8;No authority", None
        periods = await r_freebusy.busy_time(mbox, CALENDAR, start, end)
    except (StoreError, DavError):
        return "5.1;Could not complete delivery", None
    body = render_vfreebusy(periods, start, end, attendee=address, organizer=owner, uid=uid,
                            method="REPLY", stamp=stamp)
    return "2.0;Success", body

