"""Hostile requests to the DAV plugin in process: malformed XML, DOCTYPE and entity bombs,
external entities, oversized bodies, path traversal in every encoding, other users' paths,
unknown methods, missing or failing authentication, users without the dav privilege,
truncated and oversized iCalendar and vCards, and recurrences without end in queries.

Each refused request gets the protocol's own error in bounded time, never a 500, and
writes nothing (the stores' change numbers and message counts are compared before and
after). Paths that an HTTP client would normalise (``..``) are sent through the ASGI
interface as a server receives them."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Iterable
from urllib.parse import unquote

from lxml import etree

from gateway.app import build_app
from gateway.directory import admin
from tests.unit import dav_setup
from tests.unit.dav_setup import ALICE, BOB, BOOK, CAL, HOME, NS, USERS, XMLNS, Dav, basic, ics
from tests.unit.test_dav_reports import SERIES

dav = dav_setup.dav  # the fixture

PROPFIND = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/>'
            "<D:displayname/></D:prop></D:propfind>")


def event(uid: str, rule: str = "", start: str = "20060102T150000Z") -> str:
    return dav_setup.event(uid, f"Event {uid}", start, "DESCRIPTION:Go Steelers!\n" + rule)


def vcard(uid: str, lines: str = "") -> str:
    return (f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Cyrus Daboo\r\nN:Daboo;Cyrus;;;"
            f"\r\n{lines}EMAIL:cyrus@example.com\r\nEND:VCARD\r\n")


async def snapshot(dav: Dav) -> dict[str, tuple[int, int, int]]:
    """Every user's store: last change number, message count, folder count."""
    out = {}
    for user in USERS:
        mbox = await dav.host.store.open(user)
        counts = await mbox.read(lambda txn: txn.conn.execute(
            "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM folders)").fetchone())
        out[user] = (await mbox.last_change_number(), *counts)
    return out


APPS: weakref.WeakKeyDictionary[object, object] = weakref.WeakKeyDictionary()
"""The gateway's app per host, built once (``raw`` sends requests to it directly)."""


async def raw(dav: Dav, method: str, raw_path: bytes, body: bytes = b"",
              user: str | None = ALICE, headers: Iterable[tuple[bytes, bytes]] = ()
              ) -> tuple[int, bytes]:
    """A request as an HTTP server hands it to the app: ``raw_path`` as sent, ``path``
    percent-decoded once (as hypercorn and uvicorn do), no normalisation."""
    hdrs = [(b"host", b"mail.example.org"), (b"content-length", str(len(body)).encode()),
            *headers]
    if user is not None:
        hdrs.append((b"authorization", basic(user)["Authorization"].encode()))
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
             "http_version": "1.1", "method": method, "scheme": "https",
             "path": unquote(raw_path.decode("ascii")), "raw_path": raw_path,
             "query_string": b"", "root_path": "", "headers": hdrs,
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 443)}
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    answer: dict[str, object] = {"status": 0, "body": b""}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] = answer["body"] + message.get("body", b"")  # type: ignore[operator]

    app = APPS.get(dav.host)
    if app is None:
        app = APPS[dav.host] = build_app(dav.host)
    await app(scope, receive, send)  # type: ignore[arg-type]
    return int(answer["status"]), answer["body"]  # type: ignore[arg-type, call-overload]


async def timed(coro: object, limit: float) -> object:
    start = time.monotonic()
    result = await coro  # type: ignore[misc]
    assert time.monotonic() - start < limit, f"took {time.monotonic() - start:.1f} s"
    return result


# -- malformed and hostile XML ------------------------------------------------------------------

BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>&lol9;</D:displayname>
</D:prop></D:set></D:propertyupdate>"""

EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>&xxe;</D:displayname>
</D:prop></D:set></D:propertyupdate>"""

