"""Reading IMAP commands: tag, command name and arguments as tokens.

A command is a line, or several lines joined by literals. ``CommandReader``
reads one whole command from a ``gateway.net.Connection``, asking the client
for each synchronizing literal (``{n}``) with a ``+`` continuation, taking
non-synchronizing ones (``{n+}``, LITERAL+, RFC 7888) and literal8
(``~{n}``, RFC 3516) as they come, and refusing a literal that is too large
*before* reading it.

Arguments are tokens (the shape every command module relies on):

* ``str`` - an atom, number, flag, sequence set or fetch attribute, as sent
  (never upper-cased); a fetch attribute keeps its ``[...]`` section and
  ``<...>`` partial, spaces included (``BODY[HEADER.FIELDS (FROM)]<0.10>``);
* ``bytes`` - a quoted string or a literal, unescaped (``Literal8`` for ``~{n}``);
* ``list`` - a parenthesised group (nested lists allowed);
* ``None`` - NIL.

Whatever is malformed raises ``CommandError``: its ``tag`` (None when the
tag itself could not be read) and text make the BAD answer; ``fatal`` errors
are those after which the client will keep sending data we cannot skip (a
non-synchronizing literal we refuse), so the connection must be closed.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, Union

from gateway.net import LineTooLong

__all__ = [
    "MAX_DEPTH",
    "MAX_LITERALS",
    "NONSYNC_LITERAL_MINUS",
    "Command",
    "CommandError",
    "CommandReader",
    "Literal8",
    "Token",
    "tokenize",
]

Token = Union[str, bytes, "list[Token]", None]

MAX_DEPTH = 32
"""Deepest nesting of parenthesised lists."""
MAX_LITERALS = 256
"""Literals allowed in one command."""
NONSYNC_LITERAL_MINUS = 4096
"""Largest non-synchronizing literal under LITERAL- (RFC 7888 section 4)."""
LARGE_LITERAL_COMMANDS = frozenset({"APPEND"})
"""Commands whose literal may reach ``max_literal_bytes``; others are held to ``max_line_bytes``."""

# RFC 3501 tag: 1*<any ASTRING-CHAR except "+">: no CTL, SP, ( ) { % * " \ or +.
_TAG_BAD = frozenset(b'(){ %*"\\+') | frozenset(range(0x21)) | frozenset(range(0x7F, 0x100))
_NAME = re.compile(rb"[A-Za-z][A-Za-z0-9]*")
_LITERAL = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}\Z")
_ATOM_STOP = frozenset(b' ()"{') | frozenset(range(0x20)) | {0x7F}


class Literal8(bytes):
    """A ``~{n}`` literal: binary content that may hold NUL bytes (APPEND, RFC 3516)."""


@dataclass
class Command:
    tag: str
    name: str
    """The command name, upper-cased (``"UID"`` for UID commands; the verb is ``args[0]``)."""
    args: list[Token] = field(default_factory=list)


class CommandError(Exception):
    """A command that cannot be read; answered with BAD (or NO for ``kind="NO"``)."""

    def __init__(self, text: str, *, tag: str | None = None, code: str | None = None,
                 fatal: bool = False, kind: str = "BAD") -> None:
        super().__init__(text)
        self.text = text
        self.tag = tag
        self.code = code
        self.fatal = fatal
        self.kind = kind


class _Reader(Protocol):
    async def readline(self) -> bytes: ...
    async def readexactly(self, n: int) -> bytes: ...


def _strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


class _Tokenizer:
    """Turns the lines of one command into tokens, a line at a time."""

    __slots__ = ("stack",)

    def __init__(self) -> None:
        self.stack: list[list[Token]] = [[]]

    def feed(self, line: bytes) -> tuple[int, bool, bool] | None:
        """Tokenise ``line`` (no CRLF); return ``(size, nonsync, binary)`` when it ends in a
        literal announcement, whose data the caller passes to ``literal``."""
        i, n = 0, len(line)
        stack = self.stack
        while i < n:
            c = line[i]
            if c == 0x20:
                i += 1
            elif c == 0x28:  # (
                if len(stack) >= MAX_DEPTH:
                    raise ValueError(f"lists nested deeper than {MAX_DEPTH}")
                group: list[Token] = []
                stack[-1].append(group)
                stack.append(group)
                i += 1
            elif c == 0x29:  # )
                if len(stack) == 1:
                    raise ValueError("unbalanced ')'")
                stack.pop()
                i += 1
            elif c == 0x22:  # "
                i = self._quoted(line, i + 1)
            elif c == 0x7B or (c == 0x7E and line[i + 1:i + 2] == b"{"):  # { or ~{
                match = _LITERAL.match(line, i)
                if match is None:
                    raise ValueError("a literal must be {size} or {size+} at the end of a line")
                return int(match.group(2)), bool(match.group(3)), bool(match.group(1))
            else:
                i = self._atom(line, i)
        return None

    def literal(self, data: bytes, binary: bool) -> None:
        self.stack[-1].append(Literal8(data) if binary else data)

    def finish(self) -> list[Token]:
        if len(self.stack) != 1:
            raise ValueError("unbalanced '('")
        return self.stack[0]

    def _quoted(self, line: bytes, i: int) -> int:
        out = bytearray()
        n = len(line)
        while i < n:
            c = line[i]
            if c == 0x22:
                self.stack[-1].append(bytes(out))
                return i + 1
            if c == 0x5C:  # backslash
                if i + 1 >= n or line[i + 1] not in (0x22, 0x5C):
                    raise ValueError('only \\" and \\\\ may be escaped in a quoted string')
                out.append(line[i + 1])
                i += 2
                continue
            if c == 0:
                raise ValueError("NUL in a quoted string")
            out.append(c)
            i += 1
        raise ValueError("unterminated quoted string")

    def _atom(self, line: bytes, start: int) -> int:
        i, n = start, len(line)
        while i < n:
            c = line[i]
            if c == 0x5B:  # [ : a section, spaces and parentheses included, up to its ]
                end = line.find(b"]", i + 1)
                if end < 0:
                    raise ValueError("unterminated '['")
                if any(b < 0x20 or b == 0x7F for b in line[i:end]):
                    raise ValueError("control character in an atom")
                i = end + 1
                continue
            if c in _ATOM_STOP:
                if c in (0x22, 0x7B):
                    raise ValueError(f"unexpected {chr(c)!r} inside an atom")
                if c < 0x20 or c == 0x7F:
                    raise ValueError("control character in an atom")
                break
            i += 1
        try:
            text = line[start:i].decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("an atom is not valid UTF-8") from None
        self.stack[-1].append(None if text.upper() == "NIL" else text)
        return i


def tokenize(line: bytes) -> list[Token]:
    """The tokens of one line without literals (for tests and continuation lines)."""
    tokenizer = _Tokenizer()
    if tokenizer.feed(line) is not None:
        raise ValueError("a literal cannot be read here")
    return tokenizer.finish()


class CommandReader:
    """Reads commands from one connection.

    ``go_ahead`` is awaited before each synchronizing literal is read; it must
    send the ``+`` continuation (after flushing pending output). ``literal_plus``
    off applies LITERAL- (non-synchronizing literals up to 4096 bytes).
    """

    def __init__(self, conn: _Reader, go_ahead: Callable[[], Awaitable[None]], *,
                 max_line_bytes: int, max_literal_bytes: int, literal_plus: bool = True) -> None:
        self.conn = conn
        self.go_ahead = go_ahead
        self.max_line_bytes = max_line_bytes
        self.max_literal_bytes = max_literal_bytes
        self.literal_plus = literal_plus

    async def read(self) -> Command:
        """The next command; ``CommandError`` for one that cannot be read.

        ``ConnectionClosed`` and ``IdleTimeout`` from the connection pass through.
        """
        try:
            line = _strip_eol(await self.conn.readline())
        except LineTooLong as exc:
            raise CommandError(f"command line longer than {exc.limit} bytes",
                               code="TOOBIG") from None
        tag, name, rest = self._head(line)
        tokenizer = _Tokenizer()
        big_allowed = name in LARGE_LITERAL_COMMANDS
        total = len(line)
        literals = 0
        while True:
            try:
                announced = tokenizer.feed(rest)
            except ValueError as exc:
                raise CommandError(str(exc), tag=tag) from None
            if announced is None:
                break
            size, nonsync, binary = announced
            literals += 1
            limit = self.max_literal_bytes if big_allowed else self.max_line_bytes
            problem = None
            if literals > MAX_LITERALS:
                problem = f"more than {MAX_LITERALS} literals in one command"
            elif size > limit:
                problem = f"literal of {size} bytes is larger than the limit of {limit}"
            elif nonsync and not self.literal_plus and size > NONSYNC_LITERAL_MINUS:
                problem = (f"non-synchronizing literal of {size} bytes; "
                           f"the limit is {NONSYNC_LITERAL_MINUS} (LITERAL-)")
            elif total + size > limit + 4 * self.max_line_bytes:
                problem = "command too large"
            if problem is not None:
                raise CommandError(problem, tag=tag, code="TOOBIG", fatal=nonsync,
                                   kind="NO" if big_allowed and not nonsync else "BAD")
            if size > self.max_line_bytes:
                big_allowed = False  # one large literal (the message) per command
            if not nonsync:
                await self.go_ahead()
            data = await self.conn.readexactly(size)
            tokenizer.literal(data, binary)
            try:
                rest = _strip_eol(await self.conn.readline())
            except LineTooLong as exc:
                raise CommandError(f"command line longer than {exc.limit} bytes", tag=tag,
                                   code="TOOBIG") from None
            total += size + len(rest)
            if total > self.max_literal_bytes + 4 * self.max_line_bytes:
                raise CommandError("command too large", tag=tag, code="TOOBIG")
        try:
            args = tokenizer.finish()
        except ValueError as exc:
            raise CommandError(str(exc), tag=tag) from None
        return Command(tag, name, args)

    @staticmethod
    def _head(line: bytes) -> tuple[str, str, bytes]:
        """``(tag, NAME, rest of the line)`` of a command's first line."""
        if not line.strip():
            raise CommandError("empty command line")
        tag_end = line.find(b" ")
        raw_tag = line if tag_end < 0 else line[:tag_end]
        if any(b in _TAG_BAD for b in raw_tag):
            raise CommandError("invalid tag")
        tag = raw_tag.decode("ascii")
        if tag_end < 0:
            raise CommandError("missing command name", tag=tag)
        name_end = line.find(b" ", tag_end + 1)
        raw_name = line[tag_end + 1:] if name_end < 0 else line[tag_end + 1:name_end]
        if not _NAME.fullmatch(raw_name):
            raise CommandError("invalid command name", tag=tag)
        rest = b"" if name_end < 0 else line[name_end + 1:]
        return tag, raw_name.decode("ascii").upper(), rest
