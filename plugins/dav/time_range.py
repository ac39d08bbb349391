"""Time ranges on calendar components (RFC 4791 section 9.9), recurrence sets included.

:class:`TimeRange` is a ``[start, end)`` in UTC; :meth:`Context.in_range` tells whether a
component of one calendar overlaps it, following the tables of section 9.9 for VEVENT, VTODO,
VJOURNAL, VFREEBUSY and VALARM (alarms of every instance of a recurring parent). A recurring
component matches when one of its own instances overlaps (instances moved by a
``RECURRENCE-ID`` override belong to the override). Floating times and dates are read in
``floating_tz`` (UTC unless the caller knows the collection's ``calendar-timezone``). A DTEND
equal to DTSTART counts as an instant (RFC 4791 erratum). The readers of property values at
the end (:func:`dt`, :func:`prop_values`, :func:`prop_text`, ...) serve the filters too.

Recurrence sets are expanded by :func:`gateway.convert.expand.occurrences`, bounded: only
over the range (a rule without COUNT or UNTIL matches any open-ended range at once), a few
instances at a time so that the first overlap ends the walk, an old dense rule moved forward
by whole periods first (:func:`fast_forward`), a rule whose days never come
(``BYMONTH=2;BYMONTHDAY=30``, which dateutil would chase to the year 9999; see
:func:`gateway.convert.expand.hopeless`) and a walk longer than :data:`MAX_COST` steps read
as their first instance only. :mod:`plugins.dav.calendar_data` uses the same helpers for
``expand`` and ``limit-recurrence-set``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from math import prod
from typing import Any

from icalendar import Calendar, Component, vDDDTypes

from gateway.convert.expand import PERIOD, Instance, hopeless, occurrences, rrules

log = logging.getLogger(__name__)

MAX_REPEAT = 1000
"""Most VALARM repetitions looked at."""
RECURRING = ("VEVENT", "VTODO", "VJOURNAL")
EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def as_utc(value: date | datetime, floating_tz: tzinfo = UTC) -> datetime:
    """A DATE or DATE-TIME as an aware UTC datetime; dates and floating times in ``floating_tz``."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=floating_tz)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class TimeRange:
    """``[start, end)``; a missing bound is infinite."""

    start: datetime | None
    end: datetime | None

    def overlaps(self, first: datetime, last: datetime) -> bool:
        return (self.start is None or self.start < last) and (self.end is None or self.end > first)

    def holds(self, instant: datetime) -> bool:
        return (self.start is None or self.start <= instant) and (
            self.end is None or self.end > instant)

    def as_tuple(self) -> tuple[datetime | None, datetime | None]:
        return self.start, self.end


# -- evaluating time ranges ------------------------------------------------------------

Span = tuple[datetime, datetime]


