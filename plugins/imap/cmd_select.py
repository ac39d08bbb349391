"""SELECT and EXAMINE (with CONDSTORE and QRESYNC parameters), CLOSE, UNSELECT, CHECK,
EXPUNGE and UID EXPUNGE."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.imap.args import MAX_NUMBER64, Args, describe, number_of
from plugins.imap.cmd_mailbox import find, tree_call
from plugins.imap.errors import Bad, No
from plugins.imap.selected import SelectedMailbox
from plugins.imap.seqset import SequenceSet
from plugins.imap.sets import selected_uids

if TYPE_CHECKING:
    from plugins.imap.commands import Result
    from plugins.imap.session import Session


def _qresync(session: Session, params: list) -> tuple:
    """``(uidvalidity, modseq, known_uids | None, (known_seqs, known_uids) | None)``."""
    if not session.qresync:
        raise Bad("SELECT: QRESYNC must be enabled first (ENABLE QRESYNC)")
    if len(params) < 2 or len(params) > 4:
        raise Bad("SELECT: QRESYNC needs (uidvalidity modseq [known-uids [(seqs uids)]])")
    uidvalidity = number_of(params[0], "uidvalidity", least=1)
    modseq = number_of(params[1], "mod-sequence", MAX_NUMBER64)
    known: str | None = None
    pairs: tuple[str, str] | None = None
    rest = params[2:]
    if rest and isinstance(rest[0], str):
        known = rest.pop(0)
        _check_set(known)
    if rest:
        match = rest.pop(0)
        if (not isinstance(match, list) or len(match) != 2
                or not all(isinstance(x, str) for x in match)):
            raise Bad("SELECT: QRESYNC sequence match data must be (seq-set uid-set)")
        _check_set(match[0])
        _check_set(match[1])
        pairs = (match[0], match[1])
    if rest:
        raise Bad(f"SELECT: unexpected {describe(rest[0])} in QRESYNC parameters")
    return uidvalidity, modseq, known, pairs


def _check_set(text: str) -> None:
    try:
        if SequenceSet.parse(text).is_saved:
            raise ValueError("'$' is not allowed here")
    except ValueError as exc:
        raise Bad(f"SELECT: invalid set {text!r}: {exc}") from None


async def _open(session: Session, args: Args, readonly: bool) -> Result:
    from plugins.imap.session import SELECTED

    name = args.mailbox(utf8=session.utf8)
    condstore = False
    qresync = None
    params = args.optional_list() or []
    args.end()
    for i, param in enumerate(params):
        if isinstance(param, list):
            continue
        word = param.upper() if isinstance(param, str) else ""
        if word == "CONDSTORE":
            condstore = True
        elif word == "QRESYNC":
            following = params[i + 1] if i + 1 < len(params) else None
            if not isinstance(following, list):
                raise Bad("SELECT: QRESYNC needs a parameter list")
            qresync = _qresync(session, following)
        else:
            raise Bad(f"SELECT: unknown parameter {describe(param)}")
    if session.selected is not None:
        session.deselect()
        if session.qresync or session.rev2:
            session.untagged(b"OK [CLOSED] previous mailbox closed")
    if condstore or qresync:
        session.condstore_seen = True
    entry = await find(session, name)
    if not entry.selectable:
        raise No(f"{name} cannot be selected", "CANNOT")
    selected, lines = await tree_call(SelectedMailbox.open(
        session.tree, entry, readonly=readonly, condstore=session.condstore, qresync=qresync,
        rev2=session.rev2))
    for line in lines:
        session.send(line)
    session.selected = selected
    session.saved_uids = []
    session.state = SELECTED
    return "completed", "READ-ONLY" if selected.readonly else "READ-WRITE"


async def select(session: Session, tag: str, args: Args) -> Result:
    return await _open(session, args, readonly=False)


async def examine(session: Session, tag: str, args: Args) -> Result:
    return await _open(session, args, readonly=True)


async def close(session: Session, tag: str, args: Args) -> Result:
    args.end()
    selected = session.selected
    if not selected.readonly:
        await tree_call(selected.expunge(None, qresync=session.qresync))  # answers not sent
    session.deselect()
    return None


async def unselect(session: Session, tag: str, args: Args) -> Result:
    args.end()
    session.deselect()
    return None


async def check(session: Session, tag: str, args: Args) -> Result:
    args.end()
    return None


def _writable(session: Session) -> None:
    if session.selected.readonly:
        raise No("the mailbox is read-only (EXAMINE)", "READ-ONLY")


async def expunge(session: Session, tag: str, args: Args) -> Result:
    args.end()
    _writable(session)
    for line in await tree_call(session.selected.expunge(None, qresync=session.qresync)):
        session.send(line)
    return None


async def uid_expunge(session: Session, tag: str, args: Args) -> Result:
    text = args.atom("a UID set")
    args.end()
    _writable(session)
    uids = selected_uids(session, text, uid=True)
    if uids:
        for line in await tree_call(session.selected.expunge(uids, qresync=session.qresync)):
            session.send(line)
    return None
