"""One sync API: what changed in a folder (or in the folder tree) since a state.

Every write takes its own change number (CN) from the store's counter, and
writes to a store are serialised, so a snapshot sees exactly the CNs
1..last_cn. An object carries its latest content CN and its latest read-state
CN; a deletion leaves a tombstone with its own CN.

A state says two things: the CN ``C`` up to which the client has seen every
event, and which objects it holds. After a complete sync the objects it holds
are exactly those of the folder at ``C``, which the store can tell again
later (created in the folder at or before ``C``), so the state is just ``C``.
A paged sync ("at most N items") carries the set of ids explicitly, as
ranges, until the client has caught up.

A sync orders the objects with an event after ``C`` by their *latest* event
and cuts after the N-th; every object is delivered once with everything that
happened to it up to the cut, so nothing is missed and nothing comes twice.
An object the client does not hold is *added*; one it holds is *changed* when
its content changed, else a *read change*; a tombstone of an object it holds
is a *deletion* (objects created and deleted in between never show up).
ICS, EWS SyncFolderItems, EAS SyncKey, DAV sync-token and IMAP CONDSTORE all
build on this.

States are opaque strings: a version, the first bytes of the store's replica
GUID (a state from another or a re-created store is refused), the scope and
folder, ``C`` and, when paging, the id ranges — as unpadded base64url.
"""

from __future__ import annotations

import base64
import bisect
import json
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from gateway.store import folders
from gateway.store.errors import InvalidArgument, StoreError
from gateway.store.txn import Txn

_VERSION = 1
_EXPLICIT = 0x10
_COMPRESSED = 0x20
MAX_ITEMS = 10_000
MAX_STATE_BYTES = 4 * 1024 * 1024
Scope = Literal["contents", "associated", "all", "hierarchy"]
_SCOPES: dict[str, int] = {"contents": 0, "associated": 1, "all": 2, "hierarchy": 3}


class StateExpired(StoreError):
    """The state is older than the oldest remembered deletion: sync again from scratch."""


@dataclass(frozen=True)
class SyncItem:
    id: int
    """Message id (folder id for hierarchy syncs)."""
    change_number: int
    read: bool = False
    uid: int | None = None


@dataclass
class SyncResult:
    added: list[SyncItem] = field(default_factory=list)
    changed: list[SyncItem] = field(default_factory=list)
    deleted: list[SyncItem] = field(default_factory=list)
    read_changed: list[SyncItem] = field(default_factory=list)
    state: str = ""
    """Where the next sync starts."""
    more: bool = False
    """More changes wait beyond ``max_items``: sync again with ``state``."""
    cn: int = 0

    def __len__(self) -> int:
        return len(self.added) + len(self.changed) + len(self.deleted) + len(self.read_changed)


class IdSet:
    """Object ids as sorted, disjoint ``[start, end]`` ranges."""

    def __init__(self, ids: Iterable[int] = ()) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for value in sorted(set(ids)):
            if self.ends and self.ends[-1] + 1 == value:
                self.ends[-1] = value
            else:
                self.starts.append(value)
                self.ends.append(value)

    def __contains__(self, value: int) -> bool:
        i = bisect.bisect_right(self.starts, value) - 1
        return i >= 0 and value <= self.ends[i]

    def __iter__(self) -> Iterator[int]:
        for start, end in zip(self.starts, self.ends, strict=True):
            yield from range(start, end + 1)

    def encode(self) -> bytes:
        out, previous = bytearray(_varint(len(self.starts))), 0
        for start, end in zip(self.starts, self.ends, strict=True):
            out += _varint(start - previous) + _varint(end - start)
            previous = end
        return bytes(out)

    @classmethod
    def decode(cls, raw: bytes, offset: int) -> tuple[IdSet, int]:
        result = cls()
        count, offset = _read_varint(raw, offset)
        previous = 0
        for _ in range(count):
            gap, offset = _read_varint(raw, offset)
            length, offset = _read_varint(raw, offset)
            start = previous + gap
            if result.ends and start <= result.ends[-1]:
                raise ValueError("overlapping ranges")
            result.starts.append(start)
            result.ends.append(start + length)
            previous = start + length
        return result, offset


@dataclass
class State:
    cn: int
    ids: IdSet | None
    """The objects the client holds; None: those of the folder at ``cn``."""

    def holds(self, object_id: int, created_cn: int) -> bool:
        if self.ids is None:
            return created_cn <= self.cn
        return object_id in self.ids


