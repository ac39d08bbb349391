"""FETCH data next to a live Dovecot: the same messages, the same questions, the same answers.

Every hand-made sample and every corpus message goes into a private Dovecot
(``tests/harness/dovecot.py``) and into a store. For each message Dovecot is
asked for RFC822.SIZE, ENVELOPE, BODY and BODYSTRUCTURE and for every section
of every part (BODY[n], n.MIME, n.HEADER / n.TEXT of message/rfc822 parts,
HEADER, TEXT, HEADER.FIELDS, BINARY[n]); ours must be byte-identical.

Differences kept on purpose (``KNOWN``):

- a part that ends with a multipart's close delimiter (a multipart part, or a
  message/rfc822 part whose message is a multipart): Dovecot counts the CRLF
  before the next outer delimiter into the part; RFC 2046 gives it to the
  delimiter, and so do we (2 octets, and for message/rfc822 1 line, less);
- a boundary parameter with characters RFC 2046 forbids, unquoted
  (``boundary=----=_NextPart...``): Dovecot cuts it at the ``=`` and then
  matches ``----`` as a prefix of every delimiter line; we take the whole value
  and split the message the way its sender meant (two parts, not three);
- a base64-encoded message/rfc822 part: both show it with an empty envelope
  and an empty text/plain body, but Dovecot reads the encoded lines as a header
  without end and counts the CRLF before the next delimiter into the part.

BINARY[] of a whole message (Dovecot decodes every part and rewrites the
headers) is not compared: we send the message as it is, which RFC 3516 allows
for a section without transfer encoding.
"""

from __future__ import annotations

import re
import socket

import pytest

from gateway.convert.mime_in import parse
from gateway.store import Mailbox
from gateway.store.special import Private
from plugins.imap.fetch_data import BinaryUndecodable, SectionSpec, fetch_info, section
from plugins.imap.mime_structure import MESSAGE, MULTIPART, Node, load_tree
from tests.harness.dovecot import DovecotServer
from tests.unit.test_imap_fetch_samples import SAMPLES, corpus

KNOWN = {
    ("rfc822-in-multipart", "structure"), ("rfc822-in-multipart", "2"),
    ("rfc822-in-multipart", "2.TEXT"), ("prefix-boundaries", "1"),
    ("rfc822-base64", "structure"), ("rfc822-base64", "1"),
    ("outlook-express-illegal-boundary.eml", "*"),
}


class RawImap:
    """The bytes of each answer, literals included (no client library reshaping them)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=20)
        self.file = self.sock.makefile("rb")
        self.count = 0
        self.file.readline()

    def command(self, text: bytes) -> bytes:
        self.count += 1
        tag = b"c%d" % self.count
        self.sock.sendall(tag + b" " + text + b"\r\n")
        out = b""
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("Dovecot closed the connection")
            out += line
            literal = re.search(rb"~?\{(\d+)\}\r\n$", line)
            if literal:
                out += self.file.read(int(literal.group(1)))
            elif line.startswith(tag + b" "):
                return out

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _value(answer: bytes) -> bytes | None:
    """The one section value in ``* n FETCH (NAME value)``; None for a NO."""
    match = re.search(rb"\* \d+ FETCH \([^ ]+(?: \([^)]*\))?\]?(?:<\d+>)? (~?\{(\d+)\}\r\n|NIL)",
                      answer)
    if match is None:
        return None
    if match.group(1) == b"NIL":
        return b""
    return answer[match.end():match.end() + int(match.group(2))]


def _sections(root: Node) -> list[tuple[str, bool]]:
    """(section, is a leaf) of every part to compare."""
    out: list[tuple[str, bool]] = [("HEADER", False), ("TEXT", False)]

    def walk(node: Node, prefix: str) -> None:
        parts = node.children if node.kind == MULTIPART else [node]
        if node.kind == MESSAGE and node.message is not None:
            inner = node.message
            parts = inner.children if inner.kind == MULTIPART else [inner]
        for number, part in enumerate(parts[:6], 1):
            name = f"{prefix}{number}"
            out.append((name, part.kind == "l"))
            out.append((f"{name}.MIME", False))
            if part.kind == MESSAGE:
                out.extend([(f"{name}.HEADER", False), (f"{name}.TEXT", False)])
            if part.kind != "l" and name.count(".") < 3:
                walk(part, name + ".")

    walk(Node(0, 0, 0, MESSAGE, "", [], root), "")
    return out


@pytest.fixture
def messages() -> dict[str, bytes]:
    return {**SAMPLES, **corpus()}


async def test_fetch_answers_match_dovecot(dovecot_server: DovecotServer, mbox: Mailbox,
                                           messages: dict[str, bytes]) -> None:
    names = list(messages)
    for name in names:
        dovecot_server.deliver("alice@example.org", messages[name])
    ids = [await mbox.create_message(int(Private.INBOX), parse(messages[name]))
           for name in names]
    infos = await fetch_info(mbox, ids)
    client = RawImap(dovecot_server.host, dovecot_server.port)
    differences: list[str] = []
    compared = 0
    try:
        client.command(b"LOGIN alice@example.org " + dovecot_server.users[
            "alice@example.org"].encode())
        client.command(b"EXAMINE INBOX")
        for seq, (name, mid) in enumerate(zip(names, ids, strict=True), 1):
            if (name, "*") in KNOWN:
                continue
            info = infos[mid]
            theirs = client.command(b"FETCH %d (RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE)" % seq)
            ours = (b"* %d FETCH (RFC822.SIZE %d ENVELOPE %s BODY %s BODYSTRUCTURE %s)\r\n"
                    % (seq, info.size, info.envelope, info.body, info.bodystructure))
            if not theirs.startswith(ours) and (name, "structure") not in KNOWN:
                differences.append(f"{name}: structure\n  dovecot {theirs[:400]!r}\n"
                                   f"  ours    {ours[:400]!r}")
            root = load_tree(await mbox.read(_tree, info.digest))
            wanted = [*_sections(root), ("HEADER.FIELDS (FROM SUBJECT X-NONE)", False)]
            for text, leaf in wanted:
                kinds = [("BODY.PEEK", False)] + ([("BINARY.PEEK", True)] if leaf else [])
                for command, binary in kinds:
                    if (name, text) in KNOWN:
                        continue
                    answer = client.command(b"FETCH %d %s[%s]" % (seq, command.encode(),
                                                                 text.encode()))
                    expected = _value(answer)
                    head, _, fields = text.partition(" (")
                    spec = SectionSpec.parse(head, fields.rstrip(")").split() or None)
                    try:
                        _, chunks = await section(mbox, info, spec, binary=binary)
                        got: bytes | None = b"".join([c async for c in chunks])
                    except BinaryUndecodable:
                        got = None
                    compared += 1
                    if got != expected:
                        differences.append(f"{name}: {command}[{text}]\n  dovecot "
                                           f"{expected!r:.300}\n  ours    {got!r:.300}")
    finally:
        client.close()
    assert compared > 300
    assert not differences, "\n".join(differences)


def _tree(txn, digest: str) -> bytes:  # type: ignore[no-untyped-def]
    from gateway.store.mime_cache import structure_tree
    from plugins.imap.mime_structure import STRUCTURE_VERSION

    tree = structure_tree(txn, digest, STRUCTURE_VERSION)
    assert tree is not None
    return tree
