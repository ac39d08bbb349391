"""IMAP SEARCH: parse the search program, run it through the store's tables, answer it.

:func:`parse_search` turns the tokens after ``SEARCH`` / ``UID SEARCH`` into a
:class:`SearchQuery` (RFC 3501 / 9051 keys, RFC 4731 ``RETURN``, RFC 5182 ``$``,
RFC 7162 ``MODSEQ``, RFC 5032 ``OLDER`` / ``YOUNGER``). :func:`run_search` evaluates
it against the selected mailbox in one read transaction: every part the store's
restriction engine can say (:mod:`gateway.store.restrictions`) runs as one SQL
query over the folder's contents table; sequence sets, ``$``, ``\\Recent`` and,
when the session hands over the flags it knows, flag, MODSEQ and size keys are
set operations on the session's view; ``HEADER`` on a field without its own
property is checked in Python over the stored header block, only for the
messages an SQL pre-filter leaves. :func:`search_response` writes the untagged
``SEARCH`` / ``ESEARCH`` lines.

Where the data comes from (flags as :mod:`gateway.store.imap` maps them):
FROM the From person (``PidTagSentRepresenting*``, else ``PidTagSender*``),
TO/CC/BCC the recipient rows of that type (name or address); SUBJECT the
decoded subject; BODY the plain-text body (``PidTagBody``, which the MIME
importer also derives from HTML-only mail; a MAPI message with only an HTML
body is matched case-sensitively in its HTML); TEXT the header block, the
subject or the body. Text matches are case-insensitive substrings (Unicode
caseless, so "strasse" finds "Straße", which Dovecot's simpler folding does
not). BEFORE/ON/SINCE compare the internal date (``PidTagMessageDeliveryTime``)
by its date in UTC, the server's time zone. SENT* compare the Date header's
own date, disregarding time and zone (RFC 3501): SQL settles every message
sent (``PidTagClientSubmitTime``) more than two days from the day asked, and
the Date header is read for the few within (a message without one: its submit
time's UTC date). LARGER/SMALLER compare RFC822.SIZE. KEYWORD with a system
flag name matches nothing, as in Dovecot.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_tz
from typing import Any

from gateway.convert.charsets import decode_words
from gateway.store import tables
from gateway.store import tags as T
from gateway.store.imap import (
    FLAG_STATUS_FLAGGED,
    VERB_FORWARD,
    VERB_REPLY_TO_ALL,
    VERB_REPLY_TO_SENDER,
    ImapAnswered,
    MessageFlags,
)
from gateway.store.objects import MSGFLAG_UNSENT
from gateway.store.restriction_domains import (
    PidTagGatewayImapDeleted,
    PidTagGatewayModseq,
    PidTagGatewayRead,
    PidTagGatewayRfc822Size,
)
from gateway.store.restriction_eval import fold
from gateway.store.restrictions import (
    And,
    Bitmask,
    Content,
    Exists,
    Not,
    Or,
    Property,
    Restriction,
    SubRestriction,
)
from gateway.store.txn import Txn
from plugins.imap.seqset import SequenceSet, format_set

MAX_DEPTH = 64
"""Deepest nesting of parentheses and NOT / OR operands accepted (chains of OR or of
NOT are read in a loop and count as one level)."""
MAX_KEYS = 1000
"""Most search keys in one command."""
MAX_NUMBER64 = 2**63 - 1
CHARSETS = ("UTF-8", "US-ASCII")
RETURN_OPTIONS = ("MIN", "MAX", "ALL", "COUNT", "SAVE")
UID = T.PidTagInternetArticleNumber
_SQL_NODES = 3000
"""Restriction nodes sent to SQL in one query (the compiler refuses beyond 4096)."""


class SearchSyntaxError(ValueError):
    """The search program is malformed; the message is the tagged BAD text."""


class BadCharset(SearchSyntaxError):
    """CHARSET names a charset other than UTF-8 / US-ASCII: NO [BADCHARSET (UTF-8 US-ASCII)]."""


@dataclass(frozen=True)
class SelectedView:
    """What the session knows about the selected mailbox."""

    folder_id: int
    uids: Sequence[int]
    """Sorted; sequence number n is ``uids[n-1]``."""
    saved: Sequence[int] = ()
    """The SEARCHRES ``$`` result (UIDs)."""
    recent: Collection[int] = ()
    """UIDs this session reports as ``\\Recent`` (empty for IMAP4rev2)."""
    flags: Mapping[int, MessageFlags] | None = None
    """The session's last known flags, MODSEQ and size per UID (``SelectedMailbox.flags_of``;
    only ``get`` is used). Given, flag, MODSEQ and size keys are answered from it in
    memory (what the client has been told, as Dovecot answers from its index); else
    from the store."""


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


@dataclass
class SearchQuery:
    returns: tuple[str, ...] | None
    """None: a plain SEARCH answer; else the ESEARCH RETURN options (``()`` means ALL)."""
    uses_modseq: bool
    """A MODSEQ key is present (CONDSTORE): the answer carries the highest MODSEQ."""
    key: Key = field(default_factory=AllKey)
    charset: str = "US-ASCII"
    uses_saved: bool = False
    """``$`` appears in the program."""


@dataclass
class SearchResult:
    uids: list[int]
    """Matching UIDs, sorted."""
    highest_modseq: int | None = None
    """With a MODSEQ key: the highest MODSEQ among the matches (None when none match)."""
    modseqs: dict[int, int] = field(default_factory=dict)
    """With a MODSEQ key: each match's MODSEQ."""
    saved: list[int] | None = None
    """With RETURN (SAVE): the UIDs the session keeps as ``$`` (RFC 5182 2.4)."""


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


