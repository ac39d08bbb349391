"""iCalendar VEVENT/VTODO → MAPI properties: the per-component part of the import.

:class:`EventReader` reads one component's times (with its time zone), the
properties events and tasks share, reminders, the appointment or meeting
properties and the organizer and attendees, for :mod:`~gateway.convert.ical_in`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from icalendar import Component
from icalendar.prop import vBroken

from gateway.convert import goid
from gateway.convert import timezones as Z
from gateway.store import NewMessage
from gateway.store import tags as T

BUSY = {"FREE": 0, "TENTATIVE": 1, "BUSY": 2, "OOF": 3, "WORKINGELSEWHERE": 4}
SENSITIVITY = {"PUBLIC": 0, "X-PERSONAL": 1, "PRIVATE": 2, "CONFIDENTIAL": 3}
TRACK = {"NEEDS-ACTION": 5, "ACCEPTED": 3, "DECLINED": 4, "TENTATIVE": 2, "DELEGATED": 0}
REPLY_CLASS = {3: "Pos", 4: "Neg", 2: "Tent"}
RECIP_SENDABLE, RECIP_ORGANIZER = 0x1, 0x2
ASF_MEETING, ASF_RECEIVED, ASF_CANCELED = 0x1, 0x2, 0x4


def _value(comp: Component, name: str) -> Any:
    value = comp.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if isinstance(value, vBroken) else value


def _text(comp: Component, name: str) -> str | None:
    value = _value(comp, name)
    return None if value is None else str(value)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _as_utc_label(value: datetime | date) -> datetime:
    """A local date or time stored "as UTC" (no conversion), as MAPI does for some dates."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    return value.replace(tzinfo=UTC)


def _email(address: Any) -> str:
    text = str(address)
    return text[7:] if text.lower().startswith("mailto:") else text


