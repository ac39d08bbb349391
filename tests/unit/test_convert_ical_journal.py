"""VJOURNAL ⇄ journal entries (MS-OXOJRNL ``IPM.Activity``): round trips, missing fields,
entries made by other protocols, and hostile input."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

from icalendar import Calendar, Component

from gateway.convert import goid
from gateway.convert.ical_in import parse_calendar_report
from gateway.convert.ical_journal import is_journal
from gateway.convert.ical_out import render_calendar
from gateway.store import NewMessage
from gateway.store import tags as T


def ics(*lines: str) -> bytes:
    body = "\r\n".join(lines)
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
            f"{body}\r\nEND:VCALENDAR\r\n").encode()


def journal(*lines: str, uid: str = "j1@example.com") -> bytes:
    return ics("BEGIN:VJOURNAL", f"UID:{uid}", "DTSTAMP:20240101T100000Z", *lines,
               "END:VJOURNAL")


def one(data: bytes, default_tz: str = "UTC") -> tuple[NewMessage, list[str]]:
    result = parse_calendar_report(data, default_tz=default_tz)
    assert len(result.messages) == 1, result.errors
    return result.messages[0], result.errors


def vjournal(data: bytes) -> Component:
    (comp,) = Calendar.from_ical(data).walk("VJOURNAL")
    return comp


# -- import -----------------------------------------------------------------------------------

def test_a_dated_journal_becomes_a_journal_entry() -> None:
    m, errors = one(journal("DTSTART;VALUE=DATE:20240111", "SUMMARY:simple journal entry",
                            "DESCRIPTION:first line\\nsecond line", "CATEGORIES:Work,Notes",
                            "CLASS:CONFIDENTIAL", "CREATED:20240101T090000Z",
                            "LAST-MODIFIED:20240102T090000Z"))
    assert errors == []
    p = m.props
    assert p[T.PidTagMessageClass] == "IPM.Activity"
    assert p[T.PidTagSubject] == "simple journal entry"
    assert p[T.PidTagBody] == "first line\nsecond line"
    assert p[T.PidNameKeywords] == ["Work", "Notes"]
    assert p[T.PidTagSensitivity] == 3
    assert p[T.PidLidLogType] == "Note"
    assert p[T.PidLidLogStart] == datetime(2024, 1, 11, tzinfo=UTC)
    assert p[T.PidLidLogEnd] == datetime(2024, 1, 12, tzinfo=UTC)
    assert p[T.PidLidLogDuration] == 24 * 60
    assert p[T.PidTagCreationTime] == datetime(2024, 1, 1, 9, tzinfo=UTC)
    assert p[T.PidTagLastModificationTime] == datetime(2024, 1, 2, 9, tzinfo=UTC)
    assert p[T.PidLidGlobalObjectId] == goid.uid_to_goid("j1@example.com")
    assert T.PidLidAppointmentStartWhole not in p  # not an appointment


def test_a_timed_journal_keeps_its_instant() -> None:
    m, _ = one(journal("DTSTART;TZID=Europe/Berlin:20240611T093000", "SUMMARY:call"))
    assert m.props[T.PidLidLogStart] == datetime(2024, 6, 11, 7, 30, tzinfo=UTC)
    assert m.props[T.PidLidLogEnd] == m.props[T.PidLidLogStart]
    assert m.props[T.PidLidLogDuration] == 0
    floating, _ = one(journal("DTSTART:20240611T093000"), default_tz="America/New_York")
    assert floating.props[T.PidLidLogStart] == datetime(2024, 6, 11, 13, 30, tzinfo=UTC)


def test_an_end_a_client_sent_is_kept() -> None:
    m, _ = one(journal("DTSTART:20240611T093000Z", "DTEND:20240611T101500Z"))
    assert m.props[T.PidLidLogEnd] == datetime(2024, 6, 11, 10, 15, tzinfo=UTC)
    assert m.props[T.PidLidLogDuration] == 45
    m, _ = one(journal("DTSTART:20240611T093000Z", "DURATION:PT2H"))
    assert m.props[T.PidLidLogDuration] == 120
    m, _ = one(journal("DTSTART;VALUE=DATE:20240611", "DURATION:P3D"))
    assert m.props[T.PidLidLogEnd] == datetime(2024, 6, 14, tzinfo=UTC)
    m, errors = one(journal("DTSTART:20240611T093000Z", "DTEND:20240610T093000Z"))
    assert m.props[T.PidLidLogEnd] == m.props[T.PidLidLogStart]
    assert any("end" in e for e in errors)


def test_several_descriptions_are_joined() -> None:
    m, _ = one(journal("DESCRIPTION:one", "DESCRIPTION:two"))
    assert m.props[T.PidTagBody] == "one\n\ntwo"


def test_missing_fields() -> None:
    m, errors = one(journal())  # RFC 5545: a journal needs only UID and DTSTAMP
    assert errors == []
    p = m.props
    assert p[T.PidTagMessageClass] == "IPM.Activity"
    assert T.PidLidLogStart not in p and T.PidLidLogEnd not in p
    assert T.PidTagSubject not in p and T.PidTagBody not in p
    out = vjournal(render_calendar(m))
    assert "DTSTART" not in out and "SUMMARY" not in out and "DESCRIPTION" not in out
    assert str(out["UID"]) == "j1@example.com"
    nameless, _ = one(ics("BEGIN:VJOURNAL", "SUMMARY:no uid", "END:VJOURNAL"))
    again = vjournal(render_calendar(nameless))
    assert str(again["UID"]).startswith("gw-") and str(again["SUMMARY"]) == "no uid"


def test_a_journal_does_not_recur() -> None:
    data = ics("BEGIN:VJOURNAL", "UID:r@example.com", "DTSTART:20240101T090000Z",
               "RRULE:FREQ=DAILY;COUNT=3", "SUMMARY:daily", "END:VJOURNAL",
               "BEGIN:VJOURNAL", "UID:r@example.com", "RECURRENCE-ID:20240102T090000Z",
               "DTSTART:20240102T100000Z", "SUMMARY:moved", "END:VJOURNAL")
    m, errors = one(data)
    assert m.props[T.PidTagSubject] == "daily"
    assert m.props[T.PidLidLogStart] == datetime(2024, 1, 1, 9, tzinfo=UTC)
    assert any("recur" in e for e in errors)
    assert "RRULE" not in vjournal(render_calendar(m))
    only_override, _ = one(ics("BEGIN:VJOURNAL", "UID:o@example.com",
                               "RECURRENCE-ID:20240102T090000Z", "SUMMARY:alone",
                               "END:VJOURNAL"))
    assert only_override.props[T.PidTagMessageClass] == "IPM.Activity"


def test_journals_beside_events_and_tasks() -> None:
    data = ics("BEGIN:VEVENT", "UID:e@example.com", "DTSTAMP:20240101T100000Z",
               "DTSTART:20240101T090000Z", "DTEND:20240101T100000Z", "END:VEVENT",
               "BEGIN:VTODO", "UID:t@example.com", "DTSTAMP:20240101T100000Z", "END:VTODO",
               "BEGIN:VJOURNAL", "UID:j@example.com", "DTSTAMP:20240101T100000Z",
               "END:VJOURNAL",
               "BEGIN:VJOURNAL", "UID:e@example.com", "DTSTAMP:20240101T100000Z",
               "SUMMARY:notes of the meeting", "END:VJOURNAL")
    result = parse_calendar_report(data)
    classes = sorted(str(m.props[T.PidTagMessageClass]) for m in result.messages)
    assert classes == ["IPM.Activity", "IPM.Activity", "IPM.Appointment", "IPM.Task"]
    out = Calendar.from_ical(render_calendar(result.messages))
    assert sorted(str(c.name) for c in out.subcomponents) == ["VEVENT", "VJOURNAL",
                                                                "VJOURNAL", "VTODO"]


# -- export and round trips ------------------------------------------------------------------

def test_round_trip() -> None:
    source = journal("DTSTART;VALUE=DATE:20240111", "SUMMARY:simple journal entry",
                     "DESCRIPTION:line one\\nline two; with, punctuation",
                     "CATEGORIES:a,b", "CLASS:PRIVATE", "SEQUENCE:2",
                     "CREATED:20240101T090000Z", "LAST-MODIFIED:20240102T090000Z")
    m, _ = one(source)
    out = render_calendar(m)
    assert out == render_calendar(one(source)[0]), "the export is not deterministic"
    comp = vjournal(out)
    assert comp.decoded("DTSTART") == date(2024, 1, 11)
    assert str(comp["SUMMARY"]) == "simple journal entry"
    assert str(comp["DESCRIPTION"]) == "line one\nline two; with, punctuation"
    assert comp.decoded("CATEGORIES") == ["a", "b"]
    assert str(comp["CLASS"]) == "PRIVATE" and comp.decoded("SEQUENCE") == 2
    assert comp.decoded("LAST-MODIFIED") == datetime(2024, 1, 2, 9, tzinfo=UTC)
    assert "DTEND" not in comp and "DURATION" not in comp  # RFC 5545 3.6.3
    assert "PRIORITY" not in comp
    again, _ = one(out)
    assert again.props == m.props


def test_timed_round_trip_is_utc() -> None:
    m, _ = one(journal("DTSTART;TZID=Europe/Berlin:20240611T093000", "SUMMARY:call"))
    comp = vjournal(render_calendar(m))
    assert comp.decoded("DTSTART") == datetime(2024, 6, 11, 7, 30, tzinfo=UTC)
    midnight, _ = one(journal("DTSTART:20240611T000000Z"))  # a time, not a day
    assert vjournal(render_calendar(midnight)).decoded("DTSTART") == datetime(
        2024, 6, 11, tzinfo=UTC)


def test_an_entry_made_elsewhere_renders_as_vjournal() -> None:
    start = datetime(2024, 3, 4, 14, 5, tzinfo=UTC)
    for cls in ("IPM.Activity", "ipm.activity", "IPM.Activity.Custom"):
        assert is_journal(cls)
        m = NewMessage(props={
            T.PidTagMessageClass: cls, T.PidTagSubject: "Phone call with Bob",
            T.PidTagBody: "about the roof", T.PidLidLogType: "Phone call",
            T.PidLidLogStart: start, T.PidLidLogEnd: start + timedelta(minutes=20),
            T.PidLidLogDuration: 20, T.PidTagSensitivity: 2,
            T.PidTagLastModificationTime: datetime(2024, 3, 4, 15, tzinfo=UTC),
            T.PidLidGlobalObjectId: goid.uid_to_goid("outlook-journal-1")})
        comp = vjournal(render_calendar(m))
        assert comp.decoded("DTSTART") == start
        assert str(comp["UID"]) == "outlook-journal-1"
        assert comp.decoded("DTSTAMP") == datetime(2024, 3, 4, 15, tzinfo=UTC)
        assert str(comp["CLASS"]) == "PRIVATE"
    assert not is_journal("IPM.ActivityX") and not is_journal("IPM.Appointment")


# -- hostile input ----------------------------------------------------------------------------

def test_a_huge_description_is_read_whole_and_quickly() -> None:
    text = "x" * (4 * 1024 * 1024)
    started = time.monotonic()
    m, _ = one(journal("DTSTART:20240101T090000Z", f"DESCRIPTION:{text}"))
    assert m.props[T.PidTagBody] == text
    out = render_calendar(m)
    assert str(vjournal(out)["DESCRIPTION"]) == text
    assert time.monotonic() - started < 20


def test_bad_times() -> None:
    # icalendar refuses a VJOURNAL (as a VTODO) whose DTSTART is no date: it is dropped,
    # reported, and nothing raises
    result = parse_calendar_report(journal("DTSTART:yesterday", "SUMMARY:lost"))
    assert result.messages == [] and result.errors
    for line in ("DTSTART;VALUE=PERIOD:20240101T000000Z/PT1H",
                 "DTSTART;TZID=Nowhere/Atlantis:20240101T090000"):
        result = parse_calendar_report(journal(line, "SUMMARY:kept"))
        assert len(result.messages) == 1, (line, result.errors)
        p = result.messages[0].props
        assert p[T.PidTagSubject] == "kept" and p[T.PidTagMessageClass] == "IPM.Activity"
        assert result.errors, line
    m, _ = one(journal("DTSTART:00010101T000000", "SUMMARY:year one"),
               default_tz="Pacific/Kiritimati")
    assert m.props[T.PidTagSubject] == "year one"
    render_calendar(m)


def test_a_broken_calendar_keeps_its_readable_journals() -> None:
    data = ics("BEGIN:VTODO", "UID:bad", "DUE:whenever", "END:VTODO",
               "BEGIN:VJOURNAL", "UID:good@example.com", "SUMMARY:still here", "END:VJOURNAL")
    result = parse_calendar_report(data)
    assert any("read by component" in e for e in result.errors)
    journals = [m for m in result.messages
                if m.props[T.PidTagMessageClass] == "IPM.Activity"]
    assert [m.props[T.PidTagSubject] for m in journals] == ["still here"]


def test_many_journals_are_bounded() -> None:
    comps = [f"BEGIN:VJOURNAL\r\nUID:j{i}\r\nSUMMARY:{i}\r\nEND:VJOURNAL" for i in range(50)]
    result = parse_calendar_report(ics(*comps), max_components=10)
    assert len(result.messages) == 10
    assert any("more than 10" in e for e in result.errors)
