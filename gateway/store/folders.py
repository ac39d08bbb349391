"""Folder operations: the tree, its names, moves, copies, deletes and emptying.

Functions take a :class:`~gateway.store.txn.Txn`; the mailbox runs them.
A folder's display name lives in ``folders.name`` (unique among siblings,
case-insensitively, as Outlook expects); every other property is a row.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gateway.store import ids, special
from gateway.store import tags as T
from gateway.store.errors import (
    AccessDenied,
    Collision,
    FolderCycle,
    InvalidArgument,
    InvalidValue,
)
from gateway.store.objects import FOLDER_GENERIC, FOLDER_ROOT, FOLDER_SEARCH
from gateway.store.txn import PropKey, Txn

MAX_NAME = 255
MAX_DEPTH = 64


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidValue(T.PidTagDisplayName, "a folder needs a non-empty name")
    if len(name) > MAX_NAME or "\x00" in name:
        raise InvalidValue(T.PidTagDisplayName, f"a folder name is at most {MAX_NAME} "
                                                "characters, without NUL")
    return name


def exists(txn: Txn, folder_id: int) -> bool:
    return txn.conn.execute("SELECT 1 FROM folders WHERE folder_id = ?",
                            (folder_id,)).fetchone() is not None


def require(txn: Txn, folder_id: int) -> tuple[Any, ...]:
    """``(parent_id, folder_type, name, change_number)`` of an existing folder."""
    if not isinstance(folder_id, int):
        raise InvalidArgument(f"a folder id is an integer, not {type(folder_id).__name__}")
    return txn.require("SELECT parent_id, folder_type, name, change_number FROM folders "
                       "WHERE folder_id = ?", (folder_id,), f"folder {folder_id}")


def find_child(txn: Txn, parent_id: int, name: str) -> int | None:
    row = txn.conn.execute("SELECT folder_id FROM folders WHERE parent_id = ? "
                           "AND name = ? COLLATE NOCASE", (parent_id, name)).fetchone()
    return None if row is None else int(row[0])


def children(txn: Txn, folder_id: int) -> list[int]:
    return [row[0] for row in txn.conn.execute(
        "SELECT folder_id FROM folders WHERE parent_id = ? ORDER BY name COLLATE NOCASE",
        (folder_id,))]


def descendants(txn: Txn, folder_id: int) -> list[int]:
    """Every folder below ``folder_id``, parents before children."""
    rows = txn.conn.execute(
        "WITH RECURSIVE tree(id, depth) AS (SELECT folder_id, 1 FROM folders WHERE parent_id = ? "
        "UNION ALL SELECT f.folder_id, t.depth + 1 FROM folders f JOIN tree t "
        "ON f.parent_id = t.id WHERE t.depth < ?) SELECT id FROM tree ORDER BY depth",
        (folder_id, MAX_DEPTH + 1)).fetchall()
    return [row[0] for row in rows]


def ancestors(txn: Txn, folder_id: int) -> list[int]:
    """``folder_id``'s parents up to the root, nearest first."""
    out: list[int] = []
    current = require(txn, folder_id)[0]
    while current is not None and len(out) <= MAX_DEPTH:
        out.append(current)
        current = txn.conn.execute("SELECT parent_id FROM folders WHERE folder_id = ?",
                                   (current,)).fetchone()[0]
    return out


def path_of(txn: Txn, folder_id: int) -> list[str]:
    """Names from below the root down to the folder."""
    names = [require(txn, folder_id)[2]]
    for parent in ancestors(txn, folder_id)[:-1]:
        names.append(require(txn, parent)[2])
    return list(reversed(names))


def is_protected(txn: Txn, folder_id: int) -> bool:
    well_known = special.PROTECTED_PUBLIC if txn.info.public else special.PROTECTED_PRIVATE
    return folder_id in well_known


def stamp(txn: Txn, folder_id: int) -> int:
    """A new change number, change key and PCL for a folder (a hierarchy change)."""
    cn = txn.next_cn()
    row = txn.conn.execute("SELECT pcl FROM folders WHERE folder_id = ?", (folder_id,)).fetchone()
    change_key = ids.xid(txn.info.replica, cn)
    txn.conn.execute("UPDATE folders SET change_number = ?, pcl = ? WHERE folder_id = ?",
                     (cn, ids.pcl_merge(row[0], change_key), folder_id))
    txn.write_props("folder_props", folder_id, {T.PidTagLastModificationTime: _now()})
    return cn


