"""One unit of work on one store: its connection, counters, property rows and events.

Every store operation is a plain function taking a :class:`Txn` first; the
mailbox runs it on the store's writer thread inside ``BEGIN IMMEDIATE`` (or on
a reader thread, read-only) and commits, publishes the collected events and
unlinks dropped blob files only after the commit.

Property rows of the four object kinds share one layout (``folder_props``,
``message_props``, ``recipient_props``, ``attachment_props``); the helpers
here read and write them, resolving named properties and moving large values
into the blob store.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.events import StoreEvent
from gateway.store import proptypes as pt
from gateway.store import values
from gateway.store.blobs import BlobStore
from gateway.store.errors import InvalidArgument, InvalidValue, NotFound, TooBig
from gateway.store.named import NamedProp

PropKey = int | NamedProp
"""A property tag, or a named property resolved per store."""

OWNERS = {
    "folder_props": "folder_id",
    "message_props": "message_id",
    "recipient_props": "recipient_id",
    "attachment_props": "attach_id",
}


@dataclass(frozen=True)
class Limits:
    """What one object may hold; breaking a limit is refused before anything is written."""

    max_value_bytes: int = 64 * 1024 * 1024
    max_properties: int = 4096
    max_multi_values: int = 8192
    max_message_bytes: int = 128 * 1024 * 1024
    max_restriction_depth: int = 32
    value_inline_bytes: int = 16 * 1024
    """Strings and binaries larger than this go to the blob store."""


@dataclass
class StoreInfo:
    """What a store says about itself (the ``meta`` table), read once when opened."""

    key: str
    """The owner address (private) or ``public:<domain>``."""
    kind: str
    """``"private"`` or ``"public"``."""
    replica: uuid.UUID
    """The store's replica GUID: the namespace of its XIDs."""
    provider: uuid.UUID
    """The mailbox GUID: the provider UID of its entry ids."""
    language: str
    path: Path

    @property
    def public(self) -> bool:
        return self.kind == "public"


