"""STORE (with CONDSTORE's UNCHANGEDSINCE), COPY and MOVE, and their UID forms (UIDPLUS)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plugins.imap.args import MAX_NUMBER64, Args, describe, number_of
from plugins.imap.cmd_mailbox import find, tree_call
from plugins.imap.errors import Bad, No
from plugins.imap.seqset import format_set
from plugins.imap.sets import selected_uids

if TYPE_CHECKING:
    from plugins.imap.commands import Result
    from plugins.imap.session import Session

SYSTEM_FLAGS = {f.upper(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
                                       "\\Draft")}
MODES = {"FLAGS": "set", "+FLAGS": "add", "-FLAGS": "remove"}


def parse_flags(tokens: list, command: str) -> list[str]:
    """Flag names from a STORE/APPEND flag list: system flags (canonical case) and keywords."""
    flags: list[str] = []
    for token in tokens:
        if not isinstance(token, str):
            raise Bad(f"{command}: flags must be atoms, got {describe(token)}")
        if token.startswith("\\"):
            canonical = SYSTEM_FLAGS.get(token.upper())
            if canonical is None:
                raise Bad(f"{command}: {token[:40]!r} is not a flag that can be stored")
            token = canonical
        elif any(c in token for c in "()[]{%*\"\\") or len(token) > 100:
            raise Bad(f"{command}: invalid keyword {token[:40]!r}")
        if token not in flags:
            flags.append(token)
    return flags


def _writable(session: Session) -> None:
    if session.selected.readonly:
        raise No("the mailbox is read-only (EXAMINE)", "READ-ONLY")


async def _store(session: Session, args: Args, uid: bool) -> Result:
    text = args.atom("a sequence set")
    unchangedsince: int | None = None
    modifiers = args.optional_list()
    if modifiers is not None:
        if (len(modifiers) != 2 or not isinstance(modifiers[0], str)
                or modifiers[0].upper() != "UNCHANGEDSINCE"):
            raise Bad("STORE: the only modifier is (UNCHANGEDSINCE mod-sequence)")
        unchangedsince = number_of(modifiers[1], "UNCHANGEDSINCE mod-sequence", MAX_NUMBER64)
        session.condstore_seen = True
    item = args.atom("FLAGS, +FLAGS or -FLAGS").upper()
    silent = item.endswith(".SILENT")
    mode = MODES.get(item.removesuffix(".SILENT"))
    if mode is None:
        raise Bad(f"STORE: expected FLAGS, +FLAGS or -FLAGS, got {item[:40]!r}")
    tokens = args.rest()
    if len(tokens) == 1 and isinstance(tokens[0], list):
        tokens = tokens[0]
    elif not tokens:
        raise Bad("STORE: missing flags")
    flags = parse_flags(tokens, "STORE")
    _writable(session)
    uids = selected_uids(session, text, uid=uid)
    if not uids:
        return None
    lines, failed = await tree_call(session.selected.store(
        uids, mode, flags, unchangedsince=unchangedsince, silent=silent,
        condstore=session.condstore))
    for line in lines:
        session.send(line)
    if failed:
        uids_all = session.selected.uids
        if uid:
            shown = format_set(sorted(failed))
        else:
            from plugins.imap.sets import seq_of

            shown = format_set(sorted(seq_of(uids_all, u) for u in failed))
        return "completed, some messages were modified meanwhile", f"MODIFIED {shown}"
    return None


async def store(session: Session, tag: str, args: Args) -> Result:
    return await _store(session, args, uid=False)


async def uid_store(session: Session, tag: str, args: Args) -> Result:
    return await _store(session, args, uid=True)


async def _target(session: Session, args: Args) -> tuple[str, Any]:
    text = args.atom("a sequence set")
    name = args.mailbox(utf8=session.utf8)
    args.end()
    entry = await find(session, name, "TRYCREATE")
    if not entry.selectable:
        raise No(f"{name} cannot hold messages", "CANNOT")
    return text, entry


async def _copy(session: Session, args: Args, uid: bool, move: bool) -> Result:
    text, entry = await _target(session, args)
    if move:
        _writable(session)
    uids = selected_uids(session, text, uid=uid)
    if not uids:
        return None
    if move:
        validity, source, dest, lines = await tree_call(
            session.selected.move(uids, entry, qresync=session.qresync))
        if source:
            session.untagged(b"OK [COPYUID %d %s %s] moved" % (
                validity, format_set(source).encode(), format_set(dest).encode()))
        for line in lines:
            session.send(line)
        return None
    validity, source, dest = await tree_call(session.selected.copy(uids, entry))
    if not source:
        return None
    return "completed", f"COPYUID {validity} {format_set(source)} {format_set(dest)}"


async def copy(session: Session, tag: str, args: Args) -> Result:
    return await _copy(session, args, uid=False, move=False)


async def uid_copy(session: Session, tag: str, args: Args) -> Result:
    return await _copy(session, args, uid=True, move=False)


async def move(session: Session, tag: str, args: Args) -> Result:
    return await _copy(session, args, uid=False, move=True)


async def uid_move(session: Session, tag: str, args: Args) -> Result:
    return await _copy(session, args, uid=True, move=True)
