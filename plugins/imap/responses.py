"""Encoding of IMAP response data: atoms, quoted strings, literals, lists and status lines.

Everything returns ``bytes`` ready to write. Strings that cannot be quoted
(CR, LF, NUL, a quote that is too long, or 8-bit text to a client that has not
enabled UTF-8) become literals. Status lines take an optional response code
without its brackets (``"TRYCREATE"``, ``"COPYUID 7 1:3 10:12"``).
"""

from __future__ import annotations

from collections.abc import Iterable

from plugins.imap import utf7

__all__ = [
    "ATOM_SPECIALS",
    "astring",
    "bad",
    "continuation",
    "is_atom",
    "literal",
    "mailbox_name",
    "nstring",
    "paren_list",
    "quoted",
    "status",
    "string",
    "untagged",
]

ATOM_SPECIALS = frozenset(b'(){ %*"\\]') | frozenset(range(0x20)) | {0x7F}
"""Bytes that may not appear in an atom (RFC 3501 ATOM-CHAR); 8-bit is refused separately."""

MAX_QUOTED = 1024
"""Longer strings are sent as literals, which clients parse without scanning for escapes."""

_QUOTED_UNSAFE = frozenset(b"\r\n\0")


def is_atom(data: bytes) -> bool:
    """Whether ``data`` can be sent as an atom (non-empty, ASCII, no specials)."""
    return bool(data) and all(b < 0x80 and b not in ATOM_SPECIALS for b in data)


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def literal(data: bytes, *, literal8: bool = False) -> bytes:
    """``{n}\\r\\n`` followed by ``data`` (``~{n}`` for BINARY content with NUL bytes)."""
    return b"%s{%d}\r\n%s" % (b"~" if literal8 else b"", len(data), data)


def quoted(value: str | bytes, *, utf8: bool = True) -> bytes:
    """A quoted string, or a literal when the value cannot be quoted."""
    data = _bytes(value)
    if (len(data) > MAX_QUOTED or any(b in _QUOTED_UNSAFE for b in data)
            or (not utf8 and any(b >= 0x80 for b in data))):
        return literal(data)
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def string(value: str | bytes, *, utf8: bool = True) -> bytes:
    """An IMAP ``string`` (quoted or literal)."""
    return quoted(value, utf8=utf8)


def nstring(value: str | bytes | None, *, utf8: bool = True) -> bytes:
    """``NIL`` for None, else a string."""
    return b"NIL" if value is None else quoted(value, utf8=utf8)


def astring(value: str | bytes, *, utf8: bool = True) -> bytes:
    """An atom when possible (never the atom ``NIL``), else a string."""
    data = _bytes(value)
    if is_atom(data) and data.upper() != b"NIL":
        return data
    return quoted(data, utf8=utf8)


def mailbox_name(name: str, *, utf8: bool) -> bytes:
    """A mailbox name as sent: UTF-8 after ``ENABLE UTF8=ACCEPT``/IMAP4rev2, else mUTF-7."""
    if name.upper() == "INBOX":
        return b"INBOX"
    return astring(name if utf8 else utf7.encode(name), utf8=utf8)


def paren_list(items: Iterable[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")"


def _code(code: str | None) -> bytes:
    return b"[" + code.encode("utf-8") + b"] " if code else b""


def _text(text: str) -> bytes:
    # Human-readable text must be one line.
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8")


def status(tag: str, kind: str, text: str, code: str | None = None) -> bytes:
    """``tag OK|NO|BAD [code] text``; ``tag`` ``"*"`` for untagged status lines."""
    return tag.encode("ascii", "replace") + b" " + kind.encode("ascii") + b" " + _code(code) + \
        _text(text) + b"\r\n"


def bad(tag: str | None, text: str, code: str | None = None) -> bytes:
    """A BAD for a command (untagged when its tag could not be read)."""
    return status(tag or "*", "BAD", text, code)


def untagged(data: bytes | str) -> bytes:
    """``* data\\r\\n``."""
    return b"* " + _bytes(data) + b"\r\n"


def continuation(text: str = "") -> bytes:
    """A command continuation request ``+ text``."""
    return b"+ " + _text(text) + b"\r\n"
