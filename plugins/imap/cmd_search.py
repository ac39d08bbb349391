"""SEARCH and SORT (and their UID forms) through ``plugins.imap.search`` / ``sort``.

The search module parses and runs the query over the store's restriction
engine; here the session's view (UIDs, saved result) goes in and the answer
lines come out. RETURN (SAVE) replaces the session's ``$``. Under IMAP4rev2 a
SEARCH without RETURN answers ESEARCH (RFC 9051 section 6.4.4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plugins.imap import search as searching
from plugins.imap import sort as sorting
from plugins.imap.args import Args
from plugins.imap.errors import Bad, No
from plugins.imap.search import SelectedView

if TYPE_CHECKING:
    from plugins.imap.commands import Result
    from plugins.imap.session import Session


def _view(session: Session) -> Any:
    sel = session.selected
    return SelectedView(sel.entry.folder_id, sel.uids, list(session.saved_uids),
                        recent=frozenset(sel.recent_uids()), flags=sel.known_flags())


async def _search(session: Session, tag: str, args: Args, uid: bool) -> Result:
    tokens = args.rest()
    try:
        query = searching.parse_search(tokens, utf8=session.utf8)
    except searching.BadCharset as exc:
        raise No(str(exc), "BADCHARSET (UTF-8 US-ASCII)") from None
    except searching.SearchSyntaxError as exc:
        raise Bad(f"SEARCH: {exc}") from None
    if query.uses_modseq:
        session.condstore_seen = True
    view = _view(session)
    result = await searching.run_search(session.selected.mbox, view, query)
    for line in searching.search_response(tag, result, query, view, uid=uid, esearch=session.rev2):
        session.send(line)
    if result.saved is not None:
        session.saved_uids = list(result.saved)
    return None


async def search(session: Session, tag: str, args: Args) -> Result:
    return await _search(session, tag, args, uid=False)


async def uid_search(session: Session, tag: str, args: Args) -> Result:
    return await _search(session, tag, args, uid=True)


async def _sort(session: Session, tag: str, args: Args, uid: bool) -> Result:
    tokens = args.rest()
    try:
        query = sorting.parse_sort(tokens, utf8=session.utf8)
    except searching.BadCharset as exc:
        raise No(str(exc), "BADCHARSET (UTF-8 US-ASCII)") from None
    except searching.SearchSyntaxError as exc:
        raise Bad(f"SORT: {exc}") from None
    view = _view(session)
    ordered = await sorting.run_sort(session.selected.mbox, view, query)
    session.send(sorting.sort_response(ordered, view, uid=uid))
    return None


async def sort(session: Session, tag: str, args: Args) -> Result:
    return await _sort(session, tag, args, uid=False)


async def uid_sort(session: Session, tag: str, args: Args) -> Result:
    return await _sort(session, tag, args, uid=True)
