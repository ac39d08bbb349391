"""Meeting messages: the calendar part of an invitation completes the MAPI message."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.convert import goid, mime_in
from gateway.store import tags as T

CORPUS = Path(__file__).parent.parent / "corpus" / "mail"


def test_an_outlook_invitation_carries_the_appointment() -> None:
    message = mime_in.parse((CORPUS / "outlook-meeting-request.eml").read_bytes())
    props = message.props
    assert props[T.PidTagMessageClass] == "IPM.Schedule.Meeting.Request"
    start, end = props[T.PidLidAppointmentStartWhole], props[T.PidLidAppointmentEndWhole]
    assert start.tzinfo is not None and end > start
    assert start.astimezone(UTC) < datetime(2100, 1, 1, tzinfo=UTC)
    assert isinstance(props[T.PidLidGlobalObjectId], bytes)
    assert props[T.PidLidGlobalObjectId][:16] == goid.BYTE_ARRAY_ID
    # The e-mail's own subject, sender and recipients stay.
    assert props[T.PidTagSubject] and props[T.PidTagSenderSmtpAddress]
    assert message.recipients


def test_a_broken_calendar_part_leaves_a_plain_meeting_message() -> None:
    raw = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/calendar; method=REQUEST\r\n\r\n"
           b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nDTSTART:garbage\r\n")
    message = mime_in.parse(raw)
    assert message.props[T.PidTagMessageClass] == "IPM.Schedule.Meeting.Request"
    assert message.props[T.PidTagSubject] == "x"