@dataclass
class Context:
    """One evaluation over one calendar: the time zone for floating times."""

    cal: Calendar
    floating_tz: tzinfo = UTC

    def utc(self, value: date | datetime) -> datetime:
        return as_utc(value, self.floating_tz)

    def in_range(self, comp: Component, parent: Component | None, rng: TimeRange) -> bool:
        name = comp.name
        if name == "VCALENDAR":
            return any(self.in_range(sub, comp, rng) for sub in comp.subcomponents
                       if sub.name in RECURRING or sub.name == "VFREEBUSY")
        if name == "VALARM":
            return parent is not None and self._alarm_in_range(comp, parent, rng)
        if name == "VFREEBUSY":
            return freebusy_in_range(comp, rng, self.floating_tz)
        if name not in RECURRING:
            return False
        test = {"VEVENT": event_test, "VTODO": todo_test, "VJOURNAL": journal_test}[name]
        return any(test(comp, span, rng) for span in self.spans(comp, rng.start, rng.end))

    def spans(self, comp: Component, start: datetime | None, end: datetime | None
              ) -> Iterable[Span | None]:
        """The (start, end) of instances of ``comp`` that may overlap [start, end).

        None stands for the one instance of a component without a start (VTODO). For a
        recurrence set, the instances that start in the window (widened by the length of
        one instance), at most :data:`MAX_MATCH_INSTANCES` of them: any one will do.
        """
        tz = self.floating_tz
        if not is_recurring(comp) or hopeless(comp):
            return [own_span(comp, tz)]
        if end is None and unbounded(comp):
            return [(LATEST, LATEST)]  # an instance later than any start
        first = dt(comp, "DTSTART")
        # Floating times and dates are compared in a zone the expansion does not know.
        margin = timedelta(0) if getattr(first, "tzinfo", None) else timedelta(hours=15)
        window_start = (start or EARLIEST) - duration_of(comp) - margin
        window_end = end + margin if end is not None else series_end(comp, window_start, tz)
        series = fast_forward(comp, window_start, tz) or comp
        if too_costly(series, window_end, tz):
            log.info("RRULE of %s too costly to expand here: first instance only",
                     comp.get("UID"))
            return [own_span(comp, tz)]
        return self._walk(comp, series, window_start, window_end)

    def _walk(self, comp: Component, series: Component, start: datetime, end: datetime
              ) -> Iterator[Span]:
        """Instances of ``series`` (``comp`` or its fast-forwarded copy) in [start, end), a
        few at a time, so that a dense rule stops at the first that overlaps."""
        alone = copy.copy(self.cal)
        alone.subcomponents = [series if c is comp else c for c in self.cal.subcomponents
                               if c.name == "VTIMEZONE" or same_series(c, comp)]
        rules = rrules(series)
        chunk = max([_step(rule) * MAX_MATCH_INSTANCES for rule in rules] + [timedelta(hours=1)])
        if not rules or any(rule.get("COUNT") for rule in rules):
            chunk = end - start  # bounded by COUNT (and MAX_COST): one walk, not many
        for _ in range(MAX_ROUNDS):
            stop = min(end, start + chunk)
            found = occurrences(alone, start, stop, components=(str(comp.name),),
                                floating_tz=self.floating_tz, max_instances=MAX_MATCH_INSTANCES)
            spans = [self._span(inst) for inst in found if inst.component is series]
            yield from spans
            later = max((span[0] for span in spans), default=start)
            start = later if len(found) >= MAX_MATCH_INSTANCES and later > start else stop
            if start >= end:
                return
            chunk *= 4

    def _span(self, inst: Instance) -> Span:
        span = (self.utc(inst.start), self.utc(inst.end))
        if not isinstance(inst.start, datetime) and span[1] <= span[0]:
            span = (span[0], span[0] + DAY)
        return span

    def _alarm_in_range(self, alarm: Component, parent: Component, rng: TimeRange) -> bool:
        absolute, relative = alarm_triggers(alarm, self.floating_tz)
        if any(rng.holds(t) for t in absolute):
            return True
        if not relative:
            return False
        offsets = [offset for _, offset in relative]
        start = rng.start - max(offsets) if rng.start is not None else None
        end = rng.end - min(offsets) if rng.end is not None else None
        spans = list(self.spans(parent, start, end))
        if spans == [None] and "DUE" in parent:  # a task without DTSTART: its due time
            due = self.utc(dt(parent, "DUE"))
            spans = [(due, due)]
        for span in spans:
            if span is None:
                continue
            for related_end, offset in relative:
                if rng.holds((span[1] if related_end else span[0]) + offset):
                    return True
        return False


def is_recurring(comp: Component) -> bool:
    return ("RRULE" in comp or "RDATE" in comp) and "RECURRENCE-ID" not in comp \
        and _is_time(dt(comp, "DTSTART"))


_BY_PARTS = ("BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO",
             "BYMONTH", "BYSETPOS")
_FIXED = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY")
FAST_FORWARD = 1000
"""Periods of a rule skipped by moving its DTSTART rather than walked (see fast_forward)."""
MAX_COST = 50_000
"""Most steps (periods times BYxxx combinations) walked to match one recurrence set."""
MAX_MATCH_INSTANCES = 64
"""Instances expanded at a time to match one recurrence set (one overlapping is enough)."""
MAX_ROUNDS = 40
"""Most batches of instances looked at for one recurrence set (each window 4 times longer)."""


def unbounded(comp: Component) -> bool:
    """Whether an RRULE of ``comp`` has neither COUNT nor UNTIL: instances without end.

    Such a set has instances later than any time (excluded dates cannot end it).
    """
    return any(not rule.get("COUNT") and not rule.get("UNTIL") for rule in rrules(comp))


def same_series(one: Component, other: Component) -> bool:
    return one.name == other.name and str(one.get("UID")) == str(other.get("UID"))


def _step(rule: Any) -> timedelta:
    """The length of one period of ``rule`` (months and years approximated)."""
    freq = str(rule.get("FREQ", ["DAILY"])[0]).upper()
    return timedelta(seconds=PERIOD.get(freq, 86400) * max(int(rule.get("INTERVAL", [1])[0]), 1))


def _sparse(rule: Any) -> bool:
    """Whether BYxxx parts may leave periods without an instance."""
    return any(rule.get(part) for part in _BY_PARTS)


