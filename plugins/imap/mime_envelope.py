"""Header fields of an Internet message as IMAP shows them: fields, addresses, ENVELOPE.

Works on the raw header bytes (RFC 5322), never decoding RFC 2047 words:
IMAP hands them to the client as they are. Text is handled as Latin-1 so
that every byte maps to one character and back, 8-bit bytes included;
:func:`nstring` then writes a literal for anything a quoted string cannot
carry. Nothing here raises on malformed input: an address that cannot be
read becomes the placeholders Dovecot uses (``MISSING_MAILBOX``,
``MISSING_DOMAIN``, ``SYNTAX_ERROR``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

MAX_ADDRESSES = 1000
"""Addresses kept per header field (the rest of a huge list is dropped)."""

_WSP = " \t"
_SPECIALS = '()<>@,;:\\".[]'
_ATOM_STOP = set(_SPECIALS + " \t\r\n")
_FOLD = re.compile(rb"\r?\n[ \t]+")
_QUOTE_NEEDED = re.compile(rb'[\x00\r\n"\\\x80-\xff]')

Address = tuple[str | None, str | None, str | None, str | None]
"""``(name, route, mailbox, host)`` as the ENVELOPE lists it; a group is framed by
``(None, None, group name, None)`` and ``(None, None, None, None)``."""


# -- IMAP strings ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def nstring_text(value: str) -> bytes:
    """:func:`nstring` of a short text (memoised: types, parameter names recur)."""
    return nstring(value)


def nstring(value: bytes | str | None) -> bytes:
    """``NIL``, a quoted string, or a literal when quoting cannot carry the bytes."""
    if value is None:
        return b"NIL"
    raw = value.encode("latin-1") if isinstance(value, str) else value
    if _QUOTE_NEEDED.search(raw) is None and not isinstance(value, Folded):
        return b'"' + raw + b'"'
    return b"{%d}\r\n" % len(raw) + raw


def plist(items: Iterable[bytes]) -> bytes:
    """A parenthesised list of already encoded items, or ``NIL`` when empty."""
    joined = b" ".join(items)
    return b"(" + joined + b")" if joined else b"NIL"


# -- header fields ---------------------------------------------------------------------------


_WHOLE_FIELD = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*\n?", re.M)


def fields(block: bytes) -> list[tuple[str, bytes]]:
    """``(lower-case name, raw field bytes: continuation lines and line break included)``
    in order; lines that are no field (the empty line at the end) are left out."""
    return [(m.group(1).decode("latin-1").lower(), m.group(0))
            for m in _WHOLE_FIELD.finditer(block)]


class Folded(bytes):
    """A header value that was folded over several lines; written as a literal (as
    Dovecot does), which keeps clients from mistaking it for a short quoted string."""


@functools.lru_cache(maxsize=16)
def _field_pattern(wanted: frozenset[bytes]) -> re.Pattern[bytes]:
    """Fields named in ``wanted`` only: the others are skipped inside the regex engine."""
    names = b"|".join(re.escape(name) for name in sorted(wanted))
    return re.compile(rb"^(" + names + rb")[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)",
                      re.M | re.I)


def _clean(text: bytes) -> bytes:
    text = text.lstrip(b" \t")
    if text.endswith(b"\r"):
        text = text[:-1]
    if b"\n" not in text and b"\r" not in text:
        return text
    return Folded(_FOLD.sub(b" ", text).replace(b"\r", b" ").replace(b"\n", b""))


ADDRESS_FIELDS = frozenset({b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc"})


def header_values(block: bytes, wanted: frozenset[bytes]) -> dict[bytes, bytes]:
    """The value of each field of the header ``block`` whose lower-case name is in
    ``wanted``, in one regular-expression pass. As in Dovecot, a field given twice
    counts with its last value, except address fields, whose lists are joined. A
    value loses its leading white space and final line break; a folded one is unfolded
    (each line break and the white space after it become one space, a bare CR a space)
    and marked :class:`Folded`."""
    found: dict[bytes, bytes] = {}
    for match in _field_pattern(wanted).finditer(block):
        name = match.group(1).lower()
        if name in wanted:
            value = _clean(match.group(2))
            if name in found and name in ADDRESS_FIELDS and value.strip():
                earlier = found[name]
                value = earlier + b", " + value if earlier.strip() else value
            found[name] = value
    return found


# -- addresses -------------------------------------------------------------------------------


def _tokens(text: str) -> list[tuple[str, str]]:
    """``(kind, text)``: kinds are ``atom``, ``quoted``, ``comment``, ``literal`` and the
    special characters themselves."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _WSP or c in "\r\n":
            i += 1
        elif c == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                if text[j] not in "\r\n":
                    buf.append(text[j])
                j += 1
            out.append(("quoted", "".join(buf)))
            i = j + 1
        elif c == "(":
            depth, j, buf = 1, i + 1, []
            while j < n and depth:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                    buf.append(text[j])
                elif text[j] == "(":
                    depth += 1
                    buf.append("(")
                elif text[j] == ")":
                    depth -= 1
                    if depth:
                        buf.append(")")
                elif text[j] not in "\r\n":
                    buf.append(text[j])
                j += 1
            out.append(("comment", "".join(buf).strip()))
            i = j
        elif c == "[":
            j = text.find("]", i)
            j = n if j < 0 else j + 1
            out.append(("literal", text[i:j]))
            i = j
        elif c in _SPECIALS:
            out.append((c, c))
            i += 1
        else:
            j = i
            while j < n and text[j] not in _ATOM_STOP:
                j += 1
            out.append(("atom", text[i:j]))
            i = j
    return out


