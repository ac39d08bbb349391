"""Deterministic calendar and address book data for the DAV benchmark, with expected answers.

``make_events(n, seed)`` gives ``n`` calendar object resources spread over
2026: about 1 in 5 recurring (RRULE daily/weekly/monthly/yearly, with COUNT,
UNTIL or unbounded, some with EXDATE), a third of those with an overridden
instance (a second VEVENT with RECURRENCE-ID), 1 in 10 all-day, times in UTC
or in Europe/Berlin, America/New_York or Asia/Tokyo (each with its
VTIMEZONE), 1 in 4 with an external ORGANIZER and ATTENDEEs (the user among
them, so a server doing implicit scheduling has nothing to send on PUT).
Every event knows which time ranges it overlaps (``Event.overlaps``), so a
calendar-query's right number of matches is known without asking a server.

``make_contacts(m, seed)`` gives ``m`` vCard 3.0 contacts with several EMAIL,
TEL and ADR lines. The same seed gives byte-identical data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
PRODID = "-//groupware-gateway//dav bench//EN"

VTIMEZONES = {
    "Europe/Berlin": """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE""",
    "America/New_York": """BEGIN:VTIMEZONE
TZID:America/New_York
BEGIN:DAYLIGHT
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
TZNAME:EDT
DTSTART:19700308T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
TZNAME:EST
DTSTART:19701101T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
END:STANDARD
END:VTIMEZONE""",
    "Asia/Tokyo": """BEGIN:VTIMEZONE
TZID:Asia/Tokyo
BEGIN:STANDARD
TZOFFSETFROM:+0900
TZOFFSETTO:+0900
TZNAME:JST
DTSTART:19700101T000000
END:STANDARD
END:VTIMEZONE""",
}
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
HORIZON = datetime(2028, 1, 1, tzinfo=UTC)   # endless rules are expanded up to here
MAX_INSTANCES = 200
ZONES = (None, None, "Europe/Berlin", "America/New_York", "Asia/Tokyo")   # None: UTC
FIRST = ("Anna", "Ben", "Chloé", "David", "Eva", "Farid", "Grace", "Hugo", "Ines", "Jonas",
         "Kenji", "Lena", "Mateo", "Nora", "Omar", "Paula", "Quentin", "Rosa", "Sven", "Tara")
LAST = ("Adler", "Berger", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Hansen",
        "Ito", "Jansen", "Kowalski", "Lambert", "Müller", "Novak", "Olsen", "Petrov")
TOPICS = ("Planning", "Review", "1:1", "Standup", "Budget", "Offsite", "Workshop", "Lunch",
          "Interview", "Retro", "Demo", "Training", "Dentist", "Call with supplier")


@dataclass
class Event:
    """One calendar object resource: its file name, its iCalendar text, its instances."""

    name: str
    uid: str
    text: str
    # (start, end) in UTC of every instance (an endless rule's up to HORIZON)
    instances: list[tuple[datetime, datetime]] = field(default_factory=list)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """RFC 4791 9.9: some instance starts before ``end`` and ends after ``start``."""
        return any(s < end and e > start for s, e in self.instances)


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _stamp(value: datetime, zone: str | None, all_day: bool, prop: str) -> str:
    if all_day:
        return f"{prop};VALUE=DATE:{value.strftime('%Y%m%d')}"
    if zone is None:
        return f"{prop}:{_utc(value)}"
    return f"{prop};TZID={zone}:{value.strftime('%Y%m%dT%H%M%S')}"


def _rule(rng: random.Random, all_day: bool, start: datetime) -> str:
    if all_day:
        return rng.choice(("FREQ=YEARLY", "FREQ=WEEKLY;COUNT=4", "FREQ=DAILY;COUNT=3"))
    return rng.choice((
        f"FREQ=DAILY;COUNT={rng.randint(3, 15)}",
        f"FREQ=WEEKLY;COUNT={rng.randint(4, 20)}",
        f"FREQ=WEEKLY;INTERVAL=2;COUNT={rng.randint(3, 10)}",
        # DTSTART's own weekday among BYDAY: RFC 5545 counts DTSTART as the first instance
        # even when BYDAY misses it, dateutil does not; servers differ there.
        f"FREQ=WEEKLY;BYDAY={WEEKDAYS[start.weekday()]},{WEEKDAYS[(start.weekday() + 2) % 7]};"
        "COUNT=12",
        f"FREQ=MONTHLY;COUNT={rng.randint(2, 8)}",
        "UNTIL",                   # weekly until a fixed UTC time, filled in below
        "FREQ=WEEKLY",             # never ends
    ))


def make_event(index: int, rng: random.Random) -> Event:
    uid = f"bench-event-{index:06d}@example.org"
    all_day = rng.random() < 0.1
    recurring = rng.random() < 0.2
    zone = None if all_day else rng.choice(ZONES)
    tz = ZoneInfo(zone) if zone else UTC
    day = YEAR_START + timedelta(days=rng.randrange(365))
    if all_day:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)   # floating: read as UTC
        length = timedelta(days=1)
    else:
        start = datetime(day.year, day.month, day.day, rng.randint(7, 19),
                         rng.choice((0, 15, 30, 45)), tzinfo=tz)
        length = timedelta(minutes=rng.choice((30, 45, 60, 90, 120, 180)))
    stamp = YEAR_START - timedelta(days=30)
    lines = [f"UID:{uid}", f"DTSTAMP:{_utc(stamp)}", _stamp(start, zone, all_day, "DTSTART"),
             _stamp(start + length, zone, all_day, "DTEND"),
             f"SUMMARY:{rng.choice(TOPICS)} #{index}",
             f"DESCRIPTION:Benchmark event {index}\\, generated with a fixed seed.",
             f"LOCATION:Room {rng.randint(1, 40)}", "SEQUENCE:0",
             "TRANSP:TRANSPARENT" if all_day else "TRANSP:OPAQUE"]
    if not all_day and rng.random() < 0.25:
        lines.append("ORGANIZER;CN=Project Lead:mailto:lead@example.net")
        lines.append("ATTENDEE;CN=Alice;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:"
                     "mailto:alice@example.org")
        for other in rng.sample(range(50), rng.randint(1, 4)):
            lines.append(f"ATTENDEE;CN=Guest {other};PARTSTAT=NEEDS-ACTION;RSVP=TRUE;"
                         f"ROLE=REQ-PARTICIPANT:mailto:guest{other}@example.net")
    event = Event(f"event-{index:06d}.ics", uid, "")
    components = []
    if recurring:
        rule = _rule(rng, all_day, start)
        if rule == "UNTIL":
            rule = f"FREQ=WEEKLY;UNTIL={_utc(start + timedelta(days=7 * rng.randint(2, 12)))}"
        lines.append(f"RRULE:{rule}")
        expanded = rrulestr(rule, dtstart=start.replace(tzinfo=None) if all_day else start)
        occurrences: list[datetime] = []
        for occurrence in expanded:
            occurrence = occurrence.replace(tzinfo=UTC) if all_day else occurrence
            if occurrence >= HORIZON or len(occurrences) >= MAX_INSTANCES:
                break
            occurrences.append(occurrence)
        if len(occurrences) > 3 and rng.random() < 0.3:
            skipped = occurrences.pop(2)
            lines.append(_stamp(skipped, zone, all_day, "EXDATE"))
        event.instances = [(o.astimezone(UTC), (o + length).astimezone(UTC))
                           for o in occurrences]
        if len(occurrences) > 2 and rng.random() < 0.33:
            original = occurrences[1]
            moved = original + timedelta(days=1, hours=0 if all_day else 2)
            event.instances[1] = (moved.astimezone(UTC), (moved + length).astimezone(UTC))
            components.append([f"UID:{uid}", f"DTSTAMP:{_utc(stamp)}",
                               _stamp(original, zone, all_day, "RECURRENCE-ID"),
                               _stamp(moved, zone, all_day, "DTSTART"),
                               _stamp(moved + length, zone, all_day, "DTEND"),
                               f"SUMMARY:{rng.choice(TOPICS)} #{index} (moved)", "SEQUENCE:1"])
    else:
        event.instances = [(start.astimezone(UTC), (start + length).astimezone(UTC))]
    body = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN"]
    if zone:
        body.append(VTIMEZONES[zone])
    for component in [lines, *components]:
        body += ["BEGIN:VEVENT", *component, "END:VEVENT"]
    body.append("END:VCALENDAR")
    event.text = "\n".join(body).replace("\n", "\r\n") + "\r\n"
    return event


def make_events(count: int, seed: int = 2026) -> list[Event]:
    rng = random.Random(seed)
    return [make_event(index, rng) for index in range(count)]


def changed(event: Event, round_: int) -> str:
    """The event's text with a new SUMMARY and SEQUENCE (same times, same matches)."""
    text = event.text.replace("SEQUENCE:0", f"SEQUENCE:{round_ + 2}", 1)
    return text.replace("SUMMARY:", f"SUMMARY:(changed {round_}) ", 1)