HOSTILE_XML: list[tuple[str, bytes]] = [
    ("not XML", b"this is not xml"),
    ("unclosed", b'<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop>'),
    ("undeclared prefix", b"<D:propfind><D:allprop/></D:propfind>"),
    ("bad encoding", b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:">'
                     b"<D:prop><X\xff\xfe/></D:prop></D:propfind>"),
    ("two roots", b'<D:propfind xmlns:D="DAV:"/><D:propfind xmlns:D="DAV:"/>'),
    ("entity bomb", BOMB.encode()),
    ("external entity", EXTERNAL.encode()),
    ("utf-16 bomb", BOMB.replace('<?xml version="1.0"?>', '<?xml version="1.0" '
                                 'encoding="utf-16"?>').encode("utf-16")),
    ("doctype after 8 kB of comment",
     b"<!--" + b"x" * 8192 + b"-->" + EXTERNAL.split("?>", 1)[1].encode()),
    ("parameter entity", b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM '
                         b'"http://127.0.0.1:1/evil.dtd"> %p;]><D:propfind xmlns:D="DAV:">'
                         b"<D:allprop/></D:propfind>"),
    ("deep nesting", b'<D:propfind xmlns:D="DAV:">' + b"<x>" * 100_000 + b"</x>" * 100_000
     + b"</D:propfind>"),
]


async def test_hostile_xml_is_400_fast_and_writes_nothing(dav: Dav) -> None:
    before = await snapshot(dav)
    for method, path in (("PROPFIND", CAL), ("PROPPATCH", CAL), ("REPORT", CAL),
                         ("MKCALENDAR", HOME + "new/"), ("MKCOL", HOME + "new/")):
        for why, body in HOSTILE_XML:
            start = time.monotonic()
            answer = await dav.request(method, path, body, Depth="0",
                                       Content_Type="application/xml; charset=utf-8")
            assert time.monotonic() - start < 2, (method, why)
            assert answer.status_code == 400, (method, why, answer.status_code,
                                               answer.text[:300])
            assert b"root:" not in answer.content and b"lollol" not in answer.content, why
    assert await snapshot(dav) == before
    displayname = await dav.xml("PROPFIND", CAL, PROPFIND, Depth="0")
    assert displayname.findtext(".//D:displayname", namespaces=NS) == "Calendar"


async def test_a_2_mb_body_is_413(dav: Dav) -> None:
    before = await snapshot(dav)
    padding = "<!--" + "x" * (2 * 1024 * 1024) + "-->"
    body = PROPFIND.replace("<D:prop>", padding + "<D:prop>")

    async def chunks() -> AsyncIterator[bytes]:
        data = body.encode()
        for start in range(0, len(data), 65536):
            yield data[start:start + 65536]

    for method in ("PROPFIND", "REPORT", "PROPPATCH", "MKCALENDAR"):
        answer = await timed(dav.request(method, CAL, body, Depth="0"), 2)
        assert answer.status_code == 413, method  # type: ignore[attr-defined]
        headers = {**basic(ALICE), "Depth": "0"}
        streamed = await dav.client.request(method, CAL, content=chunks(), headers=headers)
        assert "content-length" not in {k.lower() for k in streamed.request.headers}
        assert streamed.status_code == 413, method
    assert await snapshot(dav) == before


async def test_a_propfind_naming_60000_properties_gets_a_bounded_answer(dav: Dav) -> None:
    for i in range(10):
        await dav.request("PUT", f"{CAL}e{i}.ics", event(f"e{i}@example.com"),
                          Content_Type="text/calendar")
    props = "".join(f"<X:p{i}/>" for i in range(60_000))
    body = f'<D:propfind xmlns:D="DAV:" xmlns:X="urn:x"><D:prop>{props}</D:prop></D:propfind>'
    assert len(body) < 1024 * 1024
    answer = await timed(dav.request("PROPFIND", CAL, body, Depth="1"), 10)
    assert answer.status_code in (207, 400, 403, 413, 507)  # type: ignore[attr-defined]
    assert len(answer.content) < 5 * 1024 * 1024  # type: ignore[attr-defined]


