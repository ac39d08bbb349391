"""Implicit scheduling (RFC 6638 section 3): what a PUT or DELETE of a meeting sends.

A calendar object with an ORGANIZER is a scheduling object resource. When the
organizer (the calendar's owner) stores it, every attendee is sent the meeting
(iTIP REQUEST, RFC 5546); an attendee taken off the list, or every attendee of a
deleted meeting, is sent a CANCEL. When an attendee stores their copy with a
changed PARTSTAT, or deletes it, the organizer is sent a REPLY. Delivery (a copy
in the attendee's Calendar and the message in their Inbox, or an iMIP mail) is
:mod:`plugins.dav.schedule_boxes`; its outcome per attendee is kept in the
organizer's copy as the ATTENDEE's SCHEDULE-STATUS (RFC 6638 3.2.9).

:func:`before_put` checks the object before anything is written (403
``valid-organizer``, ``same-organizer-in-all-components``,
``max-attendees-per-instance``, ``allowed-organizer-scheduling-object-change``)
and remembers the version it replaces; :func:`after_put` schedules once the
write is done. A delivery that fails is logged and kept as its SCHEDULE-STATUS:
it never fails the request. ``SCHEDULE-AGENT=CLIENT`` or ``NONE`` on an
ATTENDEE (or on the ORGANIZER) leaves that scheduling to the client, and
``Schedule-Reply: F`` (RFC 6638 8.1) makes an attendee's change send no REPLY.

An organizer's change that only touches PARTSTATs, alarms or time stamps is
not sent again to the attendees already invited (``SCHEDULE-FORCE-SEND=REQUEST``
sends it anyway). An attendee owns their PARTSTAT: the organizer's copy can
only reset it to NEEDS-ACTION.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from icalendar import Calendar, Component

from gateway.store import NotFound, StoreError, dav
from plugins.dav import collections, items, schedule_boxes
from plugins.dav.errors import DavError
from plugins.dav.items import ItemRef, Parsed
from plugins.dav.resources import Collection, Context
from plugins.dav.schedule_boxes import cal_address
from plugins.dav.xmlns import CALDAV, tag

log = logging.getLogger("gateway.plugins.dav.scheduling")

MAX_ATTENDEES = 1000
"""Most attendees of one meeting (CALDAV:max-attendees-per-instance)."""
SCHEDULED = ("VEVENT", "VTODO")
"""Components that carry ORGANIZER and ATTENDEE; only meetings (VEVENT) are scheduled."""
SERVER_PARAMS = ("SCHEDULE-STATUS", "SCHEDULE-FORCE-SEND")
"""Parameters of the server's side of scheduling: never in iTIP, nor in a copy."""
PASSING = ("DTSTAMP", "LAST-MODIFIED", "CREATED")
"""Properties whose change alone is not worth sending a meeting again."""


@dataclass
class Meeting:
    """A calendar object as scheduling sees it."""

    cal: Calendar
    uid: str
    organizer: str
    """The ORGANIZER's e-mail address; "" when there is none (or it is no ``mailto:``)."""
    server_schedules: bool
    """False when the ORGANIZER says SCHEDULE-AGENT=CLIENT or NONE."""
    attendees: dict[str, Any] = field(default_factory=dict)
    """``{address: ATTENDEE property}`` over all components, the master's first."""

    @property
    def summary(self) -> str:
        comps = components(self.cal)
        return str(comps[0].get("SUMMARY", "")) if comps else ""

    def cancelled(self) -> bool:
        return any(str(c.get("STATUS", "")).upper() == "CANCELLED"
                   for c in components(self.cal))


@dataclass
class Plan:
    """What :func:`before_put` learnt for :func:`after_put`."""

    role: str
    """``"organizer"``, ``"attendee"`` or ``"none"`` (no scheduling)."""
    meeting: Meeting | None = None
    old: Meeting | None = None
    """The version the PUT replaces, when there was one."""
    reply: bool = True
    """False under ``Schedule-Reply: F``."""


# -- reading and changing calendar data -------------------------------------------------------
def components(cal: Calendar) -> list[Component]:
    return [c for c in cal.subcomponents if c.name in SCHEDULED]


def _list(comp: Component, name: str) -> list[Any]:
    found = comp.get(name)
    if found is None:
        return []
    return list(found) if isinstance(found, list) else [found]


def _param(prop: Any, name: str, default: str = "") -> str:
    params = getattr(prop, "params", None)
    if params is None or name not in params:
        return default
    return str(params[name]).upper()


