"""iCalendar → MAPI → iCalendar keeps every occurrence over two years (hypothesis).

Rules are drawn from what MS-OXOCAL patterns express (daily, weekly, monthly by
day or nth weekday, yearly; INTERVAL, BYDAY, COUNT or UNTIL, WKST), in zones with
and without daylight saving, with deleted (EXDATE) and moved (RECURRENCE-ID)
instances; both sides are expanded with :mod:`gateway.convert.expand`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.convert.expand import occurrences
from gateway.convert.ical_in import parse_calendar_report
from gateway.convert.ical_out import render_calendar

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def rules(draw: st.DrawFn) -> str:
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    parts = [f"FREQ={freq}", f"INTERVAL={draw(st.integers(1, 4))}"]
    if freq == "WEEKLY":
        days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=4, unique=True))
        parts.append("BYDAY=" + ",".join(days))
        parts.append("WKST=" + draw(st.sampled_from(["MO", "SU"])))
    elif freq in ("MONTHLY", "YEARLY"):
        if freq == "YEARLY":
            parts.append(f"BYMONTH={draw(st.integers(1, 12))}")
        if draw(st.booleans()):
            parts.append(f"BYMONTHDAY={draw(st.sampled_from([*range(1, 29), -1]))}")
        else:
            nth = draw(st.sampled_from([1, 2, 3, 4, -1]))
            parts.append(f"BYDAY={nth}{draw(st.sampled_from(DAYS))}")
    return ";".join(parts)


@st.composite
def calendars(draw: st.DrawFn) -> tuple[bytes, date]:
    rule = draw(rules())
    all_day = draw(st.booleans()) and "FREQ=DAILY" not in rule
    zone = draw(st.sampled_from(ZONES))
    seed = datetime(2024, 1, 1) + timedelta(days=draw(st.integers(0, 1000)),
                                            hours=draw(st.integers(6, 16)),
                                            minutes=draw(st.sampled_from([0, 15, 30, 45])))
    if all_day:
        seed = seed.replace(hour=0, minute=0)
    first = next(iter(rrulestr(rule, dtstart=seed)))
    end_kind = draw(st.sampled_from(["count", "until", "never"]))
    local_rule = rule
    if end_kind == "count":
        rule += f";COUNT={draw(st.integers(1, 40))}"
        local_rule = rule
    elif end_kind == "until":
        until = first + timedelta(days=draw(st.integers(0, 500)))
        local_rule += f";UNTIL={until:%Y%m%dT%H%M%S}"
        if all_day:
            rule += f";UNTIL={until:%Y%m%d}"
        else:
            utc = until.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
            rule += f";UNTIL={utc:%Y%m%dT%H%M%SZ}"
    instances = list(rrulestr(local_rule, dtstart=first).xafter(first, count=12, inc=True))
    minutes = draw(st.integers(15, 240))

    def when(value: datetime, name: str) -> str:
        if all_day:
            return f"{name};VALUE=DATE:{value:%Y%m%d}"
        if zone == "UTC":
            return f"{name}:{value:%Y%m%dT%H%M%S}Z"
        return f"{name};TZID={zone}:{value:%Y%m%dT%H%M%S}"

    length = timedelta(days=1 + minutes // 100) if all_day else timedelta(minutes=minutes)
    lines = ["BEGIN:VEVENT", "UID:prop@example.com", "DTSTAMP:20240101T000000Z",
             when(first, "DTSTART"), when(first + length, "DTEND"), f"RRULE:{rule}",
             "SUMMARY:Series"]
    picked = draw(st.lists(st.sampled_from(instances), max_size=3, unique=True))
    overrides = []
    for index, instance in enumerate(picked):
        if index == 0:
            lines.append(when(instance, "EXDATE"))
            continue
        moved = instance + timedelta(days=draw(st.integers(0, 1)),
                                     hours=draw(st.integers(-2, 4)))
        overrides += ["BEGIN:VEVENT", "UID:prop@example.com", "DTSTAMP:20240101T000000Z",
                      when(instance, "RECURRENCE-ID"), when(moved, "DTSTART"),
                      when(moved + length, "DTEND"), "SUMMARY:Moved", "END:VEVENT"]
    lines.append("END:VEVENT")
    text = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *lines,
                        *overrides, "END:VCALENDAR", ""])
    return text.encode(), first.date()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calendars())
def test_round_trip_keeps_occurrences_for_two_years(case: tuple[bytes, date]) -> None:
    data, first = case
    result = parse_calendar_report(data)
    assert not [e for e in result.errors if "not kept" in e or "dropped" in e], result.errors
    out = render_calendar(result.messages)
    start, end = first - timedelta(days=2), first + timedelta(days=731)
    before = [(i.start, i.end) for i in occurrences(data, start, end)]
    after = [(i.start, i.end) for i in occurrences(out, start, end)]
    assert after == before, out.decode()
