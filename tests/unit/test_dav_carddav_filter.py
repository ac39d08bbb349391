"""CardDAV addressbook-query filters and address-data (RFC 6352 10.4, 10.5, the 8.6 examples),
the text-match collations and match types, and hostile filters."""

from __future__ import annotations

import time

import pytest

from gateway.xmlsafe import parse
from plugins.dav import text_match
from plugins.dav.carddav_filter import (
    AddressbookFilter,
    AddressDataSpec,
    fold,
    parse_address_data,
    parse_filter,
)
from plugins.dav.errors import DavError
from plugins.dav.filter_parsing import MAX_DEPTH

CR = "urn:ietf:params:xml:ns:carddav"
SUPPORTED = f"{{{CR}}}supported-filter"
COLLATION = f"{{{CR}}}supported-collation"


def card(*lines: str, version: str = "3.0") -> bytes:
    return ("\r\n".join(("BEGIN:VCARD", f"VERSION:{version}", *lines, "END:VCARD"))
            + "\r\n").encode()


CYRUS = card("UID:cyrus", "FN:Cyrus Daboo", "N:Daboo;Cyrus;;;", "NICKNAME:me",
             "EMAIL;TYPE=work:daboo@example.com", "EMAIL;TYPE=home,pref:cyrus@example.net",
             "TEL;TYPE=cell:+1-555-0100")
BERNARD = card("UID:bernard", "FN:Bernard Desruisseaux", "EMAIL:bernard@example.com",
               "TEL;TYPE=WORK,VOICE:+1-555-0101", "NOTE:Likes long\\, very long notes")
JURGEN = card("UID:jurgen", "FN:Jürgen Müller", "N:Müller;Jürgen;;;",
              "ORG:Foo\\, Inc.;Research", "item1.EMAIL;TYPE=INTERNET:jm@example.org",
              "item1.X-ABLabel:_$!<Other>!$_", "item2.URL:https://example.org/jürgen",
              "item2.X-ABLabel:blog", "NOTE:a note that is folded over more than one physical",
              "  line of the vCard", version="4.0")
BARE = card("UID:bare", "FN:Nobody")
CARDS = {"cyrus": CYRUS, "bernard": BERNARD, "jurgen": JURGEN, "bare": BARE}


def flt(inner: str, attrs: str = "") -> AddressbookFilter:
    return parse_filter(parse(f'<C:filter xmlns:C="{CR}"{attrs}>{inner}</C:filter>'.encode()))


def matching(f: AddressbookFilter) -> list[str]:
    return sorted(name for name, data in CARDS.items() if f.matches(data))


def prop(name: str, needle: str, match_type: str = "contains", extra: str = "",
         attrs: str = "") -> str:
    return (f'<C:prop-filter name="{name}"{attrs}><C:text-match match-type="{match_type}"'
            f'{extra}>{needle}</C:text-match></C:prop-filter>')


def refused(inner: str, condition: str = SUPPORTED, attrs: str = "") -> None:
    with pytest.raises(DavError) as caught:
        flt(inner, attrs)
    assert (caught.value.status, caught.value.condition) == (403, condition)


# -- RFC 6352 examples -----------------------------------------------------------------

def test_8_6_4_nickname_equals() -> None:
    f = flt('<C:prop-filter name="NICKNAME"><C:text-match collation="i;unicode-casemap" '
            'match-type="equals">me</C:text-match></C:prop-filter>')
    assert matching(f) == ["cyrus"]
    assert matching(flt(prop("NICKNAME", "m", "equals"))) == []


def test_8_6_5_anyof_fn_or_email() -> None:
    f = flt(prop("FN", "daboo") + prop("EMAIL", "bernard"), ' test="anyof"')
    assert matching(f) == ["bernard", "cyrus"]
    assert matching(flt(prop("FN", "daboo") + prop("EMAIL", "bernard"))) == [
        "bernard", "cyrus"]  # anyof is the default
    both = flt(prop("FN", "daboo") + prop("EMAIL", "example.net"), ' test="allof"')
    assert matching(both) == ["cyrus"]
    assert matching(flt(prop("FN", "daboo") + prop("EMAIL", "bernard"),
                        ' test="allof"')) == []


