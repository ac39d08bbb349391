"""Taking a command's arguments apart: ``Args`` walks the token list with typed reads.

Every read that finds the wrong kind of token, or none, raises ``Bad`` with a
reason naming the command and what was expected, so command modules never
index the token list themselves.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from plugins.imap import utf7
from plugins.imap.errors import Bad
from plugins.imap.parser import Token

MAX_NUMBER = 2**32 - 1
MAX_NUMBER64 = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,20}")
_DATE_TIME = re.compile(r"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) "
                        r"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def describe(token: Token) -> str:
    if token is None:
        return "NIL"
    if isinstance(token, list):
        return "a list"
    if isinstance(token, bytes):
        return "a string"
    return repr(token[:40])


def text_of(token: Token, what: str) -> str:
    """An astring's text: atom, quoted or literal (UTF-8), NIL as the word ``NIL``."""
    if token is None:
        return "NIL"
    if isinstance(token, str):
        return token
    if isinstance(token, bytes):
        try:
            return token.decode("utf-8")
        except UnicodeDecodeError:
            raise Bad(f"{what} is not valid UTF-8") from None
    raise Bad(f"expected {what}, got a list")


def mailbox_of(token: Token, *, utf8: bool) -> str:
    """A mailbox name argument as Unicode (modified UTF-7 decoded unless UTF-8 is on)."""
    name = text_of(token, "a mailbox name")
    if name.upper() == "INBOX":
        return "INBOX"
    if utf8:
        return name
    try:
        return utf7.decode(name)
    except ValueError as exc:
        raise Bad(str(exc)) from None


def number_of(token: Token, what: str, most: int = MAX_NUMBER, least: int = 0) -> int:
    if not isinstance(token, str) or not _DIGITS.fullmatch(token):
        raise Bad(f"expected {what} (a number), got {describe(token)}")
    value = int(token)
    if not least <= value <= most:
        raise Bad(f"{what} {value} is out of range")
    return value


def parse_date_time(token: Token) -> datetime:
    """An RFC 3501 ``date-time`` (``"17-Jul-1996 02:44:25 -0700"``), aware."""
    text = text_of(token, "a date-time") if isinstance(token, bytes) else None
    if text is None:
        raise Bad("expected a quoted date-time")
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise Bad(f"invalid date-time {text!r}")
    day, month, year, hh, mm, ss, sign, zh, zm = match.groups()
    try:
        mon = [m.lower() for m in MONTHS].index(month.lower()) + 1
        offset = timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == "-" else 1)
        return datetime(int(year), mon, int(day), int(hh), int(mm), int(ss),
                        tzinfo=timezone(offset))
    except ValueError:
        raise Bad(f"invalid date-time {text!r}") from None


_ZONES: dict[timedelta | None, bytes] = {}


def _zone(offset: timedelta | None) -> bytes:
    text = _ZONES.get(offset)
    if text is None:
        minutes = int(offset.total_seconds()) // 60 if offset else 0
        sign = "-" if minutes < 0 else "+"
        minutes = abs(minutes)
        text = f"{sign}{minutes // 60:02d}{minutes % 60:02d}".encode("ascii")
        _ZONES[offset] = text
    return text


_MONTH_BYTES = tuple(m.encode("ascii") for m in MONTHS)


def format_date_time(value: datetime) -> bytes:
    """``"17-Jul-1996 02:44:25 -0700"`` (INTERNALDATE)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return b'"%02d-%s-%04d %02d:%02d:%02d %s"' % (
        value.day, _MONTH_BYTES[value.month - 1], value.year, value.hour, value.minute,
        value.second, _zone(value.utcoffset()))


class Args:
    """The arguments of one command, read front to back."""

    __slots__ = ("command", "pos", "tokens")

    def __init__(self, command: str, tokens: list[Token]) -> None:
        self.command = command
        self.tokens = tokens
        self.pos = 0

    def __bool__(self) -> bool:
        return self.pos < len(self.tokens)

    def peek(self) -> Token:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self, what: str) -> Token:
        if self.pos >= len(self.tokens):
            raise Bad(f"{self.command}: missing {what}")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def rest(self) -> list[Token]:
        rest = self.tokens[self.pos:]
        self.pos = len(self.tokens)
        return rest

    def atom(self, what: str) -> str:
        token = self.next(what)
        if not isinstance(token, str):
            raise Bad(f"{self.command}: expected {what}, got {describe(token)}")
        return token

    def astring(self, what: str) -> str:
        token = self.next(what)
        try:
            return text_of(token, what)
        except Bad as exc:
            raise Bad(f"{self.command}: {exc.text}") from None

    def secret(self, what: str) -> bytes:
        """An astring as raw bytes (passwords are compared as sent)."""
        token = self.next(what)
        if isinstance(token, bytes):
            return token
        if isinstance(token, str):
            return token.encode("utf-8")
        if token is None:
            return b"NIL"
        raise Bad(f"{self.command}: expected {what}, got a list")

    def mailbox(self, *, utf8: bool) -> str:
        token = self.next("a mailbox name")
        try:
            return mailbox_of(token, utf8=utf8)
        except Bad as exc:
            raise Bad(f"{self.command}: {exc.text}") from None

    def number(self, what: str, most: int = MAX_NUMBER, least: int = 0) -> int:
        token = self.next(what)
        try:
            return number_of(token, what, most, least)
        except Bad as exc:
            raise Bad(f"{self.command}: {exc.text}") from None

    def group(self, what: str) -> list[Token]:
        token = self.next(what)
        if not isinstance(token, list):
            raise Bad(f"{self.command}: expected {what} in parentheses, got {describe(token)}")
        return token

    def optional_list(self) -> list[Token] | None:
        if self.pos < len(self.tokens) and isinstance(self.tokens[self.pos], list):
            return self.group("a list")
        return None

    def end(self) -> None:
        if self.pos < len(self.tokens):
            raise Bad(f"{self.command}: unexpected argument {describe(self.tokens[self.pos])}")
