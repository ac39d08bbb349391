"""MS-OXOCAL blobs: recurrence patterns, time-zone definitions and global object ids.

The hex blobs are the specification's own examples (MS-OXOCAL 4.1.1.1, 4.1.1.2,
4.1.1.3, 4.1.1.6, 4.1.4 and the PidLidGlobalObjectId example; MS-ASEMAIL 4.3).
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from itertools import takewhile
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.convert import goid
from gateway.convert import recurrence as R
from gateway.convert import timezones as Z

WEEKLY = bytes.fromhex(  # 4.1.1.1: Mon, Thu, Fri 10:00-10:30 from 2007-03-26, 12 times
    "043004300B2001000000C0210000010000000000000032000000222000000C00000000000000000000000000"
    "00008020BC0C20ADBC0C0630000009300000580200007602000000000000000000000000")
WEEKLY_EXC = bytes.fromhex(  # 4.1.1.2: the same with one instance moved and renamed
    "043004300B2001000000C0210000010000000000000032000000222000000C00000000000000010000"
    "00A096BC0C01000000A096BC0C8020BC0C20ADBC0C0630000009300000580200007602000001003499BC0C"
    "5299BC0CF898BC0C11002200210053696D706C6520526563757272656E636520776974682065786365707469"
    "6F6E730800070033342F34313431000000000400000000000000000000003499BC0C5299BC0CF898BC0C2100"
    "530069006D0070006C006500200052006500630075007200720065006E0063006500200077006900740068"
    "00200065007800630065007000740069006F006E0073000700330034002F0034003100340031000000000000"
    "000000")
DAILY = bytes.fromhex(  # 4.1.1.3: every 3 days 2011-04-07..05-04 08:00-08:30, two deleted
    "043004300A2000000000A0050000E010000000000000212000000A0000000000000002000000A0C1DC0C80D2"
    "DC0C00000000207EDC0C0016DD0C0630000009300000E0010000FE01000000000000000000000000")
HEBREW = bytes.fromhex(  # 4.1.1.6: yearly Hebrew lunar, second instance changed
    "043004300D200200080080750A000C0000000000000003000000232000000A0000000000000001000000207E"
    "DC0C01000000207EDC0C6074C40CDF80E95A0630000009300000E0010000FE01000001000080DC0C1E80DC0C"
    "0080DC0C24023C000000010000000000000004000000000000000000000000000000")
TZDEF = bytes.fromhex(  # 4.1.4: PidLidAppointmentTimeZoneDefinitionRecur, Pacific
    "0201300002001500500061006300690066006900630020005300740061006E00640061007200640020005400"
    "69006D006500020002013E000000D6070000000000000000000000000000E001000000000000C4FFFFFF0000"
    "0A0000000500020000000000000000000400000001000200000000000000"
    "02013E000200D7070000000000000000000000000000E001000000000000C4FFFFFF00000B00000001000200"
    "00000000000000000300000002000200000000000000")
EXAMPLES = [WEEKLY, WEEKLY_EXC, DAILY, HEBREW]


def day(minutes: int) -> date:
    return R.from_minutes(minutes).date()


@pytest.mark.parametrize("blob", EXAMPLES, ids=["4.1.1.1", "4.1.1.2", "4.1.1.3", "4.1.1.6"])
def test_spec_examples_build_back_byte_for_byte(blob: bytes) -> None:
    assert R.build_appointment(R.parse_appointment(blob)) == blob


def test_weekly_example_decodes_to_documented_values() -> None:
    rec = R.parse_appointment(WEEKLY)
    p = rec.pattern
    assert (p.frequency, p.pattern_type, p.calendar_type) == (R.FREQ_WEEKLY, R.PT_WEEK, 0)
    assert (p.first_datetime, p.period, p.days) == (8640, 1, 0x32)  # Mon, Thu, Fri
    assert (p.end_type, p.occurrence_count, p.first_dow) == (R.END_COUNT, 12, 0)
    assert day(p.start_date) == date(2007, 3, 26) and day(p.end_date) == date(2007, 4, 20)
    assert (rec.reader_version2, rec.writer_version2) == (0x3006, 0x3009)
    assert (rec.start_offset, rec.end_offset) == (600, 630) and rec.exceptions == []
    assert R.rule_from_pattern(p) == {"FREQ": ["WEEKLY"], "INTERVAL": [1],
                                      "BYDAY": ["MO", "TH", "FR"], "WKST": ["SU"]}


def test_exception_example_decodes_to_documented_values() -> None:
    rec = R.parse_appointment(WEEKLY_EXC)
    assert [day(d) for d in rec.pattern.deleted] == [date(2007, 4, 16)]
    assert [day(d) for d in rec.pattern.modified] == [date(2007, 4, 16)]
    [e] = rec.exceptions
    assert R.from_minutes(e.start) == datetime(2007, 4, 16, 11, 0)
    assert R.from_minutes(e.end) == datetime(2007, 4, 16, 11, 30)
    assert R.from_minutes(e.original_start) == datetime(2007, 4, 16, 10, 0)
    assert e.flags == R.ARO_SUBJECT | R.ARO_LOCATION
    assert (e.subject, e.location) == ("Simple Recurrence with exceptions", "34/4141")


def test_daily_and_hebrew_examples_decode() -> None:
    p = R.parse_appointment(DAILY).pattern
    assert (p.frequency, p.pattern_type, p.first_datetime, p.period) == (R.FREQ_DAILY, 0, 1440,
                                                                         4320)
    assert (p.end_type, p.occurrence_count) == (R.END_DATE, 10)
    assert [day(d) for d in p.deleted] == [date(2011, 4, 19), date(2011, 4, 22)]
    assert R.rule_from_pattern(p) == {"FREQ": ["DAILY"], "INTERVAL": [3]}
    rec = R.parse_appointment(HEBREW)
    assert (rec.pattern.calendar_type, rec.pattern.day_of_month) == (8, 3)
    assert rec.pattern.end_date == R.NO_END_DATE
    [e] = rec.exceptions
    assert (e.busy_status, e.reminder_delta, e.exceptional_body) == (1, 60, True)
    with pytest.raises(R.Unsupported):
        R.rule_from_pattern(rec.pattern)


def test_builder_produces_documented_bytes_from_rrules() -> None:
    start = datetime(2007, 3, 26, 10, 0)
    p = R.pattern_from_rule({"FREQ": ["WEEKLY"], "BYDAY": ["MO", "TH", "FR"], "COUNT": [12],
                             "WKST": ["SU"]}, start)
    R.set_range(p, start)
    assert R.build_appointment(R.AppointmentRecurrence(p, 600, 630)) == WEEKLY

    start = datetime(2011, 4, 7, 8, 0)
    p = R.pattern_from_rule({"FREQ": ["DAILY"], "INTERVAL": [3], "UNTIL": ["x"],
                             "WKST": ["SU"]}, start)
    R.set_range(p, start, datetime(2011, 5, 4, 8, 0))
    p.deleted = [R.to_minutes(date(2011, 4, 19)), R.to_minutes(date(2011, 4, 22))]
    assert R.build_appointment(R.AppointmentRecurrence(p, 480, 510)) == DAILY

    p = R.parse_appointment(WEEKLY).pattern
    p.deleted = p.modified = [R.to_minutes(date(2007, 4, 16))]
    info = R.ExceptionInfo(R.to_minutes(datetime(2007, 4, 16, 11)),
                           R.to_minutes(datetime(2007, 4, 16, 11, 30)),
                           R.to_minutes(datetime(2007, 4, 16, 10)),
                           subject="Simple Recurrence with exceptions", location="34/4141")
    assert R.build_appointment(R.AppointmentRecurrence(p, 600, 630, [info])) == WEEKLY_EXC


RULES = [
    ("FREQ=DAILY;INTERVAL=2", datetime(2024, 1, 1, 9), (R.PT_DAY, 2880)),
    ("FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", datetime(2024, 1, 1, 9), (R.PT_WEEK, 1)),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=SU,MO;WKST=MO", datetime(2024, 1, 1, 9), (R.PT_WEEK, 2)),
    ("FREQ=MONTHLY;BYMONTHDAY=15", datetime(2024, 1, 15, 9), (R.PT_MONTH, 1)),
    ("FREQ=MONTHLY;BYMONTHDAY=-1", datetime(2024, 1, 31, 9), (R.PT_MONTHEND, 1)),
    ("FREQ=MONTHLY;INTERVAL=3;BYDAY=2TU", datetime(2024, 1, 9, 9), (R.PT_MONTHNTH, 3)),
    ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", datetime(2024, 1, 31, 9),
     (R.PT_MONTHNTH, 1)),
    ("FREQ=YEARLY;BYMONTH=6;BYDAY=3SU", datetime(2024, 6, 16, 9), (R.PT_MONTHNTH, 12)),
    ("FREQ=YEARLY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29", datetime(2024, 2, 29, 9),
     (R.PT_MONTH, 24)),
]


@pytest.mark.parametrize(("text", "start", "expected"), RULES, ids=[r[0] for r in RULES])
def test_rrule_to_pattern_and_back_keeps_occurrences(text: str, start: datetime,
                                                     expected: tuple[int, int]) -> None:
    from dateutil.rrule import rrulestr

    parts = {k: v.split(",") for k, v in (item.split("=") for item in text.split(";"))}
    parts = {k: [int(x) if x.lstrip("-").isdigit() else x for x in v] for k, v in parts.items()}
    p = R.pattern_from_rule(parts, start)
    assert (p.pattern_type, p.period) == expected
    blob = R.build_pattern(p)
    again = R.parse_pattern(blob)
    wanted = list(rrulestr(text, dtstart=start).between(start, start + timedelta(days=1500),
                                                        inc=True))
    got = list(takewhile(lambda d: d <= start + timedelta(days=1500), R.walk(again, start)))
    if "BYMONTHDAY=29" not in text:  # Outlook's "day 29 or the last" differs in Feb
        assert got == wanted


@pytest.mark.parametrize("text", [
    "FREQ=HOURLY", "FREQ=MONTHLY;BYMONTHDAY=1,15", "FREQ=WEEKLY;BYDAY=1MO",
    "FREQ=YEARLY;BYWEEKNO=20", "FREQ=MONTHLY;BYDAY=1MO,3MO", "FREQ=DAILY;INTERVAL=0",
    "FREQ=MONTHLY;BYSETPOS=2", "FREQ=YEARLY;BYMONTH=3,4"])
def test_unsupported_rules_are_refused(text: str) -> None:
    parts = {k: [int(x) if x.lstrip("-").isdigit() else x for x in v.split(",")]
             for k, v in (item.split("=") for item in text.split(";"))}
    with pytest.raises(R.Unsupported):
        R.pattern_from_rule(parts, datetime(2024, 3, 4, 9))


def test_huge_counts_are_bounded() -> None:
    start = datetime(2024, 1, 1, 9)
    p = R.pattern_from_rule({"FREQ": ["DAILY"], "COUNT": [2**31 - 1]}, start)
    R.set_range(p, start)
    assert (p.end_type, p.occurrence_count, p.end_date) == (R.END_COUNT, 2**31 - 1,
                                                            R.NO_END_DATE)


@pytest.mark.parametrize("blob", EXAMPLES)
def test_every_truncation_is_refused_cleanly(blob: bytes) -> None:
    for size in range(len(blob)):
        try:
            R.parse_appointment(blob[:size])
        except R.RecurrenceError:
            pass


def test_hostile_counts_do_not_allocate() -> None:
    blob = bytearray(DAILY)
    blob[34:38] = (0xFFFFFFFF).to_bytes(4, "little")  # DeletedInstanceCount
    with pytest.raises(R.RecurrenceError):
        R.parse_appointment(bytes(blob))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_blobs_never_escape(data: bytes) -> None:
    for parse in (R.parse_appointment, R.parse_pattern):
        try:
            parse(data)
        except R.RecurrenceError:
            pass
    try:
        Z.parse_tzdefinition(data)
    except Z.TimeZoneError:
        pass


# --- time zones ---------------------------------------------------------------------------

def test_tzdefinition_example() -> None:
    defn = Z.parse_tzdefinition(TZDEF)
    assert defn.keyname == "Pacific Standard Time"
    first, second = defn.rules
    assert (first.year, first.bias, first.daylight_bias, first.flags) == (2006, 480, -60, 0)
    assert (first.standard_date.month, first.standard_date.day) == (10, 5)
    assert (second.year, second.flags) == (2007, Z.TZRULE_FLAG_EFFECTIVE)
    assert (second.daylight_date.month, second.daylight_date.day) == (3, 2)
    assert Z.build_tzdefinition(defn) == TZDEF
    tz = Z.RulesTZ(defn)
    assert datetime(2006, 4, 1, 12, tzinfo=tz).utcoffset() == timedelta(hours=-8)
    assert datetime(2006, 4, 3, 12, tzinfo=tz).utcoffset() == timedelta(hours=-7)
    assert datetime(2007, 3, 12, 12, tzinfo=tz).utcoffset() == timedelta(hours=-7)


@pytest.mark.parametrize("key", ["Europe/Berlin", "America/New_York", "Australia/Sydney",
                                 "Asia/Kolkata", "America/Sao_Paulo", "Europe/Dublin"])
def test_rules_follow_zoneinfo_hour_by_hour(key: str) -> None:
    zone = ZoneInfo(key)
    defn = Z.definition_from_tzinfo(zone, Z.keyname_for(zone), 2024)
    rebuilt = Z.RulesTZ(Z.parse_tzdefinition(Z.build_tzdefinition(defn)))
    instant = datetime(2024, 1, 1, tzinfo=UTC)
    while instant < datetime(2027, 1, 1, tzinfo=UTC):
        assert instant.astimezone(rebuilt).utcoffset() == instant.astimezone(zone).utcoffset()
        local = instant.astimezone(zone)
        assert local.replace(tzinfo=rebuilt).astimezone(UTC) == instant or local.fold == 0
        instant += timedelta(minutes=30)


def test_windows_names_and_struct() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert Z.keyname_for(berlin) == "W. Europe Standard Time"
    assert Z.windows_to_iana("w. europe standard time") == "Europe/Berlin"
    defn = Z.definition_from_tzinfo(berlin, "W. Europe Standard Time", 2025)
    rule = Z.parse_tzstruct(Z.build_tzstruct(Z.effective_rule(defn)))
    assert (rule.bias, rule.daylight_bias) == (-60, -60)
    assert (rule.daylight_date.month, rule.daylight_date.day, rule.daylight_date.hour) == (3, 5, 2)
    assert Z.description(defn) == "(UTC+01:00) W. Europe Standard Time"


# --- global object ids ----------------------------------------------------------------------

def test_outlook_goid_from_activesync_example() -> None:
    blob = base64.b64decode("BAAAAIIA4AB0xbcQGoLgCAfUCRDgQMnBJoXEAQAAAAAAAAAAEAAAAAvw7UtuTulOnj"
                            "njhns3jvM=")
    uid = "040000008200E00074C5B7101A82E00800000000E040C9C12685C4010000000000000000100000000BF0E" \
          "D4B6E4EE94E9E39E3867B378EF3"
    assert goid.goid_to_uid(blob) == uid
    assert goid.goid_instance_date(blob) == date(2004, 9, 16)
    assert goid.uid_to_goid(uid, date(2004, 9, 16)) == blob
    assert goid.clean_goid(blob) == bytes.fromhex(uid)


def test_vcal_uid_embedding_from_activesync_example() -> None:
    blob = base64.b64decode("BAAAAIIA4AB0xbcQGoLgCAAAAAAAAAAAAAAAAAAAAAAAAAAAMwAAAHZDYWwtVWlkAQAAAH"
                            "s4MTQxMkQzQy0yQTI0LTRFOUQtQjIwRS0xMUY3QkJFOTI3OTl9AA==")
    assert goid.goid_to_uid(blob) == "{81412D3C-2A24-4E9D-B20E-11F7BBE92799}"
    assert goid.uid_to_goid("{81412D3C-2A24-4E9D-B20E-11F7BBE92799}") == blob


def test_exception_goid_example() -> None:
    blob = bytes.fromhex("040000008200E00074C5B7101A82E00807D803195025D461E473C80100000000000000"
                         "00100000002A5844B3A444F74A9C246C60886F116B")
    assert goid.goid_instance_date(blob) == date(2008, 3, 25)
    uid = goid.goid_to_uid(blob)
    assert uid is not None and goid.uid_to_goid(uid, date(2008, 3, 25)) == blob


@given(st.text(min_size=1, max_size=300))
def test_any_uid_round_trips(uid: str) -> None:
    blob = goid.uid_to_goid(uid)
    assert goid.goid_to_uid(blob) == uid.encode("utf-8", "surrogatepass").decode(
        "utf-8", "replace").split("\0")[0] or "\0" in uid
