"""vCard ⇄ contacts and contact groups: corpus, round trips, groups, bad input, the store."""

from __future__ import annotations

import base64
import logging
import zlib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.convert import contact_groups as cg
from gateway.convert.load import load_message
from gateway.convert.vcard import (
    MAX_PHOTO,
    UID_PROP,
    parse_vcards,
    read_cards,
    render_vcard,
)
from gateway.convert.vcard_out import NAMED_PROPS, escape, fold
from gateway.store import Mailbox, NewMessage, Private
from gateway.store import tags as T

CORPUS = Path(__file__).parent.parent / "corpus" / "vcard"
FILES = sorted(CORPUS.glob("*.vcf"))
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"


def one(data: bytes | str) -> NewMessage:
    messages = parse_vcards(data)
    assert len(messages) == 1
    return messages[0]


def corpus(name: str) -> list[NewMessage]:
    return parse_vcards((CORPUS / name).read_bytes())


def photo(message: NewMessage) -> bytes | None:
    for attachment in message.attachments:
        if attachment.props.get(T.PidTagAttachmentContactPhoto):
            assert attachment.data is not None
            return b"".join(attachment.data)
    return None


def unfolded(card: bytes) -> list[str]:
    return card.decode().replace("\r\n ", "").split("\r\n")


# -- corpus ---------------------------------------------------------------------------