def test_empty_filter_matches_everything() -> None:
    assert matching(flt("")) == sorted(CARDS)


# -- match types, collations, negation -------------------------------------------------

@pytest.mark.parametrize(("needle", "match_type", "expected"), [
    ("cyrus daboo", "equals", ["cyrus"]),
    ("cyrus", "equals", []),
    ("ber", "starts-with", ["bernard"]),
    ("uisseaux", "ends-with", ["bernard"]),
    ("O", "contains", ["bare", "cyrus"]),
    ("", "contains", ["bare", "bernard", "cyrus", "jurgen"]),
    ("müller", "ends-with", ["jurgen"]),
    ("JÜRGEN", "starts-with", ["jurgen"]),
])
def test_match_types(needle: str, match_type: str, expected: list[str]) -> None:
    assert matching(flt(prop("FN", needle, match_type))) == expected


def test_collations() -> None:
    octet = ' collation="i;octet"'
    ascii_ = ' collation="i;ascii-casemap"'
    assert matching(flt(prop("FN", "cyrus", extra=octet))) == []
    assert matching(flt(prop("FN", "Cyrus", extra=octet))) == ["cyrus"]
    assert matching(flt(prop("FN", "CYRUS", extra=ascii_))) == ["cyrus"]
    assert matching(flt(prop("FN", "JÜRGEN", extra=ascii_))) == []   # Ü is not ASCII
    assert matching(flt(prop("FN", "JüRGEN", extra=ascii_))) == ["jurgen"]
    assert matching(flt(prop("FN", "JÜRGEN"))) == ["jurgen"]         # unicode-casemap


def test_text_match_helpers() -> None:
    assert text_match.match("Straße", "STRASSE", "i;unicode-casemap", "equals") is False
    assert text_match.match("Ünïcode", "üNÏ", "i;unicode-casemap", "starts-with")
    # canonically equivalent forms match: composed é and e + combining acute
    assert text_match.match("caf\u00e9", "CAFE\u0301", "i;unicode-casemap", "equals")
    assert not text_match.match("caf\u00e9", "CAFE\u0301", "i;octet", "equals")
    assert text_match.match("abc", "", "i;octet", "contains")
    with pytest.raises(text_match.UnsupportedCollation):
        text_match.match("a", "a", "i;basic", "contains")
    with pytest.raises(text_match.UnsupportedMatchType):
        text_match.match("a", "a", "i;octet", "regex")


def test_negate_condition() -> None:
    f = flt(prop("EMAIL", "example.com", extra=' negate-condition="yes"'))
    # cyrus has one EMAIL not at example.com; jurgen's is at example.org; bare has none
    assert matching(f) == ["cyrus", "jurgen"]


def test_escaped_and_folded_values() -> None:
    assert matching(flt(prop("ORG", "Foo, Inc.;Research", "equals"))) == ["jurgen"]
    assert matching(flt(prop("NOTE", "long, very"))) == ["bernard"]
    assert matching(flt(prop("NOTE", "physical line"))) == ["jurgen"]


def test_groups() -> None:
    assert matching(flt(prop("EMAIL", "jm@"))) == ["jurgen"]
    assert matching(flt(prop("item1.EMAIL", "jm@"))) == ["jurgen"]
    assert matching(flt(prop("item2.EMAIL", "jm@"))) == []
    assert matching(flt(prop("X-ABLABEL", "blog"))) == ["jurgen"]