def _rid(comp: Component) -> str:
    """A comparable form of the component's RECURRENCE-ID; "" for the master."""
    rid = comp.get("RECURRENCE-ID")
    if rid is None:
        return ""
    value = getattr(rid, "dt", None)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.isoformat() if value is not None else str(rid)


def fresh(cal: Calendar) -> Calendar:
    """An independent copy of ``cal``."""
    return Calendar.from_ical(cal.to_ical())


def read_meeting(data: bytes | Calendar) -> Meeting:
    """The scheduling view of a calendar object; 403 with the precondition it breaks."""
    cal = data if isinstance(data, Calendar) else Calendar.from_ical(data)
    comps = components(cal)
    # "when present" (RFC 6638 3.2.4.2): an override without ORGANIZER is not a conflict.
    organizers = {str(c.get("ORGANIZER", "")).strip().lower() for c in comps} - {""}
    if len(organizers) > 1:
        raise DavError(403, tag(CALDAV, "same-organizer-in-all-components"),
                       "every component of a meeting needs the same ORGANIZER")
    attendees: dict[str, Any] = {}
    for comp in sorted(comps, key=lambda c: _rid(c) != ""):
        found = _list(comp, "ATTENDEE")
        if len(found) > MAX_ATTENDEES:
            raise DavError(403, tag(CALDAV, "max-attendees-per-instance"),
                           f"more than {MAX_ATTENDEES} attendees")
        for prop in found:
            address = cal_address(prop)
            if address:
                attendees.setdefault(address, prop)
    if len(attendees) > MAX_ATTENDEES:
        raise DavError(403, tag(CALDAV, "max-attendees-per-instance"),
                       f"more than {MAX_ATTENDEES} attendees")
    organizer = next((c.get("ORGANIZER") for c in comps if c.get("ORGANIZER")), None)
    agent = _param(organizer, "SCHEDULE-AGENT", "SERVER")
    uid = str(comps[0].get("UID", "")) if comps else ""
    return Meeting(cal, uid, cal_address(organizer), agent == "SERVER", attendees)


def role_of(meeting: Meeting, owner: str) -> str:
    """``organizer``, ``attendee``, ``none`` (no ORGANIZER) or ``foreign`` (the owner is
    neither the organizer nor an attendee)."""
    if not meeting.organizer:
        return "none"
    if meeting.organizer == owner:
        return "organizer"
    return "attendee" if owner in meeting.attendees else "foreign"


def invited(meeting: Meeting | None, organizer: str) -> dict[str, Any]:
    """The attendees the server schedules: not the organizer, not SCHEDULE-AGENT=CLIENT."""
    if meeting is None:
        return {}
    return {a: p for a, p in meeting.attendees.items()
            if a != organizer and _param(p, "SCHEDULE-AGENT", "SERVER") == "SERVER"}


def partstats(cal: Calendar, address: str) -> dict[str, str]:
    """``{RECURRENCE-ID: PARTSTAT}`` of ``address`` in the components that list it."""
    out: dict[str, str] = {}
    for comp in components(cal):
        for prop in _list(comp, "ATTENDEE"):
            if cal_address(prop) == address:
                out[_rid(comp)] = _param(prop, "PARTSTAT", "NEEDS-ACTION")
    return out


def clean(cal: Calendar) -> Calendar:
    """A copy without the server's scheduling parameters."""
    out = fresh(cal)
    for comp in components(out):
        for prop in [*_list(comp, "ATTENDEE"), *_list(comp, "ORGANIZER")]:
            for name in SERVER_PARAMS:
                prop.params.pop(name, None)
    return out


def essence(cal: Calendar) -> bytes:
    """What an attendee must be told about when it changes."""
    out = clean(cal)
    for comp in components(out):
        for name in PASSING:
            comp.pop(name, None)
        comp.subcomponents = [s for s in comp.subcomponents if s.name != "VALARM"]
        for prop in _list(comp, "ATTENDEE"):
            for name in ("PARTSTAT", "RSVP"):
                prop.params.pop(name, None)
    return bytes(out.to_ical())


def itip(cal: Calendar, method: str, only: str | None = None) -> Calendar:
    """An iTIP message of ``method`` from a calendar object; ``only``: the components and
    ATTENDEE of that one attendee (a REPLY, a CANCEL for one attendee)."""
    out = clean(cal)
    out.pop("METHOD", None)
    out.add("METHOD", method)
    kept = []
    for comp in out.subcomponents:
        if comp.name in SCHEDULED:
            comp.subcomponents = [s for s in comp.subcomponents if s.name != "VALARM"]
            if only is not None:
                mine = [p for p in _list(comp, "ATTENDEE") if cal_address(p) == only]
                if not mine:
                    continue
                comp.pop("ATTENDEE", None)
                for prop in mine:
                    comp.add("ATTENDEE", prop)
            comp.pop("DTSTAMP", None)
            comp.add("DTSTAMP", datetime.now(UTC))
        kept.append(comp)
    out.subcomponents = kept
    return out