EXPECTED: dict[str, dict[Any, Any]] = {
    "apple-macos-contacts-3.0.vcf": {
        T.PidTagSurname: "Appleseed", T.PidTagGivenName: "Johnny", T.PidTagMiddleName: "Quinn,Jr",
        T.PidTagDisplayNamePrefix: "Dr.", T.PidTagGeneration: "III", T.PidTagNickname: "Jay",
        T.PidLidYomiFirstName: "Jonni", T.PidLidYomiLastName: "Apelsiid",
        T.PidTagCompanyName: "Orchard Corp", T.PidTagDepartmentName: "Research",
        T.PidLidEmail1EmailAddress: "johnny@orchard.example", T.PidLidEmail1AddressType: "SMTP",
        T.PidLidEmail2EmailAddress: "jq@home.example",
        T.PidLidAddressBookProviderEmailList: [0, 1], T.PidLidAddressBookProviderArrayType: 3,
        T.PidTagBusinessTelephoneNumber: "+1 408 555 0100",
        T.PidTagHomeFaxNumber: "+1 408 555 0103",
        T.PidTagAssistantTelephoneNumber: "+1 408 555 0106",  # _$!<AssistantPhone>!$_
        T.PidTagOtherTelephoneNumber: "+1 408 555 0107",  # a custom label
        T.PidTagHomeAddressStreet: "1 Infinite Loop\r\nBuilding 2",
        T.PidLidWorkAddressStreet: "1 Apple Park Way", T.PidLidPostalAddressId: 1,
        T.PidTagStreetAddress: "1 Infinite Loop\r\nBuilding 2",
        T.PidTagBody: "Met at the cider fair, 2019.\r\nLikes ;semicolons; and backslashes \\.",
        T.PidTagBusinessHomePage: "https://orchard.example/johnny",
        T.PidTagSpouseName: "Jenny Appleseed",
        T.PidTagWeddingAnniversary: datetime(2005, 6, 18, tzinfo=UTC),
        T.PidLidInstantMessagingAddress: "xmpp:johnny@jabber.example",
        T.PidTagBirthday: datetime(1978, 6, 6, tzinfo=UTC), T.PidLidHasPicture: True,
        T.PidNameKeywords: ["Family", "Orchard"],
        UID_PROP: "5F8D2B1E-3C4A-4E6F-9A7B-1C2D3E4F5A6B",
        T.PidLidFileUnder: "Appleseed, Johnny Quinn,Jr", T.PidLidFileUnderId: 0x8017},
    "apple-ios-3.0.vcf": {
        T.PidTagCompanyName: "Biuro Podróży",
        T.PidTagMobileTelephoneNumber: "+48 600 100 200",
        T.PidTagOtherTelephoneNumber: "+48 600 100 201",  # the second cell number
        T.PidTagAssistantTelephoneNumber: "+48 22 555 01 03",
        T.PidLidWorkAddressStreet: "ul. Marszałkowska 10", T.PidLidPostalAddressId: 2,
        T.PidTagBirthday: datetime(1604, 2, 29, tzinfo=UTC),  # X-APPLE-OMIT-YEAR
        T.PidTagWeddingAnniversary: datetime(1604, 9, 23, tzinfo=UTC), T.PidLidHasPicture: True},
    "google-contacts-3.0.vcf": {
        T.PidTagDisplayName: "Vera Test", T.PidTagNickname: "Vee",
        T.PidLidEmail1EmailAddress: "vera@example.com",
        T.PidLidEmail3EmailAddress: "vera.work@example.com",
        T.PidTagOtherTelephoneNumber: "+1 212 555 0110",
        T.PidTagPrimaryTelephoneNumber: "+1 212 555 0114",
        T.PidTagHomeFaxNumber: "+1 212 555 0115",
        T.PidTagBusiness2TelephoneNumber: "+1 212 555 0118",  # GRAND_CENTRAL label
        T.PidTagOtherAddressStreet: "14 Main St",
        T.PidLidInstantMessagingAddress: "xmpp:vera.talk",
        T.PidTagWeddingAnniversary: datetime(1999, 5, 15, tzinfo=UTC),
        T.PidTagSpouseName: "Victor Test", T.PidTagManagerName: "Boss Person",
        T.PidTagBusinessHomePage: "http://www.example.com/vera",
        T.PidTagPersonalHomePage: "http://blog.example.com/vera",
        T.PidTagBody: "line one\r\nline two, with a comma",
        T.PidNameKeywords: ["myContacts", "Friends"]},
    "outlook-2007-2.1.vcf": {
        T.PidTagBody: "First line of the note\t\r\nSecond line, with a comma\r\n"
        "Third line \u2013 not UTF-8 declared",
        T.PidTagCallbackTelephoneNumber: "(030) 555-5555",
        T.PidTagCompanyMainTelephoneNumber: "(030) 555-0000", T.PidLidPostalAddressId: 2,
        T.PidTagStreetAddress: "Raum 12\r\nUnter den Linden 1", T.PidTagLocality: "Berlin",
        T.PidTagPersonalHomePage: "http://erika.example.de",
        T.PidTagWeddingAnniversary: datetime(1990, 6, 2, tzinfo=UTC),
        T.PidTagBirthday: datetime(1964, 8, 12, tzinfo=UTC),
        T.PidTagManagerName: "Max Mustermann", T.PidTagAssistant: "Paula Beispiel",
        T.PidTagSpouseName: "Hans Mustermann",
        T.PidLidFreeBusyLocation: "http://free-busy.example/erika.vfb",
        T.PidLidInstantMessagingAddress: "erika@im.example", T.PidLidHasPicture: True,
        T.PidTagLastModificationTime: datetime(2012, 8, 1, 18, 46, 31, tzinfo=UTC)},
    "outlook-2003-2.1.vcf": {
        T.PidTagCompanyName: "Company, The",
        T.PidTagBody: "This is the note field!!\r\nSecond line\r\n\r\nThird line is empty",
        T.PidTagGeneration: "III", T.PidLidWorkAddressCity: "Austin",
        T.PidLidEmail1EmailAddress: "jdoe@mail.example"},
    "evolution-3.0.vcf": {
        UID_PROP: "477343c8e6bf375a9bac1f96a5000837", T.PidTagSpouseName: "Ole",
        T.PidTagManagerName: "Store Bjørn", T.PidTagAssistant: "Lille Rød",
        T.PidTagMiddleName: "Marie, Louise",
        T.PidTagDepartmentName: "Regnskab, Kælderen", T.PidTagHomeAddressPostOfficeBox: "PB-123",
        T.PidLidInstantMessagingAddress: "aim:kim5@aim.example",
        T.PidTagMobileTelephoneNumber: "905-666-1234",
        T.PidLidEmail1EmailAddress: "kim.larsen@example.dk",
        T.PidLidEmail3EmailAddress: "kim@other.example",  # five given; MAPI keeps three
        T.PidTagWeddingAnniversary: datetime(2008, 7, 19, tzinfo=UTC),
        T.PidNameKeywords: ["VIP"], T.PidLidFileUnder: "Larsen, Kim Marie, Louise"},
    "rfc6350-example-4.0.vcf": {
        T.PidTagBusinessTelephoneNumber: "+1-418-656-9254;ext=102",
        T.PidTagMobileTelephoneNumber: "+1-418-262-6501",
        T.PidLidWorkAddressStreet: "Suite D2-630\r\n2875 Laurier",
        T.PidTagBirthday: datetime(1604, 2, 3, tzinfo=UTC), T.PidTagGender: 2,
        T.PidTagWeddingAnniversary: datetime(2009, 8, 8, tzinfo=UTC),
        T.PidTagPersonalHomePage: "http://nomis80.org"},
    "thunderbird-115-4.0.vcf": {
        T.PidTagDisplayName: "Dr. Jane Doe", T.PidLidEmail2EmailAddress: "jane@home.example",
        T.PidTagHomeAddressStreet: "Hauptstraße 5, Hinterhaus",
        T.PidTagBody: "Zeile 1\r\nZeile 2, mit Komma; und Semikolon",
        T.PidLidInstantMessagingAddress: "xmpp:jane@example.org",
        UID_PROP: "d9e9c1b5-4a6e-4f0b-8f6e-3c2f1f8a9b10", T.PidLidHasPicture: True},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_card_fields(name: str) -> None:
    message = corpus(name)[0]
    assert message.props[T.PidTagMessageClass] == "IPM.Contact"
    for key, value in EXPECTED[name].items():
        assert message.props.get(key) == value, (name, key)


def test_corpus_google_address_in_extended_field() -> None:
    walter = corpus("google-contacts-3.0.vcf")[1].props
    assert walter[T.PidTagHomeAddressStreet] == (
        "17 Crescent Road\r\nFlat 3\r\nLeeds, West Yorkshire LS2 9JT\r\nUnited Kingdom")
    assert walter[T.PidTagBusinessHomePage] == "http://www.example.org/walter"  # http\://
    assert walter[T.PidTagBody].startswith("A long note that Google folds at seventy-five octets")


def test_corpus_android_quoted_printable_and_charset() -> None:
    messages = corpus("android-2.1.vcf")
    assert len(messages) == 5
    assert messages[0].props[T.PidLidEmail1EmailAddress] == "john.doe@company.example"
    assert messages[0].props[T.PidTagDisplayName] == "john.doe@company.example"
    assert messages[1].props[T.PidTagDisplayName] == "Ñ Ñ"
    assert messages[2].props[T.PidTagSurname] == " ".join("Ñ" * 11)  # soft line break
    assert messages[2].props[T.PidTagHome2TelephoneNumber] == "45678901"
    assert messages[2].props[T.PidTagOtherTelephoneNumber] == "3456789"
    assert messages[2].props[T.PidTagBody] == "Zeile über zwei Zeilen"
    assert messages[3].props[T.PidTagCompanyName] == "Ñ" * 12
    assert messages[3].props[T.PidTagBusinessHomePage] == "www.company.example"
    assert (photo(messages[3]) or b"").startswith(b"\xff\xd8")
    assert messages[4].props[T.PidTagCompanyName] == "Ñ" * 22  # soft break, then a blank line
    assert messages[4].props[T.PidNameKeywords] == ["My Contacts"]


def test_corpus_photos_decode_to_images() -> None:
    for name in ("apple-ios-3.0.vcf", "apple-macos-contacts-3.0.vcf", "outlook-2007-2.1.vcf"):
        data = photo(corpus(name)[0])
        assert data is not None and data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")
    picture = corpus("thunderbird-115-4.0.vcf")[0].attachments[0]
    assert picture.props[T.PidTagAttachMimeTag] == "image/png"
    assert picture.props[T.PidTagAttachLongFilename] == "ContactPicture.jpg"


def test_corpus_groups() -> None:
    doe, funky = corpus("kind-group-4.0.vcf")
    assert doe.props[T.PidTagMessageClass] == "IPM.DistList"
    assert doe.props[T.PidLidDistributionListName] == "The Doe family"
    assert doe.props[cg.MEMBERS_PROP] == ["urn:uuid:03a0e51f-d1aa-4385-8a53-e29025acd8af",
                                          "urn:uuid:b8767877-b4a1-4c70-9acc-505d3819e519"]
    assert T.PidLidDistributionListMembers not in doe.props
    members = funky.props[T.PidLidDistributionListMembers]
    assert [cg.parse_one_off(m) for m in members] == [
        cg.OneOff("subscriber1@example.com", "SMTP", "subscriber1@example.com")]
    assert funky.props[T.PidLidDistributionListChecksum] == cg.checksum(members)
    apple = corpus("apple-group-3.0.vcf")[0]
    assert apple.props[T.PidLidDistributionListName] == "Book Club"
    assert len(apple.props[cg.MEMBERS_PROP]) == 3
    assert apple.props[UID_PROP] == "9F1C2A3B-4D5E-6F70-8192-A3B4C5D6E7F8"


def mapped(message: NewMessage) -> tuple[dict[Any, Any], bytes | None]:
    return dict(message.props), photo(message)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_corpus_renders_and_reads_back_the_same(path: Path, version: str) -> None:
    for message in parse_vcards(path.read_bytes()):
        card = render_vcard(message, version)
        assert card == render_vcard(message, version)  # deterministic
        assert card.startswith(b"BEGIN:VCARD\r\nVERSION:" + version.encode() + b"\r\n")
        assert card.endswith(b"END:VCARD\r\n")
        assert all(len(line) <= 75 for line in card.split(b"\r\n"))
        assert mapped(one(card)) == mapped(message)


def test_render_groups_in_both_forms() -> None:
    funky = corpus("kind-group-4.0.vcf")[1]
    v4 = unfolded(render_vcard(funky, "4.0"))
    assert "KIND:group" in v4 and "FN:Funky distribution list" in v4
    assert [line for line in v4 if line.startswith("MEMBER:")] == [
        "MEMBER:mailto:subscriber1@example.com", "MEMBER:xmpp:subscriber2@example.com",
        "MEMBER:sip:subscriber3@example.com", "MEMBER:tel:+1-418-555-5555"]
    v3 = unfolded(render_vcard(corpus("apple-group-3.0.vcf")[0], "3.0"))
    assert "X-ADDRESSBOOKSERVER-KIND:group" in v3
    assert "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:6A0B4F0C-3E0A-4A7E-9C1B-2F5D8E7A1C33" in v3
    assert "UID:9F1C2A3B-4D5E-6F70-8192-A3B4C5D6E7F8" in v3


# -- contact groups ------------------------------------------------------------------

def reference_crc(members: list[bytes]) -> int:
    """MS-OXOCNTC 3.1.5.11 written out: table CRC, polynomial 0xEDB88320, seed 0."""
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    crc = 0
    for member in members:
        for byte in member:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc - (1 << 32) if crc >= 1 << 31 else crc


@given(st.lists(st.binary(max_size=64), max_size=5))
def test_checksum_is_the_spec_crc(members: list[bytes]) -> None:
    assert cg.checksum(members) == reference_crc(members)


def test_one_off_entry_id_matches_outlook_bytes() -> None:
    # The EntryID Outlook's object model reports for a one-off recipient test@thm.loc.
    outlook = bytes.fromhex(
        "00000000812B1FA4BEA310199D6E00DD010F540200000180"
        "74006500730074004000740068006D002E006C006F0063000000"
        "53004D0054005000000074006500730074004000740068006D002E006C006F0063000000")
    assert cg.one_off_entry_id("test@thm.loc", "test@thm.loc") == outlook
    assert cg.parse_one_off(outlook) == cg.OneOff("test@thm.loc", "SMTP", "test@thm.loc")
    assert cg.parse_one_off(outlook[:30]) is None  # truncated inside the strings
    assert cg.parse_one_off(b"\x00" * 10) is None


def test_link_members_wraps_found_contacts_and_keeps_uris() -> None:
    props = dict(corpus("apple-group-3.0.vcf")[0].props)
    entry = b"\x00\x00\x00\x00" + b"\x11" * 40
    found = {"6A0B4F0C-3E0A-4A7E-9C1B-2F5D8E7A1C33": cg.ContactRef(entry, "Ann", "ann@x.org")}
    assert cg.link_members(props, found) == 1
    members = props[T.PidLidDistributionListMembers]
    assert cg.parse_wrapped(members[0]) == (0xC3, entry)  # contact, Email1, message entry id
    assert cg.parse_one_off(props[T.PidLidDistributionListOneOffMembers][0]) == cg.OneOff(
        "Ann", "SMTP", "ann@x.org")
    assert props[T.PidLidDistributionListChecksum] == cg.checksum(members)
    assert cg.member_uris(props) == list(props[cg.MEMBERS_PROP])  # unchanged since


def test_members_edited_by_a_mapi_client_win() -> None:
    props = dict(corpus("apple-group-3.0.vcf")[0].props)
    props[T.PidLidDistributionListMembers] = [
        cg.wrapped_entry_id(b"\x01" * 30), cg.one_off_entry_id("Bo", "bo@example.com")]
    props[T.PidLidDistributionListOneOffMembers] = [
        cg.one_off_entry_id("Cy", "cy@example.com"), cg.one_off_entry_id("Bo", "bo@example.com")]
    assert cg.member_uris(props) == ["mailto:cy@example.com", "mailto:bo@example.com"]
    outlook_list = NewMessage(props={T.PidTagMessageClass: "IPM.DistList",
                                     T.PidLidDistributionListName: "Team",
                                     T.PidLidDistributionListMembers: [b"junk", b""]})
    assert "MEMBER:" not in render_vcard(outlook_list, "4.0").decode()


# -- round trip ----------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12).map(str.strip)
WORD = TEXT.filter(bool)
NOTE = st.lists(WORD, min_size=1, max_size=4).map("\n".join)
PHONE = st.from_regex(r"\+?[0-9][0-9 ()-]{2,14}[0-9]", fullmatch=True)
PHONE_TYPES = {"3.0": ["WORK,VOICE", "HOME", "CELL", "WORK,FAX", "HOME,FAX", "FAX", "PAGER",
                       "CAR", "ISDN", "MAIN", "VOICE"],
               "4.0": ["work,voice", "home", "cell", "work,fax", "home,fax", "fax", "pager",
                       "car", "isdn", "main", "voice"]}
DATES = st.dates(min_value=date(1700, 1, 1), max_value=date(2100, 12, 31))


def esc(text: str) -> str:
    return (text.replace("\\", "\\\\").replace("\n", "\\n").replace(",", "\\,")
            .replace(";", "\\;"))


@st.composite
def cards(draw: st.DrawFn, version: str) -> tuple[str, dict[Any, Any]]:
    v4 = version == "4.0"
    lines = ["BEGIN:VCARD", f"VERSION:{version}"]
    expect: dict[Any, Any] = {}
    names = [draw(TEXT) for _ in range(5)]
    if not any(names):
        names[0] = draw(WORD)
    fn = draw(WORD)
    lines += [f"FN:{esc(fn)}", "N:" + ";".join(esc(n) for n in names)]
    expect[T.PidTagDisplayName] = fn
    for key, value in zip((T.PidTagSurname, T.PidTagGivenName, T.PidTagMiddleName,
                           T.PidTagDisplayNamePrefix, T.PidTagGeneration), names, strict=True):
        if value:
            expect[key] = value
    emails = draw(st.lists(st.emails(), max_size=3, unique_by=str.lower))
    for i, address in enumerate(emails):
        lines.append(f"EMAIL;TYPE={'INTERNET' if not v4 else 'home'}:{address}")
        expect[[T.PidLidEmail1EmailAddress, T.PidLidEmail2EmailAddress,
                T.PidLidEmail3EmailAddress][i]] = address
    for kind in draw(st.lists(st.sampled_from(PHONE_TYPES[version]), max_size=8)):
        lines.append(f"TEL;TYPE={kind}:{draw(PHONE)}")
    for slot in draw(st.lists(st.sampled_from(["WORK", "HOME", "OTHER"]), unique=True)):
        parts = [draw(TEXT) for _ in range(5)]
        kind = slot.lower() if v4 else slot
        lines.append(f"ADR;TYPE={kind}:;;" + ";".join(esc(p) for p in parts))
    if draw(st.booleans()):
        company, dept = draw(WORD), draw(TEXT)
        lines.append(f"ORG:{esc(company)};{esc(dept)}")
        expect[T.PidTagCompanyName] = company
    for prop, key in (("TITLE", T.PidTagTitle), ("ROLE", T.PidTagProfession),
                      ("NICKNAME", T.PidTagNickname)):
        if draw(st.booleans()):
            # NICKNAME is a list: no commas, and a value that was only commas is none.
            value = draw(WORD.map(lambda word: word.replace(",", "").strip()).filter(bool))
            lines.append(f"{prop}:{esc(value)}")
            expect[key] = value
    note = draw(st.none() | NOTE)
    if note:
        lines.append(f"NOTE:{esc(note)}")
        expect[T.PidTagBody] = note.replace("\n", "\r\n")
    for prop, key in (("BDAY", T.PidTagBirthday),
                      ("ANNIVERSARY" if v4 else "X-ANNIVERSARY", T.PidTagWeddingAnniversary)):
        day = draw(st.none() | DATES)
        if day:
            lines.append(f"{prop}:{day.strftime('%Y%m%d' if v4 else '%Y-%m-%d')}")
            expect[key] = datetime(day.year, day.month, day.day, tzinfo=UTC)
    for kind, key in (("WORK", T.PidTagBusinessHomePage), ("HOME", T.PidTagPersonalHomePage)):
        if draw(st.booleans()):
            url = "https://example.org/" + draw(st.from_regex(r"[a-z0-9]{0,8}", fullmatch=True))
            lines.append(f"URL;TYPE={kind.lower() if v4 else kind}:{url}")
            expect[key] = url
    if draw(st.booleans()):
        im = "xmpp:" + draw(st.emails())
        lines.append(f"IMPP:{im}")
        expect[T.PidLidInstantMessagingAddress] = im
    categories = draw(st.lists(WORD, max_size=3, unique=True))
    if categories:
        lines.append("CATEGORIES:" + ",".join(esc(c) for c in categories))
        expect[T.PidNameKeywords] = categories
    if draw(st.booleans()):
        uid = str(draw(st.uuids()))
        lines.append(f"UID:{uid}")
        expect[UID_PROP] = uid
    if draw(st.booleans()):
        data = JPEG + draw(st.binary(max_size=64))
        encoded = base64.b64encode(data).decode()
        lines.append(f"PHOTO:data:image/jpeg;base64,{encoded}" if v4
                     else f"PHOTO;ENCODING=b;TYPE=JPEG:{encoded}")
        expect["photo"] = data
    lines.append("END:VCARD")
    return "".join(fold(line).decode() for line in lines), expect


def check_round_trip(card: str, expect: dict[Any, Any]) -> None:
    message = one(card)
    for key, value in expect.items():
        assert (photo(message) if key == "photo" else message.props.get(key)) == value, key
    for version in ("3.0", "4.0"):
        again = one(render_vcard(message, version))
        assert mapped(again) == mapped(message), version


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cards("3.0"))
def test_round_trip_vcard_3(generated: tuple[str, dict[Any, Any]]) -> None:
    check_round_trip(*generated)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cards("4.0"))
