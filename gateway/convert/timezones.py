"""Time-zone blobs (MS-OXOCAL 2.2.1.39, 2.2.1.41) ⇄ tzinfo and VTIMEZONE.

- ``PidLidTimeZoneStruct``: one rule (biases and two SYSTEMTIME transitions);
- ``PidLidAppointmentTimeZoneDefinition{StartDisplay,EndDisplay,Recur}``: a
  TZDEFINITION — a key name (the Windows zone name) and rules by year.

:func:`definition_from_tzinfo` derives the rules of any tzinfo (zoneinfo, or a
VTIMEZONE as icalendar parses it) by finding its transitions year by year;
:class:`RulesTZ` is a tzinfo that follows a definition's rules, and
:func:`to_vtimezone` writes them as a VTIMEZONE the way Outlook does. Windows
zone names map to IANA ones with icalendar's table.
"""

from __future__ import annotations

import calendar
import struct
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Timezone, TimezoneDaylight, TimezoneStandard
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

TZRULE_FLAG_RECUR_CURRENT = 0x0001
TZRULE_FLAG_EFFECTIVE = 0x0002
MAX_RULES = 1024
YEARS_AHEAD = 12
"""Years after an appointment's start whose rules a derived definition lists."""

_OLSON_TO_WINDOWS: dict[str, str] = {}
for _win, _olson in sorted(WINDOWS_TO_OLSON.items()):
    _OLSON_TO_WINDOWS.setdefault(_olson, _win)
_WINDOWS_LOWER = {k.lower(): v for k, v in WINDOWS_TO_OLSON.items()}


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


# --- a tzinfo following the rules ------------------------------------------------------

