"""IMAP SEARCH: parse the search program, run it through the store's tables, answer it.

:func:`parse_search` turns the tokens after ``SEARCH`` / ``UID SEARCH`` into a
:class:`SearchQuery` (RFC 3501 / 9051 keys, RFC 4731 ``RETURN``, RFC 5182 ``$``,
RFC 7162 ``MODSEQ``, RFC 5032 ``OLDER`` / ``YOUNGER``): the key tree and its parser
are in :mod:`plugins.imap.search_keys`. :func:`run_search` evaluates it against the
selected mailbox in one read transaction, in SQL as far as the store's restriction
engine can say it and in Python for the rest (:mod:`plugins.imap.search_sql`, which
also says where each key's data comes from). :func:`search_response` writes the
untagged ``SEARCH`` / ``ESEARCH`` lines.

Every public name of the two helper modules that callers use is importable from here.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from gateway.store.restriction_domains import PidTagGatewayModseq
from gateway.store.txn import Txn
from plugins.imap.search_keys import (
    CHARSETS,
    MAX_DEPTH,
    MAX_KEYS,
    MAX_NUMBER64,
    RETURN_OPTIONS,
    AllKey,
    AndKey,
    BadCharset,
    DateKey,
    FlagKey,
    HeaderKey,
    Key,
    ModseqKey,
    NotKey,
    OrKey,
    RecentKey,
    SearchParser,
    SearchSyntaxError,
    SetKey,
    SizeKey,
    TextKey,
    WithinKey,
    parse_charset,
    parse_return,
)
from plugins.imap.search_sql import UID, Evaluator, SelectedView, header_values
from plugins.imap.seqset import format_set

__all__ = [
    "CHARSETS",
    "MAX_DEPTH",
    "MAX_KEYS",
    "MAX_NUMBER64",
    "RETURN_OPTIONS",
    "UID",
    "AllKey",
    "AndKey",
    "BadCharset",
    "DateKey",
    "FlagKey",
    "HeaderKey",
    "Key",
    "ModseqKey",
    "NotKey",
    "OrKey",
    "RecentKey",
    "SearchQuery",
    "SearchResult",
    "SearchSyntaxError",
    "SelectedView",
    "SetKey",
    "SizeKey",
    "TextKey",
    "WithinKey",
    "header_values",
    "parse_charset",
    "parse_return",
    "parse_search",
    "run_search",
    "search_response",
]


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
def parse_search(args: list[Any], *, utf8: bool = False) -> SearchQuery:
    """The SEARCH / UID SEARCH arguments (optional RETURN (...), CHARSET x, then the keys)."""
    if not isinstance(args, list):
        raise SearchSyntaxError("search arguments are a list of tokens")
    start, returns = 0, None
    if args and isinstance(args[0], str) and args[0].upper() == "RETURN":
        if len(args) < 2:
            raise SearchSyntaxError("missing argument: RETURN needs a list of options")
        returns, start = parse_return(args[1]), 2
    charset, start = parse_charset(args, start)
    parser = SearchParser(utf8)
    key = parser.program(args[start:], 0)
    return SearchQuery(returns, parser.uses_modseq, key, charset, parser.uses_saved)


# -- running ---------------------------------------------------------------------------------
def _search(txn: Txn, view: SelectedView, query: SearchQuery) -> SearchResult:
    evaluator = Evaluator(txn, view)
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