async def test_too_many_hrefs_in_a_multiget(dav: Dav) -> None:
    hrefs = "".join(f"<D:href>{CAL}{i}.ics</D:href>" for i in range(12_000))
    body = (f'<?xml version="1.0"?><C:calendar-multiget {XMLNS}><D:prop><D:getetag/></D:prop>'
            f"{hrefs}</C:calendar-multiget>")
    assert len(body) < 1024 * 1024
    answer = await timed(dav.request("REPORT", CAL, body, Depth="1"), 5)
    assert answer.status_code in (403, 507)  # type: ignore[attr-defined]


# -- paths --------------------------------------------------------------------------------------

TRAVERSALS = [
    b"/dav/calendars/alice@example.org/../bob@example.org/",
    b"/dav/calendars/alice@example.org/../bob@example.org/calendar/",
    b"/dav/calendars/alice@example.org/%2e%2e/bob@example.org/calendar/",
    b"/dav/calendars/alice@example.org/%2E%2E/bob@example.org/calendar/",
    b"/dav/calendars/alice@example.org/calendar/..%2f..%2fbob@example.org%2fcalendar%2fx.ics",
    b"/dav/calendars/alice@example.org/calendar/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    b"/dav/calendars/alice@example.org/calendar/%2e%2e%5c%2e%2e%5cbob@example.org/x.ics",
    b"/dav/calendars/alice@example.org/calendar/..\\..\\bob@example.org\\x.ics",
    b"/dav/calendars/alice@example.org/calendar/%c0%ae%c0%ae/x.ics",
    b"/dav/calendars/alice@example.org/calendar/x%00.ics",
    b"/dav/calendars/alice@example.org%00/calendar/x.ics",
    b"/dav/calendars/bob@example.org%2fcalendar/x.ics",
    b"/dav/calendars/alice@example.org/calendar/./x.ics",
    b"/dav/calendars/alice@example.org/calendar//x.ics",
    b"/dav/calendars/alice@example.org/calendar/x.ics/..",
    b"/dav/calendars/alice@example.org/calendar/" + b"a" * 300 + b".ics",
    b"/dav/../dav/calendars/bob@example.org/calendar/",
    b"/dav/calendars/alice@example.org/calendar/x.ics%0d%0aSet-Cookie:%20a=b",
]


async def test_path_traversal_never_escapes_and_writes_nothing(dav: Dav) -> None:
    # the control: the same interface finds what exists
    code, content = await raw(dav, "PROPFIND", CAL.encode(), PROPFIND.encode(),
                              headers=[(b"depth", b"0")])
    assert code == 207 and b"Calendar" in content
    bob_event = event("bob-private@example.com")
    answer = await dav.request("PUT", "/dav/calendars/bob@example.org/calendar/x.ics",
                               bob_event, user=BOB, Content_Type="text/calendar")
    assert answer.status_code == 201
    before = await snapshot(dav)
    for path in TRAVERSALS:
        for method, body in (("PROPFIND", PROPFIND.encode()), ("GET", b""), ("DELETE", b""),
                             ("PUT", event(f"t{len(path)}@example.com").encode())):
            code, content = await raw(dav, method, path, body, headers=[
                (b"depth", b"1"), (b"content-type", b"text/calendar")])
            assert code in (400, 403, 404, 405, 409), (method, path, code, content[:200])
            assert b"bob-private" not in content and b"root:" not in content, (method, path)
    assert await snapshot(dav) == before
    # encoded twice, the dots and slash are a literal name in Alice's calendar, nothing more
    code, _ = await raw(dav, "PUT", (CAL + "%252e%252e%252fx.ics").encode(),
                        event("literal@example.com").encode(),
                        headers=[(b"content-type", b"text/calendar")])
    assert code == 201
    after = await snapshot(dav)
    assert after[BOB] == before[BOB] and after["carol@example.org"] == before["carol@example.org"]
    code, content = await raw(dav, "PROPFIND", CAL.encode(), PROPFIND.encode(),
                              headers=[(b"depth", b"1")])
    hrefs = {h.text for h in etree.fromstring(content).findall("D:response/D:href", NS)}
    assert hrefs == {CAL, CAL + "%252e%252e%252fx.ics"}


# -- other users --------------------------------------------------------------------------------