def _set(comp: Component, name: str, value: Any) -> None:
    comp.pop(name, None)
    comp.add(name, value)


def _int(value: Any) -> int:
    text = str(value or "0").strip()
    return min(int(text), 0x7FFFFFFF) if text.isdigit() else 0


def with_cancellation(cal: Calendar) -> Calendar:
    """STATUS:CANCELLED and free time in every component, SEQUENCE one up."""
    out = fresh(cal)
    for comp in components(out):
        _set(comp, "STATUS", "CANCELLED")
        _set(comp, "TRANSP", "TRANSPARENT")
        _set(comp, "SEQUENCE", _int(comp.get("SEQUENCE")) + 1)
    return out


def attendee_copy(organizer_cal: Calendar, address: str, current: bytes | None) -> bytes:
    """The attendee's copy: the organizer's data with the attendee's own PARTSTAT (what
    their current copy says, NEEDS-ACTION for a new one or when the organizer reset it)."""
    cal = clean(organizer_cal)
    mine: dict[str, str] = {}
    if current is not None:
        try:
            mine = partstats(Calendar.from_ical(current), address)
        except Exception:  # a broken copy is replaced
            mine = {}
    for comp in components(cal):
        for prop in _list(comp, "ATTENDEE"):
            if cal_address(prop) != address:
                continue
            said = _param(prop, "PARTSTAT", "NEEDS-ACTION")
            kept = mine.get(_rid(comp), mine.get(""))
            prop.params["PARTSTAT"] = "NEEDS-ACTION" if kept is None or \
                said == "NEEDS-ACTION" else kept
    return bytes(cal.to_ical())


def apply_reply(current: bytes, address: str, answers: dict[str, str]) -> bytes | None:
    """The organizer's copy with the attendee's PARTSTATs of a REPLY; None when nothing
    changes (or the copy cannot be read)."""
    try:
        cal = Calendar.from_ical(current)
    except Exception:
        return None
    changed = False
    for comp in components(cal):
        answer = answers.get(_rid(comp))
        for prop in _list(comp, "ATTENDEE"):
            if answer and cal_address(prop) == address and \
                    _param(prop, "PARTSTAT", "NEEDS-ACTION") != answer:
                prop.params["PARTSTAT"] = answer
                changed = True
    return bytes(cal.to_ical()) if changed else None


def with_statuses(cal: Calendar, statuses: dict[str, str], new: set[str]) -> bytes:
    """The organizer's copy with each scheduled ATTENDEE's SCHEDULE-STATUS; the ``new``
    attendees have not answered yet, whatever the organizer's client says (RFC 6638
    3.2.1: only an attendee sets their PARTSTAT)."""
    out = fresh(cal)
    for comp in components(out):
        for prop in _list(comp, "ATTENDEE"):
            address = cal_address(prop)
            status = statuses.get(address)
            if status is not None:
                prop.params.pop("SCHEDULE-FORCE-SEND", None)
                prop.params["SCHEDULE-STATUS"] = status
            if address in new:
                prop.params["PARTSTAT"] = "NEEDS-ACTION"
    return bytes(out.to_ical())


# -- the hooks of PUT and DELETE ----------------------------------------------------------------
async def current(coll: Collection, ref: ItemRef | None) -> Meeting | None:
    """The stored version of an item as a meeting (None: new, or unreadable)."""
    if ref is None or coll.kind != "calendar":
        return None
    data = (await items.bodies(coll.mbox, [ref], "calendar")).get(ref.id)
    if data is None:
        return None
    try:
        return read_meeting(data)
    except Exception:  # what was stored before is not a valid meeting: a fresh start
        return None


