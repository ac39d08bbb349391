"""CalDAV calendar-query filters: RFC 4791 7.8 examples, the 9.9 time-range tables,
recurrence with overrides, all-day and floating times, VALARM, and hostile filters."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from icalendar import Calendar

from gateway.xmlsafe import parse
from plugins.dav.caldav_filter import CalendarFilter, parse_filter
from plugins.dav.errors import DavError
from plugins.dav.filter_parsing import MAX_DEPTH

C = "urn:ietf:params:xml:ns:caldav"
VALID = f"{{{C}}}valid-filter"
COLLATION = f"{{{C}}}supported-collation"

EASTERN = """BEGIN:VTIMEZONE
TZID:US/Eastern
BEGIN:STANDARD
DTSTART:19671029T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
TZNAME:EST
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19870405T020000
RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=4
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
TZNAME:EDT
END:DAYLIGHT
END:VTIMEZONE
"""


def ics(body: str, tz: bool = True) -> Calendar:
    text = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n" + (EASTERN if tz else "") \
        + body.strip() + "\nEND:VCALENDAR\n"
    return Calendar.from_ical(text.replace("\n", "\r\n").encode())


# Appendix B of RFC 4791, written again for these tests.
ABCD1 = ics("""BEGIN:VEVENT
DTSTAMP:20060206T001102Z
DTSTART;TZID=US/Eastern:20060102T100000
DURATION:PT1H
SUMMARY:Event #1
DESCRIPTION:Go Steelers!
UID:74855313FA803DA593CD579A@example.com
END:VEVENT""")
ABCD2 = ics("""BEGIN:VEVENT
DTSTAMP:20060206T001121Z
DTSTART;TZID=US/Eastern:20060102T120000
DURATION:PT1H
RRULE:FREQ=DAILY;COUNT=5
SUMMARY:Event #2
UID:00959BC664CA650E933C892C@example.com
END:VEVENT
BEGIN:VEVENT
DTSTAMP:20060206T001121Z
DTSTART;TZID=US/Eastern:20060104T140000
DURATION:PT1H
RECURRENCE-ID;TZID=US/Eastern:20060104T120000
SUMMARY:Event #2 bis
UID:00959BC664CA650E933C892C@example.com
END:VEVENT
BEGIN:VEVENT
DTSTAMP:20060206T001121Z
DTSTART;TZID=US/Eastern:20060106T140000
DURATION:PT1H
RECURRENCE-ID;TZID=US/Eastern:20060106T120000
SUMMARY:Event #2 bis bis
UID:00959BC664CA650E933C892C@example.com
END:VEVENT""")
ABCD3 = ics("""BEGIN:VEVENT
ATTENDEE;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:cyrus@example.com
ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:lisa@example.com
DTSTAMP:20060206T001220Z
DTSTART;TZID=US/Eastern:20060104T100000
DURATION:PT1H
LAST-MODIFIED:20060206T001330Z
ORGANIZER:mailto:cyrus@example.com
SEQUENCE:1
STATUS:TENTATIVE
SUMMARY:Event #3
UID:DC6C50A017428C5216A2F1CD@example.com
END:VEVENT""")
ABCD4 = ics("""BEGIN:VTODO
DTSTAMP:20060205T235335Z
DUE;VALUE=DATE:20060104
STATUS:NEEDS-ACTION
SUMMARY:Task #1
UID:DDDEEB7915FA61233B861457@example.com
BEGIN:VALARM
ACTION:AUDIO
TRIGGER;RELATED=START:-PT10M
END:VALARM
END:VTODO""", tz=False)
ABCD5 = ics("""BEGIN:VTODO
DTSTAMP:20060205T235300Z
DUE;VALUE=DATE:20060106
LAST-MODIFIED:20060205T235308Z
SEQUENCE:1
STATUS:NEEDS-ACTION
SUMMARY:Task #2
UID:E10BA47467C5C69BB74E8720@example.com
BEGIN:VALARM
ACTION:AUDIO
TRIGGER;RELATED=START:-PT10M
END:VALARM
END:VTODO""", tz=False)
ABCD6 = ics("""BEGIN:VTODO
COMPLETED:20051223T122322Z
DTSTAMP:20060205T235400Z
DUE;VALUE=DATE:20051225
LAST-MODIFIED:20060205T235308Z
SEQUENCE:1
STATUS:COMPLETED
SUMMARY:Task #3
UID:E10BA47467C5C69BB74E8722@example.com
END:VTODO""", tz=False)
ABCD7 = ics("""BEGIN:VTODO
DTSTAMP:20060205T235600Z
DUE;VALUE=DATE:20060101
LAST-MODIFIED:20060205T235308Z
SEQUENCE:1
STATUS:CANCELLED
SUMMARY:Task #4
UID:E10BA47467C5C69BB74E8725@example.com
END:VTODO""", tz=False)
ABCD8 = ics("""BEGIN:VFREEBUSY
ORGANIZER;CN="Bernard Desruisseaux":mailto:bernard@example.com
UID:76ef34-54a3d2@example.com
DTSTAMP:20050530T123421Z
DTSTART:20060101T000000Z
DTEND:20060108T000000Z
FREEBUSY:20050531T230000Z/20050601T010000Z
FREEBUSY;FBTYPE=BUSY-TENTATIVE:20060102T100000Z/20060102T120000Z
FREEBUSY:20060103T100000Z/20060103T120000Z
FREEBUSY:20060104T100000Z/20060104T120000Z
FREEBUSY;FBTYPE=BUSY-UNAVAILABLE:20060105T100000Z/20060105T120000Z
FREEBUSY:20060106T100000Z/20060106T120000Z
END:VFREEBUSY""", tz=False)
APPENDIX_B = {"abcd1": ABCD1, "abcd2": ABCD2, "abcd3": ABCD3, "abcd4": ABCD4,
              "abcd5": ABCD5, "abcd6": ABCD6, "abcd7": ABCD7, "abcd8": ABCD8}


def flt(inner: str) -> CalendarFilter:
    return parse_filter(parse(f'<C:filter xmlns:C="{C}">{inner}</C:filter>'.encode()))


def cal_filter(inner: str) -> CalendarFilter:
    return flt(f'<C:comp-filter name="VCALENDAR">{inner}</C:comp-filter>')


def event_range(start: str | None, end: str | None, comp: str = "VEVENT") -> CalendarFilter:
    attrs = (f' start="{start}"' if start else "") + (f' end="{end}"' if end else "")
    return cal_filter(f'<C:comp-filter name="{comp}"><C:time-range{attrs}/></C:comp-filter>')


def matching(f: CalendarFilter) -> list[str]:
    return sorted(name for name, cal in APPENDIX_B.items() if f.matches(cal))


def refused(inner: str, condition: str = VALID) -> None:
    with pytest.raises(DavError) as caught:
        flt(inner)
    assert caught.value.status == 403
    assert caught.value.condition == condition


# -- RFC 4791 section 7.8 examples ----------------------------------------------------

def test_a_time_range_on_vcalendar_is_any_component_in_range() -> None:
    """Not in RFC 4791 9.7.1, but Radicale and the caldav library send and answer it: the
    object matches when one of its events, to-dos or journals overlaps."""
    whole = flt('<C:comp-filter name="VCALENDAR"><C:time-range start="20060104T000000Z" '
                'end="20060105T000000Z"/></C:comp-filter>')
    events_only = event_range("20060104T000000Z", "20060105T000000Z")
    assert set(matching(events_only)) <= set(matching(whole))
    assert matching(whole) and matching(whole) != sorted(APPENDIX_B)
    assert whole.component is None and whole.time_range is None


def test_7_8_1_events_in_a_time_range() -> None:
    f = event_range("20060104T000000Z", "20060105T000000Z")
    assert matching(f) == ["abcd2", "abcd3"]
    assert f.component == "VEVENT"
    assert f.time_range == (datetime(2006, 1, 4, tzinfo=UTC), datetime(2006, 1, 5, tzinfo=UTC))


def test_7_8_5_todos_by_alarm_time_range() -> None:
    f = cal_filter('<C:comp-filter name="VTODO"><C:comp-filter name="VALARM">'
                   '<C:time-range start="20060106T100000Z" end="20060107T100000Z"/>'
                   '</C:comp-filter></C:comp-filter>')
    # Task #2 is due on Jan 6 (no DTSTART): its alarm fires on Jan 5 23:50 UTC, outside.
    assert matching(f) == []
    wide = cal_filter('<C:comp-filter name="VTODO"><C:comp-filter name="VALARM">'
                      '<C:time-range start="20060105T000000Z" end="20060107T000000Z"/>'
                      '</C:comp-filter></C:comp-filter>')
    assert matching(wide) == ["abcd5"]
    assert wide.time_range is None and wide.component == "VTODO"


def test_7_8_6_event_by_uid_octet() -> None:
    f = cal_filter('<C:comp-filter name="VEVENT"><C:prop-filter name="UID">'
                   '<C:text-match collation="i;octet">DC6C50A017428C5216A2F1CD@example.com'
                   '</C:text-match></C:prop-filter></C:comp-filter>')
    assert matching(f) == ["abcd3"]
    lower = cal_filter('<C:comp-filter name="VEVENT"><C:prop-filter name="UID">'
                       '<C:text-match collation="i;octet">dc6c50a017428c5216a2f1cd'
                       '</C:text-match></C:prop-filter></C:comp-filter>')
    assert matching(lower) == []


def test_7_8_7_events_by_partstat() -> None:
    f = cal_filter('<C:comp-filter name="VEVENT"><C:prop-filter name="ATTENDEE">'
                   '<C:text-match collation="i;ascii-casemap">mailto:lisa@example.com'
                   '</C:text-match>'
                   '<C:param-filter name="PARTSTAT"><C:text-match collation="i;ascii-casemap">'
                   'NEEDS-ACTION</C:text-match></C:param-filter></C:prop-filter></C:comp-filter>')
    assert matching(f) == ["abcd3"]
    cyrus = cal_filter('<C:comp-filter name="VEVENT"><C:prop-filter name="ATTENDEE">'
                       '<C:text-match>mailto:cyrus@example.com</C:text-match>'
                       '<C:param-filter name="PARTSTAT"><C:text-match>NEEDS-ACTION</C:text-match>'
                       '</C:param-filter></C:prop-filter></C:comp-filter>')
    assert matching(cyrus) == []  # both tests hold on one ATTENDEE, not across two


def test_7_8_8_events_only() -> None:
    f = cal_filter('<C:comp-filter name="VEVENT"/>')
    assert matching(f) == ["abcd1", "abcd2", "abcd3"]
    assert f.component == "VEVENT" and f.time_range is None


def test_7_8_9_pending_todos() -> None:
    f = cal_filter('<C:comp-filter name="VTODO">'
                   '<C:prop-filter name="COMPLETED"><C:is-not-defined/></C:prop-filter>'
                   '<C:prop-filter name="STATUS"><C:text-match negate-condition="yes">CANCELLED'
                   '</C:text-match></C:prop-filter></C:comp-filter>')
    assert matching(f) == ["abcd4", "abcd5"]


def test_7_8_10_unsupported_collation() -> None:
    refused('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            '<C:prop-filter name="DESCRIPTION"><C:text-match collation="i;fuzzy">'
            'monday</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter>', COLLATION)


def test_freebusy_time_range() -> None:
    assert matching(event_range("20060102T000000Z", "20060103T000000Z", "VFREEBUSY")) == [
        "abcd8"]
    assert matching(event_range("20060109T000000Z", "20060110T000000Z", "VFREEBUSY")) == []
    periods_only = ics("""BEGIN:VFREEBUSY
