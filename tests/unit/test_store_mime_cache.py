"""gateway.store.mime_cache: MIME for MAPI-made messages, the structure cache, range reads."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.store import Mailbox, NewAttachment, NewMessage, Store
from gateway.store import tags as T
from gateway.store.mime_cache import crlf_chunks, ensure_mime, iter_range, save_structures
from gateway.store.schema import SCHEMA_VERSION
from gateway.store.special import Private
from gateway.store.txn import Txn

INBOX = int(Private.INBOX)
RAW = b"From: a@example.org\r\nSubject: cached\r\n\r\nbody\r\n"


def _db(mbox: Mailbox) -> sqlite3.Connection:
    return sqlite3.connect(mbox.path / "store.sqlite3")


def _row(digest: str) -> tuple:
    return (digest, 1, 10, False, b"(env)", b"(body)", b"(bs)", b"[]")


async def test_a_version_2_store_gains_the_structure_cache(store: Store) -> None:
    await store.create("old@example.org")
    await store.close()
    path = store.path("old@example.org") / "store.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER mime_structures_gc")
        conn.execute("DROP TABLE mime_structures")
        conn.execute("ALTER TABLE messages DROP COLUMN mime_rendered")
        conn.execute("PRAGMA user_version = 2")
    reopened = Store(store.data_dir, store.section)
    try:
        mbox = await reopened.open("old@example.org")
        mid = await mbox.create_message(INBOX, NewMessage(props={T.PidTagSubject: "x"},
                                                          mime=RAW))
        digest = (await ensure_mime(mbox, [mid]))[mid][0]
        await mbox.write(save_structures, [_row(digest)])
    finally:
        await reopened.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM mime_structures").fetchone()[0] == 1
        triggers = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    assert "mime_structures_gc" in triggers and "mime_rendered" in columns


async def test_cached_structures_go_with_their_blob(mbox: Mailbox) -> None:
    first = await mbox.create_message(INBOX, NewMessage(props={}, mime=RAW))
    second = await mbox.create_message(INBOX, NewMessage(props={}, mime=RAW))
    refs = await ensure_mime(mbox, [first, second])
    assert refs[first] == refs[second] == (refs[first][0], len(RAW))
    await mbox.write(save_structures, [_row(refs[first][0])])
    await mbox.delete_messages([first], hard=True)
    with _db(mbox) as conn:
        assert conn.execute("SELECT count(*) FROM mime_structures").fetchone()[0] == 1
    await mbox.delete_messages([second], hard=True)
    with _db(mbox) as conn:
        assert conn.execute("SELECT count(*) FROM mime_structures").fetchone()[0] == 0
    # a row for a blob that is gone by the time it is saved is dropped
    await mbox.write(save_structures, [_row(refs[first][0])])
    with _db(mbox) as conn:
        assert conn.execute("SELECT count(*) FROM mime_structures").fetchone()[0] == 0


async def test_ensure_mime_renders_mapi_messages_once(mbox: Mailbox) -> None:
    mapi = await mbox.create_message(INBOX, NewMessage(props={
        T.PidTagSubject: "made in Outlook", T.PidTagBody: "text"}))
    mail = await mbox.create_message(INBOX, NewMessage(props={}, mime=RAW))
    results = await asyncio.gather(ensure_mime(mbox, [mapi, mail, 424242]),
                                   ensure_mime(mbox, [mapi]))
    assert set(results[0]) == {mapi, mail} and results[0][mapi] == results[1][mapi]
    digest, size = results[0][mapi]
    with _db(mbox) as conn:
        assert conn.execute("SELECT refcount, size FROM blobs WHERE hash = ?",
                            (digest,)).fetchone() == (1, size)
        assert conn.execute("SELECT mime_blob FROM messages WHERE message_id = ?",
                            (mapi,)).fetchone()[0] == digest
    raw = b"".join([chunk async for chunk in mbox.original_message(mapi)])
    assert len(raw) == size and b"Subject: made in Outlook" in raw


async def test_a_rendering_does_not_count_in_size_or_quota(mbox: Mailbox) -> None:
    from gateway.store.check import check_store

    mapi = await mbox.create_message(INBOX, NewMessage(props={
        T.PidTagSubject: "big attachment", T.PidTagBody: "see attached"}, attachments=[
            NewAttachment({T.PidTagAttachLongFilename: "a.bin", T.PidTagAttachMethod: 1},
                          data=[bytes(range(256)) * 400])]))
    before = (await mbox.total_size(), await mbox.message(mapi, [T.PidTagMessageSize]))
    digest, size = (await ensure_mime(mbox, [mapi]))[mapi]
    assert size > 100_000 * 4 // 3  # base64 makes the rendering the larger
    assert (await mbox.total_size(), await mbox.message(mapi, [T.PidTagMessageSize])) == before
    await mbox.set_message_props(mapi, {T.PidTagSubject: "edited"})  # recomputes the size
    assert abs(await mbox.total_size() - before[0]) < 100  # the subject's bytes only
    copies = await mbox.copy_messages([mapi], INBOX)
    with _db(mbox) as conn:
        assert conn.execute("SELECT mime_rendered, mime_blob FROM messages WHERE "
                            "message_id = ?", (copies[mapi],)).fetchone() == (1, digest)
    problems, _ = await mbox.read(check_store)
    assert problems == []


def _read_range(txn: Txn, digest: str, start: int, end: int, crlf: bool) -> bytes:
    return b"".join(iter_range(txn, digest, start, end, crlf))


async def test_iter_range_reads_inline_and_file_blobs(mbox: Mailbox) -> None:
    import os
    big = b"From: x@y\n\n" + os.urandom(300_000).hex().encode().replace(b"a", b"\n")
    mid = await mbox.create_message(INBOX, NewMessage(props={}, mime=big))
    small = await mbox.create_message(INBOX, NewMessage(props={}, mime=RAW))
    refs = await ensure_mime(mbox, [mid, small])
    served = big.replace(b"\n", b"\r\n")
    for start, end in [(0, 10), (70_000, 200_000), (len(served) - 7, len(served) + 9),
                       (500, 500), (5, 3)]:
        got = await mbox.read(_read_range, refs[mid][0], start, end, True)
        assert got == served[start:end]
    assert await mbox.read(_read_range, refs[small][0], 6, 30, False) == RAW[6:30]


@given(st.binary(max_size=200).map(lambda b: b.replace(b"x", b"\n").replace(b"y", b"\r")),
       st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_crlf_over_chunks_equals_crlf_of_the_whole(data: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    expected = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert b"".join(crlf_chunks(iter(pieces))) == expected


async def test_new_messages_get_their_structure_in_the_same_write(
        mbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.store import mime_cache

    built: list[str] = []

    def builder(raw: bytes, digest: str) -> tuple:
        built.append(digest)
        if b"explode" in raw:
            raise RuntimeError("a broken builder")
        return _row(digest)

    monkeypatch.setattr(mime_cache, "_builder", (1, builder))
    mid = await mbox.create_message(INBOX, NewMessage(props={}, mime=RAW))
    await mbox.create_message(INBOX, NewMessage(props={}, mime=RAW))  # cached already
    broken = await mbox.create_message(INBOX, NewMessage(props={}, mime=RAW + b"explode"))
    digest = (await ensure_mime(mbox, [mid]))[mid][0]
    with _db(mbox) as conn:
        assert conn.execute("SELECT hash FROM mime_structures").fetchall() == [(digest,)]
    assert built[0] == digest and len(built) == 2
    assert (await mbox.message(broken))  # the create itself stood
