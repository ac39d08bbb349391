"""iCalendar conversion figures on one core (``python -m tests.bench.convert_ical``).

- expansion: 1,000 recurring events (daily, weekly, monthly, yearly rules with
  COUNT, UNTIL or no end, in four time zones, a tenth with a moved instance)
  expanded over one year with :func:`gateway.convert.expand.occurrences`:
  instances per second and seconds;
- the same 1,000 events as appointments (MAPI) expanded again;
- iCalendar → MAPI → iCalendar: conversions per second of the corpus files in
  tests/corpus/ical (each file is one conversion) and of one typical Outlook
  invitation.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.convert.expand import occurrences
from gateway.convert.ical_in import parse_calendar
from gateway.convert.ical_out import render_calendar

CORPUS = Path(__file__).parents[1] / "corpus" / "ical"
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"]
RULES = ["FREQ=DAILY", "FREQ=DAILY;INTERVAL=2", "FREQ=WEEKLY;BYDAY=MO,WE,FR",
         "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", "FREQ=MONTHLY;BYMONTHDAY=15",
         "FREQ=MONTHLY;BYDAY=2TH", "FREQ=YEARLY;BYMONTH=6;BYMONTHDAY=1",
         "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"]


def calendar(events: int, seed: int = 5) -> bytes:
    """A calendar of recurring events starting in 2025 (deterministic)."""
    rnd = random.Random(seed)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN"]
    for n in range(events):
        zone = ZONES[n % len(ZONES)]
        start = datetime(2025, 1, 1, 8) + timedelta(days=rnd.randrange(60),
                                                    hours=rnd.randrange(10))
        rule = RULES[n % len(RULES)]
        ending = rnd.choice(["", ";COUNT=200", ";UNTIL=20260601T000000Z"])
        if "BYDAY" in rule and "FREQ=WEEKLY" in rule:
            day = rule.split("BYDAY=")[1].split(",")[0][-2:]
            while start.strftime("%a").upper()[:2] != day:
                start += timedelta(days=1)
        if "BYMONTHDAY=15" in rule:
            start = start.replace(day=15)
        if "FREQ=YEARLY" in rule:
            start = start.replace(month=6, day=1)
        if "2TH" in rule:
            start = start.replace(day=8)
            while start.weekday() != 3:
                start += timedelta(days=1)
        stamp = "DTSTART;TZID={z}:{t:%Y%m%dT%H%M%S}" if zone != "UTC" else \
            "DTSTART:{t:%Y%m%dT%H%M%S}Z"
        lines += ["BEGIN:VEVENT", f"UID:bench-{n}@example.com", "DTSTAMP:20250101T000000Z",
                  stamp.format(z=zone, t=start),
                  stamp.replace("DTSTART", "DTEND").format(z=zone, t=start + timedelta(hours=1)),
                  f"RRULE:{rule}{ending}", f"SUMMARY:Event {n}", "END:VEVENT"]
        if n % 10 == 0:
            moved = start + timedelta(days=7 if "DAILY" in rule or "WEEKLY" in rule else 0)
            if "MONTHLY" in rule or "YEARLY" in rule:
                continue
            lines += ["BEGIN:VEVENT", f"UID:bench-{n}@example.com", "DTSTAMP:20250101T000000Z",
                      stamp.replace("DTSTART", "RECURRENCE-ID").format(z=zone, t=moved),
                      stamp.format(z=zone, t=moved + timedelta(hours=3)),
                      stamp.replace("DTSTART", "DTEND").format(
                          z=zone, t=moved + timedelta(hours=4)),
                      "SUMMARY:Moved", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def _expand(source: object) -> tuple[int, float]:
    began = time.perf_counter()
    found = occurrences(source, datetime(2025, 1, 1, tzinfo=UTC),
                        datetime(2026, 1, 1, tzinfo=UTC), max_instances=10**7)
    return len(found), time.perf_counter() - began


def run(events: int = 1000, rounds: int = 3) -> dict[str, float]:
    logging.getLogger("gateway.convert").setLevel(logging.ERROR)
    data = calendar(events)
    figures: dict[str, float] = {"events": events}
    best = min((_expand(data) for _ in range(rounds)), key=lambda r: r[1])
    figures["instances"], figures["expand_s"] = best
    figures["expand_instances_per_s"] = best[0] / best[1]
    began = time.perf_counter()
    messages = parse_calendar(data)
    figures["import_1000_s"] = time.perf_counter() - began
    figures["messages"] = len(messages)
    count, seconds = _expand(messages)
    figures["mapi_instances"], figures["mapi_expand_s"] = count, seconds
    files = [p.read_bytes() for p in sorted(CORPUS.glob("*.ics"))]
    for label, batch in (("corpus", files),
                         ("outlook", [(CORPUS / "outlook_request_weekly_exception.ics")
                                      .read_bytes()])):
        done, began = 0, time.perf_counter()
        while time.perf_counter() - began < 1.0 or done < 20:
            for item in batch:
                render_calendar(parse_calendar(item))
                done += 1
        figures[f"{label}_roundtrips_per_s"] = done / (time.perf_counter() - began)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures = run(args.events, args.rounds)
    print(f"expansion of {figures['events']:.0f} recurring events over a year: "
          f"{figures['instances']:.0f} instances in {figures['expand_s']:.2f} s "
          f"({figures['expand_instances_per_s']:,.0f} instances/s)")
    print(f"the same as {figures['messages']:.0f} appointments (imported in "
          f"{figures['import_1000_s']:.2f} s): {figures['mapi_instances']:.0f} instances in "
          f"{figures['mapi_expand_s']:.2f} s")
    print(f"iCalendar → MAPI → iCalendar: {figures['corpus_roundtrips_per_s']:,.0f} corpus "
          f"files/s, {figures['outlook_roundtrips_per_s']:,.0f} Outlook invitations/s")


if __name__ == "__main__":
    main()