def test_is_not_defined_and_params() -> None:
    no_email = flt('<C:prop-filter name="EMAIL"><C:is-not-defined/></C:prop-filter>')
    assert matching(no_email) == ["bare"]
    any_email = flt('<C:prop-filter name="EMAIL"/>')
    assert matching(any_email) == ["bernard", "cyrus", "jurgen"]
    work = flt('<C:prop-filter name="TEL"><C:param-filter name="TYPE"><C:text-match '
               'match-type="equals">work</C:text-match></C:param-filter></C:prop-filter>')
    assert matching(work) == ["bernard"]
    untyped = flt('<C:prop-filter name="EMAIL"><C:param-filter name="TYPE">'
                  '<C:is-not-defined/></C:param-filter></C:prop-filter>')
    assert matching(untyped) == ["bernard"]
    typed = flt('<C:prop-filter name="EMAIL"><C:param-filter name="TYPE"/></C:prop-filter>')
    assert matching(typed) == ["cyrus", "jurgen"]


def test_prop_filter_test_attribute() -> None:
    anyof = flt('<C:prop-filter name="EMAIL"><C:text-match>daboo</C:text-match>'
                '<C:param-filter name="TYPE"><C:text-match>home</C:text-match></C:param-filter>'
                '</C:prop-filter>')
    assert matching(anyof) == ["cyrus"]
    allof = flt('<C:prop-filter name="EMAIL" test="allof"><C:text-match>daboo</C:text-match>'
                '<C:param-filter name="TYPE"><C:text-match>home</C:text-match></C:param-filter>'
                '</C:prop-filter>')
    assert matching(allof) == []  # on one EMAIL line, not across two
    two = flt('<C:prop-filter name="EMAIL" test="allof"><C:text-match>daboo</C:text-match>'
              '<C:text-match match-type="ends-with">.com</C:text-match></C:prop-filter>')
    assert matching(two) == ["cyrus"]


def test_garbage_card_does_not_match() -> None:
    f = flt(prop("FN", "x"))
    assert not f.matches(b"")
    assert not f.matches(b"\xff\xfe\x00garbage")
    assert not f.matches(b"BEGIN:VCARD\r\nFN")


# -- bad and hostile filters -----------------------------------------------------------

def test_unsupported_collation() -> None:
    refused(prop("FN", "x", extra=' collation="i;fuzzy"'), COLLATION)


@pytest.mark.parametrize(("inner", "attrs"), [
    (prop("FN", "x", "regex"), ""),
    (prop("FN", "x"), ' test="someof"'),
    (prop("FN", "x", attrs=' test="oneof"'), ""),
    (prop("FN", "x", extra=' negate-condition="perhaps"'), ""),
    ("<C:prop-filter/>", ""),
    ('<C:prop-filter name="bad name"/>', ""),
    ('<C:prop-filter name="FN"><C:is-not-defined/><C:text-match>x</C:text-match>'
     "</C:prop-filter>", ""),
    ('<C:prop-filter name="FN"><C:time-range/></C:prop-filter>', ""),
    ('<C:comp-filter name="VCARD"/>', ""),
    ('<C:prop-filter name="FN"><C:param-filter name="X"><C:text-match>a</C:text-match>'
     "<C:text-match>b</C:text-match></C:param-filter></C:prop-filter>", ""),
    ('<C:prop-filter name="FN"/>' * 1001, ""),
])
def test_bad_filters(inner: str, attrs: str) -> None:
    refused(inner, attrs=attrs)


def test_wrong_root() -> None:
    with pytest.raises(DavError):
        parse_filter(parse(f'<C:addressbook-query xmlns:C="{CR}"/>'.encode()))


def test_depth_is_capped() -> None:
    assert MAX_DEPTH == 16
    deep = '<C:prop-filter name="FN">' + "<C:param-filter name=\"X\">" * 30 \
        + "</C:param-filter>" * 30 + "</C:prop-filter>"
    refused(deep)


def test_huge_text_match_is_bounded() -> None:
    f = flt(prop("FN", "x" * 60000))
    started = time.monotonic()
    assert matching(f) == []
    assert time.monotonic() - started < 0.5
    refused(prop("FN", "x" * 70000))


