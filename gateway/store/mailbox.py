"""One open mailbox store: its SQLite database, its threads and its async API.

Writes run one at a time on the store's own writer thread inside
``BEGIN IMMEDIATE`` (SQLite's write lock also serialises other processes),
with ``synchronous=FULL`` so a write is durable when it returns. Reads run on
a shared pool of reader threads, each borrowing one of the store's read
connections; WAL lets them proceed while a write is in flight. Nothing here
blocks the event loop, and a slow store only occupies its own writer thread.

Events collected by a write are published after its commit, so a subscriber
woken by one always finds the change.

The database file itself (making one, connection settings) is
:mod:`gateway.store.database`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from gateway.events import StoreEvent
from gateway.store import computed, folders, messages, schema
from gateway.store.blobs import BlobStore
from gateway.store.database import DB_NAME, connect
from gateway.store.database import create_database as create_database
from gateway.store.errors import CorruptStore, NotFound, QuotaExceeded
from gateway.store.objects import NewAttachment, NewMessage
from gateway.store.txn import Limits, PropKey, StoreInfo, Txn

log = logging.getLogger("gateway.store")
LOCK_NAME = "write.lock"
READERS_PER_STORE = 4

P = ParamSpec("P")
R = TypeVar("R")
Publisher = Callable[[list[StoreEvent]], Awaitable[None]]


class Owner:
    """The store's owner as the reader of a property bag (the default)."""


OWNER = Owner()


def _overlay(props: dict[PropKey, Any], access: dict[int, int],
             keys: Iterable[PropKey] | None) -> dict[PropKey, Any]:
    wanted = None if keys is None else set(keys)
    for tag, value in access.items():
        if wanted is None or tag in wanted:
            props[tag] = value
    return props


def _props_for(txn: Txn, kind: str, object_id: int, keys: Iterable[PropKey] | None,
               user: str | Owner | None) -> dict[PropKey, Any]:
    """A folder's or message's properties, access properties as ``user`` holds them."""
    from gateway.store import permissions

    keys = None if keys is None else list(keys)
    read, access = ((computed.folder_props, permissions.folder_access_props)
                    if kind == "folder" else
                    (computed.message_props, permissions.message_access_props))
    props = read(txn, object_id, keys)
    if isinstance(user, Owner):
        return props
    return _overlay(props, access(txn, user, object_id), keys)


