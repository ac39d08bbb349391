"""Implicit scheduling (RFC 6638) in process: a real host (directory, stores, mail service
with a real SMTP sink on 127.0.0.1 as its relayhost), DAV requests through the ASGI app.

alice invites bob, an external address, a non-existent user of our domain and carol
(SCHEDULE-AGENT=CLIENT); bob's copy and Inbox, the iMIP mail, the SCHEDULE-STATUS of
each; bob accepts; Schedule-Reply: F; alice deletes; no mail service; bad input.

Tests named ``test_wired_*`` need the lead's wiring of ``scheduling.before_put`` /
``before_delete(headers)`` in m_put.py / m_delete.py and of the schedule boxes in
resources.resolve()/props.py (see the report); the others run on the current wiring.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from icalendar import Calendar

from gateway.store import Private, permissions
from gateway.store import tags as T
from plugins.dav import resources, schedule_boxes, scheduling
from plugins.dav.errors import DavError
from plugins.dav.resources import Context
from tests.unit.dav_setup import (  # noqa: F401 (dav: the fixture)
    ALICE,
    BOB,
    CAROL,
    NS,
    Dav,
    dav,
    running,
)
from tests.unit.test_mail_sink import SmtpSink

EXTERNAL = "friend@remote.test"
NOBODY = "nobody@example.org"
CAL = "/dav/calendars/{}/calendar/"


def event(uid: str, attendees: list[str], *, organizer: str = ALICE, summary: str = "Planning",
          start: str = "20261201T100000Z", end: str = "20261201T110000Z",
          extra: str = "") -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "BEGIN:VEVENT",
             f"UID:{uid}", "DTSTAMP:20261129T080000Z", f"DTSTART:{start}", f"DTEND:{end}",
             f"SUMMARY:{summary}", f"ORGANIZER;CN=Organizer:mailto:{organizer}"]
    lines += [a if a.startswith("ATTENDEE") else f"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:"
              f"mailto:{a}" for a in attendees]
    if extra:
        lines.append(extra)
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def attendee_params(data: bytes, address: str) -> dict[str, str]:
    cal = Calendar.from_ical(data)
    for comp in cal.walk("VEVENT"):
        found = comp.get("ATTENDEE")
        for prop in found if isinstance(found, list) else [found]:
            if str(prop).lower() == f"mailto:{address}":
                return {k.upper(): str(v) for k, v in prop.params.items()}
    raise AssertionError(f"{address} is no attendee")


async def put(client: Dav, user: str, name: str, body: str, status: int = 201,
              **headers: str) -> httpx.Response:
    answer = await client.request("PUT", CAL.format(user) + name, body, user=user,
                               content_type="text/calendar; charset=utf-8", **headers)
    assert answer.status_code == status, answer.text
    return answer


async def get(client: Dav, user: str, name: str, status: int = 200) -> bytes:
    answer = await client.request("GET", CAL.format(user) + name, user=user)
    assert answer.status_code == status, answer.text
    return answer.content


async def inbox(client: Dav, user: str) -> list[dict[Any, Any]]:
    """The messages of the user's Inbox folder (class, subject, sender)."""
    mbox = await client.host.store.open(user)
    ids = await mbox.read(lambda txn: [row[0] for row in txn.conn.execute(
        "SELECT message_id FROM messages WHERE folder_id = ? ORDER BY message_id",
        (int(Private.INBOX),))])
    return [await mbox.message(i, [T.PidTagMessageClass, T.PidTagSubject,
                                   T.PidTagSenderEmailAddress]) for i in ids]