def requests_on(owner: str) -> list[tuple[str, str, str, dict[str, str]]]:
    cal, book = f"/dav/calendars/{owner}/calendar/", f"/dav/addressbooks/{owner}/contacts/"
    sync = (f'<?xml version="1.0"?><D:sync-collection {XMLNS}><D:sync-token/>'
            "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>")
    multiget = (f'<?xml version="1.0"?><C:calendar-multiget {XMLNS}><D:prop><D:getetag/>'
                f"</D:prop><D:href>{cal}x.ics</D:href></C:calendar-multiget>")
    query = (f'<?xml version="1.0"?><C:calendar-query {XMLNS}><D:prop><D:getetag/></D:prop>'
             '<C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>')
    patch = ('<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
             "<D:displayname>Mine</D:displayname></D:prop></D:set></D:propertyupdate>")
    depth0, depth1 = {"Depth": "0"}, {"Depth": "1"}
    return [
        ("PROPFIND", f"/dav/calendars/{owner}/", PROPFIND, depth1),
        ("PROPFIND", f"/dav/addressbooks/{owner}/", PROPFIND, depth0),
        ("PROPFIND", cal, PROPFIND, depth1),
        ("PROPFIND", cal + "x.ics", PROPFIND, depth0),
        ("PROPFIND", book, PROPFIND, depth1),
        ("GET", cal, "", {}),
        ("GET", cal + "x.ics", "", {}),
        ("GET", book + "c.vcf", "", {}),
        ("PUT", cal + "new.ics", event("intruder@example.com"),
         {"Content-Type": "text/calendar"}),
        ("PUT", cal + "x.ics", event("bob-private@example.com"),
         {"Content-Type": "text/calendar"}),
        ("DELETE", cal + "x.ics", "", {}),
        ("DELETE", cal, "", {}),
        ("PROPPATCH", cal, patch, {}),
        ("REPORT", cal, sync, depth0),
        ("REPORT", cal, multiget, depth1),
        ("REPORT", cal, query, depth1),
        ("MOVE", cal + "x.ics", "", {"Destination": cal + "y.ics"}),
    ]


async def _bob_has_data(dav: Dav) -> None:
    for path, data, media in (
            ("/dav/calendars/bob@example.org/calendar/x.ics", event("bob-private@example.com"),
             "text/calendar"),
            ("/dav/addressbooks/bob@example.org/contacts/c.vcf", vcard("bob-card"),
             "text/vcard")):
        answer = await dav.request("PUT", path, data, user=BOB, Content_Type=media)
        assert answer.status_code == 201


async def test_other_users_paths_are_404_like_users_that_do_not_exist(dav: Dav) -> None:
    await _bob_has_data(dav)
    before = await snapshot(dav)
    for (method, path, body, headers), (_, ghost, _, _) in zip(
            requests_on(BOB), requests_on("nobody@example.org"), strict=True):
        mine = await dav.request(method, path, body, **headers)
        theirs = await dav.request(method, ghost, body,
                                   **{k: v.replace(BOB, "nobody@example.org")
                                      for k, v in headers.items()})
        assert mine.status_code == 404, (method, path, mine.status_code, mine.text[:200])
        assert theirs.status_code == 404, (method, ghost, theirs.status_code)
        assert b"bob-private" not in mine.content
    assert await snapshot(dav) == before


async def test_other_users_404s_are_identical_to_those_of_missing_users(dav: Dav) -> None:
    await _bob_has_data(dav)
    for (method, path, body, headers), (_, ghost, _, _) in zip(
            requests_on(BOB), requests_on("nobody@example.org"), strict=True):
        mine = await dav.request(method, path, body, **headers)
        theirs = await dav.request(method, ghost, body,
                                   **{k: v.replace(BOB, "nobody@example.org")
                                      for k, v in headers.items()})
        assert (mine.status_code, mine.content.replace(BOB.encode(), b"X"),
                mine.headers.get("content-type")) == \
            (theirs.status_code, theirs.content.replace(b"nobody@example.org", b"X"),
             theirs.headers.get("content-type")), (method, path)


