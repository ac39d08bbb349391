"""Store schema versions: old stores are upgraded on open, newer ones refused."""

from __future__ import annotations

import sqlite3

import pytest

from gateway.store import Store
from gateway.store.errors import CorruptStore
from gateway.store.schema import SCHEMA_VERSION


def _db(store: Store, key: str) -> str:
    return str(store.path(key) / "store.sqlite3")


async def test_a_version_1_store_is_upgraded_when_opened(store: Store) -> None:
    await store.create("old@example.org")
    await store.close()
    with sqlite3.connect(_db(store, "old@example.org")) as conn:
        conn.execute("DROP INDEX messages_folder_read")
        conn.execute("PRAGMA user_version = 1")
    reopened = Store(store.data_dir, store.section)
    try:
        await reopened.open("old@example.org")
    finally:
        await reopened.close()
    with sqlite3.connect(_db(store, "old@example.org")) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(messages)")}
    assert "messages_folder_read" in indexes


async def test_a_store_from_a_newer_gateway_is_refused(store: Store) -> None:
    await store.create("new@example.org")
    await store.close()
    with sqlite3.connect(_db(store, "new@example.org")) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    reopened = Store(store.data_dir, store.section)
    try:
        with pytest.raises(CorruptStore, match="newer"):
            await reopened.open("new@example.org")
    finally:
        await reopened.close()


async def test_a_version_3_store_gains_folder_counts(store: Store) -> None:
    from gateway.convert import mime_in
    from gateway.store import Private
    from gateway.store import tags as T

    mbox = await store.create("counts@example.org")
    await mbox.create_message(int(Private.INBOX), mime_in.parse(b"Subject: a\r\n\r\nx\r\n"))
    await store.close()
    with sqlite3.connect(_db(store, "counts@example.org")) as conn:
        for trigger in ("insert", "delete", "update"):
            conn.execute(f"DROP TRIGGER messages_count_{trigger}")
        conn.execute("UPDATE folders SET content_count = 0, unread_count = 0")
        conn.execute("PRAGMA user_version = 3")
    reopened = Store(store.data_dir, store.section)
    try:
        mbox = await reopened.open("counts@example.org")
        inbox = await mbox.folder(int(Private.INBOX))
        assert (inbox[T.PidTagContentCount], inbox[T.PidTagContentUnreadCount]) == (1, 1)
        await mbox.create_message(int(Private.INBOX), mime_in.parse(b"Subject: b\r\n\r\n"))
        assert (await mbox.folder(int(Private.INBOX)))[T.PidTagContentCount] == 2
    finally:
        await reopened.close()