def test_round_trip_vcard_4(generated: tuple[str, dict[Any, Any]]) -> None:
    check_round_trip(*generated)


# -- syntax --------------------------------------------------------------------------

def test_fold_keeps_characters_whole_and_lines_short() -> None:
    line = "NOTE:" + "é€😀" * 40
    folded = fold(line)
    assert all(len(part) <= 75 for part in folded.split(b"\r\n"))
    assert folded.replace(b"\r\n ", b"").decode() == line + "\r\n"
    for part in folded.split(b"\r\n"):
        part.decode("utf-8")  # no character split across lines


def test_escaping_and_parameter_forms() -> None:
    assert escape("a,b;c\\d\r\ne") == "a\\,b\\;c\\\\d\\ne"
    message = one("BEGIN:VCARD\nVERSION:3.0\nFN:X\nitem1.TEL;type=\"HOME\";TYPE=fax;"
                  "X-UNKNOWN=\"a:b;c\":123\nitem2.TEL:456\nitem2.X-ABLabel:_$!<Main>!$_\n"
                  "EMAIL;TYPE=INTERNET:b@x.org\nEMAIL;TYPE=INTERNET;PREF=1:a@x.org\n"
                  "X-MS-TEL;TYPE=RADIO:789\nEND:VCARD\n")
    assert message.props[T.PidTagHomeFaxNumber] == "123"
    assert message.props[T.PidTagPrimaryTelephoneNumber] == "456"
    assert message.props[T.PidTagRadioTelephoneNumber] == "789"
    assert message.props[T.PidLidEmail1EmailAddress] == "a@x.org"  # PREF first
    assert message.props[T.PidLidEmail2EmailAddress] == "b@x.org"


