"""calendar-query (RFC 4791 7.8) and addressbook-query (RFC 6352 8.6).

A calendar query whose filter asks for VEVENTs in a time range first narrows
the collection in SQL, on the appointment's start and end and, for a series,
the end of its recurrence (all widened by a day for floating and all-day
times); every candidate is then tested exactly against the filter, recurrences
expanded, on its iCalendar. The address book query tests each vCard.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from gateway.store import tables
from gateway.store import tags as T
from gateway.store.restrictions import And, Exists, Not, Or, Property, Restriction
from gateway.store.rights import Rights
from plugins.dav import body, caldav_filter, carddav_filter, items, reporting, resources
from plugins.dav.errors import DavError
from plugins.dav.items import ItemRef
from plugins.dav.parsed import ParsedCalendars
from plugins.dav.resources import Collection, Context, Item
from plugins.dav.xmlns import CALDAV, CARDDAV, DAV, tag
from plugins.dav.xmlout import Element, multistatus, status_response, xml_response

SLACK = timedelta(days=1)


def _child(root: Element, name: str) -> Element | None:
    for child in root:
        if child.tag == name:
            return child
    return None


def window(start: datetime | None, end: datetime | None) -> Restriction:
    """Appointments that may overlap [start, end): by their own times, or a series not
    ended before ``start``; appointments without times are left to the exact test."""
    parts: list[Restriction] = []
    if end is not None:
        parts.append(Property("lt", T.PidLidAppointmentStartWhole, end + SLACK))
    if start is not None:
        parts.append(Property("ge", T.PidLidAppointmentEndWhole, start - SLACK))
    single = And(*parts)
    series_parts: list[Restriction] = [Property("eq", T.PidLidRecurring, True)]
    if end is not None:
        series_parts.append(Property("lt", T.PidLidAppointmentStartWhole, end + SLACK))
    if start is not None:
        # A series with exceptions stays in: an override may be moved past the end.
        series_parts.append(Or(Not(Exists(T.PidLidClipEnd)),
                               Property("ge", T.PidLidClipEnd, start - SLACK),
                               Property("eq", T.PidTagHasAttachments, True)))
    return Or(single, And(*series_parts), Not(Exists(T.PidLidAppointmentStartWhole)))


def certain(start: datetime | None, end: datetime | None) -> Restriction:
    """Single, timed appointments whose stored UTC start and end overlap [start, end):
    they match a plain time-range filter without being read. All-day and floating ones
    (evaluated in the query's time zone) and series go through the exact test."""
    parts: list[Restriction] = [Not(Property("eq", T.PidLidRecurring, True)),
                                Not(Property("eq", T.PidLidAppointmentSubType, True))]
    if end is not None:
        parts.append(Property("lt", T.PidLidAppointmentStartWhole, end))
    if start is not None:
        parts.append(Property("gt", T.PidLidAppointmentEndWhole, start))
    return And(*parts)


async def _ids(coll: Collection, restriction: Restriction) -> set[int]:
    result = await tables.contents_table(coll.mbox, coll.folder.id, [T.PidTagMid],
                                         restriction=restriction)
    return {row["id"] for row in result.rows}


async def _candidates(coll: Collection, restriction: Restriction | None,
                      only: ItemRef | None = None) -> list[ItemRef]:
    listing = [only] if only else await items.listing(coll.mbox, coll.folder.id, coll.kind)
    if restriction is None:
        return listing
    keep = await _ids(coll, restriction)
    return [ref for ref in listing if ref.id in keep]


async def _target(ctx: Context, request: Request) -> tuple[Collection, ItemRef | None]:
    """The collection queried, and the one item when the query is sent to an item (RFC 4791
    7.8: then only that resource is tested)."""
    res = await resources.resolve(ctx, body.path_of(request))
    if isinstance(res, Item):
        if res.ref is None:
            raise DavError(404, message="no such item")
        resources.require(res.collection.rights, Rights.READ_ANY, "read this calendar")
        return res.collection, res.ref
    if not isinstance(res, Collection):
        raise DavError(403, tag(DAV, "supported-report"), "queries run on a collection")
    resources.require(res.rights, Rights.READ_ANY, "read this collection")
    return res, None


def _check_size(ctx: Context, count: int) -> None:
    if count > ctx.settings.max_results:
        raise DavError(507, tag(DAV, "number-of-matches-within-limits"),
                       f"more than {ctx.settings.max_results} results")


async def calendar_query(ctx: Context, request: Request, root: Element) -> Response:
    coll, only = await _target(ctx, request)
    if coll.kind != "calendar":
        raise DavError(403, tag(DAV, "supported-report"), "not a calendar")
    elem = _child(root, tag(CALDAV, "filter"))
    if elem is None:
        raise DavError(403, tag(CALDAV, "valid-filter"), "calendar-query needs a filter")
    query = caldav_filter.parse_filter(elem)
    wanted = reporting.Request(root)
    ms = multistatus()
    if query.component is not None and query.component not in coll.folder.components:
        return xml_response(ms)
    restriction = None
    sure: set[int] = set()
    span = query.time_range
    if span is not None and query.component == "VEVENT":
        restriction = window(*span)
        if query.only_time_range:
            sure = await _ids(coll, certain(*span))
    candidates = await _candidates(coll, restriction, only)
    bodies = await items.bodies(coll.mbox, candidates, coll.kind)
    # Reading and testing the candidates is CPU work: off the event loop.
    found = await asyncio.to_thread(_calendar_matches, query, candidates, bodies, sure,
                                    ctx.parsed, coll.mbox.key)
    hits = [Item(resources.item_href(coll, ref.name), coll, ref.name, ref) for ref in found]
    _check_size(ctx, len(hits))
    await reporting.write_items(ctx, ms, wanted, hits, bodies)
    return xml_response(ms)


def _calendar_matches(query: caldav_filter.CalendarFilter, candidates: list[ItemRef],
                      bodies: dict[int, bytes], sure: set[int], parsed: ParsedCalendars,
                      store: str) -> list[ItemRef]:
    found = []
    for ref in candidates:
        raw = bodies.get(ref.id)
        if raw is None:
            continue
        if ref.id in sure:
            found.append(ref)
            continue
        cal = parsed.get((store, ref.id, ref.change_number), lambda raw=raw: raw)
        if cal is not None and query.matches(cal):
            found.append(ref)
    return found


def _card_matches(query: carddav_filter.AddressbookFilter, candidates: list[ItemRef],
                  bodies: dict[int, bytes], limit: int | None) -> tuple[list[ItemRef], bool]:
    found = []
    for ref in candidates:
        raw = bodies.get(ref.id)
        if raw is not None and query.matches(raw):
            if limit is not None and len(found) >= limit:
                return found, True
            found.append(ref)
    return found, False


def _nresults(root: Element) -> int | None:
    limit = _child(root, tag(CARDDAV, "limit"))
    if limit is None:
        return None
    found = _child(limit, tag(CARDDAV, "nresults"))
    try:
        return max(0, int((found.text or "").strip())) if found is not None else None
    except ValueError:
        raise DavError(400, message="nresults is not a number") from None


async def addressbook_query(ctx: Context, request: Request, root: Element) -> Response:
    coll, only = await _target(ctx, request)
    if coll.kind != "addressbook":
        raise DavError(403, tag(DAV, "supported-report"), "not an address book")
    elem = _child(root, tag(CARDDAV, "filter"))
    query = carddav_filter.parse_filter(elem) if elem is not None else \
        carddav_filter.AddressbookFilter()
    wanted = reporting.Request(root)
    limit = _nresults(root)
    candidates = [only] if only else await items.listing(coll.mbox, coll.folder.id, coll.kind)
    bodies = await items.bodies(coll.mbox, candidates, coll.kind)
    found, truncated = await asyncio.to_thread(_card_matches, query, candidates, bodies, limit)
    hits = [Item(resources.item_href(coll, ref.name), coll, ref.name, ref) for ref in found]
    _check_size(ctx, len(hits))
    ms = multistatus()
    await reporting.write_items(ctx, ms, wanted, hits, bodies)
    if truncated:
        status_response(ms, coll.href, 507)
    return xml_response(ms)