def make_contact(index: int, rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    uid = f"bench-contact-{index:06d}@example.org"
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"PRODID:{PRODID}", f"UID:{uid}",
             f"N:{last};{first};;;", f"FN:{first} {last}",
             f"ORG:{rng.choice(LAST)} GmbH;Sales", f"TITLE:{rng.choice(TOPICS)} lead"]
    for kind in rng.sample(("WORK", "HOME", "OTHER"), rng.randint(1, 3)):
        lines.append(f"EMAIL;TYPE=INTERNET,{kind}:{first.lower()}.{last.lower()}.{index}"
                     f"@{kind.lower()}.example.com")
    for kind in rng.sample(("CELL", "WORK", "HOME", "FAX"), rng.randint(1, 3)):
        lines.append(f"TEL;TYPE={kind},VOICE:+49 30 {rng.randint(1000000, 9999999)}")
    for kind in rng.sample(("WORK", "HOME"), rng.randint(1, 2)):
        lines.append(f"ADR;TYPE={kind}:;;{rng.randint(1, 200)} Example Street;Berlin;;"
                     f"{rng.randint(10000, 14999)};Germany")
    if rng.random() < 0.3:
        born = date(1960 + rng.randrange(45), rng.randint(1, 12), rng.randint(1, 28))
        lines.append(f"BDAY:{born.isoformat()}")
    if rng.random() < 0.2:
        lines.append(f"NOTE:Met at the {rng.choice(TOPICS).lower()} in {2000 + index % 25}.")
    lines += ["REV:20260101T000000Z", "END:VCARD"]
    return f"contact-{index:06d}.vcf", "\r\n".join(lines) + "\r\n"


def make_contacts(count: int, seed: int = 2026) -> list[tuple[str, str]]:
    """``count`` (file name, vCard 3.0 text) pairs."""
    rng = random.Random(seed + 1)
    return [make_contact(index, rng) for index in range(count)]


def month_range(year: int = 2026, month: int = 6) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end
