"""MS-OXOCAL recurrence blobs and their RRULE equivalents.

- :class:`RecurrencePattern` (2.2.1.44.1; PidLidTaskRecurrence is one) and
  :class:`AppointmentRecurrence` (2.2.1.44.5, PidLidAppointmentRecur) with its
  ExceptionInfo / ExtendedException entries (2.2.1.44.2-4): :func:`parse_*`
  and :func:`build_*`, byte for byte; every length and count in a blob is checked
  against what is left of it, so hostile blobs cost no more than their size.
- :func:`pattern_from_rule` / :func:`rule_from_pattern`: the RRULE parts
  (FREQ, INTERVAL, BYDAY, BYMONTHDAY, BYSETPOS, BYMONTH, WKST) that MAPI can
  express, as MS-OXCICAL 2.1.3.2.2 lists them; :func:`set_range` fills
  StartDate, EndDate and OccurrenceCount by walking the occurrences (bounded).

Times in the blobs are minutes since 1601-01-01 in the appointment's own time
zone; this module works in naive local datetimes and leaves zones to callers.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import islice
from typing import Any

from dateutil import rrule as du

FREQ_DAILY, FREQ_WEEKLY, FREQ_MONTHLY, FREQ_YEARLY = 0x200A, 0x200B, 0x200C, 0x200D
PT_DAY, PT_WEEK, PT_MONTH, PT_MONTHNTH, PT_MONTHEND = 0, 1, 2, 3, 4
PT_HJMONTH, PT_HJMONTHNTH, PT_HJMONTHEND = 0x0A, 0x0B, 0x0C
END_DATE, END_COUNT, END_NEVER, END_NEVER2 = 0x2021, 0x2022, 0x2023, 0xFFFFFFFF
NO_END_DATE = 0x5AE980DF
"""EndDate of a series that never ends: 4500-12-31 23:59."""
ARO_SUBJECT, ARO_MEETINGTYPE, ARO_REMINDERDELTA, ARO_REMINDER = 0x1, 0x2, 0x4, 0x8
ARO_LOCATION, ARO_BUSYSTATUS, ARO_ATTACHMENT, ARO_SUBTYPE = 0x10, 0x20, 0x40, 0x80
ARO_APPTCOLOR, ARO_EXCEPTIONAL_BODY = 0x100, 0x200
MAX_WALK = 50_000
"""Most occurrences walked to find a series' last date; past it the end is left open."""

EPOCH = datetime(1601, 1, 1)
DAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")
_BYDAY = re.compile(r"([+-]?\d{1,2})?(SU|MO|TU|WE|TH|FR|SA)")
_MONTHLY_TYPES = (PT_MONTH, PT_MONTHEND, PT_HJMONTH, PT_HJMONTHEND)


class RecurrenceError(ValueError):
    """A recurrence blob that cannot be read."""


class Unsupported(ValueError):
    """An RRULE that MS-OXOCAL patterns cannot express."""