def series_end(comp: Component, after: datetime, floating_tz: tzinfo) -> datetime:
    """A time past every instance of ``comp`` that matters to a window opening at ``after``.

    For a COUNT rule, past its last instance; for an UNTIL rule, past UNTIL or past the
    first instance after ``after``, whichever is sooner (capped at :data:`LATEST`).
    """
    begin = as_utc(dt(comp, "DTSTART"), floating_tz)
    last = begin
    try:
        for rule in rrules(comp):
            # BYxxx parts may thin periods out; a generous factor covers them.
            periods = _step(rule) * (400 if _sparse(rule) else 2)
            if rule.get("COUNT"):
                last = max(last, begin + periods * int(rule["COUNT"][0]))
            else:
                until = as_utc(rule["UNTIL"][0], floating_tz) if rule.get("UNTIL") else LATEST
                last = max(last, min(until, max(after, begin) + periods))
        for rdate in _listed(comp, "RDATE"):
            value = rdate[0] if isinstance(rdate, tuple) else rdate
            last = max(last, as_utc(value, floating_tz))
        return min(last, LATEST) + 2 * DAY + duration_of(comp)
    except (TypeError, ValueError, OverflowError, IndexError):
        return LATEST


def too_costly(comp: Component, end: datetime, floating_tz: tzinfo,
               at_once: bool = False) -> bool:
    """Whether walking the RRULE of ``comp`` up to ``end`` visits too many steps:
    :data:`MAX_COST` for a COUNT rule or when walked ``at_once``, 20 times more for others
    (matching walks them in growing windows that stop at the first instance found)."""
    try:
        begin = as_utc(dt(comp, "DTSTART"), floating_tz)
        for rule in rrules(comp):
            widths = prod(len(rule[part]) for part in _BY_PARTS if rule.get(part))
            periods = max(end - begin, timedelta(0)) / _step(rule)
            limit = MAX_COST if at_once else MAX_COST * 20
            if rule.get("COUNT"):
                limit = MAX_COST
                if not _sparse(rule):  # one instance a period, COUNT of them
                    periods = min(periods, int(rule["COUNT"][0]))
            if periods * widths > limit:
                return True
    except (TypeError, ValueError, OverflowError, ZeroDivisionError, KeyError):
        return True
    return False


def fast_forward(comp: Component, window_start: datetime, floating_tz: tzinfo
                 ) -> Component | None:
    """A copy of ``comp`` whose DTSTART is moved forward by whole periods close to
    ``window_start``, when that saves walking more than :data:`FAST_FORWARD` periods.

    Only for one RRULE without COUNT, by second to by week: the instances after the new
    start are the same (the new DTSTART itself lies before the window). None otherwise.
    """
    rules = rrules(comp)
    if len(rules) != 1 or rules[0].get("COUNT"):
        return None
    try:
        freq = str(rules[0].get("FREQ", [""])[0]).upper()
        step = _step(rules[0])
        start = dt(comp, "DTSTART")
        if freq not in _FIXED or (not isinstance(start, datetime) and step % DAY):
            return None
        periods = (window_start - as_utc(start, floating_tz)) // step - 1
    except (TypeError, ValueError, OverflowError, IndexError, ZeroDivisionError):
        return None
    if periods <= FAST_FORWARD:
        return None
    shifted = copy.copy(comp)
    for name in ("DTSTART", "DTEND", "DUE"):
        value = dt(comp, name)
        if isinstance(value, date):
            moved = (value.replace(tzinfo=None) + step * periods).replace(tzinfo=value.tzinfo) \
                if isinstance(value, datetime) else value + step * periods
            new = vDDDTypes(moved)
            new.params.clear()
            new.params.update(getattr(comp.get(name), "params", {}))
            shifted[name] = new
    return shifted


def _listed(comp: Component, name: str) -> list[Any]:
    found: list[Any] = []
    for prop in prop_values(comp, name):
        found.extend(item.dt for item in getattr(prop, "dts", []))
    return found


def duration_of(comp: Component) -> timedelta:
    """How long one instance of ``comp`` lasts (zero for an instant, and without DTSTART)."""
    span = own_span(comp, UTC)
    return span[1] - span[0] if span is not None and span[1] > span[0] else timedelta(0)


def own_span(comp: Component, floating_tz: tzinfo) -> Span | None:
    """Start and end of a non-recurring component per section 9.9 (None without DTSTART)."""
    start = dt(comp, "DTSTART")
    if not _is_time(start):
        return None
    first = as_utc(start, floating_tz)
    end = dt(comp, "DTEND" if comp.name == "VEVENT" else "DUE")
    if _is_time(end):
        return first, as_utc(end, floating_tz)
    length = dt(comp, "DURATION")
    if isinstance(length, timedelta):
        return first, first + length
    if comp.name == "VEVENT" and not isinstance(start, datetime):
        return first, first + DAY
    return first, first


def _is_time(value: Any) -> bool:
    return isinstance(value, date)


def event_test(comp: Component, span: Span | None, rng: TimeRange) -> bool:
    if span is None:
        return False
    start, end = span
    return rng.overlaps(start, end) if end > start else rng.holds(start)


