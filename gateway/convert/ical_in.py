"""iCalendar → appointments, meeting messages and tasks (MS-OXCICAL import).

:func:`parse_calendar` turns a VCALENDAR into one :class:`NewMessage` per UID:
VEVENTs become ``IPM.Appointment`` (``IPM.Schedule.Meeting.*`` under METHOD
REQUEST, REPLY or CANCEL), VTODOs ``IPM.Task``. Overrides (RECURRENCE-ID) are
folded into the master's recurrence blob and exception attachments as
MS-OXOCAL 2.2.10 describes. Malformed input never raises: what is understood is
returned and the rest is reported (:func:`parse_calendar_report`) or logged.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import islice
from typing import Any

import x_wr_timezone
from icalendar import Calendar, Component
from icalendar.prop import vBroken, vRecur

from gateway.convert import goid
from gateway.convert import recurrence as R
from gateway.convert import timezones as Z
from gateway.store import NewAttachment, NewMessage
from gateway.store import tags as T
from gateway.store.objects import ATTACH_EMBEDDED_MSG

log = logging.getLogger(__name__)

MAX_COMPONENTS = 10_000
MAX_BYTES = 32 * 1024 * 1024
MAX_EXCEPTIONS = 1_000
EXCEPTION_CLASS = "IPM.OLE.CLASS.{00061055-0000-0000-C000-000000000046}"
BUSY = {"FREE": 0, "TENTATIVE": 1, "BUSY": 2, "OOF": 3, "WORKINGELSEWHERE": 4}
SENSITIVITY = {"PUBLIC": 0, "X-PERSONAL": 1, "PRIVATE": 2, "CONFIDENTIAL": 3}
TRACK = {"NEEDS-ACTION": 5, "ACCEPTED": 3, "DECLINED": 4, "TENTATIVE": 2, "DELEGATED": 0}
REPLY_CLASS = {3: "Pos", 4: "Neg", 2: "Tent"}
TASK_STATUS = {"NEEDS-ACTION": 0, "IN-PROCESS": 1, "COMPLETED": 2, "CANCELLED": 4}
RECIP_SENDABLE, RECIP_ORGANIZER = 0x1, 0x2
ASF_MEETING, ASF_RECEIVED, ASF_CANCELED = 0x1, 0x2, 0x4


@dataclass
class ParseResult:
    messages: list[NewMessage] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_calendar(data: bytes | str, *, default_tz: str = "UTC",
                   max_components: int = MAX_COMPONENTS) -> list[NewMessage]:
    """One message per UID; problems are logged (see :func:`parse_calendar_report`)."""
    result = parse_calendar_report(data, default_tz=default_tz, max_components=max_components)
    for error in result.errors:
        log.warning("iCalendar import: %s", error)
    return result.messages


def parse_calendar_report(data: bytes | str, *, default_tz: str = "UTC",
                          max_components: int = MAX_COMPONENTS) -> ParseResult:
    result = ParseResult()
    if len(data) > MAX_BYTES:
        result.errors.append(f"calendar of {len(data)} bytes cut to {MAX_BYTES}")
        data = data[:MAX_BYTES]
    try:
        calendars = Calendar.from_ical(data, multiple=True)
    except Exception as exc:  # icalendar raises many kinds on garbage
        result.errors.append(f"not an iCalendar object as a whole ({exc}): read by component")
        calendars = _salvage(data, result.errors)
    fallback = Z.zone(default_tz) or UTC
    budget = max_components
    for cal in calendars:
        try:
            cal = x_wr_timezone.to_standard(cal)
        except Exception as exc:  # an unknown X-WR-TIMEZONE: times stay as they are
            result.errors.append(f"X-WR-TIMEZONE not applied: {exc}")
        method = str(cal.get("METHOD", "") or "").upper() or None
        groups: dict[str, list[Component]] = {}
        for comp in cal.subcomponents:
            if comp.name not in ("VEVENT", "VTODO"):
                continue
            if budget <= 0:
                result.errors.append(f"more than {max_components} components: rest ignored")
                break
            budget -= 1
            for name, problem in getattr(comp, "errors", []):
                result.errors.append(f"{comp.name} {name or ''}: {problem}")
            uid = _text(comp, "UID") or "gw-" + hashlib.sha1(comp.to_ical()).hexdigest()
            groups.setdefault(uid, []).append(comp)
        for uid, comps in groups.items():
            ctx = _Context(uid, method, fallback, result.errors)
            try:
                result.messages.extend(ctx.convert(comps))
            except Exception as exc:  # a converter bug must not lose the other UIDs
                log.exception("iCalendar import of %s failed", uid)
                result.errors.append(f"{uid}: not converted: {exc!r}")
    return result


_BLOCK = re.compile(r"^BEGIN:(VTIMEZONE|VEVENT|VTODO)\r?$(.*?)^END:\1\r?$", re.M | re.S | re.I)
_ALARM = re.compile(r"^BEGIN:VALARM\r?$.*?^END:VALARM\r?\n?", re.M | re.S | re.I)


def _salvage(data: bytes | str, errors: list[str]) -> list[Calendar]:
    """Read what can be read of a calendar icalendar rejects as a whole: each VEVENT or
    VTODO on its own (without its alarms if need be), with every VTIMEZONE."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = re.sub(r"\r?\n[ \t]", "", text)
    method = re.search(r"^METHOD:(\w+)", text, re.M | re.I)
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + (
        f"METHOD:{method.group(1)}\r\n" if method else "")
    blocks = [m.group(0) for m in _BLOCK.finditer(text)]
    zones = "\r\n".join(b for b in blocks if b[6:15].upper() == "VTIMEZONE")
    found = []
    for block in blocks:
        if block[6:15].upper() == "VTIMEZONE":
            continue
        for attempt in (block, _ALARM.sub("", block)):
            try:
                found.append(Calendar.from_ical(
                    f"{head}{zones}\r\n{attempt}\r\nEND:VCALENDAR\r\n"))
                break
            except Exception as exc:  # this component is beyond repair
                problem = exc
        else:
            errors.append(f"component dropped: {problem}")
    return found


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


