"""The caldav library against a `make run` gateway (alice@example.test / secret): discover,
make a calendar, a recurring event, a time-range search, a sync-token round, a task.

    .venv/bin/python examples/dav/caldav_library.py
"""

from datetime import UTC, datetime

import caldav

URL = "http://127.0.0.1:8080/.well-known/caldav"


def vcalendar(component: str, uid: str, *lines: str) -> str:
    body = "\r\n".join((f"UID:{uid}", "DTSTAMP:20261129T000000Z", *lines))
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//example//EN\r\n"
            f"BEGIN:{component}\r\n{body}\r\nEND:{component}\r\nEND:VCALENDAR\r\n")


def main() -> None:
    client = caldav.DAVClient(url=URL, username="alice@example.test", password="secret")
    principal = client.principal()
    print("principal:", principal.url)
    print("calendars:", [c.get_display_name() for c in principal.calendars()])
    demo = principal.make_calendar(name="Demo", cal_id="demo")
    demo.save_event(vcalendar("VEVENT", "demo-1@example.test", "DTSTART:20261201T090000Z",
                              "DTEND:20261201T100000Z", "RRULE:FREQ=WEEKLY;COUNT=6",
                              "SUMMARY:Weekly sync"))
    found = demo.search(start=datetime(2026, 12, 14, tzinfo=UTC),
                        end=datetime(2026, 12, 16, tzinfo=UTC), event=True, expand=True)
    print("instances 14-16 Dec:",
          [str(e.icalendar_component.get("RECURRENCE-ID").dt) for e in found])
    token = demo.objects_by_sync_token(load_objects=False).sync_token
    demo.save_event(vcalendar("VEVENT", "demo-2@example.test", "DTSTART:20261202T090000Z",
                              "DTEND:20261202T100000Z", "SUMMARY:One-off"))
    changed = demo.objects_by_sync_token(sync_token=token, load_objects=True)
    print("changed since the token:", [str(o.icalendar_component.get("SUMMARY"))
                                       for o in changed])
    tasks = next(c for c in principal.calendars() if c.url.path.endswith("/tasks/"))
    tasks.save_todo(vcalendar("VTODO", "todo-1@example.test", "SUMMARY:Write the note"))
    for todo in tasks.todos():
        todo.complete()
    print("tasks:", [(str(t.icalendar_component.get("SUMMARY")),
                      str(t.icalendar_component.get("STATUS")))
                     for t in tasks.todos(include_completed=True)])


if __name__ == "__main__":
    main()
