"""Appointments, meeting messages, tasks and journal entries → iCalendar (MS-OXCICAL export).

:func:`render_calendar` writes VEVENTs (with RRULE/EXDATE and RECURRENCE-ID
overrides from the recurrence blob and its exception attachments), VTODOs and
VJOURNALs (journal entries, :mod:`~gateway.convert.ical_journal`),
one VTIMEZONE per time-zone definition used, VALARM, ORGANIZER/ATTENDEE and the
``X-MICROSOFT-CDO-*`` properties Outlook emits. The same messages always give
the same bytes: DTSTAMP comes from the message, never from the clock.
:func:`to_calendar` gives the :class:`icalendar.Calendar` itself.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from icalendar import Alarm, Calendar, Event, Todo

from gateway.convert import goid, ical_journal
from gateway.convert import recurrence as R
from gateway.convert import timezones as Z
from gateway.store import NewMessage
from gateway.store import tags as T

log = logging.getLogger(__name__)

PRODID = "-//groupware-gateway//convert//EN"
BUSY_NAMES = ("FREE", "TENTATIVE", "BUSY", "OOF", "WORKINGELSEWHERE")
PARTSTAT = {2: "TENTATIVE", 3: "ACCEPTED", 4: "DECLINED"}
CLASSES = {0: "PUBLIC", 1: "PRIVATE", 2: "PRIVATE", 3: "CONFIDENTIAL"}
TASK_STATUS = {0: "NEEDS-ACTION", 1: "IN-PROCESS", 2: "COMPLETED", 3: "NEEDS-ACTION",
               4: "CANCELLED"}
METHODS = {"IPM.Schedule.Meeting.Request": "REQUEST", "IPM.Schedule.Meeting.Canceled": "CANCEL",
           "IPM.Schedule.Meeting.Resp.Pos": "REPLY", "IPM.Schedule.Meeting.Resp.Neg": "REPLY",
           "IPM.Schedule.Meeting.Resp.Tent": "REPLY"}
EPOCH_STAMP = datetime(2000, 1, 1, tzinfo=UTC)


def render_calendar(messages: list[NewMessage] | NewMessage, *,
                    method: str | None = None) -> bytes:
    """A VCALENDAR for the messages (METHOD from ``method`` or the meeting class)."""
    return bytes(to_calendar(messages, method=method).to_ical())


def to_calendar(messages: list[NewMessage] | NewMessage, *,
                method: str | None = None) -> Calendar:
    if isinstance(messages, NewMessage):
        messages = [messages]
    if method is None:
        found = {METHODS.get(str(m.props.get(T.PidTagMessageClass, ""))) for m in messages}
        method = found.pop() if len(found) == 1 else None
    cal = Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    if method:
        cal.add("METHOD", method.upper())
    zones: dict[str, Z.TZDefinition] = {}
    components = []
    for message in messages:
        try:
            components.extend(_message(message, zones, method))
        except Exception:  # one broken message must not lose the others
            log.exception("iCalendar export of a message failed")
    for name in sorted(zones):
        cal.add_component(Z.to_vtimezone(zones[name]))
    for comp in components:
        cal.add_component(comp)
    return cal


def _message(m: NewMessage, zones: dict[str, Z.TZDefinition], method: str | None) -> list[Any]:
    if str(m.props.get(T.PidTagMessageClass, "")).startswith("IPM.Task"):
        return [_todo(m)]
    if ical_journal.is_journal(str(m.props.get(T.PidTagMessageClass, ""))):
        return [ical_journal.to_vjournal(m, _uid(m.props), _stamp(m.props))]
    return _events(m, zones, method)


def definition(props: dict[Any, Any]) -> Z.TZDefinition | None:
    """The message's time zone: the recurring definition, the start one or the struct."""
    for tag in (T.PidLidAppointmentTimeZoneDefinitionRecur,
                T.PidLidAppointmentTimeZoneDefinitionStartDisplay):
        blob = props.get(tag)
        if isinstance(blob, bytes):
            try:
                defn = Z.parse_tzdefinition(blob)
                if defn.rules:
                    return defn
            except Z.TimeZoneError:
                pass
    blob = props.get(T.PidLidTimeZoneStruct)
    if isinstance(blob, bytes):
        try:
            name = str(props.get(T.PidLidTimeZoneDescription) or "Custom Time Zone")
            return Z.TZDefinition(name[:260], [Z.parse_tzstruct(blob)])
        except Z.TimeZoneError:
            pass
    return None


def _uid(props: dict[Any, Any]) -> str:
    for tag in (T.PidLidCleanGlobalObjectId, T.PidLidGlobalObjectId):
        blob = props.get(tag)
        if isinstance(blob, bytes) and blob:
            uid = goid.goid_to_uid(blob)
            if uid:
                return uid
    seed = repr(sorted((str(k), repr(v)) for k, v in props.items()))
    return "gw-" + hashlib.sha1(seed.encode()).hexdigest()


