"""CALDAV:calendar-data in requests: comp/prop selection, expand, limit-recurrence-set,
limit-freebusy-set (RFC 4791 9.6 and the 7.8 examples), media types, and valid output."""

from __future__ import annotations

import time
from datetime import timedelta, timezone

import pytest
from icalendar import Calendar

from gateway.xmlsafe import parse
from plugins.dav.calendar_data import MAX_INSTANCES, CalendarDataSpec, parse_calendar_data
from plugins.dav.errors import DavError
from tests.unit.test_dav_caldav_filter import ABCD2, ABCD3, ABCD8, EASTERN

C = "urn:ietf:params:xml:ns:caldav"


def spec(inner: str = "", attrs: str = "", **kwargs: object) -> CalendarDataSpec:
    return parse_calendar_data(parse(
        f'<C:calendar-data xmlns:C="{C}"{attrs}>{inner}</C:calendar-data>'.encode()), **kwargs)


def lines(data: bytes) -> list[str]:
    assert data.endswith(b"\r\n")
    physical = data.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in physical), "lines are folded at 75 octets"
    assert b"\n" not in data.replace(b"\r\n", b"")
    Calendar.from_ical(data)  # readable again
    return data.decode().replace("\r\n ", "").split("\r\n")[:-1]


def blocks(data: bytes, name: str) -> list[list[str]]:
    found, current = [], None
    for line in lines(data):
        if line == f"BEGIN:{name}":
            current = []
        elif line == f"END:{name}":
            found.append(current)
            current = None
        elif current is not None:
            current.append(line)
    return found


def raw(body: str, tz: bool = True) -> bytes:
    text = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n" + (EASTERN if tz else "") \
        + body.strip() + "\nEND:VCALENDAR\n"
    return text.replace("\n", "\r\n").encode()


def test_identity() -> None:
    plain = spec()
    assert plain.is_identity
    assert plain.render(ABCD3.to_ical()) == ABCD3.to_ical()
    assert spec(attrs=' content-type="text/calendar" version="2.0"').is_identity


@pytest.mark.parametrize("attrs", [' content-type="application/calendar+json"',
                                   ' content-type="text/calendar" version="1.0"'])
def test_unsupported_media_type(attrs: str) -> None:
    with pytest.raises(DavError) as caught:
        spec(attrs=attrs)
    assert (caught.value.status, caught.value.condition) == (
        403, f"{{{C}}}supported-calendar-data")


@pytest.mark.parametrize("inner", [
    '<C:expand start="20060103T000000Z"/>',
    '<C:expand start="20060103" end="20060105"/>',
    '<C:expand start="20060105T000000Z" end="20060103T000000Z"/>',
    '<C:limit-recurrence-set end="20060105T000000Z"/>',
    '<C:expand start="20060103T000000Z" end="20060105T000000Z"/>'
    '<C:limit-recurrence-set start="20060103T000000Z" end="20060105T000000Z"/>',
    '<C:comp name="VEVENT"/>',
    '<C:comp name="VCALENDAR"><C:prop/></C:comp>',
    '<C:comp name="VCALENDAR"><C:bogus/></C:comp>',
    '<C:comp name="VCALENDAR">' + '<C:comp name="X">' * 20 + "</C:comp>" * 21,
])
def test_bad_requests(inner: str) -> None:
    with pytest.raises(DavError) as caught:
        spec(inner)
    assert caught.value.status == 400


PARTIAL = ('<C:comp name="VCALENDAR"><C:prop name="VERSION"/><C:comp name="VEVENT">'
           + "".join(f'<C:prop name="{p}"/>' for p in (
               "SUMMARY", "UID", "DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXRULE",
               "EXDATE", "RECURRENCE-ID"))
           + '</C:comp><C:comp name="VTIMEZONE"/></C:comp>')


def test_7_8_1_partial_retrieval() -> None:
    wanted = spec(PARTIAL)
    assert not wanted.is_identity
    out = wanted.render(ABCD2.to_ical())
    text = lines(out)
    assert "VERSION:2.0" in text and not any(t.startswith("PRODID") for t in text)
    events = blocks(out, "VEVENT")
    assert len(events) == 3
    assert all(not any(p.startswith("DTSTAMP") for p in e) for e in events)
    assert "RRULE:FREQ=DAILY;COUNT=5" in events[0]
    assert "RECURRENCE-ID;TZID=US/Eastern:20060104T120000" in events[1]
    # an empty comp is the whole component: VTIMEZONE keeps its rules
    assert len(blocks(out, "STANDARD")) == 1 and "TZNAME:EDT" in blocks(out, "DAYLIGHT")[0]


