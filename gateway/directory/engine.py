"""Async engines for the directory: embedded SQLite or grommunio's MariaDB.

``[directory] url`` empty means ``sqlite+aiosqlite:///<data_dir>/directory.sqlite3``
(WAL journal, foreign keys enforced on every connection). Otherwise the URL is
used as given; ``mysql+aiomysql://user:password@host/grommunio`` for MariaDB
(``mysql://`` and ``mariadb://`` without a driver are completed with aiomysql,
``sqlite://`` with aiosqlite).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_FILE = "directory.sqlite3"


class DirectoryError(Exception):
    """Something an administrator must fix about the directory (the message says what)."""


def default_url(data_dir: Path) -> URL:
    """The embedded SQLite database under ``data_dir``."""
    return URL.create("sqlite+aiosqlite", database=str(Path(data_dir) / SQLITE_FILE))


def resolve_url(url: str, data_dir: Path) -> URL:
    """``[directory] url`` as a SQLAlchemy URL with an async driver."""
    if not url.strip():
        return default_url(data_dir)
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise DirectoryError("[directory] url is not a SQLAlchemy URL "
                             "(e.g. mysql+aiomysql://user:secret@localhost/grommunio)") from None
    backend = parsed.get_backend_name()
    driver = parsed.get_driver_name()
    if backend in ("mysql", "mariadb"):
        if driver not in ("aiomysql", "asyncmy"):
            parsed = parsed.set(drivername=f"{backend}+aiomysql")
    elif backend == "sqlite":
        if driver != "aiosqlite":
            parsed = parsed.set(drivername="sqlite+aiosqlite")
    else:
        raise DirectoryError(f"[directory] url: unsupported database {backend!r} "
                             "(use mysql+aiomysql:// for MariaDB, or leave empty for SQLite)")
    return parsed


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


def create_engine(url: str, data_dir: Path) -> AsyncEngine:
    """An async engine for ``[directory] url`` (empty: SQLite under ``data_dir``)."""
    resolved = resolve_url(url, data_dir)
    if resolved.get_backend_name() == "sqlite":
        database = resolved.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(resolved)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    query = dict(resolved.query)
    query.setdefault("charset", "utf8mb4")
    return create_async_engine(resolved.set(query=query), pool_pre_ping=True,
                               pool_recycle=3600)
