"""Time-zone rules ⇄ tzinfo and VTIMEZONE.

:func:`definition_from_tzinfo` derives the rules of any tzinfo (zoneinfo, or a
VTIMEZONE as icalendar parses it) by finding its transitions year by year;
:class:`RulesTZ` is a tzinfo that follows a definition's rules, and
:func:`to_vtimezone` writes them as a VTIMEZONE the way Outlook does.
"""

from __future__ import annotations

import calendar
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Timezone, TimezoneDaylight, TimezoneStandard

from gateway.convert.timezone_blobs import (
    TZRULE_FLAG_EFFECTIVE,
    TZRULE_FLAG_RECUR_CURRENT,
    SystemTime,
    TZDefinition,
    TZRule,
)
from gateway.convert.timezone_names import zone

YEARS_AHEAD = 12
"""Years after an appointment's start whose rules a derived definition lists."""


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
