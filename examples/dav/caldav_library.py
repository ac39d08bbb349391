"""The caldav library against a `make run` gateway (alice@example.test / secret): discover,
make a calendar, a recurring event, a time-range search, a sync-token round, a task.

    .venv/bin/python examples/dav/caldav_library.py
"""
from datetime import UTC, datetime

import caldav

client = caldav.DAVClient(url="http://127.0.0.1:8080/.well-known/caldav",
                          username="alice@example.test", password="secret")
principal = client.principal()
print("principal:", principal.url)
print("calendars:", [c.get_display_name() for c in principal.calendars()])
cal = principal.make_calendar(name="Demo", cal_id="demo")
cal.save_event("""BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//demo//EN\r\nBEGIN:VEVENT\r\nUID:demo-1@example.test\r\nDTSTAMP:20261129T000000Z\r\nDTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\nRRULE:FREQ=WEEKLY;COUNT=6\r\nSUMMARY:Weekly sync\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n""")
found = cal.search(start=datetime(2026, 12, 14, tzinfo=UTC), end=datetime(2026, 12, 16, tzinfo=UTC), event=True, expand=True)
print("instances 14-16 Dec:", [str(e.icalendar_component.get("RECURRENCE-ID").dt) for e in found])
objs = cal.objects_by_sync_token(load_objects=False)
token = objs.sync_token
cal.save_event("""BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//demo//EN\r\nBEGIN:VEVENT\r\nUID:demo-2@example.test\r\nDTSTAMP:20261129T000000Z\r\nDTSTART:20261202T090000Z\r\nDTEND:20261202T100000Z\r\nSUMMARY:One-off\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n""")
changed = cal.objects_by_sync_token(sync_token=token, load_objects=True)
print("changed since token:", [o.icalendar_component.get("SUMMARY") for o in changed])
tasks = [c for c in principal.calendars() if c.url.path.endswith("/tasks/")][0]
t = tasks.save_todo("""BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//demo//EN\r\nBEGIN:VTODO\r\nUID:todo-1@example.test\r\nDTSTAMP:20261129T000000Z\r\nSUMMARY:Write the note\r\nEND:VTODO\r\nEND:VCALENDAR\r\n""")
t.complete()
print("tasks:", [(x.icalendar_component.get("SUMMARY"), str(x.icalendar_component.get("STATUS"))) for x in tasks.todos(include_completed=True)])