def test_novalue_allprop_allcomp() -> None:
    out = spec('<C:comp name="VCALENDAR"><C:allprop/><C:comp name="VEVENT">'
               '<C:prop name="UID"/><C:prop name="ATTENDEE" novalue="yes"/></C:comp>'
               '</C:comp>').render(ABCD3.to_ical())
    text = lines(out)
    assert "PRODID:-//test//EN" in text
    assert blocks(out, "VTIMEZONE") == []
    event = blocks(out, "VEVENT")[0]
    assert "UID:DC6C50A017428C5216A2F1CD@example.com" in event
    assert "ATTENDEE;PARTSTAT=NEEDS-ACTION:" in event
    assert sum(p.startswith("ATTENDEE") and p.endswith(":") for p in event) == 2
    assert not any(p.startswith("SUMMARY") for p in event)
    whole = spec('<C:comp name="VCALENDAR"><C:allprop/><C:allcomp/></C:comp>').render(
        ABCD3.to_ical())
    assert Calendar.from_ical(whole) == Calendar.from_ical(ABCD3.to_ical())


def test_7_8_3_expand() -> None:
    wanted = spec('<C:expand start="20060103T000000Z" end="20060105T000000Z"/>')
    out = wanted.render(ABCD2.to_ical())
    events = blocks(out, "VEVENT")
    assert blocks(out, "VTIMEZONE") == []
    assert [(next(p for p in e if p.startswith("DTSTART")),
             next(p for p in e if p.startswith("RECURRENCE-ID"))) for e in events] == [
        ("DTSTART:20060103T170000Z", "RECURRENCE-ID:20060103T170000Z"),
        ("DTSTART:20060104T190000Z", "RECURRENCE-ID:20060104T170000Z")]
    assert "SUMMARY:Event #2 bis" in events[1]
    assert not any(p.startswith(("RRULE", "RDATE", "EXDATE")) for e in events for p in e)
    single = blocks(wanted.render(ABCD3.to_ical()), "VEVENT")
    assert len(single) == 1 and "DTSTART:20060104T150000Z" in single[0]
    assert not any(p.startswith("RECURRENCE-ID") for p in single[0])
    assert blocks(spec('<C:expand start="20070101T000000Z" end="20070102T000000Z"/>').render(
        ABCD3.to_ical()), "VEVENT") == []


def test_expand_with_selection() -> None:
    out = spec('<C:comp name="VCALENDAR"><C:comp name="VEVENT"><C:prop name="DTSTART"/>'
               '<C:prop name="RECURRENCE-ID"/></C:comp></C:comp>'
               '<C:expand start="20060102T000000Z" end="20060107T000000Z"/>').render(
        ABCD2.to_ical())
    assert [e[0] for e in blocks(out, "VEVENT")] == [
        "DTSTART:20060102T170000Z", "DTSTART:20060103T170000Z", "DTSTART:20060104T190000Z",
        "DTSTART:20060105T170000Z", "DTSTART:20060106T190000Z"]


def test_expand_all_day_floating_and_exdate() -> None:
    data = raw("""BEGIN:VEVENT
UID:d
DTSTART;VALUE=DATE:20060102
DTEND;VALUE=DATE:20060103
RRULE:FREQ=DAILY;COUNT=4
EXDATE;VALUE=DATE:20060103
END:VEVENT
BEGIN:VEVENT
UID:f
DTSTART:20060102T090000
DTEND:20060102T093000
RRULE:FREQ=WEEKLY
END:VEVENT""", tz=False)
    out = spec('<C:expand start="20060102T000000Z" end="20060110T000000Z"/>').render(data)
    starts = sorted(next(p for p in e if p.startswith("DTSTART")) for e in blocks(out, "VEVENT"))
    assert starts == ["DTSTART:20060102T090000Z", "DTSTART:20060109T090000Z",
                      "DTSTART;VALUE=DATE:20060102", "DTSTART;VALUE=DATE:20060104",
                      "DTSTART;VALUE=DATE:20060105"]
    assert "RECURRENCE-ID;VALUE=DATE:20060104" in lines(out)
    eastern = spec('<C:expand start="20060102T000000Z" end="20060103T000000Z"/>',
                   floating_tz=timezone(timedelta(hours=-5))).render(data)
    assert "DTSTART:20060102T140000Z" in lines(eastern)


def test_expand_recurring_todo() -> None:
    data = raw("""BEGIN:VTODO
UID:t
DTSTART:20060102T090000Z
DUE:20060102T170000Z
RRULE:FREQ=WEEKLY;COUNT=3
END:VTODO""", tz=False)
    out = spec('<C:expand start="20060108T000000Z" end="20060120T000000Z"/>').render(data)
    todos = blocks(out, "VTODO")
    assert len(todos) == 2
    assert {"DTSTART:20060109T090000Z", "DUE:20060109T170000Z",
            "RECURRENCE-ID:20060109T090000Z"} <= set(todos[0])


