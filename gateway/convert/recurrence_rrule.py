"""RRULE ⇄ MS-OXOCAL recurrence pattern.

:func:`pattern_from_rule` / :func:`rule_from_pattern`: the RRULE parts (FREQ,
INTERVAL, BYDAY, BYMONTHDAY, BYSETPOS, BYMONTH, WKST) that MAPI can express, as
MS-OXCICAL 2.1.3.2.2 lists them; :func:`set_range` fills StartDate, EndDate and
OccurrenceCount by walking the occurrences (bounded by :data:`MAX_WALK`). Works in
naive local datetimes and leaves zones to callers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from itertools import islice
from typing import Any

from dateutil import rrule as du

from gateway.convert.recurrence_blob import (
    END_COUNT,
    END_DATE,
    END_NEVER,
    FREQ_MONTHLY,
    FREQ_WEEKLY,
    FREQ_YEARLY,
    NO_END_DATE,
    PT_DAY,
    PT_HJMONTH,
    PT_MONTH,
    PT_MONTHEND,
    PT_MONTHNTH,
    PT_WEEK,
    RecurrencePattern,
    from_minutes,
    to_minutes,
)

MAX_WALK = 50_000
"""Most occurrences walked to find a series' last date; past it the end is left open."""

DAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")
_BYDAY = re.compile(r"([+-]?\d{1,2})?(SU|MO|TU|WE|TH|FR|SA)")


class Unsupported(ValueError):
    """An RRULE that MS-OXOCAL patterns cannot express."""


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
