"""The IMAP search program: its key tree and the parser that builds it.

:class:`SearchParser` reads the tokens of a search program (the keys of RFC 3501 /
9051, RFC 5182 ``$``, RFC 7162 ``MODSEQ``, RFC 5032 ``OLDER`` / ``YOUNGER``) into a
tree of :class:`Key` nodes, with limits on nesting and key count;
:func:`parse_return` and :func:`parse_charset` read the ``RETURN (...)`` (RFC 4731)
and ``CHARSET`` that may come first. :mod:`plugins.imap.search` puts them together
as ``parse_search``; :mod:`plugins.imap.search_sql` evaluates the tree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from plugins.imap.seqset import SequenceSet

MAX_DEPTH = 64
"""Deepest nesting of parentheses and NOT / OR operands accepted (chains of OR or of
NOT are read in a loop and count as one level)."""
MAX_KEYS = 1000
"""Most search keys in one command."""
MAX_NUMBER64 = 2**63 - 1
CHARSETS = ("UTF-8", "US-ASCII")
RETURN_OPTIONS = ("MIN", "MAX", "ALL", "COUNT", "SAVE")


class SearchSyntaxError(ValueError):
    """The search program is malformed; the message is the tagged BAD text."""


class BadCharset(SearchSyntaxError):
    """CHARSET names a charset other than UTF-8 / US-ASCII: NO [BADCHARSET (UTF-8 US-ASCII)]."""


# -- the search program ----------------------------------------------------------------------
class Key:
    """A node of a parsed search program."""

    __slots__ = ()


@dataclass(frozen=True)
class AllKey(Key):
    pass


@dataclass(frozen=True)
class FlagKey(Key):
    flag: str
    """A system flag (``\\Seen`` ...) or a keyword, as given (matched caselessly)."""
    keyword: bool = False
    """Named by KEYWORD / UNKEYWORD: a system flag name there matches nothing."""


@dataclass(frozen=True)
class RecentKey(Key):
    pass


@dataclass(frozen=True)
class TextKey(Key):
    field: str
    """FROM, TO, CC, BCC, SUBJECT, BODY or TEXT."""
    needle: str


@dataclass(frozen=True)
class HeaderKey(Key):
    name: str
    needle: str


@dataclass(frozen=True)
class DateKey(Key):
    sent: bool
    op: str
    """before, on or since."""
    day: date


@dataclass(frozen=True)
class WithinKey(Key):
    older: bool
    seconds: int


@dataclass(frozen=True)
class SizeKey(Key):
    larger: bool
    size: int


@dataclass(frozen=True)
class ModseqKey(Key):
    modseq: int


@dataclass(frozen=True)
class SetKey(Key):
    seqset: SequenceSet
    uid: bool


@dataclass(frozen=True)
class NotKey(Key):
    child: Key


@dataclass(frozen=True)
class AndKey(Key):
    children: tuple[Key, ...]


@dataclass(frozen=True)
class OrKey(Key):
    children: tuple[Key, ...]


# -- parsing ---------------------------------------------------------------------------------
_MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)}
_DATE = re.compile(r"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
_NUMBER = re.compile(r"[0-9]{1,20}")
_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", False), "UNANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", False), "UNDELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", False), "UNDRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", False), "UNFLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", False), "UNSEEN": ("\\Seen", True),
}
_TEXT_KEYS = ("BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO")
_DATE_KEYS = {"BEFORE": (False, "before"), "ON": (False, "on"), "SINCE": (False, "since"),
              "SENTBEFORE": (True, "before"), "SENTON": (True, "on"),
              "SENTSINCE": (True, "since")}
_MODSEQ_ENTRY_TYPES = ("PRIV", "SHARED", "ALL")


def _describe(token: Any) -> str:
    if isinstance(token, list):
        return "a parenthesised list"
    if token is None:
        return "NIL"
    text = token.decode("utf-8", "replace") if isinstance(token, bytes) else token
    return repr(text[:40])


class SearchParser:
    """Reads one search program; counts its keys and notes ``MODSEQ`` and ``$``."""

    def __init__(self, utf8: bool) -> None:
        self.utf8 = utf8
        self.keys = 0
        self.uses_modseq = False
        self.uses_saved = False

    def program(self, tokens: list[Any], depth: int) -> Key:
        if not tokens:
            raise SearchSyntaxError("search program is empty: at least one search key needed")
        stream = _Tokens(tokens)
        children = []
        while not stream.done:
            children.append(self.key(stream, depth))
        return _and(children)

    def key(self, stream: _Tokens, depth: int) -> Key:
        if depth > MAX_DEPTH:
            raise SearchSyntaxError(f"search keys nested deeper than {MAX_DEPTH} levels")
        self.count_key()
        token = stream.take("search key")
        if isinstance(token, list):
            return self.program(token, depth + 1)
        if not isinstance(token, str):
            raise SearchSyntaxError(f"expected a search key, got {_describe(token)}")
        if token[:1].isdigit() or token[:1] in ("*", "$"):
            return self.sequence_set(token, uid=False)
        name = token.upper()
        if name in _FLAG_KEYS:
            flag, negated = _FLAG_KEYS[name]
            return NotKey(FlagKey(flag)) if negated else FlagKey(flag)
        if name in _TEXT_KEYS:
            return TextKey(name, self.string(stream, name))
        if name in _DATE_KEYS:
            sent, op = _DATE_KEYS[name]
            return DateKey(sent, op, self.date(stream, name))
        simple = _SIMPLE.get(name)
        if simple is not None:
            return simple(self, stream, depth)
        raise SearchSyntaxError(f"unknown search key {_describe(token)}")

    def count_key(self) -> None:
        self.keys += 1
        if self.keys > MAX_KEYS:
            raise SearchSyntaxError(f"more than {MAX_KEYS} search keys")

    # -- arguments ----------------------------------------------------------------------------
    def string(self, stream: _Tokens, key: str) -> str:
        token = stream.take(f"{key} needs a string argument")
        if token is None:
            return "NIL"
        if isinstance(token, str):
            text = token
        elif isinstance(token, bytes):
            try:
                text = token.decode("utf-8")
            except UnicodeDecodeError:
                raise SearchSyntaxError(f"{key}: the string is not valid UTF-8") from None
        else:
            raise SearchSyntaxError(f"{key} needs a string argument, not {_describe(token)}")
        if "\x00" in text:
            raise SearchSyntaxError(f"{key}: NUL inside a string")
        return text

    def number(self, stream: _Tokens, key: str, most: int = MAX_NUMBER64) -> int:
        token = stream.take(f"{key} needs a number")
        if not isinstance(token, str) or not _NUMBER.fullmatch(token):
            raise SearchSyntaxError(f"{key} needs a number, not {_describe(token)}")
        value = int(token)
        if value > most:
            raise SearchSyntaxError(f"{key}: number {token} is too large")
        return value

    def date(self, stream: _Tokens, key: str) -> date:
        token = stream.take(f"{key} needs a date like 1-Feb-1994")
        text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
        match = _DATE.fullmatch(text) if isinstance(text, str) else None
        month = _MONTHS.get(match.group(2).upper()) if match else None
        if match is None or month is None:
            raise SearchSyntaxError(f"{key} needs a date like 1-Feb-1994, not {_describe(token)}")
        try:
            return date(int(match.group(3)), month, int(match.group(1)))
        except ValueError:
            raise SearchSyntaxError(f"{key}: {text} is not a date") from None

    def sequence_set(self, text: str, uid: bool) -> Key:
        try:
            seqset = SequenceSet.parse(text)
        except ValueError as exc:
            raise SearchSyntaxError(f"bad sequence set: {exc}") from None
        if seqset.is_saved:
            self.uses_saved = True
        return SetKey(seqset, uid)

    # -- keys with their own syntax -----------------------------------------------------------
    def k_all(self, stream: _Tokens, depth: int) -> Key:
        return AllKey()

    def k_new(self, stream: _Tokens, depth: int) -> Key:
        return AndKey((RecentKey(), NotKey(FlagKey("\\Seen"))))

    def k_old(self, stream: _Tokens, depth: int) -> Key:
        return NotKey(RecentKey())

    def k_recent(self, stream: _Tokens, depth: int) -> Key:
        return RecentKey()

    def k_keyword(self, stream: _Tokens, depth: int) -> Key:
        return FlagKey(self.flag(stream, "KEYWORD"), keyword=True)

    def k_unkeyword(self, stream: _Tokens, depth: int) -> Key:
        return NotKey(FlagKey(self.flag(stream, "UNKEYWORD"), keyword=True))

    def flag(self, stream: _Tokens, key: str) -> str:
        token = stream.take(f"{key} needs a flag keyword")
        if not isinstance(token, str) or not token:
            raise SearchSyntaxError(f"{key} needs a flag keyword, not {_describe(token)}")
        return token

    def k_larger(self, stream: _Tokens, depth: int) -> Key:
        return SizeKey(True, self.number(stream, "LARGER"))

    def k_smaller(self, stream: _Tokens, depth: int) -> Key:
        return SizeKey(False, self.number(stream, "SMALLER"))

    def k_older(self, stream: _Tokens, depth: int) -> Key:
        return WithinKey(True, self.number(stream, "OLDER", 2**32 - 1))

    def k_younger(self, stream: _Tokens, depth: int) -> Key:
        return WithinKey(False, self.number(stream, "YOUNGER", 2**32 - 1))

    def k_header(self, stream: _Tokens, depth: int) -> Key:
        name = self.string(stream, "HEADER").strip()
        if not name or ":" in name or any(ord(c) < 33 or ord(c) > 126 for c in name):
            raise SearchSyntaxError(f"HEADER: {name[:40]!r} is not a header field name")
        return HeaderKey(name, self.string(stream, "HEADER"))

    def k_not(self, stream: _Tokens, depth: int) -> Key:
        negated = True
        while _upper_atom(stream.peek()) == "NOT":  # NOT NOT ... : a loop, not a recursion
            stream.take("")
            self.count_key()
            negated = not negated
        child = self.key(stream, depth + 1)
        if not negated:
            return child
        return child.child if isinstance(child, NotKey) else NotKey(child)

    def k_or(self, stream: _Tokens, depth: int) -> Key:
        # OR is associative: "OR a OR b c" and "OR OR a b c" are one OR of three. Each
        # further OR where an operand is due makes room for one more operand, so chains
        # of either shape are read in a loop at one depth.
        children: list[Key] = []
        due = 2
        while due:
            if _upper_atom(stream.peek()) == "OR":
                stream.take("")
                self.count_key()
                due += 1
                continue
            child = self.key(stream, depth + 1)
            children.extend(child.children if isinstance(child, OrKey) else (child,))
            due -= 1
        return OrKey(tuple(children))

    def k_uid(self, stream: _Tokens, depth: int) -> Key:
        token = stream.take("UID needs a sequence set")
        if not isinstance(token, str):
            raise SearchSyntaxError(f"UID needs a sequence set, not {_describe(token)}")
        return self.sequence_set(token, uid=True)

    def k_modseq(self, stream: _Tokens, depth: int) -> Key:
        # MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162 3.1.5); the
        # metadata item is accepted and ignored: a message has one MODSEQ here.
        if isinstance(stream.peek(), bytes):
            stream.take("")
            kind = stream.take("MODSEQ entry name needs an entry type (priv, shared, all)")
            if not isinstance(kind, str) or kind.upper() not in _MODSEQ_ENTRY_TYPES:
                raise SearchSyntaxError(f"MODSEQ entry type must be priv, shared or all, "
                                        f"not {_describe(kind)}")
        self.uses_modseq = True
        return ModseqKey(self.number(stream, "MODSEQ"))


_SIMPLE: dict[str, Callable[[SearchParser, Any, int], Key]] = {
    "ALL": SearchParser.k_all, "NEW": SearchParser.k_new, "OLD": SearchParser.k_old,
    "RECENT": SearchParser.k_recent, "KEYWORD": SearchParser.k_keyword,
    "UNKEYWORD": SearchParser.k_unkeyword, "LARGER": SearchParser.k_larger,
    "SMALLER": SearchParser.k_smaller, "OLDER": SearchParser.k_older,
    "YOUNGER": SearchParser.k_younger, "HEADER": SearchParser.k_header, "NOT": SearchParser.k_not,
    "OR": SearchParser.k_or, "UID": SearchParser.k_uid, "MODSEQ": SearchParser.k_modseq,
}


class _Tokens:
    def __init__(self, tokens: list[Any]) -> None:
        self.tokens = tokens
        self.pos = 0

    @property
    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    def peek(self) -> Any:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, missing: str) -> Any:
        if self.pos >= len(self.tokens):
            raise SearchSyntaxError(f"missing argument: {missing}")
        token = self.tokens[self.pos]
        self.pos += 1
        return token


def _and(children: list[Key]) -> Key:
    flat: list[Key] = []
    for child in children:
        flat.extend(child.children if isinstance(child, AndKey) else (child,))
    return flat[0] if len(flat) == 1 else AndKey(tuple(flat))


def _upper_atom(token: Any) -> str | None:
    return token.upper() if isinstance(token, str) else None


def parse_return(options: Any) -> tuple[str, ...]:
    """The RETURN options of RFC 4731 (``()`` is ALL); SearchSyntaxError for unknown ones."""
    if not isinstance(options, list):
        raise SearchSyntaxError(f"RETURN needs a parenthesised list, not {_describe(options)}")
    found: list[str] = []
    for option in options:
        name = _upper_atom(option)
        if name not in RETURN_OPTIONS:
            raise SearchSyntaxError(f"unknown RETURN option {_describe(option)}; "
                                    f"known: {' '.join(RETURN_OPTIONS)}")
        if name not in found:
            found.append(name)
    return tuple(found) or ("ALL",)


def parse_charset(stream: list[Any], start: int) -> tuple[str, int]:
    """``CHARSET x`` at ``start`` if present: (charset, next index); BadCharset if unknown."""
    if _upper_atom(stream[start] if start < len(stream) else None) != "CHARSET":
        return "US-ASCII", start
    if start + 1 >= len(stream):
        raise SearchSyntaxError("missing argument: CHARSET needs a charset name")
    token = stream[start + 1]
    name = token.decode("ascii", "replace") if isinstance(token, bytes) else token
    if not isinstance(name, str):
        raise SearchSyntaxError(f"CHARSET needs a charset name, not {_describe(token)}")
    if name.upper() not in CHARSETS:
        raise BadCharset(f"charset {name[:40]!r} is not supported")
    return name.upper(), start + 2