class _Context:
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

    # --- the whole UID ---------------------------------------------------------------------

    def convert(self, comps: list[Component]) -> list[NewMessage]:
        masters = [c for c in comps if c.get("RECURRENCE-ID") is None]
        overrides = [c for c in comps if c.get("RECURRENCE-ID") is not None]
        if len(masters) > 1:
            self.warn(f"{len(masters)} components without RECURRENCE-ID: the latest kept")
        if not masters:
            return [m for m in (self.single(c, instance=True) for c in overrides) if m]
        master = max(reversed(masters), key=_sequence)
        if master.name == "VTODO":
            return [self.task(master)]
        message = self.single(master)
        if message is None:
            return []
        if master.get("RRULE") is not None or overrides:
            self.recur(message, master, overrides)
        return [message]

    # --- events ------------------------------------------------------------------------------

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

    # --- recurrence -----------------------------------------------------------------------------

    def instant(self, prop: Any, tz: tzinfo) -> datetime:
        value = prop.dt
        if isinstance(value, datetime) and value.tzinfo is None:
            tzid = prop.params.get("TZID") if hasattr(prop, "params") else None
            tz = (Z.zone(str(tzid)) if tzid else None) or tz
        return self.aware(value, tz)

    def exdates(self, master: Component, tz: tzinfo, all_day: bool) -> set[date]:
        found: set[date] = set()
        lists = master.get("EXDATE")
        for item in lists if isinstance(lists, list) else [lists]:
            if item is None or isinstance(item, vBroken):
                continue
            for value in getattr(item, "dts", []):
                if isinstance(value.dt, datetime) and not all_day:
                    found.add(self.instant(value, tz).astimezone(tz).date())
                elif isinstance(value.dt, datetime):
                    found.add(value.dt.date())
                elif isinstance(value.dt, date):
                    found.add(value.dt)
        return found

    def recur(self, msg: NewMessage, master: Component, overrides: list[Component]) -> None:
        p = msg.props
        rule = _rule_of(master)
        if isinstance(master.get("RRULE"), list):
            self.warn("several RRULEs: the first kept")
        if master.get("RDATE") is not None:
            self.warn("RDATE cannot be kept in a recurrence pattern: ignored")
        if rule is None:
            if master.get("RRULE") is not None:
                self.warn("unreadable RRULE: a single appointment")
            elif overrides:
                self.warn("RECURRENCE-ID without a recurring master: overrides dropped")
            return
        tz = self.zone_of(_value(master, "DTSTART"))[0]
        start, end = p[T.PidLidAppointmentStartWhole], p[T.PidLidAppointmentEndWhole]
        duration = end - start
        local = start.astimezone(tz).replace(tzinfo=None)
        parts = {str(k).upper(): v for k, v in dict(rule).items()}
        try:
            pattern = R.pattern_from_rule(parts, local)
            first = next(R.walk(pattern, local), None)
            if first is None:
                raise R.Unsupported("no occurrence")
            if first != local:
                self.warn("DTSTART is not an occurrence of its RRULE: series moved to the first")
                local, start = first, first.replace(tzinfo=tz).astimezone(UTC)
                end = start + duration
                pattern = R.pattern_from_rule(parts, local)
                for tags, value in (((T.PidLidAppointmentStartWhole, T.PidTagStartDate,
                                      T.PidLidCommonStart), start),
                                    ((T.PidLidAppointmentEndWhole, T.PidTagEndDate,
                                      T.PidLidCommonEnd), end)):
                    for tag in tags:
                        p[tag] = value
            R.set_range(pattern, local, _until_local(parts, tz))
        except (R.Unsupported, ValueError, OverflowError, TypeError) as exc:
            self.warn(f"RRULE not kept ({exc}): a single appointment")
            return
        if pattern.end_type == R.END_DATE and pattern.occurrence_count == 0:
            self.warn("RRULE has no occurrence: a single appointment")
            return
        all_day = bool(p.get(T.PidLidAppointmentSubType))
        deleted = {d for d in self.exdates(master, tz, all_day) if d >= local.date()}
        originals = {}
        for comp in overrides[:MAX_EXCEPTIONS]:
            rid = _value(comp, "RECURRENCE-ID")
            if rid is None:
                continue
            if all_day or not isinstance(rid.dt, datetime):
                day = rid.dt.date() if isinstance(rid.dt, datetime) else rid.dt
                originals[id(comp)] = datetime.combine(day, local.time()).replace(tzinfo=tz)
            else:
                originals[id(comp)] = self.instant(rid, tz)
        known = _occurrence_dates(pattern, local, deleted | {
            o.astimezone(tz).date() for o in originals.values()})
        deleted &= known
        infos: list[tuple[R.ExceptionInfo, NewAttachment]] = []
        for comp in overrides[:MAX_EXCEPTIONS]:
            if id(comp) not in originals:
                continue
            original = originals[id(comp)]
            orig_local = original.astimezone(tz).replace(tzinfo=None)
            if orig_local.date() not in known:
                self.warn(f"RECURRENCE-ID {orig_local} is not an occurrence: dropped")
                continue
            deleted.add(orig_local.date())
            if (_text(comp, "STATUS") or "").upper() == "CANCELLED":
                continue
            sub = self.single(comp, instance=True)
            if sub is None:
                continue
            infos.append(self.exception(p, sub, orig_local, original.astimezone(UTC), tz))
        infos.sort(key=lambda pair: pair[0].start)
        pattern.deleted = sorted(R.to_minutes(d) for d in deleted)
        pattern.modified = [R.to_minutes(R.from_minutes(e.start).date()) for e, _ in infos]
        offset = local.hour * 60 + local.minute
        minutes = int(duration.total_seconds() // 60)
        rec = R.AppointmentRecurrence(pattern, offset, offset + minutes, [e for e, _ in infos])
        msg.attachments.extend(a for _, a in infos)
        p[T.PidLidAppointmentRecur] = R.build_appointment(rec)
        p[T.PidLidRecurring] = True
        p[T.PidLidIsRecurring] = True
        p[T.PidLidRecurrenceType] = R.recurrence_type(pattern)
        p[T.PidLidRecurrencePattern] = R.describe(pattern, offset, offset + minutes)
        p[T.PidLidAppointmentTimeZoneDefinitionRecur] = \
            p[T.PidLidAppointmentTimeZoneDefinitionStartDisplay]
        p[T.PidLidClipStart] = datetime.combine(local.date(), time()).replace(
            tzinfo=tz).astimezone(UTC)
        p[T.PidLidClipEnd] = (datetime(4500, 12, 31, 23, 59, tzinfo=UTC)
                              if pattern.end_date >= R.NO_END_DATE else
                              R.from_minutes(pattern.end_date).replace(tzinfo=tz).astimezone(UTC))

    def exception(self, master: dict[Any, Any], sub: NewMessage, orig_local: datetime,
                  original_utc: datetime, tz: tzinfo) -> tuple[R.ExceptionInfo, NewAttachment]:
        s = sub.props
        new_start = s[T.PidLidAppointmentStartWhole].astimezone(tz).replace(tzinfo=None)
        new_end = s[T.PidLidAppointmentEndWhole].astimezone(tz).replace(tzinfo=None)
        info = R.ExceptionInfo(R.to_minutes(new_start), R.to_minutes(new_end),
                               R.to_minutes(orig_local))

        def changed(tag: Any) -> bool:
            return s.get(tag) != master.get(tag)

        if changed(T.PidTagSubject):
            info.subject = str(s.get(T.PidTagSubject, ""))
        if changed(T.PidLidLocation):
            info.location = str(s.get(T.PidLidLocation, ""))
        if changed(T.PidLidBusyStatus):
            info.busy_status = int(s.get(T.PidLidBusyStatus, 2))
        if changed(T.PidLidReminderSet) or changed(T.PidLidReminderDelta):
            info.reminder_set = int(bool(s.get(T.PidLidReminderSet)))
            info.reminder_delta = int(s.get(T.PidLidReminderDelta, 0))
        if changed(T.PidLidAppointmentSubType):
            info.subtype = int(bool(s.get(T.PidLidAppointmentSubType)))
        info.exceptional_body = changed(T.PidTagBody)
        s[T.PidLidFExceptionalBody] = info.exceptional_body
        s[T.PidLidFExceptionalAttendees] = bool(sub.recipients)
        return info, exception_attachment(s, sub, new_start, new_end, original_utc)

    # --- tasks ---------------------------------------------------------------------------------

    def task(self, comp: Component) -> NewMessage:
        msg = NewMessage()
        p = msg.props
        p[T.PidTagMessageClass] = "IPM.Task"
        self.common(comp, p)
        tz = self.fallback
        start_prop, due_prop = _value(comp, "DTSTART"), _value(comp, "DUE")
        start = due = None
        if start_prop is not None:
            tz = self.zone_of(start_prop)[0]
            start = self.aware(start_prop.dt, tz)
            p[T.PidLidTaskStartDate] = _as_utc_label(start.astimezone(tz).date())
            if isinstance(start_prop.dt, datetime):
                p[T.PidLidCommonStart] = _utc(start)
        if due_prop is not None:
            due = self.aware(due_prop.dt, self.zone_of(due_prop)[0])
            p[T.PidLidTaskDueDate] = _as_utc_label(due.astimezone(tz).date())
            if isinstance(due_prop.dt, datetime):
                p[T.PidLidCommonEnd] = _utc(due)
        status = (_text(comp, "STATUS") or "NEEDS-ACTION").upper()
        completed = _value(comp, "COMPLETED")
        percent = _value(comp, "PERCENT-COMPLETE")
        done = status == "COMPLETED" or completed is not None
        p[T.PidLidTaskStatus] = 2 if done else TASK_STATUS.get(status, 0)
        p[T.PidLidTaskComplete] = done
        if percent is not None and str(percent).isdigit():
            p[T.PidLidPercentComplete] = min(int(str(percent)), 100) / 100
        else:
            p[T.PidLidPercentComplete] = 1.0 if done else 0.0
        if completed is not None and isinstance(completed.dt, date):
            p[T.PidLidTaskDateCompleted] = _as_utc_label(
                self.aware(completed.dt, UTC).astimezone(tz).date())
        anchor = due or start
        if anchor is not None:
            self.reminder(comp, p, _utc(anchor), _utc(anchor))
        rule = _rule_of(comp)
        if rule is not None and start is not None:
            try:
                local = start.astimezone(tz).replace(tzinfo=None)
                pattern = R.pattern_from_rule(dict(rule), local)
                R.set_range(pattern, local, _until_local(rule, tz))
                p[T.PidLidTaskRecurrence] = R.build_pattern(pattern)
                p[T.PidLidTaskFRecurring] = True
            except (R.Unsupported, ValueError, OverflowError) as exc:
                self.warn(f"task recurrence not kept: {exc}")
        p[T.PidLidGlobalObjectId] = goid.uid_to_goid(self.uid)
        return msg


def _sequence(comp: Component) -> int:
    value = _value(comp, "SEQUENCE")
    return int(str(value)) if value is not None and str(value).isdigit() else 0


def _rule_of(comp: Component) -> Any:
    """The RRULE, salvaged when icalendar could not read it (spaces, oversized numbers)."""
    raw = comp.get("RRULE")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if not isinstance(raw, vBroken):
        return raw
    text = re.sub(r"\s+", "", str(raw))
    text = re.sub(r"(COUNT|INTERVAL)=(\d{10,})", r"\1=2147483647", text, flags=re.I)
    try:
        return vRecur.from_ical(text)
    except Exception:  # still not a rule
        return None


def _until_local(rule: Any, tz: tzinfo) -> datetime | None:
    until = (rule.get("UNTIL") or [None])[0]
    if until is None:
        return None
    if isinstance(until, datetime):
        if until.tzinfo is not None:
            return until.astimezone(tz).replace(tzinfo=None)
        return until
    return datetime.combine(until, time(23, 59, 59))


def _occurrence_dates(pattern: R.RecurrencePattern, start: datetime,
                      wanted: set[date]) -> set[date]:
    """Which of ``wanted`` are dates of the pattern's occurrences (walk bounded)."""
    if not wanted:
        return set()
    last, found = max(wanted), set()
    end_date = R.from_minutes(pattern.end_date).date() if pattern.end_date < R.NO_END_DATE \
        else date.max
    for occurrence in islice(R.walk(pattern, start), R.MAX_WALK):
        day = occurrence.date()
        if day > last or day > end_date:
            break
        if day in wanted:
            found.add(day)
    return found


def _email(address: Any) -> str:
    text = str(address)
    return text[7:] if text.lower().startswith("mailto:") else text


def exception_attachment(props: dict[Any, Any], embedded: NewMessage, local_start: datetime,
                         local_end: datetime, original_utc: datetime) -> NewAttachment:
    """The hidden attachment holding one exception's embedded message (MS-OXOCAL 2.2.10)."""
    embedded.props[T.PidTagMessageClass] = EXCEPTION_CLASS
    embedded.props[T.PidLidExceptionReplaceTime] = original_utc
    return NewAttachment(props={
        T.PidTagAttachMethod: ATTACH_EMBEDDED_MSG, T.PidTagAttachmentHidden: True,
        T.PidTagAttachmentFlags: 0x2, T.PidTagAttachFlags: 0,
        T.PidTagRenderingPosition: -1,
        T.PidTagExceptionStartTime: _as_utc_label(local_start),
        T.PidTagExceptionEndTime: _as_utc_label(local_end),
        T.PidTagExceptionReplaceTime: original_utc,
        T.PidTagDisplayName: str(props.get(T.PidTagSubject, "")),
    }, embedded=embedded)
