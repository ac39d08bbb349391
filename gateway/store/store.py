"""The stores of one worker: where each lives, opening, creating and closing them.

A private store is keyed by its owner's primary address and lives in
``data_dir/mailboxes/<domain>/<local part>/``; the public-folder store of a
domain is keyed ``public:<domain>`` and lives in ``data_dir/public/<domain>/``.
Open stores are shared by every session of the worker and closed when the
least recently used ones exceed ``[store] open_stores``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from gateway.events import StoreEvent
from gateway.store.errors import InvalidArgument, NotFound
from gateway.store.mailbox import DB_NAME, Mailbox, Publisher, create_database
from gateway.store.settings import StoreSection
from gateway.store.txn import Limits, Txn

PUBLIC_PREFIX = "public:"
PRUNE_INTERVAL = 86_400


def limits_of(section: StoreSection) -> Limits:
    return Limits(max_value_bytes=section.max_value_bytes,
                  max_properties=section.max_properties,
                  max_message_bytes=section.max_message_bytes,
                  max_restriction_depth=section.max_restriction_depth,
                  value_inline_bytes=section.value_inline_bytes)


def normal_key(key: str) -> str:
    """A store key as stored: the address lowercased; ``public:<domain>`` likewise."""
    key = key.strip().lower()
    if key.startswith(PUBLIC_PREFIX):
        domain = key[len(PUBLIC_PREFIX):]
        if not domain or "@" in domain:
            raise InvalidArgument(f"{key!r} is not public:<domain>")
        return key
    local, at, domain = key.rpartition("@")
    if not at or not local or not domain:
        raise InvalidArgument(f"{key!r} is not an e-mail address")
    return key


def _segment(text: str) -> str:
    safe = quote(text, safe="@._+-=")
    if safe in (".", "..") or not safe:
        safe = quote(safe, safe="")
    return safe


def store_path(data_dir: Path, key: str) -> Path:
    """Where the store of ``key`` lives (nothing is created)."""
    key = normal_key(key)
    if key.startswith(PUBLIC_PREFIX):
        return data_dir / "public" / _segment(key[len(PUBLIC_PREFIX):])
    local, _, domain = key.rpartition("@")
    return data_dir / "mailboxes" / _segment(domain) / _segment(local)


class Store:
    """Every store of this worker; ``host.store``."""

    def __init__(self, data_dir: Path, section: StoreSection, publish: Publisher | None = None):
        self.data_dir = data_dir
        self.section = section
        self.limits = limits_of(section)
        self._publish = publish
        self._pool = ThreadPoolExecutor(section.reader_threads, thread_name_prefix="store-r")
        self._open: OrderedDict[str, Mailbox] = OrderedDict()
        self._opening: dict[str, asyncio.Future[Mailbox]] = {}
        self.on_open: Callable[[Mailbox], Awaitable[None]] | None = None
        """Set by the host: called with each store as it opens (quotas from the directory)."""

    def path(self, key: str) -> Path:
        return store_path(self.data_dir, key)

    def exists(self, key: str) -> bool:
        return (self.path(key) / DB_NAME).exists()

    async def open(self, key: str) -> Mailbox:
        """The open store of ``key``; :class:`NotFound` when it was never created."""
        key = normal_key(key)
        mailbox = self._open.get(key)
        if mailbox is not None:
            self._open.move_to_end(key)
            return mailbox
        pending = self._opening.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Mailbox] = asyncio.get_running_loop().create_future()
        self._opening[key] = future
        try:
            mailbox = await Mailbox.open(self.path(key), self.limits, self._pool, self._publish)
            if mailbox.info.key != key:
                await mailbox.close()
                raise NotFound(f"the store at {self.path(key)} belongs to {mailbox.info.key}")
            if self.on_open is not None:
                await self.on_open(mailbox)
            await self._prune_if_due(mailbox)
            self._open[key] = mailbox
            future.set_result(mailbox)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody else is told
            raise
        finally:
            del self._opening[key]
        await self._evict()
        return mailbox

    async def _prune_if_due(self, mailbox: Mailbox) -> None:
        """Forget deletions older than ``tombstone_days``, at most once a day per store."""
        from gateway.store import sync

        def due(txn: Txn) -> bool:
            row = txn.conn.execute("SELECT value FROM meta WHERE key = 'last_prune'").fetchone()
            return row is None or int(row[0]) < time.time() - PRUNE_INTERVAL

        def prune(txn: Txn) -> int:
            txn.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_prune', ?)",
                             (int(time.time()),))
            return sync.prune_tombstones(txn, self.section.tombstone_days * 86_400)

        if await mailbox.read(due):
            await mailbox.write(prune)

    async def create(self, key: str, language: str | None = None) -> Mailbox:
        """Create and provision the store of ``key`` (its default folders)."""
        from gateway.store.provision import provision

        key = normal_key(key)
        kind = "public" if key.startswith(PUBLIC_PREFIX) else "private"
        path = self.path(key)
        language = language or self.section.language
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, create_database, path, key, kind, language)
        mailbox = await self.open(key)
        await mailbox.write(provision)
        return mailbox

    async def open_or_create(self, key: str, language: str | None = None) -> Mailbox:
        if self.exists(key):
            return await self.open(key)
        with contextlib.suppress(FileExistsError):
            return await self.create(key, language)
        return await self.open(key)

    async def _evict(self) -> None:
        while len(self._open) > self.section.open_stores:
            # Sessions may still hold it: release its connections, keep it usable.
            _, oldest = self._open.popitem(last=False)
            await oldest.release()

    async def close(self) -> None:
        while self._open:
            _, mailbox = self._open.popitem()
            await mailbox.close()
        self._pool.shutdown(wait=True)


def publisher(publish: Callable[[StoreEvent], object]) -> Publisher:
    """Adapt a one-event publish coroutine function (the host notifier's) to the store's."""
    async def run(events: list[StoreEvent]) -> None:
        for event in events:
            await publish(event)  # type: ignore[misc]
    return run