async def eventually(check: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the time")


@dataclass
class Env:
    dav: Dav
    sink: SmtpSink


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    sink = await SmtpSink().start()
    extra = (f'[mail]\nrelayhost = "[127.0.0.1]:{sink.port}"\nrelay_tls = "none"\n'
             'hostname = "gw.example.org"\nscan_interval = 0.2\nretry_schedule = [1]\n')
    try:
        async with running(tmp_path, extra) as client:
            yield Env(client, sink)
    finally:
        await sink.stop()


INVITED = [BOB, EXTERNAL, NOBODY, f"ATTENDEE;SCHEDULE-AGENT=CLIENT:mailto:{CAROL}",
           f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{ALICE}"]


async def test_invitation_reaches_internal_and_external_attendees(env: Env) -> None:
    client = env.dav
    await put(client, ALICE, "m1.ics", event("m1", INVITED))
    copy = await get(client, BOB, "m1.ics", 200)
    assert attendee_params(copy, BOB)["PARTSTAT"] == "NEEDS-ACTION"
    assert b"SCHEDULE-STATUS" not in copy
    assert Calendar.from_ical(copy).walk("VEVENT")[0]["SUMMARY"] == "Planning"
    requests = [m for m in await inbox(client, BOB)
                if m[T.PidTagMessageClass] == "IPM.Schedule.Meeting.Request"]
    assert len(requests) == 1 and "Planning" in requests[0][T.PidTagSubject]
    assert requests[0][T.PidTagSenderEmailAddress] == ALICE

    stored = await get(client, ALICE, "m1.ics")
    assert attendee_params(stored, BOB)["SCHEDULE-STATUS"] == "1.2"
    assert attendee_params(stored, EXTERNAL)["SCHEDULE-STATUS"] == "1.1"
    assert attendee_params(stored, NOBODY)["SCHEDULE-STATUS"] == "3.7"
    assert "SCHEDULE-STATUS" not in attendee_params(stored, CAROL)
    assert "SCHEDULE-STATUS" not in attendee_params(stored, ALICE)
    assert attendee_params(stored, ALICE)["PARTSTAT"] == "ACCEPTED"  # the organizer's own
    await get(client, CAROL, "m1.ics", 404)  # SCHEDULE-AGENT=CLIENT: the client's business
    assert await inbox(client, CAROL) == []

    await eventually(lambda: env.sink.messages)
    mail = email.message_from_bytes(env.sink.messages[0].data, policy=email.policy.default)
    assert env.sink.messages[0].recipients == [EXTERNAL]
    assert mail.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p for p in mail.iter_parts()}
    assert set(parts) == {"text/plain", "text/calendar"}
    assert parts["text/calendar"].get_param("method") == "REQUEST"
    itip = Calendar.from_ical(parts["text/calendar"].get_content())
    assert str(itip["METHOD"]) == "REQUEST"
    assert b"SCHEDULE-STATUS" not in parts["text/calendar"].get_content().encode()


async def test_hostile_summary_and_uid(env: Env) -> None:
    client = env.dav
    body = event("we/ird uid", [BOB, EXTERNAL], summary="Caf\u00e9\\nBcc: x@evil.test")
    await put(client, ALICE, "w.ics", body)
    stored = await get(client, ALICE, "w.ics")
    assert attendee_params(stored, EXTERNAL)["SCHEDULE-STATUS"] == "1.1"
    name = schedule_boxes.item_name("we/ird uid")
    assert name.endswith(".ics") and "/" not in name
    assert attendee_params(await get(client, BOB, name), BOB)["PARTSTAT"] == "NEEDS-ACTION"
    await eventually(lambda: env.sink.messages)
    mail = email.message_from_bytes(env.sink.messages[0].data, policy=email.policy.default)
    assert mail["Subject"] == "Invitation: Caf\u00e9 Bcc: x@evil.test"
    assert mail["Bcc"] is None and env.sink.messages[0].recipients == [EXTERNAL]


async def test_accepting_updates_the_organizer(env: Env) -> None:
    client = env.dav
    await put(client, ALICE, "m2.ics", event("m2", [f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{BOB}"]))
    # a new attendee has not answered, whatever the organizer's client claims
    assert attendee_params(await get(client, ALICE, "m2.ics"), BOB)["PARTSTAT"] == \
        "NEEDS-ACTION"
    copy = (await get(client, BOB, "m2.ics")).decode()
    accepted = copy.replace("PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED")
    assert accepted != copy
    await put(client, BOB, "m2.ics", accepted, 204)
    stored = await get(client, ALICE, "m2.ics")
    assert attendee_params(stored, BOB)["PARTSTAT"] == "ACCEPTED"
    replies = [m for m in await inbox(client, ALICE)
               if m[T.PidTagMessageClass] == "IPM.Schedule.Meeting.Resp.Pos"]
    assert len(replies) == 1 and replies[0][T.PidTagSubject].startswith("Accepted")
    assert replies[0][T.PidTagSenderEmailAddress] == BOB

    # the organizer changes the time: bob is asked again, his answer kept for him
    moved = event("m2", [f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{BOB}"],
                  start="20261202T100000Z", end="20261202T110000Z")
    await put(client, ALICE, "m2.ics", moved, 204)
    copy2 = await get(client, BOB, "m2.ics")
    assert b"20261202T100000Z" in copy2
    assert attendee_params(copy2, BOB)["PARTSTAT"] == "ACCEPTED"
    assert len([m for m in await inbox(client, BOB)
                if m[T.PidTagMessageClass] == "IPM.Schedule.Meeting.Request"]) == 2


async def test_wired_schedule_reply_f_sends_no_reply(env: Env) -> None:
    client = env.dav
    await put(client, ALICE, "m3.ics", event("m3", [BOB]))
    copy = (await get(client, BOB, "m3.ics")).decode()
    await put(client, BOB, "m3.ics", copy.replace("PARTSTAT=NEEDS-ACTION", "PARTSTAT=DECLINED"),
              204, schedule_reply="F")
    assert attendee_params(await get(client, ALICE, "m3.ics"), BOB)["PARTSTAT"] == "NEEDS-ACTION"
    assert await inbox(client, ALICE) == []


async def test_organizer_deleting_cancels(env: Env) -> None:
    client = env.dav
    await put(client, ALICE, "m4.ics", event("m4", [BOB, EXTERNAL]))
    answer = await client.request("DELETE", CAL.format(ALICE) + "m4.ics", user=ALICE)
    assert answer.status_code == 204
    copy = Calendar.from_ical(await get(client, BOB, "m4.ics")).walk("VEVENT")[0]
    assert str(copy["STATUS"]) == "CANCELLED"
    assert str(copy["TRANSP"]) == "TRANSPARENT"
    classes = [m[T.PidTagMessageClass] for m in await inbox(client, BOB)]
    assert classes == ["IPM.Schedule.Meeting.Request", "IPM.Schedule.Meeting.Canceled"]
    await eventually(lambda: len(env.sink.messages) == 2)
    methods: list[str] = []
    for accepted in env.sink.messages:
        mail = email.message_from_bytes(accepted.data, policy=email.policy.default)
        methods += [str(p.get_param("method")) for p in mail.iter_parts()
                    if p.get_content_type() == "text/calendar"]
    assert sorted(methods) == ["CANCEL", "REQUEST"]


async def test_attendee_deleting_declines(env: Env) -> None:
    client = env.dav
    await put(client, ALICE, "m5.ics", event("m5", [BOB]))
    answer = await client.request("DELETE", CAL.format(BOB) + "m5.ics", user=BOB)
    assert answer.status_code == 204
    assert attendee_params(await get(client, ALICE, "m5.ics"), BOB)["PARTSTAT"] == "DECLINED"
    assert [m[T.PidTagMessageClass] for m in await inbox(client, ALICE)] == [
        "IPM.Schedule.Meeting.Resp.Neg"]


async def test_no_mail_service_keeps_the_put(dav: Dav) -> None:  # noqa: F811
    dav.host.mail = None
    await put(dav, ALICE, "m6.ics", event("m6", [BOB, EXTERNAL]))
    stored = await get(dav, ALICE, "m6.ics")
    assert attendee_params(stored, EXTERNAL)["SCHEDULE-STATUS"] == "5.1"
    assert attendee_params(stored, BOB)["SCHEDULE-STATUS"] == "1.2"


async def test_no_route_out_is_5_1(dav: Dav) -> None:  # noqa: F811
    # the default [mail] has no relayhost and no MX lookup: submission refuses remote mail
    await put(dav, ALICE, "m7.ics", event("m7", [EXTERNAL]))
    assert attendee_params(await get(dav, ALICE, "m7.ics"), EXTERNAL)["SCHEDULE-STATUS"] \
        == "5.1"


async def test_agent_none_on_organizer_schedules_nothing(dav: Dav) -> None:  # noqa: F811
    body = event("m8", [BOB]).replace("ORGANIZER;CN=Organizer:",
                                      "ORGANIZER;SCHEDULE-AGENT=NONE:")
    await put(dav, ALICE, "m8.ics", body)
    await get(dav, BOB, "m8.ics", 404)
    assert await inbox(dav, BOB) == []


async def test_plain_events_and_address_books_are_not_scheduled(dav: Dav) -> None:  # noqa: F811
    plain = event("p1", []).replace("ORGANIZER;CN=Organizer:mailto:alice@example.org\r\n", "")
    await put(dav, ALICE, "p1.ics", plain)
    assert await get(dav, ALICE, "p1.ics") == plain.encode()
    card = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c1\r\nFN:Bob\r\nEND:VCARD\r\n"
    answer = await dav.request("PUT", f"/dav/addressbooks/{ALICE}/contacts/c1.vcf", card,
                               content_type="text/vcard")
    assert answer.status_code == 201


async def test_malformed_calendar_writes_nothing(dav: Dav) -> None:  # noqa: F811
    broken = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nORGANIZER:mailto:alice@exa"
    answer = await dav.request("PUT", CAL.format(ALICE) + "x.ics", broken,
                               content_type="text/calendar")
    assert answer.status_code == 403
    itip = event("x", [BOB]).replace("VERSION:2.0", "VERSION:2.0\r\nMETHOD:REQUEST")
    answer = await dav.request("PUT", CAL.format(ALICE) + "x.ics", itip,
                               content_type="text/calendar")
    assert answer.status_code == 403
    await get(dav, BOB, "x.ics", 404)
    assert await inbox(dav, BOB) == []


# -- the checks before the write, called directly (they run in PUT once wired) ----------------
async def collection_of(client: Dav, user: str) -> tuple[Context, resources.Collection]:
    ctx = Context(client.host, client.host.config.dav, user, "/dav")
    return ctx, await resources.collection(ctx, user, "calendars", "calendar")


async def test_before_put_refuses_a_foreign_organizer(dav: Dav) -> None:  # noqa: F811
    ctx, coll = await collection_of(dav, ALICE)
    with pytest.raises(DavError) as caught:
        await scheduling.before_put(ctx, coll, None, event("f1", [CAROL], organizer=BOB)
                                    .encode())
    assert caught.value.status == 403
    assert caught.value.condition == "{urn:ietf:params:xml:ns:caldav}valid-organizer"
    plan = await scheduling.before_put(ctx, coll, None,
                                       event("f2", [ALICE], organizer=BOB).encode())
    assert plan.role == "attendee"
    client = event("f3", [CAROL], organizer=BOB).replace("ORGANIZER;", "ORGANIZER;"
                                                         "SCHEDULE-AGENT=CLIENT;")
    assert (await scheduling.before_put(ctx, coll, None, client.encode())).role == "none"


async def test_before_put_bounds_attendees(dav: Dav) -> None:  # noqa: F811
    ctx, coll = await collection_of(dav, ALICE)
    crowd = [f"user{i}@remote.test" for i in range(scheduling.MAX_ATTENDEES + 1)]
    with pytest.raises(DavError) as caught:
        await scheduling.before_put(ctx, coll, None, event("big", crowd).encode())
    assert caught.value.condition == \
        "{urn:ietf:params:xml:ns:caldav}max-attendees-per-instance"
    plan = await scheduling.before_put(ctx, coll, None, event("ok", crowd[:10]).encode())
    assert plan.role == "organizer"


async def test_before_put_refuses_mixed_organizers(dav: Dav) -> None:  # noqa: F811
    ctx, coll = await collection_of(dav, ALICE)
    two = event("mix", [BOB]).replace(
        "END:VEVENT\r\nEND:VCALENDAR",
        "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:mix\r\nRECURRENCE-ID:20261208T100000Z\r\n"
        "DTSTAMP:20261129T080000Z\r\nDTSTART:20261208T120000Z\r\nDTEND:20261208T130000Z\r\n"
        "ORGANIZER:mailto:carol@example.org\r\nATTENDEE:mailto:bob@example.org\r\n"
        "END:VEVENT\r\nEND:VCALENDAR")
    with pytest.raises(DavError) as caught:
        await scheduling.before_put(ctx, coll, None, two.encode())
    assert caught.value.condition == \
        "{urn:ietf:params:xml:ns:caldav}same-organizer-in-all-components"


async def test_schedule_boxes_and_their_properties(dav: Dav) -> None:  # noqa: F811
    ctx = Context(dav.host, dav.host.config.dav, ALICE, "/dav")
    box = await schedule_boxes.resolve_box(ctx, ALICE, "Inbox")
    assert box is not None and box.box == "inbox" and box.href == f"/dav/calendars/{ALICE}/inbox/"
    assert await schedule_boxes.resolve_box(ctx, ALICE, "calendar") is None
    assert await schedule_boxes.resolve_box(ctx, BOB, "outbox") is None
    bob = await dav.host.store.open(BOB)
    await permissions.Permissions(bob).set_grant(ALICE, permissions.Grant(full_access=True))
    assert await schedule_boxes.resolve_box(ctx, BOB, "outbox") is not None
    assert await schedule_boxes.members(ctx, box) == []
    kind = schedule_boxes.prop(ctx, box, "{DAV:}resourcetype")
    assert kind is not None
    assert [c.tag for c in kind] == ["{DAV:}collection",
                                     "{urn:ietf:params:xml:ns:caldav}schedule-inbox"]
    default = schedule_boxes.prop(ctx, box, "{urn:ietf:params:xml:ns:caldav}"
                                            "schedule-default-calendar-URL")
    assert default is not None and default[0].text == CAL.format(ALICE)
    assert schedule_boxes.prop(ctx, box, "{DAV:}no-such-thing") is None


# -- through PUT and DELETE once before_put/before_delete are wired ---------------------------
async def test_wired_put_with_foreign_organizer_is_403_and_writes_nothing(dav: Dav) -> None:  # noqa: F811
    answer = await dav.request("PUT", CAL.format(ALICE) + "f.ics",
                               event("f", [CAROL], organizer=BOB),
                               content_type="text/calendar")
    assert answer.status_code == 403
    assert b"valid-organizer" in answer.content
    await get(dav, ALICE, "f.ics", 404)
    assert await inbox(dav, CAROL) == []


async def test_wired_put_with_too_many_attendees_is_403(dav: Dav) -> None:  # noqa: F811
    crowd = [f"user{i}@remote.test" for i in range(scheduling.MAX_ATTENDEES + 1)]
    answer = await dav.request("PUT", CAL.format(ALICE) + "big.ics", event("big", crowd),
                               content_type="text/calendar")
    assert answer.status_code == 403
    assert b"max-attendees-per-instance" in answer.content
    await get(dav, ALICE, "big.ics", 404)


async def test_wired_removed_attendee_is_cancelled_and_unchanged_not_reinvited(dav: Dav) -> None:  # noqa: F811
    await put(dav, ALICE, "r.ics", event("r", [BOB, CAROL]))
    answer = await put(dav, ALICE, "r.ics", event("r", [BOB]), 204)
    assert "etag" not in answer.headers  # the stored copy got SCHEDULE-STATUS: not the PUT's
    copy = Calendar.from_ical(await get(dav, CAROL, "r.ics")).walk("VEVENT")[0]
    assert str(copy["STATUS"]) == "CANCELLED"
    assert [m[T.PidTagMessageClass] for m in await inbox(dav, CAROL)] == [
        "IPM.Schedule.Meeting.Request", "IPM.Schedule.Meeting.Canceled"]
    bob_before = len(await inbox(dav, BOB))
    stored = (await get(dav, ALICE, "r.ics")).decode()
    assert "DTSTAMP:20261129T080000Z" in stored
    restamped = stored.replace("DTSTAMP:20261129T080000Z", "DTSTAMP:20261129T090000Z")
    await put(dav, ALICE, "r.ics", restamped, 204)
    assert len(await inbox(dav, BOB)) == bob_before


async def test_wired_changing_the_organizer_is_403(dav: Dav) -> None:  # noqa: F811
    await put(dav, ALICE, "o.ics", event("o", [BOB]))
    answer = await dav.request("PUT", CAL.format(ALICE) + "o.ics",
                               event("o", [BOB, ALICE], organizer=CAROL),
                               content_type="text/calendar")
    assert answer.status_code == 403
    assert b"allowed-organizer-scheduling-object-change" in answer.content


async def test_wired_schedule_boxes_answer_propfind(dav: Dav) -> None:  # noqa: F811
    body = ('<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>'
            "<D:resourcetype/><C:schedule-default-calendar-URL/><D:owner/>"
            "<D:current-user-privilege-set/></D:prop></D:propfind>")
    root = await dav.xml("PROPFIND", f"/dav/calendars/{ALICE}/inbox/", body, depth="1")
    responses = root.findall("D:response", NS)
    assert len(responses) == 1  # the inbox is always empty over DAV
    assert root.find(".//D:resourcetype/C:schedule-inbox", NS) is not None
    assert root.find(".//C:schedule-default-calendar-URL/D:href", NS).text == CAL.format(ALICE)
    assert root.find(".//D:privilege/C:schedule-deliver", NS) is not None
    root = await dav.xml("PROPFIND", f"/dav/calendars/{ALICE}/outbox/", body, depth="0")
    assert root.find(".//D:resourcetype/C:schedule-outbox", NS) is not None
    assert root.find(".//D:privilege/C:schedule-send", NS) is not None
    answer = await dav.request("PROPFIND", f"/dav/calendars/{BOB}/inbox/", body, depth="0")
    assert answer.status_code == 404  # another user's box
