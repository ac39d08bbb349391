"""The MIME structure of a stored message as IMAP needs it: part offsets, BODY, BODYSTRUCTURE.

:func:`parse_message` scans the message bytes once with its own header and
boundary scanner (no :mod:`email`: it is slow and reshapes the bytes, and the
offsets here must be exact). Every part, nested multiparts and the message
inside a message/rfc822 part included, gets its header start, body start and
body end; BODY[...] sections are then served by offset. ENVELOPE, BODY and
BODYSTRUCTURE come out ready to write, so a cached structure answers FETCH
without touching the message again.

IMAP speaks CRLF: a message stored with bare LF line ends is served with CRLF
(as Dovecot serves its Maildir files), so offsets and sizes here are those of
the CRLF form (:func:`to_crlf`, ``ParsedMessage.crlf``).

Hostile input never raises: nesting and part counts are bounded like
:mod:`gateway.convert.mime_in`'s budgets (a part beyond them is a plain leaf),
a multipart whose boundary never appears gets one empty text/plain part, a
missing close delimiter ends the last part at its parent's end, a header
without an empty line is all header. Where Dovecot has an answer for broken
input, this follows it.
"""

from __future__ import annotations

import functools
import json
import mmap
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, overload

from plugins.imap.mime_envelope import (
    ENVELOPE_FIELDS,
    MEMO_LIMIT,
    envelope_of,
    header_values,
    nstring,
    nstring_text,
    plist,
)

STRUCTURE_VERSION = 1
"""Bump when the cached form (offsets, encodings) changes; old cache rows are recomputed."""
MAX_PARTS = 1000
MAX_DEPTH = 20
MAX_HEADER_BYTES = 256 * 1024
MAX_PARAMS = 100

_PART_FIELDS = frozenset({b"content-type", b"content-transfer-encoding", b"content-id",
                          b"content-description", b"content-md5", b"content-disposition",
                          b"content-language", b"content-location"})
_ALL_FIELDS = _PART_FIELDS | ENVELOPE_FIELDS
IDENTITY_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})
_PARAM_NAME = re.compile(r"\s*([^\s=;\"]+)\s*=\s*")
_SECTION_2231 = re.compile(r"^(.*?)(?:\*(\d+))?(\*)?$")

LEAF, MULTIPART, MESSAGE = "l", "m", "r"


class Buffer(Protocol):
    """What the scanner reads: ``bytes``, or a :class:`MappedBuffer` for large messages."""

    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, key: int) -> int: ...
    @overload
    def __getitem__(self, key: slice) -> bytes: ...
    def find(self, sub: bytes, start: int = ..., end: int | None = ...) -> int: ...
    def startswith(self, prefix: bytes, start: int = ...) -> bool: ...
    def count(self, sub: bytes, start: int = ..., end: int | None = ...) -> int: ...


@dataclass
class Node:
    """One MIME entity: its header ``[header_start, body_start)`` (the empty line that
    ends it included) and body ``[body_start, body_end)``."""

    header_start: int
    body_start: int
    body_end: int
    kind: str = LEAF
    cte: str = ""
    """Content-Transfer-Encoding, lower case ("" when absent)."""
    children: list[Node] = field(default_factory=list)
    message: Node | None = None
    """The encapsulated message of a message/rfc822 part."""

    def pack(self) -> list[object]:
        return [self.header_start, self.body_start, self.body_end, self.kind, self.cte,
                [child.pack() for child in self.children],
                self.message.pack() if self.message is not None else None]

    @classmethod
    def unpack(cls, data: list) -> Node:  # type: ignore[type-arg]
        hs, bs, be, kind, cte, children, message = data
        return cls(hs, bs, be, kind, cte, [cls.unpack(c) for c in children],
                   cls.unpack(message) if message is not None else None)


@dataclass
class ParsedMessage:
    size: int
    """Octets of the message as IMAP serves it (RFC822.SIZE)."""
    crlf: bool
    """True when the stored bytes had bare LF line ends and are served converted."""
    root: Node
    envelope: bytes
    body: bytes
    bodystructure: bytes

    def tree(self) -> bytes:
        return json.dumps(self.root.pack(), separators=(",", ":")).encode()


def load_tree(data: bytes) -> Node:
    return Node.unpack(json.loads(data))


# -- line ends -------------------------------------------------------------------------------


def needs_crlf(raw: bytes) -> bool:
    return raw.count(b"\n") != raw.count(b"\r\n")


