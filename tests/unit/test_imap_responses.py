"""Response encoding: atoms, quoted strings, literals, mailbox names, status lines."""

from __future__ import annotations

import pytest

from plugins.imap import responses as R
from plugins.imap.args import format_date_time, parse_date_time
from plugins.imap.errors import Bad
from plugins.imap.parser import tokenize


@pytest.mark.parametrize(("value", "wire"), [
    ("plain", b'"plain"'),
    ('say "hi"', b'"say \\"hi\\""'),
    ("back\\slash", b'"back\\\\slash"'),
    ("two\r\nlines", b"{10}\r\ntwo\r\nlines"),
    ("nul\0", b"{4}\r\nnul\0"),
    ("", b'""'),
])
def test_quoted_or_literal(value: str, wire: bytes) -> None:
    assert R.quoted(value) == wire


def test_quoted_strings_parse_back_to_the_same_value() -> None:
    for value in ['a "b" \\c', "x" * 50, "ünï"]:
        assert tokenize(R.quoted(value)) == [value.encode()]


def test_eight_bit_becomes_a_literal_for_clients_without_utf8() -> None:
    assert R.quoted("ä", utf8=False) == b"{2}\r\n\xc3\xa4"
    assert R.quoted("ä", utf8=True) == '"ä"'.encode()


def test_long_strings_become_literals() -> None:
    assert R.quoted("x" * 5000).startswith(b"{5000}\r\n")


@pytest.mark.parametrize(("value", "wire"), [
    ("INBOX", b"INBOX"),
    ("with space", b'"with space"'),
    ("NIL", b'"NIL"'),
    ("", b'""'),
    ("a]b", b'"a]b"'),
    ("star*", b'"star*"'),
])
def test_astring(value: str, wire: bytes) -> None:
    assert R.astring(value) == wire


def test_nstring() -> None:
    assert R.nstring(None) == b"NIL"
    assert R.nstring("x") == b'"x"'


def test_mailbox_names_in_utf7_or_utf8() -> None:
    assert R.mailbox_name("Entwürfe", utf8=False) == b"Entw&APw-rfe"
    assert R.mailbox_name("Two words", utf8=False) == b'"Two words"'
    assert R.mailbox_name("Entwürfe", utf8=True) == '"Entwürfe"'.encode()
    assert R.mailbox_name("inbox", utf8=False) == b"INBOX"


def test_status_lines_with_codes_and_one_line_text() -> None:
    assert R.status("a1", "OK", "done") == b"a1 OK done\r\n"
    assert R.status("a1", "NO", "missing", "TRYCREATE") == b"a1 NO [TRYCREATE] missing\r\n"
    assert R.status("a1", "BAD", "two\r\nlines") == b"a1 BAD two  lines\r\n"
    assert R.bad(None, "what?") == b"* BAD what?\r\n"
    assert R.continuation("go") == b"+ go\r\n"
    assert R.continuation() == b"+ \r\n"


def test_literal8() -> None:
    assert R.literal(b"\0\1", literal8=True) == b"~{2}\r\n\0\1"


def test_date_time_round_trip() -> None:
    value = parse_date_time(b"17-Jul-1996 02:44:25 -0700")
    assert format_date_time(value) == b'"17-Jul-1996 02:44:25 -0700"'
    assert format_date_time(parse_date_time(b" 1-Jan-2024 00:00:00 +0000")) == \
        b'"01-Jan-2024 00:00:00 +0000"'


@pytest.mark.parametrize("bad", [b"32-Jul-1996 02:44:25 -0700", b"17-Foo-1996 02:44:25 -0700",
                                 b"17-Jul-1996 25:44:25 -0700", b"yesterday", b""])
def test_invalid_date_time(bad: bytes) -> None:
    with pytest.raises(Bad):
        parse_date_time(bad)
