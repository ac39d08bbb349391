"""MS-OXOCAL recurrence blobs, byte for byte.

:class:`RecurrencePattern` (2.2.1.44.1; PidLidTaskRecurrence is one) and
:class:`AppointmentRecurrence` (2.2.1.44.5, PidLidAppointmentRecur) with its
ExceptionInfo / ExtendedException entries (2.2.1.44.2-4): :func:`parse_*` and
:func:`build_*`; every length and count in a blob is checked against what is left
of it, so hostile blobs cost no more than their size. Times are minutes since
1601-01-01 in the appointment's own time zone (:func:`to_minutes`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

FREQ_DAILY, FREQ_WEEKLY, FREQ_MONTHLY, FREQ_YEARLY = 0x200A, 0x200B, 0x200C, 0x200D
PT_DAY, PT_WEEK, PT_MONTH, PT_MONTHNTH, PT_MONTHEND = 0, 1, 2, 3, 4
PT_HJMONTH, PT_HJMONTHNTH, PT_HJMONTHEND = 0x0A, 0x0B, 0x0C
END_DATE, END_COUNT, END_NEVER, END_NEVER2 = 0x2021, 0x2022, 0x2023, 0xFFFFFFFF
NO_END_DATE = 0x5AE980DF
"""EndDate of a series that never ends: 4500-12-31 23:59."""
ARO_SUBJECT, ARO_MEETINGTYPE, ARO_REMINDERDELTA, ARO_REMINDER = 0x1, 0x2, 0x4, 0x8
ARO_LOCATION, ARO_BUSYSTATUS, ARO_ATTACHMENT, ARO_SUBTYPE = 0x10, 0x20, 0x40, 0x80
ARO_APPTCOLOR, ARO_EXCEPTIONAL_BODY = 0x100, 0x200

EPOCH = datetime(1601, 1, 1)
_MONTHLY_TYPES = (PT_MONTH, PT_MONTHEND, PT_HJMONTH, PT_HJMONTHEND)


class RecurrenceError(ValueError):
    """A recurrence blob that cannot be read."""



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


def recurrence_type(p: RecurrencePattern) -> int:
    """PidLidRecurrenceType: 1 daily, 2 weekly, 3 monthly, 4 yearly."""
    return {FREQ_DAILY: 1, FREQ_WEEKLY: 2, FREQ_MONTHLY: 3, FREQ_YEARLY: 4}.get(p.frequency, 0)

