"""MS-OXOCAL recurrence blobs and their RRULE equivalents: the public face of
:mod:`~gateway.convert.recurrence_blob` (the blobs, byte for byte) and
:mod:`~gateway.convert.recurrence_rrule` (RRULE ⇄ pattern, occurrence ranges).

Times in the blobs are minutes since 1601-01-01 in the appointment's own time
zone; these modules work in naive local datetimes and leave zones to callers.
"""

from __future__ import annotations

from gateway.convert.recurrence_blob import ARO_APPTCOLOR as ARO_APPTCOLOR
from gateway.convert.recurrence_blob import ARO_ATTACHMENT as ARO_ATTACHMENT
from gateway.convert.recurrence_blob import ARO_BUSYSTATUS as ARO_BUSYSTATUS
from gateway.convert.recurrence_blob import ARO_EXCEPTIONAL_BODY as ARO_EXCEPTIONAL_BODY
from gateway.convert.recurrence_blob import ARO_LOCATION as ARO_LOCATION
from gateway.convert.recurrence_blob import ARO_MEETINGTYPE as ARO_MEETINGTYPE
from gateway.convert.recurrence_blob import ARO_REMINDER as ARO_REMINDER
from gateway.convert.recurrence_blob import ARO_REMINDERDELTA as ARO_REMINDERDELTA
from gateway.convert.recurrence_blob import ARO_SUBJECT as ARO_SUBJECT
from gateway.convert.recurrence_blob import ARO_SUBTYPE as ARO_SUBTYPE
from gateway.convert.recurrence_blob import END_COUNT as END_COUNT
from gateway.convert.recurrence_blob import END_DATE as END_DATE
from gateway.convert.recurrence_blob import END_NEVER as END_NEVER
from gateway.convert.recurrence_blob import END_NEVER2 as END_NEVER2
from gateway.convert.recurrence_blob import EPOCH as EPOCH
from gateway.convert.recurrence_blob import FREQ_DAILY as FREQ_DAILY
from gateway.convert.recurrence_blob import FREQ_MONTHLY as FREQ_MONTHLY
from gateway.convert.recurrence_blob import FREQ_WEEKLY as FREQ_WEEKLY
from gateway.convert.recurrence_blob import FREQ_YEARLY as FREQ_YEARLY
from gateway.convert.recurrence_blob import NO_END_DATE as NO_END_DATE
from gateway.convert.recurrence_blob import PT_DAY as PT_DAY
from gateway.convert.recurrence_blob import PT_HJMONTH as PT_HJMONTH
from gateway.convert.recurrence_blob import PT_HJMONTHEND as PT_HJMONTHEND
from gateway.convert.recurrence_blob import PT_HJMONTHNTH as PT_HJMONTHNTH
from gateway.convert.recurrence_blob import PT_MONTH as PT_MONTH
from gateway.convert.recurrence_blob import PT_MONTHEND as PT_MONTHEND
from gateway.convert.recurrence_blob import PT_MONTHNTH as PT_MONTHNTH
from gateway.convert.recurrence_blob import PT_WEEK as PT_WEEK
from gateway.convert.recurrence_blob import AppointmentRecurrence as AppointmentRecurrence
from gateway.convert.recurrence_blob import ExceptionInfo as ExceptionInfo
from gateway.convert.recurrence_blob import RecurrenceError as RecurrenceError
from gateway.convert.recurrence_blob import RecurrencePattern as RecurrencePattern
from gateway.convert.recurrence_blob import build_appointment as build_appointment
from gateway.convert.recurrence_blob import build_pattern as build_pattern
from gateway.convert.recurrence_blob import from_minutes as from_minutes
from gateway.convert.recurrence_blob import parse_appointment as parse_appointment
from gateway.convert.recurrence_blob import parse_pattern as parse_pattern
from gateway.convert.recurrence_blob import recurrence_type as recurrence_type
from gateway.convert.recurrence_blob import to_minutes as to_minutes
from gateway.convert.recurrence_rrule import DAYS as DAYS
from gateway.convert.recurrence_rrule import MAX_WALK as MAX_WALK
from gateway.convert.recurrence_rrule import Unsupported as Unsupported
from gateway.convert.recurrence_rrule import describe as describe
from gateway.convert.recurrence_rrule import pattern_from_rule as pattern_from_rule
from gateway.convert.recurrence_rrule import rule_end as rule_end
from gateway.convert.recurrence_rrule import rule_from_pattern as rule_from_pattern
from gateway.convert.recurrence_rrule import set_range as set_range
from gateway.convert.recurrence_rrule import walk as walk

__all__ = [
    "ARO_APPTCOLOR",
    "ARO_ATTACHMENT",
    "ARO_BUSYSTATUS",
    "ARO_EXCEPTIONAL_BODY",
    "ARO_LOCATION",
    "ARO_MEETINGTYPE",
    "ARO_REMINDER",
    "ARO_REMINDERDELTA",
    "ARO_SUBJECT",
    "ARO_SUBTYPE",
    "DAYS",
    "END_COUNT",
    "END_DATE",
    "END_NEVER",
    "END_NEVER2",
    "EPOCH",
    "FREQ_DAILY",
    "FREQ_MONTHLY",
    "FREQ_WEEKLY",
    "FREQ_YEARLY",
    "MAX_WALK",
    "NO_END_DATE",
    "PT_DAY",
    "PT_HJMONTH",
    "PT_HJMONTHEND",
    "PT_HJMONTHNTH",
    "PT_MONTH",
    "PT_MONTHEND",
    "PT_MONTHNTH",
    "PT_WEEK",
    "AppointmentRecurrence",
    "ExceptionInfo",
    "RecurrenceError",
    "RecurrencePattern",
    "Unsupported",
    "build_appointment",
    "build_pattern",
    "describe",
    "from_minutes",
    "parse_appointment",
    "parse_pattern",
    "pattern_from_rule",
    "recurrence_type",
    "rule_end",
    "rule_from_pattern",
    "set_range",
    "to_minutes",
    "walk",
]