class _Reader:
    """Tokens with comments skipped; the last non-empty comment passed is remembered."""

    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.pos = 0
        self.comment: str | None = None

    def peek(self) -> str:
        pos = self.pos
        while pos < len(self.tokens) and self.tokens[pos][0] == "comment":
            pos += 1
        return self.tokens[pos][0] if pos < len(self.tokens) else ""

    def skip_comments(self) -> None:
        while self.pos < len(self.tokens) and self.tokens[self.pos][0] == "comment":
            self.comment = self.tokens[self.pos][1] or self.comment
            self.pos += 1

    def take(self) -> tuple[str, str]:
        self.skip_comments()
        token = self.tokens[self.pos]
        self.pos += 1
        return token


def _words(reader: _Reader, stop: str) -> list[tuple[str, str]]:
    out = []
    while reader.peek() and reader.peek() not in stop:
        out.append(reader.take())
    return out


def _phrase(words: list[tuple[str, str]]) -> str:
    parts: list[str] = []
    for kind, text in words:
        if kind == "." and parts:
            parts[-1] += "."
        else:
            parts.append(text)
    return " ".join(parts)


def _local(words: list[tuple[str, str]]) -> str:
    return "".join(text if kind != "quoted" else f'"{text}"' for kind, text in words)


def _addr_spec(reader: _Reader, stop: str) -> tuple[str, str]:
    """``local@domain`` up to ``stop``; placeholders for missing halves."""
    local = _local(_words(reader, "@" + stop))
    if reader.peek() == "@":
        reader.take()
        domain = "".join(text for _, text in _words(reader, stop))
        domain = domain or "SYNTAX_ERROR"
    else:
        domain = "MISSING_DOMAIN"
    return local or "MISSING_MAILBOX", domain


def _angle(reader: _Reader) -> tuple[str | None, str, str]:
    """After ``<``: optional route, the address, ``>``."""
    route = None
    if reader.peek() == "@":
        hops = []
        while reader.peek() in ("@", ","):
            if reader.take()[0] == "@":
                hops.append("@" + "".join(text for _, text in _words(reader, ",:>")))
        if reader.peek() == ":":
            reader.take()
        route = ",".join(hops)
    local, domain = _addr_spec(reader, ">,;")
    if reader.peek() == ">":
        reader.take()
    return route, local, domain


