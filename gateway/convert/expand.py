"""Recurrence expansion over a window, time-zone aware and bounded.

:func:`occurrences` expands an iCalendar object (bytes, text or an
:class:`icalendar.Calendar`) or appointments (:class:`NewMessage`, rendered
with :mod:`gateway.convert.ical_out`) with ``recurring-ical-events``. Three
bounds keep hostile rules cheap: at most ``max_instances`` occurrences are
returned; a rule whose walk from DTSTART to the window's end would visit
more than :data:`MAX_STEPS` candidates (``FREQ=SECONDLY`` since 1900, or
BYxxx lists multiplying each period) is not expanded; nor is a rule whose
days never come (:func:`hopeless`: ``BYMONTH=2;BYMONTHDAY=30``, or
``FREQ=DAILY;BYSETPOS=2``), which dateutil would chase to the year 9999.
Such a rule's first instance (DTSTART, and its RDATEs) stands alone and a
warning is logged.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from math import prod
from typing import Any

import recurring_ical_events
from dateutil.rrule import rrulestr
from icalendar import Calendar, Component

from gateway.convert.ical_out import to_calendar
from gateway.store import NewMessage

log = logging.getLogger(__name__)

MAX_STEPS = 2_000_000
PERIOD = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400, "WEEKLY": 604800,
          "MONTHLY": 28 * 86400, "YEARLY": 365 * 86400}
_EXPANDING = ("BYSECOND", "BYMINUTE", "BYHOUR", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO",
              "BYMONTH", "BYDAY")
_FINER = {"SECONDLY": (), "MINUTELY": ("BYSECOND",), "HOURLY": ("BYMINUTE", "BYSECOND"),
          "DAILY": ("BYHOUR", "BYMINUTE", "BYSECOND")}
_DATE_PARTS = ("BYMONTH", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYDAY", "WKST")


@dataclass(frozen=True, order=True)
class Instance:
    """One occurrence: UTC datetimes, or dates for all-day ones."""

    start: datetime | date
    end: datetime | date
    uid: str = ""
    component: Component | None = field(default=None, compare=False, hash=False)

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, datetime)


def _calendars(source: Any) -> list[Calendar]:
    if isinstance(source, Calendar):
        return [source]
    if isinstance(source, bytes | str):
        try:
            return list(Calendar.from_ical(source, multiple=True))
        except Exception as exc:  # garbage in: nothing to expand
            log.warning("not an iCalendar object: %s", exc)
            return []
    messages = [source] if isinstance(source, NewMessage) else list(source)
    # Through bytes, so that icalendar resolves the TZIDs against the VTIMEZONEs.
    return [Calendar.from_ical(to_calendar(messages).to_ical())]


def rrules(comp: Component) -> list[Any]:
    """The RRULE values of ``comp`` (none, one, or several)."""
    rule = comp.get("RRULE")
    return [] if rule is None else rule if isinstance(rule, list) else [rule]


def hopeless(comp: Component) -> bool:
    """Whether an RRULE of ``comp`` names days that never come (BYMONTH=2;BYMONTHDAY=30):
    dateutil would walk such a rule to the year 9999 looking for them."""
    return any(_never(rule.to_ical()) for rule in rrules(comp))


@lru_cache(maxsize=1024)
def _never(text: bytes) -> bool:
    try:
        parts = dict(part.split("=", 1) for part in text.decode().upper().split(";"))
        freq = parts.get("FREQ", "DAILY")
        if "BYSETPOS" in parts and freq in _FINER:  # a set as small as its finer BYxxx
            size = prod(len(parts[p].split(",")) for p in _FINER[freq] if p in parts)
            if all(abs(int(pos)) > size for pos in parts["BYSETPOS"].split(",")):
                return True
        coarse = freq in ("WEEKLY", "MONTHLY", "YEARLY")
        keep = _DATE_PARTS + (("BYSETPOS", "BYHOUR", "BYMINUTE", "BYSECOND") if coarse else ())
        probe = {key: value for key, value in parts.items() if key in keep}
        if not probe:
            return False
        if freq not in ("MONTHLY", "YEARLY") and "BYDAY" in probe:  # no ordinals there
            probe["BYDAY"] = ",".join(day.lstrip("+-0123456789") for day in
                                      probe["BYDAY"].split(","))
        rule = "FREQ={};{}".format(freq if coarse else "YEARLY",
                                   ";".join(f"{key}={value}" for key, value in probe.items()))
        # dateutil walks a rule without instances to the year 9999: start 40 years before,
        # which holds leap years and every weekday of every date.
        return next(iter(rrulestr(rule, dtstart=datetime(9960, 1, 1))), None) is None
    except (ValueError, TypeError, IndexError):
        return False  # the expansion skips what dateutil refuses


def _steps(comp: Component, end: datetime) -> float:
    """How many candidates dateutil would visit for the component's RRULE up to ``end``."""
    rules = rrules(comp)
    start = comp.get("DTSTART")
    if not rules or start is None:
        return 0
    begin = start.dt if isinstance(start.dt, datetime) else datetime.combine(
        start.dt, datetime.min.time())
    begin = begin.replace(tzinfo=None)
    worst = 0.0
    for r in rules:
        try:
            freq = str(r.get("FREQ", ["DAILY"])[0]).upper()
            interval = max(int(r.get("INTERVAL", [1])[0]), 1)
            span = (end.replace(tzinfo=None) - begin).total_seconds()
            periods = max(span, 0) / (PERIOD.get(freq, 86400) * interval) + 1
            widths = [len(r.get(key, [])) for key in _EXPANDING if r.get(key)]
            worst = max(worst, periods * prod(widths or [1]))
        except (TypeError, ValueError, AttributeError):
            return float("inf")
    return worst


