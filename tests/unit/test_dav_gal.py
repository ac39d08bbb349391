"""The global address list as a read-only address book (``/dav/addressbooks/<me>/gal/``), in
process: listing, GET, multiget, query and sync-collection on it, its refresh from the
directory (added, changed, removed and hidden users, directory properties), and that
nobody can write to it or see anyone else's."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert

from gateway.directory import admin
from gateway.directory.models import UserProperties
from gateway.directory.passwords import hash_password
from plugins.dav import gal, principals
from tests.unit import dav_setup
from tests.unit.dav_setup import ALICE, BOB, BOOKS, CAROL, XMLNS, D, Dav, R, propfind, responses

dav = dav_setup.dav  # the fixture
GAL = BOOKS + "gal/"


@pytest.fixture(autouse=True)
def fresh_gal() -> None:
    gal.forget()


async def cards(dav: Dav, user: str = ALICE) -> dict[str, str]:
    """``{href: vCard text}`` of the GAL, read with one addressbook-query."""
    body = (f'<R:addressbook-query {XMLNS}><D:prop><R:address-data/></D:prop>'
            '</R:addressbook-query>')
    root = await dav.xml("REPORT", f"/dav/addressbooks/{user}/gal/", body, Depth="1",
                         user=user)
    return {href: found[f"{R}address-data"][1].text
            for href, found in responses(root).items()}


async def sync(dav: Dav, token: str = "") -> tuple[dict[str, dict[str, tuple[int, Any]]], str]:
    body = (f'<D:sync-collection {XMLNS}><D:sync-token>{token}</D:sync-token>'
            '<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>')
    root = await dav.xml("REPORT", GAL, body)
    return responses(root), root.findtext(f"{D}sync-token")


async def test_gal_is_listed_read_only_in_the_own_home(dav: Dav) -> None:
    found = responses(await dav.xml("PROPFIND", BOOKS, propfind(
        "D:resourcetype", "D:displayname", "D:current-user-privilege-set"), Depth="1"))
    assert GAL in found and BOOKS + "contacts/" in found
    entry = found[GAL]
    assert entry[f"{D}resourcetype"][1].find(f"{R}addressbook") is not None
    assert entry[f"{D}displayname"][1].text == gal.FOLDER_NAME
    held = {p[0].tag for p in entry[f"{D}current-user-privilege-set"][1]}
    assert f"{D}read" in held
    assert not held & {f"{D}write", f"{D}write-content", f"{D}bind", f"{D}unbind",
                       f"{D}write-properties"}


async def test_gal_lists_the_domain_users(dav: Dav) -> None:
    found = await cards(dav)
    assert len(found) == 3
    text = "\n".join(found.values())
    for address, name in ((ALICE, "Alice Liddell"), (BOB, "Bob Builder"), (CAROL, "Carol")):
        assert f"FN:{name}" in text
        assert f":{address}" in text
    listing = responses(await dav.xml("PROPFIND", GAL, propfind("D:getetag"), Depth="1"))
    assert len([h for h in listing if h != GAL]) == 3


async def test_gal_card_get_and_multiget(dav: Dav) -> None:
    bob = next(h for h, text in (await cards(dav)).items() if "FN:Bob Builder" in text)
    got = await dav.request("GET", bob)
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/vcard")
    assert b"EMAIL;TYPE=INTERNET,WORK,PREF:bob@example.org" in got.content
    body = (f'<R:addressbook-multiget {XMLNS}><D:prop><D:getetag/><R:address-data/></D:prop>'
            f'<D:href>{bob}</D:href><D:href>{GAL}nobody.vcf</D:href></R:addressbook-multiget>')
    found = responses(await dav.xml("REPORT", GAL, body, Depth="1"))
    assert found[bob][f"{R}address-data"][1].text.replace("\r\n", "\n") == \
        got.content.decode().replace("\r\n", "\n")
    assert found[bob][f"{D}getetag"][1].text == got.headers["etag"]
    assert found[f"{GAL}nobody.vcf"][""][0] == 404


async def test_gal_query_filter(dav: Dav) -> None:
    body = (f'<R:addressbook-query {XMLNS}><D:prop><D:getetag/></D:prop><R:filter>'
            '<R:prop-filter name="FN"><R:text-match match-type="contains">builder'
            '</R:text-match></R:prop-filter></R:filter></R:addressbook-query>')
    found = responses(await dav.xml("REPORT", GAL, body, Depth="1"))
    assert len(found) == 1


async def test_gal_sync_reports_only_real_changes(dav: Dav) -> None:
    first, token = await sync(dav)
    assert len(first) == 3
    gal.forget()
    again, same = await sync(dav, token)
    assert again == {}  # refreshed from an unchanged directory: nothing new
    engine = dav.host.directory.engine
    await admin.add_user(engine, "dave@example.org", hash_password("pw-dave"), "Dave Diver")
    gal.forget()
    added, token2 = await sync(dav, same)
    assert len(added) == 1
    (href,) = added
    assert (await dav.request("GET", href)).content.count(b"FN:Dave Diver") == 1
    await admin.set_user(engine, BOB, display_name="Robert Builder")
    gal.forget()
    changed, token3 = await sync(dav, token2)
    assert len(changed) == 1
    assert b"FN:Robert Builder" in (await dav.request("GET", next(iter(changed)))).content
    await admin.delete_user(engine, "dave@example.org")
    gal.forget()
    removed, _ = await sync(dav, token3)
    assert list(removed) == [href] and removed[href][""][0] == 404


async def test_gal_refresh_waits_a_minute(dav: Dav) -> None:
    await cards(dav)
    await admin.add_user(dav.host.directory.engine, "erin@example.org", hash_password("x"),
                         "Erin")
    assert len(await cards(dav)) == 3  # within REFRESH_SECONDS: not looked at again
    gal.forget()
    assert len(await cards(dav)) == 4


async def test_gal_cards_carry_directory_properties_and_hide_hidden(dav: Dav) -> None:
    engine = dav.host.directory.engine
    users = {u.username: u for u in await admin.list_users(engine)}
    rows = [(BOB, principals.PR_MOBILE_TELEPHONE_NUMBER, "+49 170 1234567"),
            (BOB, principals.PR_TITLE, "Site manager"),
            (BOB, principals.PR_COMPANY_NAME, "Builders; Inc"),
            (BOB, principals.PR_GIVEN_NAME, "Bob"),
            (BOB, principals.PR_SURNAME, "Builder"),
            (CAROL, principals.PR_ATTR_HIDDEN_GROMOX, "1")]
    async with engine.begin() as conn:
        for address, proptag, value in rows:
            await conn.execute(insert(UserProperties).values(
                user_id=users[address].id, proptag=proptag, order_id=1, propval_str=value))
    found = await cards(dav)
    assert len(found) == 2
    assert not any("Carol" in text for text in found.values())
    bob = next(text for text in found.values() if "Bob" in text)
    assert "TEL;TYPE=CELL,VOICE:+49 170 1234567" in bob
    assert "TITLE:Site manager" in bob
    assert "ORG:Builders\\; Inc;" in bob
    assert "N:Builder;Bob;;;" in bob


async def test_gal_is_read_only(dav: Dav) -> None:
    card = ("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:intruder\r\nFN:Intruder\r\nN:;Intruder;;;\r\n"
            "END:VCARD\r\n")
    put = await dav.request("PUT", GAL + "intruder.vcf", card, Content_Type="text/vcard")
    assert put.status_code == 403
    existing = next(iter(await cards(dav)))
    replace = await dav.request("PUT", existing, card, Content_Type="text/vcard")
    assert replace.status_code == 403
    assert (await dav.request("DELETE", existing)).status_code == 403
    assert (await dav.request("DELETE", GAL)).status_code == 403
    patch = (f'<D:propertyupdate {XMLNS}><D:set><D:prop><D:displayname>Mine</D:displayname>'
             '</D:prop></D:set></D:propertyupdate>')
    assert (await dav.request("PROPPATCH", GAL, patch)).status_code in (207, 403)
    found = responses(await dav.xml("PROPFIND", GAL, propfind("D:displayname"), Depth="0"))
    assert found[GAL][f"{D}displayname"][1].text == gal.FOLDER_NAME
    assert len(await cards(dav)) == 3


async def test_gal_of_someone_else_is_not_found(dav: Dav) -> None:
    other = await dav.request("PROPFIND", f"/dav/addressbooks/{BOB}/gal/", propfind(
        "D:resourcetype"), Depth="0")
    ghost = await dav.request("PROPFIND", "/dav/addressbooks/nobody@example.org/gal/",
                              propfind("D:resourcetype"), Depth="0")
    assert other.status_code == ghost.status_code == 404
    assert other.content == ghost.content


async def test_gal_can_be_switched_off(dav: Dav) -> None:
    dav.host.config.dav.gal = False
    found = responses(await dav.xml("PROPFIND", BOOKS, propfind("D:resourcetype"), Depth="1"))
    assert GAL not in found
    assert (await dav.request("PROPFIND", GAL, propfind("D:resourcetype"),
                              Depth="0")).status_code == 404