def test_yearless_birthday_both_versions() -> None:
    message = one("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Y\r\nBDAY:--1224\r\nEND:VCARD\r\n")
    assert "BDAY:--1224" in unfolded(render_vcard(message, "4.0"))
    v3 = render_vcard(message, "3.0")
    assert "BDAY;X-APPLE-OMIT-YEAR=1604:1604-12-24" in unfolded(v3)
    assert one(v3).props[T.PidTagBirthday] == datetime(1604, 12, 24, tzinfo=UTC)


def test_outlook_written_birthday_without_local_value() -> None:
    # Outlook in UTC+2 stores the local midnight of 1980-03-22 as 1980-03-21 22:00 UTC.
    message = NewMessage(props={T.PidTagMessageClass: "IPM.Contact", T.PidTagDisplayName: "Z",
                                T.PidTagBirthday: datetime(1980, 3, 21, 22, tzinfo=UTC)})
    assert "BDAY:1980-03-22" in unfolded(render_vcard(message, "3.0"))


# -- bad input -----------------------------------------------------------------------

def test_missing_end_nuls_and_garbage_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.convert")
    data = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\x00nn\r\nthis is garbage\r\n:\r\nN:;;\r\n"
    message = one(data)
    assert message.props[T.PidTagDisplayName] == "Ann"
    assert "no END:VCARD" in caplog.text


