"""Mailbox commands through ``MailboxTree``: NAMESPACE, CREATE, DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE and STATUS (with STATUS=SIZE and CONDSTORE's HIGHESTMODSEQ)."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from plugins.imap import responses as R
from plugins.imap.args import Args
from plugins.imap.errors import Bad, No
from plugins.imap.mailboxes import MailboxError

if TYPE_CHECKING:
    from plugins.imap.commands import Result
    from plugins.imap.session import Session

STATUS_ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT", "DELETED", "SIZE",
                "HIGHESTMODSEQ", "APPENDLIMIT")
_T = TypeVar("_T")


@contextmanager
def mailbox_errors() -> Iterator[None]:
    """``MailboxError`` from the tree as a tagged NO with its response code."""

    try:
        yield
    except MailboxError as exc:
        if getattr(exc, "bad", False):
            raise Bad(exc.text or str(exc), exc.code or None) from None
        raise No(exc.text or str(exc), exc.code or None) from None


async def tree_call(call: Awaitable[_T]) -> _T:
    with mailbox_errors():
        return await call


async def lookup(session: Session, name: str) -> Any:
    """The entry of ``name`` or None; the tree is read again before giving up, so a
    mailbox another session (or protocol) made since is found."""
    entry = session.tree.find(name)
    if entry is None:
        await tree_call(session.tree.refresh())
        entry = session.tree.find(name)
    return entry


async def find(session: Session, name: str, missing: str = "NONEXISTENT") -> Any:
    """The entry of ``name``; NO [NONEXISTENT] (or ``missing``) when there is none."""
    entry = await lookup(session, name)
    if entry is None:
        raise No(f"no mailbox {name}", missing)
    return entry


def _namespace(entries: list) -> bytes:
    if not entries:
        return b"NIL"
    return R.paren_list(
        R.paren_list([R.quoted(prefix), R.quoted(sep) if sep else b"NIL"])
        for prefix, sep in entries)


async def namespace(session: Session, tag: str, args: Args) -> Result:
    args.end()
    personal, others, shared = session.tree.namespaces()
    session.untagged(b"NAMESPACE " + b" ".join(_namespace(x) for x in (personal, others, shared)))
    return None


async def create(session: Session, tag: str, args: Args) -> Result:
    name = args.mailbox(utf8=session.utf8)
    special_use = None
    params = args.optional_list()
    args.end()
    if params is not None:  # RFC 6154: (USE (\Sent))
        if len(params) != 2 or not isinstance(params[0], str) or params[0].upper() != "USE" \
                or not isinstance(params[1], list):
            raise Bad("CREATE: expected (USE (\\attribute))")
        uses = params[1]
        if len(uses) != 1 or not isinstance(uses[0], str) or not uses[0].startswith("\\"):
            raise No("only one special-use attribute per mailbox", "USEATTR")
        special_use = uses[0]
    if name.endswith("/"):
        name = name.rstrip("/")
    if name.upper() == "INBOX":
        raise No("INBOX exists already", "ALREADYEXISTS")
    await tree_call(session.tree.refresh())  # parents made by other sessions meanwhile
    await tree_call(session.tree.create(name, special_use))
    return None


async def delete(session: Session, tag: str, args: Args) -> Result:
    name = args.mailbox(utf8=session.utf8)
    args.end()
    if name.upper() == "INBOX":
        raise No("INBOX cannot be deleted", "CANNOT")
    selected = session.selected
    if selected is not None and selected.entry.name == name:
        session.deselect()
        session.untagged(b"OK [CLOSED] the selected mailbox was deleted")
    await lookup(session, name)
    await tree_call(session.tree.delete(name))
    return None


async def rename(session: Session, tag: str, args: Args) -> Result:
    old = args.mailbox(utf8=session.utf8)
    new = args.mailbox(utf8=session.utf8)
    args.end()
    await tree_call(session.tree.refresh())
    await tree_call(session.tree.rename(old, new))
    return None


async def subscribe(session: Session, tag: str, args: Args) -> Result:
    name = args.mailbox(utf8=session.utf8)
    args.end()
    await tree_call(session.tree.subscribe(name, True))
    return None


async def unsubscribe(session: Session, tag: str, args: Args) -> Result:
    name = args.mailbox(utf8=session.utf8)
    args.end()
    await tree_call(session.tree.subscribe(name, False))
    return None


def status_items(tokens: list) -> list[str]:
    if not tokens:
        raise Bad("STATUS: empty item list")
    items = []
    for token in tokens:
        if not isinstance(token, str) or token.upper() not in STATUS_ITEMS:
            raise Bad(f"STATUS: unknown item {token!r}")
        if token.upper() not in items:
            items.append(token.upper())
    return items


def status_line(session: Session, name: str, pairs: list[tuple[str, int]]) -> bytes:
    body = b" ".join(b"%s %d" % (key.encode(), value) for key, value in pairs)
    return R.untagged(b"STATUS " + R.mailbox_name(name, utf8=session.utf8) + b" (" + body + b")")


async def status(session: Session, tag: str, args: Args) -> Result:
    name = args.mailbox(utf8=session.utf8)
    items = status_items(args.group("status items"))
    args.end()
    entry = await find(session, name)
    if not entry.selectable:
        raise No(f"{name} cannot hold messages", "CANNOT")
    if "HIGHESTMODSEQ" in items:
        session.condstore_seen = True
    pairs = await tree_call(session.tree.status(entry, items))
    session.send(status_line(session, entry.name, pairs))
    return None
