"""IMAP SORT (RFC 5256) with DISPLAYFROM / DISPLAYTO (RFC 5957).

The messages are those of the search program (:mod:`plugins.imap.search`).
ARRIVAL and SIZE alone are column values: the contents table sorts them in
SQL. Otherwise the sort values come from one contents-table read of just the
columns the criteria need (subject, dates, sender, RFC822.SIZE), plus one
query for the first To / Cc recipients when asked
(:func:`gateway.store.parts.first_recipients`), and are ordered in Python,
since RFC 5256's keys (the base subject of section 2.1, the address's
mailbox part, the sent date falling back to the arrival date) are not column
values. The last tie-breaker is the sequence number (UID order).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.store import parts, tables
from gateway.store import tags as T
from gateway.store.restriction_domains import PidTagGatewayRfc822Size
from gateway.store.restriction_eval import fold
from gateway.store.restrictions import And, Property
from gateway.store.txn import Txn
from plugins.imap.search import (
    UID,
    SearchQuery,
    SearchSyntaxError,
    SelectedView,
    parse_search,
    run_search,
)

CRITERIA = ("ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM",
            "DISPLAYTO")
_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_FROM = (T.PidTagSentRepresentingName, T.PidTagSentRepresentingSmtpAddress,
         T.PidTagSentRepresentingEmailAddress)
_SENDER = (T.PidTagSenderName, T.PidTagSenderSmtpAddress, T.PidTagSenderEmailAddress)
_RECIPIENT_TYPES = {"TO": 1, "CC": 2, "DISPLAYTO": 1}


@dataclass
class SortQuery:
    criteria: tuple[tuple[str, bool], ...]
    """(criterion, reversed), most significant first."""
    search: SearchQuery


def parse_sort(args: list[Any], *, utf8: bool = False) -> SortQuery:
    """``SORT (criteria) charset search-keys``; SearchSyntaxError / BadCharset when wrong."""
    if not isinstance(args, list) or not args or not isinstance(args[0], list):
        raise SearchSyntaxError("SORT needs a parenthesised list of sort criteria first")
    criteria: list[tuple[str, bool]] = []
    reverse = False
    for token in args[0]:
        name = token.upper() if isinstance(token, str) else None
        if name == "REVERSE":
            if reverse:
                raise SearchSyntaxError("REVERSE REVERSE in sort criteria")
            reverse = True
            continue
        if name not in CRITERIA:
            raise SearchSyntaxError(f"unknown sort criterion {str(token)[:40]!r}; "
                                    f"known: REVERSE {' '.join(CRITERIA)}")
        criteria.append((name, reverse))
        reverse = False
    if reverse:
        raise SearchSyntaxError("REVERSE must be followed by a sort criterion")
    if not criteria:
        raise SearchSyntaxError("SORT needs at least one sort criterion")
    if len(args) < 2:
        raise SearchSyntaxError("missing argument: SORT needs a charset after the criteria")
    return SortQuery(tuple(criteria), parse_search(["CHARSET", *args[1:]], utf8=utf8))


# -- base subject (RFC 5256 section 2.1) -----------------------------------------------------
_BLOB = r"\[[^\[\]]*\][ \t]*"
_TRAILER = re.compile(r"(?:[ \t]|\(fwd\))+$", re.IGNORECASE)
_LEADER = re.compile(rf"(?:[ \t]+|(?:{_BLOB})*(?:re|fwd?)[ \t]*(?:{_BLOB})?:[ \t]*)",
                     re.IGNORECASE)
_LEADING_BLOB = re.compile(_BLOB)
_FWD = re.compile(r"\[fwd:(.*)\]", re.IGNORECASE | re.DOTALL)
_WHITESPACE = re.compile(r"\s+")


def base_subject(subject: str) -> str:
    """The base subject: without Re:/Fwd: leaders, [blobs], (fwd) trailers, [Fwd: ...]."""
    text = _WHITESPACE.sub(" ", subject)
    while True:
        text = _TRAILER.sub("", text)
        while True:
            before = text
            while (leader := _LEADER.match(text)) is not None and leader.end():
                text = text[leader.end():]
            blob = _LEADING_BLOB.match(text)
            if blob is not None and text[blob.end():]:
                text = text[blob.end():]
            if text == before:
                break
        wrapped = _FWD.fullmatch(text)
        if wrapped is None:
            return text
        text = wrapped.group(1)


# -- reading the sort values -----------------------------------------------------------------
def _mailbox_part(address: str) -> str:
    return address.rpartition("@")[0] if "@" in address else address


def _person(row: dict[Any, Any], tags: tuple[int, int, int]) -> tuple[str, str]:
    name, smtp, email = row.get(tags[0]), row.get(tags[1]), row.get(tags[2])
    address = smtp if isinstance(smtp, str) and smtp else email if isinstance(email, str) else ""
    return (name if isinstance(name, str) else ""), address or ""


def _sender(row: dict[Any, Any]) -> tuple[str, str]:
    name, address = _person(row, _FROM)  # type: ignore[arg-type]
    if not name and not address:
        name, address = _person(row, _SENDER)  # type: ignore[arg-type]
    return name, address


def _recipients(txn: Txn, message_ids: list[int], rtype: int) -> dict[int, tuple[str, str]]:
    """The first recipient of type ``rtype`` of each message: (display name, address)."""
    return {message_id: _person(props, (T.PidTagDisplayName, T.PidTagSmtpAddress,
                                        T.PidTagEmailAddress))
            for message_id, props in parts.first_recipients(txn, message_ids, rtype).items()}


def _display(person: tuple[str, str] | None) -> str:
    if person is None:
        return ""
    name, address = person
    return fold(name or address)


_COLUMNS: dict[str, tuple[int, ...]] = {
    "ARRIVAL": (T.PidTagMessageDeliveryTime,),
    "DATE": (T.PidTagClientSubmitTime, T.PidTagMessageDeliveryTime),
    "SIZE": (PidTagGatewayRfc822Size,),
    "SUBJECT": (T.PidTagSubject,),
    "FROM": (*_FROM, *_SENDER),
    "DISPLAYFROM": (*_FROM, *_SENDER),
}
_IN_SQL = {"ARRIVAL": T.PidTagMessageDeliveryTime, "SIZE": PidTagGatewayRfc822Size}
"""Criteria that are plain column values, sorted by the table itself."""


def _value(name: str, row: dict[Any, Any], subjects: dict[str, str]) -> Any:
    if name == "ARRIVAL":
        return row.get(T.PidTagMessageDeliveryTime) or _EPOCH
    if name == "DATE":
        return (row.get(T.PidTagClientSubmitTime) or row.get(T.PidTagMessageDeliveryTime)
                or _EPOCH)
    if name == "SIZE":
        return row.get(PidTagGatewayRfc822Size) or 0
    if name == "SUBJECT":
        subject = row.get(T.PidTagSubject) or ""
        found = subjects.get(subject)
        if found is None:  # a thread's messages share a subject: its base is found once
            found = subjects[subject] = fold(base_subject(subject))
        return found
    name_part, address = _sender(row)
    return fold(_mailbox_part(address)) if name == "FROM" else fold(name_part or address)


def _sort_values(txn: Txn, folder_id: int, uids: list[int], criteria: tuple[str, ...]
                 ) -> list[tuple[int, dict[str, Any]]]:
    columns = list(dict.fromkeys(tag for name in criteria for tag in _COLUMNS.get(name, ())))
    wanted = set(uids)
    restriction = And(Property("ge", UID, uids[0]), Property("le", UID, uids[-1]))
    rows = [row for row in tables.query_contents(txn, folder_id, [UID, *columns],
                                                 restriction=restriction).rows
            if row[UID] in wanted]
    ids = [row["id"] for row in rows]
    recipients = {kind: _recipients(txn, ids, _RECIPIENT_TYPES[kind])
                  for kind in criteria if kind in _RECIPIENT_TYPES}
    out = []
    subjects: dict[str, str] = {}
    for row in rows:
        values = {name: _value(name, row, subjects) for name in criteria if name in _COLUMNS}
        for kind, people in recipients.items():
            person = people.get(row["id"])
            values[kind] = (_display(person) if kind == "DISPLAYTO"
                            else fold(_mailbox_part(person[1])) if person else "")
        out.append((row[UID], values))
    return out


def _by(name: str) -> Callable[[tuple[int, dict[str, Any]]], Any]:
    def key(item: tuple[int, dict[str, Any]]) -> Any:
        return item[1][name]
    return key


def _sorted(txn: Txn, view: SelectedView, uids: list[int],
            criteria: tuple[tuple[str, bool], ...]) -> list[int]:
    if not uids:
        return []
    if all(name in _IN_SQL for name, _ in criteria):
        keys = [(_IN_SQL[name], reverse) for name, reverse in criteria]
        restriction = And(Property("ge", UID, uids[0]), Property("le", UID, uids[-1]))
        wanted = set(uids)
        rows = tables.query_contents(txn, view.folder_id, [UID], [*keys, (UID, False)],
                                     restriction).rows
        return [row[UID] for row in rows if row[UID] in wanted]
    items = _sort_values(txn, view.folder_id, uids, tuple(name for name, _ in criteria))
    items.sort(key=lambda item: item[0])  # the final tie-breaker: sequence (= UID) order
    for name, reverse in reversed(criteria):
        items.sort(key=_by(name), reverse=reverse)  # stable, also when reversed
    return [uid for uid, _ in items]


async def run_sort(mbox: Any, view: SelectedView, query: SortQuery) -> list[int]:
    """The UIDs matching the search program, in the sort order."""
    result = await run_search(mbox, view, query.search)
    ordered: list[int] = await mbox.read(_sorted, view, result.uids, query.criteria)
    return ordered


def sort_response(uids: list[int], view: SelectedView, *, uid: bool) -> bytes:
    """``* SORT n ...`` (UIDs for UID SORT, else sequence numbers), CRLF-terminated."""
    numbers = uids if uid else [bisect_left(view.uids, u) + 1 for u in uids]
    return ("* SORT" + "".join(f" {n}" for n in numbers)).encode("ascii") + b"\r\n"