def _risk(comp: Component, end: datetime) -> str | None:
    """Why the RRULE of ``comp`` is not to be expanded up to ``end``, or None."""
    if not rrules(comp):
        return None
    try:
        if hopeless(comp):
            return "names days that never come"
    except (TypeError, ValueError, AttributeError):
        return "cannot be read"
    if _steps(comp, end) > MAX_STEPS:
        return "too costly to expand"
    return None


def _guarded(cal: Calendar, end: datetime, names: Sequence[str]) -> Calendar:
    risks = {id(c): why for c in cal.subcomponents
             if c.name in names and (why := _risk(c, end)) is not None}
    if not risks:
        return cal
    safe = copy.copy(cal)
    safe.subcomponents = []
    for comp in cal.subcomponents:
        if id(comp) in risks:
            log.warning("RRULE of %s %s: first instance only", comp.get("UID"), risks[id(comp)])
            comp = copy.copy(comp)
            comp.pop("RRULE", None)
        safe.subcomponents.append(comp)
    return safe


def _instant(value: datetime | date, fallback: tzinfo) -> datetime | date:
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=fallback)
    return value.astimezone(UTC)


def _key(instance: Instance) -> tuple[datetime, str]:
    return _bound(instance.start), instance.uid


def _bound(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time())
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def occurrences(calendar_or_messages: Any, start: datetime | date, end: datetime | date, *,
                max_instances: int = 10_000, components: Sequence[str] = ("VEVENT",),
                floating_tz: tzinfo = UTC) -> list[Instance]:
    """Occurrences overlapping [start, end), sorted; floating times are read in
    ``floating_tz``. Never raises on bad calendars: bad series are skipped."""
    window_start, window_end = _bound(start), _bound(end)
    found: list[Instance] = []
    for cal in _calendars(calendar_or_messages):
        _expand(_guarded(cal, window_end + timedelta(days=1), components), window_start,
                window_end, components, floating_tz, found, max_instances)
    return sorted(found, key=_key)


def _expand(cal: Calendar, start: datetime, end: datetime, components: Sequence[str],
            floating_tz: tzinfo, found: list[Instance], max_instances: int) -> None:
    try:
        query = recurring_ical_events.of(cal, components=list(components),
                                         skip_bad_series=True)
    except Exception as exc:  # a calendar the library cannot index at all
        log.warning("calendar not expanded: %s", exc)
        return
    for series in query.series:
        try:
            for occ in series.between(start, end):
                if len(found) >= max_instances:
                    log.warning("expansion stopped at %d instances", max_instances)
                    return
                source = getattr(occ._adapter, "_component", None)  # the VEVENT behind it
                found.append(Instance(_instant(occ.start, floating_tz),
                                      _instant(occ.end, floating_tz), str(occ.uid), source))
        except Exception as exc:  # one bad series must not hide the others
            log.warning("series not expanded: %s", exc)