def encode_state(txn: Txn, folder_id: int, scope: Scope, state: State) -> str:
    flags = _SCOPES[scope]
    body = _varint(folder_id) + _varint(state.cn)
    if state.ids is not None:
        flags |= _EXPLICIT
        ranges = state.ids.encode()
        if len(ranges) > 256:
            flags |= _COMPRESSED
            ranges = zlib.compress(ranges, 6)
        body += ranges
    raw = struct.pack("<BB", _VERSION, flags) + txn.info.replica.bytes[:4] + body
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_state(txn: Txn, folder_id: int, scope: Scope, text: str | None) -> State:
    """The state a client sent; an empty one is the initial state."""
    if not text:
        return State(0, None)
    if len(text) > MAX_STATE_BYTES:
        raise InvalidArgument("the sync state is too large")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        version, flags = struct.unpack_from("<BB", raw)
        guid = raw[2:6]
        state_folder, offset = _read_varint(raw, 6)
        cn, offset = _read_varint(raw, offset)
        ids = None
        if flags & _EXPLICIT:
            rest = raw[offset:]
            if flags & _COMPRESSED:
                rest = zlib.decompressobj().decompress(rest, MAX_STATE_BYTES)
            ids, offset = IdSet.decode(rest, 0)
            if offset != len(rest):
                raise ValueError("trailing bytes")
        elif offset != len(raw):
            raise ValueError("trailing bytes")
    except (ValueError, struct.error, IndexError, zlib.error):
        raise InvalidArgument("malformed sync state") from None
    if version != _VERSION:
        raise InvalidArgument("malformed sync state")
    if guid != txn.info.replica.bytes[:4]:
        raise InvalidArgument("the sync state belongs to another store")
    if flags & 0x0F != _SCOPES[scope] or state_folder != folder_id:
        raise InvalidArgument("the sync state belongs to another folder or kind of sync")
    if cn > txn.last_cn():
        raise InvalidArgument("the sync state is from the future")
    return State(cn, ids)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(raw: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = raw[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _check_expired(txn: Txn, since: int) -> None:
    if since == 0:
        return
    row = txn.conn.execute("SELECT value FROM meta WHERE key = 'pruned_cn'").fetchone()
    if row is not None and since < int(row[0]):
        raise StateExpired("the sync state is older than the deletions the store remembers")


_ADDED, _CHANGED, _DELETED, _READ = range(4)


def contents(txn: Txn, folder_id: int, state: str | None, max_items: int = MAX_ITEMS,
             scope: Scope = "contents") -> SyncResult:
    """Changes to a folder's messages (normal, associated or both) since ``state``."""
    if scope == "hierarchy":
        raise InvalidArgument("use hierarchy() for folder changes")
    _check_max(max_items)
    folders.require(txn, folder_id)
    old = decode_state(txn, folder_id, scope, state)
    _check_expired(txn, old.cn)
    assoc = {"contents": " AND associated = 0", "associated": " AND associated = 1",
             "all": ""}[scope]
    columns = ("SELECT max(change_number, read_cn), 0, message_id, change_number, created_cn, "
               "is_read, uid FROM messages ")
    if old.cn == 0:
        changed = f"{columns}WHERE folder_id = :f{assoc} "
    else:
        # Each condition through its own index: with "change_number > :c OR read_cn > :c"
        # SQLite scans the whole table (1 ms at 10,000 messages, for any small change).
        changed = (f"{columns}INDEXED BY messages_folder_cn WHERE folder_id = :f{assoc} "
                   "AND change_number > :c UNION "
                   f"{columns}INDEXED BY messages_folder_read_cn WHERE folder_id = :f{assoc} "
                   "AND read_cn > :c ")
    rows = txn.conn.execute(
        changed +
        "UNION ALL SELECT change_number, 1, object_id, change_number, created_cn, 0, uid "
        f"FROM tombstones WHERE folder_id = :f AND is_folder = 0{assoc} AND change_number > :c "
        "ORDER BY 1", {"f": folder_id, "c": old.cn})
    return _collect(txn, folder_id, scope, old, rows, max_items, _members_contents(assoc))


def hierarchy(txn: Txn, folder_id: int, state: str | None,
              max_items: int = MAX_ITEMS) -> SyncResult:
    """Changes to the folders below ``folder_id`` (the whole subtree) since ``state``."""
    _check_max(max_items)
    folders.require(txn, folder_id)
    old = decode_state(txn, folder_id, "hierarchy", state)
    _check_expired(txn, old.cn)
    scope_ids = folders.descendants(txn, folder_id)
    rows = txn.conn.execute(
        "SELECT change_number, 0, folder_id, change_number, created_cn, 0, NULL FROM folders "
        "WHERE folder_id IN (SELECT value FROM json_each(:scope)) AND change_number > :c "
        "UNION ALL SELECT change_number, 1, object_id, change_number, created_cn, 0, NULL "
        "FROM tombstones WHERE is_folder = 1 AND change_number > :c ORDER BY 1",
        {"c": old.cn, "scope": json.dumps(scope_ids)})
    result = _collect(txn, folder_id, "hierarchy", old, rows, max_items,
                      lambda t, f, c: {fid for fid in scope_ids
                                       if _folder_created(t, fid) <= c} | _gone_folders(t, c))
    depth = {fid: i for i, fid in enumerate(scope_ids)}
    result.added.sort(key=lambda item: depth.get(item.id, 0))  # parents before children
    return result


def _folder_created(txn: Txn, folder_id: int) -> int:
    return int(txn.conn.execute("SELECT created_cn FROM folders WHERE folder_id = ?",
                                (folder_id,)).fetchone()[0])


def _gone_folders(txn: Txn, cn: int) -> set[int]:
    return {row[0] for row in txn.conn.execute(
        "SELECT object_id FROM tombstones WHERE is_folder = 1 AND change_number > ? "
        "AND created_cn <= ?", (cn, cn))}


def _members_contents(assoc: str):  # type: ignore[no-untyped-def]
    def members(txn: Txn, folder_id: int, cn: int) -> set[int]:
        """The ids the folder held at ``cn`` (the implicit set of a complete state)."""
        now = txn.conn.execute(f"SELECT message_id FROM messages WHERE folder_id = ?{assoc} "
                               "AND created_cn <= ?", (folder_id, cn))
        gone = txn.conn.execute(
            f"SELECT object_id FROM tombstones WHERE folder_id = ? AND is_folder = 0{assoc} "
            "AND change_number > ? AND created_cn <= ?", (folder_id, cn, cn))
        return {row[0] for row in now} | {row[0] for row in gone}
    return members


def _check_max(max_items: int) -> None:
    if not 1 <= max_items <= MAX_ITEMS:
        raise InvalidArgument(f"max_items is 1 to {MAX_ITEMS}")


def _collect(txn: Txn, folder_id: int, scope: Scope, old: State,
             rows: Iterable[tuple[int, ...]], max_items: int, members) -> SyncResult:  # type: ignore[no-untyped-def]
    result = SyncResult()
    taken: list[tuple[int, int, SyncItem]] = []
    for pos, is_tombstone, object_id, cn, created_cn, is_read, uid in rows:
        held = old.holds(object_id, created_cn)
        if is_tombstone:
            if not held:
                continue  # created and deleted since the state: never seen
            kind = _DELETED
        elif not held:
            kind = _ADDED
        elif cn > old.cn:
            kind = _CHANGED
        else:
            kind = _READ
        if len(taken) == max_items:
            result.more = True
            break
        taken.append((pos, kind, SyncItem(object_id, cn, bool(is_read), uid)))
    buckets = (result.added, result.changed, result.deleted, result.read_changed)
    for _, kind, item in taken:
        buckets[kind].append(item)
    if not result.more:
        result.cn = txn.last_cn()
        new = State(result.cn, None)
    else:
        result.cn = taken[-1][0]
        holding = set(old.ids) if old.ids is not None else members(txn, folder_id, old.cn)
        holding.update(item.id for item in result.added)
        holding.difference_update(item.id for item in result.deleted)
        new = State(result.cn, IdSet(holding))
    result.state = encode_state(txn, folder_id, scope, new)
    return result


def prune_tombstones(txn: Txn, older_than_seconds: int) -> int:
    """Forget deletions older than the horizon; states older than them expire."""
    horizon = int(time.time()) - older_than_seconds
    row = txn.conn.execute("SELECT max(change_number) FROM tombstones WHERE deleted_at < ?",
                           (horizon,)).fetchone()
    if row[0] is None:
        return 0
    count = txn.conn.execute("DELETE FROM tombstones WHERE change_number <= ?",
                             (row[0],)).rowcount
    txn.conn.execute("INSERT INTO meta (key, value) VALUES ('pruned_cn', ?) "
                     "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                     (row[0],))
    return int(count)


async def sync_contents(mbox: object, folder_id: int, state: str | None,
                        max_items: int = MAX_ITEMS, scope: Scope = "contents") -> SyncResult:
    """``contents`` on a mailbox's reader thread."""
    return await mbox.read(contents, folder_id, state, max_items, scope)  # type: ignore[attr-defined]


async def sync_hierarchy(mbox: object, folder_id: int, state: str | None,
                         max_items: int = MAX_ITEMS) -> SyncResult:
    return await mbox.read(hierarchy, folder_id, state, max_items)  # type: ignore[attr-defined]