def test_next_begin_closes_an_open_card_and_agent_cards_are_skipped() -> None:
    data = ("BEGIN:VCARD\nVERSION:2.1\nFN:One\nAGENT:\nBEGIN:VCARD\nFN:Agent\nEND:VCARD\n"
            "TEL;WORK:1\nBEGIN:VCARD\nVERSION:3.0\nFN:Two\nEND:VCARD\n")
    first, second = parse_vcards(data)
    assert first.props[T.PidTagDisplayName] == "One"
    assert first.props[T.PidTagBusinessTelephoneNumber] == "1"
    assert second.props[T.PidTagDisplayName] == "Two"


def test_broken_encodings_and_charsets() -> None:
    message = one(b"BEGIN:VCARD\r\nVERSION:2.1\r\nN;ENCODING=QUOTED-PRINTABLE;CHARSET=bogus:"
                  b"M=FCller=ZZ;J=\r\nan\r\nFN;CHARSET=ISO-8859-1:J\xfcrgen\r\n"
                  b"NOTE:caf\xe9\r\nPHOTO;ENCODING=BASE64;TYPE=JPEG:!!!not*base64\r\n"
                  b"TITLE;CHARSET=utf-8:\xff\xfe\r\nEND:VCARD\r\n")
    assert message.props[T.PidTagSurname] == "Müller=ZZ"
    assert message.props[T.PidTagGivenName] == "Jan"
    assert message.props[T.PidTagDisplayName] == "Jürgen"
    assert message.props[T.PidTagBody] == "café"
    assert message.attachments == []  # the photo decodes to no image


