"""FETCH data through a real gateway and a real client (``imaplib``), end to end.

The messages go into the store from the test process (``ImapServer.deliver``);
the client sees them in a ``gateway serve`` process, which parses their
structure there on the first FETCH and streams sections from the blobs.
"""

from __future__ import annotations

import imaplib
import re

from tests.harness.imap import ImapServer
from tests.unit.test_imap_fetch_samples import SAMPLES

USER = "alice@example.org"



def _client(server: ImapServer) -> imaplib.IMAP4:
    client = imaplib.IMAP4(server.host, server.port)
    client.login(USER, server.users[USER])
    client.select("INBOX")
    return client


def test_fetch_over_the_wire(imap_server: ImapServer) -> None:
    names = ["nested-multipart", "rfc822-in-multipart", "binary-parts", "lf-only"]
    imap_server.deliver_many(USER, [SAMPLES[name] for name in names])
    client = _client(imap_server)
    try:
        status, data = client.fetch("1:4", "(RFC822.SIZE ENVELOPE BODYSTRUCTURE)")
        assert status == "OK"
        first = data[0] if isinstance(data[0], bytes) else data[0][0]
        assert b"RFC822.SIZE %d" % len(SAMPLES["nested-multipart"]) in first
        assert b'"alternative" ("boundary" "inner")' in first
        status, data = client.fetch("2", "(BODY.PEEK[2.1] BODY.PEEK[1.MIME])")
        assert status == "OK"
        literals = [item[1] for item in data if isinstance(item, tuple)]
        assert literals == [b"inner text\r\ntwo lines", b"Content-Type: text/plain\r\n\r\n"]
        status, data = client.fetch("3", "(BINARY.PEEK[2] BINARY.SIZE[1])")
        assert status == "OK" and data[0][1] == bytes(range(8))  # type: ignore[index]
        assert re.search(rb"BINARY.SIZE\[1\] 24", b"".join(
            part if isinstance(part, bytes) else part[0] for part in data))
        status, data = client.fetch("4", "(BODY.PEEK[])")
        assert data[0][1] == SAMPLES["lf-only"].replace(b"\n", b"\r\n")  # type: ignore[index]
        status, data = client.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)] FLAGS)")
        assert data[0][1] == b"Subject: nested\r\n\r\n"  # type: ignore[index]
        assert b"\\Seen" in b"".join(p if isinstance(p, bytes) else p[0] for p in data)
    finally:
        client.logout()