async def before_put(ctx: Context, coll: Collection, ref: ItemRef | None,
                     data: bytes | Calendar, headers: Mapping[str, str] | None = None) -> Plan:
    """Check a calendar object about to be stored (``data`` already passed
    :func:`items.parse_calendar_object`, or the Calendar it read); 403 when scheduling
    forbids it."""
    if coll.kind != "calendar" or "VEVENT" not in coll.folder.components:
        return Plan("none")
    meeting = read_meeting(data)
    role = role_of(meeting, coll.owner)
    if role == "foreign":
        if meeting.server_schedules and meeting.attendees:
            raise DavError(403, tag(CALDAV, "valid-organizer"),
                           f"the ORGANIZER {meeting.organizer} is not the owner of this "
                           "calendar, who is no ATTENDEE either")
        role = "none"
    old = await current(coll, ref)
    if old is not None and role_of(old, coll.owner) == "organizer" and meeting.organizer \
            and meeting.organizer != old.organizer:
        raise DavError(403, tag(CALDAV, "allowed-organizer-scheduling-object-change"),
                       "the ORGANIZER of a meeting cannot be changed")
    reply = (headers or {}).get("schedule-reply", "T").strip().upper() != "F"
    return Plan(role, meeting, old, reply)


async def after_put(ctx: Context, coll: Collection, parsed: Parsed, message_id: int,
                    created: bool, plan: Plan | None = None) -> int | None:
    """Schedule after an item was stored by PUT. Returns the item's new change number
    when the organizer's copy was rewritten with SCHEDULE-STATUS (then the stored bytes
    are no longer the client's: PUT must not answer with an ETag), else None.
    Without ``plan`` the previous version is unknown: everyone is invited again and
    nobody taken off the list is told."""
    if coll.kind != "calendar":
        return None
    history = plan is not None or created
    try:
        if plan is None:
            kept = await coll.mbox.read(dav.renders, [message_id], "ical")
            if message_id not in kept:
                return None
            try:
                plan = await before_put(ctx, coll, None, kept[message_id])
            except DavError as exc:
                log.info("message %s of %s not scheduled: %s", message_id, coll.owner,
                         exc.message)
                return None
        meeting = plan.meeting
        if meeting is None or not meeting.server_schedules:
            return None
        if plan.role == "organizer":
            return await organize(ctx, coll, message_id, meeting, plan.old, history)
        # An attendee's new copy (an invitation imported by the client) sends nothing: the
        # client answered the organizer itself; a REPLY follows a change of the copy.
        if plan.role == "attendee" and plan.reply and plan.old is not None:
            await reply(ctx, coll.owner, meeting, plan.old)
    except Exception:  # the item is stored; scheduling problems are logged, not answered
        log.exception("scheduling after PUT of message %s of %s failed", message_id,
                      coll.owner)
    return None


async def before_delete(ctx: Context, coll: Collection, ref: ItemRef,
                        headers: Mapping[str, str] | None = None) -> None:
    """Before an item is deleted: the organizer's deletion cancels the meeting for every
    attendee, an attendee's sends a REPLY with PARTSTAT=DECLINED."""
    if coll.kind != "calendar":
        return
    try:
        meeting = await current(coll, ref)
        if meeting is None or not meeting.server_schedules or meeting.cancelled():
            return
        role = role_of(meeting, coll.owner)
        if role == "organizer":
            for address in invited(meeting, coll.owner):
                await cancel(ctx, coll.owner, meeting, address)
        elif role == "attendee" and (headers or {}).get(
                "schedule-reply", "T").strip().upper() != "F":
            declined = fresh(meeting.cal)
            for comp in components(declined):
                for prop in _list(comp, "ATTENDEE"):
                    if cal_address(prop) == coll.owner:
                        prop.params["PARTSTAT"] = "DECLINED"
            await reply(ctx, coll.owner, read_meeting(declined), meeting)
    except Exception:  # the DELETE goes on
        log.exception("scheduling before DELETE of message %s of %s failed", ref.id,
                      coll.owner)


# -- the organizer's side -----------------------------------------------------------------------
async def organize(ctx: Context, coll: Collection, message_id: int, meeting: Meeting,
                   old: Meeting | None, history: bool = True) -> int | None:
    """Invite, update and cancel after the organizer stored ``meeting`` over ``old``
    (``history`` False: whether there was an older version is not known)."""
    owner = coll.owner
    if old is not None and old.organizer != owner:
        old = None
    now, before = invited(meeting, owner), invited(old, owner)
    changed = old is None or await asyncio.to_thread(essence, old.cal) != \
        await asyncio.to_thread(essence, meeting.cal)
    request = await asyncio.to_thread(lambda: bytes(itip(meeting.cal, "REQUEST").to_ical()))
    statuses: dict[str, str] = {}
    for address, prop in now.items():
        forced = _param(prop, "SCHEDULE-FORCE-SEND") == "REQUEST"
        if address in before and not changed and not forced:
            continue
        statuses[address] = await invite(ctx, owner, meeting, address, request)
    for address in before.keys() - now.keys():
        assert old is not None
        await cancel(ctx, owner, old, address)
    if not statuses:
        return None
    data = await asyncio.to_thread(with_statuses, meeting.cal, statuses,
                                   set(now) - set(before) if history else set())
    return await rewrite(coll, message_id, data)