def test_utf16_with_bom() -> None:
    data = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Zoë\r\nEND:VCARD\r\n".encode("utf-16")
    assert one(data).props[T.PidTagDisplayName] == "Zoë"


def test_huge_photo_is_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.convert")
    big = base64.b64encode(b"\xff\xd8" + bytes(MAX_PHOTO)).decode()
    message = one(f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Big\r\nPHOTO;ENCODING=b:{big}\r\nEND:VCARD")
    assert message.attachments == [] and T.PidLidHasPicture not in message.props
    assert "PHOTO dropped" in caplog.text
    ok = base64.b64encode(JPEG).decode().rstrip("=")  # padding lost on the way
    assert photo(one(f"BEGIN:VCARD\nVERSION:4.0\nFN:S\nPHOTO:data:image/jpeg;base64,{ok}\n"
                     "END:VCARD")) == JPEG


def test_too_many_emails_phones_and_addresses_are_dropped_not_fatal() -> None:
    lines = ["BEGIN:VCARD", "VERSION:3.0", "FN:Many"]
    lines += [f"EMAIL:u{i}@x.org" for i in range(10)]
    lines += [f"TEL;TYPE=CELL:{i}" for i in range(10)]
    lines += [f"ADR;TYPE=WORK:;;{i};;;;" for i in range(5)]
    message = one("\r\n".join([*lines, "END:VCARD"]))
    assert message.props[T.PidLidEmail3EmailAddress] == "u2@x.org"
    assert message.props[T.PidTagMobileTelephoneNumber] == "0"
    assert message.props[T.PidLidWorkAddressStreet] == "0"
    assert message.props[T.PidTagOtherAddressStreet] == "1"


@pytest.mark.parametrize("data", [b"", b"BEGIN:VCARD", b"END:VCARD\r\n", b"\x00" * 100,
                                  b"BEGIN:VCARD\r\n" * 50, b"BEGIN:VCARD\r\nN:" + b";" * 10000,
                                  b"BEGIN:VCARD\r\nBDAY:2023-02-30\r\nREV:notadate\r\n"
                                  b"GENDER:Q\r\nKIND:group\r\nMEMBER:\r\nEND:VCARD"])
def test_degenerate_input_never_raises(data: bytes) -> None:
    for message in parse_vcards(data):
        render_vcard(message, "3.0")
        render_vcard(message, "4.0")


def test_truncated_corpus_files_never_raise() -> None:
    data = (CORPUS / "outlook-2007-2.1.vcf").read_bytes()
    for cut in range(0, len(data), 37):
        for message in parse_vcards(data[:cut]):
            render_vcard(message, "4.0")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=300))
