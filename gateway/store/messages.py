"""Message operations: create, modify, delete, move, copy, read state.

Every write to a message takes a new change number and refreshes its change
key, predecessor change list, MODSEQ and size. Read-state changes take a
change number of their own (``read_cn``) and leave the content change
number alone, so sync reports them apart. A write to an embedded message
counts as a write to the message that carries it.

Recipients and attachments are in :mod:`gateway.store.parts`; their public
operations are re-exported here (``messages.recipients``, ...).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.store import folders, ids, mime_cache
from gateway.store import tags as T
from gateway.store.errors import InvalidArgument, InvalidValue, NotFound, TooBig
from gateway.store.named import DAV_NAME
from gateway.store.objects import COMPUTED_FLAGS, MSGFLAG_READ, NewMessage
from gateway.store.parts import (
    MAX_ATTACHMENTS,
    MAX_RECIPIENTS,
    _add_attachment,
    _delete_recipients,
    _destroy_attachment,
    _update_attachment_size,
    _write_recipients,
)
from gateway.store.parts import add_attachment as add_attachment
from gateway.store.parts import attachment_data_ref as attachment_data_ref
from gateway.store.parts import attachment_id as attachment_id
from gateway.store.parts import attachment_props as attachment_props
from gateway.store.parts import attachments as attachments
from gateway.store.parts import delete_attachment as delete_attachment
from gateway.store.parts import embedded as embedded
from gateway.store.parts import recipients as recipients
from gateway.store.parts import set_attachment_props as set_attachment_props
from gateway.store.parts import set_recipients as set_recipients
from gateway.store.txn import PropKey, Txn
from gateway.store.values import to_filetime

MAX_EMBEDDING = 8


def _now() -> int:
    from datetime import UTC, datetime
    return to_filetime(datetime.now(UTC))


def require(txn: Txn, message_id: int) -> tuple[Any, ...]:
    """``(folder_id, associated, uid, is_read, parent_attach_id)`` of an existing message."""
    if not isinstance(message_id, int):
        raise InvalidArgument(f"a message id is an integer, not {type(message_id).__name__}")
    return txn.require("SELECT folder_id, associated, uid, is_read, parent_attach_id "
                       "FROM messages WHERE message_id = ?", (message_id,),
                       f"message {message_id}")


def top_message(txn: Txn, message_id: int) -> int:
    """The message in a folder that (perhaps through attachments) carries ``message_id``."""
    current = message_id
    for _ in range(MAX_EMBEDDING + 1):
        row = txn.conn.execute(
            "SELECT m.folder_id, a.message_id FROM messages m LEFT JOIN attachments a "
            "ON a.attach_id = m.parent_attach_id WHERE m.message_id = ?", (current,)).fetchone()
        if row is None:
            raise NotFound(f"message {message_id} does not exist")
        if row[0] is not None or row[1] is None:
            return current
        current = row[1]
    raise InvalidArgument("messages embedded too deep")


def create(txn: Txn, folder_id: int | None, new: NewMessage,
           parent_attach_id: int | None = None, depth: int = 0,
           kind: str = "object_created") -> int:
    """Write a whole message in one go; returns its id."""
    if depth > MAX_EMBEDDING:
        raise InvalidArgument(f"messages embed at most {MAX_EMBEDDING} deep")
    if len(new.recipients) > MAX_RECIPIENTS:
        raise TooBig(f"more than {MAX_RECIPIENTS} recipients")
    if len(new.attachments) > MAX_ATTACHMENTS:
        raise TooBig(f"more than {MAX_ATTACHMENTS} attachments")
    if folder_id is not None:
        folders.require(txn, folder_id)
    props = dict(new.props)
    flags = props.pop(T.PidTagMessageFlags, 0) or 0
    if not isinstance(flags, int):
        raise InvalidValue(T.PidTagMessageFlags, "an integer")
    read = bool(flags & MSGFLAG_READ)
    message_id = txn.next_gc()
    cn = txn.next_cn()
    uid = _take_uid(txn, folder_id) if folder_id is not None else None
    mime_blob = mime_size = None
    if new.mime is not None:
        mime_blob, mime_size = txn.blobs.put(txn.conn, new.mime), len(new.mime)
        if folder_id is not None:
            mime_cache.derive_on_create(txn, mime_blob, new.mime)
    txn.conn.execute(
        "INSERT INTO messages (message_id, folder_id, parent_attach_id, associated, uid, "
        "change_number, created_cn, read_cn, modseq, pcl, is_read, mime_blob, mime_size) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (message_id, folder_id, parent_attach_id, int(new.associated), uid, cn, cn,
         cn if read else 0, cn, ids.pcl_pack([ids.xid(txn.info.replica, cn)]), int(read),
         mime_blob, mime_size))
    now = _now()
    props.setdefault(T.PidTagCreationTime, now)
    props.setdefault(T.PidTagLastModificationTime, now)
    if folder_id is not None:
        props.setdefault(T.PidTagMessageDeliveryTime, now)
    props[T.PidTagMessageFlags] = flags & ~COMPUTED_FLAGS
    txn.write_props("message_props", message_id, props)
    _write_recipients(txn, message_id, new.recipients)
    for attachment in new.attachments:
        _add_attachment(txn, message_id, attachment, depth)
    size = _update_size(txn, message_id)
    if folder_id is not None:
        txn.add_size(size)
        txn.touched_folders.add(folder_id)
        txn.event(kind, folder_id, message_id, cn, uid=uid, associated=new.associated)
    return message_id


def _take_uid(txn: Txn, folder_id: int) -> int:
    row = txn.conn.execute("UPDATE folders SET uidnext = uidnext + 1 WHERE folder_id = ? "
                           "RETURNING uidnext - 1", (folder_id,)).fetchone()
    return int(row[0])


def computed_size(txn: Txn, message_id: int) -> int:
    """A message's size: its properties, recipients and attachments (embedded messages
    included) — or its original Internet bytes, when those are larger (delivered mail
    is counted at least as what arrived, for quotas and ``PidTagMessageSize``). MIME
    rendered from MAPI for IMAP (``mime_rendered``) is a view and does not count."""
    conn = txn.conn
    size = txn.props_size("message_props", message_id)
    size += int(conn.execute(
        "SELECT total(p.size) FROM recipients r JOIN recipient_props p "
        "ON p.recipient_id = r.recipient_id WHERE r.message_id = ?", (message_id,)).fetchone()[0])
    size += int(conn.execute(
        "SELECT total(p.size) FROM attachments a JOIN attachment_props p "
        "ON p.attach_id = a.attach_id WHERE a.message_id = ? AND p.tag != ?",
        (message_id, T.PidTagAttachSize)).fetchone()[0])
    size += int(conn.execute(
        "SELECT total(m.size) FROM attachments a JOIN messages m ON m.parent_attach_id = "
        "a.attach_id WHERE a.message_id = ?", (message_id,)).fetchone()[0])
    mime = conn.execute("SELECT mime_size, mime_rendered FROM messages WHERE message_id = ?",
                        (message_id,)).fetchone()
    return max(size, int(mime[0] or 0) if mime and not mime[1] else 0)


def _update_size(txn: Txn, message_id: int) -> int:
    """Recompute and record the message size; refuse a message beyond the limit."""
    size = computed_size(txn, message_id)
    if size > txn.limits.max_message_bytes:
        raise TooBig(f"a message of {size} bytes is larger than the limit of "
                     f"{txn.limits.max_message_bytes}")
    txn.conn.execute("UPDATE messages SET size = ? WHERE message_id = ?", (size, message_id))
    return size


def _stamp(txn: Txn, message_id: int, kind: str = "object_modified") -> int:
    """Mark a content change: new CN, change key, PCL, MODSEQ, size (on the top message)."""
    top = top_message(txn, message_id)
    old_size = int(txn.conn.execute("SELECT size FROM messages WHERE message_id = ?",
                                    (top,)).fetchone()[0])
    if top != message_id:
        _update_size(txn, message_id)
        _refresh_embedding_sizes(txn, message_id)
    cn = txn.next_cn()
    row = txn.conn.execute("SELECT pcl, folder_id, uid FROM messages WHERE message_id = ?",
                           (top,)).fetchone()
    change_key = ids.xid(txn.info.replica, cn)
    txn.conn.execute("UPDATE messages SET change_number = ?, modseq = ?, pcl = ? "
                     "WHERE message_id = ?", (cn, cn, ids.pcl_merge(row[0], change_key), top))
    txn.write_props("message_props", top, {T.PidTagLastModificationTime: _now()})
    new_size = _update_size(txn, top)
    if row[1] is not None:
        txn.add_size(new_size - old_size)
        txn.touched_folders.add(row[1])
        txn.event(kind, row[1], top, cn, uid=row[2])
    return cn


def _refresh_embedding_sizes(txn: Txn, message_id: int) -> None:
    current = message_id
    for _ in range(MAX_EMBEDDING + 1):
        row = txn.conn.execute("SELECT parent_attach_id FROM messages WHERE message_id = ?",
                               (current,)).fetchone()
        if row is None or row[0] is None:
            return
        _update_attachment_size(txn, row[0])
        parent = txn.conn.execute("SELECT message_id FROM attachments WHERE attach_id = ?",
                                  (row[0],)).fetchone()[0]
        _update_size(txn, parent)
        current = parent


def set_props(txn: Txn, message_id: int, props: Mapping[PropKey, Any]) -> int:
    """Change properties (``None`` deletes one). Read state goes through :func:`set_read`."""
    require(txn, message_id)
    props = dict(props)
    flags = props.pop(T.PidTagMessageFlags, None)
    if flags is not None:
        if not isinstance(flags, int):
            raise InvalidValue(T.PidTagMessageFlags, "an integer")
        props[T.PidTagMessageFlags] = flags & ~COMPUTED_FLAGS
    txn.write_props("message_props", message_id, props)
    cn = _stamp(txn, message_id)
    if flags is not None:
        set_read(txn, [message_id], bool(flags & MSGFLAG_READ))
    return cn


KEPT_ON_REPLACE = (T.PidTagCreationTime, T.PidTagMessageDeliveryTime)
"""Properties a message keeps when its whole content is replaced."""


def replace(txn: Txn, message_id: int, new: NewMessage,
            keep: Iterable[PropKey] = ()) -> int:
    """Replace a top-level message's whole content (properties, recipients, attachments and
    original MIME) by ``new``, as a PUT of a calendar object or vCard does; returns the new CN.

    The message keeps its id, UID, read state, creation time and the ``keep`` properties,
    and gets a new change number, so every protocol sees one change of one object.
    """
    folder_id = require(txn, message_id)[0]
    if folder_id is None:
        raise InvalidArgument(f"message {message_id} is embedded; replace its parent")
    if len(new.recipients) > MAX_RECIPIENTS:
        raise TooBig(f"more than {MAX_RECIPIENTS} recipients")
    if len(new.attachments) > MAX_ATTACHMENTS:
        raise TooBig(f"more than {MAX_ATTACHMENTS} attachments")
    kept = txn.read_props("message_props", message_id, [*KEPT_ON_REPLACE, *keep])
    _delete_recipients(txn, message_id)
    for (attach_id,) in txn.conn.execute("SELECT attach_id FROM attachments WHERE message_id = ?",
                                         (message_id,)).fetchall():
        _destroy_attachment(txn, attach_id)
    txn.delete_all_props("message_props", message_id)
    old_mime = txn.conn.execute("SELECT mime_blob FROM messages WHERE message_id = ?",
                                (message_id,)).fetchone()[0]
    mime_blob = mime_size = None
    if new.mime is not None:
        mime_blob, mime_size = txn.blobs.put(txn.conn, new.mime), len(new.mime)
        mime_cache.derive_on_create(txn, mime_blob, new.mime)
    if old_mime is not None:
        txn.blobs.release(txn.conn, old_mime, txn.doomed_files)
    txn.conn.execute("UPDATE messages SET mime_blob = ?, mime_size = ?, mime_rendered = 0 "
                     "WHERE message_id = ?", (mime_blob, mime_size, message_id))
    props = dict(new.props)
    flags = props.pop(T.PidTagMessageFlags, 0) or 0
    if not isinstance(flags, int):
        raise InvalidValue(T.PidTagMessageFlags, "an integer")
    props.update(kept)
    props[T.PidTagMessageFlags] = flags & ~COMPUTED_FLAGS
    txn.write_props("message_props", message_id, props)
    _write_recipients(txn, message_id, new.recipients)
    for attachment in new.attachments:
        _add_attachment(txn, message_id, attachment, 0)
    return _stamp(txn, message_id)


def _destroy(txn: Txn, message_id: int) -> tuple[Any, ...]:
    """Remove a message's rows (recipients, attachments, embedded messages, blobs)."""
    _delete_recipients(txn, message_id)
    for (attach_id,) in txn.conn.execute("SELECT attach_id FROM attachments WHERE message_id = ?",
                                         (message_id,)).fetchall():
        _destroy_attachment(txn, attach_id)
    txn.delete_all_props("message_props", message_id)
    row = txn.conn.execute(
        "DELETE FROM messages WHERE message_id = ? RETURNING folder_id, associated, uid, "
        "created_cn, size, mime_blob", (message_id,)).fetchone()
    if row[5] is not None:
        txn.blobs.release(txn.conn, row[5], txn.doomed_files)
    return tuple(row)


