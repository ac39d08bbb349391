"""Principals, calendar proxies, ACL properties and shared calendars of the DAV plugin, in
process: principal-property-search and principal-search-property-set (RFC 3744 9.4, 9.5),
expand-property (RFC 3253 3.8), Apple's calendar-proxy groups, DAV:acl and the privilege
sets (RFC 3744 5), another user's calendar shared by ACL, and no leak of who exists."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from gateway import sharing
from gateway.directory import admin
from gateway.directory.passwords import hash_password
from gateway.store import Private
from gateway.store.permissions import EDITOR, REVIEWER, Grant, Permissions
from gateway.store.rights import Rights
from plugins.dav import r_principal
from tests.unit import dav_setup
from tests.unit.dav_setup import ALICE, BOB, CAROL, CS, XMLNS, C, D, Dav, propfind, responses

dav = dav_setup.dav  # the fixture
PRINCIPALS = "/dav/principals/users/"
CALENDAR = int(Private.CALENDAR)


def principal(address: str) -> str:
    return f"{PRINCIPALS}{address}/"


def hrefs(element: Any) -> list[str]:
    return [h.text for h in element.findall(f"{D}href")]


def ok(found: dict[str, tuple[int, Any]], name: str) -> Any:
    code, element = found[name]
    assert code == 200, (name, code)
    return element


async def share_calendar(dav: Dav, owner: str, member: str, rights: int) -> None:
    mbox = await dav.host.store.open(owner)
    await Permissions(mbox).set_acl(CALENDAR, member, rights)
    sharing.forget_sharers()


async def add_user(dav: Dav, address: str, name: str, store: bool = True) -> None:
    engine = dav.host.directory.engine
    if address.endswith("@other.org"):
        domains = {d.name for d in await admin.list_domains(engine)}
        if "other.org" not in domains:
            await admin.add_domain(engine, "other.org")
    await admin.add_user(engine, address, hash_password("pw-x"), name)
    if store:
        mbox = await dav.host.store.create(address)
        await admin.set_maildir(engine, address, str(mbox.path))


def search(*terms: tuple[str, str], test: str = "", props: str = "<D:displayname/>",
           apply: bool = False) -> str:
    parts = "".join(f"<D:property-search><D:prop><{p}/></D:prop><D:match>{m}</D:match>"
                    "</D:property-search>" for p, m in terms)
    return (f'<D:principal-property-search {XMLNS} {test}>{parts}<D:prop>{props}</D:prop>'
            + ("<D:apply-to-principal-collection-set/>" if apply else "")
            + "</D:principal-property-search>")


# -- principal-property-search ------------------------------------------------------------------

async def test_principal_search_finds_bob_in_own_domain_only(dav: Dav) -> None:
    await add_user(dav, "bobby@other.org", "Bobby Other", store=False)
    root = await dav.xml("REPORT", "/dav/principals/", search(("D:displayname", "bo")),
                         Depth="0")
    found = responses(root)
    assert list(found) == [principal(BOB)]
    assert ok(found[principal(BOB)], f"{D}displayname").text == "Bob Builder"


async def test_principal_search_by_email_case_insensitive_and_apply_to_set(dav: Dav) -> None:
    body = search(("CS:email-address-set", "CAROL@EXAMPLE"), apply=True,
                  props="<C:calendar-user-address-set/>")
    found = responses(await dav.xml("REPORT", principal(ALICE), body, Depth="0"))
    assert list(found) == [principal(CAROL)]
    addresses = hrefs(ok(found[principal(CAROL)], f"{C}calendar-user-address-set"))
    assert f"mailto:{CAROL}" in addresses
    body = search(("C:calendar-user-address-set", "mailto:alice"))
    assert list(responses(await dav.xml("REPORT", PRINCIPALS, body))) == [principal(ALICE)]


async def test_principal_search_as_the_caldav_library_asks(dav: Dav) -> None:
    """caldav 3.x puts the wanted properties beside an empty DAV:prop."""
    body = (f'<D:principal-property-search {XMLNS}><D:property-search><D:prop><D:displayname/>'
            '</D:prop><D:match>bob</D:match></D:property-search><D:prop/>'
            '<C:calendar-home-set/><D:displayname/></D:principal-property-search>')
    found = responses(await dav.xml("REPORT", "/dav/", body))
    assert list(found) == [principal(BOB)]
    assert hrefs(ok(found[principal(BOB)], f"{C}calendar-home-set")) == \
        [f"/dav/calendars/{BOB}/"]


async def test_principal_search_anyof_and_allof(dav: Dav) -> None:
    terms = (("D:displayname", "builder"), ("CS:email-address-set", "carol"))
    anyof = responses(await dav.xml("REPORT", PRINCIPALS, search(*terms, test='test="anyof"')))
    assert sorted(anyof) == [principal(BOB), principal(CAROL)]
    allof = responses(await dav.xml("REPORT", PRINCIPALS, search(*terms, test='test="allof"')))
    assert allof == {}
    both = (("D:displayname", "builder"), ("CS:email-address-set", "bob@"))
    assert list(responses(await dav.xml("REPORT", PRINCIPALS, search(*both)))) == \
        [principal(BOB)]


async def test_principal_search_match_types_and_unsearchable_property(dav: Dav) -> None:
    starts = search(("D:displayname", "Car")).replace("<D:match>",
                                                      '<D:match match-type="starts-with">')
    assert list(responses(await dav.xml("REPORT", PRINCIPALS, starts))) == [principal(CAROL)]
    inner = search(("D:displayname", "uild")).replace("<D:match>",
                                                      '<D:match match-type="starts-with">')
    assert responses(await dav.xml("REPORT", PRINCIPALS, inner)) == {}
    unknown = search(("D:getetag", "a"))
    assert responses(await dav.xml("REPORT", PRINCIPALS, unknown)) == {}
    bad = search(("D:displayname", "a")).replace("<D:match>", '<D:match match-type="regex">')
    assert (await dav.request("REPORT", PRINCIPALS, bad)).status_code == 400
    empty = f'<D:principal-property-search {XMLNS}><D:prop><D:displayname/></D:prop>' \
            '</D:principal-property-search>'
    # No property-search: everyone of the domain (the caldav library lists principals so;
    # Radicale answers an empty list, an error here made caldav-server-tester call it broken)
    listed = responses(await dav.xml("REPORT", PRINCIPALS, empty))
    assert principal(CAROL) in listed and principal(ALICE) in listed


async def test_principal_search_results_are_bounded_with_507(dav: Dav,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(r_principal, "MAX_MATCHES", 2)
    found = responses(await dav.xml("REPORT", PRINCIPALS,
                                     search(("CS:email-address-set", "@example.org"))))
    assert len([h for h in found if h.startswith(PRINCIPALS)]) == 3  # 2 + the 507 for itself
    code, resp = found[PRINCIPALS][""]
    assert code == 507
    assert resp.find(f"{D}error/{D}number-of-matches-within-limits") is not None


async def test_principal_search_on_a_calendar_without_apply_to_finds_nothing(dav: Dav) -> None:
    body = search(("D:displayname", "bob"))
    root = await dav.xml("REPORT", f"/dav/calendars/{ALICE}/calendar/", body)
    assert responses(root) == {}


async def test_principal_search_property_set(dav: Dav) -> None:
    answer = await dav.request("REPORT", PRINCIPALS,
                               f'<D:principal-search-property-set {XMLNS}/>', Depth="0")
    assert answer.status_code == 200
    root = etree.fromstring(answer.content)
    assert root.tag == f"{D}principal-search-property-set"
    names = [p[0].tag for p in root.iter(f"{D}prop")]
    assert {f"{D}displayname", f"{C}calendar-user-address-set",
            f"{CS}email-address-set"} <= set(names)
    assert all(e.findtext(f"{D}description") for e in root.findall(f"{D}principal-search-property"))


async def test_principal_advertises_the_principal_reports(dav: Dav) -> None:
    found = responses(await dav.xml("PROPFIND", principal(ALICE),
                                    propfind("D:supported-report-set"), Depth="0"))
    reports = {r.tag for r in ok(found[principal(ALICE)], f"{D}supported-report-set")
               .iter() if r.getparent() is not None and r.getparent().tag == f"{D}report"}
    assert {f"{D}expand-property", f"{D}principal-property-search",
            f"{D}principal-search-property-set"} <= reports


# -- calendar proxies and shared calendars ------------------------------------------------------

async def test_proxy_read_for_and_group_membership(dav: Dav) -> None:
    await share_calendar(dav, BOB, ALICE, REVIEWER)
    props = propfind("CS:calendar-proxy-read-for", "CS:calendar-proxy-write-for",
                     "D:group-membership")
    found = responses(await dav.xml("PROPFIND", principal(ALICE), props, Depth="0"))
    mine = found[principal(ALICE)]
    assert hrefs(ok(mine, f"{CS}calendar-proxy-read-for")) == [principal(BOB)]
    assert hrefs(ok(mine, f"{CS}calendar-proxy-write-for")) == []
    assert hrefs(ok(mine, f"{D}group-membership")) == [principal(BOB) + "calendar-proxy-read/"]
    # Carol cannot learn who Alice reads for.
    found = responses(await dav.xml("PROPFIND", principal(ALICE), props, Depth="0", user=CAROL))
    assert hrefs(ok(found[principal(ALICE)], f"{CS}calendar-proxy-read-for")) == []


async def test_rights_for_everyone_make_no_proxies(dav: Dav) -> None:
    await share_calendar(dav, BOB, "default", REVIEWER)
    props = propfind("CS:calendar-proxy-read-for", "D:group-membership")
    found = responses(await dav.xml("PROPFIND", principal(ALICE), props, Depth="0"))
    assert hrefs(ok(found[principal(ALICE)], f"{CS}calendar-proxy-read-for")) == []
    assert hrefs(ok(found[principal(ALICE)], f"{D}group-membership")) == []
    group = principal(BOB) + "calendar-proxy-read/"
    found = responses(await dav.xml("PROPFIND", group, propfind("D:group-member-set"),
                                    Depth="0", user=BOB))
    assert hrefs(ok(found[group], f"{D}group-member-set")) == []
    # The calendar itself is still there for everyone.
    found = responses(await dav.xml("PROPFIND", f"/dav/calendars/{BOB}/",
                                    propfind("D:resourcetype"), Depth="1", user=CAROL))
    assert f"/dav/calendars/{BOB}/calendar/" in found


async def test_proxy_groups_list_their_members_to_the_owner(dav: Dav) -> None:
    await share_calendar(dav, BOB, ALICE, REVIEWER)
    mbox = await dav.host.store.open(BOB)
    await Permissions(mbox).set_grant(CAROL, Grant(full_access=True))
    props = propfind("D:group-member-set", "D:resourcetype", "D:displayname")
    read_group, write_group = (principal(BOB) + "calendar-proxy-read/",
                               principal(BOB) + "calendar-proxy-write/")
    found = responses(await dav.xml("PROPFIND", read_group, props, Depth="0", user=BOB))
    group = found[read_group]
    assert hrefs(ok(group, f"{D}group-member-set")) == [principal(ALICE)]
    assert ok(group, f"{D}resourcetype").find(f"{D}principal") is not None
    found = responses(await dav.xml("PROPFIND", write_group, props, Depth="0", user=BOB))
    assert hrefs(ok(found[write_group], f"{D}group-member-set")) == [principal(CAROL)]
    found = responses(await dav.xml("PROPFIND", principal(CAROL),
                                    propfind("CS:calendar-proxy-write-for"), Depth="0",
                                    user=CAROL))
    assert hrefs(ok(found[principal(CAROL)], f"{CS}calendar-proxy-write-for")) == [principal(BOB)]
    # Depth 1 on Bob's principal shows both groups to him.
    found = responses(await dav.xml("PROPFIND", principal(BOB), props, Depth="1", user=BOB))
    assert {read_group, write_group} <= set(found)
    # Someone who is not a member sees no members.
    found = responses(await dav.xml("PROPFIND", write_group, props, Depth="0", user=ALICE))
    assert hrefs(ok(found[write_group], f"{D}group-member-set")) == []
    missing = await dav.request("PROPFIND", principal(BOB) + "calendar-proxy-other/",
                                props, Depth="0")
    assert missing.status_code == 404


async def test_expand_property_of_calendar_proxy_write_for(dav: Dav) -> None:
    await share_calendar(dav, BOB, ALICE, EDITOR)
    body = (f'<D:expand-property {XMLNS}>'
            '<D:property name="calendar-proxy-write-for" namespace="http://calendarserver.org/ns/">'
            '<D:property name="displayname"/>'
            '<D:property name="calendar-user-address-set" '
            'namespace="urn:ietf:params:xml:ns:caldav"/>'
            '<D:property name="getetag"/>'
            '</D:property>'
            '<D:property name="calendar-proxy-read-for" namespace="http://calendarserver.org/ns/">'
            '<D:property name="displayname"/></D:property>'
            '<D:property name="displayname"/>'
            '</D:expand-property>')
    root = await dav.xml("REPORT", principal(ALICE), body, Depth="0")
    top = root.findall(f"{D}response")
    assert len(top) == 1 and top[0].findtext(f"{D}href") == principal(ALICE)
    prop = top[0].find(f"{D}propstat/{D}prop")
    assert prop.findtext(f"{D}displayname") == "Alice Liddell"
    assert prop.find(f"{CS}calendar-proxy-read-for").findall(f"{D}response") == []
    inner = prop.find(f"{CS}calendar-proxy-write-for").findall(f"{D}response")
    assert [r.findtext(f"{D}href") for r in inner] == [principal(BOB)]
    found = responses(prop.find(f"{CS}calendar-proxy-write-for"))[principal(BOB)]
    assert ok(found, f"{D}displayname").text == "Bob Builder"
    assert f"mailto:{BOB}" in hrefs(ok(found, f"{C}calendar-user-address-set"))
    assert found[f"{D}getetag"][0] == 404


async def test_expand_property_without_nesting_and_bounds(dav: Dav) -> None:
    body = (f'<D:expand-property {XMLNS}><D:property name="principal-URL"/>'
            '<D:property name="owner"><D:property name="displayname"/></D:property>'
            '</D:expand-property>')
    root = await dav.xml("REPORT", f"/dav/calendars/{ALICE}/calendar/", body)
    found = responses(root)[f"/dav/calendars/{ALICE}/calendar/"]
    owner = ok(found, f"{D}owner").find(f"{D}response")
    assert owner.findtext(f"{D}href") == principal(ALICE)
    assert found[f"{D}principal-URL"][0] == 404
    deep = "<D:property name=\"owner\">" * 7 + "</D:property>" * 7
    answer = await dav.request("REPORT", principal(ALICE),
                               f"<D:expand-property {XMLNS}>{deep}</D:expand-property>")
    assert answer.status_code == 403
    nameless = f'<D:expand-property {XMLNS}><D:property/></D:expand-property>'
    assert (await dav.request("REPORT", principal(ALICE), nameless)).status_code == 400


async def test_shared_calendar_reviewer_then_editor(dav: Dav) -> None:
    bob_home = f"/dav/calendars/{BOB}/"
    await share_calendar(dav, BOB, ALICE, REVIEWER)
    found = responses(await dav.xml("PROPFIND", bob_home, propfind("D:resourcetype"),
                                    Depth="1"))
    assert sorted(found) == [bob_home, bob_home + "calendar/"]
    privileges = responses(await dav.xml("PROPFIND", bob_home + "calendar/",
                                         propfind("D:current-user-privilege-set"), Depth="0"))
    held = {p[0].tag for p in ok(privileges[bob_home + "calendar/"],
                                 f"{D}current-user-privilege-set")}
    assert f"{D}read" in held and f"{C}read-free-busy" in held
    assert f"{D}write-content" not in held and f"{D}bind" not in held
    assert (await dav.request("PROPFIND", bob_home, propfind("D:resourcetype"), Depth="1",
                              user=CAROL)).status_code == 404
    event = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n"
             "UID:shared-1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260105T100000Z\r\n"
             "DURATION:PT1H\r\nSUMMARY:From Alice\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    target = bob_home + "calendar/shared-1.ics"
    put = await dav.request("PUT", target, event, Content_Type="text/calendar")
    assert put.status_code == 403
    await share_calendar(dav, BOB, ALICE, EDITOR)
    put = await dav.request("PUT", target, event, Content_Type="text/calendar")
    assert put.status_code == 201
    got = await dav.request("GET", target, user=BOB)
    assert got.status_code == 200 and b"From Alice" in got.content
    privileges = responses(await dav.xml("PROPFIND", bob_home + "calendar/",
                                         propfind("D:current-user-privilege-set"), Depth="0"))
    held = {p[0].tag for p in ok(privileges[bob_home + "calendar/"],
                                 f"{D}current-user-privilege-set")}
    assert {f"{D}write-content", f"{D}bind", f"{D}unbind"} <= held
    assert f"{D}write-acl" not in held and f"{D}all" not in held


async def test_no_leak_of_who_exists(dav: Dav) -> None:
    """Carol gets the same answer for Bob's home, collection and item as for nobody's."""
    for path in ("/dav/calendars/{}/", "/dav/calendars/{}/calendar/",
                 "/dav/calendars/{}/calendar/x.ics", "/dav/addressbooks/{}/",
                 "/dav/addressbooks/{}/contacts/"):
        real = await dav.request("PROPFIND", path.format(BOB), propfind("D:resourcetype"),
                                 Depth="0", user=CAROL)
        ghost = await dav.request("PROPFIND", path.format("nobody@example.org"),
                                  propfind("D:resourcetype"), Depth="0", user=CAROL)
        assert real.status_code == ghost.status_code == 404, path
        assert real.content == ghost.content, path


# -- access control properties ------------------------------------------------------------------

def aces(acl: Any) -> dict[str, set[str]]:
    """``{principal: privileges}`` of a DAV:acl; the principal as its href or its element."""
    out: dict[str, set[str]] = {}
    for ace in acl.findall(f"{D}ace"):
        who = ace.find(f"{D}principal")
        key = who.findtext(f"{D}href") or who[0].tag
        out[key] = {p[0].tag for p in ace.findall(f"{D}grant/{D}privilege")}
    return out


async def test_acl_of_a_shared_calendar(dav: Dav) -> None:
    await share_calendar(dav, BOB, ALICE, REVIEWER)
    cal = f"/dav/calendars/{BOB}/calendar/"
    props = propfind("D:acl", "D:acl-restrictions", "D:inherited-acl-set", "D:owner")
    found = responses(await dav.xml("PROPFIND", cal, props, Depth="0", user=BOB))[cal]
    acl = ok(found, f"{D}acl")
    entries = aces(acl)
    assert entries[principal(BOB)] == {f"{D}all"}
    assert entries[principal(ALICE)] == {f"{D}read"}
    assert entries[f"{D}authenticated"] == {f"{C}read-free-busy"}
    owner_ace = next(a for a in acl.findall(f"{D}ace")
                     if a.findtext(f"{D}principal/{D}href") == principal(BOB))
    assert owner_ace.find(f"{D}protected") is not None
    restrictions = ok(found, f"{D}acl-restrictions")
    assert restrictions.find(f"{D}grant-only") is not None
    assert restrictions.find(f"{D}no-invert") is not None
    assert hrefs(ok(found, f"{D}inherited-acl-set")) == []
    assert hrefs(ok(found, f"{D}owner")) == [principal(BOB)]
    # Alice may read the calendar but not its ACL.
    found = responses(await dav.xml("PROPFIND", cal, props, Depth="0"))[cal]
    assert found[f"{D}acl"][0] == 404
    assert hrefs(ok(found, f"{D}owner")) == [principal(BOB)]


async def test_acl_of_an_item_is_inherited(dav: Dav) -> None:
    await share_calendar(dav, ALICE, BOB, EDITOR)
    cal = f"/dav/calendars/{ALICE}/calendar/"
    event = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n"
             "UID:acl-1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260105T100000Z\r\n"
             "SUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    assert (await dav.request("PUT", cal + "acl-1.ics", event,
                              Content_Type="text/calendar")).status_code == 201
    props = propfind("D:acl", "D:inherited-acl-set")
    found = responses(await dav.xml("PROPFIND", cal + "acl-1.ics", props, Depth="0"))
    item = found[cal + "acl-1.ics"]
    assert hrefs(ok(item, f"{D}inherited-acl-set")) == [cal]
    acl = ok(item, f"{D}acl")
    assert aces(acl)[principal(BOB)] == {f"{D}read", f"{D}write-content", f"{D}bind",
                                         f"{D}unbind"}
    assert all(a.findtext(f"{D}inherited/{D}href") == cal for a in acl.findall(f"{D}ace"))


async def test_acl_of_principal_and_home(dav: Dav) -> None:
    props = propfind("D:acl", "D:owner", "D:current-user-privilege-set")
    found = responses(await dav.xml("PROPFIND", principal(ALICE), props, Depth="0"))
    mine = found[principal(ALICE)]
    entries = aces(ok(mine, f"{D}acl"))
    assert entries == {principal(ALICE): {f"{D}all"}, f"{D}authenticated": {f"{D}read"}}
    assert hrefs(ok(mine, f"{D}owner")) == [principal(ALICE)]
    found = responses(await dav.xml("PROPFIND", principal(BOB), props, Depth="0"))
    assert found[principal(BOB)][f"{D}acl"][0] == 404
    home = f"/dav/calendars/{ALICE}/"
    found = responses(await dav.xml("PROPFIND", home, props, Depth="0"))
    assert aces(ok(found[home], f"{D}acl")) == {principal(ALICE): {f"{D}all"}}


async def test_owner_privileges_are_all_with_their_parts(dav: Dav) -> None:
    cal = f"/dav/calendars/{ALICE}/calendar/"
    found = responses(await dav.xml("PROPFIND", cal, propfind("D:current-user-privilege-set"),
                                    Depth="0"))
    held = {p[0].tag for p in ok(found[cal], f"{D}current-user-privilege-set")}
    # RFC 3744 5.4: an aggregate is listed with everything it contains.
    assert {f"{D}all", f"{D}read", f"{D}write", f"{D}write-content", f"{D}bind", f"{D}unbind",
            f"{D}write-properties", f"{D}read-acl", f"{D}write-acl",
            f"{D}read-current-user-privilege-set", f"{C}read-free-busy"} <= held


async def test_acl_method_is_refused(dav: Dav) -> None:
    body = (f'<D:acl {XMLNS}><D:ace><D:principal><D:href>{principal(BOB)}</D:href>'
            '</D:principal><D:grant><D:privilege><D:read/></D:privilege></D:grant></D:ace>'
            '</D:acl>')
    answer = await dav.request("ACL", f"/dav/calendars/{ALICE}/calendar/", body)
    assert answer.status_code == 403
    mbox = await dav.host.store.open(ALICE)
    assert BOB not in dict(await Permissions(mbox).acl(CALENDAR))
    hidden = await dav.request("ACL", f"/dav/calendars/{BOB}/calendar/", body, user=CAROL)
    assert hidden.status_code == 404
    garbage = await dav.request("ACL", f"/dav/calendars/{ALICE}/calendar/", "<D:acl")
    assert garbage.status_code == 400
    wrong = await dav.request("ACL", f"/dav/calendars/{ALICE}/calendar/",
                              f"<D:propfind {XMLNS}/>")
    assert wrong.status_code == 400


async def test_sharers_moved_to_gateway(dav: Dav) -> None:
    """The look-up both IMAP and DAV use: Bob's store shows Alice something once shared."""
    sharing.forget_sharers()
    assert await sharing.sharers(dav.host, ALICE) == []
    await share_calendar(dav, BOB, ALICE, REVIEWER)
    assert await sharing.sharers(dav.host, ALICE) == [BOB]
    assert await sharing.sharers(dav.host, CAROL) == []


async def test_folder_visible_alone_does_not_reveal_events(dav: Dav) -> None:
    cal = f"/dav/calendars/{BOB}/calendar/"
    event = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n"
             "UID:secret-1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260105T100000Z\r\n"
             "SUMMARY:Top secret\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    assert (await dav.request("PUT", cal + "secret-1.ics", event, user=BOB,
                              Content_Type="text/calendar")).status_code == 201
    await share_calendar(dav, BOB, ALICE, int(Rights.FOLDER_VISIBLE))
    assert (await dav.request("GET", cal + "secret-1.ics")).status_code == 403
    reports = (
        f'<C:calendar-query {XMLNS}><D:prop><C:calendar-data/></D:prop><C:filter>'
        '<C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>',
        f'<C:calendar-multiget {XMLNS}><D:prop><C:calendar-data/></D:prop>'
        f'<D:href>{cal}secret-1.ics</D:href></C:calendar-multiget>',
        f'<D:sync-collection {XMLNS}><D:sync-token/><D:sync-level>1</D:sync-level>'
        '<D:prop><C:calendar-data/></D:prop></D:sync-collection>')
    for body in reports:
        answer = await dav.request("REPORT", cal, body, Depth="1")
        assert b"Top secret" not in answer.content, body[:40]