UID:fb
FREEBUSY:20060102T100000Z/PT2H
END:VFREEBUSY""", tz=False)
    assert event_range("20060102T110000Z", "20060102T113000Z", "VFREEBUSY").matches(periods_only)
    assert not event_range("20060102T120000Z", "20060102T130000Z", "VFREEBUSY").matches(
        periods_only)
    assert not event_range("20060102T120000Z", None, "VFREEBUSY").matches(ics(
        "BEGIN:VFREEBUSY\nUID:x\nEND:VFREEBUSY", tz=False))


# -- VEVENT time ranges (9.9) ---------------------------------------------------------

def one_event(props: str, tz: bool = False) -> Calendar:
    return ics(f"BEGIN:VEVENT\nUID:e\nDTSTAMP:20060101T000000Z\n{props}\nEND:VEVENT", tz)


@pytest.mark.parametrize(("props", "start", "end", "expected"), [
    # DTEND: start < DTEND and end > DTSTART
    ("DTSTART:20060102T100000Z\nDTEND:20060102T110000Z", "20060102T110000Z", None, False),
    ("DTSTART:20060102T100000Z\nDTEND:20060102T110000Z", "20060102T105959Z", None, True),
    ("DTSTART:20060102T100000Z\nDTEND:20060102T110000Z", None, "20060102T100000Z", False),
    ("DTSTART:20060102T100000Z\nDTEND:20060102T110000Z", None, "20060102T100001Z", True),
    # DURATION > 0
    ("DTSTART:20060102T100000Z\nDURATION:PT1H", "20060102T105900Z", "20060102T120000Z", True),
    ("DTSTART:20060102T100000Z\nDURATION:PT1H", "20060102T110000Z", "20060102T120000Z", False),
    # DURATION 0, and no DTEND/DURATION with a date-time: an instant
    ("DTSTART:20060102T100000Z\nDURATION:PT0S", "20060102T100000Z", "20060102T100001Z", True),
    ("DTSTART:20060102T100000Z\nDURATION:PT0S", "20060102T090000Z", "20060102T100000Z", False),
    ("DTSTART:20060102T100000Z", "20060102T100000Z", "20060102T110000Z", True),
    ("DTSTART:20060102T100000Z", "20060102T090000Z", "20060102T100000Z", False),
    # DTEND equal to DTSTART: an instant too (erratum)
    ("DTSTART:20060102T100000Z\nDTEND:20060102T100000Z", "20060102T100000Z", None, True),
    # a date without DTEND lasts one day
    ("DTSTART;VALUE=DATE:20060102", "20060102T235959Z", "20060103T120000Z", True),
    ("DTSTART;VALUE=DATE:20060102", "20060103T000000Z", "20060103T120000Z", False),
    # all-day over two days
    ("DTSTART;VALUE=DATE:20060102\nDTEND;VALUE=DATE:20060104", "20060103T120000Z", None, True),
    ("DTSTART;VALUE=DATE:20060102\nDTEND;VALUE=DATE:20060104", "20060104T000000Z", None, False),
    # floating: read in UTC by default
    ("DTSTART:20060102T100000\nDTEND:20060102T110000", "20060102T103000Z", "20060102T104000Z",
     True),
    ("DTSTART:20060102T100000\nDTEND:20060102T110000", "20060102T110000Z", "20060102T120000Z",
     False),
])
def test_event_table(props: str, start: str | None, end: str | None, expected: bool) -> None:
    assert event_range(start, end).matches(one_event(props)) is expected


def test_time_zone_of_dtstart_counts() -> None:
    cal = one_event("DTSTART;TZID=US/Eastern:20060102T230000\nDURATION:PT30M", tz=True)
    assert event_range("20060103T040000Z", "20060103T041000Z").matches(cal)  # 23:00 EST
    assert not event_range("20060102T230000Z", "20060102T233000Z").matches(cal)


def test_floating_times_in_a_given_zone() -> None:
    cal = one_event("DTSTART:20060102T100000\nDTEND:20060102T110000")
    f = event_range("20060102T150000Z", "20060102T153000Z")
    eastern = timezone(timedelta(hours=-5))
    assert f.matches(cal, floating_tz=eastern)
    assert not f.matches(cal)


def test_all_day_dates_in_a_given_zone() -> None:
    cal = one_event("DTSTART;VALUE=DATE:20060102")
    f = event_range("20060103T020000Z", "20060103T030000Z")
    assert not f.matches(cal)
    assert f.matches(cal, floating_tz=timezone(timedelta(hours=-5)))


def test_event_without_dtstart_never_in_range() -> None:
    cal = ics("BEGIN:VEVENT\nUID:x\nSUMMARY:no start\nEND:VEVENT", tz=False)
    assert not event_range("20060101T000000Z", None).matches(cal)
    assert cal_filter('<C:comp-filter name="VEVENT"/>').matches(cal)


# -- recurrence ------------------------------------------------------------------------

def test_recurrence_instances_and_overrides() -> None:
    # Instances of ABCD2 (UTC): Jan 2, 3 at 17:00; Jan 4 moved to 19:00; Jan 5 17:00;
    # Jan 6 moved to 19:00.
    def hits(start: str, end: str) -> bool:
        return event_range(start, end).matches(ABCD2)

    assert hits("20060103T170000Z", "20060103T173000Z")
    assert not hits("20060104T170000Z", "20060104T180000Z")  # overridden away
    assert hits("20060104T190000Z", "20060104T193000Z")       # the override
    assert hits("20060106T193000Z", "20060106T200000Z")
    assert not hits("20060107T170000Z", "20060108T000000Z")   # COUNT=5 ended
    assert not hits("20060101T000000Z", "20060102T170000Z")   # before the first
    assert event_range("20060106T000000Z", None).matches(ABCD2)
    assert not event_range("20060107T000000Z", None).matches(ABCD2)
    assert event_range(None, "20060102T170001Z").matches(ABCD2)


def test_override_properties_apply_to_override_only() -> None:
    f = cal_filter('<C:comp-filter name="VEVENT"><C:time-range start="20060104T000000Z" '
                   'end="20060105T000000Z"/><C:prop-filter name="SUMMARY">'
                   '<C:text-match>bis</C:text-match></C:prop-filter></C:comp-filter>')
    assert f.matches(ABCD2)
    g = cal_filter('<C:comp-filter name="VEVENT"><C:time-range start="20060103T000000Z" '
                   'end="20060104T000000Z"/><C:prop-filter name="SUMMARY">'
                   '<C:text-match>bis</C:text-match></C:prop-filter></C:comp-filter>')
    assert not g.matches(ABCD2)


EXCEPTIONS = one_event("""DTSTART;TZID=US/Eastern:20060102T090000
DTEND;TZID=US/Eastern:20060102T100000
RRULE:FREQ=WEEKLY;BYDAY=MO,WE
EXDATE;TZID=US/Eastern:20060104T090000,20060109T090000
RDATE;TZID=US/Eastern:20060107T090000""", tz=True)


@pytest.mark.parametrize(("day", "expected"), [
    ("20060102", True), ("20060104", False), ("20060107", True), ("20060109", False),
    ("20060111", True), ("20060110", False), ("20301230", True), ("20301231", False),
])
def test_exdate_rdate_and_unbounded_rule(day: str, expected: bool) -> None:
    f = event_range(f"{day}T140000Z", f"{day}T143000Z")  # 09:00 EST
    assert f.matches(EXCEPTIONS) is expected


def test_unbounded_rule_with_open_end() -> None:
    assert event_range("20991231T000000Z", None).matches(EXCEPTIONS)
    assert not event_range(None, "20060102T140000Z").matches(EXCEPTIONS)
    assert event_range(None, "20060102T140001Z").matches(EXCEPTIONS)


def test_recurring_all_day_and_floating() -> None:
    birthday = one_event("DTSTART;VALUE=DATE:19700315\nRRULE:FREQ=YEARLY")
    assert event_range("20260315T120000Z", "20260315T130000Z").matches(birthday)
    assert not event_range("20260316T000000Z", "20260317T000000Z").matches(birthday)
    standup = one_event("DTSTART:20060102T093000\nDURATION:PT15M\nRRULE:FREQ=DAILY;UNTIL=20060131")
    assert event_range("20060120T094000Z", "20060120T094100Z").matches(standup)
    assert not event_range("20060201T093000Z", None).matches(standup)
    assert event_range("20060130T000000Z", None).matches(standup)


def test_count_rule_with_open_end() -> None:
    cal = one_event("DTSTART:20060101T100000Z\nDURATION:PT1H\nRRULE:FREQ=MONTHLY;COUNT=24")
    assert event_range("20071201T000000Z", None).matches(cal)
    assert not event_range("20080101T000000Z", None).matches(cal)


@pytest.mark.parametrize(("rule", "start", "end", "expected"), [
    ("DTSTART:19000101T000000Z\nRRULE:FREQ=SECONDLY", "20260101T000000Z", "20260102T000000Z",
     True),
    ("DTSTART:19000101T000000Z\nRRULE:FREQ=SECONDLY", "20260101T000000Z", None, True),
    ("DTSTART:19000101T000000Z\nRRULE:FREQ=SECONDLY;INTERVAL=7", "20260101T000000Z",
     "20260101T000007Z", True),
    ("DTSTART:20060101T000000Z\nRRULE:FREQ=MINUTELY", "20260101T000000Z", "20260102T000000Z",
     True),
    ("DTSTART:20060101T000000Z\nRRULE:FREQ=DAILY;UNTIL=99991231T000000Z", "20260101T000000Z",
     None, True),
    ("DTSTART:20060101T000000Z\nRRULE:FREQ=SECONDLY;COUNT=40000", "20060101T110000Z", None,
     True),
    ("DTSTART:20060101T000000Z\nRRULE:FREQ=SECONDLY;COUNT=40000", "20060101T120000Z", None,
     False),
    ("DTSTART:20060101T000000Z\nRRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29", "20280229T000000Z",
     "20280301T000000Z", True),
    ("DTSTART:20060101T000000Z\nRRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29", "20270301T000000Z",
     "20280228T000000Z", False),
    ("DTSTART:20060101T000000Z\nRRULE:FREQ=MONTHLY;BYDAY=5FR", "20260130T000000Z",
     "20260131T000000Z", True),
    # rules whose days never come: only DTSTART, found at once (dateutil would walk to 9999)
    ("DTSTART:20060101T000000Z\nRRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
     "20260101T000000Z", "20260102T000000Z", False),
    ("DTSTART:20060101T000000Z\nRRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "20060101T000000Z",
     "20060101T000001Z", True),
    ("DTSTART:20060101T000000Z\nRRULE:FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31", "20260101T000000Z",
     None, False),
    ("DTSTART:20060101T000000Z\nRRULE:FREQ=DAILY;BYSETPOS=2", "20260130T000000Z",
     "20260131T000000Z", False),
    ("DTSTART:20060101T000000Z\nRRULE:FREQ=HOURLY;BYMINUTE=0,30;BYSETPOS=3",
     "20260130T000000Z", "20260131T000000Z", False),
])
def test_hostile_rules_are_bounded(rule: str, start: str, end: str | None,
                                   expected: bool) -> None:
    cal = one_event(rule)
    started = time.monotonic()
    assert event_range(start, end).matches(cal) is expected
    assert time.monotonic() - started < 0.5


def test_recurring_todo() -> None:
    cal = ics("""BEGIN:VTODO