def delete(txn: Txn, message_ids: Iterable[int], hard: bool = True) -> list[int]:
    """Delete messages; soft: move them to Deleted Items (hard when already there)."""
    mids = list(dict.fromkeys(message_ids))
    for mid in mids:
        if require(txn, mid)[0] is None:
            raise InvalidArgument(f"message {mid} is embedded; delete its attachment instead")
    if not hard and not txn.info.public:
        from gateway.store.special import Private

        wastebasket = int(Private.DELETED_ITEMS)
        elsewhere = [mid for mid in mids if require(txn, mid)[0] != wastebasket]
        if elsewhere:
            move(txn, elsewhere, wastebasket)
        mids = [mid for mid in mids if mid not in set(elsewhere)]
    for mid in mids:
        name = _dav_name(txn, mid)
        folder_id, associated, uid, created_cn, size, _ = _destroy(txn, mid)
        cn = txn.next_cn()
        txn.conn.execute(
            "INSERT INTO tombstones (object_id, folder_id, is_folder, associated, uid, created_cn,"
            " change_number, deleted_at, name) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?)",
            (mid, folder_id, associated, uid, created_cn, cn, int(time.time()), name))
        txn.add_size(-int(size))
        txn.touched_folders.add(folder_id)
        txn.event("object_deleted", folder_id, mid, cn, uid=uid)
    return mids