def to_crlf(data: bytes) -> bytes:
    """Every LF not after a CR becomes CRLF (lone CRs stay)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# -- Content-Type and friends ----------------------------------------------------------------


def _split_value(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``main; name=value; ...`` → (main, params in order); quoted values unquoted
    (short ones memoised: the same few Content-Type values recur)."""
    return _split_memo(text) if len(text) <= MEMO_LIMIT else _split_params(text)


def _split_params(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    if "(" in text:
        text = _without_comments(text)
    semi = _next_semicolon(text, 0)
    main = text[:semi].strip()
    params: list[tuple[str, str]] = []
    pos = semi + 1
    while pos < len(text) and len(params) < MAX_PARAMS:
        match = _PARAM_NAME.match(text, pos)
        if match is None:
            pos = _next_semicolon(text, pos) + 1
            continue
        name, pos = match.group(1), match.end()
        if pos < len(text) and text[pos] == '"':
            buf, pos = [], pos + 1
            while pos < len(text) and text[pos] != '"':
                if text[pos] == "\\" and pos + 1 < len(text):
                    pos += 1
                buf.append(text[pos])
                pos += 1
            value = "".join(buf)
            pos = _next_semicolon(text, pos + 1) + 1
        else:
            end = _next_semicolon(text, pos)
            value = text[pos:end].strip()
            pos = end + 1
        params.append((name, value))
    return main, tuple(_join_2231(params))


def _without_comments(text: str) -> str:
    """RFC 5322 comments (nested, outside quoted strings) removed."""
    out: list[str] = []
    depth, quoted, i = 0, False, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and (quoted or depth) and i + 1 < len(text):
            if not depth:
                out.append(text[i:i + 2])
            i += 2
            continue
        if quoted:
            quoted = c != '"'
            out.append(c)
        elif c == "(":
            depth += 1
        elif c == ")" and depth:
            depth -= 1
        elif not depth:
            quoted = c == '"'
            out.append(c)
        i += 1
    return "".join(out)


_split_memo = functools.lru_cache(maxsize=4096)(_split_params)


def _next_semicolon(text: str, pos: int) -> int:
    quoted = False
    while pos < len(text):
        c = text[pos]
        if c == "\\" and quoted:
            pos += 1
        elif c == '"':
            quoted = not quoted
        elif c == ";" and not quoted:
            return pos
        pos += 1
    return len(text)


def _join_2231(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """RFC 2231 continuations joined (``name*0*``, ``name*1`` ...), as Dovecot does: plain
    parameters first, then each joined one as ``name*`` (some part extended) or ``name``."""
    plain: list[tuple[str, str]] = []
    joined: dict[str, list[tuple[int, bool, str]]] = {}
    for name, value in params:
        match = _SECTION_2231.match(name) if "*" in name else None
        if match is None:
            plain.append((name, value))
            continue
        base, number, star = match.groups()
        if number is None and star is None:
            plain.append((name, value))
            continue
        joined.setdefault(base, []).append((int(number or 0), star is not None, value))
    for base, pieces in joined.items():
        pieces.sort(key=lambda piece: piece[0])
        extended = any(piece[1] for piece in pieces)
        plain.append((base + "*" if extended else base, "".join(p[2] for p in pieces)))
    return plain


def _params(params: Iterable[tuple[str, str]]) -> bytes:
    return plist(_text(item) for pair in params for item in pair)


def _text(value: str) -> bytes:
    return nstring_text(value) if len(value) <= MEMO_LIMIT else nstring(value)


@dataclass
class _Head:
    """What a part's header says about it."""

    type: str
    subtype: str
    params: list[tuple[str, str]]
    found: dict[bytes, bytes]

    @property
    def media(self) -> str:
        return f"{self.type.lower()}/{self.subtype.lower()}"

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key.lower() == name:
                return value
        return None


def _head(found: dict[bytes, bytes], digest: bool) -> _Head:
    raw = found.get(b"content-type")
    if raw is None:
        if digest:
            return _Head("message", "rfc822", [], found)
        return _Head("text", "plain", [("charset", "us-ascii")], found)
    main, parsed = _split_value(raw.decode("latin-1"))
    params = list(parsed)
    kind, _, sub = main.partition("/")
    kind, sub = kind.strip(), sub.strip()
    if not _is_token(kind) or (sub and not _is_token(sub)):
        kind, sub, params = "", "", []
    if kind.lower() == "text" and not any(key.lower() == "charset" for key, _ in params):
        params.append(("charset", "us-ascii"))
    return _Head(kind, sub, params, found)


_TOKEN = re.compile(r'[^\x00-\x20\x7f-\U0010ffff()<>@,;:\\"/\[\]?=]+')


def _is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def _extension(head: _Head) -> list[bytes]:
    """disposition, language, location of a part (BODYSTRUCTURE's extension data)."""
    raw = head.found.get(b"content-disposition")
    if raw is None:
        disposition = b"NIL"
    else:
        kind, params = _split_value(raw.decode("latin-1"))
        disposition = b"(" + nstring(kind) + b" " + _params(params) + b")"
    raw = head.found.get(b"content-language")
    if raw is None:
        language = b"NIL"
    else:
        tags = [t.strip() for t in re.split(r"[,\s]+", raw.decode("latin-1")) if t.strip()]
        language = plist(nstring(t) for t in tags)
    location = head.found.get(b"content-location")
    return [disposition, language, nstring(location)]


# -- the scanner ------------------------------------------------------------------------------


class _Budget:
    def __init__(self) -> None:
        self.parts = 0


def _header_end(buf: Buffer, start: int, end: int) -> int:
    """Where the body starts: after the first empty line, or ``end`` when there is none."""
    if buf.startswith(b"\r\n", start) and start + 2 <= end:
        return start + 2
    found = buf.find(b"\r\n\r\n", start, end)
    return end if found < 0 else found + 4


def _is_delimiter(buf: Buffer, pos: int, end: int) -> bool:
    """After ``--boundary`` at ``pos``: ``--``, or only white space to the line end."""
    if buf.startswith(b"--", pos) and pos + 2 <= end:
        return True
    while pos < end and buf[pos] in b" \t":
        pos += 1
    return pos >= end or buf[pos] in b"\r\n"


def _find_delimiter(buf: Buffer, delim: bytes, start: int, end: int) -> int:
    """Offset of the next delimiter line (its ``--``) at or after a line start, or -1."""
    if start == 0 and buf.startswith(delim) and _is_delimiter(buf, len(delim), end):
        return 0
    needle = b"\r\n" + delim
    pos = start
    while True:
        found = buf.find(needle, pos, end)
        if found < 0:
            return -1
        if _is_delimiter(buf, found + len(needle), end):
            return found + 2
        pos = found + 2


def _split(buf: Buffer, body_start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` of each body part between the delimiters of ``boundary``."""
    delim = b"--" + boundary
    if buf.startswith(delim, body_start) and _is_delimiter(buf, body_start + len(delim), end):
        line = body_start
    else:
        line = _find_delimiter(buf, delim, max(body_start - 2, 0), end)
    parts: list[tuple[int, int]] = []
    while line >= 0 and len(parts) < MAX_PARTS:
        after = line + len(delim)
        if buf.startswith(b"--", after) and after + 2 <= end:
            break
        newline = buf.find(b"\n", after, end)
        start = end if newline < 0 else newline + 1
        line = _find_delimiter(buf, delim, max(start - 2, after), end)
        parts.append((start, end if line < 0 else max(line - 2, start)))
    return parts


_NO_ENVELOPE = b"(" + b" ".join([b"NIL"] * 10) + b")"
_EMPTY_BODY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
_EMPTY_STRUCTURE = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'


@dataclass
class _Forms:
    body: bytes
    bodystructure: bytes
    found: dict[bytes, bytes]
    """The entity's header values (for the ENVELOPE of a message)."""


def _entity(buf: Buffer, start: int, end: int, depth: int, budget: _Budget,
            digest: bool) -> tuple[Node, _Forms]:
    """Parse the entity at ``[start, end)``: its node and its BODY/BODYSTRUCTURE forms."""
    budget.parts += 1
    body_start = _header_end(buf, start, end)
    found = header_values(buf[start:min(body_start, start + MAX_HEADER_BYTES)], _ALL_FIELDS)
    head = _head(found, digest)
    node = Node(start, body_start, end)
    cte_raw = found.get(b"content-transfer-encoding")
    encoding = cte_raw.decode("latin-1").strip() if cte_raw is not None else ""
    node.cte = encoding.lower()
    if encoding and not _is_token(encoding):
        encoding = ""  # "quoted-printable;": shown as 7bit, and BINARY refuses it (Dovecot)
    kind = head.type.lower()
    deeper = depth < MAX_DEPTH and budget.parts < MAX_PARTS
    if kind == "multipart":
        return _multipart(buf, node, head, depth, budget, deeper)
    common = [_text(head.type), _text(head.subtype), _params(head.params),
              nstring(found.get(b"content-id")), nstring(found.get(b"content-description")),
              _text(encoding or "7bit"), b"%d" % (end - body_start)]
    if kind == "message" and head.media == "message/rfc822":
        lines = b"%d" % buf.count(b"\n", body_start, end)
        if node.cte in IDENTITY_ENCODINGS and deeper:
            inner, forms = _entity(buf, body_start, end, depth + 1, budget, False)
            node.kind, node.message = MESSAGE, inner
            env, inner_body, inner_structure = (envelope_of(forms.found), forms.body,
                                                forms.bodystructure)
        else:  # encoded (or too deep): the form clients expect, with nothing inside
            env, inner_body, inner_structure = _NO_ENVELOPE, _EMPTY_BODY, _EMPTY_STRUCTURE
        body = [*common, env, inner_body, lines]
        structure = [*common, env, inner_structure, lines]
    elif kind == "text":
        lines = b"%d" % buf.count(b"\n", body_start, end)
        body = [*common, lines]
        structure = list(body)
    else:
        body = common
        structure = list(common)
    structure += [nstring(found.get(b"content-md5")), *_extension(head)]
    return node, _Forms(b"(" + b" ".join(body) + b")", b"(" + b" ".join(structure) + b")",
                        found)


def _multipart(buf: Buffer, node: Node, head: _Head, depth: int, budget: _Budget,
               deeper: bool) -> tuple[Node, _Forms]:
    node.kind = MULTIPART
    boundary = head.param("boundary")
    spans = (_split(buf, node.body_start, node.body_end, boundary.encode("latin-1"))
             if boundary and deeper else [])
    digest = head.subtype.lower() == "digest"
    bodies, structures = [], []
    for start, end in spans:
        if budget.parts >= MAX_PARTS:
            break
        child, forms = _entity(buf, start, end, depth + 1, budget, digest)
        node.children.append(child)
        bodies.append(forms.body)
        structures.append(forms.bodystructure)
    if not node.children:  # as Dovecot: one empty text/plain part
        child, forms = _entity(buf, node.body_end, node.body_end, depth + 1, budget, False)
        node.children.append(child)
        bodies.append(forms.body)
        structures.append(forms.bodystructure)
    subtype = _text(head.subtype)
    body = b"(" + b"".join(bodies) + b" " + subtype + b")"
    structure = (b"(" + b"".join(structures) + b" " + b" ".join(
        [subtype, _params(head.params), *_extension(head)]) + b")")
    return node, _Forms(body, structure, head.found)


def parse_message(raw: bytes) -> ParsedMessage:
    """The structure of a whole message (bare LF line ends are taken as CRLF)."""
    crlf = needs_crlf(raw)
    return parse_served(to_crlf(raw) if crlf else raw, crlf)


def parse_served(buf: Buffer, crlf: bool) -> ParsedMessage:
    """The structure of a message already in its served (CRLF) form; ``crlf`` says
    whether it was converted from bare LFs."""
    root, forms = _entity(buf, 0, len(buf), 0, _Budget(), False)
    return ParsedMessage(len(buf), crlf, root, envelope_of(forms.found), forms.body,
                         forms.bodystructure)


class MappedBuffer:
    """A memory-mapped file with the few ``bytes`` methods the scanner uses, so a large
    message is parsed from the page cache rather than copied into memory."""

    COUNT_STEP = 4 << 20

    def __init__(self, mapped: mmap.mmap) -> None:
        self.mapped = mapped

    def __len__(self) -> int:
        return len(self.mapped)

    @overload
    def __getitem__(self, key: int) -> int: ...
    @overload
    def __getitem__(self, key: slice) -> bytes: ...

    def __getitem__(self, key: int | slice) -> int | bytes:
        return self.mapped[key]

    def find(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        return self.mapped.find(sub, start, len(self.mapped) if end is None else end)

    def startswith(self, prefix: bytes, start: int = 0) -> bool:
        return self.mapped[start:start + len(prefix)] == prefix

    def count(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        """Occurrences of a one-byte ``sub`` (all the scanner counts), a slice at a time."""
        assert len(sub) == 1
        end = len(self.mapped) if end is None else end
        return sum(self.mapped[at:min(at + self.COUNT_STEP, end)].count(sub)
                   for at in range(start, end, self.COUNT_STEP))


def opaque_message(raw: bytes) -> ParsedMessage:
    """A message served as one text/plain body without header (the last resort)."""
    crlf = needs_crlf(raw)
    buf = to_crlf(raw) if crlf else raw
    common = (b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d %d'
              % (len(buf), buf.count(b"\n")))
    return ParsedMessage(len(buf), crlf, Node(0, 0, len(buf)), _NO_ENVELOPE, common + b")",
                         common + b" NIL NIL NIL NIL)")