class RulesTZ(tzinfo):
    """A tzinfo that follows a TZDEFINITION (or a single TimeZoneStruct rule)."""

    def __init__(self, defn: TZDefinition) -> None:
        self.defn = defn
        self.rules = defn.rules or [TZRule()]

    def __repr__(self) -> str:
        return f"RulesTZ({self.defn.keyname!r})"

    def rule(self, year: int) -> TZRule:
        found = self.rules[0]
        for r in self.rules:
            if r.year <= year:
                found = r
        return found

    def _is_dst_wall(self, dt: datetime) -> bool:
        r = self.rule(dt.year)
        if not r.has_dst:
            return False
        start, end = r.daylight_date.on(dt.year), r.standard_date.on(dt.year)
        if start is None or end is None:
            return False
        wall = dt.replace(tzinfo=None, fold=0)
        if dt.fold and end - (r.dst_offset - r.std_offset) <= wall < end:
            return False  # the second pass through the hour repeated at the end of DST
        # The daylight start is in standard wall time, its end in daylight wall time.
        if start < end:
            return start <= wall < end
        return wall >= start or wall < end

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return self.rules[-1].std_offset
        r = self.rule(dt.year)
        return r.dst_offset if self._is_dst_wall(dt) else r.std_offset

    def dst(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return timedelta(0)
        r = self.rule(dt.year)
        return r.dst_offset - r.std_offset if self._is_dst_wall(dt) else timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return self.defn.keyname

    def fromutc(self, dt: datetime) -> datetime:
        naive = dt.replace(tzinfo=None)
        r = self.rule(naive.year)
        std_wall = naive + r.std_offset
        if r.has_dst:
            year = std_wall.year
            r = self.rule(year)
            start, end = r.daylight_date.on(year), r.standard_date.on(year)
            if start is not None and end is not None:
                start_utc, end_utc = start - r.std_offset, end - r.dst_offset
                inside = (start_utc <= naive < end_utc if start_utc < end_utc
                          else naive >= start_utc or naive < end_utc)
                if inside:
                    return (naive + r.dst_offset).replace(tzinfo=self)
                wall = naive + r.std_offset
                if end - (r.dst_offset - r.std_offset) <= wall < end:
                    return wall.replace(tzinfo=self, fold=1)
        return (naive + r.std_offset).replace(tzinfo=self)


# --- deriving rules from a tzinfo ----------------------------------------------------------

def _offset(tz: tzinfo, instant: datetime) -> timedelta:
    return instant.astimezone(tz).utcoffset() or timedelta(0)


def _transitions(tz: tzinfo, year: int) -> list[tuple[datetime, timedelta, timedelta]]:
    """(UTC instant, offset before, offset after) for each change of offset whose local
    wall time falls in ``year``."""
    found = []
    bounds = [datetime(year - 1, 12, 30, tzinfo=UTC)]
    bounds += [datetime(year, m, 1, tzinfo=UTC) for m in range(2, 13)]
    bounds.append(datetime(year + 1, 1, 2, tzinfo=UTC))
    for lo, hi in pairwise(bounds):
        before, after = _offset(tz, lo), _offset(tz, hi)
        if before == after:
            continue
        while hi - lo > timedelta(minutes=1):
            mid = lo + (hi - lo) / 2
            mid = mid.replace(second=0, microsecond=0)
            if mid <= lo:
                break
            if _offset(tz, mid) == before:
                lo = mid
            else:
                hi = mid
        if (hi + before).year == year:
            found.append((hi, before, after))
    return found


def _systemtime(wall: datetime) -> SystemTime:
    week = 5 if wall.day + 7 > calendar.monthrange(wall.year, wall.month)[1] else (
        (wall.day - 1) // 7 + 1)
    return SystemTime(0, wall.month, (wall.weekday() + 1) % 7, week, wall.hour, wall.minute)


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def rule_for_year(tz: tzinfo, year: int) -> TZRule:
    """The TZRULE describing ``tz`` during ``year``."""
    changes = _transitions(tz, year)
    to_dst = [c for c in changes if c[2] > c[1]]
    to_std = [c for c in changes if c[2] < c[1]]
    if to_dst and to_std:
        std, dst = to_dst[0][1], to_dst[0][2]
        return TZRule(year, -_minutes(std), 0, -_minutes(dst - std),
                      _systemtime(to_std[0][0] + to_std[0][1]),
                      _systemtime(to_dst[0][0] + to_dst[0][1]))
    offset = _offset(tz, datetime(year, 12, 31, 12, tzinfo=UTC))
    return TZRule(year, -_minutes(offset))


def _still_holds(tz: tzinfo, rule: TZRule, year: int) -> bool:
    """Whether ``rule`` describes ``tz`` in ``year`` too (a few probes, no search)."""
    probes = [datetime(year, m, 1, tzinfo=UTC) for m in range(1, 13)]
    expected = RulesTZ(TZDefinition("", [replace(rule, year=1601)]))
    for st, before in ((rule.daylight_date, rule.std_offset),
                       (rule.standard_date, rule.dst_offset)):
        wall = st.on(year) if rule.has_dst else None
        if wall is not None:
            instant = (wall - before).replace(tzinfo=UTC)
            probes += [instant - timedelta(minutes=1), instant]
    return all(_offset(tz, p) == _offset(expected, p) for p in probes)


@lru_cache(maxsize=512)
def _rules(tz: tzinfo, first: int, last: int) -> tuple[TZRule, ...]:
    rules: list[TZRule] = []
    for year in range(first, last + 1):
        if rules and _still_holds(tz, rules[-1], year):
            continue
        r = rule_for_year(tz, year)
        if not rules or not rules[-1].same_rule(r):
            rules.append(r)
    return tuple(rules)


@lru_cache(maxsize=256)
def _same_zone(tz: tzinfo, other: tzinfo, year: int) -> bool:
    """Whether a parsed VTIMEZONE agrees with the zone its name says (six probes)."""
    samples = [datetime(year, m, 15, 12, tzinfo=UTC) for m in range(1, 13, 2)]
    return all(_offset(tz, s) == _offset(other, s) for s in samples)


def definition_from_tzinfo(tz: tzinfo, keyname: str, year: int) -> TZDefinition:
    """The rules of ``tz`` from ``year`` for :data:`YEARS_AHEAD` years, the one in force
    in ``year`` flagged effective; the first rule is dated 1601 as Outlook does.

    A VTIMEZONE named after a known zone that agrees with it over ``year`` is read
    from the (cached) zoneinfo zone instead, which is much faster."""
    year = max(1602, min(year, 9000))
    known = zone(keyname) if not isinstance(tz, ZoneInfo) else None
    try:
        same = known is not None and known is not UTC and _same_zone(tz, known, year)
    except TypeError:  # an unhashable tzinfo
        same = known is not None and _same_zone.__wrapped__(tz, known, year)
    if same and known is not None:
        tz = known
    try:
        rules = list(_rules(tz, year, year + YEARS_AHEAD))
    except TypeError:  # an unhashable tzinfo
        rules = list(_rules.__wrapped__(tz, year, year + YEARS_AHEAD))
    rules[0] = replace(rules[0], year=1601,
                       flags=TZRULE_FLAG_EFFECTIVE | TZRULE_FLAG_RECUR_CURRENT)
    return TZDefinition(keyname[:260], rules)


def effective_rule(defn: TZDefinition) -> TZRule:
    for r in defn.rules:
        if r.flags & TZRULE_FLAG_EFFECTIVE:
            return r
    return defn.rules[-1] if defn.rules else TZRule()


# --- names ----------------------------------------------------------------------------

def windows_to_iana(name: str) -> str | None:
    return _WINDOWS_LOWER.get(name.strip().lower())


def iana_to_windows(key: str) -> str | None:
    return _OLSON_TO_WINDOWS.get(key)


def zone(name: str) -> tzinfo | None:
    """A tzinfo for an IANA or Windows zone name, or None."""
    if name.upper() in ("UTC", "Z", "GMT", "ETC/UTC"):
        return UTC
    key = windows_to_iana(name) or name
    try:
        return ZoneInfo(key)
    except (ValueError, OSError, KeyError):
        return None


def keyname_for(tz: tzinfo, tzid: str | None = None) -> str:
    """The TZDEFINITION key name: the Windows name when one is known."""
    key = getattr(tz, "key", None) or tzid or str(tz)
    if tz is UTC or key in ("UTC", "Etc/UTC"):
        return "UTC"
    if windows_to_iana(key):
        return key
    return iana_to_windows(key) or key


def description(defn: TZDefinition) -> str:
    """A PidLidTimeZoneDescription such as ``(UTC+01:00) W. Europe Standard Time``."""
    minutes = -effective_rule(defn).bias
    sign = "+" if minutes >= 0 else "-"
    return f"(UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}) {defn.keyname}"


# --- VTIMEZONE --------------------------------------------------------------------------------

def _rrule(st: SystemTime, until: datetime | None) -> dict[str, Any]:
    rule: dict[str, Any] = {"FREQ": "YEARLY", "BYMONTH": st.month}
    if st.year:
        return {}
    week = -1 if st.day >= 5 else max(st.day, 1)
    rule["BYDAY"] = f"{week}{('SU', 'MO', 'TU', 'WE', 'TH', 'FR', 'SA')[st.dow % 7]}"
    if until is not None:
        rule["UNTIL"] = until
    return rule


def to_vtimezone(defn: TZDefinition) -> Timezone:
    """A VTIMEZONE (TZID = key name) with one STANDARD/DAYLIGHT pair per rule."""
    tz = Timezone()
    tz.add("TZID", defn.keyname)
    rules = defn.rules or [TZRule()]
    for index, r in enumerate(rules):
        first = 1970 if index == 0 else r.year  # not 1601: readers walk rules from here
        nxt = rules[index + 1].year if index + 1 < len(rules) else None
        if not r.has_dst:
            sub = TimezoneStandard()
            sub.add("DTSTART", datetime(first, 1, 1))
            sub.add("TZOFFSETFROM", rules[index - 1].std_offset if index else r.std_offset)
            sub.add("TZOFFSETTO", r.std_offset)
            tz.add_component(sub)
            continue
        pairs: list[tuple[Any, SystemTime, timedelta, timedelta]] = [
            (TimezoneStandard(), r.standard_date, r.dst_offset, r.std_offset),
            (TimezoneDaylight(), r.daylight_date, r.std_offset, r.dst_offset)]
        for sub, st, frm, to in pairs:
            start = st.on(first) or datetime(first, 1, 1)
            sub.add("DTSTART", start)
            sub.add("TZOFFSETFROM", frm)
            sub.add("TZOFFSETTO", to)
            until = None
            if nxt is not None:
                last = st.on(nxt - 1)
                until = (last - frm).replace(tzinfo=UTC) if last else None
            rule = _rrule(st, until)
            if rule and (until is None or until >= (start - frm).replace(tzinfo=UTC)):
                sub.add("RRULE", rule)
            tz.add_component(sub)
    return tz
