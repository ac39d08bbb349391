"""Free/busy over CalDAV in process: the CALDAV:free-busy-query REPORT (RFC 4791 7.10) and
the schedule outbox POST of a VFREEBUSY request (RFC 6638 5), on a real host with stores.

Alice's calendar holds a daily meeting (five days, one day excluded), a tentative
one, a transparent one and one out of office. Tests named ``test_wired_*`` go
through HTTP and need the lead's wiring (REPORTS entry for free-busy-query, POST in
app.METHODS); the others call the modules directly.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from icalendar import Calendar
from lxml import etree

from gateway.store import Private, permissions
from gateway.store.rights import Rights
from plugins.dav import m_post, r_freebusy
from plugins.dav.errors import DavError
from plugins.dav.resources import Context
from tests.unit.dav_setup import ALICE, BOB, CAROL, NS, Dav, dav  # noqa: F401 (dav: the fixture)

CAL = "/dav/calendars/{}/calendar/"
OUTBOX = "/dav/calendars/{}/outbox/"
CALENDAR = int(Private.CALENDAR)


def vevent(uid: str, start: str, end: str, extra: str = "") -> str:
    body = [f"UID:{uid}", "DTSTAMP:20261129T080000Z", f"DTSTART:{start}", f"DTEND:{end}",
            f"SUMMARY:{uid}"] + ([extra] if extra else [])
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN",
                        "BEGIN:VEVENT", *body, "END:VEVENT", "END:VCALENDAR", ""])


EVENTS = {
    "daily": vevent("daily", "20261201T100000Z", "20261201T110000Z",
                    "RRULE:FREQ=DAILY;COUNT=5\r\nEXDATE:20261203T100000Z"),
    "tentative": vevent("tentative", "20261202T140000Z", "20261202T150000Z",
                        "STATUS:TENTATIVE"),
    "free": vevent("free", "20261202T160000Z", "20261202T170000Z", "TRANSP:TRANSPARENT"),
    "away": vevent("away", "20261204T080000Z", "20261204T090000Z",
                   "X-MICROSOFT-CDO-BUSYSTATUS:OOF"),
}
BUSY = {("BUSY", "20261201T100000Z/20261201T110000Z"),
        ("BUSY", "20261202T100000Z/20261202T110000Z"),
        ("BUSY", "20261204T100000Z/20261204T110000Z"),
        ("BUSY-TENTATIVE", "20261202T140000Z/20261202T150000Z"),
        ("BUSY-UNAVAILABLE", "20261204T080000Z/20261204T090000Z")}


async def fill(client: Dav, user: str = ALICE) -> None:
    for name, body in EVENTS.items():
        answer = await client.request("PUT", CAL.format(user) + f"{name}.ics", body, user=user,
                                      content_type="text/calendar")
        assert answer.status_code == 201, answer.text


def periods(data: bytes) -> set[tuple[str, str]]:
    """``{(FBTYPE, "start/end")}`` of a VFREEBUSY."""
    out = set()
    for fb in Calendar.from_ical(data).walk("VFREEBUSY"):
        lines = fb.get("FREEBUSY")
        for line in lines if isinstance(lines, list) else [lines] if lines else []:
            kind = str(line.params.get("FBTYPE", "BUSY"))
            for span in line.to_ical().decode().split(","):
                out.add((kind, span))
    return out


def query(start: str | None = "20261201T000000Z", end: str | None = "20261205T000000Z") -> str:
    attrs = (f' start="{start}"' if start else "") + (f' end="{end}"' if end else "")
    return ('<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f"<C:time-range{attrs}/></C:free-busy-query>")


def context(client: Dav, user: str) -> Context:
    return Context(client.host, client.host.config.dav, user, "/dav")


# -- computed directly ----------------------------------------------------------------------------
async def test_busy_time_of_a_calendar(dav: Dav) -> None:  # noqa: F811
    await fill(dav)
    mbox, folder, rights = await r_freebusy.target(context(dav, ALICE), CAL.format(ALICE))
    assert folder == CALENDAR and r_freebusy.may_see_free_busy(rights)
    start, end = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 5, tzinfo=UTC)
    found = await r_freebusy.busy_time(mbox, folder, start, end)
    spans = {(t, f"{s:%Y%m%dT%H%M%SZ}/{e:%Y%m%dT%H%M%SZ}") for s, e, t in found}
    assert spans == BUSY


async def test_free_busy_rights_reach_a_hidden_default_calendar(dav: Dav) -> None:  # noqa: F811
    await fill(dav)
    # bob holds the default entry's FreeBusySimple on alice's Calendar, nothing more
    _, folder, rights = await r_freebusy.target(context(dav, BOB), CAL.format(ALICE))
    assert folder == CALENDAR and rights == Rights.FREE_BUSY_SIMPLE
    mbox = await dav.host.store.open(ALICE)
    await permissions.Permissions(mbox).set_acl(CALENDAR, "default", 0)
    with pytest.raises(DavError) as caught:
        await r_freebusy.target(context(dav, BOB), CAL.format(ALICE))
    assert caught.value.status == 404


def test_time_ranges() -> None:
    assert r_freebusy.parse_utc("20261201T000000Z") == datetime(2026, 12, 1, tzinfo=UTC)
    for bad in ("20261201", "2026-12-01T00:00:00Z", "20261201T000000", "x" * 500):
        with pytest.raises(DavError) as caught:
            r_freebusy.parse_utc(bad)
        assert caught.value.status == 400
    start = datetime(2026, 12, 1, tzinfo=UTC)
    assert r_freebusy.window(start, None) == (start, start + r_freebusy.MAX_WINDOW)
    with pytest.raises(DavError):
        r_freebusy.window(start, start)
    with pytest.raises(DavError):
        r_freebusy.window(None, None)
    with pytest.raises(DavError):
        r_freebusy.window(start, start + r_freebusy.MAX_WINDOW * 2)


def request(organizer: str = ALICE, attendees: tuple[str, ...] = (BOB,), *,
            method: str = "REQUEST", component: str = "VFREEBUSY") -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", f"METHOD:{method}",
             f"BEGIN:{component}", "UID:fb-1", "DTSTAMP:20261129T080000Z",
             "DTSTART:20261201T000000Z", "DTEND:20261205T000000Z",
             f"ORGANIZER:mailto:{organizer}"]
    lines += [f"ATTENDEE:mailto:{a}" for a in attendees]
    lines += [f"END:{component}", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def test_outbox_request_checks() -> None:
    uid, start, end, recipients = m_post.read_request(request().encode(), ALICE)
    assert uid == "fb-1" and recipients == [(f"mailto:{BOB}", BOB)]
    assert (end - start).days == 4
    bad = {
        "valid-scheduling-message": [request(method="PUBLISH"),
                                     request(component="VEVENT"),
                                     request().replace("DTEND:20261205T000000Z\r\n", "")],
        "organizer-allowed": [request(organizer=BOB)],
        "recipient-specified": [request(attendees=())],
        "max-attendees-per-instance": [request(attendees=tuple(
            f"u{i}@example.org" for i in range(m_post.MAX_RECIPIENTS + 1)))],
        "valid-calendar-data": ["BEGIN:VCALENDAR\r\nBEGIN:VFREEBUSY\r\n", "not ical"],
    }
    for condition, bodies in bad.items():
        for body in bodies:
            with pytest.raises(DavError) as caught:
                m_post.read_request(body.encode(), ALICE)
            assert caught.value.status == 403
            assert caught.value.condition == f"{{urn:ietf:params:xml:ns:caldav}}{condition}"


# -- through HTTP, once wired ------------------------------------------------------------------
async def test_wired_free_busy_query(dav: Dav) -> None:  # noqa: F811
    await fill(dav)
    answer = await dav.request("REPORT", CAL.format(ALICE), query(), depth="1")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/calendar")
    assert periods(answer.content) == BUSY
    fb = Calendar.from_ical(answer.content).walk("VFREEBUSY")[0]
    assert fb.decoded("DTSTART") == datetime(2026, 12, 1, tzinfo=UTC)
    assert fb.decoded("DTEND") == datetime(2026, 12, 5, tzinfo=UTC)
    # bob has only the default FreeBusySimple: he gets the same answer
    answer = await dav.request("REPORT", CAL.format(ALICE), query(), user=BOB)
    assert answer.status_code == 200 and periods(answer.content) == BUSY
    # a narrower window clips
    answer = await dav.request("REPORT", CAL.format(ALICE),
                               query("20261202T103000Z", "20261202T143000Z"))
    assert periods(answer.content) == {
        ("BUSY", "20261202T103000Z/20261202T110000Z"),
        ("BUSY-TENTATIVE", "20261202T140000Z/20261202T143000Z")}


async def test_wired_free_busy_query_needs_the_privilege(dav: Dav) -> None:  # noqa: F811
    mbox = await dav.host.store.open(ALICE)
    acl = permissions.Permissions(mbox)
    await acl.set_acl(CALENDAR, "default", 0)
    answer = await dav.request("REPORT", CAL.format(ALICE), query(), user=BOB)
    assert answer.status_code == 404
    await acl.set_acl(CALENDAR, CAROL, int(Rights.FOLDER_VISIBLE))
    answer = await dav.request("REPORT", CAL.format(ALICE), query(), user=CAROL)
    assert answer.status_code == 403 and b"need-privileges" in answer.content


async def test_wired_free_busy_query_bad_input(dav: Dav) -> None:  # noqa: F811
    path = CAL.format(ALICE)
    for body in (query(None, None), query("yesterday", None),
                 query("20261201T000000Z", "20301201T000000Z"),
                 '<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav"/>'):
        answer = await dav.request("REPORT", path, body)
        assert answer.status_code == 400, body
    answer = await dav.request("REPORT", path, query()[:-5])
    assert answer.status_code == 400
    answer = await dav.request("REPORT", f"/dav/addressbooks/{ALICE}/contacts/", query())
    assert answer.status_code == 403


async def test_wired_outbox_post_free_busy(dav: Dav) -> None:  # noqa: F811
    await fill(dav, BOB)
    carol = await dav.host.store.open(CAROL)
    await permissions.Permissions(carol).set_acl(CALENDAR, "default", 0)
    body = request(attendees=(BOB, "nobody@example.org", "friend@remote.test", CAROL))
    answer = await dav.request("POST", OUTBOX.format(ALICE), body,
                               content_type="text/calendar; charset=utf-8")
    assert answer.status_code == 200, answer.text
    root = etree.fromstring(answer.content)
    assert root.tag == "{urn:ietf:params:xml:ns:caldav}schedule-response"
    got = {r.findtext("C:recipient/D:href", namespaces=NS):
           (r.findtext("C:request-status", namespaces=NS),
            r.findtext("C:calendar-data", namespaces=NS))
           for r in root.findall("C:response", NS)}
    assert got[f"mailto:{BOB}"][0].startswith("2.0")
    reply = got[f"mailto:{BOB}"][1].encode()
    assert periods(reply) == BUSY
    cal = Calendar.from_ical(reply)
    assert str(cal["METHOD"]) == "REPLY"
    fb = cal.walk("VFREEBUSY")[0]
    assert str(fb["UID"]) == "fb-1" and str(fb["ORGANIZER"]) == f"mailto:{ALICE}"
    assert str(fb["ATTENDEE"]) == f"mailto:{BOB}"
    assert got["mailto:nobody@example.org"] == ("3.7;Invalid calendar user", None)
    assert got["mailto:friend@remote.test"][0].startswith("3.7")
    assert got[f"mailto:{CAROL}"] == ("3.8;No authority", None)


async def test_wired_outbox_post_refusals(dav: Dav) -> None:  # noqa: F811
    async def post(path: str, body: str, content_type: str = "text/calendar") -> int:
        answer = await dav.request("POST", path, body, content_type=content_type)
        return answer.status_code

    assert await post(OUTBOX.format(ALICE), request(component="VEVENT")) == 403
    assert await post(OUTBOX.format(ALICE), request(organizer=BOB)) == 403
    assert await post(OUTBOX.format(ALICE), "garbage") == 403
    assert await post(OUTBOX.format(ALICE), request(), "application/json") == 415
    assert await post(OUTBOX.format(BOB), request()) == 404
    assert await post(CAL.format(ALICE), request()) == 405
    assert await post(f"/dav/calendars/{ALICE}/inbox/", request()) == 405
    huge = request().replace("UID:fb-1", "UID:" + "x" * (11 * 1024 * 1024))
    assert await post(OUTBOX.format(ALICE), huge) == 403
