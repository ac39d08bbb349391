"""SEARCH semantics beside Dovecot's: the same messages, the same searches, the same answers.

The messages go into a private Dovecot (APPEND with flags and INTERNALDATE)
and into a store (``mime_in.parse`` + ``create_message``, flags through
``gateway.store.imap``) in the same order, so sequence numbers agree; each
search is sent to Dovecot as written and run with ``run_search`` here. Where
we answer differently on purpose, the case is listed in ``DIFFERENT`` with the
reason, and the test checks that it still differs (so the list stays true).
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.convert import mime_in
from gateway.store import Mailbox, Private, imap
from gateway.store import tags as T
from plugins.imap.search import SelectedView, parse_search, run_search
from tests.harness.dovecot import DovecotMissing, DovecotServer, start_dovecot

INBOX = int(Private.INBOX)
USER = "alice@example.org"
TEXT = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"


def msg(head: str, body: str) -> bytes:
    return (head.replace("\n", "\r\n") + "\r\n" + body.replace("\n", "\r\n")).encode("utf-8")


ZEBRA = base64.b64encode(b"A zebra crossing\r\n").decode()
MESSAGES: list[tuple[bytes, list[str], datetime]] = [
    (msg("From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.org>\n"
         "To: alice@example.org\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Wien\n"
         "Date: Fri, 02 Feb 2024 23:30:00 -0500\nMessage-ID: <one@example.org>\n"
         "X-Custom: red\n =?utf-8?q?gr=C3=BCn?= blue\n" + TEXT, "Viele Grüße\n"),
     ["\\Seen"], datetime(2024, 2, 3, 4, 30, tzinfo=UTC)),
    (msg("From: Anna Berg <anna@example.org>\nTo: Bob <bob@example.net>, "
         "carol@example.com\nCc: Dave <dave@example.org>\nSubject: Re: [list] Budget 2024\n"
         "Date: Mon, 05 Feb 2024 09:00:00 +0100\nMIME-Version: 1.0\n"
         "Content-Type: multipart/alternative; boundary=b1\n",
         "--b1\nContent-Type: text/plain; charset=us-ascii\n\nThe budget is approved.\n"
         "--b1\nContent-Type: text/html; charset=us-ascii\n\n"
         "<p>The <b>budget</b> is approved.</p>\n--b1--\n"),
     ["\\Flagged", "\\Answered", "Work"], datetime(2024, 2, 5, 8, 0, tzinfo=UTC)),
    (msg("From: bert@example.net\nTo: alice@example.org\nSubject: Zebra news\n"
         "Date: Tue, 06 Feb 2024 01:00:00 +1300\nMIME-Version: 1.0\n"
         "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n", ZEBRA),
     ["\\Draft", "$Forwarded"], datetime(2024, 2, 5, 12, 0, tzinfo=UTC)),
    (msg("From: Carol <carol@example.com>\nSender: secretary@example.com\n"
         "To: alice@example.org\nBcc: hidden@example.org\nSubject: Lunch?\n"
         "Date: Wed, 07 Feb 2024 12:00:00 +0000\nX-Custom: one\nX-Custom: two\n" + TEXT,
         "Pizza or pasta?\n"),
     ["\\Deleted", "\\Seen", "Home"], datetime(2024, 2, 7, 12, 0, tzinfo=UTC)),
    (msg("From: Dave <dave@example.org>\nTo: alice@example.org\n"
         "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n",
         "").replace(b"\r\n\r\n", b"\r\n\r\nSch\xf6ne Gr\xfc\xdfe aus K\xf6ln\r\n"),
     [], datetime(2024, 2, 8, 23, 59, tzinfo=UTC)),
    (msg("From: Erin <erin@example.org>\nTo: alice@example.org\nSubject: Report attached\n"
         "Date: Thu, 08 Feb 2024 10:00:00 +0000\nMIME-Version: 1.0\n"
         "Content-Type: multipart/mixed; boundary=m1\n",
         "--m1\nContent-Type: text/plain\n\nSee the attachment.\n--m1\n"
         "Content-Type: text/plain; name=notes.txt\nContent-Disposition: attachment; "
         "filename=notes.txt\n\nattachedword inside\n--m1--\n"),
     ["\\Seen", "Work"], datetime(2024, 2, 9, 0, 0, tzinfo=UTC)),
]

SEARCHES: list[list[str | bytes]] = [
    ["ALL"], ["SEEN"], ["UNSEEN"], ["FLAGGED"], ["ANSWERED"], ["DRAFT"], ["DELETED"],
    ["UNDELETED"], ["KEYWORD", "Work"], ["KEYWORD", "$Forwarded"], ["UNKEYWORD", "Home"],
    ["FROM", "anna"], ["FROM", "BERG"], ["FROM", "example.net"], ["FROM", "jörg".encode()],
    ["FROM", "müller".encode()], ["FROM", "secretary"], ["TO", "bob"], ["TO", "carol@"],
    ["TO", "alice"], ["CC", "dave"], ["BCC", "hidden"], ["SUBJECT", "budget"],
    ["SUBJECT", "[list]"], ["SUBJECT", "re:"], ["SUBJECT", "grüße".encode()],
    ["SUBJECT", "GRÜSSE".encode()], ["SUBJECT", b""], ["BODY", "approved"],
    ["BODY", "ZEBRA"], ["BODY", "köln".encode()], ["BODY", "attachedword"],
    ["BODY", "<b>"], ["TEXT", "zebra"], ["TEXT", "x-custom"], ["TEXT", "pasta"],
    ["TEXT", "secretary"], ["HEADER", "X-Custom", "grün".encode()],
    ["HEADER", "X-Custom", "red grün".encode()], ["HEADER", "X-Custom", "two"],
    ["HEADER", "X-Custom", b""], ["HEADER", "Message-ID", "one@"],
    ["HEADER", "Subject", "wien"], ["HEADER", "X-Missing", b""],
    ["BEFORE", "5-Feb-2024"], ["ON", "5-Feb-2024"], ["SINCE", "7-Feb-2024"],
    ["ON", "3-Feb-2024"], ["SENTON", "2-Feb-2024"], ["SENTON", "3-Feb-2024"],
    ["SENTON", "6-Feb-2024"], ["SENTBEFORE", "6-Feb-2024"], ["SENTSINCE", "6-Feb-2024"],
    ["LARGER", "300"], ["SMALLER", "300"], ["NOT", "SEEN", "NOT", "DRAFT"],
    ["OR", "FLAGGED", "DELETED"], ["OR", "FROM", "anna", "SUBJECT", "zebra"],
    ["2:4"], ["*"], ["1,3:*", "SEEN"], ["NOT", ["2:3", "UNSEEN"]], ["NEW"], ["OLD"],
]

DIFFERENT = {
    ("SUBJECT", "GRÜSSE"): "full Unicode case folding: ß is ss here, not in Dovecot",
    ("BODY", "attachedword"): "BODY searches the message body, not attached text parts",
    ("BODY", "<b>"): "BODY searches the text body, not the HTML alternative's markup",
    ("SENTBEFORE", "6-Feb-2024"): "a message without Date matches no SENT* key here (a "
                                  "missing property compares false); Dovecot dates it 1970",
    ("NEW",): "\\Recent: this view names none recent, Dovecot's first SELECT all",
    ("OLD",): "\\Recent as for NEW",
}


class RawImap:
    """A bare IMAP client: literals for non-ASCII strings, answers as lines."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")
        self.count = 0
        self.file.readline()

    @staticmethod
    def encode(arg: object) -> bytes:
        if isinstance(arg, list):
            return b"(" + b" ".join(RawImap.encode(a) for a in arg) + b")"
        if isinstance(arg, bytes):
            return b"{%d+}\r\n" % len(arg) + arg
        return str(arg).encode()

    def command(self, *args: object) -> tuple[bytes, list[bytes]]:
        self.count += 1
        tag = b"d%d" % self.count
        self.sock.sendall(tag + b" " + b" ".join(self.encode(a) for a in args) + b"\r\n")
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("Dovecot closed the connection")
            if line.startswith(tag + b" "):
                return line.strip(), lines
            lines.append(line.rstrip(b"\r\n"))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[RawImap]:
    try:
        server: DovecotServer = start_dovecot(tmp_path / "dovecot", imap=True, lmtp=False)
    except DovecotMissing as exc:
        pytest.skip(str(exc))
    client = RawImap(server.port)
    try:
        assert client.command("LOGIN", USER, server.users[USER])[0].split()[1] == b"OK"
        for raw, flags, when in MESSAGES:
            date = when.strftime('"%d-%b-%Y %H:%M:%S +0000"')
            done, _ = client.command("APPEND", "INBOX", f"({' '.join(flags)})", date, raw)
            assert done.split()[1] == b"OK", done
        assert client.command("SELECT", "INBOX")[0].split()[1] == b"OK"
        yield client
    finally:
        client.close()
        server.stop()


