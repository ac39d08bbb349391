"""CalDAV ``calendar-query`` filters (RFC 4791 sections 9.7 to 9.9): parsed once, run on many.

:func:`parse_filter` turns a ``{CALDAV}filter`` element into a :class:`CalendarFilter`
tree (comp-filter, prop-filter, param-filter, is-not-defined, text-match with collation and
negate-condition, time-range); :meth:`CalendarFilter.matches` runs it on one
:class:`icalendar.Calendar`. Bad filters raise :class:`DavError` 403 with ``valid-filter``,
``supported-filter`` or ``supported-collation``. Apple's ``test="anyof"`` on comp-filter and
prop-filter is understood; ``allof`` is the default, as RFC 4791 has it.

Time ranges (section 9.9, recurrence sets included) are evaluated by
:mod:`plugins.dav.time_range`. Stored data the rules there do not foresee makes an object not
match; it never fails the request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import partial
from typing import Any

from icalendar import Calendar, Component
from lxml import etree

from plugins.dav import filter_parsing, text_match
from plugins.dav.errors import DavError
from plugins.dav.filter_parsing import FilterParser, FilterRules
from plugins.dav.time_range import (
    Context,
    TimeRange,
    param_values,
    prop_in_range,
    prop_text,
    prop_values,
)
from plugins.dav.xmlns import CALDAV, tag

log = logging.getLogger(__name__)

VALID = tag(CALDAV, "valid-filter")
SUPPORTED = tag(CALDAV, "supported-filter")
COLLATION = tag(CALDAV, "supported-collation")

# A time-range on VCALENDAR itself (RFC 4791 9.7.1 lists none there) is read as "one of
# its components overlaps", as Radicale and the caldav library do.
TIME_RANGE_COMPONENTS = ("VCALENDAR", "VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY", "VALARM")
_UTC_FORM = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")


def parse_utc(text: str | None, condition: str | None = VALID,
              status: int = 403) -> datetime | None:
    """A ``YYYYMMDDTHHMMSSZ`` attribute as an aware datetime (None when absent)."""
    if text is None:
        return None
    found = _UTC_FORM.fullmatch(text.strip())
    try:
        if found is None:
            raise ValueError(text)
        year, month, day, hour, minute, second = map(int, found.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise DavError(status, condition, f"not a UTC date-time: {text[:40]!r}") from None


class ParamFilter(filter_parsing.ParamFilter):
    """A ``param-filter`` on an iCalendar property."""

    def values(self, prop: Any) -> list[str]:
        return param_values(prop, self.name)


@dataclass(frozen=True)
class PropFilter:
    """A ``prop-filter``: absent, or one instance of the property passes every test."""

    name: str
    defined: bool = True
    time_range: TimeRange | None = None
    text: text_match.TextMatch | None = None
    params: tuple[filter_parsing.ParamFilter, ...] = ()
    any_of: bool = False

    def matches(self, comp: Component, ctx: Context) -> bool:
        props = prop_values(comp, self.name)
        if not self.defined:
            return not props
        return any(self._matches_one(prop, ctx) for prop in props)

    def _matches_one(self, prop: Any, ctx: Context) -> bool:
        tests: list[Callable[[], bool]] = []
        if self.time_range is not None:
            tests.append(partial(prop_in_range, prop, self.time_range, ctx.floating_tz))
        if self.text is not None:
            text = self.text
            tests.append(lambda: text(prop_text(prop)))
        tests.extend(partial(p.matches, prop) for p in self.params)
        return combine(tests, self.any_of)


@dataclass(frozen=True)
class CompFilter:
    """A ``comp-filter``: absent, or one such subcomponent passes every test."""

    name: str
    defined: bool = True
    time_range: TimeRange | None = None
    props: tuple[PropFilter, ...] = ()
    comps: tuple[CompFilter, ...] = ()
    any_of: bool = False

    def matches(self, parent: Component, ctx: Context) -> bool:
        children = [c for c in parent.subcomponents if c.name == self.name]
        if not self.defined:
            return not children
        return any(self.matches_one(child, parent, ctx) for child in children)

    def matches_one(self, comp: Component, parent: Component | None, ctx: Context) -> bool:
        tests: list[Callable[[], bool]] = []
        if self.time_range is not None:
            tests.append(partial(ctx.in_range, comp, parent, self.time_range))
        tests.extend(partial(p.matches, comp, ctx) for p in self.props)
        tests.extend(partial(c.matches, comp, ctx) for c in self.comps)
        return combine(tests, self.any_of)


def combine(tests: list[Callable[[], bool]], any_of: bool) -> bool:
    """allof (every test, true when there is none) or anyof (at least one), lazily."""
    if not tests:
        return True
    return any(t() for t in tests) if any_of else all(t() for t in tests)


@dataclass
class CalendarFilter:
    """A parsed ``{CALDAV}filter``: its VCALENDAR comp-filter, ready to run on many objects."""

    root: CompFilter

    @property
    def component(self) -> str | None:
        """The component every match must hold (VEVENT, VTODO, ...), or None."""
        names = {c.name for c in self._required()}
        return names.pop() if len(names) == 1 else None

    @property
    def time_range(self) -> tuple[datetime | None, datetime | None] | None:
        """The time-range on :attr:`component` (UTC), for a cheap pre-filter; None if none."""
        required = self._required()
        if len(required) != 1 or required[0].time_range is None or required[0].any_of:
            return None
        return required[0].time_range.as_tuple()

    @property
    def only_time_range(self) -> bool:
        """The filter is nothing but one time-range on :attr:`component` (the common
        query): an object whose stored start and end decide it needs no reading."""
        root = self.root
        if root.any_of or root.props or len(root.comps) != 1:
            return False
        wanted = root.comps[0]
        return (wanted.defined and wanted.time_range is not None and not wanted.props
                and not wanted.comps and not wanted.any_of)

    def _required(self) -> list[CompFilter]:
        """The comp-filters under VCALENDAR that every match passes."""
        return [] if self.root.any_of else [c for c in self.root.comps if c.defined]

    def matches(self, cal: Calendar, *, floating_tz: tzinfo = UTC) -> bool:
        """Whether the calendar object resource ``cal`` matches."""
        if cal.name != "VCALENDAR":
            return False
        try:
            return self.root.matches_one(cal, None, Context(cal, floating_tz))
        except (TypeError, ValueError, AttributeError, KeyError, IndexError,
                OverflowError) as exc:  # stored data the rules above did not foresee
            log.warning("calendar object %s not matched: %r", _uid(cal), exc)
            return False


def _uid(cal: Calendar) -> str:
    return next((str(c.get("UID")) for c in cal.subcomponents if "UID" in c), "?")


# -- parsing ---------------------------------------------------------------------------

class _Parser(FilterParser):
    """Builds the filter tree, counting elements and depth as it goes."""

    rules = FilterRules(CALDAV, invalid=VALID, supported=SUPPORTED, collation=COLLATION,
                        default_collation=text_match.ASCII_CASEMAP, default_test="allof",
                        own_namespace_only=True)
    param_filter = ParamFilter

    def comp(self, elem: etree._Element, depth: int) -> CompFilter:
        name = self.name(elem)
        kids = self.children(elem, depth)
        if self.not_defined(kids):
            return CompFilter(name, defined=False)
        ranges = [self.time_range(k) for k in kids if k.tag == tag(CALDAV, "time-range")]
        if len(ranges) > 1:
            raise DavError(403, VALID, "more than one time-range")
        if ranges and name not in TIME_RANGE_COMPONENTS:
            raise DavError(403, VALID, f"time-range on {name}")
        props, comps = [], []
        for kid in kids:
            if kid.tag == tag(CALDAV, "prop-filter"):
                props.append(self.prop(kid, depth + 1))
            elif kid.tag == tag(CALDAV, "comp-filter"):
                comps.append(self.comp(kid, depth + 1))
            elif kid.tag != tag(CALDAV, "time-range"):
                raise DavError(403, SUPPORTED, f"unexpected {kid.tag} in comp-filter")
        return CompFilter(name, True, ranges[0] if ranges else None, tuple(props), tuple(comps),
                          self.any_of(elem))

    def prop(self, elem: etree._Element, depth: int) -> PropFilter:
        name = self.name(elem)
        kids = self.children(elem, depth)
        if self.not_defined(kids):
            return PropFilter(name, defined=False)
        rng: TimeRange | None = None
        text: text_match.TextMatch | None = None
        params = []
        for kid in kids:
            if kid.tag == tag(CALDAV, "param-filter"):
                params.append(self.param(kid, depth + 1))
            elif kid.tag == tag(CALDAV, "time-range") and rng is None and text is None:
                rng = self.time_range(kid)
            elif kid.tag == tag(CALDAV, "text-match") and rng is None and text is None:
                text = self.text_match(kid)
            else:
                raise DavError(403, VALID, f"unexpected {kid.tag} in prop-filter")
        return PropFilter(name, True, rng, text, tuple(params), self.any_of(elem))

    def time_range(self, elem: etree._Element) -> TimeRange:
        return parse_time_range(elem)


def parse_time_range(elem: etree._Element, condition: str | None = VALID,
                     status: int = 403) -> TimeRange:
    """A ``time-range`` (or ``expand`` ...) element's start and end, checked."""
    start = parse_utc(elem.get("start"), condition, status)
    end = parse_utc(elem.get("end"), condition, status)
    if start is None and end is None:
        raise DavError(status, condition, "time-range without start or end")
    if start is not None and end is not None and end <= start:
        raise DavError(status, condition, "time-range ends before it starts")
    return TimeRange(start, end)


def parse_filter(elem: etree._Element) -> CalendarFilter:
    """The ``{CALDAV}filter`` ``elem`` as a :class:`CalendarFilter`; raises :class:`DavError`."""
    if elem is None or elem.tag != tag(CALDAV, "filter"):
        raise DavError(403, VALID, "no CALDAV:filter")
    parser = _Parser()
    kids = parser.children(elem, 1)
    if len(kids) != 1 or kids[0].tag != tag(CALDAV, "comp-filter"):
        raise DavError(403, VALID, "a filter holds one comp-filter")
    root = parser.comp(kids[0], 2)
    if root.name != "VCALENDAR" or not root.defined:
        raise DavError(403, VALID, "the top comp-filter is VCALENDAR")
    return CalendarFilter(root)