UID:t
DTSTART:20060102T090000Z
DUE:20060102T170000Z
RRULE:FREQ=WEEKLY;COUNT=3
END:VTODO""", tz=False)
    f = event_range("20060109T120000Z", "20060109T130000Z", "VTODO")
    assert f.matches(cal)
    assert not event_range("20060110T120000Z", "20060111T000000Z", "VTODO").matches(cal)
    assert not event_range("20060124T000000Z", None, "VTODO").matches(cal)


# -- VTODO table (9.9) -----------------------------------------------------------------

def todo(props: str) -> Calendar:
    return ics(f"BEGIN:VTODO\nUID:t\nDTSTAMP:20060101T000000Z\n{props}\nEND:VTODO", tz=False)


@pytest.mark.parametrize(("props", "start", "end", "expected"), [
    # DTSTART + DURATION: start <= DTSTART+DURATION and (end > DTSTART or end >= DTSTART+DUR)
    ("DTSTART:20060102T100000Z\nDURATION:PT1H", "20060102T110000Z", None, True),
    ("DTSTART:20060102T100000Z\nDURATION:PT1H", "20060102T110001Z", None, False),
    ("DTSTART:20060102T100000Z\nDURATION:PT1H", None, "20060102T100001Z", True),
    ("DTSTART:20060102T100000Z\nDURATION:PT1H", None, "20060102T100000Z", False),
    # DTSTART + DUE: (start < DUE or start <= DTSTART) and (end > DTSTART or end >= DUE)
    ("DTSTART:20060102T100000Z\nDUE:20060102T110000Z", "20060102T105959Z", None, True),
    ("DTSTART:20060102T100000Z\nDUE:20060102T110000Z", "20060102T110000Z", None, False),
    ("DTSTART:20060102T100000Z\nDUE:20060102T100000Z", "20060102T100000Z", None, True),
    ("DTSTART:20060102T100000Z\nDUE:20060102T110000Z", None, "20060102T100000Z", False),
    # DTSTART only: start <= DTSTART and end > DTSTART
    ("DTSTART:20060102T100000Z", "20060102T100000Z", "20060102T100001Z", True),
    ("DTSTART:20060102T100000Z", "20060102T100001Z", None, False),
    # DUE only: start < DUE and end >= DUE
    ("DUE:20060102T100000Z", "20060102T095959Z", "20060102T100000Z", True),
    ("DUE:20060102T100000Z", "20060102T100000Z", None, False),
    ("DUE:20060102T100000Z", None, "20060102T095959Z", False),
    # COMPLETED and CREATED
    ("COMPLETED:20060105T100000Z\nCREATED:20060101T100000Z", "20060103T000000Z",
     "20060104T000000Z", True),
    ("COMPLETED:20060105T100000Z\nCREATED:20060101T100000Z", "20060106T000000Z", None, False),
    ("COMPLETED:20060105T100000Z\nCREATED:20060101T100000Z", None, "20060101T100000Z", True),
    ("COMPLETED:20060105T100000Z\nCREATED:20060101T100000Z", None, "20060101T095959Z", False),
    # COMPLETED only: start <= COMPLETED and end >= COMPLETED
    ("COMPLETED:20060105T100000Z", "20060105T100000Z", "20060106T000000Z", True),
    ("COMPLETED:20060105T100000Z", None, "20060105T100000Z", True),
    ("COMPLETED:20060105T100000Z", "20060105T100001Z", None, False),
    # CREATED only: end > CREATED
    ("CREATED:20060101T100000Z", "20990101T000000Z", None, True),
    ("CREATED:20060101T100000Z", None, "20060101T100000Z", False),
    # nothing: always
    ("SUMMARY:timeless", "20990101T000000Z", "20990102T000000Z", True),
])
def test_todo_table(props: str, start: str | None, end: str | None, expected: bool) -> None:
    assert event_range(start, end, "VTODO").matches(todo(props)) is expected


# -- VJOURNAL and VALARM ---------------------------------------------------------------

def test_journal() -> None:
    timed = ics("BEGIN:VJOURNAL\nUID:j\nDTSTART:20060102T100000Z\nEND:VJOURNAL", tz=False)
    dated = ics("BEGIN:VJOURNAL\nUID:j\nDTSTART;VALUE=DATE:20060102\nEND:VJOURNAL", tz=False)
    none = ics("BEGIN:VJOURNAL\nUID:j\nSUMMARY:x\nEND:VJOURNAL", tz=False)
    assert event_range("20060102T100000Z", "20060102T100001Z", "VJOURNAL").matches(timed)
    assert not event_range("20060102T090000Z", "20060102T100000Z", "VJOURNAL").matches(timed)
    assert event_range("20060102T230000Z", None, "VJOURNAL").matches(dated)
    assert not event_range("20060103T000000Z", None, "VJOURNAL").matches(dated)
    assert not event_range("20000101T000000Z", None, "VJOURNAL").matches(none)


def alarm_filter(start: str, end: str) -> CalendarFilter:
    return cal_filter('<C:comp-filter name="VEVENT"><C:comp-filter name="VALARM">'
                      f'<C:time-range start="{start}" end="{end}"/></C:comp-filter>'
                      '</C:comp-filter>')


def test_alarm_relative_absolute_and_repeat() -> None:
    cal = one_event("""DTSTART:20060102T100000Z