def _stamp(props: dict[Any, Any]) -> datetime:
    for tag in (T.PidTagLastModificationTime, T.PidLidOwnerCriticalChange,
                T.PidLidAttendeeCriticalChange, T.PidTagCreationTime):
        value = props.get(tag)
        if isinstance(value, datetime):
            return value.astimezone(UTC)
    return EPOCH_STAMP


class _Zone:
    """How times of one appointment are written: UTC, or wall time with a TZID."""

    def __init__(self, defn: Z.TZDefinition | None, zones: dict[str, Z.TZDefinition]) -> None:
        if defn is None or defn.keyname.upper() == "UTC" or all(
                not r.has_dst and r.bias == 0 for r in defn.rules):
            self.tz: tzinfo = UTC
            self.name: str | None = None
        else:
            self.tz, self.name = Z.RulesTZ(defn), defn.keyname
            zones.setdefault(defn.keyname, defn)

    def local(self, value: datetime) -> datetime:
        return value.astimezone(self.tz).replace(tzinfo=None)

    def utc(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.tz).astimezone(UTC)

    def add(self, comp: Any, name: str, value: datetime, all_day: bool = False) -> None:
        """Add a UTC instant as a DATE, a UTC DATE-TIME or a wall time with TZID."""
        if all_day:
            comp.add(name, self.local(value).date())
        elif self.name is None:
            comp.add(name, value.astimezone(UTC))
        else:
            comp.add(name, self.local(value), parameters={"TZID": self.name})

    def add_local(self, comp: Any, name: str, values: list[datetime], all_day: bool) -> None:
        if all_day:
            comp.add(name, [v.date() for v in values])
        elif self.name is None:
            comp.add(name, [self.utc(v) for v in values])
        else:
            comp.add(name, values, parameters={"TZID": self.name})


def _common(comp: Any, p: dict[Any, Any], uid: str) -> None:
    comp.add("UID", uid)
    comp.add("DTSTAMP", _stamp(p))
    if p.get(T.PidTagSubject) is not None:
        comp.add("SUMMARY", str(p[T.PidTagSubject]))
    if p.get(T.PidTagBody):
        comp.add("DESCRIPTION", str(p[T.PidTagBody]))
    comp.add("CLASS", CLASSES.get(int(p.get(T.PidTagSensitivity, 0) or 0), "PUBLIC"))
    importance = int(p.get(T.PidTagImportance, 1) or 0)
    comp.add("PRIORITY", {2: 1, 0: 9}.get(importance, 5))
    if p.get(T.PidNameKeywords):
        comp.add("CATEGORIES", [str(k) for k in p[T.PidNameKeywords]])
    for tag, name in ((T.PidTagCreationTime, "CREATED"),
                      (T.PidTagLastModificationTime, "LAST-MODIFIED")):
        if isinstance(p.get(tag), datetime):
            comp.add(name, p[tag].astimezone(UTC))
    if p.get(T.PidLidAppointmentSequence) is not None:
        comp.add("SEQUENCE", int(p[T.PidLidAppointmentSequence]))


def _people(comp: Any, m: NewMessage, method: str | None) -> None:
    p = m.props
    email = p.get(T.PidTagSentRepresentingSmtpAddress) or p.get(
        T.PidTagSentRepresentingEmailAddress)
    if email:
        params = {"CN": str(p.get(T.PidTagSentRepresentingName) or email)}
        comp.add("ORGANIZER", f"mailto:{email}", parameters=params)
    for r in m.recipients:
        address = r.get(T.PidTagSmtpAddress) or r.get(T.PidTagEmailAddress)
        if not address:
            continue
        kind = int(r.get(T.PidTagRecipientType, 1) or 1)
        params = {"CN": str(r.get(T.PidTagDisplayName) or address),
                  "ROLE": "OPT-PARTICIPANT" if kind == 2 else (
                      "NON-PARTICIPANT" if kind == 3 else "REQ-PARTICIPANT"),
                  "PARTSTAT": PARTSTAT.get(int(r.get(T.PidTagRecipientTrackStatus, 0) or 0),
                                           "NEEDS-ACTION")}
        if kind == 3:
            params["CUTYPE"] = "RESOURCE"
        if method == "REQUEST":
            params["RSVP"] = "TRUE"
        comp.add("ATTENDEE", f"mailto:{address}", parameters=params)


