"""iCalendar VJOURNAL ⇄ journal entries (MS-OXOJRNL ``IPM.Activity`` messages).

:func:`journal_message` turns the VJOURNALs of one UID into a journal entry, for
:mod:`~gateway.convert.ical_in`: SUMMARY is the subject, DESCRIPTION the body (several
DESCRIPTIONs, which RFC 5545 allows on a journal, joined by blank lines), DTSTART the
start (``PidLidLogStart``), CLASS the sensitivity, CATEGORIES the keywords and the UID the
global object id, as for events and tasks; the entry's type is "Note". RFC 5545 gives a
journal no DTEND or DURATION but Outlook's entries have an end: one sent is kept
(``PidLidLogEnd``, ``PidLidLogDuration``), otherwise the entry ends where it starts. A
journal dated by a DATE starts at midnight UTC of that day and lasts whole days, which is
how :func:`to_vjournal` (for :mod:`~gateway.convert.ical_out`) tells it from a timed one
and writes DTSTART back as a DATE. Journal entries do not recur: RRULE, RDATE and
overrides (RECURRENCE-ID) are dropped with a warning.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from icalendar import Component, Journal
from icalendar.prop import vBroken

from gateway.convert import goid
from gateway.convert.ical_event import EventReader, _value
from gateway.store import NewMessage
from gateway.store import tags as T

MESSAGE_CLASS = "IPM.Activity"
LOG_TYPE = "Note"
CLASSES = {0: "PUBLIC", 1: "PRIVATE", 2: "PRIVATE", 3: "CONFIDENTIAL"}
DAY = timedelta(days=1)
MAX_MINUTES = 0x7FFFFFFF


def is_journal(message_class: str) -> bool:
    """Whether a message class is a journal entry's (MAPI classes ignore case)."""
    lowered = message_class.lower()
    return lowered == "ipm.activity" or lowered.startswith("ipm.activity.")


# --- import ------------------------------------------------------------------------------------

def journal_message(reader: EventReader, comps: list[Component]) -> NewMessage:
    """The journal entry for the VJOURNALs of one UID (the master with the highest
    SEQUENCE, the last of those; an override when there is no master)."""
    masters = [c for c in comps if c.get("RECURRENCE-ID") is None] or comps
    comp = max(reversed(masters), key=_sequence)
    if len(comps) > 1:
        reader.warn(f"{len(comps)} VJOURNALs with one UID: one kept, journal entries "
                    "do not recur")
    if comp.get("RRULE") is not None or comp.get("RDATE") is not None:
        reader.warn("journal recurrence not kept: journal entries do not recur")
    msg = NewMessage()
    p = msg.props
    p[T.PidTagMessageClass] = MESSAGE_CLASS
    reader.common(comp, p)
    descriptions = comp.get("DESCRIPTION")
    if isinstance(descriptions, list):
        texts = [str(d) for d in descriptions if not isinstance(d, vBroken)]
        if texts:
            p[T.PidTagBody] = "\n\n".join(texts)
    p[T.PidLidLogType] = LOG_TYPE
    p[T.PidLidLogTypeDesc] = LOG_TYPE
    p[T.PidLidLogFlags] = 0
    try:
        _times(reader, comp, p)
    except (ValueError, TypeError, OverflowError) as exc:
        reader.warn(f"VJOURNAL times not kept: {exc}")
        for tag in (T.PidLidLogStart, T.PidLidLogEnd, T.PidLidLogDuration):
            p.pop(tag, None)
    p[T.PidLidGlobalObjectId] = goid.uid_to_goid(reader.uid)
    return msg


def _times(reader: EventReader, comp: Component, p: dict[Any, Any]) -> None:
    start_prop = _value(comp, "DTSTART")
    if start_prop is None:
        return  # RFC 5545 allows a journal without a date
    value = start_prop.dt
    if not isinstance(value, date):
        raise ValueError(f"DTSTART is not a date or a date-time: {value!r}")
    all_day = not isinstance(value, datetime)
    if all_day:
        start = datetime.combine(value, time(), UTC)
    else:
        start = reader.aware(value, reader.zone_of(start_prop)[0]).astimezone(UTC)
    end_prop, duration = _value(comp, "DTEND"), _value(comp, "DURATION")
    if end_prop is not None and isinstance(end_prop.dt, date):
        if all_day:
            end = datetime.combine(_day_of(end_prop.dt), time(), UTC)
        else:
            end = reader.aware(end_prop.dt, reader.zone_of(end_prop)[0]).astimezone(UTC)
    elif duration is not None and isinstance(getattr(duration, "dt", None), timedelta):
        step = duration.dt
        end = start + (max(DAY, step - step % DAY) if all_day else step)
    else:
        end = start + (DAY if all_day else timedelta(0))
    if end < start or (all_day and end == start):
        reader.warn("journal end before its start: end set to the start")
        end = start + (DAY if all_day else timedelta(0))
    p[T.PidLidLogStart] = start
    p[T.PidLidLogEnd] = end
    p[T.PidLidLogDuration] = min(int((end - start).total_seconds() // 60), MAX_MINUTES)


def _day_of(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _sequence(comp: Component) -> int:
    value = _value(comp, "SEQUENCE")
    return int(str(value)) if value is not None and str(value).isdigit() else 0


# --- export ------------------------------------------------------------------------------------

def to_vjournal(m: NewMessage, uid: str, stamp: datetime) -> Journal:
    """The VJOURNAL of a journal entry; ``uid`` and ``stamp`` (DTSTAMP) as the other
    components of :mod:`~gateway.convert.ical_out` have them."""
    p = m.props
    journal = Journal()
    journal.add("UID", uid)
    journal.add("DTSTAMP", stamp)
    start, end = p.get(T.PidLidLogStart), p.get(T.PidLidLogEnd)
    if isinstance(start, datetime):
        start = start.astimezone(UTC)
        if _whole_days(start, end):
            journal.add("DTSTART", start.date())
        else:
            journal.add("DTSTART", start)
    if p.get(T.PidTagSubject) is not None:
        journal.add("SUMMARY", str(p[T.PidTagSubject]))
    if p.get(T.PidTagBody):
        journal.add("DESCRIPTION", str(p[T.PidTagBody]))
    journal.add("CLASS", CLASSES.get(int(p.get(T.PidTagSensitivity, 0) or 0), "PUBLIC"))
    if p.get(T.PidNameKeywords):
        journal.add("CATEGORIES", [str(k) for k in p[T.PidNameKeywords]])
    for tag, name in ((T.PidTagCreationTime, "CREATED"),
                      (T.PidTagLastModificationTime, "LAST-MODIFIED")):
        if isinstance(p.get(tag), datetime):
            journal.add(name, p[tag].astimezone(UTC))
    if p.get(T.PidLidAppointmentSequence) is not None:
        journal.add("SEQUENCE", int(p[T.PidLidAppointmentSequence]))
    return journal


def _whole_days(start: datetime, end: Any) -> bool:
    """A start at midnight UTC and an end a whole number of days (at least one) later: a
    journal dated by a DATE (see the module's docstring)."""
    if start.astimezone(UTC).time() != time() or not isinstance(end, datetime):
        return False
    length = end.astimezone(UTC) - start
    return length >= DAY and length % DAY == timedelta(0)
