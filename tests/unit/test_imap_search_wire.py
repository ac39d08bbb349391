"""SEARCH, ESEARCH, SAVE and SORT over the wire: a bare client against a real gateway process.

Also the same searches against a private Dovecot holding the same messages,
for the answers where the RFC leaves room (ESEARCH ordering, SAVE with MIN).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.imap import ImapServer
from tests.unit.test_imap_search_dovecot import RawImap

USER = "alice@example.org"


def message(sender: str, subject: str, body: str, extra: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: {USER}\r\nSubject: {subject}\r\n{extra}"
            f"Date: Thu, 01 Feb 2024 10:00:00 +0000\r\n\r\n{body}\r\n").encode()


MESSAGES = [
    message("Anna <anna@example.org>", "Budget review", "numbers attached", "X-Ticket: 4711\r\n"),
    message("bert@example.net", "Re: Budget review", "looks fine"),
    message("Carol <carol@example.com>", "Lunch", "pizza?", "X-Ticket: 815\r\n"),
]


@pytest.fixture
def client(imap_server: ImapServer) -> Iterator[RawImap]:
    imap_server.deliver_many(USER, MESSAGES)
    conn = RawImap(imap_server.port)
    try:
        assert ok(conn.command("LOGIN", USER, imap_server.users[USER]))
        assert ok(conn.command("SELECT", "INBOX"))
        yield conn
    finally:
        conn.close()


def ok(answer: tuple[bytes, list[bytes]]) -> list[bytes]:
    done, lines = answer
    assert done.split()[1] == b"OK", answer
    return lines or [b""]


def untagged(lines: list[bytes], name: bytes) -> list[bytes]:
    return [line for line in lines if line.startswith(b"* " + name)]


def search(conn: RawImap, *args: object) -> bytes:
    (line,) = untagged(ok(conn.command("SEARCH", *args)), b"SEARCH")
    return line


def test_search_keys(client: RawImap) -> None:
    assert search(client, "SUBJECT", b"budget review") == b"* SEARCH 1 2"
    assert search(client, "FROM", "anna", "NOT", "SEEN") == b"* SEARCH 1"
    assert search(client, "TEXT", "pizza") == b"* SEARCH 3"
    assert search(client, "HEADER", "X-Ticket", b"4711") == b"* SEARCH 1"
    assert search(client, "OR", "BODY", "fine", "2:3", "UNFLAGGED") == b"* SEARCH 2 3"
    assert search(client, "CHARSET", "UTF-8", "SUBJECT", "lünch".encode()) == b"* SEARCH"
    ok(client.command("STORE", "2", "+FLAGS", "(\\Flagged)"))
    assert search(client, "FLAGGED") == b"* SEARCH 2"
    (uids,) = untagged(ok(client.command("UID", "SEARCH", "ALL")), b"SEARCH")
    last = uids.split()[-1].decode()
    (line,) = untagged(ok(client.command("UID", "SEARCH", "UID", last)), b"SEARCH")
    assert line == f"* SEARCH {last}".encode()


BAD_INPUT = [
    (("BOGUS",), b"BAD"), (("SINCE", "yesterday"), b"BAD"), (("SUBJECT",), b"BAD"),
    (("1:*:2",), b"BAD"), (("CHARSET", "KOI8-R", "ALL"), b"NO [BADCHARSET"),
]


def test_bad_input_esearch_save_and_sort(client: RawImap) -> None:
    """One gateway for all of these: starting one is the slow part."""
    for args, answer in BAD_INPUT:
        done, lines = client.command("SEARCH", *args)
        assert done.split(b" ", 1)[1].startswith(answer), done
        assert not untagged(lines, b"SEARCH")
    lines = ok(client.command("UID", "SEARCH", "RETURN", ["MIN", "COUNT"], "SUBJECT", "budget"))
    (esearch,) = untagged(lines, b"ESEARCH")
    assert esearch.startswith(b'* ESEARCH (TAG "d') and b" UID MIN " in esearch
    assert esearch.endswith(b" COUNT 2")
    lines = ok(client.command("SEARCH", "RETURN", ["MAX", "SAVE"], "SUBJECT", "budget"))
    assert untagged(lines, b"ESEARCH")[0].endswith(b" MAX 2")
    assert search(client, "$") == b"* SEARCH 2"  # SAVE with MAX alone keeps the maximum
    assert not untagged(ok(client.command("SEARCH", "RETURN", ["SAVE"], "SEEN")), b"ESEARCH")
    assert search(client, "$") == b"* SEARCH"
    ok(client.command("SEARCH", "RETURN", ["SAVE", "COUNT"], "SUBJECT", "budget"))
    (line,) = untagged(ok(client.command("SEARCH", "RETURN", [], "NOT", "$")), b"ESEARCH")
    assert line.endswith(b" ALL 3")
    (line,) = untagged(ok(client.command("SORT", ["REVERSE", "SUBJECT"], "UTF-8", "ALL")),
                       b"SORT")
    assert line == b"* SORT 3 1 2"
