"""Internet bytes for every message IMAP shows, and the cache of what IMAP derives from them.

Messages that arrived as mail keep their bytes (``messages.mime_blob``).
Messages made through MAPI (Outlook, EWS, DAV ...) have none: :func:`ensure_mime`
renders them once with :mod:`gateway.convert` and keeps the result as the
message's MIME blob, marked ``mime_rendered``: without a new change number, and
not counted in the message's size or the quota (the rendering is a view of the
message; :func:`gateway.store.messages.computed_size` leaves it out). IMAP
content is immutable, RFC822.SIZE must not change, so a later MAPI edit of
such a message does not re-render it — a known limit, as for mail whose
properties are edited after it arrived.

The structure cache (``mime_structures``, schema version 3) holds what the
IMAP plugin derived from a blob: its served size, whether it is served with
CRLF line ends made from bare LFs, ENVELOPE, BODY, BODYSTRUCTURE and the part
tree. The store treats these as opaque bytes keyed by the blob's hash, so a
flag change never invalidates them and a row goes when its blob goes (a
trigger). :func:`fetch_rows` answers a FETCH batch in one query.

When the IMAP plugin is loaded it registers its parser
(:func:`register_structure_builder`), and a message created with Internet
bytes gets its structure in the same transaction (:func:`derive_on_create`,
called by :func:`gateway.store.messages.create`), so the first FETCH after a
delivery or APPEND finds it cached. Without a builder (a CLI import, say) the
structure is derived on the first FETCH instead.

:func:`iter_range` reads a byte range of a blob as served. Blob files are a
single zstd frame, which cannot be entered in the middle, so a range is
decompressed from the start and the bytes before it skipped (reaching the last
part of a 30 MB message took 0.16 s here); only one chunk is held at a time.
A seekable layout (independent zstd frames with an index) would make that
constant, at the cost of changing how blobs are written.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from gateway.store import tags as T
from gateway.store.errors import NotFound
from gateway.store.txn import Txn

if TYPE_CHECKING:
    from gateway.store.mailbox import Mailbox

log = logging.getLogger("gateway.store.mime_cache")

RENDER_CONCURRENCY = 4
"""MAPI messages loaded and rendered at the same time by one :func:`ensure_mime` call."""

StructureRow = tuple[str, int, int, bool, bytes, bytes, bytes, bytes]
"""``(hash, version, size, crlf, envelope, body, bodystructure, tree)``."""


def _json(items: Sequence[int]) -> str:
    return json.dumps(list(items))


# -- Internet bytes for MAPI-made messages ----------------------------------------------------


def mime_refs(txn: Txn, message_ids: Sequence[int]) -> dict[int, tuple[str | None, int | None]]:
    """``{message id: (blob hash, size)}`` of the existing messages among ``message_ids``."""
    rows = txn.conn.execute(
        "SELECT message_id, mime_blob, mime_size FROM messages "
        "WHERE message_id IN (SELECT value FROM json_each(?))", (_json(message_ids),))
    return {mid: (digest, size) for mid, digest, size in rows}


def _keep_rendered(txn: Txn, rendered: dict[int, bytes]) -> dict[int, tuple[str, int]]:
    """Store renderings as the messages' MIME blobs (unless another writer was first)."""
    out: dict[int, tuple[str, int]] = {}
    for mid, raw in rendered.items():
        row = txn.conn.execute("SELECT mime_blob, mime_size FROM messages WHERE message_id = ?",
                               (mid,)).fetchone()
        if row is None:
            continue
        if row[0] is not None:
            out[mid] = (row[0], int(row[1]))
            continue
        digest = txn.blobs.put(txn.conn, raw)
        txn.conn.execute("UPDATE messages SET mime_blob = ?, mime_size = ?, mime_rendered = 1 "
                         "WHERE message_id = ?", (digest, len(raw), mid))
        out[mid] = (digest, len(raw))
    return out


async def _render(mbox: Mailbox, message_id: int) -> bytes | None:
    from gateway.convert.load import load_message
    from gateway.convert.mime_out import render

    try:
        message = await load_message(mbox, message_id)
    except NotFound:
        return None
    return await asyncio.to_thread(render, message)


async def ensure_mime(mbox: Mailbox, message_ids: Sequence[int]) -> dict[int, tuple[str, int]]:
    """``{message id: (blob hash, size)}`` of the messages' Internet bytes, rendering
    (once, then kept) those made through MAPI. Messages that do not exist are left out."""
    refs = await mbox.read(mime_refs, list(message_ids))
    out = {mid: (digest, int(size or 0)) for mid, (digest, size) in refs.items()
           if digest is not None}
    missing = [mid for mid, (digest, _) in refs.items() if digest is None]
    rendered: dict[int, bytes] = {}
    for start in range(0, len(missing), RENDER_CONCURRENCY):
        group = missing[start:start + RENDER_CONCURRENCY]
        for mid, raw in zip(group, await asyncio.gather(*(_render(mbox, m) for m in group)),
                            strict=True):
            if raw is not None:
                rendered[mid] = raw
    if rendered:
        out.update(await mbox.write(_keep_rendered, rendered))
        log.debug("store %s: rendered %d MAPI messages as MIME", mbox.key, len(rendered))
    return out