def test_expand_is_bounded() -> None:
    def count(rule: str, start: str, end: str) -> int:
        data = raw(f"BEGIN:VEVENT\nUID:s\n{rule}\nEND:VEVENT", tz=False)
        wanted = spec(f'<C:expand start="{start}" end="{end}"/>')
        return len(blocks(wanted.render(data), "VEVENT"))

    started = time.monotonic()
    minutely = "DTSTART:20060101T000000Z\nRRULE:FREQ=MINUTELY"
    assert count(minutely, "20260101T000000Z", "20260101T010000Z") == 60
    secondly = "DTSTART:19000101T000000Z\nRRULE:FREQ=SECONDLY"
    assert count(secondly, "20260101T000000Z", "20260101T001000Z") == 600
    assert count(secondly, "20260101T000000Z", "20260101T010000Z") == MAX_INSTANCES
    # too costly to walk: read as its first instance, which is not in the range
    assert count(secondly, "20260101T000000Z", "20260102T000000Z") == 0
    never = "DTSTART:20060101T000000Z\nRRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"
    assert count(never, "20060101T000000Z", "20260101T000000Z") == 1
    assert time.monotonic() - started < 2


def test_7_8_2_limit_recurrence_set() -> None:
    data = raw("""BEGIN:VEVENT
UID:r
DTSTART;TZID=US/Eastern:20060102T120000
DURATION:PT1H
RRULE:FREQ=DAILY;COUNT=10
SUMMARY:master
END:VEVENT
BEGIN:VEVENT
UID:r
RECURRENCE-ID;TZID=US/Eastern:20060104T120000
DTSTART;TZID=US/Eastern:20060104T140000
DURATION:PT1H
SUMMARY:in range
END:VEVENT
BEGIN:VEVENT
UID:r
RECURRENCE-ID;TZID=US/Eastern:20060106T120000
DTSTART;TZID=US/Eastern:20060106T140000
DURATION:PT1H
SUMMARY:out of range
END:VEVENT
BEGIN:VEVENT
UID:r
RECURRENCE-ID;TZID=US/Eastern:20060103T120000
DTSTART;TZID=US/Eastern:20060110T140000
DURATION:PT1H
SUMMARY:moved away from the range
END:VEVENT
BEGIN:VEVENT
UID:r
RECURRENCE-ID;TZID=US/Eastern:20060108T120000
DTSTART;TZID=US/Eastern:20060104T150000
DURATION:PT1H
SUMMARY:moved into the range
END:VEVENT""")
    out = spec('<C:limit-recurrence-set start="20060103T000000Z" end="20060105T000000Z"/>'
               ).render(data)
    summaries = [p for e in blocks(out, "VEVENT") for p in e if p.startswith("SUMMARY")]
    assert summaries == ["SUMMARY:master", "SUMMARY:in range",
                         "SUMMARY:moved away from the range", "SUMMARY:moved into the range"]
    assert len(blocks(out, "VTIMEZONE")) == 1


def test_7_8_4_limit_freebusy_set() -> None:
    out = spec('<C:limit-freebusy-set start="20060102T000000Z" end="20060103T000000Z"/>'
               ).render(ABCD8.to_ical())
    freebusy = [p for p in lines(out) if p.startswith("FREEBUSY")]
    assert freebusy == ["FREEBUSY;FBTYPE=BUSY-TENTATIVE:20060102T100000Z/20060102T120000Z"]
    assert "DTSTART:20060101T000000Z" in lines(out)


def test_folding_of_long_values() -> None:
    data = raw("BEGIN:VEVENT\nUID:l\nDTSTART:20060102T100000Z\nSUMMARY:" + "é€x" * 100
               + "\nDESCRIPTION:" + "long " * 60 + "\nEND:VEVENT", tz=False)
    out = spec('<C:comp name="VCALENDAR"><C:comp name="VEVENT"><C:prop name="SUMMARY"/>'
               '<C:prop name="DESCRIPTION"/></C:comp></C:comp>').render(data)
    text = lines(out)
    assert "SUMMARY:" + "é€x" * 100 in text


def test_unreadable_data_is_returned_as_stored() -> None:
    junk = b"BEGIN:VCALENDAR\r\nthis is not\r\n"
    assert spec('<C:expand start="20060103T000000Z" end="20060105T000000Z"/>').render(
        junk) == junk


@pytest.mark.parametrize("body", [
    "BEGIN:VEVENT\nUID:x\nDTSTART:notadate\nEND:VEVENT",
    "BEGIN:VEVENT\nUID:x\nDTSTART:20060102T100000Z\nDTSTART:20060103T100000Z\n"
    "RRULE:FREQ=DAILY\nEND:VEVENT",
    "BEGIN:VEVENT\nUID:x\nDTSTART:20060102T100000Z\nRRULE:FREQ=DAILY;UNTIL=garbage\nEND:VEVENT",
])
@pytest.mark.parametrize("inner", [
    '<C:expand start="20060102T000000Z" end="20060110T000000Z"/>',
    '<C:limit-recurrence-set start="20060102T000000Z" end="20060110T000000Z"/>',
])
def test_broken_stored_data_is_returned_readable(body: str, inner: str) -> None:
    data = raw(body, tz=False)
    out = spec(inner).render(data)
    assert out.startswith(b"BEGIN:VCALENDAR\r\n") and out.endswith(b"END:VCALENDAR\r\n")
