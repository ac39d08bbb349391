"""Time-zone blobs (MS-OXOCAL 2.2.1.39, 2.2.1.41): the structs and their bytes.

- ``PidLidTimeZoneStruct``: one rule (biases and two SYSTEMTIME transitions);
- ``PidLidAppointmentTimeZoneDefinition{StartDisplay,EndDisplay,Recur}``: a
  TZDEFINITION — a key name (the Windows zone name) and rules by year.
"""

from __future__ import annotations

import calendar
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta

TZRULE_FLAG_RECUR_CURRENT = 0x0001
TZRULE_FLAG_EFFECTIVE = 0x0002
MAX_RULES = 1024


class TimeZoneError(ValueError):
    """A time-zone blob that cannot be read."""


@dataclass(frozen=True)
class SystemTime:
    """A SYSTEMTIME transition: ``day`` 1-5 is the week of the month (5 = last)
    when ``year`` is 0; ``dow`` is 0 (Sunday) to 6."""

    year: int = 0
    month: int = 0
    dow: int = 0
    day: int = 0
    hour: int = 0
    minute: int = 0
    second: int = 0
    ms: int = 0

    def pack(self) -> bytes:
        return struct.pack("<8H", self.year, self.month, self.dow, self.day,
                           self.hour, self.minute, self.second, self.ms)

    @classmethod
    def unpack(cls, data: bytes, offset: int) -> SystemTime:
        return cls(*struct.unpack_from("<8H", data, offset))

    def on(self, year: int) -> datetime | None:
        """The local wall time of this transition in ``year`` (None if unset)."""
        if not 1 <= self.month <= 12:
            return None
        if self.year:
            if self.year != year:
                return None
            day = min(max(self.day, 1), calendar.monthrange(year, self.month)[1])
        else:
            first = datetime(year, self.month, 1).weekday()  # Monday 0
            first_match = 1 + (self.dow % 7 - (first + 1) % 7) % 7
            day = first_match + 7 * (min(max(self.day, 1), 5) - 1)
            while day > calendar.monthrange(year, self.month)[1]:
                day -= 7
        return datetime(year, self.month, day, min(self.hour, 23), min(self.minute, 59),
                        min(self.second, 59))


@dataclass(frozen=True)
class TZRule:
    """One TZRULE: biases in minutes (UTC = local + bias) from ``year`` on."""

    year: int = 1601
    bias: int = 0
    standard_bias: int = 0
    daylight_bias: int = 0
    standard_date: SystemTime = SystemTime()
    daylight_date: SystemTime = SystemTime()
    flags: int = 0

    @property
    def has_dst(self) -> bool:
        return self.standard_date.month != 0 and self.daylight_date.month != 0

    @property
    def std_offset(self) -> timedelta:
        return timedelta(minutes=-(self.bias + self.standard_bias))

    @property
    def dst_offset(self) -> timedelta:
        return timedelta(minutes=-(self.bias + self.daylight_bias))

    def same_rule(self, other: TZRule) -> bool:
        return (self.bias, self.standard_bias, self.daylight_bias, self.standard_date,
                self.daylight_date) == (other.bias, other.standard_bias, other.daylight_bias,
                                        other.standard_date, other.daylight_date)


@dataclass
class TZDefinition:
    keyname: str
    rules: list[TZRule] = field(default_factory=list)


# --- blobs ----------------------------------------------------------------------------

def build_tzstruct(rule: TZRule) -> bytes:
    """PidLidTimeZoneStruct (48 bytes) for one rule."""
    return (struct.pack("<iiiH", rule.bias, rule.standard_bias, rule.daylight_bias, 0)
            + rule.standard_date.pack() + struct.pack("<H", 0) + rule.daylight_date.pack())


def parse_tzstruct(blob: bytes) -> TZRule:
    if len(blob) < 48:
        raise TimeZoneError(f"TimeZoneStruct of {len(blob)} bytes, 48 expected")
    bias, std_bias, dst_bias = struct.unpack_from("<iii", blob, 0)
    return TZRule(1601, bias, std_bias, dst_bias, SystemTime.unpack(blob, 14),
                  SystemTime.unpack(blob, 32))


def build_tzdefinition(defn: TZDefinition) -> bytes:
    """A TZDEFINITION blob (version 2.1) with every rule of ``defn``."""
    name = defn.keyname[:260].encode("utf-16-le")
    out = [struct.pack("<BBHHH", 2, 1, 6 + len(name), 2, len(name) // 2), name,
           struct.pack("<H", len(defn.rules))]
    for r in defn.rules:
        out.append(struct.pack("<BBHHH14xiii", 2, 1, 0x3E, r.flags, r.year, r.bias,
                               r.standard_bias, r.daylight_bias))
        out.append(r.standard_date.pack() + r.daylight_date.pack())
    return b"".join(out)


def parse_tzdefinition(blob: bytes) -> TZDefinition:
    """Read a TZDEFINITION; hostile sizes are checked against the blob's length."""
    try:
        major, _minor, cb_header = struct.unpack_from("<BBH", blob, 0)
        if major != 2:
            raise TimeZoneError(f"TZDEFINITION major version {major}")
        cch = struct.unpack_from("<H", blob, 6)[0]
        if 8 + 2 * cch > len(blob):
            raise TimeZoneError("TZDEFINITION key name runs past the end")
        keyname = blob[8:8 + 2 * cch].decode("utf-16-le", "replace")
        pos = 4 + cb_header
        count = struct.unpack_from("<H", blob, pos - 2)[0]
        rules = []
        for _ in range(min(count, MAX_RULES, (len(blob) - pos) // 66)):
            r_major, _r_minor, _res, flags, year = struct.unpack_from("<BBHHH", blob, pos)
            bias, std_bias, dst_bias = struct.unpack_from("<iii", blob, pos + 22)
            if r_major == 2:
                rules.append(TZRule(year, bias, std_bias, dst_bias,
                                    SystemTime.unpack(blob, pos + 34),
                                    SystemTime.unpack(blob, pos + 50), flags))
            pos += 66
    except struct.error as exc:
        raise TimeZoneError(f"truncated TZDEFINITION: {exc}") from exc
    rules.sort(key=lambda r: r.year)
    return TZDefinition(keyname, rules)


def effective_rule(defn: TZDefinition) -> TZRule:
    for r in defn.rules:
        if r.flags & TZRULE_FLAG_EFFECTIVE:
            return r
    return defn.rules[-1] if defn.rules else TZRule()


def description(defn: TZDefinition) -> str:
    """A PidLidTimeZoneDescription such as ``(UTC+01:00) W. Europe Standard Time``."""
    minutes = -effective_rule(defn).bias
    sign = "+" if minutes >= 0 else "-"
    return f"(UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}) {defn.keyname}"
