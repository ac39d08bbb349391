"""APPEND: an Internet message from a client becomes a message of the store.

The bytes are parsed into MAPI (:func:`gateway.convert.mime_in.parse`; on a
worker thread unless small: a large message takes longer than the event loop
may wait)
and stored with the original bytes kept, so FETCH BODY[] returns them
exactly. Flags become their MAPI properties from the start and the internal
date is ``PidTagMessageDeliveryTime``. The store's write is durable when it
returns (``synchronous=FULL``), so the caller's ``OK`` never precedes the disk.

Like Dovecot, any non-empty bytes are accepted (a message without a header
block, or without the empty line ending it, is stored as it came); NUL bytes
only arrive through a ``literal8``, which the parser alone admits (RFC 3516).
An empty message is refused. ``\\Recent`` in the flag list is ignored (no
client can set it).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from gateway.convert import mime_in
from gateway.store import StoreError, imap
from gateway.store import tags as T
from gateway.store.rights import Rights
from gateway.store.txn import Txn
from plugins.imap.mailboxes import (
    MailboxEntry,
    MailboxError,
    MailboxTree,
    not_selectable,
    store_error,
)

_SYSTEM = {flag.lower(): flag for flag in imap.SYSTEM_FLAGS}
PARSE_INLINE = 16 * 1024
"""Messages up to this size are parsed on the event loop (well under a millisecond);
larger ones on a worker thread."""


def append_flags(flags: list[str]) -> list[str]:
    """The flags to store: system flags in their canonical case, ``\\Recent`` dropped;
    MailboxError (``bad``) for a flag that cannot be stored."""
    out = []
    for flag in flags:
        if flag.lower() == "\\recent":
            continue
        out.append(_SYSTEM.get(flag.lower(), flag) if flag.startswith("\\") else flag)
    try:
        imap.check_flags(out)
    except ValueError as exc:
        raise MailboxError("", str(exc), bad=True) from None
    return out


async def append(tree: MailboxTree, entry: MailboxEntry, raw: bytes, *, flags: list[str],
                 internal_date: datetime | None) -> tuple[int, int]:
    """APPEND one message: ``(uidvalidity, uid)`` for APPENDUID, once it is on disk."""
    if not entry.selectable:
        raise not_selectable(entry, "TRYCREATE")
    wanted = append_flags(flags)
    if not raw:
        raise MailboxError("", "an empty message cannot be appended")
    rights = await tree.rights(entry)
    if not rights & Rights.CREATE:
        raise MailboxError("NOPERM", f"you may not add messages to {entry.name}")
    mbox = await tree.open_store(entry)
    if len(raw) > mbox.limits.max_message_bytes:
        raise MailboxError("TOOBIG", f"the message is larger than the limit of "
                                     f"{mbox.limits.max_message_bytes} bytes")
    if len(raw) <= PARSE_INLINE:
        message = mime_in.parse(bytes(raw))
    else:
        message = await asyncio.get_running_loop().run_in_executor(
            None, mime_in.parse, bytes(raw))
    when = internal_date or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    message.props[T.PidTagMessageDeliveryTime] = when
    fid = entry.folder_id

    def run(txn: Txn) -> tuple[int, int]:
        uid, _ = imap.append(txn, fid, message, wanted)
        return imap.uidvalidity(txn, fid), uid

    try:
        result: tuple[int, int] = await mbox.write(run)
    except StoreError as exc:
        raise store_error(exc) from exc
    return result
