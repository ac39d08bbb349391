"""WebDAV methods of the DAV plugin in process: OPTIONS, PROPFIND (Depth 0, 1, infinity;
prop, allprop, propname), PROPPATCH (dead properties, protected properties, atomicity),
MKCALENDAR and extended MKCOL (event calendars, task lists, address books), DELETE of
items and collections, MOVE of items and GET of collections (RFC 4918, 4791, 5689, 6352)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from lxml import etree

from gateway.store import Private
from gateway.store import tags as T
from tests.unit import dav_setup
from tests.unit.dav_setup import (
    ALICE,
    BOOK,
    BOOKS,
    CAL,
    CS,
    HOME,
    NS,
    TASKS,
    A,
    C,
    D,
    Dav,
    R,
    event,
    ics,
    put,
    vcard,
)

dav = dav_setup.dav  # the fixture

ORIGIN = "https://mail.example.org"


# -- data (RFC 4791 Appendix B style) ----------------------------------------------------------

def todo(uid: str, summary: str = "Task #1") -> str:
    return ics(f"""BEGIN:VTODO
UID:{uid}
DTSTAMP:20060205T235335Z
DUE:20060106T120000Z
STATUS:NEEDS-ACTION
SUMMARY:{summary}
END:VTODO""")


# -- reading answers ---------------------------------------------------------------------------

@dataclass
class Answer:
    """One ``D:response``: its status (for status-only responses) and ``{prop: (code, el)}``."""

    status: int | None
    props: dict[str, tuple[int, Any]] = field(default_factory=dict)

    def ok(self, name: str) -> Any:
        code, elem = self.props[name]
        assert code == 200, (name, code)
        return elem

    def code(self, name: str) -> int | None:
        return self.props[name][0] if name in self.props else None


def code_of(line: str | None) -> int | None:
    return int(line.split()[1]) if line else None


def answers(root: etree._Element) -> dict[str, Answer]:
    out: dict[str, Answer] = {}
    for resp in root.findall("D:response", NS):
        href = resp.findtext("D:href", namespaces=NS)
        found = Answer(code_of(resp.findtext("D:status", namespaces=NS)))
        for stat in resp.findall("D:propstat", NS):
            code = code_of(stat.findtext("D:status", namespaces=NS))
            assert code is not None
            for prop in stat.find("D:prop", NS):
                found.props[prop.tag] = (code, prop)
        out[href] = found
    return out


def propfind(*names: str) -> str:
    body = "".join(f'<x:{n.split("}")[1]} xmlns:x="{n[1:].split("}")[0]}"/>' for n in names)
    return f'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>{body}</D:prop></D:propfind>'


def proppatch(set_xml: str = "", remove_xml: str = "") -> str:
    out = ('<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" '
           f'xmlns:C="{NS["C"]}" xmlns:A="{NS["A"]}" xmlns:X="urn:example:x">')
    if set_xml:
        out += f"<D:set><D:prop>{set_xml}</D:prop></D:set>"
    if remove_xml:
        out += f"<D:remove><D:prop>{remove_xml}</D:prop></D:remove>"
    return out + "</D:propertyupdate>"


def mkcalendar(name: str = "", comps: tuple[str, ...] = (), extra: str = "") -> str:
    props = f"<D:displayname>{name}</D:displayname>" if name else ""
    if comps:
        props += ("<C:supported-calendar-component-set>"
                  + "".join(f'<C:comp name="{c}"/>' for c in comps)
                  + "</C:supported-calendar-component-set>")
    return ('<?xml version="1.0"?><C:mkcalendar xmlns:D="DAV:" '
            f'xmlns:C="{NS["C"]}" xmlns:A="{NS["A"]}"><D:set><D:prop>{props}{extra}'
            "</D:prop></D:set></C:mkcalendar>")


def mkcol(types: str, props: str = "") -> str:
    return ('<?xml version="1.0"?><D:mkcol xmlns:D="DAV:" '
            f'xmlns:C="{NS["C"]}" xmlns:R="{NS["R"]}"><D:set><D:prop>'
            f"<D:resourcetype><D:collection/>{types}</D:resourcetype>{props}"
            "</D:prop></D:set></D:mkcol>")


async def listing(dav: Dav, path: str) -> dict[str, Answer]:
    root = await dav.xml("PROPFIND", path, propfind(D + "getetag", D + "resourcetype",
                                                     D + "displayname"), Depth="1")
    return answers(root)


async def folders(dav: Dav, owner: str = ALICE) -> dict[str, str]:
    """``{display name: container class}`` of the folders under the IPM subtree."""
    mbox = await dav.host.store.open(owner)
    out = {}
    for fid in await mbox.subfolders(int(Private.IPM_SUBTREE)):
        props = await mbox.folder(fid, [T.PidTagDisplayName, T.PidTagContainerClass])
        out[str(props.get(T.PidTagDisplayName))] = str(props.get(T.PidTagContainerClass) or "")
    return out


async def last_cn(dav: Dav, owner: str = ALICE) -> int:
    return await (await dav.host.store.open(owner)).last_change_number()


# -- OPTIONS ------------------------------------------------------------------------------------

async def test_options_advertises_dav_classes_and_methods(dav: Dav) -> None:
    for path in ("/dav/", CAL, BOOK, f"{CAL}nothing.ics"):
        answer = await dav.request("OPTIONS", path)
        assert answer.status_code == 200, path
        classes = {c.strip() for c in answer.headers["dav"].split(",")}
        assert {"1", "3", "calendar-access", "addressbook", "extended-mkcol"} <= classes
        allow = {m.strip() for m in answer.headers["allow"].split(",")}
        assert {"OPTIONS", "GET", "PUT", "DELETE", "PROPFIND", "PROPPATCH", "REPORT",
                "MKCALENDAR", "MKCOL", "MOVE"} <= allow
        assert "LOCK" not in allow and "2" not in classes


# -- PROPFIND -----------------------------------------------------------------------------------

async def test_propfind_depth0_calendar_properties(dav: Dav) -> None:
    root = await dav.xml("PROPFIND", CAL, propfind(
        D + "resourcetype", D + "displayname", CS + "getctag", D + "sync-token",
        C + "supported-calendar-component-set", D + "supported-report-set",
        D + "current-user-privilege-set", D + "owner", C + "supported-calendar-data",
        "{urn:example:x}nothing-like-this"), Depth="0")
    found = answers(root)
    assert list(found) == [CAL]
    calendar = found[CAL]
    types = {t.tag for t in calendar.ok(D + "resourcetype")}
    assert types == {D + "collection", C + "calendar"}
    assert calendar.ok(D + "displayname").text == "Calendar"
    assert calendar.ok(CS + "getctag").text
    assert calendar.ok(D + "sync-token").text
    comps = [c.get("name") for c in calendar.ok(C + "supported-calendar-component-set")]
    assert comps == ["VEVENT"]
    reports = {r.tag for r in calendar.ok(D + "supported-report-set").iter()
               if r.getparent() is not None and r.getparent().tag == D + "report"}
    assert {C + "calendar-multiget", C + "calendar-query", D + "sync-collection"} <= reports
    privileges = {p.tag for p in calendar.ok(D + "current-user-privilege-set").iter()
                  if p.getparent() is not None and p.getparent().tag == D + "privilege"}
    assert {D + "read", D + "write-content", D + "bind", D + "unbind"} <= privileges
    assert calendar.ok(D + "owner").findtext("D:href", namespaces=NS) \
        == f"/dav/principals/users/{ALICE}/"
    assert calendar.code("{urn:example:x}nothing-like-this") == 404


async def test_propfind_depth1_home_lists_calendar_and_task_list(dav: Dav) -> None:
    root = await dav.xml("PROPFIND", HOME, propfind(
        D + "resourcetype", C + "supported-calendar-component-set"), Depth="1")
    found = answers(root)
    assert {HOME, CAL, TASKS} <= set(found)
    assert {t.tag for t in found[HOME].ok(D + "resourcetype")} == {D + "collection"}
    comps = [c.get("name") for c in found[TASKS].ok(C + "supported-calendar-component-set")]
    assert comps == ["VTODO"]
    books = answers(await dav.xml("PROPFIND", BOOKS, propfind(D + "resourcetype"), Depth="1"))
    assert {t.tag for t in books[BOOK].ok(D + "resourcetype")} == {D + "collection",
                                                                     R + "addressbook"}
    assert CAL not in books


async def test_propfind_depth1_collection_lists_items_with_their_etags(dav: Dav) -> None:
    tag1 = await put(dav, CAL + "one.ics", event("one@example.com"))
    tag2 = await put(dav, CAL + "two.ics", event("two@example.com", "Event #2"))
    root = await dav.xml("PROPFIND", CAL, propfind(
        D + "getetag", D + "getcontenttype", D + "resourcetype", D + "getcontentlength"),
        Depth="1")
    found = answers(root)
    assert set(found) == {CAL, CAL + "one.ics", CAL + "two.ics"}
    assert found[CAL + "one.ics"].ok(D + "getetag").text == tag1
    assert found[CAL + "two.ics"].ok(D + "getetag").text == tag2
    assert found[CAL + "one.ics"].ok(D + "getcontenttype").text.startswith("text/calendar")
    assert len(found[CAL + "one.ics"].ok(D + "resourcetype")) == 0
    assert int(found[CAL + "one.ics"].ok(D + "getcontentlength").text) \
        == len(event("one@example.com").encode())
    item = answers(await dav.xml("PROPFIND", CAL + "one.ics", propfind(D + "getetag"),
                                 Depth="0"))
    assert list(item) == [CAL + "one.ics"]


async def test_propfind_depth_infinity_and_bad_requests(dav: Dav) -> None:
    """RFC 4918 9.1: no Depth header means infinity; refusing it is 403 finite-depth."""
    for headers in ({"Depth": "infinity"}, {}):
        root = await dav.xml("PROPFIND", HOME, propfind(D + "resourcetype"), status=403,
                             **headers)
        assert root.tag == D + "error"
        assert root.find("D:propfind-finite-depth", NS) is not None
    answer = await dav.request("PROPFIND", CAL, propfind(D + "getetag"), Depth="2")
    assert answer.status_code == 400
    answer = await dav.request("PROPFIND", CAL, '<D:propertyupdate xmlns:D="DAV:"/>', Depth="0")
    assert answer.status_code == 400


async def test_propfind_allprop_and_empty_body(dav: Dav) -> None:
    await put(dav, CAL + "one.ics", event("one@example.com"))
    allprop = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
    for body in (allprop, ""):
        found = answers(await dav.xml("PROPFIND", CAL, body, Depth="1"))
        assert set(found) == {CAL, CAL + "one.ics"}
        calendar, item = found[CAL], found[CAL + "one.ics"]
        assert calendar.ok(D + "displayname").text == "Calendar"
        assert C + "calendar" in {t.tag for t in calendar.ok(D + "resourcetype")}
        assert item.ok(D + "getetag").text
        assert item.ok(D + "getcontenttype").text.startswith("text/calendar")
        # allprop does not answer with 404s, and never carries the data
        assert all(code == 200 for res in found.values() for code, _ in res.props.values())
        assert C + "calendar-data" not in item.props


async def test_propfind_propname_gives_names_without_values(dav: Dav) -> None:
    await put(dav, CAL + "one.ics", event("one@example.com"))
    body = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
    found = answers(await dav.xml("PROPFIND", CAL, body, Depth="1"))
    for res in found.values():
        assert D + "resourcetype" in res.props
        for _, elem in res.props.values():
            assert len(elem) == 0 and not (elem.text or "").strip()
    assert D + "getetag" in found[CAL + "one.ics"].props


async def test_propfind_of_what_does_not_exist_is_404(dav: Dav) -> None:
    for path in (CAL + "missing.ics", HOME + "nowhere/", HOME + "nowhere/x.ics"):
        answer = await dav.request("PROPFIND", path, propfind(D + "getetag"), Depth="0")
        assert answer.status_code == 404, path


async def test_propfind_root_finds_the_current_user_principal(dav: Dav) -> None:
    found = answers(await dav.xml("PROPFIND", "/dav/", propfind(D + "current-user-principal"),
                                  Depth="0"))
    assert found["/dav/"].ok(D + "current-user-principal").findtext("D:href", namespaces=NS) \
        == f"/dav/principals/users/{ALICE}/"


async def test_a_folder_name_with_control_characters_does_not_break_propfind(dav: Dav) -> None:
    mbox = await dav.host.store.open(ALICE)
    await mbox.create_folder(int(Private.IPM_SUBTREE), "Bad\x0bName\x1b", "IPF.Appointment")
    answer = await dav.request("PROPFIND", HOME, propfind(D + "displayname"), Depth="1")
    assert answer.status_code == 207
    assert CAL in answers(etree.fromstring(answer.content))


async def test_every_item_of_a_collection_has_its_own_href(dav: Dav) -> None:
    from gateway.store import dav as store_dav

    assert (await dav.request("MKCALENDAR", HOME + "work/")).status_code == 201
    await put(dav, CAL + "a.ics", event("first@example.com"))
    await put(dav, HOME + "work/a.ics", event("second@example.com"))
    mbox = await dav.host.store.open(ALICE)
    for fid in await mbox.subfolders(int(Private.IPM_SUBTREE)):
        if fid != int(Private.CALENDAR):
            for row in await mbox.read(store_dav.items, fid):
                await mbox.move_messages([row.id], int(Private.CALENDAR))  # as Outlook would
    root = await dav.xml("PROPFIND", CAL, propfind(D + "getetag"), Depth="1")
    hrefs = [h.text for h in root.findall("D:response/D:href", NS)]
    assert len(hrefs) == len(set(hrefs)) == 3
    uids = set()
    for href in hrefs[1:]:
        answer = await dav.request("GET", href)
        uids.add(answer.text.split("UID:")[1].split()[0])
    assert uids == {"first@example.com", "second@example.com"}


async def test_getctag_and_sync_token_follow_changes_to_items_only(dav: Dav) -> None:
    async def state() -> tuple[str, str]:
        found = answers(await dav.xml("PROPFIND", CAL, propfind(CS + "getctag", D + "sync-token"),
                                      Depth="0"))[CAL]
        return found.ok(CS + "getctag").text, found.ok(D + "sync-token").text

    seen = [await state()]
    await put(dav, CAL + "one.ics", event("one@example.com"))
    seen.append(await state())
    mbox = await dav.host.store.open(ALICE)
    from gateway.convert.ical_in import parse_calendar_report

    (message,) = parse_calendar_report(event("outlook@example.com")).messages
    await mbox.create_message(int(Private.CALENDAR), message)
    seen.append(await state())
    # reads (a fresh conversion is kept) change nothing
    listed = await listing(dav, CAL)
    for href in listed:
        if href != CAL:
            assert (await dav.request("GET", href)).status_code == 200
    assert await state() == seen[-1]
    assert (await dav.request("DELETE", CAL + "one.ics")).status_code == 204
    seen.append(await state())
    assert len({ctag for ctag, _ in seen}) == len(seen)
    assert len({token for _, token in seen}) == len(seen)


# -- PROPPATCH ----------------------------------------------------------------------------------

async def test_proppatch_sets_and_removes_collection_properties(dav: Dav) -> None:
    root = await dav.xml("PROPPATCH", CAL, proppatch(
        "<D:displayname>Work</D:displayname>"
        "<C:calendar-description>Meetings and such</C:calendar-description>"
        "<A:calendar-color>#FF0000FF</A:calendar-color>"
        "<X:custom><X:nested a='1'>text</X:nested></X:custom>"))
    found = answers(root)[CAL]
    for name in (D + "displayname", C + "calendar-description", A + "calendar-color",
                 "{urn:example:x}custom"):
        assert found.code(name) == 200, name
    after = answers(await dav.xml("PROPFIND", CAL, propfind(
        D + "displayname", C + "calendar-description", A + "calendar-color",
        "{urn:example:x}custom"), Depth="0"))[CAL]
    assert after.ok(D + "displayname").text == "Work"
    assert after.ok(C + "calendar-description").text == "Meetings and such"
    assert after.ok(A + "calendar-color").text == "#FF0000FF"
    nested = after.ok("{urn:example:x}custom").find("{urn:example:x}nested")
    assert nested is not None and nested.get("a") == "1" and nested.text == "text"
    assert "Work" in await folders(dav)  # the store's folder was renamed: Outlook sees it too
    root = await dav.xml("PROPPATCH", CAL, proppatch(
        remove_xml="<A:calendar-color/><C:calendar-description/>"))
    assert answers(root)[CAL].code(A + "calendar-color") == 200
    after = answers(await dav.xml("PROPFIND", CAL, propfind(
        A + "calendar-color", C + "calendar-description"), Depth="0"))[CAL]
    assert after.code(A + "calendar-color") == 404
    assert after.code(C + "calendar-description") == 404


PROTECTED = [
    "<D:getetag>\"1\"</D:getetag>",
    "<D:resourcetype><D:collection/></D:resourcetype>",
    '<C:supported-calendar-component-set><C:comp name="VTODO"/>'
    "</C:supported-calendar-component-set>",
    "<D:sync-token>x</D:sync-token>",
]


async def test_proppatch_with_a_protected_property_changes_nothing(dav: Dav) -> None:
    """RFC 4918 9.2: the whole PROPPATCH fails; the protected property is 403, the others
    424 (Failed Dependency), and nothing is changed."""
    for protected in PROTECTED:
        before = await last_cn(dav)
        root = await dav.xml("PROPPATCH", CAL, proppatch(
            f"<D:displayname>Renamed</D:displayname>{protected}"
            "<A:calendar-color>#00FF00FF</A:calendar-color>"))
        found = answers(root)[CAL]
        codes = {name: code for name, (code, _) in found.props.items()}
        assert codes.pop(D + "displayname") == 424, protected
        assert codes.pop(A + "calendar-color") == 424, protected
        assert set(codes.values()) == {403}, protected
        after = answers(await dav.xml("PROPFIND", CAL, propfind(
            D + "displayname", A + "calendar-color", C + "supported-calendar-component-set"),
            Depth="0"))[CAL]
        assert after.ok(D + "displayname").text == "Calendar"
        assert after.code(A + "calendar-color") == 404
        assert [c.get("name") for c in after.ok(C + "supported-calendar-component-set")] \
            == ["VEVENT"]
        assert await last_cn(dav) == before, protected


async def test_calendar_timezone_must_be_one_vtimezone(dav: Dav) -> None:
    before = await last_cn(dav)
    for value in ("not a calendar", ics("BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT")):
        root = await dav.xml("PROPPATCH", CAL, proppatch(
            f"<C:calendar-timezone><![CDATA[{value}]]></C:calendar-timezone>"))
        assert answers(root)[CAL].code(C + "calendar-timezone") == 403, value
        answer = await dav.request("MKCALENDAR", HOME + "tz/", mkcalendar(
            "TZ", (), f"<C:calendar-timezone><![CDATA[{value}]]></C:calendar-timezone>"))
        assert answer.status_code == 403, value
    assert await last_cn(dav) == before
    zone = ics("BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\n"
               "DTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
               "END:STANDARD\r\nEND:VTIMEZONE")
    root = await dav.xml("PROPPATCH", CAL, proppatch(
        f"<C:calendar-timezone><![CDATA[{zone}]]></C:calendar-timezone>"))
    assert answers(root)[CAL].code(C + "calendar-timezone") == 200


async def test_concurrent_proppatches_keep_every_property(dav: Dav) -> None:
    import asyncio

    for round_ in range(4):
        names = [f"p{round_}x{i}" for i in range(4)]
        done = await asyncio.gather(*[dav.request("PROPPATCH", CAL, proppatch(
            f"<X:{name}>value</X:{name}>")) for name in names])
        assert [a.status_code for a in done] == [207] * 4
        found = answers(await dav.xml("PROPFIND", CAL, propfind(
            *[f"{{urn:example:x}}{name}" for name in names]), Depth="0"))[CAL]
        assert [found.code(f"{{urn:example:x}}{name}") for name in names] == [200] * 4, round_


async def test_oversized_dead_properties_are_refused_and_write_nothing(dav: Dav) -> None:
    before = await last_cn(dav)
    big = "<X:notes>" + "n" * 70_000 + "</X:notes>"
    answer = await dav.request("PROPPATCH", CAL, proppatch(big))
    assert answer.status_code in (207, 507), answer.status_code
    if answer.status_code == 207:
        assert answers(etree.fromstring(answer.content))[CAL].code("{urn:example:x}notes") \
            == 507
    many = "".join(f"<X:p{i}>{'v' * 100}</X:p{i}>" for i in range(1000))
    answer = await dav.request("PROPPATCH", CAL, proppatch(many))
    assert answer.status_code in (207, 507), answer.status_code
    big_declared = big.replace("<X:notes>", '<X:notes xmlns:X="urn:example:x">')
    answer = await dav.request("MKCALENDAR", HOME + "big/", mkcalendar("Big", (), big_declared))
    assert answer.status_code in (403, 507), answer.status_code
    assert await last_cn(dav) == before
    assert HOME + "big/" not in await listing(dav, HOME)


async def test_proppatch_of_an_item_or_home_is_refused(dav: Dav) -> None:
    await put(dav, CAL + "one.ics", event("one@example.com"))
    before = await last_cn(dav)
    for path in (CAL + "one.ics", HOME):
        answer = await dav.request("PROPPATCH", path,
                                   proppatch("<D:displayname>x</D:displayname>"))
        assert answer.status_code in (207, 403, 405), answer.text
        if answer.status_code == 207:
            found = answers(etree.fromstring(answer.content))
            assert {code for code, _ in next(iter(found.values())).props.values()} == {403}
    assert await last_cn(dav) == before


async def test_proppatch_malformed_body_is_400(dav: Dav) -> None:
    for body in ('<D:propfind xmlns:D="DAV:"/>', "<D:propertyupdate xmlns:D='DAV:'>", ""):
        answer = await dav.request("PROPPATCH", CAL, body)
        assert answer.status_code == 400, body


async def test_a_displayname_another_folder_has_is_kept_as_given(dav: Dav) -> None:
    answer = await dav.request("PROPPATCH", CAL, proppatch("<D:displayname>Inbox</D:displayname>"))
    assert answer.status_code == 207, answer.text
    code = answers(etree.fromstring(answer.content))[CAL].code(D + "displayname")
    assert code in (200, 409)
    if code == 200:
        found = answers(await dav.xml("PROPFIND", CAL, propfind(D + "displayname"), Depth="0"))
        assert found[CAL].ok(D + "displayname").text == "Inbox"
    assert (await dav.request("MKCALENDAR", HOME + "w/", mkcalendar("Inbox"))).status_code \
        == 201
    found = answers(await dav.xml("PROPFIND", HOME + "w/", propfind(D + "displayname"),
                                  Depth="0"))
    assert found[HOME + "w/"].ok(D + "displayname").text == "Inbox"


# -- MKCALENDAR / extended MKCOL ---------------------------------------------------------------

async def test_mkcalendar_creates_an_event_calendar_with_its_properties(dav: Dav) -> None:
    work = HOME + "work/"
    answer = await dav.request("MKCALENDAR", work, mkcalendar(
        "Work", ("VEVENT",), "<C:calendar-description>Office</C:calendar-description>"
        "<A:calendar-color>#0000FFFF</A:calendar-color>"))
    assert answer.status_code == 201, answer.text
    found = answers(await dav.xml("PROPFIND", HOME, propfind(
        D + "resourcetype", D + "displayname", C + "calendar-description", A + "calendar-color",
        C + "supported-calendar-component-set"), Depth="1"))
    assert work in found
    assert {t.tag for t in found[work].ok(D + "resourcetype")} == {D + "collection",
                                                                     C + "calendar"}
    assert found[work].ok(D + "displayname").text == "Work"
    assert found[work].ok(C + "calendar-description").text == "Office"
    assert found[work].ok(A + "calendar-color").text == "#0000FFFF"
    assert [c.get("name") for c in found[work].ok(C + "supported-calendar-component-set")] \
        == ["VEVENT"]
    assert (await folders(dav))["Work"] == "IPF.Appointment"
    await put(dav, work + "e.ics", event("e@example.com"))
    answer = await dav.request("PUT", work + "t.ics", todo("t@example.com"),
                               Content_Type="text/calendar")
    assert answer.status_code == 403
    assert etree.fromstring(answer.content).find("C:supported-calendar-component", NS) \
        is not None


async def test_mkcalendar_without_body_makes_an_appointment_folder_for_every_kind(
        dav: Dav) -> None:
    answer = await dav.request("MKCALENDAR", HOME + "plain/")
    assert answer.status_code == 201, answer.text
    found = answers(await dav.xml("PROPFIND", HOME + "plain/", propfind(
        C + "supported-calendar-component-set"), Depth="0"))
    assert [c.get("name") for c in found[HOME + "plain/"].ok(
        C + "supported-calendar-component-set")] == ["VEVENT", "VTODO", "VJOURNAL"]
    mbox = await dav.host.store.open(ALICE)
    plain = await mbox.find_folder(int(Private.IPM_SUBTREE), "plain")
    assert plain is not None
    props = await mbox.folder(plain, [T.PidTagContainerClass])
    assert props[T.PidTagContainerClass] == "IPF.Appointment"


@pytest.mark.parametrize("method", ["MKCALENDAR", "MKCOL"])
async def test_a_vtodo_only_calendar_becomes_a_task_folder(dav: Dav, method: str) -> None:
    todos = HOME + "chores/"
    body = mkcalendar("Chores", ("VTODO",)) if method == "MKCALENDAR" else mkcol(
        "<C:calendar/>", '<D:displayname>Chores</D:displayname><C:supported-calendar-'
        'component-set><C:comp name="VTODO"/></C:supported-calendar-component-set>')
    answer = await dav.request(method, todos, body)
    assert answer.status_code == 201, answer.text
    assert (await folders(dav))["Chores"] == "IPF.Task"
    found = answers(await dav.xml("PROPFIND", todos, propfind(
        C + "supported-calendar-component-set"), Depth="0"))
    assert [c.get("name") for c in found[todos].ok(C + "supported-calendar-component-set")] \
        == ["VTODO"]
    await put(dav, todos + "t.ics", todo("t@example.com"))
    answer = await dav.request("PUT", todos + "e.ics", event("e@example.com"),
                               Content_Type="text/calendar")
    assert answer.status_code == 403


async def test_extended_mkcol_creates_an_address_book(dav: Dav) -> None:
    friends = BOOKS + "friends/"
    answer = await dav.request("MKCOL", friends, mkcol(
        "<R:addressbook/>", "<D:displayname>Friends</D:displayname>"
        "<R:addressbook-description>People I like</R:addressbook-description>"))
    assert answer.status_code == 201, answer.text
    assert (await folders(dav))["Friends"] == "IPF.Contact"
    found = answers(await dav.xml("PROPFIND", BOOKS, propfind(
        D + "resourcetype", D + "displayname", R + "addressbook-description"), Depth="1"))
    assert {t.tag for t in found[friends].ok(D + "resourcetype")} == {D + "collection",
                                                                        R + "addressbook"}
    assert found[friends].ok(D + "displayname").text == "Friends"
    assert found[friends].ok(R + "addressbook-description").text == "People I like"
    await put(dav, friends + "c.vcf", vcard("c@example.com"))


REFUSED_CREATIONS = [
    ("MKCALENDAR", HOME + "calendar/", mkcalendar("Again")),            # exists
    ("MKCALENDAR", CAL + "deeper/", mkcalendar("Nested")),              # not in a home
    ("MKCALENDAR", HOME + "inbox/", mkcalendar("Inbox")),               # reserved
    ("MKCALENDAR", BOOKS + "cal/", mkcalendar("Wrong home")),           # address book home
    ("MKCOL", HOME + "book/", mkcol("<R:addressbook/>")),               # wrong home
    ("MKCOL", HOME + "plain/", None),                                   # plain collection
    ("MKCALENDAR", HOME + "journal/", mkcalendar("J", ("VJOURNAL",))),  # exists
    ("MKCALENDAR", HOME + "odd/", mkcalendar("M", ("VEVENT", "VAVAILABILITY"))),  # unknown
    ("MKCALENDAR", HOME + "bad/", mkcalendar("P", (), "<D:getetag>x</D:getetag>")),
    ("MKCALENDAR", "/dav/calendars/bob@example.org/stolen/", mkcalendar("Mine now")),
]


async def test_refused_collection_creation_writes_nothing(dav: Dav) -> None:
    for method, path, body in REFUSED_CREATIONS:
        before = (await folders(dav), await folders(dav, "bob@example.org"), await last_cn(dav))
        answer = await dav.request(method, path, body)
        assert answer.status_code in (403, 404, 405, 409), (path, answer.text)
        after = (await folders(dav), await folders(dav, "bob@example.org"), await last_cn(dav))
        assert after == before, path


async def test_concurrent_mkcalendars_of_one_url_make_one_collection(dav: Dav) -> None:
    import asyncio

    for round_ in range(4):
        done = await asyncio.gather(*[dav.request(
            "MKCALENDAR", f"{HOME}w{round_}/", mkcalendar(f"W{round_}")) for _ in range(4)])
        assert sorted(a.status_code for a in done) == [201, 405, 405, 405], round_
        assert [n for n in await folders(dav) if n.startswith(f"W{round_}")] == [f"W{round_}"]


async def test_mkcalendar_on_an_existing_collection_is_405_resource_must_be_null(
        dav: Dav) -> None:
    answer = await dav.request("MKCALENDAR", CAL, mkcalendar("Again"))
    assert answer.status_code == 405
    assert etree.fromstring(answer.content).find("D:resource-must-be-null", NS) is not None


async def test_a_calendar_made_without_a_component_set_takes_every_kind(dav: Dav) -> None:
    """Thunderbird names no component set and keeps tasks beside events; Outlook's own
    folders stay one kind each."""
    mixed = HOME + "mixed/"
    assert (await dav.request("MKCALENDAR", mixed, mkcalendar("Mixed"))).status_code == 201
    found = answers(await dav.xml("PROPFIND", mixed, propfind(
        C + "supported-calendar-component-set"), Depth="0"))[mixed]
    assert [c.get("name") for c in found.ok(C + "supported-calendar-component-set")] == \
        ["VEVENT", "VTODO", "VJOURNAL"]
    todo = ics("BEGIN:VTODO\r\nUID:mixed-todo@example.com\r\nDTSTAMP:20240101T000000Z\r\n"
               "SUMMARY:in a calendar\r\nEND:VTODO")
    for path, body in ((mixed + "t.ics", todo), (mixed + "e.ics", event("mixed-ev@example.com"))):
        answer = await dav.request("PUT", path, body, Content_Type="text/calendar")
        assert answer.status_code == 201, answer.text
    answer = await dav.request("PUT", CAL + "t.ics", todo, Content_Type="text/calendar")
    assert answer.status_code == 403  # the Calendar folder holds events only
    moved = await dav.request("MOVE", mixed + "t.ics", Destination=CAL + "t.ics")
    assert moved.status_code == 403
    assert (await dav.request("MOVE", mixed + "t.ics", Destination=TASKS + "t.ics")).status_code \
        == 201


async def test_mkcalendar_with_a_component_set_it_cannot_hold_fails(dav: Dav) -> None:
    answer = await dav.request("MKCALENDAR", HOME + "both/",
                               mkcalendar("Both", ("VEVENT", "VTODO")))
    if answer.status_code == 201:
        found = answers(await dav.xml("PROPFIND", HOME + "both/", propfind(
            C + "supported-calendar-component-set"), Depth="0"))[HOME + "both/"]
        comps = {c.get("name") for c in found.ok(C + "supported-calendar-component-set")}
        assert comps == {"VEVENT", "VTODO"}
    else:
        assert answer.status_code == 403
        assert "Both" not in await folders(dav)


# -- DELETE -------------------------------------------------------------------------------------

async def test_delete_of_an_item(dav: Dav) -> None:
    etag = await put(dav, CAL + "one.ics", event("one@example.com"))
    answer = await dav.request("DELETE", CAL + "one.ics", If_Match='"nope"')
    assert answer.status_code == 412
    assert (await dav.request("GET", CAL + "one.ics")).status_code == 200
    answer = await dav.request("DELETE", CAL + "one.ics", If_Match=etag)
    assert answer.status_code == 204
    assert (await dav.request("GET", CAL + "one.ics")).status_code == 404
    assert CAL + "one.ics" not in await listing(dav, CAL)
    assert (await dav.request("DELETE", CAL + "one.ics")).status_code == 404
    # a later PUT of the same UID is a new item, not a conflict with the deleted one
    await put(dav, CAL + "one.ics", event("one@example.com"))


async def test_delete_of_a_vcard(dav: Dav) -> None:
    await put(dav, BOOK + "c.vcf", vcard("c@example.com"))
    assert (await dav.request("DELETE", BOOK + "c.vcf")).status_code == 204
    assert BOOK + "c.vcf" not in await listing(dav, BOOK)


async def test_delete_of_a_collection_a_client_made(dav: Dav) -> None:
    work = HOME + "work/"
    assert (await dav.request("MKCALENDAR", work, mkcalendar("Work"))).status_code == 201
    await put(dav, work + "e.ics", event("e@example.com"))
    answer = await dav.request("DELETE", work)
    assert answer.status_code == 204
    assert work not in await listing(dav, HOME)
    assert (await dav.request("PROPFIND", work, propfind(D + "getetag"),
                              Depth="0")).status_code == 404
    assert (await dav.request("GET", work + "e.ics")).status_code == 404
    # the name is free again
    assert (await dav.request("MKCALENDAR", work, mkcalendar("Work"))).status_code == 201


async def test_default_folders_and_homes_cannot_be_deleted(dav: Dav) -> None:
    await put(dav, CAL + "keep.ics", event("keep@example.com"))
    for path in (CAL, TASKS, BOOK, HOME, BOOKS):
        before = (await folders(dav), await last_cn(dav))
        answer = await dav.request("DELETE", path)
        assert answer.status_code in (403, 405), (path, answer.text)
        assert (await folders(dav), await last_cn(dav)) == before, path
    assert (await dav.request("GET", CAL + "keep.ics")).status_code == 200


# -- MOVE ---------------------------------------------------------------------------------------

async def test_move_of_an_item_to_another_calendar(dav: Dav) -> None:
    work = HOME + "work/"
    assert (await dav.request("MKCALENDAR", work, mkcalendar("Work"))).status_code == 201
    await put(dav, CAL + "a.ics", event("moving@example.com", "Moving"))
    answer = await dav.request("MOVE", CAL + "a.ics", Destination=ORIGIN + work + "b.ics")
    assert answer.status_code == 201, answer.text
    assert (await dav.request("GET", CAL + "a.ics")).status_code == 404
    moved = await dav.request("GET", work + "b.ics")
    assert moved.status_code == 200
    assert b"UID:moving@example.com" in moved.content and b"Moving" in moved.content
    assert set(await listing(dav, work)) == {work, work + "b.ics"}
    assert set(await listing(dav, CAL)) == {CAL}


async def test_move_renames_an_item_in_its_calendar(dav: Dav) -> None:
    await put(dav, CAL + "a.ics", event("rename@example.com"))
    answer = await dav.request("MOVE", CAL + "a.ics", Destination=CAL + "b.ics")
    assert answer.status_code == 201, answer.text
    assert set(await listing(dav, CAL)) == {CAL, CAL + "b.ics"}
    assert b"UID:rename@example.com" in (await dav.request("GET", CAL + "b.ics")).content


async def test_move_keeps_the_bytes_of_the_item(dav: Dav) -> None:
    data = ics("""BEGIN:VEVENT
