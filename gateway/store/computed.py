"""Properties the store derives rather than keeps: ids, keys, counts, sizes, flags.

``folder_props`` and ``message_props`` return the stored bag with these laid
over it. Asked for specific keys, only those are computed; listed whole, all
of them are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from gateway.store import ids
from gateway.store import tags as T
from gateway.store.objects import (
    FOLDER_ROOT,
    MSGFLAG_ASSOCIATED,
    MSGFLAG_HASATTACH,
    MSGFLAG_READ,
)
from gateway.store.txn import PropKey, Txn

RIGHTS_OWNER = 0x0000_07FB  # every right of MS-OXCPERM 2.2.7 (ReadAny .. FolderVisible)
ACCESS_ALL = 0x3F  # PidTagAccess: modify, read, delete, hierarchy, contents, FAI contents
MESSAGE_ACCESS_ALL = 0x07  # PidTagAccess of a message: modify, read, delete

FOLDER_ROW = ("SELECT parent_id, folder_type, name, change_number, pcl, created_cn "
              "FROM folders WHERE folder_id = ?")
MESSAGE_ROW = ("SELECT folder_id, associated, uid, change_number, pcl, is_read, size, "
               "parent_attach_id, mime_size FROM messages WHERE message_id = ?")

FolderRow = tuple[Any, ...]
MessageRow = tuple[Any, ...]


def _folder_counts(txn: Txn, fid: int) -> tuple[int, int, int]:
    # Kept by triggers on messages (gateway/store/schema.py, version 4).
    row = txn.conn.execute("SELECT content_count, unread_count, associated_count "
                           "FROM folders WHERE folder_id = ?", (fid,)).fetchone()
    if row is None:
        return 0, 0, 0
    return int(row[0]), int(row[1]), int(row[2])


def _child_count(txn: Txn, fid: int) -> int:
    return int(txn.conn.execute("SELECT count(*) FROM folders WHERE parent_id = ?",
                                (fid,)).fetchone()[0])


def _folder_size(txn: Txn, fid: int) -> int:
    return int(txn.conn.execute("SELECT total(size) FROM messages WHERE folder_id = ?",
                                (fid,)).fetchone()[0])


def _source_key(txn: Txn, gc: int | None) -> bytes:
    return b"" if gc is None else ids.xid(txn.info.replica, gc)


def _folder_entry(txn: Txn, fid: int) -> bytes:
    return ids.folder_entry_id(txn.info.provider, txn.info.replica, fid, txn.info.public)


FOLDER_COMPUTED: dict[int, Callable[[Txn, int, FolderRow], Any]] = {
    T.PidTagFolderId: lambda t, f, r: ids.make_eid(f),
    T.PidTagParentFolderId: lambda t, f, r: ids.make_eid(r[0]) if r[0] is not None else 0,
    T.PidTagEntryId: lambda t, f, r: _folder_entry(t, f),
    T.PidTagRecordKey: lambda t, f, r: _folder_entry(t, f),
    T.PidTagParentEntryId: lambda t, f, r: _folder_entry(t, r[0] if r[0] is not None else f),
    T.PidTagSourceKey: lambda t, f, r: _source_key(t, f),
    T.PidTagParentSourceKey: lambda t, f, r: _source_key(t, r[0]),
    T.PidTagChangeKey: lambda t, f, r: ids.xid(t.info.replica, r[3]),
    T.PidTagPredecessorChangeList: lambda t, f, r: r[4] or b"",
    T.PidTagChangeNumber: lambda t, f, r: ids.make_eid(r[3]),
    T.PidTagDisplayName: lambda t, f, r: r[2],
    T.PidTagFolderType: lambda t, f, r: FOLDER_ROOT if r[0] is None else r[1],
    T.PidTagContentCount: lambda t, f, r: _folder_counts(t, f)[0],
    T.PidTagContentUnreadCount: lambda t, f, r: _folder_counts(t, f)[1],
    T.PidTagAssociatedContentCount: lambda t, f, r: _folder_counts(t, f)[2],
    T.PidTagFolderChildCount: lambda t, f, r: _child_count(t, f),
    T.PidTagSubfolders: lambda t, f, r: _child_count(t, f) > 0,
    T.PidTagMessageSizeExtended: lambda t, f, r: _folder_size(t, f),
    T.PidTagAccess: lambda t, f, r: ACCESS_ALL,
    T.PidTagRights: lambda t, f, r: RIGHTS_OWNER,
    T.PidTagAccessLevel: lambda t, f, r: 1,
    T.PidTagHierarchyChangeNumber: lambda t, f, r: r[3] & 0xFFFFFFFF,
}


def _message_entry(txn: Txn, mid: int, row: MessageRow) -> bytes:
    folder = row[0] if row[0] is not None else 0
    return ids.message_entry_id(txn.info.provider, txn.info.replica, folder, mid,
                                txn.info.public)


def _has_attachments(txn: Txn, mid: int) -> bool:
    return txn.conn.execute("SELECT 1 FROM attachments WHERE message_id = ? LIMIT 1",
                            (mid,)).fetchone() is not None


def _message_flags(txn: Txn, mid: int, row: MessageRow) -> int:
    stored = txn.read_props("message_props", mid, [T.PidTagMessageFlags]).get(
        T.PidTagMessageFlags, 0)
    flags = int(stored)
    if row[5]:
        flags |= MSGFLAG_READ
    if row[1]:
        flags |= MSGFLAG_ASSOCIATED
    if _has_attachments(txn, mid):
        flags |= MSGFLAG_HASATTACH
    return flags


MESSAGE_COMPUTED: dict[int, Callable[[Txn, int, MessageRow], Any]] = {
    T.PidTagMid: lambda t, m, r: ids.make_eid(m),
    T.PidTagFolderId: lambda t, m, r: ids.make_eid(r[0]) if r[0] is not None else 0,
    T.PidTagEntryId: _message_entry,
    T.PidTagRecordKey: _message_entry,
    T.PidTagParentEntryId: lambda t, m, r: _folder_entry(t, r[0]) if r[0] is not None else b"",
    T.PidTagSourceKey: lambda t, m, r: _source_key(t, m),
    T.PidTagParentSourceKey: lambda t, m, r: _source_key(t, r[0]),
    T.PidTagChangeKey: lambda t, m, r: ids.xid(t.info.replica, r[3]),
    T.PidTagPredecessorChangeList: lambda t, m, r: r[4] or b"",
    T.PidTagChangeNumber: lambda t, m, r: ids.make_eid(r[3]),
    T.PidTagMessageSize: lambda t, m, r: min(int(r[6]), 0x7FFFFFFF),
    T.PidTagMessageSizeExtended: lambda t, m, r: int(r[6]),
    T.PidTagHasAttachments: lambda t, m, r: _has_attachments(t, m),
    T.PidTagMessageFlags: _message_flags,
    T.PidTagAssociated: lambda t, m, r: bool(r[1]),
    T.PidTagInternetArticleNumber: lambda t, m, r: r[2] or 0,
    T.PidTagAccess: lambda t, m, r: MESSAGE_ACCESS_ALL,
    T.PidTagAccessLevel: lambda t, m, r: 1,
}


def _apply(txn: Txn, owner: int, row: tuple[Any, ...], stored: dict[PropKey, Any],
           table: dict[int, Callable[[Txn, int, tuple[Any, ...]], Any]],
           keys: list[PropKey] | None) -> dict[PropKey, Any]:
    if keys is None:
        for tag, compute in table.items():
            stored[tag] = compute(txn, owner, row)
        return stored
    out: dict[PropKey, Any] = {}
    for key in keys:
        method = table.get(key) if isinstance(key, int) else None
        if method is not None:
            out[key] = method(txn, owner, row)
        elif key in stored:
            out[key] = stored[key]
    return out


def folder_props(txn: Txn, fid: int,
                 keys: Iterable[PropKey] | None = None) -> dict[PropKey, Any]:
    row = txn.require(FOLDER_ROW, (fid,), f"folder {fid}")
    wanted = None if keys is None else list(keys)
    stored_keys = None if wanted is None else [
        k for k in wanted if not (isinstance(k, int) and k in FOLDER_COMPUTED)]
    stored = txn.read_props("folder_props", fid, stored_keys)
    return _apply(txn, fid, row, stored, FOLDER_COMPUTED, wanted)


def message_props(txn: Txn, mid: int,
                  keys: Iterable[PropKey] | None = None) -> dict[PropKey, Any]:
    row = txn.require(MESSAGE_ROW, (mid,), f"message {mid}")
    wanted = None if keys is None else list(keys)
    stored_keys = None if wanted is None else [
        k for k in wanted if not (isinstance(k, int) and k in MESSAGE_COMPUTED)]
    stored = txn.read_props("message_props", mid, stored_keys)
    return _apply(txn, mid, row, stored, MESSAGE_COMPUTED, wanted)