def _now() -> int:
    from datetime import UTC, datetime

    from gateway.store.values import to_filetime
    return to_filetime(datetime.now(UTC))


def create(txn: Txn, parent_id: int | None, name: str, container_class: str | None = None,
           props: Mapping[PropKey, Any] | None = None, folder_type: int = FOLDER_GENERIC,
           folder_id: int | None = None, open_existing: bool = False) -> int:
    """A new folder below ``parent_id`` (``None`` only for a store's root)."""
    name = check_name(name)
    if folder_type not in (FOLDER_GENERIC, FOLDER_SEARCH, FOLDER_ROOT):
        raise InvalidArgument(f"folder type {folder_type} is not generic (1) or search (2)")
    if parent_id is not None:
        require(txn, parent_id)
        if len(ancestors(txn, parent_id)) >= MAX_DEPTH:
            raise InvalidArgument(f"folders nest at most {MAX_DEPTH} deep")
        existing = find_child(txn, parent_id, name)
        if existing is not None:
            if open_existing:
                return existing
            raise Collision(f"a folder named {name!r} already exists there")
    if folder_id is None:
        folder_id = txn.next_gc()
    cn = txn.next_cn()
    txn.conn.execute(
        "INSERT INTO folders (folder_id, parent_id, folder_type, name, change_number, created_cn,"
        " pcl, uidvalidity) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (folder_id, parent_id, folder_type, name, cn, cn,
         ids.pcl_pack([ids.xid(txn.info.replica, cn)]), txn.next_uidvalidity()))
    initial: dict[PropKey, Any] = {T.PidTagCreationTime: _now(),
                                   T.PidTagLastModificationTime: _now()}
    if container_class:
        initial[T.PidTagContainerClass] = container_class
    initial.update(props or {})
    initial.pop(T.PidTagDisplayName, None)
    txn.write_props("folder_props", folder_id, initial)
    from gateway.store.permissions import inherit_acl  # permissions imports this module

    inherit_acl(txn, parent_id, folder_id)
    txn.event("folder_created", parent_id, folder_id, cn, name=name)
    return folder_id


def set_props(txn: Txn, folder_id: int, props: Mapping[PropKey, Any]) -> int:
    """Change properties; ``PidTagDisplayName`` renames (checked against the siblings)."""
    parent_id, _, name, _ = require(txn, folder_id)
    props = dict(props)
    new_name = props.pop(T.PidTagDisplayName, None)
    if new_name is not None and new_name != name:
        new_name = check_name(new_name)
        if is_protected(txn, folder_id) and parent_id is not None:
            pass  # renaming a default folder is allowed (languages), moving it is not
        other = find_child(txn, parent_id, new_name) if parent_id is not None else None
        if other is not None and other != folder_id:
            raise Collision(f"a folder named {new_name!r} already exists there")
        txn.conn.execute("UPDATE folders SET name = ? WHERE folder_id = ?", (new_name, folder_id))
    txn.write_props("folder_props", folder_id, props)
    cn = stamp(txn, folder_id)
    txn.event("folder_modified", parent_id, folder_id, cn)
    return cn


def move(txn: Txn, folder_id: int, new_parent: int, new_name: str | None = None) -> int:
    parent_id, _, name, _ = require(txn, folder_id)
    require(txn, new_parent)
    if is_protected(txn, folder_id):
        raise AccessDenied("a default folder cannot be moved")
    if new_parent == folder_id or folder_id in ancestors(txn, new_parent):
        raise FolderCycle("a folder cannot move into itself or one of its subfolders")
    target_name = check_name(new_name) if new_name is not None else name
    other = find_child(txn, new_parent, target_name)
    if other is not None and other != folder_id:
        raise Collision(f"a folder named {target_name!r} already exists there")
    depth = len(ancestors(txn, new_parent)) + 1 + _height(txn, folder_id)
    if depth > MAX_DEPTH:
        raise InvalidArgument(f"folders nest at most {MAX_DEPTH} deep")
    txn.conn.execute("UPDATE folders SET parent_id = ?, name = ? WHERE folder_id = ?",
                     (new_parent, target_name, folder_id))
    cn = stamp(txn, folder_id)
    txn.event("folder_moved", new_parent, folder_id, cn, old_parent=parent_id)
    return cn