UID:fidelity@example.com
DTSTAMP:20060206T001102Z
DTSTART:20060102T150000Z
DURATION:PT1H
SUMMARY:Keep me
X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC
X-EXAMPLE-THING;X-PARAM=1:value
END:VEVENT""")
    card = vcard("fidelity-card").replace("END:VCARD", "X-EXAMPLE-PET:cat\r\nEND:VCARD")
    await put(dav, CAL + "a.ics", data)
    await put(dav, BOOK + "a.vcf", card)
    assert (await dav.request("MKCALENDAR", HOME + "work/")).status_code == 201
    for source, destination, body in ((CAL + "a.ics", HOME + "work/a.ics", data),
                                      (HOME + "work/a.ics", HOME + "work/b.ics", data),
                                      (BOOK + "a.vcf", BOOK + "b.vcf", card)):
        answer = await dav.request("MOVE", source, Destination=destination)
        assert answer.status_code == 201, answer.text
        assert (await dav.request("GET", destination)).content == body.encode(), destination


async def test_move_onto_an_existing_item_honours_overwrite(dav: Dav) -> None:
    await put(dav, CAL + "a.ics", event("a@example.com", "A"))
    await put(dav, CAL + "b.ics", event("b@example.com", "B"))
    before = await last_cn(dav)
    answer = await dav.request("MOVE", CAL + "a.ics", Destination=CAL + "b.ics", Overwrite="F")
    assert answer.status_code == 412
    assert await last_cn(dav) == before
    answer = await dav.request("MOVE", CAL + "a.ics", Destination=CAL + "b.ics", Overwrite="T")
    assert answer.status_code == 204, answer.text
    assert set(await listing(dav, CAL)) == {CAL, CAL + "b.ics"}
    assert b"UID:a@example.com" in (await dav.request("GET", CAL + "b.ics")).content


async def test_refused_moves_leave_the_item_in_place(dav: Dav) -> None:
    await put(dav, CAL + "a.ics", event("a@example.com"))
    for destination in (
            "/dav/calendars/bob@example.org/calendar/x.ics",   # another store
            BOOK + "x.vcf",                                    # another kind of collection
            HOME + "nowhere/x.ics",                            # no such collection
            HOME + "work2/",                                   # not an item
            "",                                                # no Destination
    ):
        before = (await last_cn(dav), await last_cn(dav, "bob@example.org"))
        headers = {"Destination": destination} if destination else {}
        answer = await dav.request("MOVE", CAL + "a.ics", **headers)
        assert 400 <= answer.status_code < 600 and answer.status_code != 500, answer.text
        assert (await last_cn(dav), await last_cn(dav, "bob@example.org")) == before
        assert (await dav.request("GET", CAL + "a.ics")).status_code == 200


async def test_move_of_an_event_into_a_task_list_is_refused(dav: Dav) -> None:
    await put(dav, CAL + "a.ics", event("a@example.com"))
    answer = await dav.request("MOVE", CAL + "a.ics", Destination=TASKS + "a.ics")
    assert answer.status_code == 403
    assert etree.fromstring(answer.content).find("C:supported-calendar-component", NS) \
        is not None
    assert (await dav.request("GET", CAL + "a.ics")).status_code == 200


async def test_move_onto_a_uid_already_in_the_target_is_refused(dav: Dav) -> None:
    work = HOME + "work/"
    assert (await dav.request("MKCALENDAR", work, mkcalendar("Work"))).status_code == 201
    await put(dav, CAL + "a.ics", event("same@example.com"))
    await put(dav, work + "other.ics", event("same@example.com"))
    answer = await dav.request("MOVE", CAL + "a.ics", Destination=work + "a.ics")
    assert answer.status_code == 403
    error = etree.fromstring(answer.content)
    assert error.findtext("C:no-uid-conflict/D:href", namespaces=NS) == work + "other.ics"
    assert (await dav.request("GET", CAL + "a.ics")).status_code == 200


async def test_move_onto_itself_is_403(dav: Dav) -> None:
    await put(dav, CAL + "a.ics", event("a@example.com"))
    answer = await dav.request("MOVE", CAL + "a.ics", Destination=CAL + "a.ics")
    assert answer.status_code == 403
    assert (await dav.request("GET", CAL + "a.ics")).status_code == 200


async def test_move_of_a_collection_is_refused(dav: Dav) -> None:
    assert (await dav.request("MKCALENDAR", HOME + "work/", mkcalendar("Work"))).status_code \
        == 201
    answer = await dav.request("MOVE", HOME + "work/", Destination=HOME + "office/")
    assert answer.status_code in (403, 405, 501)
    assert HOME + "work/" in await listing(dav, HOME)


# -- GET of collections -------------------------------------------------------------------------

async def test_get_of_a_calendar_is_the_whole_calendar(dav: Dav) -> None:
    await put(dav, CAL + "one.ics", event("one@example.com", "First"))
    await put(dav, CAL + "two.ics", event("two@example.com", "Second"))
    answer = await dav.request("GET", CAL)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/calendar")
    from icalendar import Calendar

    cal = Calendar.from_ical(answer.content)
    uids = sorted(str(c["UID"]) for c in cal.walk("VEVENT"))
    assert uids == ["one@example.com", "two@example.com"]
    head = await dav.request("HEAD", CAL)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(answer.content)


async def test_get_of_an_address_book_is_its_vcards(dav: Dav) -> None:
    await put(dav, BOOK + "a.vcf", vcard("a@example.com", "Ann Smith", "ann@example.com"))
    await put(dav, BOOK + "b.vcf", vcard("b@example.com", "Bo Jones", "bo@example.com"))
    answer = await dav.request("GET", BOOK)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/vcard")
    assert answer.content.count(b"BEGIN:VCARD") == 2
    assert b"ann@example.com" in answer.content and b"bo@example.com" in answer.content


async def test_get_of_an_empty_calendar_and_of_a_home(dav: Dav) -> None:
    answer = await dav.request("GET", TASKS)
    assert answer.status_code == 200
    assert answer.content.startswith(b"BEGIN:VCALENDAR")
    answer = await dav.request("GET", HOME)
    assert answer.status_code == 200
