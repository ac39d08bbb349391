"""iCalendar recurring series → MS-OXOCAL recurrence: folding a master's RRULE and
EXDATEs and its overrides (RECURRENCE-ID) into the recurrence blob and hidden
exception attachments (MS-OXOCAL 2.2.10), for :mod:`~gateway.convert.ical_in`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, tzinfo
from itertools import islice
from typing import Any

from icalendar import Component
from icalendar.prop import vBroken, vRecur

from gateway.convert import recurrence as R
from gateway.convert import timezones as Z
from gateway.convert.ical_event import EventReader, _as_utc_label, _text, _value
from gateway.store import NewAttachment, NewMessage
from gateway.store import tags as T
from gateway.store.objects import ATTACH_EMBEDDED_MSG

MAX_EXCEPTIONS = 1_000
EXCEPTION_CLASS = "IPM.OLE.CLASS.{00061055-0000-0000-C000-000000000046}"


class SeriesReader(EventReader):
    """An :class:`EventReader` that also folds a recurring series into its master."""

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
