"""Quotas from the directory, their enforcement, and the store's message-size accounting."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from gateway.directory import Directory, admin
from gateway.directory.models import UserProperties
from gateway.store import (
    Mailbox,
    NewAttachment,
    NewMessage,
    Private,
    QuotaExceeded,
    Store,
    messages,
)
from gateway.store import quota as q
from gateway.store import tags as T
from gateway.store.txn import Txn

OWNER = "user@example.org"
INBOX = int(Private.INBOX)
TRASH = int(Private.DELETED_ITEMS)
DRAFTS = int(Private.DRAFTS)


@pytest.fixture
async def directory(tmp_path: Path) -> AsyncIterator[Directory]:
    opened = await Directory.open("", tmp_path / "dir")
    await admin.add_domain(opened.engine, "example.org")
    for address in (OWNER, "free@example.org", "odd@example.org"):
        await admin.add_user(opened.engine, address)
    await admin.add_alias(opened.engine, "alias@example.org", OWNER)
    await _set_props(opened, OWNER, {q.PR_STORAGE_QUOTA_LIMIT: "2048",
                                     q.PR_PROHIBIT_RECEIVE_QUOTA: "1024",
                                     q.PR_PROHIBIT_SEND_QUOTA: "512"})
    await _set_props(opened, "odd@example.org", {q.PR_STORAGE_QUOTA_LIMIT: "0",
                                                 q.PR_PROHIBIT_RECEIVE_QUOTA: "lots",
                                                 q.PR_PROHIBIT_SEND_QUOTA: "-1"})
    yield opened
    await opened.close()


async def _set_props(directory: Directory, address: str, props: dict[int, str]) -> None:
    user = await directory.get_user(address)
    assert user is not None
    async with directory.engine.begin() as conn:
        await conn.execute(insert(UserProperties).values(
            [{"user_id": user.id, "proptag": tag, "order_id": 1, "propval_str": value}
             for tag, value in props.items()]))
    directory.invalidate()


def note(subject: str, body: str = "hello") -> NewMessage:
    return NewMessage(props={T.PidTagMessageClass: "IPM.Note", T.PidTagSubject: subject,
                             T.PidTagBody: body})


# -- reading quotas ------------------------------------------------------------------------------
async def test_quota_tags_are_grommunios() -> None:
    assert (q.PR_STORAGE_QUOTA_LIMIT, q.PR_PROHIBIT_RECEIVE_QUOTA, q.PR_PROHIBIT_SEND_QUOTA) == (
        T.PidTagStorageQuotaLimit, T.PidTagProhibitReceiveQuota, T.PidTagProhibitSendQuota)
    assert q.PR_STORAGE_QUOTA_LIMIT == 1073020931  # as user_properties.proptag holds it


async def test_quota_for_reads_kib_from_user_properties(directory: Directory) -> None:
    quota = await q.quota_for(directory, OWNER)
    assert quota == q.Quota(storage=2048 * 1024, receive=1024 * 1024, send=512 * 1024)
    assert await q.quota_for(directory, "USER@Example.org") == quota
    assert await q.quota_for(directory, "alias@example.org") == quota


async def test_missing_zero_or_unreadable_values_mean_unlimited(directory: Directory) -> None:
    assert await q.quota_for(directory, "free@example.org") == q.UNLIMITED
    odd = await q.quota_for(directory, "odd@example.org")
    # 0 and garbage: unlimited; -1 is a PT_LONG's signed form of 0xFFFFFFFF KiB.
    assert odd == q.Quota(storage=None, receive=None, send=0xFFFFFFFF * 1024)
    assert await q.quota_for(directory, "nobody@example.org") == q.UNLIMITED
    assert q.Quota.from_kib(None, 0, -5) == q.UNLIMITED


async def test_load_applies_the_storage_limit(directory: Directory, store: Store) -> None:
    mbox = await store.create(OWNER)
    assert mbox.storage_limit is None
    quota = await q.load(mbox, directory)
    assert quota.storage == mbox.storage_limit == 2048 * 1024
    public = await store.create("public:example.org")
    assert await q.load(public, directory) == q.UNLIMITED and public.storage_limit is None


async def test_store_quota_properties(mbox: Mailbox) -> None:
    await mbox.create_message(INBOX, note("one"))
    total = await mbox.total_size()
    props = await q.store_props(mbox, q.Quota(storage=10 * 1024 * 1024, receive=5000, send=None))
    assert props == {T.PidTagMessageSize: total, T.PidTagMessageSizeExtended: total,
                     T.PidTagStorageQuotaLimit: 10 * 1024,
                     T.PidTagProhibitReceiveQuota: 5,  # 5000 bytes round up to 5 KiB
                     }
    assert T.PidTagProhibitSendQuota not in props
    assert set(await q.store_props(mbox, q.UNLIMITED)) == {
        T.PidTagMessageSize, T.PidTagMessageSizeExtended}


# -- receive and send ----------------------------------------------------------------------------
async def test_check_receive(mbox: Mailbox) -> None:
    await mbox.create_message(INBOX, note("one", "x" * 2000))
    used = await mbox.total_size()
    await q.check_receive(mbox, q.UNLIMITED, 10**12)
    quota = q.Quota(receive=used + 1000)
    await q.check_receive(mbox, quota, 1000)
    with pytest.raises(QuotaExceeded) as full:
        await q.check_receive(mbox, quota, 1001)
    assert full.value.kind == "receive" and OWNER in str(full.value)
    with pytest.raises(QuotaExceeded) as stored:
        await q.check_receive(mbox, q.Quota(storage=used + 10, receive=used + 1000), 100)
    assert stored.value.kind == "storage"


async def test_check_send(mbox: Mailbox) -> None:
    await mbox.create_message(DRAFTS, note("draft", "x" * 2000))
    used = await mbox.total_size()
    await q.check_send(mbox, q.Quota(send=used))
    await q.check_send(mbox, q.UNLIMITED)
    with pytest.raises(QuotaExceeded) as full:
        await q.check_send(mbox, q.Quota(send=used - 1))
    assert full.value.kind == "send"


# -- storage enforcement -------------------------------------------------------------------------
def _state(txn: Txn) -> dict[str, Any]:
    """Every row count and counter of the store: equal before and after a refused write."""
    tables = [row[0] for row in txn.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    state: dict[str, Any] = {
        table: txn.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in tables}
    state["meta"] = dict(txn.conn.execute("SELECT key, value FROM meta").fetchall())
    state["uidnext"] = txn.conn.execute("SELECT total(uidnext) FROM folders").fetchone()[0]
    return state


def _blob_files(mbox: Mailbox) -> set[str]:
    return set(mbox.blobs.files())


async def test_storage_quota_refuses_growth_and_leaves_nothing_half_written(
        mbox: Mailbox) -> None:
    first = await mbox.create_message(INBOX, note("first", "a" * 5000))
    used = await mbox.total_size()
    mbox.storage_limit = used + 3000
    before, files = await mbox.read(_state), _blob_files(mbox)
    big = note("big", os.urandom(40_000).hex())
    big.attachments.append(NewAttachment(props={T.PidTagAttachLongFilename: "a.bin"},
                                         data=[os.urandom(100_000)]))
    big.recipients.append({T.PidTagDisplayName: "Bob", T.PidTagEmailAddress: "bob@example.org"})
    for attempt in (
        lambda: mbox.create_message(INBOX, big),
        lambda: mbox.create_messages(INBOX, [note("a", "b" * 2000), note("b", "c" * 2000)]),
        lambda: mbox.copy_messages([first], INBOX),
        lambda: mbox.set_message_props(first, {T.PidTagBody: "a" * 9000}),
        lambda: mbox.add_attachment(first, NewAttachment(data=[b"z" * 4000])),
    ):
        with pytest.raises(QuotaExceeded) as full:
            await attempt()
        assert full.value.kind == "storage"
        assert await mbox.read(_state) == before
    assert await mbox.total_size() == used
    assert (await mbox.message(first, [T.PidTagBody]))[T.PidTagBody] == "a" * 5000
    # Blob files a refused write made are referenced by nothing.
    assert _blob_files(mbox) - files <= await mbox.read(_orphans)
    # Within the limit, writes still go through.
    await mbox.create_message(INBOX, note("small", "s"))


async def test_a_refused_write_leaves_no_blob_files(mbox: Mailbox) -> None:
    mbox.storage_limit = await mbox.total_size() + 1000
    files = _blob_files(mbox)
    big = note("big", os.urandom(40_000).hex())
    big.attachments.append(NewAttachment(data=[os.urandom(100_000)]))
    with pytest.raises(QuotaExceeded):
        await mbox.create_message(INBOX, big)
    assert _blob_files(mbox) == files


def _orphans(txn: Txn) -> set[str]:
    referenced = {row[0] for row in txn.conn.execute("SELECT hash FROM blobs")}
    return set(txn.blobs.files()) - referenced


async def test_over_quota_deletes_moves_and_flags_still_work(mbox: Mailbox) -> None:
    mids = [await mbox.create_message(INBOX, note(f"m{i}", "x" * 3000)) for i in range(4)]
    used = await mbox.total_size()
    mbox.storage_limit = used // 2  # e.g. the administrator lowered the quota
    with pytest.raises(QuotaExceeded):
        await mbox.create_message(INBOX, note("more"))
    await mbox.set_read(mids[:2])
    moved = await mbox.move_messages([mids[0]], DRAFTS)
    await mbox.delete_messages([mids[1]])  # soft: to Deleted Items
    await mbox.delete_messages([moved[mids[0]]], hard=True)
    assert await mbox.total_size() < used
    await mbox.empty_folder(TRASH)
    await mbox.delete_messages(mids[2:], hard=True)
    assert await mbox.total_size() == 0
    await mbox.create_message(INBOX, note("room again"))


# -- size accounting -----------------------------------------------------------------------------
def _accounting(txn: Txn) -> tuple[int, int]:
    """``(meta.total_size, sum of the sizes of messages in folders)``."""
    recorded = q.total_size(txn)
    actual = txn.conn.execute(
        "SELECT total(size) FROM messages WHERE folder_id IS NOT NULL").fetchone()[0]
    return recorded, int(actual)


class _Recomputed(Exception):
    """Carries the result out of a write that must not commit."""


def _recompute(txn: Txn) -> None:
    """Messages whose stored size differs from a fresh computation: (id, stored, fresh)."""
    out = []
    rows = txn.conn.execute("SELECT message_id, size FROM messages ORDER BY message_id DESC")
    for mid, size in rows.fetchall():  # embedded messages (newer ids) before their carriers
        fresh = messages._update_size(txn, mid)
        if fresh != size:
            out.append((mid, size, fresh))
    raise _Recomputed(out)


async def _stale_sizes(mbox: Mailbox) -> list[tuple[int, int, int]]:
    with pytest.raises(_Recomputed) as result:
        await mbox.write(_recompute)
    return list(result.value.args[0])


async def _assert_balanced(mbox: Mailbox, step: str) -> None:
    recorded, actual = await mbox.read(_accounting)
    assert recorded == actual, f"after {step}: total_size {recorded} != sum of sizes {actual}"


def _with_embedded(subject: str) -> NewMessage:
    inner = note(f"inner of {subject}", "i" * 700)
    inner.attachments.append(NewAttachment(props={T.PidTagAttachLongFilename: "deep.txt"},
                                           data=[b"d" * 900]))
    outer = note(subject, "o" * 500)
    outer.recipients.append({T.PidTagDisplayName: "Bob", T.PidTagEmailAddress: "b@x.org"})
    outer.attachments.append(NewAttachment(embedded=inner))
    outer.attachments.append(NewAttachment(props={T.PidTagAttachLongFilename: "f.txt"},
                                           data=[b"f" * 1200]))
    return outer


async def test_total_size_equals_the_sum_of_message_sizes(mbox: Mailbox) -> None:
    a = await mbox.create_message(INBOX, note("a", "x" * 100))
    b = await mbox.create_message(INBOX, _with_embedded("b"))
    c = await mbox.create_message(INBOX, note("c", "y" * 30_000))  # body in the blob store
    fai = await mbox.write(messages.create, INBOX, NewMessage(
        props={T.PidTagMessageClass: "IPM.Configuration.X"}, associated=True))
    await _assert_balanced(mbox, "creates")
    work = await mbox.create_folder(INBOX, "Work")
    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("set props", lambda: mbox.set_message_props(a, {T.PidTagBody: "z" * 5000})),
        ("delete a prop", lambda: mbox.set_message_props(a, {T.PidTagBody: None})),
        ("recipients", lambda: mbox.set_recipients(a, [{T.PidTagDisplayName: "X" * 300}])),
        ("add attachment", lambda: mbox.add_attachment(a, NewAttachment(data=[b"q" * 800]))),
        ("attachment props", lambda: mbox.write(
            messages.set_attachment_props, a, 0, {T.PidTagAttachLongFilename: "n" * 200})),
        ("delete attachment", lambda: mbox.delete_attachment(a, 0)),
        ("copy", lambda: mbox.copy_messages([a, b, c], work)),
        ("move", lambda: mbox.move_messages([c], work)),
        ("read flags", lambda: mbox.set_read([a, b])),
        ("flags via props", lambda: mbox.set_message_props(b, {T.PidTagMessageFlags: 0})),
        ("soft delete", lambda: mbox.delete_messages([a])),
        ("hard delete", lambda: mbox.delete_messages([b], hard=True)),
        ("copy folder", lambda: mbox.copy_folder(work, DRAFTS)),
        ("soft delete folder", lambda: mbox.delete_folder(work)),
        ("empty trash", lambda: mbox.empty_folder(TRASH)),
        ("delete fai", lambda: mbox.delete_messages([fai], hard=True)),
    ]
    for step, run in steps:
        await run()
        await _assert_balanced(mbox, step)
    assert await _stale_sizes(mbox) == []
    await mbox.delete_messages(await mbox.read(_filed), hard=True)
    assert await mbox.total_size() == 0


def _filed(txn: Txn) -> list[int]:
    return [row[0] for row in txn.conn.execute(
        "SELECT message_id FROM messages WHERE folder_id IS NOT NULL")]


async def test_total_size_follows_changes_to_embedded_messages(mbox: Mailbox) -> None:
    b = await mbox.create_message(INBOX, _with_embedded("b"))
    inner = await mbox.embedded_message(b, 0)
    await mbox.set_message_props(inner, {T.PidTagBody: "e" * 4000})
    await _assert_balanced(mbox, "embedded message props")
    await mbox.add_attachment(inner, NewAttachment(data=[b"w" * 2500]))
    await _assert_balanced(mbox, "embedded attachment")
    await mbox.delete_attachment(inner, 0)
    await _assert_balanced(mbox, "embedded attachment deleted")
    copies = await mbox.copy_messages([b], DRAFTS)
    await mbox.set_message_props(await mbox.embedded_message(copies[b], 0), {T.PidTagBody: "c"})
    await _assert_balanced(mbox, "embedded message of a copy")
    assert await _stale_sizes(mbox) == []
    await mbox.delete_messages(await mbox.read(_filed), hard=True)
    assert await mbox.total_size() == 0
