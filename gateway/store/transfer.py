"""Copying and moving messages and folders between two stores.

Within one store, :mod:`gateway.store.messages` and :mod:`gateway.store.folders`
do it. Across stores (a shared mailbox, a public folder) the source is read
into a :class:`Parcel` on its reader thread and written on the target's
writer thread; named properties are re-mapped to the target's ids, and large
values travel as their compressed blob files (copied on disk, never held
whole in memory). A move deletes the source only after the copy committed:
a crash in between leaves a copy, never a loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.store import folders, messages
from gateway.store import proptypes as pt
from gateway.store import tags as T
from gateway.store.errors import InvalidArgument
from gateway.store.mailbox import Mailbox
from gateway.store.txn import OWNERS, Txn


@dataclass(frozen=True)
class BlobRef:
    """A large value of the source store: its hash, and its bytes if kept in the database."""

    digest: str
    size: int
    packed: bytes | None
    """The compressed bytes of a small blob; None when it is a file."""
    path: Path


@dataclass
class Row:
    tag: int
    named: Any
    """The NamedProp behind a tag from 0x8000, re-mapped on the target."""
    value: Any
    blob: BlobRef | None
    size: int


@dataclass
class Parcel:
    """One message of the source store with everything it carries."""

    props: list[Row]
    recipients: list[list[Row]] = field(default_factory=list)
    attachments: list[tuple[list[Row], Parcel | None]] = field(default_factory=list)
    associated: bool = False
    read: bool = False
    mime: BlobRef | None = None
    mime_size: int | None = None


def _blob_ref(txn: Txn, digest: str) -> BlobRef:
    size, packed = txn.conn.execute("SELECT size, data FROM blobs WHERE hash = ?",
                                    (digest,)).fetchone()
    return BlobRef(digest, int(size), packed, txn.blobs.path(digest))


def _rows(txn: Txn, table: str, owner: int) -> list[Row]:
    rows = []
    for tag, value, blob, size in txn.conn.execute(
            f"SELECT tag, value, blob, size FROM {table} WHERE {OWNERS[table]} = ?", (owner,)):
        named = txn.named_of(pt.prop_id(tag)) if pt.is_named(tag) else None
        rows.append(Row(tag, named, value, _blob_ref(txn, blob) if blob else None, size))
    return rows


def pack(txn: Txn, message_id: int) -> Parcel:
    """Read a message (recursively through embedded ones) for writing elsewhere."""
    _, associated, _, is_read, _ = messages.require(txn, message_id)
    mime_blob, mime_size = messages.mime_ref(txn, message_id)
    parcel = Parcel(_rows(txn, "message_props", message_id), associated=bool(associated),
                    read=bool(is_read), mime=_blob_ref(txn, mime_blob) if mime_blob else None,
                    mime_size=mime_size)
    for (recipient_id,) in txn.conn.execute(
            "SELECT recipient_id FROM recipients WHERE message_id = ? ORDER BY row_id",
            (message_id,)).fetchall():
        parcel.recipients.append(_rows(txn, "recipient_props", recipient_id))
    for (attach_id,) in txn.conn.execute(
            "SELECT attach_id FROM attachments WHERE message_id = ? ORDER BY num",
            (message_id,)).fetchall():
        inner = txn.conn.execute("SELECT message_id FROM messages WHERE parent_attach_id = ?",
                                 (attach_id,)).fetchone()
        parcel.attachments.append((_rows(txn, "attachment_props", attach_id),
                                   pack(txn, inner[0]) if inner else None))
    return parcel


def _adopt_blob(txn: Txn, ref: BlobRef) -> str:
    """Make the target store hold the source's blob; returns its hash."""
    if txn.conn.execute("UPDATE blobs SET refcount = refcount + 1 WHERE hash = ?",
                        (ref.digest,)).rowcount:
        return ref.digest
    if ref.packed is None:
        txn.blobs.adopt_file(txn.conn, ref.digest, ref.size, ref.path)
    else:
        txn.conn.execute("INSERT INTO blobs (hash, size, refcount, data) VALUES (?, ?, 1, ?)",
                         (ref.digest, ref.size, ref.packed))
    return ref.digest


def _write_rows(txn: Txn, table: str, owner: int, rows: list[Row]) -> None:
    for row in rows:
        tag = row.tag
        if row.named is not None:
            named = type(row.named)(row.named.propset, row.named.key, pt.prop_type(tag))
            resolved = txn.resolve(named, create=True)
            assert resolved is not None
            tag = resolved
        elif pt.is_named(tag):
            continue  # a named id with no name behind it: nothing to carry over
        blob = _adopt_blob(txn, row.blob) if row.blob is not None else None
        txn.conn.execute(f"INSERT INTO {table} ({OWNERS[table]}, tag, value, blob, size) "
                         "VALUES (?, ?, ?, ?, ?)", (owner, tag, row.value, blob, row.size))


