"""IMAP search keys in the store: as restrictions for SQL, or evaluated in Python.

:class:`Evaluator` answers a search program (:mod:`plugins.imap.search_keys`)
over the selected mailbox (:class:`SelectedView`) in one read transaction: every
part the store's restriction engine can say (:mod:`gateway.store.restrictions`)
runs as one SQL query over the folder's contents table; sequence sets, ``$``,
``\\Recent`` and, when the session hands over the flags it knows, flag, MODSEQ
and size keys are set operations on the session's view; ``HEADER`` on a field
without its own property is checked in Python over the stored header block,
only for the messages an SQL pre-filter leaves.

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

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
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
from plugins.imap.search_keys import (
    AllKey,
    AndKey,
    DateKey,
    FlagKey,
    HeaderKey,
    Key,
    ModseqKey,
    NotKey,
    OrKey,
    RecentKey,
    SetKey,
    SizeKey,
    TextKey,
    WithinKey,
)

UID = T.PidTagInternetArticleNumber
_SQL_NODES = 3000
"""Restriction nodes sent to SQL in one query (the compiler refuses beyond 4096)."""


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


# -- keys as restrictions --------------------------------------------------------------------
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


# -- evaluating ------------------------------------------------------------------------------
class Evaluator:
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