def to_minutes(value: datetime | date) -> int:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return int((value.replace(tzinfo=None) - EPOCH).total_seconds() // 60)


def from_minutes(minutes: int) -> datetime:
    return EPOCH + timedelta(minutes=minutes)


@dataclass
class RecurrencePattern:
    frequency: int = FREQ_DAILY
    pattern_type: int = PT_DAY
    calendar_type: int = 0
    first_datetime: int = 0
    period: int = 1440
    sliding: int = 0
    days: int = 0
    """Day-of-week mask (Sunday 0x01 … Saturday 0x40) of Week and MonthNth patterns."""
    day_of_month: int = 0
    nth: int = 0
    """MonthNth: 1-4, or 5 for the last."""
    end_type: int = END_NEVER
    occurrence_count: int = 10
    first_dow: int = 0
    deleted: list[int] = field(default_factory=list)
    modified: list[int] = field(default_factory=list)
    start_date: int = 0
    end_date: int = NO_END_DATE
    reader_version: int = 0x3004
    writer_version: int = 0x3004


@dataclass
class ExceptionInfo:
    start: int
    end: int
    original_start: int
    subject: str | None = None
    meeting_type: int | None = None
    reminder_delta: int | None = None
    reminder_set: int | None = None
    location: str | None = None
    busy_status: int | None = None
    attachment: int | None = None
    subtype: int | None = None
    color: int | None = None
    exceptional_body: bool = False
    change_highlight: int | None = None
    reserved_ee1: bytes = b""
    reserved_ee2: bytes = b""

    @property
    def flags(self) -> int:
        bits = [(self.subject, ARO_SUBJECT), (self.meeting_type, ARO_MEETINGTYPE),
                (self.reminder_delta, ARO_REMINDERDELTA), (self.reminder_set, ARO_REMINDER),
                (self.location, ARO_LOCATION), (self.busy_status, ARO_BUSYSTATUS),
                (self.attachment, ARO_ATTACHMENT), (self.subtype, ARO_SUBTYPE),
                (self.color, ARO_APPTCOLOR)]
        flags = sum(bit for value, bit in bits if value is not None)
        return flags | (ARO_EXCEPTIONAL_BODY if self.exceptional_body else 0)


@dataclass
class AppointmentRecurrence:
    pattern: RecurrencePattern
    start_offset: int = 0
    end_offset: int = 0
    exceptions: list[ExceptionInfo] = field(default_factory=list)
    reader_version2: int = 0x3006
    writer_version2: int = 0x3009
    reserved1: bytes = b""
    reserved2: bytes = b""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise RecurrenceError(f"blob truncated at {self.pos} (+{size} of {len(self.data)})")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def u16(self) -> int:
        return int(struct.unpack("<H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def dates(self) -> list[int]:
        count = self.u32()
        if count * 4 > len(self.data) - self.pos:
            raise RecurrenceError(f"{count} dates do not fit in the blob")
        return list(struct.unpack(f"<{count}I", self.take(count * 4)))


def _read_pattern(r: _Reader) -> RecurrencePattern:
    p = RecurrencePattern(reader_version=r.u16(), writer_version=r.u16(), frequency=r.u16(),
                          pattern_type=r.u16(), calendar_type=r.u16(),
                          first_datetime=r.u32(), period=r.u32(), sliding=r.u32())
    if p.pattern_type in (PT_WEEK,):
        p.days = r.u32()
    elif p.pattern_type in _MONTHLY_TYPES:
        p.day_of_month = r.u32()
    elif p.pattern_type in (PT_MONTHNTH, PT_HJMONTHNTH):
        p.days, p.nth = r.u32(), r.u32()
    elif p.pattern_type != PT_DAY:
        raise RecurrenceError(f"unknown pattern type {p.pattern_type:#x}")
    p.end_type, p.occurrence_count, p.first_dow = r.u32(), r.u32(), r.u32()
    p.deleted, p.modified = r.dates(), r.dates()
    p.start_date, p.end_date = r.u32(), r.u32()
    return p


def parse_pattern(blob: bytes) -> RecurrencePattern:
    """A RecurrencePattern (e.g. PidLidTaskRecurrence)."""
    return _read_pattern(_Reader(blob))


def build_pattern(p: RecurrencePattern) -> bytes:
    out = [struct.pack("<5H3I", p.reader_version, p.writer_version, p.frequency,
                       p.pattern_type, p.calendar_type, p.first_datetime, p.period, p.sliding)]
    if p.pattern_type == PT_WEEK:
        out.append(struct.pack("<I", p.days))
    elif p.pattern_type in _MONTHLY_TYPES:
        out.append(struct.pack("<I", p.day_of_month))
    elif p.pattern_type in (PT_MONTHNTH, PT_HJMONTHNTH):
        out.append(struct.pack("<II", p.days, p.nth))
    out.append(struct.pack("<III", p.end_type, p.occurrence_count, p.first_dow))
    for dates in (p.deleted, p.modified):
        out.append(struct.pack(f"<I{len(dates)}I", len(dates), *dates))
    out.append(struct.pack("<II", p.start_date, p.end_date))
    return b"".join(out)


def _ansi(r: _Reader) -> str:
    r.u16()  # the length with a terminator, which the string does not carry
    return r.take(r.u16()).decode("cp1252", "replace")


def parse_appointment(blob: bytes) -> AppointmentRecurrence:
    """PidLidAppointmentRecur: the pattern, the time offsets and the exceptions."""
    r = _Reader(blob)
    rec = AppointmentRecurrence(_read_pattern(r), reader_version2=r.u32(),
                                writer_version2=r.u32(), start_offset=r.u32(),
                                end_offset=r.u32())
    count = r.u16()
    if count * 14 > len(blob) - r.pos:
        raise RecurrenceError(f"{count} exceptions do not fit in the blob")
    for _ in range(count):
        e = ExceptionInfo(r.u32(), r.u32(), r.u32())
        flags = r.u16()
        e.subject = _ansi(r) if flags & ARO_SUBJECT else None
        e.meeting_type = r.u32() if flags & ARO_MEETINGTYPE else None
        e.reminder_delta = r.u32() if flags & ARO_REMINDERDELTA else None
        e.reminder_set = r.u32() if flags & ARO_REMINDER else None
        e.location = _ansi(r) if flags & ARO_LOCATION else None
        e.busy_status = r.u32() if flags & ARO_BUSYSTATUS else None
        e.attachment = r.u32() if flags & ARO_ATTACHMENT else None
        e.subtype = r.u32() if flags & ARO_SUBTYPE else None
        e.color = r.u32() if flags & ARO_APPTCOLOR else None
        e.exceptional_body = bool(flags & ARO_EXCEPTIONAL_BODY)
        rec.exceptions.append(e)
    rec.reserved1 = r.take(r.u32())
    for e in rec.exceptions:
        if rec.writer_version2 >= 0x3009:
            size = r.u32()
            value = r.take(size)
            e.change_highlight = int.from_bytes(value[:4], "little") if size >= 4 else None
        e.reserved_ee1 = r.take(r.u32())
        if e.subject is not None or e.location is not None:
            r.take(12)  # start, end and original start again
            if e.subject is not None:
                e.subject = r.take(2 * r.u16()).decode("utf-16-le", "replace")
            if e.location is not None:
                e.location = r.take(2 * r.u16()).decode("utf-16-le", "replace")
            e.reserved_ee2 = r.take(r.u32())
    rec.reserved2 = r.take(r.u32()) if r.pos < len(blob) else b""
    return rec


def _ansi_out(text: str) -> bytes:
    data = text.encode("cp1252", "replace")[:0xFFFE]
    return struct.pack("<HH", len(data) + 1, len(data)) + data


def _wide_out(text: str) -> bytes:
    data = text.encode("utf-16-le", "surrogatepass")[:0x1FFFE]
    return struct.pack("<H", len(data) // 2) + data


def build_appointment(rec: AppointmentRecurrence) -> bytes:
    out = [build_pattern(rec.pattern),
           struct.pack("<4IH", rec.reader_version2, rec.writer_version2, rec.start_offset,
                       rec.end_offset, len(rec.exceptions))]
    for e in rec.exceptions:
        out.append(struct.pack("<3IH", e.start, e.end, e.original_start, e.flags))
        for value, is_text in ((e.subject, True), (e.meeting_type, False),
                               (e.reminder_delta, False), (e.reminder_set, False),
                               (e.location, True), (e.busy_status, False),
                               (e.attachment, False), (e.subtype, False), (e.color, False)):
            if value is not None:
                out.append(_ansi_out(value) if isinstance(value, str) and is_text
                           else struct.pack("<I", int(value) & 0xFFFFFFFF))
    out.append(struct.pack("<I", len(rec.reserved1)) + rec.reserved1)
    for e in rec.exceptions:
        if rec.writer_version2 >= 0x3009:
            out.append(struct.pack("<II", 4, (e.change_highlight or 0) & 0xFFFFFFFF))
        out.append(struct.pack("<I", len(e.reserved_ee1)) + e.reserved_ee1)
        if e.subject is not None or e.location is not None:
            out.append(struct.pack("<3I", e.start, e.end, e.original_start))
            if e.subject is not None:
                out.append(_wide_out(e.subject))
            if e.location is not None:
                out.append(_wide_out(e.location))
            out.append(struct.pack("<I", len(e.reserved_ee2)) + e.reserved_ee2)
    out.append(struct.pack("<I", len(rec.reserved2)) + rec.reserved2)
    return b"".join(out)


# --- RRULE ⇄ pattern ---------------------------------------------------------------------

def _mask(days: list[str]) -> int:
    return sum(1 << DAYS.index(d) for d in set(days))


def _days(mask: int) -> list[str]:
    return [d for i, d in enumerate(DAYS) if mask & (1 << i)]


def _ints(rule: dict[str, Any], key: str) -> list[int]:
    return [int(v) for v in rule.get(key, [])]


def _first_datetime(p: RecurrencePattern, start: date) -> int:
    """FirstDateTime as MS-OXOCAL 2.2.1.44.1.2 computes it (Gregorian)."""
    if p.pattern_type == PT_DAY:
        return to_minutes(start) % max(p.period, 1)
    if p.pattern_type == PT_WEEK:
        sunday_based = (start.weekday() + 1) % 7
        week_start = start - timedelta(days=(sunday_based - p.first_dow) % 7)
        return to_minutes(week_start) % (max(p.period, 1) * 10080)
    months = (start.year - 1601) * 12 + start.month - 1
    months %= max(p.period, 1)
    return to_minutes(date(1601 + months // 12, months % 12 + 1, 1))


def pattern_from_rule(rule: dict[str, Any], start: datetime) -> RecurrencePattern:
    """The pattern for RRULE parts ``rule`` (upper-case keys, list values as icalendar
    gives them) of a series whose first occurrence is at local ``start``.
    Raises :class:`Unsupported` for rules MAPI cannot express."""
    freq = str(rule.get("FREQ", [""])[0]).upper()
    interval = (_ints(rule, "INTERVAL") or [1])[0]
    if not 1 <= interval <= 9999:
        raise Unsupported(f"INTERVAL={interval}")
    for key in ("BYSECOND", "BYMINUTE", "BYHOUR", "BYWEEKNO", "BYYEARDAY", "RSCALE"):
        if key in rule and not (key in ("BYHOUR", "BYMINUTE") and _ints(rule, key) == [
                start.hour if key == "BYHOUR" else start.minute]):
            raise Unsupported(f"{key} in RRULE")
    days, nths = [], set()
    for item in rule.get("BYDAY", []):
        match = _BYDAY.fullmatch(str(item).upper().replace(" ", ""))
        if not match:
            raise Unsupported(f"BYDAY={item}")
        days.append(match.group(2))
        nths.add(int(match.group(1)) if match.group(1) else None)
    wkst = str((rule.get("WKST") or ["MO"])[0]).upper()
    p = RecurrencePattern(first_dow=DAYS.index(wkst) if wkst in DAYS else 1)
    monthdays, setpos, months = (_ints(rule, "BYMONTHDAY"), _ints(rule, "BYSETPOS"),
                                 _ints(rule, "BYMONTH"))
    if freq == "DAILY":
        if months or monthdays or setpos or nths - {None}:
            raise Unsupported("DAILY with BYMONTH, BYMONTHDAY, BYSETPOS or nth BYDAY")
        if days:
            if interval != 1:
                raise Unsupported("DAILY with INTERVAL and BYDAY")
            p.pattern_type, p.period, p.days = PT_WEEK, 1, _mask(days)
        else:
            p.period = interval * 1440
    elif freq == "WEEKLY":
        if months or monthdays or setpos or nths - {None}:
            raise Unsupported("WEEKLY with BYMONTH, BYMONTHDAY, BYSETPOS or nth BYDAY")
        p.frequency, p.pattern_type, p.period = FREQ_WEEKLY, PT_WEEK, interval
        p.days = _mask(days) if days else 1 << ((start.weekday() + 1) % 7)
    elif freq in ("MONTHLY", "YEARLY"):
        yearly = freq == "YEARLY"
        if (not yearly and months) or len(months) > 1 or (months and months[0] != start.month):
            raise Unsupported("BYMONTH other than the start's month")
        p.frequency = FREQ_YEARLY if yearly else FREQ_MONTHLY
        p.period = interval * (12 if yearly else 1)
        _month_part(p, start, days, nths, monthdays, setpos)
    else:
        raise Unsupported(f"FREQ={freq}")
    count = [c for c in _ints(rule, "COUNT") if c > 0]
    if count:
        p.end_type, p.occurrence_count = END_COUNT, max(count[0], 1)
    elif rule.get("UNTIL"):
        p.end_type = END_DATE
    p.start_date = to_minutes(start.date())
    p.first_datetime = _first_datetime(p, start.date())
    return p


def _month_part(p: RecurrencePattern, start: datetime, days: list[str], nths: set[int | None],
                monthdays: list[int], setpos: list[int]) -> None:
    if monthdays:
        if days:
            raise Unsupported("BYMONTHDAY with BYDAY")
        if monthdays == [-1] and not setpos:
            p.pattern_type, p.day_of_month = PT_MONTHEND, 31
        elif len(monthdays) == 1 and 1 <= monthdays[0] <= 31 and not setpos:
            p.pattern_type, p.day_of_month = PT_MONTH, monthdays[0]
        elif (setpos == [-1] and monthdays[0] == 28 and monthdays[-1] in (29, 30, 31)
              and monthdays == list(range(28, monthdays[-1] + 1))):
            p.pattern_type, p.day_of_month = PT_MONTH, monthdays[-1]  # "day N or the last"
        else:
            raise Unsupported(f"BYMONTHDAY={monthdays} BYSETPOS={setpos}")
    elif days:
        if setpos and nths == {None} and len(setpos) == 1 and setpos[0] in (1, 2, 3, 4, -1):
            nth = setpos[0]
        elif not setpos and len(days) == 1 and None not in nths:
            nth = next(iter(nths)) or 0
        else:
            raise Unsupported(f"BYDAY={days} with BYSETPOS={setpos}")
        if nth not in (1, 2, 3, 4, -1):
            raise Unsupported(f"week {nth} of the month")
        p.pattern_type, p.days, p.nth = PT_MONTHNTH, _mask(days), 5 if nth == -1 else nth
    elif setpos:
        raise Unsupported("BYSETPOS without BYDAY or BYMONTHDAY")
    else:
        p.pattern_type, p.day_of_month = PT_MONTH, start.day


def rule_from_pattern(p: RecurrencePattern) -> dict[str, Any]:
    """RRULE parts (without COUNT/UNTIL: see :func:`rule_end`) for a Gregorian pattern."""
    if p.calendar_type not in (0, 1) or p.pattern_type >= PT_HJMONTH:
        raise Unsupported(f"calendar type {p.calendar_type}, pattern {p.pattern_type:#x}")
    period = max(p.period, 1)
    if p.pattern_type == PT_DAY:
        return {"FREQ": ["DAILY"], "INTERVAL": [max(period // 1440, 1)]}
    wkst = [DAYS[p.first_dow % 7]]
    if p.pattern_type == PT_WEEK:
        if not p.days & 0x7F:
            raise Unsupported("weekly pattern without days")
        return {"FREQ": ["WEEKLY"], "INTERVAL": [period], "BYDAY": _days(p.days),
                "WKST": wkst}
    yearly = p.frequency == FREQ_YEARLY and period % 12 == 0
    rule: dict[str, Any] = {"FREQ": ["YEARLY" if yearly else "MONTHLY"],
                            "INTERVAL": [period // 12 if yearly else period]}
    if yearly:
        rule["BYMONTH"] = [from_minutes(p.first_datetime).month]
    if p.pattern_type == PT_MONTHEND:
        rule["BYMONTHDAY"] = [-1]
    elif p.pattern_type == PT_MONTH:
        day = min(max(p.day_of_month, 1), 31)
        if day >= 29:  # Outlook falls back to the month's last day
            rule["BYMONTHDAY"], rule["BYSETPOS"] = list(range(28, day + 1)), [-1]
        else:
            rule["BYMONTHDAY"] = [day]
    elif p.pattern_type == PT_MONTHNTH:
        days, nth = _days(p.days), -1 if p.nth >= 5 else max(p.nth, 1)
        if not days:
            raise Unsupported("month-nth pattern without days")
        if len(days) == 1:
            rule["BYDAY"] = [f"{nth}{days[0]}"]
        else:
            rule["BYDAY"], rule["BYSETPOS"] = days, [nth]
    else:
        raise Unsupported(f"pattern type {p.pattern_type}")
    return rule


def _rule_text(rule: dict[str, Any]) -> str:
    return ";".join(f"{k}={','.join(str(v) for v in vals)}" for k, vals in rule.items())


def walk(p: RecurrencePattern, start: datetime) -> Iterator[datetime]:
    """The pattern's occurrences from local ``start`` on, ignoring its end and exceptions."""
    return iter(du.rrulestr(_rule_text(rule_from_pattern(p)), dtstart=start))


def set_range(p: RecurrencePattern, start: datetime, until: datetime | None = None) -> None:
    """Fill StartDate, EndDate and OccurrenceCount; ``until`` is the local UNTIL."""
    p.start_date = to_minutes(start.date())
    if p.end_type == END_COUNT:
        last = None
        if p.occurrence_count <= MAX_WALK:
            for last in islice(walk(p, start), p.occurrence_count):  # noqa: B007
                pass
        p.end_date = to_minutes(last.date()) if last else NO_END_DATE
    elif p.end_type == END_DATE and until is not None:
        count, last = 0, start
        for occurrence in islice(walk(p, start), MAX_WALK + 1):
            if occurrence > until:
                break
            count, last = count + 1, occurrence
        if count > MAX_WALK:
            p.end_type, p.occurrence_count, p.end_date = END_NEVER, 10, NO_END_DATE
        else:
            p.occurrence_count, p.end_date = count, to_minutes(last.date())
    else:
        p.end_type, p.occurrence_count, p.end_date = END_NEVER, 10, NO_END_DATE


def rule_end(p: RecurrencePattern) -> tuple[int | None, date | None]:
    """(COUNT, last date) of a pattern: a count, an end date, or neither."""
    if p.end_type == END_COUNT:
        return p.occurrence_count, None
    if p.end_type == END_DATE and p.end_date < NO_END_DATE:
        return None, from_minutes(p.end_date).date()
    return None, None


def recurrence_type(p: RecurrencePattern) -> int:
    """PidLidRecurrenceType: 1 daily, 2 weekly, 3 monthly, 4 yearly."""
    return {FREQ_DAILY: 1, FREQ_WEEKLY: 2, FREQ_MONTHLY: 3, FREQ_YEARLY: 4}.get(p.frequency, 0)


def describe(p: RecurrencePattern, start_offset: int, end_offset: int) -> str:
    """A PidLidRecurrencePattern text such as ``every Monday from 10:00 to 10:30``."""
    names = dict(zip(DAYS, ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday",
                            "Friday", "Saturday"), strict=True))
    try:
        rule = rule_from_pattern(p)
    except Unsupported:
        return "recurring"
    every = f"every {rule['INTERVAL'][0]} " if rule["INTERVAL"][0] > 1 else "every "
    unit = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}[
        rule["FREQ"][0]]
    days = [names[d[-2:]] for d in rule.get("BYDAY", [])]
    text = every + (unit + "s" if every != "every " else unit)
    if days:
        text += " on " + ", ".join(days)
    times = [f"{(m // 60) % 24:02d}:{m % 60:02d}" for m in (start_offset, end_offset)]
    return f"{text} from {times[0]} to {times[1]}"