def test_arbitrary_input_never_raises(data: bytes | str) -> None:
    for message in parse_vcards(b"BEGIN:VCARD\r\n" + (data if isinstance(data, bytes)
                                                       else data.encode())):
        render_vcard(message, "3.0")


def test_card_and_line_counts_are_bounded() -> None:
    from gateway.convert import vcard

    cards = read_cards(b"BEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\n" * (vcard.MAX_CARDS + 5))
    assert len(cards) == vcard.MAX_CARDS
    lines = read_cards(b"BEGIN:VCARD\r\n" + b"NOTE:x\r\n" * (vcard.MAX_LINES + 50))
    assert len(lines[0]) <= vcard.MAX_LINES + 1


def test_render_survives_odd_values() -> None:
    message = NewMessage(props={T.PidTagMessageClass: "IPM.Contact", T.PidTagDisplayName: 5,
                                T.PidTagBirthday: "yesterday", T.PidNameKeywords: ["a", 3],
                                T.PidTagNickname: "lone \udc80 surrogate"})
    card = render_vcard(message, "4.0")
    assert card.startswith(b"BEGIN:VCARD\r\nVERSION:4.0\r\n") and card.endswith(b"END:VCARD\r\n")
    assert b"NICKNAME:lone ? surrogate\r\n" in card