class _Parser:
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


_SIMPLE: dict[str, Callable[[_Parser, Any, int], Key]] = {
    "ALL": _Parser.k_all, "NEW": _Parser.k_new, "OLD": _Parser.k_old,
    "RECENT": _Parser.k_recent, "KEYWORD": _Parser.k_keyword, "UNKEYWORD": _Parser.k_unkeyword,
    "LARGER": _Parser.k_larger, "SMALLER": _Parser.k_smaller, "OLDER": _Parser.k_older,
    "YOUNGER": _Parser.k_younger, "HEADER": _Parser.k_header, "NOT": _Parser.k_not,
    "OR": _Parser.k_or, "UID": _Parser.k_uid, "MODSEQ": _Parser.k_modseq,
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


def parse_search(args: list[Any], *, utf8: bool = False) -> SearchQuery:
    """The SEARCH / UID SEARCH arguments (optional RETURN (...), CHARSET x, then the keys)."""
    if not isinstance(args, list):
        raise SearchSyntaxError("search arguments are a list of tokens")
    start, returns = 0, None
    if args and _upper_atom(args[0]) == "RETURN":
        if len(args) < 2:
            raise SearchSyntaxError("missing argument: RETURN needs a list of options")
        returns, start = parse_return(args[1]), 2
    charset, start = parse_charset(args, start)
    parser = _Parser(utf8)
    key = parser.program(args[start:], 0)
    return SearchQuery(returns, parser.uses_modseq, key, charset, parser.uses_saved)


# -- running ---------------------------------------------------------------------------------
_FROM = (T.PidTagSentRepresentingName, T.PidTagSentRepresentingSmtpAddress,
         T.PidTagSentRepresentingEmailAddress)
_SENDER = (T.PidTagSenderName, T.PidTagSenderSmtpAddress, T.PidTagSenderEmailAddress)
_RECIPIENT_TYPES = {"TO": 1, "CC": 2, "BCC": 3}
_HEADER_TAGS = {"message-id": T.PidTagInternetMessageId, "in-reply-to": T.PidTagInReplyToId,
                "references": T.PidTagInternetReferences}
_EARLIEST = datetime(1601, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def _contains(tag: int, needle: str) -> Content:
    return Content(tag, needle, "substring", ignore_case=True)


def _any_contains(tags: Sequence[int], needle: str) -> Restriction:
    return Or(*(_contains(tag, needle) for tag in tags))


def _text(field: str, needle: str) -> Restriction:
    if field == "SUBJECT":
        return _contains(T.PidTagSubject, needle)
    if field == "FROM":
        no_from = And(*(Not(Exists(tag)) for tag in _FROM))
        return Or(_any_contains(_FROM, needle), And(no_from, _any_contains(_SENDER, needle)))
    if field in _RECIPIENT_TYPES:
        return SubRestriction("recipients", And(
            Property("eq", T.PidTagRecipientType, _RECIPIENT_TYPES[field]),
            _any_contains((T.PidTagDisplayName, T.PidTagSmtpAddress, T.PidTagEmailAddress),
                          needle)))
    body = Or(_contains(T.PidTagBody, needle),
              And(Not(Exists(T.PidTagBody)),
                  Content(T.PidTagHtml, needle.encode("utf-8"), "substring")))
    if field == "BODY":
        return body
    return Or(_contains(T.PidTagTransportMessageHeaders, needle),
              _contains(T.PidTagSubject, needle), body)


def _day(day: date, days: int = 0) -> datetime:
    try:
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=days)
    except OverflowError:
        return _EARLIEST if days < 0 else _LATEST
    return min(max(moment, _EARLIEST), _LATEST)


def _date(key: DateKey) -> Restriction:
    tag = T.PidTagMessageDeliveryTime
    if key.op == "before":
        return Property("lt", tag, _day(key.day))
    if key.op == "since":
        return Property("ge", tag, _day(key.day))
    return And(Property("ge", tag, _day(key.day)), Property("lt", tag, _day(key.day, 1)))


def _flag(flag: str, keyword: bool = False) -> Restriction:
    name = flag.upper()
    if keyword and name.startswith("\\"):
        return Or()  # not a keyword (Dovecot answers nothing too)
    if name == "\\SEEN":
        return Property("eq", PidTagGatewayRead, True)
    if name == "\\DELETED":
        return Property("eq", PidTagGatewayImapDeleted, True)
    if name == "\\FLAGGED":
        return Property("eq", T.PidTagFlagStatus, FLAG_STATUS_FLAGGED)
    if name == "\\DRAFT":
        return Bitmask(T.PidTagMessageFlags, MSGFLAG_UNSENT)
    if name == "\\ANSWERED":
        return Or(Property("eq", T.PidTagLastVerbExecuted, VERB_REPLY_TO_SENDER),
                  Property("eq", T.PidTagLastVerbExecuted, VERB_REPLY_TO_ALL),
                  Property("eq", ImapAnswered, True))
    if name == "$FORWARDED":
        return Property("eq", T.PidTagLastVerbExecuted, VERB_FORWARD)
    if name.startswith("\\"):
        return Or()  # \Recent is not a keyword; other system flags do not exist
    return Property("eq", T.PidNameKeywords, flag)


def _leaf(key: Key) -> Restriction | None:
    """The restriction of a leaf key, or None when it is not said in SQL."""
    if isinstance(key, AllKey):
        return And()
    if isinstance(key, FlagKey):
        return _flag(key.flag, key.keyword)
    if isinstance(key, TextKey):
        return _text(key.field, key.needle)
    if isinstance(key, HeaderKey):
        name = key.name.lower()
        if name == "subject":
            return _text("SUBJECT", key.needle)
        if name in _HEADER_TAGS:
            tag = _HEADER_TAGS[name]
            return _contains(tag, key.needle) if key.needle else Exists(tag)
        return None
    if isinstance(key, DateKey) and not key.sent:
        return _date(key)
    if isinstance(key, WithinKey):
        moment = max(datetime.now(UTC) - timedelta(seconds=key.seconds), _EARLIEST)
        return Property("le" if key.older else "ge", T.PidTagMessageDeliveryTime, moment)
    if isinstance(key, SizeKey):
        return Property("gt" if key.larger else "lt", PidTagGatewayRfc822Size, key.size)
    if isinstance(key, ModseqKey):
        return Property("ge", PidTagGatewayModseq, key.modseq)
    return None


@dataclass(frozen=True)
class _Sql:
    restriction: Restriction
    depth: int
    nodes: int


def _shape(restriction: Restriction) -> tuple[int, int]:
    if isinstance(restriction, And | Or):
        shapes = [_shape(child) for child in restriction.children]
        return (1 + max((d for d, _ in shapes), default=0), 1 + sum(n for _, n in shapes))
    if isinstance(restriction, Not | SubRestriction):
        inner = restriction.child if isinstance(restriction, Not) else restriction.restriction
        depth, nodes = _shape(inner)
        return depth + 1, nodes + 1
    return 1, 1


class _Evaluator:
    """Evaluates a program in one read transaction; every set is of UIDs in the view."""

    def __init__(self, txn: Txn, view: SelectedView) -> None:
        self.txn = txn
        self.view = view
        self.universe = frozenset(view.uids)
        self.max_depth = max(4, txn.limits.max_restriction_depth - 1)
        self.compiled: dict[int, tuple[Key, _Sql | None]] = {}
        """By id (the key is kept with its result so that its id stays its own)."""

    def in_memory(self, key: Key) -> bool:
        """Whether the key is answered from the view alone (no SQL)."""
        if isinstance(key, NotKey):
            return self.in_memory(key.child)
        if isinstance(key, SetKey | RecentKey):
            return True
        return self.view.flags is not None and isinstance(key, FlagKey | ModseqKey | SizeKey)

    def sql(self, key: Key) -> _Sql | None:
        """The key as one restriction if SQL can say it whole within the compiler's limits."""
        found = self.compiled.get(id(key))
        if found is not None:
            return found[1]
        result: _Sql | None = None
        if self.in_memory(key):
            pass
        elif isinstance(key, AndKey | OrKey):
            parts = [self.sql(child) for child in key.children]
            if all(part is not None for part in parts):
                ready = [part for part in parts if part is not None]
                node: Restriction = (And if isinstance(key, AndKey) else Or)(
                    *(part.restriction for part in ready))
                result = _Sql(node, 1 + max((p.depth for p in ready), default=0),
                              1 + sum(p.nodes for p in ready))
        elif isinstance(key, NotKey):
            inner = self.sql(key.child)
            if inner is not None:
                result = _Sql(Not(inner.restriction), inner.depth + 1, inner.nodes + 1)
        else:
            restriction = _leaf(key)
            if restriction is not None:
                result = _Sql(restriction, *_shape(restriction))
        if result is not None and (result.depth > self.max_depth or result.nodes > _SQL_NODES):
            result = None
        self.compiled[id(key)] = (key, result)
        return result

    def run(self, restriction: Restriction | None, columns: Sequence[int] = (UID,)
            ) -> list[dict[Any, Any]]:
        return tables.query_contents(self.txn, self.view.folder_id, list(columns),
                                     restriction=restriction).rows

    def select(self, restriction: Restriction,
               within: frozenset[int] | set[int] | None = None) -> set[int]:
        """The UIDs matching; with ``within``, SQL looks only at its range of UIDs."""
        if isinstance(restriction, And) and not restriction.children:
            return set(self.universe if within is None else within)
        if within is not None and within != self.universe:
            if not within:
                return set()
            restriction = And(Property("ge", UID, min(within)), Property("le", UID, max(within)),
                              restriction)
        found = {row[UID] for row in self.run(restriction)}
        return found & (self.universe if within is None else within)

    def evaluate(self, key: Key, within: frozenset[int] | set[int] | None = None) -> set[int]:
        """The UIDs matching ``key`` (only among ``within`` when given)."""
        compiled = self.sql(key)
        if compiled is not None:
            return self.select(compiled.restriction, within)
        if isinstance(key, NotKey):
            return set(self.universe - self.evaluate(key.child))
        if isinstance(key, AndKey):
            return self.both(key.children, within)
        if isinstance(key, OrKey):
            result: set[int] = set()
            for child in self._groups(key.children, Or):
                result |= self.evaluate(child)
            return result
        if isinstance(key, SetKey):
            return self.sequence_set(key)
        if isinstance(key, RecentKey):
            return set(self.universe.intersection(self.view.recent))
        if isinstance(key, FlagKey | ModseqKey | SizeKey):
            return self.from_view(key, self.universe if within is None else within)
        if isinstance(key, HeaderKey):
            return self.header(key, self.universe if within is None else within)
        if isinstance(key, DateKey):
            return self.sent(key, self.universe if within is None else within)
        raise AssertionError(f"no evaluation for {key!r}")

    def both(self, children: tuple[Key, ...], within: frozenset[int] | set[int] | None) -> set[int]:
        cheap = [c for c in children if self.in_memory(c)]
        rest = [c for c in children if not self.in_memory(c)]
        result = set(self.universe if within is None else within)
        for child in cheap:
            result &= self.evaluate(child)
        groups = self._groups(tuple(rest), And)
        in_sql = [group for group in groups if self.sql(group) is not None]
        others = [group for group in groups if self.sql(group) is None]
        for group in in_sql:
            if not result:
                return result
            result &= self.evaluate(group, result)
        for group in others:
            if not result:
                return result
            result &= self.evaluate(group, result)
        return result

    def _groups(self, children: tuple[Key, ...], kind: type) -> list[Key]:
        """SQL-able children bundled into as few restrictions as the limits allow."""
        groups: list[Key] = []
        bundle: list[Key] = []
        nodes = 0
        wrap = AndKey if kind is And else OrKey
        for child in children:
            compiled = self.sql(child)
            if compiled is None or compiled.depth >= self.max_depth:
                groups.append(child)
                continue
            if bundle and nodes + compiled.nodes > _SQL_NODES - 1:
                groups.append(bundle[0] if len(bundle) == 1 else wrap(tuple(bundle)))
                bundle, nodes = [], 0
            bundle.append(child)
            nodes += compiled.nodes
        if bundle:
            groups.append(bundle[0] if len(bundle) == 1 else wrap(tuple(bundle)))
        return groups

    def from_view(self, key: FlagKey | ModseqKey | SizeKey,
                  within: frozenset[int] | set[int]) -> set[int]:
        known = self.view.flags
        assert known is not None
        items = [(uid, item) for uid in within if (item := known.get(uid)) is not None]
        if isinstance(key, ModseqKey):
            return {uid for uid, item in items if item.modseq >= key.modseq}
        if isinstance(key, SizeKey):
            if key.larger:
                return {uid for uid, item in items if item.size > key.size}
            return {uid for uid, item in items if item.size < key.size}
        flag = key.flag
        if flag.startswith("\\"):
            if key.keyword or flag not in _SYSTEM_FLAGS:
                return set()  # KEYWORD \Seen, or \Recent: no such keyword
            return {uid for uid, item in items if flag in item.flags}
        wanted = flag.lower()
        return {uid for uid, item in items if any(f.lower() == wanted for f in item.flags)}

    def sequence_set(self, key: SetKey) -> set[int]:
        uids = self.view.uids
        if key.seqset.is_saved:
            return set(self.universe.intersection(self.view.saved))
        if key.uid:
            return set(key.seqset.iter_values(uids[-1] if uids else 0, uids))
        found: set[int] = set()
        for low, high in key.seqset.resolve(len(uids)):
            found.update(uids[low - 1:high])
        return found

    def header(self, key: HeaderKey, within: frozenset[int] | set[int]) -> set[int]:
        if not within:
            return set()
        headers = T.PidTagTransportMessageHeaders
        name = key.name.lower()
        prefilter: list[Restriction] = [
            _contains(headers, key.name + ":"),
            Property("ge", UID, min(within)), Property("le", UID, max(within))]
        if key.needle and key.needle.isascii() and not any(c.isspace() for c in key.needle):
            prefilter.append(Or(_contains(headers, key.needle), _contains(headers, "=?")))
        needle = fold(key.needle)
        found: set[int] = set()
        for row in self.run(And(*prefilter), (UID, headers)):
            uid = row[UID]
            if uid in within and any(needle in fold(value)
                                     for value in header_values(row.get(headers, ""), name)):
                found.add(uid)
        return found

    def sent(self, key: DateKey, within: frozenset[int] | set[int]) -> set[int]:
        """SENTBEFORE/ON/SINCE by the Date header's own date (its zone disregarded)."""
        if not within:
            return set()
        tag, headers = T.PidTagClientSubmitTime, T.PidTagTransportMessageHeaders
        start, end = _day(key.day, -_SENT_MARGIN_DAYS), _day(key.day, _SENT_MARGIN_DAYS + 1)
        found: set[int] = set()
        if key.op == "before":
            found = self.select(Property("lt", tag, start), within)
        elif key.op == "since":
            found = self.select(Property("ge", tag, end), within)
        near = And(Property("ge", tag, start), Property("lt", tag, end),
                   Property("ge", UID, min(within)), Property("le", UID, max(within)))
        for row in self.run(near, (UID, tag, headers)):
            if row[UID] not in within:
                continue
            day = _sent_day(row.get(headers), row[tag])
            if (day < key.day if key.op == "before" else day == key.day if key.op == "on"
                    else day >= key.day):
                found.add(row[UID])
        return found & within


_SYSTEM_FLAGS = frozenset({"\\Seen", "\\Flagged", "\\Answered", "\\Draft", "\\Deleted"})

_SENT_MARGIN_DAYS = 2
"""A Date header's own day is within this many days of its UTC day (zones are at most ±24 h
in practice; RFC 5322 allows ±99:59, which SQL would then settle by the UTC day)."""


def _sent_day(block: str | None, submitted: datetime) -> date:
    """The date a message's Date header names, ignoring its time and zone."""
    for value in header_values(block or "", "date")[:1]:
        parsed = parsedate_tz(value)
        if parsed is not None:
            try:
                return date(parsed[0], parsed[1], parsed[2])
            except ValueError:
                break
    return submitted.astimezone(UTC).date()


def header_values(block: str, name: str) -> list[str]:
    """The unfolded, RFC 2047-decoded values of the fields called ``name`` (lower-case)."""
    values: list[str] = []
    current: list[str] | None = None
    for line in block.split("\n"):
        line = line.rstrip("\r")
        if line[:1] in (" ", "\t"):
            if current is not None:
                current.append(line)
            continue
        if current is not None:
            values.append(decode_words("".join(current).strip()))
            current = None
        field_name, colon, value = line.partition(":")
        if colon and field_name.strip().lower() == name:
            current = [value]
    if current is not None:
        values.append(decode_words("".join(current).strip()))
    return values


def _search(txn: Txn, view: SelectedView, query: SearchQuery) -> SearchResult:
    evaluator = _Evaluator(txn, view)
    uids = sorted(evaluator.evaluate(query.key)) if view.uids else []
    result = SearchResult(uids)
    if query.uses_modseq and uids:
        known = view.flags
        if known is not None:
            result.modseqs = {uid: item.modseq for uid in uids
                              if (item := known.get(uid)) is not None}
        else:
            wanted = set(uids)
            result.modseqs = {row[UID]: row[PidTagGatewayModseq]
                              for row in evaluator.run(None, (UID, PidTagGatewayModseq))
                              if row[UID] in wanted}
        result.highest_modseq = max(result.modseqs.values(), default=None)
    if query.returns is not None and "SAVE" in query.returns:
        if "ALL" in query.returns or "COUNT" in query.returns or not (
                {"MIN", "MAX"} & set(query.returns)):
            result.saved = list(uids)
        else:
            picked = {uids[0] if "MIN" in query.returns else None,
                      uids[-1] if "MAX" in query.returns else None} if uids else set()
            result.saved = sorted(uid for uid in picked if uid is not None)
    return result


async def run_search(mbox: Any, view: SelectedView, query: SearchQuery) -> SearchResult:
    """Run ``query`` over the selected folder (one read transaction on a reader thread).

    Raises the store's errors (NotFound when the folder is gone)."""
    result: SearchResult = await mbox.read(_search, view, query)
    return result


# -- answering -------------------------------------------------------------------------------
def _numbers(result: SearchResult, view: SelectedView, uid: bool) -> list[int]:
    if uid:
        return result.uids
    return [bisect_left(view.uids, u) + 1 for u in result.uids]


def search_response(tag: str, result: SearchResult, query: SearchQuery, view: SelectedView,
                    *, uid: bool, esearch: bool = False) -> list[bytes]:
    """The untagged lines answering a search (CRLF-terminated).

    A plain SEARCH answers ``* SEARCH n ...`` (with ``(MODSEQ n)`` after a MODSEQ key)
    unless ``esearch`` (IMAP4rev2: always ESEARCH, as RETURN (ALL)); with RETURN it
    answers ``* ESEARCH (TAG "t") [UID] MIN .. MAX .. COUNT .. ALL .. [MODSEQ ..]``, and
    nothing at all for RETURN (SAVE) alone (RFC 5182). The caller stores
    ``result.saved`` as the new ``$`` when it is not None.
    """
    numbers = _numbers(result, view, uid)
    returns = query.returns
    if returns is None and not esearch:
        line = "* SEARCH" + "".join(f" {n}" for n in numbers)
        if query.uses_modseq and result.highest_modseq is not None and numbers:
            line += f" (MODSEQ {result.highest_modseq})"
        return [line.encode("ascii") + b"\r\n"]
    wanted = returns or ("ALL",)  # RETURN () and IMAP4rev2's plain SEARCH mean ALL
    if wanted == ("SAVE",):
        return []
    quoted = tag.replace("\\", "\\\\").replace('"', '\\"')
    parts = [f'* ESEARCH (TAG "{quoted}")']
    if uid:
        parts.append("UID")
    if numbers:
        if "MIN" in wanted:
            parts.append(f"MIN {numbers[0]}")
        if "MAX" in wanted:
            parts.append(f"MAX {numbers[-1]}")
    if "COUNT" in wanted:
        parts.append(f"COUNT {len(numbers)}")
    if numbers and "ALL" in wanted:
        parts.append(f"ALL {format_set(numbers)}")
    if query.uses_modseq and numbers and result.modseqs:
        if {"ALL", "COUNT"} & set(wanted):
            modseq = result.highest_modseq
        else:
            shown = {result.uids[0] if "MIN" in wanted else None,
                     result.uids[-1] if "MAX" in wanted else None}
            modseq = max(result.modseqs.get(u, 0) for u in shown if u is not None)
        parts.append(f"MODSEQ {modseq}")
    return [" ".join(parts).encode("utf-8") + b"\r\n"]