class Mailbox:
    """An open store. Get one from :class:`gateway.store.Store`; share it between sessions."""

    def __init__(self, path: Path, info: StoreInfo, limits: Limits, reader_pool: Executor,
                 publish: Publisher | None = None):
        self.path = path
        self.info = info
        self.limits = limits
        self.blobs = BlobStore(path)
        self.storage_limit: int | None = None
        """Bytes the store may hold (from the directory); writes that grow it beyond fail."""
        self._named: dict[Any, int] = {}
        self._publish = publish
        self._reader_pool = reader_pool
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix=f"store-w:{info.key}")
        self._writer: sqlite3.Connection | None = None
        self._lock_fd = -1
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._reader_count = 0
        self._reader_lock = threading.Lock()
        self._closed = False

    @property
    def key(self) -> str:
        return self.info.key

    @classmethod
    async def open(cls, path: Path, limits: Limits, reader_pool: Executor,
                   publish: Publisher | None = None) -> Mailbox:
        def load() -> StoreInfo:
            db = path / DB_NAME
            if not db.exists():
                raise NotFound(f"no store at {path}")
            conn = connect(db)
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode != "wal":
                    raise CorruptStore(f"{db}: cannot switch to WAL (journal mode {mode})")
                schema.upgrade(conn, str(db))
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            finally:
                conn.close()
            try:
                return StoreInfo(key=meta["key"], kind=meta["kind"],
                                 replica=uuid.UUID(bytes_le=meta["replica_guid"]),
                                 provider=uuid.UUID(bytes_le=meta["mailbox_guid"]),
                                 language=meta["language"], path=path)
            except KeyError as exc:
                raise CorruptStore(f"{db}: meta lacks {exc}") from None

        info = await asyncio.get_running_loop().run_in_executor(reader_pool, load)
        return cls(path, info, limits, reader_pool, publish)

    async def release(self) -> None:
        """Close the store's connections; it stays usable and reconnects when used."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer_pool, self._close_writer)
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                break

    async def close(self) -> None:
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer_pool, self._close_writer)
        self._writer_pool.shutdown(wait=False)
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                break

    def _close_writer(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(sqlite3.Error):
                self._writer.execute("PRAGMA optimize")
            self._writer.close()
            self._writer = None
            os.close(self._lock_fd)

    # -- running operations ---------------------------------------------------------------
    async def write(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run ``fn(txn, *args)`` as one durable transaction; publish its events."""
        if self._closed:
            raise RuntimeError(f"store {self.key} is closed")
        loop = asyncio.get_running_loop()
        result, events = await loop.run_in_executor(
            self._writer_pool, lambda: self._run_write(fn, args, kwargs))
        if events and self._publish is not None:
            try:
                await self._publish(events)
            except Exception:  # the write stands; only its notification was lost
                log.exception("store %s: publishing %d events failed", self.key, len(events))
        return result

    def _run_write(self, fn: Callable[..., R], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> tuple[R, list[StoreEvent]]:
        if self._writer is None:
            self._writer = connect(self.path / DB_NAME)
            self._lock_fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        # SQLite's own busy handler polls with sleeps of up to 100 ms, so a process
        # writing in a loop starves the others sharing the store; a blocking flock
        # queues them in the kernel and wakes the next one at once.
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            return self._locked_write(self._writer, fn, args, kwargs)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _locked_write(self, conn: sqlite3.Connection, fn: Callable[..., R],
                      args: tuple[Any, ...], kwargs: dict[str, Any]
                      ) -> tuple[R, list[StoreEvent]]:
        conn.execute("BEGIN IMMEDIATE")
        self.blobs.written.clear()
        txn = Txn(conn, self.info, self.blobs, self.limits, self._named, writable=True)
        try:
            result = fn(txn, *args, **kwargs)
            self._count_events(txn)
            self._check_quota(txn)
            txn.finish()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if self.blobs.written:  # files of the failed write nobody refers to
                self._unlink_unreferenced(list(self.blobs.written))
            raise
        txn.committed()
        if txn.doomed_files:
            self._unlink_unreferenced(txn.doomed_files)
        return result, txn.events

    def _check_quota(self, txn: Txn) -> None:
        delta = txn._size_delta
        if delta <= 0 or self.storage_limit is None:
            return
        total = int(txn.conn.execute("SELECT value FROM meta WHERE key = 'total_size'")
                    .fetchone()[0])
        if total + delta > self.storage_limit:
            raise QuotaExceeded("storage", f"the mailbox {self.key} is full "
                                           f"({total + delta} of {self.storage_limit} bytes)")

    def _count_events(self, txn: Txn) -> None:
        for fid in sorted(txn.touched_folders):
            if fid is None or not folders.exists(txn, fid):
                continue
            count, unread, fai = computed._folder_counts(txn, fid)
            txn.event("folder_counts", fid, None, None, content_count=count,
                      unread_count=unread, associated_count=fai)

    def _unlink_unreferenced(self, paths: list[Path]) -> None:
        # Under the write lock nobody can re-add a reference while we look.
        conn = self._writer
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            for path in paths:
                digest = path.name.removesuffix(".zst")
                if conn.execute("SELECT 1 FROM blobs WHERE hash = ?", (digest,)).fetchone():
                    continue
                path.unlink(missing_ok=True)
        finally:
            conn.execute("COMMIT")

    async def read(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run ``fn(txn, *args)`` on a consistent snapshot, on a reader thread."""
        if self._closed:
            raise RuntimeError(f"store {self.key} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_pool,
                                          lambda: self._run_read(fn, args, kwargs))

    def _run_read(self, fn: Callable[..., R], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> R:
        conn = self._borrow()
        try:
            conn.execute("BEGIN")
            try:
                txn = Txn(conn, self.info, self.blobs, self.limits, self._named)
                return fn(txn, *args, **kwargs)
            finally:
                conn.execute("COMMIT")
        finally:
            self._readers.put(conn)

    def _borrow(self) -> sqlite3.Connection:
        try:
            return self._readers.get_nowait()
        except queue.Empty:
            pass
        with self._reader_lock:
            self._reader_count += 1
        conn = connect(self.path / DB_NAME)
        conn.execute("PRAGMA query_only = ON")
        return conn

    async def stream(self, fn: Callable[..., Iterable[bytes]], *args: Any) -> AsyncIterator[bytes]:
        """Chunks of a large value produced by ``fn(txn, *args)`` on a reader thread.

        The iterator is advanced on the reader pool one chunk at a time, so a
        large blob is never held whole and the event loop never reads a file.
        """
        loop = asyncio.get_running_loop()
        conn = await loop.run_in_executor(self._reader_pool, self._borrow)
        try:
            txn = Txn(conn, self.info, self.blobs, self.limits, self._named)
            iterator = iter(await loop.run_in_executor(self._reader_pool,
                                                       lambda: fn(txn, *args)))
            sentinel = object()
            while True:
                chunk = await loop.run_in_executor(self._reader_pool, next, iterator, sentinel)
                if chunk is sentinel:
                    break
                yield chunk  # type: ignore[misc]
        finally:
            self._readers.put(conn)

    # -- folders ------------------------------------------------------------------------------
    async def create_folder(self, parent_id: int, name: str, container_class: str | None = None,
                            props: Mapping[PropKey, Any] | None = None, *,
                            folder_type: int = 1, open_existing: bool = False) -> int:
        return await self.write(folders.create, parent_id, name, container_class, props,
                                folder_type, None, open_existing)

    async def folder(self, folder_id: int, keys: Iterable[PropKey] | None = None, *,
                     user: str | Owner | None = OWNER) -> dict[PropKey, Any]:
        """A folder's properties, stored and computed; the access properties
        (PidTagRights, PidTagAccess, PidTagAccessLevel) are those of ``user``
        (``None``: anonymous), the owner's by default."""
        return await self.read(_props_for, "folder", folder_id, keys, user)

    async def set_folder_props(self, folder_id: int, props: Mapping[PropKey, Any]) -> int:
        return await self.write(folders.set_props, folder_id, props)

    async def subfolders(self, folder_id: int) -> list[int]:
        return await self.read(folders.children, folder_id)

    async def find_folder(self, parent_id: int, name: str) -> int | None:
        return await self.read(folders.find_child, parent_id, name)

    async def move_folder(self, folder_id: int, new_parent: int,
                          new_name: str | None = None) -> None:
        await self.write(folders.move, folder_id, new_parent, new_name)

    async def copy_folder(self, folder_id: int, new_parent: int, new_name: str | None = None,
                          recursive: bool = True) -> int:
        return await self.write(folders.copy, folder_id, new_parent, new_name, recursive)

    async def delete_folder(self, folder_id: int, *, hard: bool = False) -> None:
        await self.write(folders.delete, folder_id, hard)

    async def empty_folder(self, folder_id: int, *, associated: bool = False,
                           subfolders: bool = True, hard: bool = True) -> int:
        return await self.write(folders.empty, folder_id, associated, subfolders, hard)

    # -- messages -----------------------------------------------------------------------------
    async def create_message(self, folder_id: int, message: NewMessage, *,
                             new_mail: bool = False) -> int:
        """Store a whole message; ``new_mail`` marks a delivery (a ``new_mail`` event)."""
        kind = "new_mail" if new_mail else "object_created"
        return await self.write(messages.create, folder_id, message, None, 0, kind)

    async def create_messages(self, folder_id: int, batch: list[NewMessage]) -> list[int]:
        """Store several messages in one transaction (imports)."""
        def run(txn: Txn) -> list[int]:
            return [messages.create(txn, folder_id, m) for m in batch]
        return await self.write(run)

    async def replace_message(self, message_id: int, message: NewMessage,
                              keep: Iterable[PropKey] = ()) -> int:
        """Replace a message's whole content, keeping its id (see :func:`messages.replace`)."""
        return await self.write(messages.replace, message_id, message, tuple(keep))

    async def message(self, message_id: int, keys: Iterable[PropKey] | None = None, *,
                      user: str | Owner | None = OWNER) -> dict[PropKey, Any]:
        """A message's properties, stored and computed; access properties as for
        :meth:`folder`."""
        return await self.read(_props_for, "message", message_id, keys, user)

    async def set_message_props(self, message_id: int, props: Mapping[PropKey, Any]) -> int:
        return await self.write(messages.set_props, message_id, props)

    async def recipients(self, message_id: int) -> list[dict[PropKey, Any]]:
        return await self.read(messages.recipients, message_id)

    async def set_recipients(self, message_id: int, rows: list[Mapping[PropKey, Any]]) -> int:
        return await self.write(messages.set_recipients, message_id, rows)

    async def attachments(self, message_id: int) -> list[dict[PropKey, Any]]:
        return await self.read(messages.attachments, message_id)

    async def attachment(self, message_id: int, num: int,
                         keys: Iterable[PropKey] | None = None) -> dict[PropKey, Any]:
        return await self.read(messages.attachment_props, message_id, num, keys)

    async def add_attachment(self, message_id: int, attachment: NewAttachment) -> int:
        return await self.write(messages.add_attachment, message_id, attachment)

    async def delete_attachment(self, message_id: int, num: int) -> None:
        await self.write(messages.delete_attachment, message_id, num)

    async def embedded_message(self, message_id: int, num: int) -> int:
        return await self.read(messages.embedded, message_id, num)

    def attachment_data(self, message_id: int, num: int) -> AsyncIterator[bytes]:
        """An attachment's content in chunks, streamed from its blob."""
        def chunks(txn: Txn) -> Iterable[bytes]:
            digest, inline = messages.attachment_data_ref(txn, message_id, num)
            if digest is None:
                return [inline or b""]
            return txn.blobs.iter_chunks(txn.conn, digest)
        return self.stream(chunks)

    def original_message(self, message_id: int) -> AsyncIterator[bytes]:
        """The Internet message exactly as it arrived, in chunks."""
        def chunks(txn: Txn) -> Iterable[bytes]:
            digest, _ = messages.mime_ref(txn, message_id)
            if digest is None:
                raise NotFound(f"message {message_id} did not arrive as Internet mail")
            return txn.blobs.iter_chunks(txn.conn, digest)
        return self.stream(chunks)

    async def delete_messages(self, message_ids: Iterable[int], *, hard: bool = False) -> None:
        await self.write(messages.delete, list(message_ids), hard)

    async def move_messages(self, message_ids: Iterable[int], dest_folder: int) -> dict[int, int]:
        return await self.write(messages.move, list(message_ids), dest_folder)

    async def copy_messages(self, message_ids: Iterable[int], dest_folder: int) -> dict[int, int]:
        return await self.write(messages.copy, list(message_ids), dest_folder)

    async def set_read(self, message_ids: Iterable[int], read: bool = True) -> list[int]:
        return await self.write(messages.set_read, list(message_ids), read)

    async def total_size(self) -> int:
        def run(txn: Txn) -> int:
            return int(txn.conn.execute("SELECT value FROM meta WHERE key = 'total_size'")
                       .fetchone()[0])
        return await self.read(run)

    async def last_change_number(self) -> int:
        return await self.read(lambda txn: txn.last_cn())