def _height(txn: Txn, folder_id: int) -> int:
    row = txn.conn.execute(
        "WITH RECURSIVE tree(id, depth) AS (SELECT ?, 0 UNION ALL SELECT f.folder_id, "
        "t.depth + 1 FROM folders f JOIN tree t ON f.parent_id = t.id WHERE t.depth < ?) "
        "SELECT max(depth) FROM tree", (folder_id, MAX_DEPTH + 1)).fetchone()
    return int(row[0] or 0)


def copy(txn: Txn, folder_id: int, new_parent: int, new_name: str | None = None,
         recursive: bool = True) -> int:
    """A copy of the folder (its properties, messages and, if asked, subfolders)."""
    from gateway.store import messages

    _, folder_type, name, _ = require(txn, folder_id)
    require(txn, new_parent)
    if recursive and (new_parent == folder_id or folder_id in ancestors(txn, new_parent)):
        raise FolderCycle("a folder cannot be copied into itself or one of its subfolders")
    stored = txn.read_props("folder_props", folder_id)
    for computed in (T.PidTagCreationTime, T.PidTagLastModificationTime):
        stored.pop(computed, None)
    copy_id = create(txn, new_parent, new_name or name, props=stored, folder_type=folder_type)
    mids = [row[0] for row in txn.conn.execute(
        "SELECT message_id FROM messages WHERE folder_id = ? ORDER BY uid", (folder_id,))]
    messages.copy(txn, mids, copy_id)
    if recursive:
        for child in children(txn, folder_id):
            copy(txn, child, copy_id, None, True)
    return copy_id


def delete(txn: Txn, folder_id: int, hard: bool = True) -> None:
    """Delete a folder with everything in it; soft: move it to Deleted Items instead."""
    name = require(txn, folder_id)[2]
    if is_protected(txn, folder_id):
        raise AccessDenied("a default folder cannot be deleted")
    if not hard and not txn.info.public:
        wastebasket = int(special.Private.DELETED_ITEMS)
        if folder_id != wastebasket and wastebasket not in ancestors(txn, folder_id):
            move(txn, folder_id, wastebasket, _free_name(txn, wastebasket, name))
            return
    for child in reversed([folder_id, *descendants(txn, folder_id)]):
        _destroy(txn, child)


def _free_name(txn: Txn, parent_id: int, name: str) -> str:
    candidate, n = name, 1
    while find_child(txn, parent_id, candidate) is not None:
        n += 1
        candidate = f"{name} ({n})"
    return candidate


def _destroy(txn: Txn, folder_id: int) -> None:
    from gateway.store import messages

    parent_id, _, _, _ = require(txn, folder_id)
    mids = [row[0] for row in txn.conn.execute(
        "SELECT message_id FROM messages WHERE folder_id = ?", (folder_id,))]
    messages.delete(txn, mids, hard=True)
    txn.delete_all_props("folder_props", folder_id)
    txn.conn.execute("DELETE FROM permissions WHERE folder_id = ?", (folder_id,))
    created = txn.conn.execute("DELETE FROM folders WHERE folder_id = ? RETURNING created_cn",
                               (folder_id,)).fetchone()[0]
    cn = txn.next_cn()
    txn.conn.execute(
        "INSERT INTO tombstones (object_id, folder_id, is_folder, created_cn, change_number, "
        "deleted_at) VALUES (?, ?, 1, ?, ?, ?)", (folder_id, parent_id, created, cn,
                                                  int(time.time())))
    txn.touched_folders.discard(folder_id)
    txn.event("folder_deleted", parent_id, folder_id, cn)


def empty(txn: Txn, folder_id: int, associated: bool = False, subfolders: bool = True,
          hard: bool = True) -> int:
    """Remove the folder's messages (and FAI if asked) and subfolders; returns messages gone."""
    from gateway.store import messages

    require(txn, folder_id)
    where = "" if associated else " AND associated = 0"
    mids = [row[0] for row in txn.conn.execute(
        f"SELECT message_id FROM messages WHERE folder_id = ?{where}", (folder_id,))]
    messages.delete(txn, mids, hard=hard)
    if subfolders:
        for child in children(txn, folder_id):
            delete(txn, child, hard=hard)
    return len(mids)
