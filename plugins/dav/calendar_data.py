"""What a REPORT asks of the calendar data it returns: ``{CALDAV}calendar-data`` (RFC 4791 9.6).

:func:`parse_calendar_data` reads the element of a request into a :class:`CalendarDataSpec`:
the media type (only ``text/calendar`` 2.0; anything else is 403 ``supported-calendar-data``),
the components and properties wanted (``comp``, ``prop`` with ``novalue``, ``allprop``,
``allcomp``; an empty ``comp`` means the whole component, as in the RFC's own example), and
``expand``, ``limit-recurrence-set`` or ``limit-freebusy-set`` with their time ranges (a bad
one is 400). :meth:`CalendarDataSpec.render` applies it to one stored object and writes
iCalendar again (CRLF, folded lines); an object it cannot read is returned as stored.

``expand`` (9.6.5) writes each instance overlapping the range as a component of its own with
a RECURRENCE-ID and no RRULE, RDATE, EXRULE or EXDATE, times in UTC (dates stay dates,
floating times are read in ``floating_tz``), and drops the VTIMEZONEs nothing needs any more.
It yields at most :data:`MAX_INSTANCES` instances per object; a rule whose days never come
or that would walk more than :data:`plugins.dav.time_range.MAX_COST` steps over the range
is read as its first instance only.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from icalendar import Calendar, Component, vPeriod, vText
from lxml import etree

from gateway.convert.expand import hopeless, occurrences
from plugins.dav.caldav_filter import parse_time_range
from plugins.dav.errors import DavError
from plugins.dav.time_range import (
    EARLIEST,
    LATEST,
    RECURRING,
    TimeRange,
    as_utc,
    dt,
    duration_of,
    event_test,
    fast_forward,
    freebusy_periods,
    is_recurring,
    journal_test,
    own_span,
    prop_values,
    todo_test,
    too_costly,
)
from plugins.dav.xmlns import CALDAV, tag

log = logging.getLogger(__name__)

SUPPORTED_DATA = tag(CALDAV, "supported-calendar-data")
MAX_DEPTH = 8
"""Deepest comp selection (VCALENDAR / VEVENT / VALARM needs 3)."""
MAX_INSTANCES = 1000
"""Most instances one expanded object yields."""
_RECURRENCE = ("RRULE", "RDATE", "EXRULE", "EXDATE")
MARGIN, ZERO = timedelta(hours=15), timedelta(0)
_TESTS = {"VEVENT": event_test, "VTODO": todo_test, "VJOURNAL": journal_test}


@dataclass(frozen=True)
class CompSelection:
    """The properties and subcomponents of one component to return."""

    name: str
    all_props: bool = True
    props: dict[str, bool] = field(default_factory=dict)  # name -> novalue
    all_comps: bool = True
    comps: dict[str, CompSelection] = field(default_factory=dict)

    def apply(self, comp: Component) -> Component:
        out = copy.copy(comp)
        out.clear()
        out.subcomponents = []
        for name, value in comp.items():
            if self.all_props:
                out[name] = value
            elif name in self.props:
                out[name] = _no_value(value) if self.props[name] else value
        for sub in comp.subcomponents:
            if self.all_comps:
                out.subcomponents.append(sub)
            elif sub.name in self.comps:
                out.subcomponents.append(self.comps[sub.name].apply(sub))
        return out


def _no_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_no_value(v) for v in value]
    empty = vText("")
    empty.params.update(getattr(value, "params", {}))
    empty.params.pop("VALUE", None)
    return empty


@dataclass
class CalendarDataSpec:
    """How to return calendar data: as stored, or selected, expanded and limited."""

    selection: CompSelection | None = None
    expand: TimeRange | None = None
    limit_recurrence: TimeRange | None = None
    limit_freebusy: TimeRange | None = None
    floating_tz: tzinfo = UTC
    content_type: str = "text/calendar"
    version: str = "2.0"

    @property
    def is_identity(self) -> bool:
        """True when the data is returned as stored."""
        return (self.selection is None and self.expand is None
                and self.limit_recurrence is None and self.limit_freebusy is None)

    def render(self, cal_bytes: bytes) -> bytes:
        if self.is_identity:
            return cal_bytes
        try:
            cal = Calendar.from_ical(cal_bytes)
        except Exception as exc:  # stored data we cannot read is shown as it is
            log.warning("calendar-data not reshaped: %s", exc)
            return cal_bytes
        try:
            return self._reshape(cal).to_ical()
        except (TypeError, ValueError, AttributeError, KeyError, IndexError,
                OverflowError) as exc:  # stored data the rules below did not foresee
            log.warning("calendar-data not reshaped: %r", exc)
            return cal_bytes

    def _reshape(self, cal: Calendar) -> Component:
        if self.limit_freebusy is not None:
            limit_freebusy(cal, self.limit_freebusy, self.floating_tz)
        if self.expand is not None:
            cal = expand(cal, self.expand, self.floating_tz)
        elif self.limit_recurrence is not None:
            limit_recurrence(cal, self.limit_recurrence, self.floating_tz)
        return cal if self.selection is None else self.selection.apply(cal)


# -- expand, limit-recurrence-set, limit-freebusy-set ----------------------------------

def expand(cal: Calendar, rng: TimeRange, floating_tz: tzinfo = UTC) -> Calendar:
    """``cal`` with each recurrence set replaced by its instances overlapping ``rng``."""
    out = copy.copy(cal)
    out.subcomponents = [c for c in cal.subcomponents
                         if c.name not in RECURRING and c.name != "VTIMEZONE"]
    start = rng.start or EARLIEST
    end = rng.end or LATEST
    work = copy.copy(cal)
    work.subcomponents = []
    origin: dict[int, Component] = {}
    for comp in cal.subcomponents:
        ready = _bounded(comp, start, end, floating_tz)
        origin[id(ready)] = comp
        work.subcomponents.append(ready)
    for inst in occurrences(work, start, end, components=RECURRING, floating_tz=floating_tz,
                            max_instances=MAX_INSTANCES):
        source = origin.get(id(inst.component))
        if source is None:
            continue
        span = (as_utc(inst.start, floating_tz), as_utc(inst.end, floating_tz))
        if not _TESTS[str(source.name)](source, span if "DTSTART" in source else None, rng):
            continue
        out.subcomponents.append(_instance(source, inst.start, inst.end, floating_tz))
    return out


def _bounded(comp: Component, start: datetime, end: datetime, floating_tz: tzinfo
             ) -> Component:
    """``comp`` made cheap to expand over [start, end): a rule whose days never come or
    that is too costly loses its RRULE (DTSTART stays, as its first instance); an old
    dense rule starts closer to ``start``."""
    if comp.name not in RECURRING or not is_recurring(comp):
        return comp
    if not hopeless(comp):
        # Floating times and dates are compared in a zone the expansion does not know.
        margin = MARGIN if getattr(dt(comp, "DTSTART"), "tzinfo", None) is None else ZERO
        ready = fast_forward(comp, start - duration_of(comp) - margin, floating_tz) or comp
        if not too_costly(ready, end + margin, floating_tz, at_once=True):
            return ready
    log.info("RRULE of %s not expanded: first instance only", comp.get("UID"))
    single = copy.copy(comp)
    single.pop("RRULE", None)
    return single


def _instance(source: Component, start: date | datetime, end: date | datetime,
              floating_tz: tzinfo) -> Component:
    comp = copy.copy(source)
    comp.subcomponents = list(source.subcomponents)
    recurring = "RECURRENCE-ID" not in source and any(k in source for k in ("RRULE", "RDATE"))
    for name in (*_RECURRENCE, "DTSTART", "DTEND", "DUE", "RECURRENCE-ID"):
        comp.pop(name, None)
    if "DTSTART" in source:
        comp.add("DTSTART", start)
        if "DTEND" in source:
            comp.add("DTEND", end)
        elif "DUE" in source:
            comp.add("DUE", end)
    elif "DUE" in source:
        comp.add("DUE", _utc_value(dt(source, "DUE"), floating_tz))
    if "RECURRENCE-ID" in source:
        params = getattr(source.get("RECURRENCE-ID"), "params", {})
        comp.add("RECURRENCE-ID", _utc_value(dt(source, "RECURRENCE-ID"), floating_tz),
                 parameters={"RANGE": params["RANGE"]} if "RANGE" in params else {})
    elif recurring:
        comp.add("RECURRENCE-ID", start)
    return comp


def _utc_value(value: date | datetime, floating_tz: tzinfo) -> date | datetime:
    return as_utc(value, floating_tz) if isinstance(value, datetime) else value


def limit_recurrence(cal: Calendar, rng: TimeRange, floating_tz: tzinfo = UTC) -> None:
    """Keep masters and the overrides that impact ``rng`` (RFC 4791 9.6.6)."""
    masters = {str(c.get("UID")): c for c in cal.subcomponents
               if c.name in RECURRING and "RECURRENCE-ID" not in c}
    kept = []
    for comp in cal.subcomponents:
        if comp.name in RECURRING and "RECURRENCE-ID" in comp:
            if not _impacts(comp, masters.get(str(comp.get("UID"))), rng, floating_tz):
                continue
        kept.append(comp)
    cal.subcomponents = kept


def _impacts(override: Component, master: Component | None, rng: TimeRange,
             floating_tz: tzinfo) -> bool:
    test = _TESTS[str(override.name)]
    if test(override, own_span(override, floating_tz), rng):
        return True
    original = as_utc(dt(override, "RECURRENCE-ID"), floating_tz)
    params = getattr(override.get("RECURRENCE-ID"), "params", {})
    if str(params.get("RANGE", "")).upper() == "THISANDFUTURE":
        return rng.end is None or original < rng.end
    length = own_span(master, floating_tz) if master is not None else None
    end = original + (length[1] - length[0]) if length else original
    return test(master or override, (original, end), rng)


def limit_freebusy(cal: Calendar, rng: TimeRange, floating_tz: tzinfo = UTC) -> None:
    """Keep only the FREEBUSY periods overlapping ``rng`` (RFC 4791 9.6.7)."""
    for comp in cal.walk("VFREEBUSY"):
        kept = []
        for prop in prop_values(comp, "FREEBUSY"):
            params = {k: v for k, v in getattr(prop, "params", {}).items() if k != "VALUE"}
            for start, end in freebusy_periods(_single(prop), floating_tz):
                if rng.overlaps(start, end):
                    kept.append((start, end, params))
        comp.pop("FREEBUSY", None)
        periods = []
        for start, end, params in kept:
            period = vPeriod((start, end))
            period.params.pop("VALUE", None)  # PERIOD is the default; keep lines as they were
            period.params.update(params)
            periods.append(period)
        if periods:
            comp["FREEBUSY"] = periods if len(periods) > 1 else periods[0]


def _single(prop: Any) -> Component:
    holder = Component()
    holder["FREEBUSY"] = prop
    return holder


# -- parsing ---------------------------------------------------------------------------

def parse_calendar_data(elem: etree._Element, *, floating_tz: tzinfo = UTC) -> CalendarDataSpec:
    """The ``{CALDAV}calendar-data`` of a request as a :class:`CalendarDataSpec`."""
    content_type = (elem.get("content-type") or "text/calendar").strip().lower()
    version = (elem.get("version") or "2.0").strip()
    if content_type != "text/calendar" or version != "2.0":
        raise DavError(403, SUPPORTED_DATA, f"cannot return {content_type} {version}")
    spec = CalendarDataSpec(floating_tz=floating_tz)
    for kid in elem:
        if not isinstance(kid.tag, str):
            continue
        if kid.tag == tag(CALDAV, "comp") and spec.selection is None:
            spec.selection = _selection(kid, 1)
            if spec.selection.name != "VCALENDAR":
                raise DavError(400, None, "calendar-data selects from VCALENDAR")
        elif kid.tag == tag(CALDAV, "expand") and spec.expand is None:
            spec.expand = _range(kid, both=True)
        elif kid.tag == tag(CALDAV, "limit-recurrence-set") and spec.limit_recurrence is None:
            spec.limit_recurrence = _range(kid, both=True)
        elif kid.tag == tag(CALDAV, "limit-freebusy-set") and spec.limit_freebusy is None:
            spec.limit_freebusy = _range(kid, both=True)
        else:
            raise DavError(400, None, f"unexpected {kid.tag} in calendar-data")
    if spec.expand is not None and spec.limit_recurrence is not None:
        raise DavError(400, None, "expand and limit-recurrence-set exclude each other")
    return spec


def _range(elem: etree._Element, both: bool) -> TimeRange:
    rng = parse_time_range(elem, None, 400)
    if both and (rng.start is None or rng.end is None):
        raise DavError(400, None, f"{etree.QName(elem).localname} needs start and end")
    return rng


def _selection(elem: etree._Element, depth: int) -> CompSelection:
    if depth > MAX_DEPTH:
        raise DavError(400, None, "comp nested too deep")
    name = (elem.get("name") or "").strip().upper()
    if not name:
        raise DavError(400, None, "comp without a name")
    kids = [k for k in elem if isinstance(k.tag, str)]
    if not kids:
        return CompSelection(name)
    all_props = all_comps = False
    props: dict[str, bool] = {}
    comps: dict[str, CompSelection] = {}
    for kid in kids:
        if kid.tag == tag(CALDAV, "allprop"):
            all_props = True
        elif kid.tag == tag(CALDAV, "allcomp"):
            all_comps = True
        elif kid.tag == tag(CALDAV, "prop"):
            prop = (kid.get("name") or "").strip().upper()
            if not prop:
                raise DavError(400, None, "prop without a name")
            props[prop] = (kid.get("novalue") or "no").strip().lower() == "yes"
        elif kid.tag == tag(CALDAV, "comp"):
            sub = _selection(kid, depth + 1)
            comps[sub.name] = sub
        else:
            raise DavError(400, None, f"unexpected {kid.tag} in comp")
    return CompSelection(name, all_props, props, all_comps, comps)
