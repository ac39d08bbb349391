"""A store's SQLite file: making a new, empty one, and connecting to it.

Every connection gets the store's settings: a long busy timeout,
``synchronous=FULL`` (a commit is durable when it returns), no foreign-key
checks, a bounded page cache. :class:`~gateway.store.mailbox.Mailbox` opens its
writer and readers here; :class:`~gateway.store.store.Store` makes new stores
with :func:`create_database` (re-exported by :mod:`gateway.store.mailbox`).
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from pathlib import Path

from gateway.store import schema
from gateway.store.special import FIRST_FREE_GC

DB_NAME = "store.sqlite3"
BUSY_TIMEOUT_MS = 60_000


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the store database at ``path`` with the store's settings."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA cache_size = -8000")
    return conn


def create_database(path: Path, key: str, kind: str, language: str) -> None:
    """Make a new, empty store database (no folders yet) at ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    db = path / DB_NAME
    if db.exists():
        raise FileExistsError(f"{db} already exists")
    temp = path / (DB_NAME + ".new")
    for leftover in (temp, Path(f"{temp}-wal"), Path(f"{temp}-journal")):
        leftover.unlink(missing_ok=True)
    conn = sqlite3.connect(temp, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        schema.create(conn)
        meta = {
            "key": key, "kind": kind, "language": language,
            "replica_guid": uuid.uuid4().bytes_le, "mailbox_guid": uuid.uuid4().bytes_le,
            "last_cn": 0, "next_gc": FIRST_FREE_GC, "last_uidvalidity": 0, "total_size": 0,
            "created": int(time.time()),
        }
        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    os.replace(temp, db)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