# -- the store -----------------------------------------------------------------------

async def load(mbox: Mailbox, mid: int) -> NewMessage:
    """``load_message``, with the named properties the renderer reads asked for by name.

    ``load_message`` lists a message's named properties under the store's numeric
    ids (0x8000 and up), not as ``NamedProp`` keys; until it maps them back, the
    renderer's are fetched by key.
    """
    message = await load_message(mbox, mid)
    message.props.update(await mbox.message(mid, NAMED_PROPS))
    return message


async def test_contact_stored_loaded_and_rendered(mbox: Mailbox) -> None:
    parsed = corpus("outlook-2007-2.1.vcf")[0]
    parsed.props[UID_PROP] = "uid-42"
    parsed.props[T.PidNameKeywords] = ["Work", "VIP"]
    mid = await mbox.create_message(int(Private.CONTACTS), parsed)
    loaded = await load(mbox, mid)
    stored = await mbox.message(mid, list(parsed.props))
    for key, value in parsed.props.items():  # the store takes every value as converted
        assert stored.get(key) == value, key
    for key in NAMED_PROPS:
        assert loaded.props.get(key) == parsed.props.get(key), key
    assert photo(loaded) == photo(parsed)
    card = render_vcard(loaded, "4.0")
    assert card == render_vcard(loaded, "4.0")
    again = one(card)
    assert again.props[T.PidTagBirthday] == parsed.props[T.PidTagBirthday]
    assert photo(again) == photo(parsed)
    assert "UID:uid-42" in unfolded(card)

    group = corpus("kind-group-4.0.vcf")[1]
    gid = await mbox.create_message(int(Private.CONTACTS), group)
    lines = unfolded(render_vcard(await load(mbox, gid), "4.0"))
    assert "MEMBER:xmpp:subscriber2@example.com" in lines


def test_crc_helper_agrees_with_zlib_convention() -> None:
    assert cg.checksum([b"abc"]) == reference_crc([b"abc"])
    assert cg.checksum([]) == 0
    assert zlib.crc32(b"abc") != cg.checksum([b"abc"]) & 0xFFFFFFFF  # not zlib's own form