DTEND:20060102T110000Z
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:soon
TRIGGER:-PT15M
REPEAT:2
DURATION:PT5M
END:VALARM
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:after
TRIGGER;RELATED=END:PT10M
END:VALARM
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:fixed
TRIGGER;VALUE=DATE-TIME:20060101T080000Z
END:VALARM""")
    assert alarm_filter("20060102T094500Z", "20060102T094501Z").matches(cal)
    assert alarm_filter("20060102T095500Z", "20060102T095501Z").matches(cal)  # 2nd repeat
    assert not alarm_filter("20060102T100000Z", "20060102T100001Z").matches(cal)  # 3rd: none
    assert alarm_filter("20060102T111000Z", "20060102T111001Z").matches(cal)  # related end
    assert alarm_filter("20060101T080000Z", "20060101T080001Z").matches(cal)  # absolute
    assert not alarm_filter("20060101T090000Z", "20060102T094400Z").matches(cal)


def test_alarm_of_recurring_event() -> None:
    cal = one_event("""DTSTART:20060102T100000Z
DURATION:PT1H
RRULE:FREQ=DAILY
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:x
TRIGGER:-P1D
END:VALARM""")
    assert alarm_filter("20260309T100000Z", "20260309T100001Z").matches(cal)
    assert not alarm_filter("20260309T110000Z", "20260309T120000Z").matches(cal)
    assert alarm_filter("20060101T100000Z", "20060101T100001Z").matches(cal)
    assert not alarm_filter("20051231T100000Z", "20051231T100001Z").matches(cal)


def test_alarm_time_range_needs_an_alarm() -> None:
    assert not alarm_filter("20000101T000000Z", "20990101T000000Z").matches(ABCD1)


# -- properties, parameters, text ------------------------------------------------------

def test_prop_and_param_is_not_defined() -> None:
    no_desc = cal_filter('<C:comp-filter name="VEVENT"><C:prop-filter name="DESCRIPTION">'
                         '<C:is-not-defined/></C:prop-filter></C:comp-filter>')
    assert matching(no_desc) == ["abcd2", "abcd3"]
    no_role = cal_filter('<C:comp-filter name="VEVENT"><C:prop-filter name="ATTENDEE">'
                         '<C:param-filter name="ROLE"><C:is-not-defined/></C:param-filter>'
                         '</C:prop-filter></C:comp-filter>')
    assert matching(no_role) == ["abcd3"]  # lisa has no ROLE
    no_todo = cal_filter('<C:comp-filter name="VTODO"><C:is-not-defined/></C:comp-filter>')
    assert matching(no_todo) == ["abcd1", "abcd2", "abcd3", "abcd8"]
    assert no_todo.component is None and no_todo.time_range is None


def test_text_match_collations_and_negation() -> None:
    def summary(text: str, extra: str = "") -> list[str]:
        return matching(cal_filter(
            f'<C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY">'
            f'<C:text-match{extra}>{text}</C:text-match></C:prop-filter></C:comp-filter>'))

    assert summary("event #2") == ["abcd2"]
    assert summary("event #2", ' collation="i;octet"') == []
    assert summary("Event #", ' collation="i;octet"') == ["abcd1", "abcd2", "abcd3"]
    assert summary("EVENT", ' collation="i;unicode-casemap"') == ["abcd1", "abcd2", "abcd3"]
    assert summary("#2", ' negate-condition="yes"') == ["abcd1", "abcd3"]
    assert summary("Event", ' negate-condition="yes"') == []


def test_match_type_extension() -> None:
    def summary(needle: str, match_type: str) -> list[str]:
        return matching(cal_filter(
            f'<C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY"><C:text-match '
            f'match-type="{match_type}">{needle}</C:text-match></C:prop-filter></C:comp-filter>'))

    assert summary("event #1", "equals") == ["abcd1"]
    assert summary("bis", "ends-with") == ["abcd2"]
    assert summary("event #3", "starts-with") == ["abcd3"]
    refused('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            '<C:prop-filter name="SUMMARY"><C:text-match match-type="like">x</C:text-match>'
            '</C:prop-filter></C:comp-filter></C:comp-filter>', f"{{{C}}}supported-filter")


def test_negate_applies_to_each_instance() -> None:
    # ABCD2's master says "Event #2", which does not contain "bis": it matches negated.
    f = cal_filter('<C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY">'
                   '<C:text-match negate-condition="yes">Event #2</C:text-match>'
                   '</C:prop-filter></C:comp-filter>')
    assert matching(f) == ["abcd1", "abcd3"]


def test_text_match_unicode_and_categories() -> None:
    cal = one_event("DTSTART:20060102T100000Z\nSUMMARY:Café Ünïcode\n"
                    "CATEGORIES:Work,Meeting\nCATEGORIES:Fun")
    def hit(prop: str, text: str, collation: str = "i;unicode-casemap") -> bool:
        return cal_filter(f'<C:comp-filter name="VEVENT"><C:prop-filter name="{prop}">'
                          f'<C:text-match collation="{collation}">{text}</C:text-match>'
                          '</C:prop-filter></C:comp-filter>').matches(cal)
    assert hit("SUMMARY", "CAFÉ")
    assert not hit("SUMMARY", "CAFÉ", "i;ascii-casemap")
    assert hit("SUMMARY", "CAFé", "i;ascii-casemap")
    assert hit("CATEGORIES", "meeting") and hit("CATEGORIES", "fun")


def test_prop_time_range() -> None:
    f = cal_filter('<C:comp-filter name="VTODO"><C:prop-filter name="COMPLETED">'
                   '<C:time-range start="20051201T000000Z" end="20060101T000000Z"/>'
                   '</C:prop-filter></C:comp-filter>')
    assert matching(f) == ["abcd6"]
    due = cal_filter('<C:comp-filter name="VTODO"><C:prop-filter name="DUE">'
                     '<C:time-range start="20060104T120000Z" end="20060105T000000Z"/>'
                     '</C:prop-filter></C:comp-filter>')
    assert matching(due) == ["abcd4"]  # a DATE covers its whole day


def test_vcalendar_props_and_anyof() -> None:
    assert cal_filter('<C:prop-filter name="VERSION"><C:text-match>2.0</C:text-match>'
                      '</C:prop-filter>').matches(ABCD1)
    anyof = flt('<C:comp-filter name="VCALENDAR" test="anyof">'
                '<C:comp-filter name="VTODO"/><C:comp-filter name="VFREEBUSY"/></C:comp-filter>')
    assert matching(anyof) == ["abcd4", "abcd5", "abcd6", "abcd7", "abcd8"]
    assert anyof.component is None
    allof = cal_filter('<C:comp-filter name="VTODO"/><C:comp-filter name="VFREEBUSY"/>')
    assert matching(allof) == [] and allof.component is None


def test_component_and_time_range_for_prefiltering() -> None:
    f = cal_filter('<C:prop-filter name="VERSION"/><C:comp-filter name="VTODO">'
                   '<C:is-not-defined/></C:comp-filter><C:comp-filter name="VEVENT">'
                   '<C:time-range start="20060104T000000Z"/></C:comp-filter>')
    assert f.component == "VEVENT"
    assert f.time_range == (datetime(2006, 1, 4, tzinfo=UTC), None)
    assert matching(f) == ["abcd2", "abcd3"]
    two = cal_filter('<C:comp-filter name="VEVENT"><C:time-range start="20060104T000000Z"/>'
                     '</C:comp-filter><C:comp-filter name="VEVENT"><C:prop-filter name="UID"/>'
                     '</C:comp-filter>')
    assert two.component == "VEVENT" and two.time_range is None
    loose = cal_filter('<C:comp-filter name="VEVENT" test="anyof"><C:time-range '
                       'end="20060103T000000Z"/><C:prop-filter name="ATTENDEE"/></C:comp-filter>')
    assert loose.component == "VEVENT" and loose.time_range is None
    assert matching(loose) == ["abcd1", "abcd2", "abcd3"]


def test_empty_vcalendar_filter_matches_all_but_not_other_roots() -> None:
    f = cal_filter("")
    assert matching(f) == sorted(APPENDIX_B)
    assert f.component is None and f.time_range is None
    card = Calendar()
    card.name = "VCARD"
    assert not f.matches(card)


# -- bad and hostile filters -----------------------------------------------------------

@pytest.mark.parametrize("inner", [
    "",
    '<C:comp-filter name="VEVENT"/>',
    '<C:comp-filter name="VCALENDAR"/><C:comp-filter name="VCALENDAR"/>',
    '<C:comp-filter name="VCALENDAR"><C:is-not-defined/></C:comp-filter>',
    '<C:comp-filter><C:comp-filter name="VEVENT"/></C:comp-filter>',
    '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
    '<C:time-range start="2006-01-01T00:00:00Z"/></C:comp-filter></C:comp-filter>',
    '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
    '<C:time-range start="20060101T000000"/></C:comp-filter></C:comp-filter>',
    '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
    '<C:time-range start="20061301T000000Z"/></C:comp-filter></C:comp-filter>',
    '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
    '<C:time-range/></C:comp-filter></C:comp-filter>',
    '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
    '<C:time-range start="20060102T000000Z" end="20060101T000000Z"/></C:comp-filter>'
    '</C:comp-filter>',
    '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:is-not-defined/>'
    '<C:prop-filter name="UID"/></C:comp-filter></C:comp-filter>',
    '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:prop-filter name="UID">'
    '<C:text-match negate-condition="maybe">x</C:text-match></C:prop-filter></C:comp-filter>'
    '</C:comp-filter>',
    '<C:comp-filter name="VCALENDAR" test="someof"/>',
])
def test_invalid_filters(inner: str) -> None:
    refused(inner)


def test_missing_filter_element() -> None:
    with pytest.raises(DavError) as caught:
        parse_filter(parse(f'<C:calendar-query xmlns:C="{C}"/>'.encode()))
    assert caught.value.condition == VALID


def test_unknown_element_is_unsupported() -> None:
    refused('<C:comp-filter name="VCALENDAR"><C:fuzzy-match/></C:comp-filter>',
            f"{{{C}}}supported-filter")


def test_depth_is_capped() -> None:
    nest = MAX_DEPTH - 1  # filter + VCALENDAR + comp-filters: exactly MAX_DEPTH levels
    ok = ('<C:comp-filter name="VCALENDAR">' + '<C:comp-filter name="X">' * (nest - 1)
          + "</C:comp-filter>" * nest)
    flt(ok)
    deep = ('<C:comp-filter name="VCALENDAR">' + '<C:comp-filter name="X">' * nest
            + "</C:comp-filter>" * (nest + 1))
    refused(deep)
    hostile = ('<C:comp-filter name="VCALENDAR">' + '<C:comp-filter name="X">' * 200
               + "</C:comp-filter>" * 201)
    refused(hostile)


def test_too_many_elements() -> None:
    refused('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            + '<C:prop-filter name="X"/>' * 2000 + "</C:comp-filter></C:comp-filter>")


def test_huge_text_match_is_bounded() -> None:
    big = "x" * 60000
    f = cal_filter(f'<C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY">'
                   f'<C:text-match>{big}</C:text-match></C:prop-filter></C:comp-filter>')
    started = time.monotonic()
    assert matching(f) == []
    assert time.monotonic() - started < 1
    refused(f'<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            f'<C:prop-filter name="SUMMARY"><C:text-match>{"x" * 70000}</C:text-match>'
            '</C:prop-filter></C:comp-filter></C:comp-filter>')


def test_many_objects_are_cheap() -> None:
    f = cal_filter('<C:comp-filter name="VEVENT"><C:time-range start="20060103T000000Z" '
                   'end="20060105T000000Z"/><C:prop-filter name="SUMMARY"><C:text-match>'
                   'event</C:text-match></C:prop-filter></C:comp-filter>')
    started = time.monotonic()
    hits = sum(f.matches(cal) for _ in range(300) for cal in APPENDIX_B.values())
    assert hits == 600
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("body", [
    "BEGIN:VEVENT\nUID:x\nDTSTART:notadate\nEND:VEVENT",
    "BEGIN:VEVENT\nUID:x\nDTSTART:20060102T100000Z\nDTSTART:20060103T100000Z\n"
    "RRULE:FREQ=DAILY\nEND:VEVENT",
    "BEGIN:VEVENT\nUID:x\nDTSTART:20060102T100000Z\nDTEND:garbage\nEND:VEVENT",
    "BEGIN:VEVENT\nUID:x\nDTSTART:20060102T100000Z\nRRULE:FREQ=DAILY;UNTIL=garbage\nEND:VEVENT",
])
def test_broken_stored_data_does_not_match(body: str) -> None:
    cal = ics(body, tz=False)
    for comp in ("VEVENT", "VFREEBUSY"):
        assert not event_range("20060102T000000Z", "20060110T000000Z", comp).matches(cal)
    assert not alarm_filter("20060102T000000Z", "20060110T000000Z").matches(cal)