def journal_test(comp: Component, span: Span | None, rng: TimeRange) -> bool:
    if span is None:
        return False
    if isinstance(dt(comp, "DTSTART"), datetime):
        return rng.holds(span[0])
    return rng.overlaps(span[0], span[0] + DAY)


def todo_test(comp: Component, span: Span | None, rng: TimeRange) -> bool:
    """The VTODO table of section 9.9 (``span`` from DTSTART, DUE or DURATION)."""
    lo = rng.start or datetime.min.replace(tzinfo=UTC)
    hi = rng.end or datetime.max.replace(tzinfo=UTC)
    if span is not None:
        start, end = span
        if "DURATION" in comp and "DUE" not in comp:
            return lo <= end and (hi > start or hi >= end)
        if "DUE" in comp:
            return (lo < end or lo <= start) and (hi > start or hi >= end)
        return lo <= start < hi
    if "DUE" in comp:
        due = as_utc(dt(comp, "DUE"))
        return lo < due <= hi
    created = as_utc(dt(comp, "CREATED")) if _is_time(dt(comp, "CREATED")) else None
    completed = as_utc(dt(comp, "COMPLETED")) if _is_time(dt(comp, "COMPLETED")) else None
    if created and completed:
        return (lo <= created or lo <= completed) and (hi >= created or hi >= completed)
    if completed:
        return lo <= completed <= hi
    if created:
        return hi > created
    return True


def freebusy_in_range(comp: Component, rng: TimeRange, floating_tz: tzinfo) -> bool:
    if "DTSTART" in comp and "DTEND" in comp:
        start = as_utc(dt(comp, "DTSTART"), floating_tz)
        end = as_utc(dt(comp, "DTEND"), floating_tz)
        return (rng.start is None or rng.start <= end) and (rng.end is None or rng.end > start)
    return any(rng.overlaps(*span) for span in freebusy_periods(comp, floating_tz))


def freebusy_periods(comp: Component, floating_tz: tzinfo = UTC) -> list[Span]:
    periods = []
    for prop in prop_values(comp, "FREEBUSY"):
        for item in getattr(prop, "dts", None) or [prop]:
            value = getattr(item, "dt", item)
            if isinstance(value, tuple) and len(value) == 2:
                start = as_utc(value[0], floating_tz)
                end = value[1] if isinstance(value[1], date) else start + value[1]
                periods.append((start, as_utc(end, floating_tz)))
    return periods


def alarm_triggers(alarm: Component, floating_tz: tzinfo
                   ) -> tuple[list[datetime], list[tuple[bool, timedelta]]]:
    """Absolute trigger times, and (relative to the end?, offset) of relative ones."""
    trigger = alarm.get("TRIGGER")
    if trigger is None:
        return [], []
    value = trigger.dt
    repeat = min(int(alarm.get("REPEAT", 0) or 0), MAX_REPEAT)
    step = dt(alarm, "DURATION")
    extra = [step * k for k in range(1, repeat + 1)] if isinstance(step, timedelta) else []
    if isinstance(value, timedelta):
        related_end = str(trigger.params.get("RELATED", "START")).upper() == "END"
        return [], [(related_end, value + e) for e in [timedelta(0), *extra]]
    first = as_utc(value, floating_tz)
    return [first + e for e in [timedelta(0), *extra]], []


# -- reading properties ----------------------------------------------------------------

def dt(comp: Component, name: str) -> Any:
    """The date, date-time, duration or period of property ``name`` (the first), or None."""
    value: Any = comp.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return getattr(value, "dt", None)


def prop_values(comp: Component, name: str) -> list[Any]:
    value = comp.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def prop_text(prop: Any) -> str:
    """A property value as text: text unescaped, lists comma-joined, others as written."""
    if isinstance(prop, str):
        return str(prop)
    cats = getattr(prop, "cats", None)
    if cats is not None:
        return ",".join(map(str, cats))
    try:
        raw = prop.to_ical()
    except Exception:
        return str(prop)
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def param_values(prop: Any, name: str) -> list[str]:
    params = getattr(prop, "params", None) or {}
    value = params.get(name)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def prop_in_range(prop: Any, rng: TimeRange, floating_tz: tzinfo) -> bool:
    for item in getattr(prop, "dts", None) or [prop]:
        value = getattr(item, "dt", None)
        if isinstance(value, tuple) and len(value) == 2:
            start = as_utc(value[0], floating_tz)
            end = value[1] if isinstance(value[1], date) else start + value[1]
            if rng.overlaps(start, as_utc(end, floating_tz)):
                return True
        elif isinstance(value, datetime):
            if rng.holds(as_utc(value, floating_tz)):
                return True
        elif isinstance(value, date):
            first = as_utc(value, floating_tz)
            if rng.overlaps(first, first + DAY):
                return True
    return False