def unpack(txn: Txn, folder_id: int | None, parcel: Parcel,
           parent_attach_id: int | None = None) -> int:
    """Write a parcel as a new message of this store; returns its id."""
    from gateway.store.objects import NewMessage

    shell = NewMessage(associated=parcel.associated)
    message_id = messages.create(txn, folder_id, shell, parent_attach_id,
                                 kind="object_copied")
    txn.delete_all_props("message_props", message_id)
    _write_rows(txn, "message_props", message_id, parcel.props)
    if parcel.mime is not None:
        txn.conn.execute("UPDATE messages SET mime_blob = ?, mime_size = ? WHERE message_id = ?",
                         (_adopt_blob(txn, parcel.mime), parcel.mime_size, message_id))
    for row_id, rows in enumerate(parcel.recipients):
        recipient_id = txn.conn.execute(
            "INSERT INTO recipients (message_id, row_id) VALUES (?, ?) RETURNING recipient_id",
            (message_id, row_id)).fetchone()[0]
        _write_rows(txn, "recipient_props", recipient_id, rows)
    for num, (rows, inner) in enumerate(parcel.attachments):
        attach_id = txn.conn.execute(
            "INSERT INTO attachments (message_id, num) VALUES (?, ?) RETURNING attach_id",
            (message_id, num)).fetchone()[0]
        _write_rows(txn, "attachment_props", attach_id, rows)
        if inner is not None:
            unpack(txn, None, inner, attach_id)
    if parcel.read and folder_id is not None:
        messages.set_read(txn, [message_id], True)
    if folder_id is not None:
        old = int(txn.conn.execute("SELECT size FROM messages WHERE message_id = ?",
                                   (message_id,)).fetchone()[0])
        txn.add_size(messages._update_size(txn, message_id) - old)
    else:
        messages._update_size(txn, message_id)
    return message_id


async def copy_messages(source: Mailbox, message_ids: list[int], target: Mailbox,
                        folder_id: int, move: bool = False) -> dict[int, int]:
    """Copy (or move) messages into a folder of another store: ``{source id: new id}``.

    Check rights first (:func:`gateway.store.permissions.check`): reading (and for
    a move deleting) in the source, creating in the target.
    """
    if source.path == target.path:
        op = messages.move if move else messages.copy
        return await source.write(op, message_ids, folder_id)
    await target.read(folders.require, folder_id)
    mapping: dict[int, int] = {}
    for message_id in dict.fromkeys(message_ids):
        parcel = await source.read(_pack_top, message_id)
        mapping[message_id] = await target.write(unpack, folder_id, parcel)
    if move:
        await source.write(messages.delete, list(mapping), True)
    return mapping


def _pack_top(txn: Txn, message_id: int) -> Parcel:
    if messages.require(txn, message_id)[0] is None:
        raise InvalidArgument(f"message {message_id} is embedded and cannot be copied alone")
    return pack(txn, message_id)


async def copy_folder(source: Mailbox, folder_id: int, target: Mailbox, parent_id: int,
                      name: str | None = None, move: bool = False) -> int:
    """Copy (or move) a folder with its messages and subfolders into another store."""
    if source.path == target.path:
        if move:
            await source.write(folders.move, folder_id, parent_id, name)
            return folder_id
        return await source.write(folders.copy, folder_id, parent_id, name, True)

    def describe(txn: Txn) -> tuple[str, int, list[Row], list[int], list[int]]:
        _, folder_type, folder_name, _ = folders.require(txn, folder_id)
        mids = [r[0] for r in txn.conn.execute(
            "SELECT message_id FROM messages WHERE folder_id = ? ORDER BY uid", (folder_id,))]
        skip = (T.PidTagCreationTime, T.PidTagLastModificationTime)
        rows = [r for r in _rows(txn, "folder_props", folder_id) if r.tag not in skip]
        return folder_name, folder_type, rows, mids, folders.children(txn, folder_id)

    folder_name, folder_type, rows, mids, children = await source.read(describe)

    def make(txn: Txn) -> int:
        new_id = folders.create(txn, parent_id, name or folder_name, folder_type=folder_type)
        _write_rows(txn, "folder_props", new_id, rows)
        return new_id

    new_id = await target.write(make)
    await copy_messages(source, mids, target, new_id)
    for child in children:
        await copy_folder(source, child, target, new_id)
    if move:
        await source.write(folders.delete, folder_id, True)
    return new_id