def _alarm(comp: Any, p: dict[Any, Any], absolute: bool = False) -> None:
    if not p.get(T.PidLidReminderSet):
        return
    alarm = Alarm()
    alarm.add("ACTION", "DISPLAY")
    alarm.add("DESCRIPTION", "Reminder")
    signal = p.get(T.PidLidReminderSignalTime) or p.get(T.PidLidReminderTime)
    if absolute and isinstance(signal, datetime):
        alarm.add("TRIGGER", signal.astimezone(UTC))
    else:
        delta = int(p.get(T.PidLidReminderDelta, 15) or 0)
        alarm.add("TRIGGER", timedelta(minutes=-delta), parameters={"RELATED": "START"})
    comp.add_component(alarm)


def _event(m: NewMessage, zone: _Zone, method: str | None, uid: str) -> Event:
    p = m.props
    ev = Event()
    _common(ev, p, uid)
    start = p.get(T.PidLidAppointmentStartWhole) or p.get(T.PidTagStartDate) or EPOCH_STAMP
    end = p.get(T.PidLidAppointmentEndWhole) or p.get(T.PidTagEndDate) or start
    all_day = bool(p.get(T.PidLidAppointmentSubType))
    zone.add(ev, "DTSTART", start, all_day)
    zone.add(ev, "DTEND", max(end, start), all_day)
    if p.get(T.PidLidLocation):
        ev.add("LOCATION", str(p[T.PidLidLocation]))
    busy = int(p.get(T.PidLidBusyStatus, 2) or 0)
    ev.add("TRANSP", "TRANSPARENT" if busy == 0 else "OPAQUE")
    flags = int(p.get(T.PidLidAppointmentStateFlags, 0) or 0)
    ev.add("STATUS", "CANCELLED" if flags & 0x4 or method == "CANCEL" else "CONFIRMED")
    _people(ev, m, method)
    ev.add("X-MICROSOFT-CDO-BUSYSTATUS", BUSY_NAMES[busy] if 0 <= busy < 5 else "BUSY")
    intended = int(p.get(T.PidLidIntendedBusyStatus, busy) or 0)
    ev.add("X-MICROSOFT-CDO-INTENDEDSTATUS",
           BUSY_NAMES[intended] if 0 <= intended < 5 else "BUSY")
    ev.add("X-MICROSOFT-CDO-ALLDAYEVENT", "TRUE" if all_day else "FALSE")
    ev.add("X-MICROSOFT-CDO-IMPORTANCE", str(int(p.get(T.PidTagImportance, 1) or 0)))
    if p.get(T.PidTagOwnerAppointmentId) is not None:
        ev.add("X-MICROSOFT-CDO-OWNERAPPTID", str(int(p[T.PidTagOwnerAppointmentId])))
    ev.add("X-MICROSOFT-DISALLOW-COUNTER", "TRUE" if p.get(
        T.PidLidAppointmentNotAllowPropose) else "FALSE")
    _alarm(ev, p)
    return ev


def _events(m: NewMessage, zones: dict[str, Z.TZDefinition], method: str | None) -> list[Any]:
    p = m.props
    uid = _uid(p)
    zone = _Zone(definition(p), zones)
    master = _event(m, zone, method, uid)
    blob = p.get(T.PidLidAppointmentRecur)
    rec = None
    if isinstance(blob, bytes) and p.get(T.PidLidRecurring, True):
        try:
            rec = R.parse_appointment(blob)
            rule = R.rule_from_pattern(rec.pattern)
        except (R.RecurrenceError, R.Unsupported) as exc:
            log.warning("recurrence of %s not exported: %s", uid, exc)
            rec = None
    if rec is None:
        rid = p.get(T.PidLidExceptionReplaceTime)
        if isinstance(rid, datetime) and p.get(T.PidLidIsException):
            zone.add(master, "RECURRENCE-ID", rid, bool(p.get(T.PidLidAppointmentSubType)))
        master.add("X-MICROSOFT-CDO-INSTTYPE", "3" if master.get("RECURRENCE-ID") else "0")
        return [master]
    all_day = bool(p.get(T.PidLidAppointmentSubType))
    offset = timedelta(minutes=rec.start_offset)
    count, last = R.rule_end(rec.pattern)
    if count is not None:
        rule["COUNT"] = [count]
    elif last is not None:
        until = datetime.combine(last, datetime.min.time()) + offset
        rule["UNTIL"] = [until.date() if all_day else zone.utc(until)]
    master.add("RRULE", {k: v for k, v in rule.items()})
    moved = {R.from_minutes(e.original_start).date() for e in rec.exceptions}
    exdates = sorted(R.from_minutes(d) + offset for d in set(rec.pattern.deleted)
                     if R.from_minutes(d).date() not in moved)
    if exdates:
        zone.add_local(master, "EXDATE", exdates, all_day)
    master.add("X-MICROSOFT-CDO-INSTTYPE", "1")
    out = [master]
    for info in rec.exceptions:
        out.append(_override(m, info, zone, method, uid, all_day))
    return out


