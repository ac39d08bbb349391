"""Free/busy from appointments: busy periods and VFREEBUSY.

:func:`free_busy` expands a calendar folder's appointments over a window
(:mod:`gateway.convert.expand`, so exceptions and deleted instances count)
and merges the busy time by type, PidLidBusyStatus deciding: tentative →
``BUSY-TENTATIVE``, busy → ``BUSY``, out of office → ``BUSY-UNAVAILABLE``
(free and working-elsewhere time is free). Where periods of several types
overlap, the strongest type wins (unavailable, then busy, then tentative), so
the result is a sorted list of non-overlapping periods.
:func:`render_vfreebusy` writes them as an iCalendar VFREEBUSY;
:func:`folder_free_busy` loads the appointments of a store folder first.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

from icalendar import Calendar, FreeBusy, vPeriod

from gateway.convert.expand import occurrences
from gateway.convert.ical_out import PRODID
from gateway.store import NewMessage, tables
from gateway.store import tags as T

FBTYPES = {1: "BUSY-TENTATIVE", 2: "BUSY", 3: "BUSY-UNAVAILABLE"}
RANK = {"BUSY-TENTATIVE": 1, "BUSY": 2, "BUSY-UNAVAILABLE": 3}
_CDO = {"FREE": 0, "TENTATIVE": 1, "BUSY": 2, "OOF": 3, "WORKINGELSEWHERE": 4}
Period = tuple[datetime, datetime, str]
_DAY = timedelta(days=1)


def _utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _busy(component: Any) -> int:
    if component is None:
        return 2
    if str(component.get("STATUS", "")).upper() == "CANCELLED":
        return 0
    cdo = str(component.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper()
    if cdo in _CDO:
        return _CDO[cdo]
    return 0 if str(component.get("TRANSP", "")).upper() == "TRANSPARENT" else 2


def merge(periods: Iterable[Period]) -> list[Period]:
    """Non-overlapping, sorted periods; the strongest type wins where they overlap."""
    items = [(s, e, t) for s, e, t in periods if e > s and t in RANK]
    cuts = sorted({p for s, e, _ in items for p in (s, e)})
    out: list[Period] = []
    for lo, hi in pairwise(cuts):
        types = [t for s, e, t in items if s < hi and e > lo]
        if not types:
            continue
        kind = max(types, key=RANK.__getitem__)
        if out and out[-1][1] == lo and out[-1][2] == kind:
            out[-1] = (out[-1][0], hi, kind)
        else:
            out.append((lo, hi, kind))
    return out


def free_busy(messages: Iterable[NewMessage] | Calendar, start: datetime | date,
              end: datetime | date, *, max_instances: int = 10_000) -> list[Period]:
    """Busy periods ``(start, end, FBTYPE)`` in UTC, clipped to the window."""
    lo, hi = _utc(start), _utc(end)
    source = messages if isinstance(messages, Calendar) else [
        m for m in messages if not str(m.props.get(T.PidTagMessageClass, "")).startswith(
            "IPM.Task")]
    periods = []
    for inst in occurrences(source, lo, hi, max_instances=max_instances):
        kind = FBTYPES.get(_busy(inst.component))
        if kind:
            periods.append((max(_utc(inst.start), lo), min(_utc(inst.end), hi), kind))
    return merge(periods)


def render_vfreebusy(periods: Iterable[Period], start: datetime | date, end: datetime | date,
                     *, attendee: str | None = None, organizer: str | None = None,
                     uid: str | None = None, method: str | None = None,
                     stamp: datetime | None = None) -> bytes:
    """A VCALENDAR with one VFREEBUSY: one FREEBUSY line per type, periods in order."""
    cal = Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    if method:
        cal.add("METHOD", method)
    fb = FreeBusy()
    lo, hi = _utc(start), _utc(end)
    fb.add("UID", uid or f"freebusy-{lo:%Y%m%dT%H%M%SZ}-{hi:%Y%m%dT%H%M%SZ}")
    fb.add("DTSTAMP", stamp or lo)
    fb.add("DTSTART", lo)
    fb.add("DTEND", hi)
    if organizer:
        fb.add("ORGANIZER", f"mailto:{organizer}")
    if attendee:
        fb.add("ATTENDEE", f"mailto:{attendee}")
    ordered = merge(periods)
    for kind in ("BUSY", "BUSY-TENTATIVE", "BUSY-UNAVAILABLE"):
        spans = [vPeriod((s, e)) for s, e, t in ordered if t == kind]
        if spans:
            fb.add("FREEBUSY", spans, parameters={"FBTYPE": kind})
    cal.add_component(fb)
    return bytes(cal.to_ical())


FREEBUSY_KEYS = (
    T.PidTagMessageClass, T.PidLidAppointmentStartWhole, T.PidLidAppointmentEndWhole,
    T.PidLidAppointmentSubType, T.PidLidBusyStatus, T.PidLidAppointmentStateFlags,
    T.PidLidRecurring, T.PidLidAppointmentRecur, T.PidLidTimeZoneStruct,
    T.PidLidTimeZoneDescription, T.PidLidAppointmentTimeZoneDefinitionRecur,
    T.PidLidAppointmentTimeZoneDefinitionStartDisplay, T.PidLidCleanGlobalObjectId)
"""What free/busy needs of an appointment; exceptions' times and busy status are in
the recurrence blob, so attachments are not read."""


async def folder_free_busy(mbox: Any, folder_id: int, start: datetime | date,
                           end: datetime | date, *, limit: int = 5000) -> list[Period]:
    """:func:`free_busy` of a store folder's appointments that can touch the window
    (from their clip range), reading at most ``limit`` rows."""
    lo, hi = _utc(start), _utc(end)
    columns: list[Any] = [T.PidTagMessageClass, T.PidLidClipStart, T.PidLidClipEnd,
               T.PidLidAppointmentStartWhole, T.PidLidAppointmentEndWhole]
    table = await tables.contents_table(mbox, folder_id, columns, limit=limit)
    messages = []
    for row in table.rows:
        if not str(row.get(T.PidTagMessageClass, "")).startswith("IPM.Appointment"):
            continue
        first = row.get(T.PidLidClipStart) or row.get(T.PidLidAppointmentStartWhole)
        last = row.get(T.PidLidClipEnd) or row.get(T.PidLidAppointmentEndWhole)
        if first is None or last is None or (first < hi and last + _DAY >= lo):
            props = await mbox.message(row["id"], FREEBUSY_KEYS)
            messages.append(NewMessage(props={k: v for k, v in props.items() if v is not None}))
    return free_busy(messages, lo, hi)
