"""Items of the DAV plugin in process: PUT, GET and DELETE of events, tasks and vCards.

ETags and conditional requests (RFC 9110 13.1, RFC 4791 5.3.4), the bytes a client PUT
coming back identical, items changed or made through the store API (as another protocol
would) answering fresh conversions under new ETags or ``gw-<id>`` names, and the PUT
preconditions of RFC 4791 5.3.2.1 and RFC 6352 6.3.2.1 — each refused PUT writing nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from icalendar import Calendar
from lxml import etree

from gateway.convert.ical_in import parse_calendar_report
from gateway.convert.vcard import parse_vcards
from gateway.store import Private
from gateway.store import dav as store_dav
from gateway.store import tags as T
from tests.unit import dav_setup
from tests.unit.dav_setup import ALICE, BOOK, CAL, EASTERN, HOME, NS, TASKS, D, Dav, ics, vcard

dav = dav_setup.dav  # the fixture


# -- data (RFC 4791 Appendix B style) ----------------------------------------------------------

def vevent(uid: str, summary: str = "Event #1", extra: str = "") -> str:
    return f"""BEGIN:VEVENT
UID:{uid}
DTSTAMP:20060206T001102Z
DTSTART;TZID=US/Eastern:20060102T100000
DURATION:PT1H
SUMMARY:{summary}
DESCRIPTION:Go Steelers!
{extra}END:VEVENT"""


def event(uid: str, summary: str = "Event #1") -> str:
    return ics(EASTERN, vevent(uid, summary))


def vtodo(uid: str, summary: str = "Task #1") -> str:
    return f"""BEGIN:VTODO