async def invite(ctx: Context, organizer: str, meeting: Meeting, address: str,
                 message: bytes) -> str:
    """Send the meeting (the iTIP REQUEST ``message``) to one attendee; the
    SCHEDULE-STATUS."""

    def copy(current_copy: bytes | None) -> bytes:
        return attendee_copy(meeting.cal, address, current_copy)

    folders = await attendee_folders(ctx, address)
    return await schedule_boxes.deliver(ctx, organizer, address, "REQUEST", message,
                                        meeting.summary, copy, meeting.uid, folders)


async def cancel(ctx: Context, organizer: str, meeting: Meeting, address: str) -> str:
    """Tell one attendee the meeting is off; their copy is marked cancelled."""
    message = await asyncio.to_thread(
        lambda: bytes(itip(with_cancellation(meeting.cal), "CANCEL", only=address).to_ical()))

    def copy(current_copy: bytes | None) -> bytes | None:
        if current_copy is None:
            return None
        try:
            return bytes(with_cancellation(Calendar.from_ical(current_copy)).to_ical())
        except Exception:
            return None

    folders = await attendee_folders(ctx, address)
    return await schedule_boxes.deliver(ctx, organizer, address, "CANCEL", message,
                                        meeting.summary, copy, meeting.uid, folders)


async def rewrite(coll: Collection, message_id: int, data: bytes) -> int | None:
    """Store new bytes for an item of ``coll`` under its name; its new change number."""
    rows = await coll.mbox.read(dav.items, coll.folder.id, [message_id])
    if not rows:
        return None
    message = await asyncio.to_thread(schedule_boxes.as_message, data)
    _, cn = await coll.mbox.write(dav.save_item, coll.folder.id, message_id, message,
                                  items.name_of(rows[0], "calendar"), "ical", data)
    return int(cn)


# -- the attendee's side ------------------------------------------------------------------------
async def reply(ctx: Context, attendee: str, meeting: Meeting, old: Meeting | None) -> None:
    """Tell the organizer the attendee's PARTSTATs when they changed."""
    answers = partstats(meeting.cal, attendee)
    if not answers:
        return
    overall = answers.get("", next(iter(answers.values())))
    subject = schedule_boxes.subject_of(overall, meeting.summary)
    message = bytes(itip(meeting.cal, "REPLY", only=attendee).to_ical())
    organizer = meeting.organizer
    kind = await schedule_boxes.recipient_kind(ctx, organizer)
    if kind == "internal":
        told: list[bool] = []

        def update(organizer_copy: bytes | None) -> bytes | None:
            data = apply_reply(organizer_copy, attendee, answers) if organizer_copy else None
            told.append(data is not None)
            return data

        try:
            folders = await calendar_folders(ctx, organizer)
            await schedule_boxes.write_copy(ctx, organizer, meeting.uid, update, folders,
                                            received_by=None)
            if any(told):
                await schedule_boxes.to_inbox(ctx, organizer, message, attendee, subject)
        except (StoreError, NotFound, ValueError) as exc:
            log.warning("REPLY of %s to %s not delivered: %s", attendee, organizer, exc)
    elif kind == "external":
        before = partstats(old.cal, attendee) if old is not None else {}
        if answers != before and (old is not None or overall != "NEEDS-ACTION"):
            text = f"{subject}\r\n\r\n{attendee} answered: {overall}.\r\n"
            await schedule_boxes.send_imip(ctx, attendee, organizer, message, "REPLY",
                                           subject, text)


async def calendar_folders(ctx: Context, address: str) -> list[int]:
    """The event folders of a store, its Calendar first: where its copy of a meeting is
    looked for (a copy is made in the Calendar)."""
    mbox = await ctx.host.store.open(address)
    found = await mbox.read(collections.listing, "calendars", address)
    first = schedule_boxes.CALENDAR
    return [first] + [i.id for i in found if i.component == "VEVENT" and i.id != first]


async def attendee_folders(ctx: Context, address: str) -> list[int] | None:
    """:func:`calendar_folders` of an internal user; None for anyone else."""
    if await schedule_boxes.recipient_kind(ctx, address) != "internal":
        return None
    return await calendar_folders(ctx, address)