def _mailbox(reader: _Reader, stop: str) -> Address | None:
    """One mailbox up to ``stop``, or None when the element holds none."""
    start = reader.pos
    reader.comment = None
    words = _words(reader, "<:@" + stop)
    kind = reader.peek()
    if kind == "<":
        reader.take()
        route, local, domain = _angle(reader)
        _words(reader, stop)
        return _phrase(words) or None, route, local, domain
    if kind == "@":
        reader.pos = start
        reader.comment = None
        local, domain = _addr_spec(reader, stop)
        reader.skip_comments()
        return reader.comment, None, local, domain
    reader.skip_comments()
    if words:
        return reader.comment, None, _local(words), "MISSING_DOMAIN"
    if reader.comment is not None:
        return None, None, "MISSING_MAILBOX", "MISSING_DOMAIN"
    return None


def addresses(raw: bytes) -> list[Address]:
    """An address-list header value as ENVELOPE addresses (groups framed)."""
    reader = _Reader(_tokens(raw.decode("latin-1")))
    out: list[Address] = []
    while reader.peek() and len(out) < MAX_ADDRESSES:
        start = reader.pos
        words = _words(reader, "<:@,;")
        if reader.peek() == ":" and words:
            reader.take()
            out.append((None, None, _phrase(words), None))
            while reader.peek() and reader.peek() != ";" and len(out) < MAX_ADDRESSES:
                box = _mailbox(reader, ",;")
                if box is not None:
                    out.append(box)
                if reader.peek() == ",":
                    reader.take()
            if reader.peek() == ";":
                reader.take()
            out.append((None, None, None, None))
        else:
            reader.pos = start
            box = _mailbox(reader, ",;")
            if box is not None:
                out.append(box)
        while reader.peek() in (",", ";"):
            reader.take()
    return out


def encode_addresses(items: list[Address]) -> bytes:
    if not items:
        return b"NIL"
    return b"(" + b"".join(b"(" + b" ".join(nstring(part) for part in item) + b")"
                           for item in items) + b")"


# -- ENVELOPE ------------------------------------------------------------------------------

ENVELOPE_FIELDS = frozenset({b"date", b"subject", b"from", b"sender", b"reply-to", b"to", b"cc",
                             b"bcc", b"in-reply-to", b"message-id"})


MEMO_LIMIT = 1024
"""Values longer than this are not memoised (the memo stays small)."""


def address_list(raw: bytes) -> bytes:
    """An address header value, encoded (short ones memoised: senders and recipients
    repeat)."""
    return _address_list(raw) if len(raw) <= MEMO_LIMIT else _encode_list(raw)


def _encode_list(raw: bytes) -> bytes:
    return encode_addresses(addresses(raw)) if raw.strip() else b"NIL"


_address_list = functools.lru_cache(maxsize=8192)(_encode_list)


def envelope_of(found: dict[bytes, bytes]) -> bytes:
    """The ENVELOPE (RFC 3501 7.4.2, RFC 9051) from a header's :func:`header_values`."""
    lists = {name: address_list(found[name]) if name in found else b"NIL"
             for name in (b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc")}
    for name in (b"sender", b"reply-to"):
        if lists[name] == b"NIL":
            lists[name] = lists[b"from"]
    return b"(" + b" ".join([
        nstring(found.get(b"date")), nstring(found.get(b"subject")),
        lists[b"from"], lists[b"sender"], lists[b"reply-to"], lists[b"to"], lists[b"cc"],
        lists[b"bcc"], nstring(found.get(b"in-reply-to")), nstring(found.get(b"message-id")),
    ]) + b")"


# -- HEADER.FIELDS ---------------------------------------------------------------------------


def select_fields(block: bytes, names: Iterable[str], *, exclude: bool) -> bytes:
    """The fields of ``block`` named (or, with ``exclude``, not named) in ``names``,
    in their order, then the empty line that ends a header (RFC 3501 6.4.5)."""
    wanted = {name.lower() for name in names}
    kept = [raw for name, raw in fields(block) if (name in wanted) != exclude]
    out = b"".join(kept)
    if out and not out.endswith(b"\n"):
        out += b"\r\n"
    return out + b"\r\n"
