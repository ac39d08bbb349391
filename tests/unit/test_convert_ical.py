"""iCalendar ⇄ MAPI on the corpus (tests/corpus/ical), bad input, expansion and free/busy."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.convert import goid
from gateway.convert import recurrence as R
from gateway.convert.expand import occurrences
from gateway.convert.freebusy import free_busy, merge, render_vfreebusy
from gateway.convert.ical_in import parse_calendar, parse_calendar_report
from gateway.convert.ical_out import render_calendar
from gateway.store import NewMessage
from gateway.store import tags as T

CORPUS = Path(__file__).parents[1] / "corpus" / "ical"
GOOD = sorted(CORPUS.glob("*.ics"))
BAD = sorted((CORPUS / "bad").glob("*.ics"))
WINDOW = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))
SALVAGED = {"exchange_cdo_request_daily.ics"}
"""Files whose RRULE icalendar rejects (``BYDAY=MO, TU``) and we read anyway."""


def load(name: str) -> list[NewMessage]:
    return parse_calendar((CORPUS / name).read_bytes())


def spans(source: object) -> list[tuple[str, str]]:
    return [(str(i.start), str(i.end)) for i in occurrences(source, *WINDOW)]


@pytest.mark.parametrize("path", GOOD, ids=[p.name for p in GOOD])
def test_corpus_round_trip_keeps_occurrences(path: Path) -> None:
    data = path.read_bytes()
    result = parse_calendar_report(data)
    assert result.messages
    out = render_calendar(result.messages)
    assert out == render_calendar(parse_calendar(data)), "output is not deterministic"
    again = parse_calendar(out)
    assert len(again) == len(result.messages)
    if path.name in SALVAGED:
        assert len(spans(out)) == 14  # weekdays from 3 to 22 July 2015
    else:
        assert spans(out) == spans(data)


def test_outlook_request() -> None:
    [m] = load("outlook_request_weekly_exception.ics")
    p = m.props
    assert p[T.PidTagMessageClass] == "IPM.Schedule.Meeting.Request"
    assert p[T.PidTagSubject] == "Team-Abstimmung"
    assert p[T.PidLidLocation] == "Raum 4.11"
    assert p[T.PidLidAppointmentStartWhole] == datetime(2025, 3, 3, 9, tzinfo=UTC)
    assert p[T.PidLidAppointmentDuration] == 30
    assert (p[T.PidLidBusyStatus], p[T.PidLidIntendedBusyStatus]) == (1, 2)
    assert (p[T.PidLidReminderSet], p[T.PidLidReminderDelta]) == (True, 15)
    assert p[T.PidLidReminderSignalTime] == datetime(2025, 3, 3, 8, 45, tzinfo=UTC)
    assert (p[T.PidLidResponseStatus], p[T.PidLidFInvited]) == (5, True)
    assert p[T.PidLidAppointmentStateFlags] == 3  # meeting, received
    assert p[T.PidTagOwnerAppointmentId] == 2123456789
    assert p[T.PidTagSentRepresentingSmtpAddress] == "anna.berger@example.com"
    uid = "040000008200E00074C5B7101A82E00800000000D0A9E1B1E7A1DB0100000000000000001000000" \
          "0A4B7E2C5D6F1A94F8E2B3C4D5E6F7081"
    assert p[T.PidLidGlobalObjectId] == p[T.PidLidCleanGlobalObjectId] == bytes.fromhex(uid)
    assert [(r[T.PidTagRecipientType], r[T.PidTagRecipientTrackStatus]) for r in m.recipients] \
        == [(1, 5), (2, 5), (3, 3)]
    assert p[T.PidLidTimeZoneDescription] == "(UTC+01:00) W. Europe Standard Time"
    rec = R.parse_appointment(p[T.PidLidAppointmentRecur])
    assert (p[T.PidLidRecurring], p[T.PidLidRecurrenceType]) == (True, 2)
    pat = rec.pattern
    assert (pat.days, pat.first_dow, pat.end_type, pat.occurrence_count) == (0x12, 1, 0x2021, 35)
    assert [R.from_minutes(d).date() for d in pat.deleted] == [date(2025, 3, 20),
                                                               date(2025, 4, 14)]
    assert [R.from_minutes(d).date() for d in pat.modified] == [date(2025, 3, 21)]
    [e] = rec.exceptions
    assert (e.subject, e.location, e.busy_status, e.exceptional_body) == (
        "Team-Abstimmung (verschoben)", "Großer Saal", 2, True)
    [att] = m.attachments
    assert att.props[T.PidTagAttachmentHidden] and att.props[T.PidTagAttachMethod] == 5
    assert att.props[T.PidTagExceptionReplaceTime] == datetime(2025, 3, 20, 9, tzinfo=UTC)
    inner = att.embedded
    assert inner is not None
    assert inner.props[T.PidTagBody].startswith("Diesmal")
    assert goid.goid_instance_date(inner.props[T.PidLidGlobalObjectId]) == date(2025, 3, 20)


def test_google_apple_thunderbird() -> None:
    [g] = load("google_invite.ics")
    assert g.props[T.PidLidCleanGlobalObjectId] == goid.uid_to_goid(
        "4k3r8fjq1l0e2v9sd8c7b6a5t4@google.com")
    assert R.parse_appointment(g.props[T.PidLidAppointmentRecur]).pattern.occurrence_count == 30
    assert g.recipients[0][T.PidTagRecipientFlags] == 3  # the organizer, also an attendee
    book, holiday = load("apple_calendar_monthly.ics")
    assert book.props[T.PidNameKeywords] == ["Personal", "Books"]
    pat = R.parse_appointment(book.props[T.PidLidAppointmentRecur]).pattern
    assert (pat.pattern_type, pat.days, pat.nth, pat.end_type) == (R.PT_MONTHNTH, 0x04, 2,
                                                                   R.END_NEVER)
    assert book.props[T.PidLidReminderDelta] == 30
    assert holiday.props[T.PidLidAppointmentSubType] is True
    assert holiday.props[T.PidLidBusyStatus] == 0
    assert holiday.props[T.PidLidAppointmentDuration] == 5 * 1440
    [yoga] = load("thunderbird_lightning_recurring.ics")
    assert yoga.props[T.PidTagSensitivity] == 2
    rec = R.parse_appointment(yoga.props[T.PidLidAppointmentRecur])
    assert rec.pattern.period == 2 * 1440 and len(rec.exceptions) == 1


def test_tasks() -> None:
    [rent] = load("apple_reminders_vtodo.ics")
    p = rent.props
    assert p[T.PidTagMessageClass] == "IPM.Task"
    assert p[T.PidLidTaskDueDate] == datetime(2024, 4, 1, tzinfo=UTC)
    assert (p[T.PidTagImportance], p[T.PidLidTaskFRecurring]) == (2, True)
    assert R.parse_pattern(p[T.PidLidTaskRecurrence]).pattern_type == R.PT_MONTH
    assert p[T.PidLidReminderSignalTime] == datetime(2024, 4, 1, 7, tzinfo=UTC)
    report, passport = load("thunderbird_vtodo.ics")
    assert (report.props[T.PidLidTaskStatus], report.props[T.PidLidPercentComplete]) == (1, 0.4)
    assert report.props[T.PidLidCommonEnd] == datetime(2024, 6, 28, 15, tzinfo=UTC)
    assert passport.props[T.PidLidTaskComplete] is True
    text = render_calendar([report, passport, rent]).decode()
    for line in ("STATUS:IN-PROCESS", "PERCENT-COMPLETE:40", "DUE:20240628T150000Z",
                 "COMPLETED:20240605T000000Z", "RRULE:FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=1",
                 "UID:E3A1F2B4-7C6D-4E5F-9A8B-1C2D3E4F5A6B", "DUE;VALUE=DATE:20240401"):
        assert line in text


def test_meeting_methods() -> None:
    base = (CORPUS / "google_invite.ics").read_text()
    reply = base.replace("METHOD:REQUEST", "METHOD:REPLY").replace(
        "PARTSTAT=NEEDS-ACTION", "PARTSTAT=DECLINED").replace(
        "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED", "X-GONE")
    [m] = parse_calendar(reply)
    assert m.props[T.PidTagMessageClass] == "IPM.Schedule.Meeting.Resp.Neg"
    cancel = base.replace("METHOD:REQUEST", "METHOD:CANCEL")
    [m] = parse_calendar(cancel)
    assert m.props[T.PidTagMessageClass] == "IPM.Schedule.Meeting.Canceled"
    assert m.props[T.PidLidAppointmentStateFlags] & 0x4
    assert b"METHOD:CANCEL" in render_calendar(m)


@pytest.mark.parametrize("path", BAD, ids=[p.name for p in BAD])
def test_bad_input_is_bounded(path: Path) -> None:
    began = time.monotonic()
    result = parse_calendar_report(path.read_bytes())
    assert result.errors
    out = render_calendar(result.messages)
    found = occurrences(out, *WINDOW, max_instances=500)
    occurrences(path.read_bytes(), *WINDOW, max_instances=500)
    assert len(found) <= 500
    assert time.monotonic() - began < 5


def test_unknown_tzid_falls_back_to_default() -> None:
    data = (CORPUS / "bad" / "unknown_tzid.ics").read_bytes()
    [m] = parse_calendar(data, default_tz="Europe/Berlin")
    assert m.props[T.PidLidAppointmentStartWhole] == datetime(2024, 1, 5, 9, tzinfo=UTC)
    pat = R.parse_appointment(m.props[T.PidLidAppointmentRecur]).pattern
    assert len(pat.deleted) == 1


def test_unbounded_and_huge_rules_stay_recurring() -> None:
    forever, huge, oversized = parse_calendar(
        (CORPUS / "bad" / "unbounded_and_huge.ics").read_bytes())
    assert R.parse_appointment(forever.props[T.PidLidAppointmentRecur]).pattern.end_type \
        == R.END_NEVER
    pat = R.parse_appointment(huge.props[T.PidLidAppointmentRecur]).pattern
    assert (pat.end_type, pat.occurrence_count) == (R.END_COUNT, 2**31 - 1)
    assert T.PidLidAppointmentRecur in oversized.props


def test_broken_lines_keep_what_is_readable() -> None:
    result = parse_calendar_report((CORPUS / "bad" / "broken_lines.ics").read_bytes())
    assert [m.props.get(T.PidTagSubject) for m in result.messages] == ["Still fine"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000) | st.text(max_size=2000))
def test_garbage_never_raises(data: bytes | str) -> None:
    render_calendar(parse_calendar(data))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_mangled_corpus_never_raises(data: st.DataObject) -> None:
    source = (CORPUS / "outlook_request_weekly_exception.ics").read_bytes()
    cut = data.draw(st.integers(0, len(source)))
    junk = data.draw(st.binary(max_size=40))
    mangled = source[:cut] + junk + source[cut + len(junk):]
    messages = parse_calendar(mangled)
    occurrences(render_calendar(messages), *WINDOW, max_instances=200)


def test_expansion_bound_and_windows() -> None:
    data = (CORPUS / "google_invite.ics").read_bytes()
    assert len(occurrences(data, *WINDOW)) == 30
    assert len(occurrences(data, *WINDOW, max_instances=7)) == 7
    window = occurrences(data, date(2025, 1, 13), date(2025, 1, 18))
    assert [i.start for i in window] == [datetime(2025, 1, d, 17, tzinfo=UTC) for d in (13, 15, 17)]
    assert occurrences(b"not a calendar", *WINDOW) == []
    messages = parse_calendar(data)
    assert [i.start for i in occurrences(messages, date(2025, 1, 13), date(2025, 1, 18))] \
        == [i.start for i in window]


def test_free_busy() -> None:
    messages = load("outlook_request_weekly_exception.ics") + load("apple_calendar_monthly.ics")
    periods = free_busy(messages, datetime(2025, 3, 17, tzinfo=UTC),
                        datetime(2025, 3, 24, tzinfo=UTC))
    assert periods == [
        (datetime(2025, 3, 17, 9, tzinfo=UTC), datetime(2025, 3, 17, 9, 30, tzinfo=UTC),
         "BUSY-TENTATIVE"),
        (datetime(2025, 3, 21, 13, tzinfo=UTC), datetime(2025, 3, 21, 14, tzinfo=UTC), "BUSY")]
    assert merge([(datetime(2025, 1, 1, 9, tzinfo=UTC), datetime(2025, 1, 1, 12, tzinfo=UTC),
                   "BUSY-TENTATIVE"),
                  (datetime(2025, 1, 1, 10, tzinfo=UTC), datetime(2025, 1, 1, 11, tzinfo=UTC),
                   "BUSY-UNAVAILABLE")]) == [
        (datetime(2025, 1, 1, 9, tzinfo=UTC), datetime(2025, 1, 1, 10, tzinfo=UTC),
         "BUSY-TENTATIVE"),
        (datetime(2025, 1, 1, 10, tzinfo=UTC), datetime(2025, 1, 1, 11, tzinfo=UTC),
         "BUSY-UNAVAILABLE"),
        (datetime(2025, 1, 1, 11, tzinfo=UTC), datetime(2025, 1, 1, 12, tzinfo=UTC),
         "BUSY-TENTATIVE")]
    text = render_vfreebusy(periods, datetime(2025, 3, 17, tzinfo=UTC),
                            datetime(2025, 3, 24, tzinfo=UTC), attendee="bernd@example.com")
    text = text.replace(b"\r\n ", b"")
    assert b"FREEBUSY;FBTYPE=BUSY;VALUE=PERIOD:20250321T130000Z/20250321T140000Z" in text
    assert b"FREEBUSY;FBTYPE=BUSY-TENTATIVE;VALUE=PERIOD:20250317T090000Z/20250317T093000Z" in text


async def test_folder_free_busy(mbox) -> None:  # type: ignore[no-untyped-def]
    from gateway.convert.freebusy import folder_free_busy
    from gateway.store.special import Private

    folder = int(Private.CALENDAR)
    for message in load("outlook_request_weekly_exception.ics"):
        message.props[T.PidTagMessageClass] = "IPM.Appointment"
        await mbox.create_message(folder, message)
    start = datetime(2025, 3, 17, tzinfo=UTC)
    periods = await folder_free_busy(mbox, folder, start, start + timedelta(days=7))
    assert [p[2] for p in periods] == ["BUSY-TENTATIVE", "BUSY"]
