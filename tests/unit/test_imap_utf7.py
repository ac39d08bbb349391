"""Modified UTF-7 mailbox names (RFC 3501 5.1.3): round trips, the RFC's examples, strictness."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugins.imap.utf7 import decode, encode


@pytest.mark.parametrize(("text", "encoded"), [
    ("INBOX", "INBOX"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("A&B", "A&-B"),
    ("&", "&-"),
    ("Ünïcödé", "&ANw-n&AO8-c&APY-d&AOk-"),
    ("😀", "&2D3eAA-"),
    ("", ""),
])
def test_known_spellings(text: str, encoded: str) -> None:
    assert encode(text) == encoded
    assert decode(encoded) == text


@given(st.text())
def test_every_name_round_trips(text: str) -> None:
    assert decode(encode(text)) == text


@pytest.mark.parametrize("bad", [
    "&",                # unterminated
    "abc&AOQ",          # unterminated run
    "&AGE-",            # base64 of printable ASCII "a"
    "&Jjo!",            # bad base64 character inside the run
    "&AOQ-&AOQ-",       # two adjacent runs (should be one)
    "&AO-",             # truncated: odd number of bytes
    "&AOR-",            # non-zero padding bits
    "&2D3-",            # lone high surrogate
    "tab\there",        # control character
    "caf\u00e9",        # raw 8-bit: must be encoded
    "&A-",              # impossible base64 length
    "&U,BTFw",          # missing '-'
])
def test_invalid_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="modified UTF-7"):
        decode(bad)


def test_ampersand_escape_next_to_a_run_is_fine() -> None:
    assert decode("&-&AOQ-") == "&ä"