def _dav_name(txn: Txn, message_id: int) -> str | None:
    """The DAV name of a message, which its tombstone keeps (a DAV sync reports it)."""
    tag = txn.resolve(DAV_NAME)
    if tag is None:
        return None
    row = txn.conn.execute("SELECT value FROM message_props WHERE message_id = ? AND tag = ?",
                           (message_id, tag)).fetchone()
    return None if row is None else row[0]


def move(txn: Txn, message_ids: Iterable[int], dest_folder: int,
         renumber: bool = False) -> dict[int, int]:
    """Move messages to another folder of this store: ``{old id: new id}``.

    As in Exchange, a moved message gets a new id (and a new UID in its new
    folder); the source folder sees a deletion, the destination an addition.
    ``renumber``: a message already in ``dest_folder`` gets a new id too (a DAV
    rename, which sync reports as the old name gone and the new one added).
    """
    folders.require(txn, dest_folder)
    mapping: dict[int, int] = {}
    for mid in dict.fromkeys(message_ids):
        folder_id, associated, uid, _, _ = require(txn, mid)
        if folder_id is None:
            raise InvalidArgument(f"message {mid} is embedded and cannot be moved")
        if folder_id == dest_folder and not renumber:
            mapping[mid] = mid
            continue
        created_cn = txn.conn.execute("SELECT created_cn FROM messages WHERE message_id = ?",
                                      (mid,)).fetchone()[0]
        new_id, cn = txn.next_gc(), txn.next_cn()
        new_uid = _take_uid(txn, dest_folder)
        txn.conn.execute(
            "UPDATE messages SET message_id = ?, folder_id = ?, uid = ?, created_cn = ?, "
            "change_number = ?, modseq = ?, read_cn = CASE WHEN is_read THEN ? ELSE 0 END, "
            "pcl = ?, imap_deleted = 0 WHERE message_id = ?",
            (new_id, dest_folder, new_uid, cn, cn, cn, cn,
             ids.pcl_pack([ids.xid(txn.info.replica, cn)]), mid))
        for table, column in (("message_props", "message_id"), ("recipients", "message_id"),
                              ("attachments", "message_id")):
            txn.conn.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (new_id, mid))
        gone = txn.next_cn()
        txn.conn.execute(
            "INSERT INTO tombstones (object_id, folder_id, is_folder, associated, uid, created_cn,"
            " change_number, deleted_at, name) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?)",
            (mid, folder_id, associated, uid, created_cn, gone, int(time.time()),
             _dav_name(txn, new_id)))
        txn.touched_folders.update((folder_id, dest_folder))
        txn.event("object_moved", dest_folder, new_id, cn, old_folder_id=folder_id,
                  old_object_id=mid, old_uid=uid, uid=new_uid)
        mapping[mid] = new_id
    return mapping