async def test_mkcalendar_in_another_users_home_is_404_like_a_missing_user(dav: Dav) -> None:
    before = await snapshot(dav)
    for owner in (BOB, "nobody@example.org"):
        answer = await dav.request("MKCALENDAR", f"/dav/calendars/{owner}/stolen/")
        assert answer.status_code == 404, (owner, answer.status_code)
    assert await snapshot(dav) == before


# -- methods and authentication -----------------------------------------------------------------

async def test_unknown_methods_are_405_with_allow(dav: Dav) -> None:
    before = await snapshot(dav)
    for method in ("FOO", "LOCK", "UNLOCK", "COPY", "PATCH", "POST", "TRACE", "BIND",
                   "SEARCH"):
        answer = await dav.request(method, CAL, "<x/>")
        assert answer.status_code == 405, (method, answer.status_code)
        assert "PROPFIND" in answer.headers.get("allow", ""), method
    # methods are case-sensitive (RFC 9110 9.1); httpx would upper-case this one
    code, _ = await raw(dav, "propfind", CAL.encode(), PROPFIND.encode(),
                        headers=[(b"depth", b"0")])
    assert code == 405
    assert await snapshot(dav) == before


async def test_requests_without_valid_credentials_are_401(dav: Dav) -> None:
    before = await snapshot(dav)
    answers = []
    for headers in ({}, basic("alice@example.org") | {"Authorization": "Basic YWxpY2U6d3Jvbmc="},
                    {"Authorization": "Basic " + "bm9ib2R5QGV4YW1wbGUub3JnOnB3LW5vYm9keQ=="},
                    {"Authorization": "Bearer abc"}):
        for method, path in (("PROPFIND", CAL), ("GET", CAL + "x.ics"), ("PUT", CAL + "x.ics"),
                             ("OPTIONS", "/dav/"), ("REPORT", CAL)):
            answer = await dav.client.request(method, path, headers={**headers, "Depth": "0"},
                                              content=event("x@example.com"))
            assert answer.status_code == 401, (headers, method)
            assert "basic" in answer.headers.get("www-authenticate", "").lower()
            answers.append(answer.content)
    assert len(set(answers)) == 1  # the same whether the user exists or not
    assert await snapshot(dav) == before


async def test_a_user_without_the_dav_privilege_is_refused(dav: Dav) -> None:
    await admin.set_user(dav.host.directory.engine, "carol@example.org", deny=["dav"])
    before = await snapshot(dav)
    for method, path, body in (
            ("PROPFIND", "/dav/calendars/carol@example.org/", PROPFIND),
            ("PUT", "/dav/calendars/carol@example.org/calendar/x.ics", event("c@example.com")),
            ("GET", "/dav/calendars/carol@example.org/calendar/", "")):
        answer = await dav.request(method, path, body, user="carol@example.org", Depth="0",
                                   Content_Type="text/calendar")
        assert answer.status_code in (401, 403), (method, answer.status_code)
        assert b"VCALENDAR" not in answer.content and b"multistatus" not in answer.content
    assert await snapshot(dav) == before
    # alice, who has it, is not affected
    assert (await dav.request("PROPFIND", HOME, PROPFIND, Depth="0")).status_code == 207


# -- hostile content ----------------------------------------------------------------------------

def cut_events(positions: Iterable[int]) -> Iterable[tuple[int, bytes]]:
    """An event cut after ``position`` bytes, each with its own UID (no UID conflicts)."""
    for position in positions:
        yield position, event(f"cut-{position:04d}@example.com").encode()[:position]


LAST_LINE = len(b"END:VCALENDAR\r\n")


async def test_truncated_icalendar_is_refused_wherever_it_is_cut(dav: Dav) -> None:
    size = len(event("cut-0000@example.com").encode())
    before = await snapshot(dav)
    for position, data in cut_events(range(20, size - LAST_LINE, 7)):
        answer = await dav.request("PUT", CAL + f"cut{position}.ics", data,
                                   Content_Type="text/calendar")
        assert answer.status_code == 403, (position, data[-40:], answer.status_code)
        assert etree.fromstring(answer.content).find("C:valid-calendar-data", NS) is not None
    assert await snapshot(dav) == before