class EventReader:
    """Reads the components of one UID; problems go to ``errors``, prefixed by the UID."""

    def __init__(self, uid: str, method: str | None, fallback: tzinfo,
                 errors: list[str]) -> None:
        self.uid, self.method, self.fallback, self.errors = uid, method, fallback, errors

    def warn(self, text: str) -> None:
        self.errors.append(f"{self.uid}: {text}")

    def zone_of(self, prop: Any) -> tuple[tzinfo, str | None]:
        value = getattr(prop, "dt", None)
        tzid = prop.params.get("TZID") if hasattr(prop, "params") else None
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.tzinfo, str(tzid) if tzid else None
        if tzid:
            tz = Z.zone(str(tzid))
            if tz is not None:
                return tz, str(tzid)
            self.warn(f"unknown TZID {tzid!r}: using the default time zone")
        return self.fallback, None

    def aware(self, value: datetime | date, tz: tzinfo) -> datetime:
        if not isinstance(value, datetime):
            value = datetime.combine(value, time())
        return value.replace(tzinfo=tz) if value.tzinfo is None else value

    def times(self, comp: Component) -> tuple[datetime, datetime, bool, tzinfo, str | None]:
        start_prop = _value(comp, "DTSTART")
        if start_prop is None:
            raise ValueError("no DTSTART")
        tz, tzid = self.zone_of(start_prop)
        all_day = not isinstance(start_prop.dt, datetime)
        start = self.aware(start_prop.dt, tz)
        end_prop, duration = _value(comp, "DTEND"), _value(comp, "DURATION")
        if end_prop is not None:
            end = self.aware(end_prop.dt, self.zone_of(end_prop)[0])
        elif duration is not None and isinstance(duration.dt, timedelta):
            end = start + duration.dt
        else:
            end = start + (timedelta(days=1) if all_day else timedelta(0))
        if end < start:
            self.warn("end before start: end set to start")
            end = start
        cdo = str(_text(comp, "X-MICROSOFT-CDO-ALLDAYEVENT") or "").upper() == "TRUE"
        local = start.astimezone(tz)
        if cdo and local.time() == time() and (end - start) % timedelta(days=1) == timedelta(0):
            all_day = True
        return _utc(start), _utc(end), all_day, tz, tzid

    def single(self, comp: Component, instance: bool = False) -> NewMessage | None:
        try:
            start, end, all_day, tz, tzid = self.times(comp)
        except (ValueError, TypeError, OverflowError) as exc:
            self.warn(f"{comp.name} skipped: {exc}")
            return None
        msg = NewMessage()
        p = msg.props
        self.common(comp, p)
        self.event_props(comp, p, start, end, all_day)
        defn = Z.definition_from_tzinfo(tz, Z.keyname_for(tz, tzid), start.astimezone(tz).year)
        blob = Z.build_tzdefinition(defn)
        p[T.PidLidAppointmentTimeZoneDefinitionStartDisplay] = blob
        p[T.PidLidAppointmentTimeZoneDefinitionEndDisplay] = blob
        p[T.PidLidTimeZoneStruct] = Z.build_tzstruct(Z.effective_rule(defn))
        p[T.PidLidTimeZoneDescription] = Z.description(defn)
        rid = _value(comp, "RECURRENCE-ID")
        instance_date = None
        if instance and rid is not None:
            instance_date = self.aware(rid.dt, self.zone_of(rid)[0]).astimezone(tz).date()
            p[T.PidLidExceptionReplaceTime] = _utc(self.aware(rid.dt, self.zone_of(rid)[0]))
            p[T.PidLidIsException] = True
        p[T.PidLidGlobalObjectId] = goid.uid_to_goid(self.uid, instance_date)
        p[T.PidLidCleanGlobalObjectId] = goid.uid_to_goid(self.uid)
        self.people(comp, msg)
        return msg

    def common(self, comp: Component, p: dict[Any, Any]) -> None:
        """Properties shared by events and tasks."""
        for name, tag in (("SUMMARY", T.PidTagSubject), ("DESCRIPTION", T.PidTagBody)):
            text = _text(comp, name)
            if text is not None:
                p[tag] = text
        klass = (_text(comp, "CLASS") or "PUBLIC").upper()
        p[T.PidTagSensitivity] = SENSITIVITY.get(klass, 2 if klass.startswith("X-") else 0)
        importance = _text(comp, "X-MICROSOFT-CDO-IMPORTANCE")
        priority = _value(comp, "PRIORITY")
        if importance in ("0", "1", "2"):
            p[T.PidTagImportance] = int(importance)
        elif priority is not None and str(priority).isdigit() and int(priority):
            level = int(priority)
            p[T.PidTagImportance] = 2 if level < 5 else (1 if level == 5 else 0)
        else:
            p[T.PidTagImportance] = 1
        cats = comp.get("CATEGORIES")
        keywords = [str(c) for v in (cats if isinstance(cats, list) else [cats])
                    if v is not None and not isinstance(v, vBroken) for c in v.cats]
        if keywords:
            p[T.PidNameKeywords] = keywords
        for name, tag in (("CREATED", T.PidTagCreationTime),
                          ("LAST-MODIFIED", T.PidTagLastModificationTime)):
            value = _value(comp, name)
            if value is not None and isinstance(value.dt, datetime):
                p[tag] = _utc(self.aware(value.dt, UTC))
        sequence = _value(comp, "SEQUENCE")
        if sequence is None:
            sequence = _value(comp, "X-MICROSOFT-CDO-APPT-SEQUENCE")
        if sequence is not None and str(sequence).lstrip("-").isdigit():
            p[T.PidLidAppointmentSequence] = max(0, min(int(str(sequence)), 0x7FFFFFFF))

    def reminder(self, comp: Component, p: dict[Any, Any], start: datetime,
                 end: datetime) -> None:
        for alarm in comp.subcomponents:
            trigger = _value(alarm, "TRIGGER") if alarm.name == "VALARM" else None
            if trigger is None:
                continue
            if isinstance(trigger.dt, timedelta):
                base = end if str(trigger.params.get("RELATED", "")).upper() == "END" else start
                signal = base + trigger.dt
            elif isinstance(trigger.dt, datetime):
                signal = _utc(self.aware(trigger.dt, UTC))
            else:
                continue
            delta = max(0, int((start - signal).total_seconds() // 60))
            p[T.PidLidReminderSet] = True
            p[T.PidLidReminderDelta] = min(delta, 0x7FFFFFFF)
            p[T.PidLidReminderTime] = start
            p[T.PidLidReminderSignalTime] = signal
            return
        p[T.PidLidReminderSet] = False

    def event_props(self, comp: Component, p: dict[Any, Any], start: datetime, end: datetime,
                    all_day: bool) -> None:
        method = self.method
        cls = "IPM.Appointment"
        if method == "REQUEST":
            cls = "IPM.Schedule.Meeting.Request"
        elif method == "CANCEL":
            cls = "IPM.Schedule.Meeting.Canceled"
        elif method in ("REPLY", "COUNTER"):
            attendee = _value(comp, "ATTENDEE")
            state = TRACK.get(str(attendee.params.get("PARTSTAT", "")).upper(), 2) \
                if attendee is not None else 2
            cls = f"IPM.Schedule.Meeting.Resp.{REPLY_CLASS.get(state, 'Tent')}"
            p[T.PidLidResponseStatus] = state
        p[T.PidTagMessageClass] = cls
        location = _text(comp, "LOCATION")
        if location is not None:
            p[T.PidLidLocation] = location
        for tag in (T.PidLidAppointmentStartWhole, T.PidTagStartDate, T.PidLidCommonStart,
                    T.PidLidClipStart):
            p[tag] = start
        for tag in (T.PidLidAppointmentEndWhole, T.PidTagEndDate, T.PidLidCommonEnd,
                    T.PidLidClipEnd):
            p[tag] = end
        p[T.PidLidAppointmentDuration] = min(int((end - start).total_seconds() // 60),
                                             0x7FFFFFFF)
        p[T.PidLidAppointmentSubType] = all_day
        cdo = (_text(comp, "X-MICROSOFT-CDO-BUSYSTATUS") or "").upper()
        if cdo in BUSY:
            busy = BUSY[cdo]
        elif (_text(comp, "TRANSP") or "").upper() == "TRANSPARENT":
            busy = 0
        else:
            busy = 1 if (_text(comp, "STATUS") or "").upper() == "TENTATIVE" else 2
        p[T.PidLidBusyStatus] = busy
        intended = (_text(comp, "X-MICROSOFT-CDO-INTENDEDSTATUS") or "").upper()
        p[T.PidLidIntendedBusyStatus] = BUSY.get(intended, busy)
        owner_id = _text(comp, "X-MICROSOFT-CDO-OWNERAPPTID")
        if owner_id and owner_id.lstrip("-").isdigit():
            p[T.PidTagOwnerAppointmentId] = int(owner_id) & 0x7FFFFFFF
        stamp = _value(comp, "DTSTAMP")
        if stamp is not None and isinstance(stamp.dt, datetime):
            tag = T.PidLidAttendeeCriticalChange if method == "REPLY" else \
                T.PidLidOwnerCriticalChange
            p[tag] = _utc(self.aware(stamp.dt, UTC))
        self.reminder(comp, p, start, end)
        flags = ASF_MEETING if comp.get("ATTENDEE") or comp.get("ORGANIZER") else 0
        if method in ("REQUEST", "CANCEL", "REPLY", "COUNTER"):
            flags |= ASF_MEETING | ASF_RECEIVED
        if method == "CANCEL" or (_text(comp, "STATUS") or "").upper() == "CANCELLED":
            flags |= ASF_CANCELED
        p[T.PidLidAppointmentStateFlags] = flags
        if method == "REQUEST":
            p[T.PidLidResponseStatus] = 5
            p[T.PidLidFInvited] = True
            p[T.PidLidMeetingType] = 1
        if cls.startswith("IPM.Schedule.Meeting"):
            p[T.PidLidAppointmentMessageClass] = "IPM.Appointment"
        p.setdefault(T.PidLidResponseStatus, 0)

    def people(self, comp: Component, msg: NewMessage) -> None:
        organizer = _value(comp, "ORGANIZER")
        org_email = ""
        if organizer is not None:
            org_email = _email(organizer)
            name = str(organizer.params.get("CN", "") or org_email)
            p = msg.props
            p[T.PidTagSentRepresentingName] = name
            p[T.PidTagSentRepresentingEmailAddress] = org_email
            p[T.PidTagSentRepresentingAddressType] = "SMTP"
            p[T.PidTagSentRepresentingSmtpAddress] = org_email
        attendees = comp.get("ATTENDEE")
        to: list[str] = []
        cc: list[str] = []
        for att in attendees if isinstance(attendees, list) else [attendees]:
            if att is None or isinstance(att, vBroken):
                continue
            email = _email(att)
            name = str(att.params.get("CN", "") or email)
            role = str(att.params.get("ROLE", "REQ-PARTICIPANT")).upper()
            cutype = str(att.params.get("CUTYPE", "INDIVIDUAL")).upper()
            kind = 3 if cutype in ("RESOURCE", "ROOM") else (
                2 if role in ("OPT-PARTICIPANT", "NON-PARTICIPANT") else 1)
            flags = RECIP_SENDABLE | (RECIP_ORGANIZER if email and email == org_email else 0)
            msg.recipients.append({
                T.PidTagRecipientType: kind, T.PidTagDisplayName: name,
                T.PidTagEmailAddress: email, T.PidTagAddressType: "SMTP",
                T.PidTagSmtpAddress: email, T.PidTagRecipientFlags: flags,
                T.PidTagRecipientTrackStatus: TRACK.get(
                    str(att.params.get("PARTSTAT", "NEEDS-ACTION")).upper(), 0),
                T.PidTagObjectType: 6, T.PidTagDisplayType: 0,
                T.PidTagRecipientOrder: len(msg.recipients)})
            (to if kind == 1 else cc).append(name)
        if to:
            msg.props[T.PidLidToAttendeesString] = "; ".join(to)
        if cc:
            msg.props[T.PidLidCcAttendeesString] = "; ".join(cc)