def copy(txn: Txn, message_ids: Iterable[int], dest_folder: int) -> dict[int, int]:
    """Copy messages into a folder of this store: ``{source id: copy id}``."""
    folders.require(txn, dest_folder)
    mapping: dict[int, int] = {}
    for mid in dict.fromkeys(message_ids):
        if require(txn, mid)[0] is None:
            raise InvalidArgument(f"message {mid} is embedded and cannot be copied alone")
        mapping[mid] = _copy_one(txn, mid, dest_folder, None)
    return mapping


def _copy_one(txn: Txn, mid: int, dest_folder: int | None, parent_attach_id: int | None) -> int:
    new_id = txn.next_gc()
    cn = txn.next_cn()
    uid = _take_uid(txn, dest_folder) if dest_folder is not None else None
    txn.conn.execute(
        "INSERT INTO messages (message_id, folder_id, parent_attach_id, associated, uid, "
        "change_number, created_cn, read_cn, modseq, pcl, is_read, imap_deleted, size, "
        "mime_blob, mime_size, mime_rendered) SELECT ?, ?, ?, associated, ?, ?, ?, CASE WHEN "
        "is_read THEN ? ELSE 0 END, ?, ?, is_read, 0, size, mime_blob, mime_size, "
        "mime_rendered FROM messages WHERE message_id = ?",
        (new_id, dest_folder, parent_attach_id, uid, cn, cn, cn, cn,
         ids.pcl_pack([ids.xid(txn.info.replica, cn)]), mid))
    blob = txn.conn.execute("SELECT mime_blob, size FROM messages WHERE message_id = ?",
                            (new_id,)).fetchone()
    if blob[0] is not None:
        txn.conn.execute("UPDATE blobs SET refcount = refcount + 1 WHERE hash = ?", (blob[0],))
    txn.copy_props("message_props", mid, new_id)
    for recipient_id, row_id in txn.conn.execute(
            "SELECT recipient_id, row_id FROM recipients WHERE message_id = ?", (mid,)).fetchall():
        new_recipient = txn.conn.execute(
            "INSERT INTO recipients (message_id, row_id) VALUES (?, ?) RETURNING recipient_id",
            (new_id, row_id)).fetchone()[0]
        txn.copy_props("recipient_props", recipient_id, new_recipient)
    for attach_id, num in txn.conn.execute(
            "SELECT attach_id, num FROM attachments WHERE message_id = ?", (mid,)).fetchall():
        new_attach = txn.conn.execute(
            "INSERT INTO attachments (message_id, num) VALUES (?, ?) RETURNING attach_id",
            (new_id, num)).fetchone()[0]
        txn.copy_props("attachment_props", attach_id, new_attach)
        for (inner,) in txn.conn.execute(
                "SELECT message_id FROM messages WHERE parent_attach_id = ?",
                (attach_id,)).fetchall():
            _copy_one(txn, inner, None, new_attach)
    if dest_folder is not None:
        txn.add_size(int(blob[1]))
        txn.touched_folders.add(dest_folder)
        txn.event("object_copied", dest_folder, new_id, cn, uid=uid, source_id=mid)
    return new_id


