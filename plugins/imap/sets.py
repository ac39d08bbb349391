"""Sequence sets and UID sets of a command, resolved against the selected mailbox."""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING

from plugins.imap.errors import Bad
from plugins.imap.seqset import SequenceSet

if TYPE_CHECKING:
    from plugins.imap.session import Session


def selected_uids(session: Session, text: str, *, uid: bool) -> list[int]:
    """The UIDs (ascending) named by a sequence set (``uid`` False) or a UID set.

    ``$`` is the saved search result (SEARCHRES). A sequence number beyond the
    mailbox is BAD (RFC 9051 section 9, seq-number); UIDs that do not exist are
    left out silently.
    """

    uids = session.selected.uids
    try:
        seqset = SequenceSet.parse(text)
    except ValueError as exc:
        raise Bad(f"invalid sequence set: {exc}") from None
    if seqset.is_saved:
        saved = set(session.saved_uids)
        return [u for u in uids if u in saved]
    if uid:
        largest = uids[-1] if uids else 0
        return list(seqset.iter_values(largest, existing=uids))
    count = len(uids)
    out: list[int] = []
    for low, high in seqset.resolve(count):
        if high > count:
            raise Bad(f"invalid message sequence number {high} (the mailbox has {count})")
        out.extend(uids[low - 1:high])
    return out


def seq_of(uids: list[int], uid: int) -> int:
    """The sequence number of ``uid`` in the sorted ``uids`` (which must contain it)."""
    return bisect_left(uids, uid) + 1
