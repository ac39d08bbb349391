"""iCalendar → appointments, meeting messages, tasks and journal entries (MS-OXCICAL import).

:func:`parse_calendar` turns a VCALENDAR into one :class:`NewMessage` per UID:
VEVENTs become ``IPM.Appointment`` (``IPM.Schedule.Meeting.*`` under METHOD
REQUEST, REPLY or CANCEL), VTODOs ``IPM.Task``, VJOURNALs journal entries
(``IPM.Activity``, :mod:`~gateway.convert.ical_journal`). Overrides (RECURRENCE-ID) are
folded into the master's recurrence blob and exception attachments as
MS-OXOCAL 2.2.10 describes. Malformed input never raises: what is understood is
returned and the rest is reported (:func:`parse_calendar_report`) or logged.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import x_wr_timezone
from icalendar import Calendar, Component

from gateway.convert import goid, ical_journal
from gateway.convert import recurrence as R
from gateway.convert import timezones as Z
from gateway.convert.ical_event import _as_utc_label, _text, _utc, _value
from gateway.convert.ical_series import (
    EXCEPTION_CLASS,
    MAX_EXCEPTIONS,
    SeriesReader,
    _rule_of,
    _until_local,
    exception_attachment,
)
from gateway.store import NewMessage
from gateway.store import tags as T

__all__ = [
    "EXCEPTION_CLASS",
    "MAX_BYTES",
    "MAX_COMPONENTS",
    "MAX_EXCEPTIONS",
    "ParseResult",
    "exception_attachment",
    "parse_calendar",
    "parse_calendar_report",
]

log = logging.getLogger(__name__)

MAX_COMPONENTS = 10_000
MAX_BYTES = 32 * 1024 * 1024
TASK_STATUS = {"NEEDS-ACTION": 0, "IN-PROCESS": 1, "COMPLETED": 2, "CANCELLED": 4}


@dataclass
class ParseResult:
    messages: list[NewMessage] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_calendar(data: bytes | str, *, default_tz: str = "UTC",
                   max_components: int = MAX_COMPONENTS) -> list[NewMessage]:
    """One message per UID; problems are logged (see :func:`parse_calendar_report`)."""
    result = parse_calendar_report(data, default_tz=default_tz, max_components=max_components)
    for error in result.errors:
        log.warning("iCalendar import: %s", error)
    return result.messages


def parse_calendar_report(data: bytes | str, *, default_tz: str = "UTC",
                          max_components: int = MAX_COMPONENTS,
                          parsed: list[Calendar] | None = None) -> ParseResult:
    """:func:`parse_calendar` with the problems returned; ``parsed``: the calendars of
    ``data`` already read by the caller (icalendar's parser is the costly part)."""
    result = ParseResult()
    calendars = parsed if parsed is not None else _read(data, result.errors)
    fallback = Z.zone(default_tz) or UTC
    budget = max_components
    for cal in calendars:
        try:
            cal = x_wr_timezone.to_standard(cal)
        except Exception as exc:  # an unknown X-WR-TIMEZONE: times stay as they are
            result.errors.append(f"X-WR-TIMEZONE not applied: {exc}")
        method = str(cal.get("METHOD", "") or "").upper() or None
        groups: dict[str, list[Component]] = {}
        for comp in cal.subcomponents:
            if comp.name not in ("VEVENT", "VTODO", "VJOURNAL"):
                continue
            if budget <= 0:
                result.errors.append(f"more than {max_components} components: rest ignored")
                break
            budget -= 1
            for name, problem in getattr(comp, "errors", []):
                result.errors.append(f"{comp.name} {name or ''}: {problem}")
            uid = _text(comp, "UID") or "gw-" + hashlib.sha1(comp.to_ical()).hexdigest()
            groups.setdefault(uid, []).append(comp)
        for uid, comps in groups.items():
            ctx = _Context(uid, method, fallback, result.errors)
            try:
                result.messages.extend(ctx.convert(comps))
            except Exception as exc:  # a converter bug must not lose the other UIDs
                log.exception("iCalendar import of %s failed", uid)
                result.errors.append(f"{uid}: not converted: {exc!r}")
    return result


def _read(data: bytes | str, errors: list[str]) -> list[Calendar]:
    if len(data) > MAX_BYTES:
        errors.append(f"calendar of {len(data)} bytes cut to {MAX_BYTES}")
        data = data[:MAX_BYTES]
    try:
        return list(Calendar.from_ical(data, multiple=True))
    except Exception as exc:  # icalendar raises many kinds on garbage
        errors.append(f"not an iCalendar object as a whole ({exc}): read by component")
        return _salvage(data, errors)


_BLOCK = re.compile(r"^BEGIN:(VTIMEZONE|VEVENT|VTODO|VJOURNAL)\r?$(.*?)^END:\1\r?$",
                    re.M | re.S | re.I)
_ALARM = re.compile(r"^BEGIN:VALARM\r?$.*?^END:VALARM\r?\n?", re.M | re.S | re.I)


def _salvage(data: bytes | str, errors: list[str]) -> list[Calendar]:
    """Read what can be read of a calendar icalendar rejects as a whole: each VEVENT,
    VTODO or VJOURNAL on its own (without its alarms if need be), with every VTIMEZONE."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = re.sub(r"\r?\n[ \t]", "", text)
    method = re.search(r"^METHOD:(\w+)", text, re.M | re.I)
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + (
        f"METHOD:{method.group(1)}\r\n" if method else "")
    blocks = [m.group(0) for m in _BLOCK.finditer(text)]
    zones = "\r\n".join(b for b in blocks if b[6:15].upper() == "VTIMEZONE")
    found = []
    for block in blocks:
        if block[6:15].upper() == "VTIMEZONE":
            continue
        for attempt in (block, _ALARM.sub("", block)):
            try:
                found.append(Calendar.from_ical(
                    f"{head}{zones}\r\n{attempt}\r\nEND:VCALENDAR\r\n"))
                break
            except Exception as exc:  # this component is beyond repair
                problem = exc
        else:
            errors.append(f"component dropped: {problem}")
    return found


class _Context(SeriesReader):
    """The conversion of one UID: its master (event or task) and overrides."""

    # --- the whole UID ---------------------------------------------------------------------

    def convert(self, comps: list[Component]) -> list[NewMessage]:
        journals = [c for c in comps if c.name == "VJOURNAL"]
        if journals:
            rest = [c for c in comps if c.name != "VJOURNAL"]
            return [ical_journal.journal_message(self, journals),
                    *(self.convert(rest) if rest else [])]
        masters = [c for c in comps if c.get("RECURRENCE-ID") is None]
        overrides = [c for c in comps if c.get("RECURRENCE-ID") is not None]
        if len(masters) > 1:
            self.warn(f"{len(masters)} components without RECURRENCE-ID: the latest kept")
        if not masters:
            return [m for m in (self.single(c, instance=True) for c in overrides) if m]
        master = max(reversed(masters), key=_sequence)
        if master.name == "VTODO":
            return [self.task(master)]
        message = self.single(master)
        if message is None:
            return []
        if master.get("RRULE") is not None or overrides:
            self.recur(message, master, overrides)
        return [message]

    # --- tasks ---------------------------------------------------------------------------------

    def task(self, comp: Component) -> NewMessage:
        msg = NewMessage()
        p = msg.props
        p[T.PidTagMessageClass] = "IPM.Task"
        self.common(comp, p)
        tz = self.fallback
        start_prop, due_prop = _value(comp, "DTSTART"), _value(comp, "DUE")
        start = due = None
        if start_prop is not None:
            tz = self.zone_of(start_prop)[0]
            start = self.aware(start_prop.dt, tz)
            p[T.PidLidTaskStartDate] = _as_utc_label(start.astimezone(tz).date())
            if isinstance(start_prop.dt, datetime):
                p[T.PidLidCommonStart] = _utc(start)
        if due_prop is not None:
            due = self.aware(due_prop.dt, self.zone_of(due_prop)[0])
            p[T.PidLidTaskDueDate] = _as_utc_label(due.astimezone(tz).date())
            if isinstance(due_prop.dt, datetime):
                p[T.PidLidCommonEnd] = _utc(due)
        status = (_text(comp, "STATUS") or "NEEDS-ACTION").upper()
        completed = _value(comp, "COMPLETED")
        percent = _value(comp, "PERCENT-COMPLETE")
        done = status == "COMPLETED" or completed is not None
        p[T.PidLidTaskStatus] = 2 if done else TASK_STATUS.get(status, 0)
        p[T.PidLidTaskComplete] = done
        if percent is not None and str(percent).isdigit():
            p[T.PidLidPercentComplete] = min(int(str(percent)), 100) / 100
        else:
            p[T.PidLidPercentComplete] = 1.0 if done else 0.0
        if completed is not None and isinstance(completed.dt, date):
            p[T.PidLidTaskDateCompleted] = _as_utc_label(
                self.aware(completed.dt, UTC).astimezone(tz).date())
        anchor = due or start
        if anchor is not None:
            self.reminder(comp, p, _utc(anchor), _utc(anchor))
        rule = _rule_of(comp)
        if rule is not None and start is not None:
            try:
                local = start.astimezone(tz).replace(tzinfo=None)
                pattern = R.pattern_from_rule(dict(rule), local)
                R.set_range(pattern, local, _until_local(rule, tz))
                p[T.PidLidTaskRecurrence] = R.build_pattern(pattern)
                p[T.PidLidTaskFRecurring] = True
            except (R.Unsupported, ValueError, OverflowError) as exc:
                self.warn(f"task recurrence not kept: {exc}")
        p[T.PidLidGlobalObjectId] = goid.uid_to_goid(self.uid)
        return msg


def _sequence(comp: Component) -> int:
    value = _value(comp, "SEQUENCE")
    return int(str(value)) if value is not None and str(value).isdigit() else 0