async def test_icalendar_cut_inside_its_last_line_is_refused(dav: Dav) -> None:
    size = len(event("cut-0000@example.com").encode())
    before = await snapshot(dav)
    for position, data in cut_events(range(size - LAST_LINE + 1, size - 2)):
        answer = await dav.request("PUT", CAL + f"cut{position}.ics", data,
                                   Content_Type="text/calendar")
        assert answer.status_code == 403, (position, data[-20:], answer.status_code)
    assert await snapshot(dav) == before


async def longest_stall(coro: object) -> float:
    """The longest time the event loop did not run a 10 ms ticker while ``coro`` ran."""
    longest, running = 0.0, True

    async def ticker() -> None:
        nonlocal longest
        last = time.monotonic()
        while running:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            longest, last = max(longest, now - last), now

    task = asyncio.create_task(ticker())
    try:
        await coro  # type: ignore[misc]
    finally:
        running = False
        await task
    return longest


async def test_the_stall_measure_sees_a_blocked_loop(dav: Dav) -> None:
    """The control for the test below: a request's own work does not stall the loop, a
    blocking call does."""
    small = await longest_stall(dav.request("PROPFIND", CAL, PROPFIND, Depth="0"))
    assert small < 0.5

    async def blocking() -> None:
        await asyncio.sleep(0.05)
        time.sleep(0.6)  # noqa: ASYNC251 - the point of the control

    assert await longest_stall(blocking()) >= 0.5


async def test_a_large_put_does_not_stall_the_event_loop(dav: Dav) -> None:
    lines = "".join(f"EMAIL;TYPE=INTERNET:user{i}@example.com\r\n" for i in range(6_000))
    stall = await longest_stall(dav.request("PUT", BOOK + "big.vcf", vcard("big", lines),
                                            Content_Type="text/vcard"))
    assert stall < 0.5, f"the event loop stalled {stall:.1f} s"


async def test_a_query_over_many_items_does_not_stall_the_event_loop(dav: Dav) -> None:
    from gateway.convert.ical_in import parse_calendar_report
    from gateway.store import Private

    messages = []
    for i in range(300):  # SERIES: with a time zone, an EXDATE and an override
        messages.extend(parse_calendar_report(SERIES.replace("00959BC6", f"{i:08d}")).messages)
    mbox = await dav.host.store.open(ALICE)
    await mbox.create_messages(int(Private.CALENDAR), messages)
    body = (f'<?xml version="1.0"?><C:calendar-query {XMLNS}><D:prop><D:getetag/></D:prop>'
            '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            '<C:time-range start="20060110T000000Z" end="20060111T000000Z"/></C:comp-filter>'
            "</C:comp-filter></C:filter></C:calendar-query>")
    stall = await longest_stall(dav.request("REPORT", CAL, body, Depth="1"))
    assert stall < 0.25, f"the event loop stalled {stall:.1f} s"


async def test_a_vcard_bomb_is_answered_in_bounded_time(dav: Dav) -> None:
    lines = "".join(f"EMAIL;TYPE=INTERNET:user{i}@example.com\r\n" for i in range(100_000))
    bomb = vcard("bomb", lines)
    before = await snapshot(dav)
    answer = await timed(dav.request("PUT", BOOK + "bomb.vcf", bomb,
                                     Content_Type="text/vcard"), 15)
    code = answer.status_code  # type: ignore[attr-defined]
    assert code in (201, 403, 413, 507), code
    if code != 201:
        assert await snapshot(dav) == before
        return
    listing = await timed(dav.request("PROPFIND", BOOK, PROPFIND, Depth="1"), 5)
    assert listing.status_code == 207  # type: ignore[attr-defined]
    got = await timed(dav.request("GET", BOOK + "bomb.vcf"), 10)
    assert got.status_code == 200  # type: ignore[attr-defined]