def test_many_cards_are_cheap() -> None:
    f = flt(prop("FN", "daboo") + prop("EMAIL", "example.org"))
    started = time.monotonic()
    assert sum(f.matches(data) for _ in range(500) for data in CARDS.values()) == 1000
    assert time.monotonic() - started < 2


# -- address-data ----------------------------------------------------------------------

def address_data(inner: str = "", attrs: str = "") -> AddressDataSpec:
    return parse_address_data(parse(
        f'<C:address-data xmlns:C="{CR}"{attrs}>{inner}</C:address-data>'.encode()))


def test_address_data_defaults_and_versions() -> None:
    plain = address_data()
    assert (plain.content_type, plain.version, plain.is_identity) == ("text/vcard", "3.0", True)
    assert plain.render(CYRUS) == CYRUS
    assert address_data(attrs=' version="4.0"').version == "4.0"
    assert address_data("<C:allprop/>").is_identity


@pytest.mark.parametrize("attrs", [' content-type="application/vcard+json"',
                                   ' version="2.1"', ' content-type="text/x-vcard"'])
def test_unsupported_address_data(attrs: str) -> None:
    with pytest.raises(DavError) as caught:
        address_data(attrs=attrs)
    assert (caught.value.status, caught.value.condition) == (
        403, f"{{{CR}}}supported-address-data")


def test_address_data_selection() -> None:
    wanted = address_data('<C:prop name="FN"/><C:prop name="EMAIL"/><C:prop name="TEL" '
                          'novalue="yes"/>')
    assert not wanted.is_identity
    out = wanted.render(CYRUS)
    assert out.decode().split("\r\n") == [
        "BEGIN:VCARD", "VERSION:3.0", "UID:cyrus", "FN:Cyrus Daboo",
        "EMAIL;TYPE=work:daboo@example.com", "EMAIL;TYPE=home,pref:cyrus@example.net",
        "TEL;TYPE=cell:", "END:VCARD", ""]


def test_address_data_keeps_groups_and_folds() -> None:
    out = address_data('<C:prop name="EMAIL"/><C:prop name="NOTE"/>').render(JURGEN)
    text = out.decode()
    assert "item1.EMAIL;TYPE=INTERNET:jm@example.org\r\n" in text
    assert "item1.X-ABLabel:_$!<Other>!$_\r\n" in text
    assert "item2" not in text and "FN:" not in text
    assert "NOTE:a note that is folded over more than one physical line of the vCard" in \
        text.replace("\r\n ", "")
    assert all(len(line) <= 75 for line in out.split(b"\r\n"))


def test_fold_never_splits_a_character() -> None:
    line = ("NOTE:" + "€" * 60).encode()
    folded = fold(line)
    parts = folded.split(b"\r\n")[:-1]
    assert all(len(part) <= 75 for part in parts)
    assert all(part.decode("utf-8") for part in parts)
    assert b"".join(p[1:] if i else p for i, p in enumerate(parts)) == line


def test_address_data_novalue_in_a_group_and_big_photo() -> None:
    photo = "A" * 2_000_000
    folded = "\r\n ".join(photo[i:i + 74] for i in range(0, len(photo), 74))
    data = card("UID:p", "FN:Pic", "item1.EMAIL:p@example.org", "item1.X-ABLabel:work",
                f"PHOTO;ENCODING=b;TYPE=JPEG:{folded}")
    started = time.monotonic()
    out = address_data('<C:prop name="EMAIL" novalue="yes"/><C:prop name="PHOTO"/>'
                       ).render(data)
    assert time.monotonic() - started < 2
    text = out.decode()
    assert "item1.EMAIL:\r\n" in text and "item1.X-ABLabel:work\r\n" in text
    assert text.replace("\r\n ", "").count(photo) == 1
    assert flt(prop("FN", "pic")).matches(data)