@pytest.fixture
async def ours(mbox: Mailbox) -> SelectedView:
    for raw, flags, when in MESSAGES:
        message = mime_in.parse(raw)
        message.props[T.PidTagMessageDeliveryTime] = when
        mid = await mbox.create_message(INBOX, message)
        await mbox.write(imap.store_flags, INBOX, [mid], flags, "set")
    uids = [item.uid for item in await mbox.read(imap.listing, INBOX)]
    return SelectedView(INBOX, sorted(uids))


def _key(args: list[str | bytes]) -> tuple[str, ...]:
    return tuple(a.decode() if isinstance(a, bytes) else str(a) for a in args)


async def test_same_answers_as_dovecot(dovecot: RawImap, ours: SelectedView,
                                       mbox: Mailbox) -> None:
    same, differ = [], []
    for args in SEARCHES:
        done, lines = dovecot.command("SEARCH", "CHARSET", "UTF-8", *args)
        assert done.split()[1] == b"OK", (args, done)
        theirs = sorted(int(n) for line in lines if line.startswith(b"* SEARCH")
                        for n in line.split()[2:])
        result = await run_search(mbox, ours, parse_search(["CHARSET", "UTF-8", *args]))
        mine = sorted(ours.uids.index(u) + 1 for u in result.uids)
        (same if mine == theirs else differ).append((_key(args), mine, theirs))
    unexpected = [d for d in differ if d[0] not in DIFFERENT]
    assert not unexpected, unexpected
    vanished = set(DIFFERENT) - {d[0] for d in differ}
    assert not vanished, f"these now agree with Dovecot: {vanished}"
    assert len(same) >= len(SEARCHES) - len(DIFFERENT)