@dataclass
class Txn:
    """One transaction (or read snapshot) on one store."""

    conn: sqlite3.Connection
    info: StoreInfo
    blobs: BlobStore
    limits: Limits
    named: dict[Any, int]
    """The store's named-property cache, shared by its threads: NamedProp key → id, and
    id → NamedProp. Entries made by this transaction reach it only at commit."""
    writable: bool = False
    events: list[StoreEvent] = field(default_factory=list)
    doomed_files: list[Path] = field(default_factory=list)
    touched_folders: set[int] = field(default_factory=set)
    _new_named: dict[Any, int] = field(default_factory=dict)
    _counters: dict[str, int] = field(default_factory=dict)
    _size_delta: int = 0

    # -- counters ---------------------------------------------------------------------
    def _counter(self, key: str) -> int:
        if key not in self._counters:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            self._counters[key] = int(row[0])
        return self._counters[key]

    def next_cn(self) -> int:
        """A new change number; each write of each object takes its own."""
        self._require_write()
        value = self._counter("last_cn") + 1
        self._counters["last_cn"] = value
        return value

    def next_gc(self) -> int:
        """A new global counter for a folder or message id."""
        self._require_write()
        value = self._counter("next_gc")
        self._counters["next_gc"] = value + 1
        return value

    def next_uidvalidity(self) -> int:
        value = max(int(time.time()) & 0x7FFFFFFF, self._counter("last_uidvalidity") + 1)
        self._counters["last_uidvalidity"] = value
        return value

    def last_cn(self) -> int:
        return self._counter("last_cn")

    def add_size(self, delta: int) -> None:
        self._size_delta += delta

    def finish(self) -> None:
        """Write the counters back; called just before COMMIT."""
        for key, value in self._counters.items():
            self.conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
        if self._size_delta:
            self.conn.execute("UPDATE meta SET value = value + ? WHERE key = 'total_size'",
                              (self._size_delta,))

    def committed(self) -> None:
        """The transaction is durable: publish the named-property mappings it made."""
        self.named.update(self._new_named)

    def _require_write(self) -> None:
        if not self.writable:
            raise RuntimeError("a write inside a read-only store operation")

    def event(self, kind: str, folder_id: int | None = None, object_id: int | None = None,
              change_number: int | None = None, **data: Any) -> None:
        self.events.append(StoreEvent(self.info.key, kind, folder_id, object_id,
                                      change_number, data))

    # -- named properties ----------------------------------------------------------------
    def resolve(self, key: PropKey, create: bool = False) -> int | None:
        """The tag of ``key``; for a named property the store's id (created when asked)."""
        if isinstance(key, int):
            if not 0 <= key <= 0xFFFFFFFF:
                raise InvalidArgument(f"0x{key:X} is not a property tag")
            return key
        ident = (key.propset, key.key)
        propid = self.named.get(ident) or self._new_named.get(ident)
        if propid is None:
            propid = self._lookup_named(key)
        if propid is None:
            if not create:
                return None
            propid = self._create_named(key)
        return pt.prop_tag(propid, key.type)

    def _lookup_named(self, key: NamedProp) -> int | None:
        column = "lid" if isinstance(key.key, int) else "name"
        row = self.conn.execute(
            f"SELECT propid FROM named_props WHERE guid = ? AND {column} = ?",
            (key.propset.bytes_le, key.key)).fetchone()
        if row is None:
            return None
        self.named[(key.propset, key.key)] = row[0]
        return int(row[0])

    def _create_named(self, key: NamedProp) -> int:
        self._require_write()
        if isinstance(key.key, str) and not 0 < len(key.key) <= 255:
            raise InvalidArgument("a property name is 1 to 255 characters")
        row = self.conn.execute("SELECT max(propid) FROM named_props").fetchone()
        propid = max(pt.NAMED_MIN, (row[0] or 0) + 1)
        if propid > pt.NAMED_MAX:
            raise TooBig("the store has no named-property ids left")
        lid, name = (key.key, None) if isinstance(key.key, int) else (None, key.key)
        self.conn.execute("INSERT INTO named_props (propid, guid, lid, name) VALUES (?, ?, ?, ?)",
                          (propid, key.propset.bytes_le, lid, name))
        self._new_named[(key.propset, key.key)] = propid
        return propid

    def named_of(self, propid: int) -> NamedProp | None:
        """The name behind a store's named-property id (type left as PT_UNSPECIFIED)."""
        row = self.conn.execute("SELECT guid, lid, name FROM named_props WHERE propid = ?",
                                (propid,)).fetchone()
        if row is None:
            return None
        return NamedProp(uuid.UUID(bytes_le=row[0]), row[1] if row[1] is not None else row[2],
                         pt.PT_UNSPECIFIED)

    # -- property rows -------------------------------------------------------------------
    def write_props(self, table: str, owner: int, props: Mapping[PropKey, Any]) -> None:
        """Set properties (``None`` as a value deletes that property)."""
        self._require_write()
        owner_column = OWNERS[table]
        for key, value in props.items():
            tag = self.resolve(key, create=value is not None)
            if tag is None:
                continue
            tag = pt.normal_tag(tag)
            if value is None:
                self._delete_row(table, owner_column, owner, tag)
                continue
            if pt.prop_type(tag) not in pt.STORABLE_TYPES:
                raise InvalidValue(tag, f"type 0x{pt.prop_type(tag):04X} cannot be stored")
            value = values.check(tag, value)
            if pt.is_multi(tag) and len(value) > self.limits.max_multi_values:
                raise InvalidValue(tag, f"more than {self.limits.max_multi_values} values")
            sql_value = values.to_sql(tag, value)
            size = values.stored_size(sql_value)
            if size > self.limits.max_value_bytes:
                raise InvalidValue(tag, f"{size} bytes, more than the limit of "
                                        f"{self.limits.max_value_bytes}")
            self._delete_row(table, owner_column, owner, tag)
            if isinstance(sql_value, bytes | str) and size > self.limits.value_inline_bytes:
                data = sql_value.encode("utf-8") if isinstance(sql_value, str) else sql_value
                digest = self.blobs.put(self.conn, data)
                self.conn.execute(
                    f"INSERT INTO {table} ({owner_column}, tag, value, blob, size) "
                    "VALUES (?, ?, NULL, ?, ?)", (owner, tag, digest, size))
            else:
                self.conn.execute(
                    f"INSERT INTO {table} ({owner_column}, tag, value, size) VALUES (?, ?, ?, ?)",
                    (owner, tag, sql_value, size))
        count = self.conn.execute(f"SELECT count(*) FROM {table} WHERE {owner_column} = ?",
                                  (owner,)).fetchone()[0]
        if count > self.limits.max_properties:
            raise TooBig(f"more than {self.limits.max_properties} properties on one object")

    def write_blob_prop(self, table: str, owner: int, tag: int, digest: str, size: int) -> None:
        """Point a binary property at a blob already stored (streamed attachment data)."""
        owner_column = OWNERS[table]
        self._delete_row(table, owner_column, owner, tag)
        self.conn.execute(f"INSERT INTO {table} ({owner_column}, tag, value, blob, size) "
                          "VALUES (?, ?, NULL, ?, ?)", (owner, tag, digest, size))

    def _delete_row(self, table: str, owner_column: str, owner: int, tag: int) -> None:
        row = self.conn.execute(
            f"DELETE FROM {table} WHERE {owner_column} = ? AND tag = ? RETURNING blob",
            (owner, tag)).fetchone()
        if row is not None and row[0] is not None:
            self.blobs.release(self.conn, row[0], self.doomed_files)

    def delete_all_props(self, table: str, owner: int) -> None:
        owner_column = OWNERS[table]
        for (digest,) in self.conn.execute(
                f"DELETE FROM {table} WHERE {owner_column} = ? RETURNING blob",
                (owner,)).fetchall():
            if digest is not None:
                self.blobs.release(self.conn, digest, self.doomed_files)

    def copy_props(self, table: str, source: int, target: int) -> None:
        """Copy every property row of one object to another (blobs gain a reference)."""
        owner_column = OWNERS[table]
        self.conn.execute(
            f"INSERT INTO {table} ({owner_column}, tag, value, blob, size) "
            f"SELECT ?, tag, value, blob, size FROM {table} WHERE {owner_column} = ?",
            (target, source))
        for (digest,) in self.conn.execute(
                f"SELECT blob FROM {table} WHERE {owner_column} = ? AND blob IS NOT NULL",
                (target,)).fetchall():
            self.conn.execute("UPDATE blobs SET refcount = refcount + 1 WHERE hash = ?",
                              (digest,))

    def read_props(self, table: str, owner: int,
                   keys: Iterable[PropKey] | None = None) -> dict[PropKey, Any]:
        """Stored properties of one object; all of them, or those of ``keys`` that exist.

        Asked for by name, a named property comes back under the same key; listed
        whole, it comes back under its tag. A ``PT_UNSPECIFIED`` tag matches any type.
        """
        owner_column = OWNERS[table]
        if keys is None:
            rows = self.conn.execute(
                f"SELECT tag, value, blob FROM {table} WHERE {owner_column} = ?",
                (owner,)).fetchall()
            return {tag: self._row_value(tag, value, blob) for tag, value, blob in rows}
        out: dict[PropKey, Any] = {}
        for key in keys:
            tag = self.resolve(key)
            if tag is None:
                continue
            tag = pt.normal_tag(tag)
            if pt.prop_type(tag) == pt.PT_UNSPECIFIED:
                row = self.conn.execute(
                    f"SELECT tag, value, blob FROM {table} WHERE {owner_column} = ? "
                    "AND tag >> 16 = ? LIMIT 1", (owner, pt.prop_id(tag))).fetchone()
            else:
                row = self.conn.execute(
                    f"SELECT tag, value, blob FROM {table} WHERE {owner_column} = ? AND tag = ?",
                    (owner, tag)).fetchone()
            if row is not None:
                out[key] = self._row_value(*row)
        return out

    def _row_value(self, tag: int, value: Any, blob: str | None) -> Any:
        if blob is not None:
            raw = self.blobs.get(self.conn, blob)
            kind = pt.prop_type(tag)
            value = raw.decode("utf-8") if kind == pt.PT_UNICODE else raw
        return values.from_sql(tag, value)

    def props_size(self, table: str, owner: int) -> int:
        owner_column = OWNERS[table]
        row = self.conn.execute(f"SELECT total(size) FROM {table} WHERE {owner_column} = ?",
                                (owner,)).fetchone()
        return int(row[0])

    def require(self, sql: str, args: tuple[Any, ...], what: str) -> tuple[Any, ...]:
        row = self.conn.execute(sql, args).fetchone()
        if row is None:
            raise NotFound(f"{what} does not exist")
        return tuple(row)