def _find_exception(m: NewMessage, original_utc: datetime,
                    start_label: datetime) -> NewMessage | None:
    for att in m.attachments:
        inner = att.embedded
        if inner is None:
            continue
        for value in (att.props.get(T.PidTagExceptionReplaceTime),
                      inner.props.get(T.PidLidExceptionReplaceTime)):
            if isinstance(value, datetime) and value == original_utc:
                return inner
        if att.props.get(T.PidTagExceptionStartTime) == start_label:
            return inner
    return None


def _override(m: NewMessage, info: R.ExceptionInfo, zone: _Zone, method: str | None,
              uid: str, all_day: bool) -> Event:
    original = R.from_minutes(info.original_start)
    original_utc = zone.utc(original)
    start_local, end_local = R.from_minutes(info.start), R.from_minutes(info.end)
    inner = _find_exception(m, original_utc,
                            start_local.replace(tzinfo=UTC))
    props = dict(m.props)
    if inner is not None:
        props.update({k: v for k, v in inner.props.items()
                      if k not in (T.PidTagMessageClass, T.PidLidAppointmentRecur)})
    for value, tag in ((info.subject, T.PidTagSubject), (info.location, T.PidLidLocation),
                       (info.busy_status, T.PidLidBusyStatus),
                       (info.reminder_delta, T.PidLidReminderDelta)):
        if value is not None:
            props[tag] = value
    if info.reminder_set is not None:
        props[T.PidLidReminderSet] = bool(info.reminder_set)
    sub_all_day = bool(info.subtype) if info.subtype is not None else all_day
    props[T.PidLidAppointmentSubType] = sub_all_day
    props[T.PidLidAppointmentStartWhole] = zone.utc(start_local)
    props[T.PidLidAppointmentEndWhole] = zone.utc(end_local)
    recipients = inner.recipients if inner is not None and (
        inner.recipients or inner.props.get(T.PidLidFExceptionalAttendees)) else m.recipients
    ev = _event(NewMessage(props=props, recipients=recipients), zone, method, uid)
    if all_day:
        ev.add("RECURRENCE-ID", original.date())
    elif zone.name is None:
        ev.add("RECURRENCE-ID", original_utc)
    else:
        ev.add("RECURRENCE-ID", original, parameters={"TZID": zone.name})
    ev.add("X-MICROSOFT-CDO-INSTTYPE", "3")
    return ev


def _todo(m: NewMessage) -> Todo:
    p = m.props
    todo = Todo()
    uid = _uid(p)
    _common(todo, p, uid)
    start, due = p.get(T.PidLidCommonStart), p.get(T.PidLidCommonEnd)
    task_start, task_due = p.get(T.PidLidTaskStartDate), p.get(T.PidLidTaskDueDate)
    dtstart: datetime | date | None = None
    if isinstance(start, datetime):
        dtstart = start.astimezone(UTC)
    elif isinstance(task_start, datetime):
        dtstart = task_start.date()
    if dtstart is not None:
        todo.add("DTSTART", dtstart)
    if isinstance(due, datetime):
        todo.add("DUE", due.astimezone(UTC))
    elif isinstance(task_due, datetime):
        todo.add("DUE", task_due.date())
    status = int(p.get(T.PidLidTaskStatus, 0) or 0)
    done = bool(p.get(T.PidLidTaskComplete)) or status == 2
    todo.add("STATUS", "COMPLETED" if done else TASK_STATUS.get(status, "NEEDS-ACTION"))
    percent = p.get(T.PidLidPercentComplete)
    if isinstance(percent, int | float):
        todo.add("PERCENT-COMPLETE", max(0, min(100, round(float(percent) * 100))))
    completed = p.get(T.PidLidTaskDateCompleted)
    if done and isinstance(completed, datetime):
        todo.add("COMPLETED", completed.astimezone(UTC))
    blob = p.get(T.PidLidTaskRecurrence)
    if isinstance(blob, bytes) and dtstart is not None:
        try:
            pattern = R.parse_pattern(blob)
            rule = R.rule_from_pattern(pattern)
            count, last = R.rule_end(pattern)
            if count is not None:
                rule["COUNT"] = [count]
            elif last is not None:
                rule["UNTIL"] = [last if not isinstance(dtstart, datetime) else
                                 datetime.combine(last, dtstart.time(), UTC)]
            todo.add("RRULE", rule)
        except (R.RecurrenceError, R.Unsupported) as exc:
            log.warning("task recurrence of %s not exported: %s", uid, exc)
    _alarm(todo, p, absolute=True)
    return todo