# -- the structure cache --------------------------------------------------------------------


def fetch_rows(txn: Txn, message_ids: Sequence[int], version: int) -> list[tuple[Any, ...]]:
    """One row per existing message: ``(message id, blob hash, served size, crlf,
    envelope, body, bodystructure, delivery or creation time as FILETIME)``; the
    structure columns are NULL when no row of ``version`` is cached for the blob."""
    return txn.conn.execute(
        "SELECT m.message_id, m.mime_blob, s.size, s.crlf, s.envelope, s.body, "
        "s.bodystructure, coalesce(dt.value, ct.value) FROM messages m "
        "LEFT JOIN mime_structures s ON s.hash = m.mime_blob AND s.version = ? "
        "LEFT JOIN message_props dt ON dt.message_id = m.message_id AND dt.tag = ? "
        "LEFT JOIN message_props ct ON ct.message_id = m.message_id AND ct.tag = ? "
        "WHERE m.message_id IN (SELECT value FROM json_each(?))",
        (version, T.PidTagMessageDeliveryTime, T.PidTagCreationTime,
         _json(message_ids))).fetchall()


def save_structures(txn: Txn, rows: Sequence[StructureRow]) -> None:
    """Cache derived structures (one writer call for a whole batch). Rows for blobs
    that went away meanwhile are dropped."""
    for row in rows:
        if txn.conn.execute("SELECT 1 FROM blobs WHERE hash = ?", (row[0],)).fetchone():
            txn.conn.execute(
                "INSERT OR REPLACE INTO mime_structures (hash, version, size, crlf, envelope, "
                "body, bodystructure, tree) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (row[0], row[1], row[2], int(row[3]), row[4], row[5], row[6], row[7]))


def structure_tree(txn: Txn, digest: str, version: int) -> bytes | None:
    row = txn.conn.execute("SELECT tree FROM mime_structures WHERE hash = ? AND version = ?",
                           (digest, version)).fetchone()
    return None if row is None else bytes(row[0])


def structure_trees(txn: Txn, digests: Sequence[str], version: int) -> dict[str, bytes]:
    rows = txn.conn.execute(
        "SELECT hash, tree FROM mime_structures WHERE version = ? AND hash IN "
        "(SELECT value FROM json_each(?))", (version, json.dumps(list(digests))))
    return {digest: bytes(tree) for digest, tree in rows}


def blob_bytes(txn: Txn, digest: str) -> bytes:
    return txn.blobs.get(txn.conn, digest)


StructureBuilder = Callable[[bytes, str], StructureRow]
_builder: tuple[int, StructureBuilder] | None = None


def register_structure_builder(version: int, builder: StructureBuilder) -> None:
    """Derive structures of ``version`` with ``builder(raw, hash)`` when messages are
    created (the IMAP plugin's parser; the last registration wins)."""
    global _builder
    _builder = (version, builder)


def derive_on_create(txn: Txn, digest: str, raw: bytes) -> None:
    """Cache the structure of a new message's MIME blob, unless cached already. Never
    fails the write it is part of: a builder error only leaves the cache empty."""
    if _builder is None:
        return
    version, builder = _builder
    if txn.conn.execute("SELECT 1 FROM mime_structures WHERE hash = ? AND version = ?",
                        (digest, version)).fetchone():
        return
    try:
        row = builder(raw, digest)
    except Exception:
        log.exception("MIME structure of blob %s not derived", digest)
        return
    save_structures(txn, [row])


# -- reading a range as served ----------------------------------------------------------------


def crlf_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Chunks with every LF not after a CR made CRLF (a CR at a chunk's end waits)."""
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        carry = b""
        if data.endswith(b"\r"):
            data, carry = data[:-1], b"\r"
        if data:
            yield data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if carry:
        yield carry


def iter_range(txn: Txn, digest: str, start: int, end: int, crlf: bool) -> Iterator[bytes]:
    """Bytes ``[start, end)`` of a blob as served (CRLF made from bare LFs when
    ``crlf``), in chunks; nothing before ``start`` is kept."""
    if end <= start:
        return
    source = txn.blobs.iter_chunks(txn.conn, digest)
    chunks = crlf_chunks(source) if crlf else source
    position = 0
    try:
        for chunk in chunks:
            following = position + len(chunk)
            if following > start:
                piece = chunk[max(start - position, 0):end - position]
                if piece:
                    yield piece
            position = following
            if position >= end:
                break
    finally:
        close = getattr(source, "close", None)  # the blob file, when the reader stops early
        if close is not None:
            close()
