"""A folder out as an mbox file: the way back for what :mod:`gateway.store.importer` reads.

Export writes a folder as an mboxrd file: a ``From_`` line per message (the
sender and the delivery time), body lines matching ``>*From `` quoted with one
more ``>``, and a blank line after each message. Importing undoes the quoting,
so import then export gives the same file back. Messages that did not arrive
as Internet mail (made by MAPI clients) have no original bytes and are
skipped, counted, until ``gateway/convert`` can render them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from gateway.store import folders
from gateway.store import tags as T
from gateway.store.importer import QUOTED_FROM
from gateway.store.mailbox import Mailbox
from gateway.store.txn import Txn


@dataclass
class ExportResult:
    exported: int = 0
    without_original: int = 0
    """Messages skipped because they have no original Internet bytes (yet)."""
    bytes_written: int = 0


@dataclass(frozen=True)
class _Listed:
    message_id: int
    has_original: bool
    delivered: datetime | None
    sender: str


def _list_folder(txn: Txn, folder_id: int) -> list[_Listed]:
    folders.require(txn, folder_id)
    rows = txn.conn.execute("SELECT message_id, mime_blob IS NOT NULL FROM messages "
                            "WHERE folder_id = ? AND associated = 0 ORDER BY uid",
                            (folder_id,)).fetchall()
    out = []
    for mid, has_original in rows:
        props = txn.read_props("message_props", mid, [
            T.PidTagMessageDeliveryTime, T.PidTagSenderSmtpAddress, T.PidTagSenderEmailAddress])
        sender = (props.get(T.PidTagSenderSmtpAddress)
                  or props.get(T.PidTagSenderEmailAddress) or "")
        out.append(_Listed(mid, bool(has_original), props.get(T.PidTagMessageDeliveryTime),
                           sender))
    return out


def from_line(sender: str, delivered: datetime | None) -> bytes:
    """``From sender asctime`` (UTC); a missing or odd sender is MAILER-DAEMON."""
    if not sender or any(c.isspace() for c in sender) or not sender.isascii():
        sender = "MAILER-DAEMON"
    when = (delivered or datetime.now(UTC)).astimezone(UTC)
    return f"From {sender} {time.asctime(when.timetuple())}\n".encode("ascii")


def quote_line(line: bytes) -> bytes:
    """mboxrd: one more ``>`` before a line that is ``>*From ``."""
    return b">" + line if QUOTED_FROM.match(line) else line


FLUSH_BYTES = 1 << 20


async def export_mbox(mbox: Mailbox, folder_id: int, out: BinaryIO,
                      progress: Callable[[ExportResult], None] | None = None) -> ExportResult:
    """Write the messages of ``folder_id`` (by UID) to ``out`` as an mboxrd file.

    Each message is streamed from its blob a chunk at a time; ``out`` is
    written on a worker thread.
    """
    result = ExportResult()
    for item in await mbox.read(_list_folder, folder_id):
        if not item.has_original:
            result.without_original += 1
            continue
        parts, held, pending = [from_line(item.sender, item.delivered)], 0, b""
        async for chunk in mbox.original_message(item.message_id):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                parts.append(quote_line(line) + b"\n")
                held += len(line) + 1
            if held > FLUSH_BYTES:
                await _write(out, parts, result)
                parts, held = [], 0
        if pending:
            parts.append(quote_line(pending) + b"\n")
        parts.append(b"\n")
        await _write(out, parts, result)
        result.exported += 1
        if progress is not None:
            progress(result)
    return result


async def _write(out: BinaryIO, parts: list[bytes], result: ExportResult) -> None:
    data = b"".join(parts)
    await asyncio.to_thread(out.write, data)
    result.bytes_written += len(data)
