"""Recurrence expansion (gateway.convert.expand): rules whose days never come stay cheap.

dateutil walks a rule without instances to the year 9999 (``FREQ=DAILY;BYSETPOS=2`` took
about 6 s, ``FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30`` about 8.5 s); :func:`occurrences` now
reads such a rule as its first instance. Rules that do have instances, however rare, expand
as dateutil has them.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from dateutil.rrule import rrulestr
from icalendar import Calendar

from gateway.convert.expand import hopeless, occurrences

DTSTART = datetime(2025, 1, 6, 9, tzinfo=UTC)
"""A Monday."""
NEVER = ["FREQ=DAILY;BYSETPOS=2", "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
         "FREQ=DAILY;BYSETPOS=2;COUNT=3", "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31",
         "FREQ=HOURLY;BYMINUTE=0;BYSETPOS=-2", "FREQ=MONTHLY;BYMONTHDAY=30;BYYEARDAY=60"]
RARE = ["FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "FREQ=MONTHLY;BYMONTHDAY=31",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "FREQ=DAILY;BYHOUR=9,17;BYSETPOS=2",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30,1", "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
        "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=5", "FREQ=DAILY;INTERVAL=3;UNTIL=20250301T000000Z",
        "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10", "FREQ=HOURLY;INTERVAL=5;BYHOUR=9"]
"""Rules with instances (leap days, 31sts, Friday the 13th, last weekdays ...)."""
WINDOW_END = datetime(2029, 1, 1, tzinfo=UTC)


def event(rule: str, *extra: str, uid: str = "x") -> str:
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20250101T000000Z",
             "DTSTART:20250106T090000Z", "DTEND:20250106T100000Z", f"RRULE:{rule}", *extra,
             "END:VEVENT"]
    return "\r\n".join(lines) + "\r\n"


def calendar(*events: str) -> bytes:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//expand//EN\r\n"
            + "".join(events) + "END:VCALENDAR\r\n").encode()


def timed(source: bytes, start: datetime, end: datetime) -> tuple[float, list[datetime | date]]:
    began = time.monotonic()
    found = occurrences(source, start, end)
    return time.monotonic() - began, [i.start for i in found]


@pytest.mark.parametrize("rule", ["FREQ=DAILY;BYSETPOS=2",
                                  "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30"])
def test_rules_whose_days_never_come_return_at_once(rule: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    data = calendar(event(rule))
    with caplog.at_level(logging.WARNING, logger="gateway.convert.expand"):
        took, starts = timed(data, DTSTART - timedelta(days=1), DTSTART + timedelta(days=1))
    assert took < 1.0
    assert starts == [DTSTART]  # the first instance stands alone
    assert "never come" in caplog.text
    took, starts = timed(data, DTSTART + timedelta(days=1), DTSTART + timedelta(days=400))
    assert took < 1.0
    assert starts == []


def test_rdates_of_a_hopeless_rule_stay() -> None:
    data = calendar(event("FREQ=DAILY;BYSETPOS=2", "RDATE:20250110T090000Z"))
    took, starts = timed(data, DTSTART, DTSTART + timedelta(days=30))
    assert took < 1.0
    assert starts == [DTSTART, datetime(2025, 1, 10, 9, tzinfo=UTC)]


def test_a_hopeless_rule_does_not_hide_its_neighbours() -> None:
    data = calendar(event("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30", uid="bad"),
                    event("FREQ=WEEKLY;BYDAY=MO", uid="good"))
    began = time.monotonic()
    found = occurrences(data, DTSTART, DTSTART + timedelta(days=28))
    assert time.monotonic() - began < 1.0
    assert [(i.uid, i.start) for i in found] == [
        ("bad", DTSTART), ("good", DTSTART),
        *[("good", DTSTART + timedelta(weeks=k)) for k in (1, 2, 3)]]


@pytest.mark.parametrize("rule", NEVER)
def test_hopeless_knows_rules_without_days(rule: str) -> None:
    [comp] = Calendar.from_ical(calendar(event(rule))).walk("VEVENT")
    assert hopeless(comp)


@pytest.mark.parametrize("rule", RARE)
def test_rare_rules_expand_as_dateutil_has_them(rule: str) -> None:
    [comp] = Calendar.from_ical(calendar(event(rule))).walk("VEVENT")
    assert not hopeless(comp)
    by_rule = rrulestr(rule, dtstart=DTSTART).between(DTSTART, WINDOW_END, inc=True)
    # DTSTART is the first instance even where the rule would skip it (RFC 5545 3.8.5.3).
    expected = sorted({DTSTART, *(t for t in by_rule if t < WINDOW_END)})
    took, starts = timed(calendar(event(rule)), DTSTART, WINDOW_END)
    assert starts == expected
    assert len(starts) > 1 and took < 2.0