async def test_a_calendar_with_thousands_of_components_is_refused(dav: Dav) -> None:
    comps = "\r\n".join(f"BEGIN:VEVENT\r\nUID:many-{i}\r\nDTSTAMP:20060206T001102Z\r\n"
                        f"DTSTART:20060102T150000Z\r\nSUMMARY:{i}\r\nEND:VEVENT"
                        for i in range(5000))
    before = await snapshot(dav)
    answer = await timed(dav.request("PUT", CAL + "many.ics", ics(comps),
                                     Content_Type="text/calendar"), 10)
    assert answer.status_code == 403  # type: ignore[attr-defined]
    assert await snapshot(dav) == before


async def test_a_recurrence_without_end_in_queries_is_bounded(dav: Dav) -> None:
    forever = event("every-second@example.com", "RRULE:FREQ=SECONDLY\r\n")
    answer = await timed(dav.request("PUT", CAL + "forever.ics", forever,
                                     Content_Type="text/calendar"), 5)
    assert answer.status_code in (201, 403)  # type: ignore[attr-defined]
    await dav.request("PUT", CAL + "daily.ics",
                      event("daily@example.com", "RRULE:FREQ=DAILY\r\n"),
                      Content_Type="text/calendar")
    queries = [
        ('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range '
         'start="20060101T000000Z" end="20070101T000000Z"/></C:comp-filter></C:comp-filter>',
         "<C:calendar-data/>"),
        ('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range '
         'start="21000101T000000Z" end="21000102T000000Z"/></C:comp-filter></C:comp-filter>',
         "<C:calendar-data/>"),
        ('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range '
         'start="19000101T000000Z" end="29000101T000000Z"/></C:comp-filter></C:comp-filter>',
         '<C:calendar-data><C:expand start="19000101T000000Z" end="29000101T000000Z"/>'
         "</C:calendar-data>"),
        ('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range '
         'start="20060101T000000Z" end="20060201T000000Z"/></C:comp-filter></C:comp-filter>',
         '<C:calendar-data><C:expand start="20060101T000000Z" end="20060201T000000Z"/>'
         "</C:calendar-data>"),
    ]
    for filter_xml, data in queries:
        body = (f'<?xml version="1.0"?><C:calendar-query {XMLNS}><D:prop><D:getetag/>{data}'
                f"</D:prop><C:filter>{filter_xml}</C:filter></C:calendar-query>")
        answer = await timed(dav.request("REPORT", CAL, body, Depth="1"), 10)
        code = answer.status_code  # type: ignore[attr-defined]
        assert code in (207, 403, 507), (filter_xml, code)
        assert len(answer.content) < 50 * 1024 * 1024  # type: ignore[attr-defined]
    whole = await timed(dav.request("GET", CAL), 10)
    assert whole.status_code == 200  # type: ignore[attr-defined]


async def test_bad_depth_and_destination_headers(dav: Dav) -> None:
    await dav.request("PUT", CAL + "a.ics", event("a@example.com"), Content_Type="text/calendar")
    before = await snapshot(dav)
    for depth in ("1, 1", "2", "-1", "infinityx", "01"):
        answer = await dav.request("PROPFIND", CAL, PROPFIND, Depth=depth)
        assert answer.status_code in (400, 403), depth
    for destination in ("not a url", "/elsewhere/x.ics", CAL + "..%2fx.ics",
                        f"/dav/calendars/{ALICE}/calendar/%00.ics"):
        answer = await dav.request("MOVE", CAL + "a.ics", Destination=destination)
        assert 400 <= answer.status_code < 500, (destination, answer.status_code)
    assert await snapshot(dav) == before


async def test_an_unparsable_destination_is_400(dav: Dav) -> None:
    await dav.request("PUT", CAL + "a.ics", event("a@example.com"), Content_Type="text/calendar")
    answer = await dav.request("MOVE", CAL + "a.ics", Destination="http://[::1")
    assert answer.status_code == 400


async def test_hostile_basic_credentials_are_400_or_401(dav: Dav) -> None:
    for value in ("Basic " + "A" * 10_000, "Basic !!!!", "Basic YWxpY2U=",
                  "Basic YWxpY2VAZXhhbXBsZS5vcmc6cHctYWxpY2UA"):
        answer = await dav.client.request("PROPFIND", CAL, headers={
            "Authorization": value, "Depth": "0"})
        assert answer.status_code in (400, 401), value