def set_read(txn: Txn, message_ids: Iterable[int], read: bool) -> list[int]:
    """Set or clear the read flag; returns the messages whose state changed.

    Each changed message takes a change number as its ``read_cn`` and MODSEQ;
    its content change number stays, so sync reports a read-state change.
    """
    changed = []
    for mid in dict.fromkeys(message_ids):
        folder_id, _, uid, is_read, _ = require(txn, mid)
        if bool(is_read) == read:
            continue
        cn = txn.next_cn()
        txn.conn.execute("UPDATE messages SET is_read = ?, read_cn = ?, modseq = ? "
                         "WHERE message_id = ?", (int(read), cn, cn, mid))
        if folder_id is not None:
            txn.touched_folders.add(folder_id)
            txn.event("object_modified", folder_id, mid, cn, uid=uid, read=read)
        changed.append(mid)
    return changed


def mime_ref(txn: Txn, message_id: int) -> tuple[str | None, int | None]:
    """``(blob hash, size)`` of the original Internet message, or ``(None, None)``."""
    row = txn.require("SELECT mime_blob, mime_size FROM messages WHERE message_id = ?",
                      (message_id,), f"message {message_id}")
    return row[0], row[1]


def in_folder(txn: Txn, folder_id: int, message_ids: Iterable[int]) -> None:
    """Refuse ids that are not messages of ``folder_id`` (ids from elsewhere, made up)."""
    for mid in message_ids:
        row = txn.conn.execute("SELECT folder_id FROM messages WHERE message_id = ?",
                               (mid,)).fetchone()
        if row is None or row[0] != folder_id:
            raise NotFound(f"message {mid} is not in folder {folder_id}")