UID:{uid}
DTSTAMP:20060205T235335Z
DUE;VALUE=DATE:20060104
STATUS:NEEDS-ACTION
SUMMARY:{summary}
END:VTODO"""


# -- helpers ------------------------------------------------------------------------------------

def media(path: str) -> str:
    return "text/vcard; charset=utf-8" if path.endswith(".vcf") else \
        "text/calendar; charset=utf-8"


async def put(dav: Dav, path: str, data: str | bytes, status: int = 201, **headers: str
              ) -> httpx.Response:
    headers.setdefault("Content_Type", media(path))
    answer = await dav.request("PUT", path, data, **headers)
    assert answer.status_code == status, answer.text
    return answer


async def snapshot(dav: Dav, owner: str = ALICE) -> tuple[int, int]:
    """The store's last change number and message count: equal before and after a refused
    request when nothing was written."""
    mbox = await dav.host.store.open(owner)
    count = await mbox.read(lambda txn: txn.conn.execute(
        "SELECT count(*) FROM messages").fetchone()[0])
    return await mbox.last_change_number(), count


async def etags(dav: Dav, path: str) -> dict[str, str]:
    body = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop>'
            "</D:propfind>")
    root = await dav.xml("PROPFIND", path, body, Depth="1")
    out = {}
    for resp in root.findall("D:response", NS):
        href = resp.findtext("D:href", namespaces=NS)
        if not href.endswith("/"):
            out[href] = resp.findtext("D:propstat/D:prop/D:getetag", namespaces=NS)
    return out


async def message_ids(dav: Dav, folder: int, owner: str = ALICE) -> list[int]:
    mbox = await dav.host.store.open(owner)
    return [item.id for item in await mbox.read(store_dav.items, folder)]


def precondition(answer: httpx.Response, status: int, condition: str) -> etree._Element:
    assert answer.status_code == status, answer.text
    root = etree.fromstring(answer.content)
    assert root.tag == D + "error", answer.text
    found = root.find(condition, NS)
    assert found is not None, answer.text
    return found


# -- PUT and GET: bytes and ETags ---------------------------------------------------------------

@pytest.mark.parametrize(("path", "data"), [
    (CAL + "abcd1.ics", event("74855313FA803DA593CD579A@example.com")),
    (TASKS + "abcd4.ics", ics(vtodo("E10BA47467C5C69BB74E8720@example.com"))),
    (BOOK + "cyrus.vcf", vcard("11111111-2222-3333-4444-555555555555")),
])
async def test_put_then_get_gives_back_the_same_bytes_and_etag(dav: Dav, path: str,
                                                                data: str) -> None:
    created = await put(dav, path, data)
    etag = created.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    answer = await dav.request("GET", path)
    assert answer.status_code == 200
    assert answer.content == data.encode()
    assert answer.headers["etag"] == etag
    assert answer.headers["content-type"].split(";")[0] == media(path).split(";")[0]
    assert (await etags(dav, path.rsplit("/", 1)[0] + "/"))[path] == etag
    head = await dav.request("HEAD", path)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == etag
    assert int(head.headers["content-length"]) == len(data.encode())


async def test_non_ascii_and_folded_bytes_come_back_identical(dav: Dav) -> None:
    data = ics(vevent("caf\u00e9@example.com", "Caf\u00e9 \u2615 with \u00c5sa",
                      "LOCATION:A very long location line that is folded by the client be\r\n"
                      " cause it is longer than seventy-five octets\r\n"), head="")
    data = data.replace("BEGIN:VEVENT", EASTERN + "\r\nBEGIN:VEVENT", 1)
    await put(dav, CAL + "cafe.ics", data.encode("utf-8"))
    assert (await dav.request("GET", CAL + "cafe.ics")).content == data.encode("utf-8")


async def test_overwrite_is_204_with_a_new_etag(dav: Dav) -> None:
    path = CAL + "abcd1.ics"
    first = (await put(dav, path, event("abcd1@example.com"))).headers["etag"]
    changed = event("abcd1@example.com", "Event #1 moved")
    second = (await put(dav, path, changed, status=204)).headers["etag"]
    assert second != first
    answer = await dav.request("GET", path)
    assert answer.content == changed.encode() and answer.headers["etag"] == second
    assert list(await etags(dav, CAL)) == [path]


async def test_conditional_puts(dav: Dav) -> None:
    path = CAL + "cond.ics"
    data = event("cond@example.com")
    # If-Match on an item that does not exist fails
    await put(dav, path, data, status=412, If_Match='"1"')
    await put(dav, path, data, status=412, If_Match="*")
    etag = (await put(dav, path, data, If_None_Match="*")).headers["etag"]
    before = await snapshot(dav)
    await put(dav, path, event("cond@example.com", "Other"), status=412, If_None_Match="*")
    await put(dav, path, event("cond@example.com", "Other"), status=412, If_Match='"ffff"')
    await put(dav, path, event("cond@example.com", "Other"), status=412,
              If_None_Match=etag)
    assert await snapshot(dav) == before
    assert (await dav.request("GET", path)).content == data.encode()
    new = (await put(dav, path, event("cond@example.com", "Other"), status=204,
                     If_Match=etag)).headers["etag"]
    await put(dav, path, data, status=412, If_Match=etag)  # the old ETag no longer matches
    await put(dav, path, data, status=204, If_Match=f'"ffff", {new}')


async def test_a_weak_etag_never_satisfies_if_match(dav: Dav) -> None:
    path = CAL + "cond.ics"
    etag = (await put(dav, path, event("cond@example.com"))).headers["etag"]
    before = await snapshot(dav)
    await put(dav, path, event("cond@example.com", "Other"), status=412, If_Match="W/" + etag)
    assert await snapshot(dav) == before


async def test_conditional_get_and_delete(dav: Dav) -> None:
    path = CAL + "cond.ics"
    etag = (await put(dav, path, event("cond@example.com"))).headers["etag"]
    answer = await dav.request("GET", path, If_None_Match=etag)
    assert answer.status_code == 304 and answer.content == b""
    assert (await dav.request("GET", path, If_None_Match='"0"')).status_code == 200
    before = await snapshot(dav)
    assert (await dav.request("DELETE", path, If_Match='"0"')).status_code == 412
    assert await snapshot(dav) == before
    assert (await dav.request("DELETE", path, If_Match=etag)).status_code == 204


async def test_get_and_delete_of_missing_items_are_404(dav: Dav) -> None:
    for path in (CAL + "missing.ics", BOOK + "missing.vcf", CAL + "gw-999999.ics"):
        assert (await dav.request("GET", path)).status_code == 404, path
        assert (await dav.request("DELETE", path)).status_code == 404, path


async def test_a_vcard_round_trip_and_delete(dav: Dav) -> None:
    path = BOOK + "cyrus.vcf"
    await put(dav, path, vcard("cyrus-uid"))
    changed = vcard("cyrus-uid", "Cyrus Daboo", "daboo@example.com")
    await put(dav, path, changed, status=204)
    assert (await dav.request("GET", path)).content == changed.encode()
    assert (await dav.request("DELETE", path)).status_code == 204
    assert (await dav.request("GET", path)).status_code == 404
    assert await etags(dav, BOOK) == {}


async def test_names_are_kept_as_the_client_spelled_them(dav: Dav) -> None:
    """RFC 3986: ``%25`` is a percent sign; the name ``a%41 b.ics`` is not ``aA b.ics``."""
    await put(dav, CAL + "My%20Event.ics", event("spaced@example.com"))
    assert CAL + "My%20Event.ics" in await etags(dav, CAL)
    assert (await dav.request("GET", CAL + "My%20Event.ics")).status_code == 200


async def test_percent_encoded_percent_signs_are_decoded_once(dav: Dav) -> None:
    await put(dav, CAL + "a%2541.ics", event("percent@example.com"))
    assert list(await etags(dav, CAL)) == [CAL + "a%2541.ics"]
    assert (await dav.request("GET", CAL + "aA.ics")).status_code == 404


async def test_control_characters_in_an_item_do_not_break_reports(dav: Dav) -> None:
    nasty = event("nasty@example.com", "Red \x1b[31m alert \x0b!")
    answer = await dav.request("PUT", CAL + "nasty.ics", nasty, Content_Type="text/calendar")
    assert answer.status_code in (201, 403)
    if answer.status_code == 403:
        precondition(answer, 403, "C:valid-calendar-data")
    await put(dav, CAL + "fine.ics", event("fine@example.com"))
    xmlns = f'xmlns:D="DAV:" xmlns:C="{NS["C"]}"'
    for body in (
            f'<C:calendar-multiget {xmlns}><D:prop><C:calendar-data/></D:prop>'
            f"<D:href>{CAL}nasty.ics</D:href><D:href>{CAL}fine.ics</D:href>"
            "</C:calendar-multiget>",
            f'<C:calendar-query {xmlns}><D:prop><C:calendar-data/></D:prop><C:filter>'
            '<C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>',
            f'<D:sync-collection {xmlns}><D:sync-token/><D:sync-level>1</D:sync-level>'
            "<D:prop><C:calendar-data/></D:prop></D:sync-collection>"):
        root = await dav.xml("REPORT", CAL, body, Depth="1")
        assert CAL + "fine.ics" in [h.text for h in root.findall("D:response/D:href", NS)]


async def test_concurrent_puts_keep_names_and_uids_unique(dav: Dav) -> None:
    for round_ in range(8):
        name = f"{CAL}race{round_}.ics"
        answers = await asyncio.gather(*[
            dav.request("PUT", name, event(f"race-{round_}@example.com", f"Version {i}"),
                        Content_Type="text/calendar") for i in range(4)])
        codes = sorted(a.status_code for a in answers)
        assert codes == [201, 204, 204, 204], (round_, codes)
        assert list(await etags(dav, CAL)).count(name) == 1, round_
        answers = await asyncio.gather(*[
            dav.request("PUT", f"{CAL}uid{round_}-{i}.ics", event(f"uid-{round_}@example.com"),
                        Content_Type="text/calendar") for i in range(4)])
        assert sorted(a.status_code for a in answers) == [201, 403, 403, 403], round_


async def test_a_body_that_is_not_utf8_is_transcoded_or_refused(dav: Dav) -> None:
    latin = event("latin@example.com", "Caf\u00e9 cr\u00e8me").encode("latin-1")
    for name, content_type in (("declared.ics", "text/calendar; charset=iso-8859-1"),
                               ("undeclared.ics", "text/calendar")):
        answer = await dav.request("PUT", CAL + name, latin.replace(b"latin@", name.encode()),
                                   Content_Type=content_type)
        if answer.status_code == 403:
            continue
        assert answer.status_code == 201, answer.status_code
        got = await dav.request("GET", CAL + name)
        charset = got.headers["content-type"].partition("charset=")[2] or "utf-8"
        assert "Caf\u00e9 cr\u00e8me" in got.content.decode(charset), name


async def test_concurrent_conditional_puts_let_exactly_one_win(dav: Dav) -> None:
    for round_ in range(6):
        path = f"{CAL}cond{round_}.ics"
        etag = (await put(dav, path, event(f"cond-{round_}@example.com"))).headers["etag"]
        answers = await asyncio.gather(*[
            dav.request("PUT", path, event(f"cond-{round_}@example.com", f"Edit {i}"),
                        Content_Type="text/calendar", If_Match=etag) for i in range(4)])
        assert sorted(a.status_code for a in answers) == [204, 412, 412, 412], round_


# -- changes through the store API (another protocol) ------------------------------------------

async def test_a_change_through_the_store_changes_the_etag_and_the_data(dav: Dav) -> None:
    path = CAL + "abcd1.ics"
    data = event("74855313FA803DA593CD579A@example.com")
    etag = (await put(dav, path, data)).headers["etag"]
    (mid,) = await message_ids(dav, int(Private.CALENDAR))
    mbox = await dav.host.store.open(ALICE)
    await mbox.set_message_props(mid, {T.PidTagSubject: "Changed in Outlook"})
    new_etag = (await etags(dav, CAL))[path]
    assert new_etag != etag
    answer = await dav.request("GET", path)
    assert answer.headers["etag"] == new_etag
    assert answer.content != data.encode()
    cal = Calendar.from_ical(answer.content)
    (comp,) = cal.walk("VEVENT")
    assert str(comp["SUMMARY"]) == "Changed in Outlook"
    assert str(comp["UID"]) == "74855313FA803DA593CD579A@example.com"
    # a conditional PUT with the client's old ETag now fails: no lost update
    await put(dav, path, data, status=412, If_Match=etag)
    again = await dav.request("GET", path)
    assert again.content == answer.content and again.headers["etag"] == new_etag


async def test_a_contact_changed_through_the_store_is_converted_again(dav: Dav) -> None:
    path = BOOK + "cyrus.vcf"
    data = vcard("cyrus-uid")
    etag = (await put(dav, path, data)).headers["etag"]
    (mid,) = await message_ids(dav, int(Private.CONTACTS))
    mbox = await dav.host.store.open(ALICE)
    await mbox.set_message_props(mid, {T.PidTagDisplayName: "Cyrus Changed"})
    answer = await dav.request("GET", path)
    assert answer.status_code == 200
    assert answer.headers["etag"] != etag
    assert answer.content != data.encode()
    assert b"BEGIN:VCARD" in answer.content and b"UID:cyrus-uid" in answer.content


async def test_an_event_made_through_the_store_is_gw_named(dav: Dav) -> None:
    data = event("made-in-outlook@example.com", "Made elsewhere")
    result = parse_calendar_report(data)
    assert not result.errors and len(result.messages) == 1
    mbox = await dav.host.store.open(ALICE)
    mid = await mbox.create_message(int(Private.CALENDAR), result.messages[0])
    path = f"{CAL}gw-{mid}.ics"
    listed = await etags(dav, CAL)
    assert list(listed) == [path]
    answer = await dav.request("GET", path)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/calendar")
    assert answer.headers["etag"] == listed[path]
    (comp,) = Calendar.from_ical(answer.content).walk("VEVENT")
    assert str(comp["UID"]) == "made-in-outlook@example.com"
    assert str(comp["SUMMARY"]) == "Made elsewhere"
    # the same id under another extension or in another collection names nothing
    assert (await dav.request("GET", f"{CAL}gw-{mid}.vcf")).status_code == 404
    assert (await dav.request("GET", f"{TASKS}gw-{mid}.ics")).status_code == 404
    # a client editing it keeps its name
    edited = event("made-in-outlook@example.com", "Edited by a DAV client")
    await put(dav, path, edited, status=204, If_Match=listed[path])
    assert list(await etags(dav, CAL)) == [path]
    assert (await dav.request("GET", path)).content == edited.encode()
    # and another PUT of its UID under a new name conflicts with that name
    answer = await dav.request("PUT", CAL + "dup.ics", edited, Content_Type="text/calendar")
    href = precondition(answer, 403, "C:no-uid-conflict").findtext("D:href", namespaces=NS)
    assert href == path


async def test_a_client_cannot_take_the_name_of_a_future_item(dav: Dav) -> None:
    mbox = await dav.host.store.open(ALICE)
    (probe,) = parse_calendar_report(event("probe@example.com")).messages
    first = await mbox.create_message(int(Private.CALENDAR), probe)
    answer = await dav.request("PUT", f"{CAL}gw-{first + 5}.ics", event("squatter@example.com"),
                               Content_Type="text/calendar")
    assert answer.status_code in (201, 403, 409)
    for i in range(8):
        (message,) = parse_calendar_report(event(f"outlook-{i}@example.com")).messages
        await mbox.create_message(int(Private.CALENDAR), message)
    listed = list(await etags(dav, CAL))
    assert len(listed) == len(set(listed)), sorted(listed)
    uids = set()
    for href in listed:  # every item can be read at its href
        (comp,) = Calendar.from_ical((await dav.request("GET", href)).content).walk("VEVENT")
        uids.add(str(comp["UID"]))
    expected = {"probe@example.com"} | {f"outlook-{i}@example.com" for i in range(8)}
    if answer.status_code == 201:
        expected.add("squatter@example.com")
    assert uids == expected


async def test_a_contact_made_through_the_store_is_gw_named(dav: Dav) -> None:
    (message,) = parse_vcards(vcard("outlook-contact", "Ann Other", "ann@example.com"))
    mbox = await dav.host.store.open(ALICE)
    mid = await mbox.create_message(int(Private.CONTACTS), message)
    path = f"{BOOK}gw-{mid}.vcf"
    assert list(await etags(dav, BOOK)) == [path]
    answer = await dav.request("GET", path)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/vcard")
    assert b"ann@example.com" in answer.content


async def test_a_reader_of_a_shared_calendar_cannot_change_it(dav: Dav) -> None:
    from gateway.store import permissions
    from gateway.store.rights import Rights

    path = CAL + "shared.ics"
    data = event("shared@example.com")
    await put(dav, path, data)
    mbox = await dav.host.store.open(ALICE)
    await mbox.write(permissions.set_acl, int(Private.CALENDAR), "bob@example.org",
                     int(Rights.READ_ANY | Rights.FOLDER_VISIBLE))
    bob = "bob@example.org"
    answer = await dav.request("GET", path, user=bob)
    assert answer.status_code == 200 and answer.content == data.encode()
    before = await snapshot(dav)
    for method, target, body in (("PUT", path, event("shared@example.com", "Bob was here")),
                                 ("PUT", CAL + "new.ics", event("bobs@example.com")),
                                 ("DELETE", path, ""), ("DELETE", CAL, "")):
        answer = await dav.request(method, target, body, user=bob, Content_Type="text/calendar")
        assert answer.status_code == 403, (method, target, answer.status_code)
    answer = await dav.request("PROPPATCH", CAL, '<D:propertyupdate xmlns:D="DAV:"><D:set>'
                               "<D:prop><D:displayname>Bob's</D:displayname></D:prop></D:set>"
                               "</D:propertyupdate>", user=bob)
    assert answer.status_code in (207, 403)
    answer = await dav.request("MOVE", path, user=bob, Destination=CAL + "moved.ics")
    assert answer.status_code == 403
    assert await snapshot(dav) == before
    assert (await dav.request("GET", path)).content == data.encode()


# -- preconditions ------------------------------------------------------------------------------

async def test_no_uid_conflict_names_the_holder(dav: Dav) -> None:
    await put(dav, CAL + "first.ics", event("shared-uid@example.com"))
    before = await snapshot(dav)
    answer = await dav.request("PUT", CAL + "second.ics", event("shared-uid@example.com", "B"),
                               Content_Type="text/calendar")
    href = precondition(answer, 403, "C:no-uid-conflict").findtext("D:href", namespaces=NS)
    assert href == CAL + "first.ics"
    assert await snapshot(dav) == before
    # the same UID in another calendar is fine
    assert (await dav.request("MKCALENDAR", HOME + "work/")).status_code == 201
    await put(dav, HOME + "work/second.ics", event("shared-uid@example.com"))


async def test_no_uid_conflict_in_an_address_book(dav: Dav) -> None:
    await put(dav, BOOK + "a.vcf", vcard("card-uid"))
    before = await snapshot(dav)
    answer = await dav.request("PUT", BOOK + "b.vcf", vcard("card-uid", "Other Person"),
                               Content_Type="text/vcard")
    href = precondition(answer, 403, "R:no-uid-conflict").findtext("D:href", namespaces=NS)
    assert href == BOOK + "a.vcf"
    assert await snapshot(dav) == before


async def test_overwriting_an_item_with_another_uid_is_refused(dav: Dav) -> None:
    await put(dav, CAL + "a.ics", event("first-uid@example.com"))
    before = await snapshot(dav)
    answer = await dav.request("PUT", CAL + "a.ics", event("second-uid@example.com"),
                               Content_Type="text/calendar")
    precondition(answer, 403, "C:no-uid-conflict")
    assert await snapshot(dav) == before


INVALID_CALENDAR_DATA = [
    ("garbage", "this is not iCalendar at all\r\n"),
    ("a vcard", vcard("x")),
    ("no END:VCALENDAR", event("cut@example.com").rsplit("END:VCALENDAR", 1)[0]),
    ("two calendars", event("x1@example.com") + event("x2@example.com")),
]
INVALID_OBJECTS = [
    ("METHOD", ics(EASTERN, vevent("m@example.com"), head="METHOD:REQUEST")),
    ("two UIDs", ics(EASTERN, vevent("u1@example.com"), vevent("u2@example.com"))),
    ("VEVENT and VTODO", ics(EASTERN, vevent("mix@example.com"), vtodo("mix@example.com"))),
    ("no component", ics(EASTERN)),
    ("no UID", ics("BEGIN:VEVENT\r\nDTSTAMP:20060206T001102Z\r\nDTSTART:20060102T100000Z\r\n"
                   "SUMMARY:x\r\nEND:VEVENT")),
]


async def test_invalid_calendar_data_is_refused_and_writes_nothing(dav: Dav) -> None:
    before = await snapshot(dav)
    for why, data in INVALID_CALENDAR_DATA:
        answer = await dav.request("PUT", CAL + "bad.ics", data, Content_Type="text/calendar")
        assert answer.status_code == 403, (why, answer.status_code)
        found = etree.fromstring(answer.content)
        assert found.find("C:valid-calendar-data", NS) is not None or \
            found.find("C:valid-calendar-object-resource", NS) is not None, (why, answer.text)
    for why, data in INVALID_OBJECTS:
        answer = await dav.request("PUT", CAL + "bad.ics", data, Content_Type="text/calendar")
        assert answer.status_code == 403, (why, answer.status_code)
        assert etree.fromstring(answer.content).find("C:valid-calendar-object-resource", NS) \
            is not None, (why, answer.text)
    assert await snapshot(dav) == before
    assert await etags(dav, CAL) == {}


async def test_binary_calendar_data_is_403_not_500(dav: Dav) -> None:
    before = await snapshot(dav)
    answer = await dav.request("PUT", CAL + "bad.ics", "\x00\x01\x02BEGIN:VCALENDAR\r\n",
                               Content_Type="text/calendar")
    precondition(answer, 403, "C:valid-calendar-data")
    assert await snapshot(dav) == before


async def test_a_truncated_vcard_is_refused(dav: Dav) -> None:
    before = await snapshot(dav)
    cut = vcard("cut").replace("END:VCARD\r\n", "")
    answer = await dav.request("PUT", BOOK + "cut.vcf", cut, Content_Type="text/vcard")
    precondition(answer, 403, "R:valid-address-data")
    assert await snapshot(dav) == before


async def test_components_a_collection_does_not_hold_are_refused(dav: Dav) -> None:
    before = await snapshot(dav)
    journal = ics("BEGIN:VJOURNAL\r\nUID:j@example.com\r\nDTSTAMP:20060206T001102Z\r\n"
                  "SUMMARY:Notes\r\nEND:VJOURNAL")
    for path, data in ((CAL + "t.ics", ics(vtodo("t@example.com"))),
                       (TASKS + "e.ics", event("e@example.com")),
                       (CAL + "j.ics", journal), (TASKS + "j.ics", journal)):
        answer = await dav.request("PUT", path, data, Content_Type="text/calendar")
        precondition(answer, 403, "C:supported-calendar-component")
    assert await snapshot(dav) == before


async def test_invalid_address_data_is_refused_and_writes_nothing(dav: Dav) -> None:
    before = await snapshot(dav)
    for why, data in (("garbage", "hello\r\n"), ("iCalendar", event("x@example.com")),
                      ("two cards", vcard("a1") + vcard("a2"))):
        answer = await dav.request("PUT", BOOK + "bad.vcf", data, Content_Type="text/vcard")
        assert answer.status_code == 403, (why, answer.status_code, answer.text)
        assert etree.fromstring(answer.content).find("R:valid-address-data", NS) is not None, why
    assert await snapshot(dav) == before


async def test_unsupported_media_types_are_refused(dav: Dav) -> None:
    before = await snapshot(dav)
    cases = [(CAL + "x.ics", event("x@example.com"), "application/json", "C"),
             (CAL + "x.ics", event("x@example.com"), "text/plain", "C"),
             (BOOK + "x.vcf", vcard("x"), "text/calendar", "R"),
             (BOOK + "x.vcf", vcard("x"), "application/octet-stream", "R")]
    for path, data, content_type, ns in cases:
        answer = await dav.request("PUT", path, data, Content_Type=content_type)
        if answer.status_code != 415:
            condition = "supported-calendar-data" if ns == "C" else "supported-address-data"
            precondition(answer, 403, f"{ns}:{condition}")
    assert await snapshot(dav) == before


async def test_put_to_a_collection_or_a_home_is_refused(dav: Dav) -> None:
    before = await snapshot(dav)
    for path in (CAL, HOME, BOOK, "/dav/"):
        answer = await dav.request("PUT", path, event("x@example.com"),
                                   Content_Type="text/calendar")
        assert answer.status_code in (403, 405, 409), (path, answer.status_code)
    assert await snapshot(dav) == before


async def test_put_without_a_parent_collection_is_409(dav: Dav) -> None:
    answer = await dav.request("PUT", HOME + "nowhere/x.ics", event("x@example.com"),
                               Content_Type="text/calendar")
    assert answer.status_code == 409


async def test_a_put_over_the_quota_is_507_and_writes_nothing(dav: Dav) -> None:
    mbox = await dav.host.store.open(ALICE)
    mbox.storage_limit = await mbox.total_size() + 100
    before = await snapshot(dav)
    for path, data in ((CAL + "q.ics", event("quota@example.com")), (BOOK + "q.vcf", vcard("q"))):
        answer = await dav.request("PUT", path, data, Content_Type=media(path))
        assert answer.status_code == 507, answer.text
        assert etree.fromstring(answer.content).find("D:quota-not-exceeded", NS) is not None
    assert await snapshot(dav) == before


# -- max-resource-size (a gateway with small limits) -------------------------------------------

@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[Dav]:
    async with dav_setup.running(tmp_path, "[dav]\nmax_resource_bytes = 2048\n") as client:
        yield client


async def test_max_resource_size_is_announced_and_enforced(small: Dav) -> None:
    body = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:'
            'caldav" xmlns:R="urn:ietf:params:xml:ns:carddav"><D:prop><C:max-resource-size/>'
            "<R:max-resource-size/></D:prop></D:propfind>")
    root = await small.xml("PROPFIND", CAL, body, Depth="0")
    assert root.findtext(".//C:max-resource-size", namespaces=NS) == "2048"
    root = await small.xml("PROPFIND", BOOK, body, Depth="0")
    assert root.findtext(".//R:max-resource-size", namespaces=NS) == "2048"
    before = await snapshot(small)
    long_text = "DESCRIPTION:" + "x" * 60 + "\r\n"
    big_event = ics(EASTERN, vevent("big@example.com", extra=long_text * 40))
    assert len(big_event) > 2048
    answer = await small.request("PUT", CAL + "big.ics", big_event, Content_Type="text/calendar")
    precondition(answer, 403, "C:max-resource-size")
    big_card = vcard("big").replace("END:VCARD", "NOTE:" + "y" * 3000 + "\r\nEND:VCARD")
    answer = await small.request("PUT", BOOK + "big.vcf", big_card, Content_Type="text/vcard")
    precondition(answer, 403, "R:max-resource-size")
    assert await snapshot(small) == before
    await put(small, CAL + "small.ics", event("small@example.com"))
