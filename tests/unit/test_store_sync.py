"""The one sync API: exact under interleaved writers, paged, compact, refusing foreign states."""

from __future__ import annotations

import asyncio
import random

import pytest

from gateway.store import InvalidArgument, Mailbox, NewMessage, Private, Store, sync
from gateway.store import tags as T

INBOX = int(Private.INBOX)


class Replica:
    """What a client holds after applying sync results; checks nothing comes twice."""

    def __init__(self) -> None:
        self.items: dict[int, tuple[int, bool]] = {}
        self.state: str | None = None

    def apply(self, result: sync.SyncResult) -> None:
        for item in result.added:
            assert item.id not in self.items, f"{item.id} added twice"
            self.items[item.id] = (item.change_number, item.read)
        for item in result.changed:
            assert item.id in self.items, f"change of unknown {item.id}"
            assert self.items[item.id] != (item.change_number, item.read), "repeated change"
            self.items[item.id] = (item.change_number, item.read)
        for item in result.read_changed:
            assert item.id in self.items, f"read change of unknown {item.id}"
            cn, read = self.items[item.id]
            assert read != item.read, f"repeated read change of {item.id}"
            self.items[item.id] = (cn, item.read)
        for item in result.deleted:
            assert item.id in self.items, f"deletion of unknown {item.id}"
            del self.items[item.id]
        self.state = result.state

    async def sync(self, mbox: Mailbox, folder: int, page: int) -> sync.SyncResult:
        result = await sync.sync_contents(mbox, folder, self.state, page)
        self.apply(result)
        return result


async def truth(mbox: Mailbox, folder: int) -> dict[int, tuple[int, bool]]:
    def run(txn):
        return {mid: (cn, bool(read)) for mid, cn, read in txn.conn.execute(
            "SELECT message_id, change_number, is_read FROM messages WHERE folder_id = ? "
            "AND associated = 0", (folder,))}
    return await mbox.read(run)


async def test_initial_sync_pages_through_everything_once(mbox: Mailbox) -> None:
    ids = await mbox.create_messages(INBOX, [NewMessage({T.PidTagSubject: str(i)})
                                             for i in range(25)])
    replica, pages = Replica(), 0
    while True:
        result = await replica.sync(mbox, INBOX, 10)
        pages += 1
        if not result.more:
            break
    assert pages == 3 and sorted(replica.items) == sorted(ids)
    assert len(await replica.sync(mbox, INBOX, 10)) == 0


async def test_changes_reads_deletes_and_moves_are_reported_apart(mbox: Mailbox) -> None:
    a, b, c, d = await mbox.create_messages(INBOX, [NewMessage({T.PidTagSubject: s})
                                                    for s in "abcd"])
    replica = Replica()
    await replica.sync(mbox, INBOX, 100)
    other = await mbox.create_folder(INBOX, "Other")
    await mbox.set_message_props(a, {T.PidTagSubject: "a2"})
    await mbox.set_read([b])
    await mbox.delete_messages([c], hard=True)
    await mbox.move_messages([d], other)
    gone = await mbox.create_message(INBOX, NewMessage({T.PidTagSubject: "brief"}))
    await mbox.delete_messages([gone], hard=True)
    result = await replica.sync(mbox, INBOX, 100)
    assert [i.id for i in result.changed] == [a]
    assert [(i.id, i.read) for i in result.read_changed] == [(b, True)]
    assert sorted(i.id for i in result.deleted) == sorted([c, d])
    assert result.added == []
    assert replica.items == await truth(mbox, INBOX)


async def test_content_and_read_change_together_come_once(mbox: Mailbox) -> None:
    mid = await mbox.create_message(INBOX, NewMessage({T.PidTagSubject: "x"}))
    replica = Replica()
    await replica.sync(mbox, INBOX, 100)
    await mbox.set_read([mid])
    await mbox.set_message_props(mid, {T.PidTagSubject: "y"})
    first = await replica.sync(mbox, INBOX, 100)
    assert [(i.id, i.read) for i in first.changed] == [(mid, True)] and not first.read_changed
    assert len(await replica.sync(mbox, INBOX, 100)) == 0


@pytest.mark.parametrize("seed", range(6))
async def test_exact_under_interleaved_writers(mbox: Mailbox, seed: int) -> None:
    rng = random.Random(seed)
    other = await mbox.create_folder(INBOX, "Side")
    replica = Replica()
    stop = asyncio.Event()

    async def writer(name: str) -> None:
        for step in range(60):
            live = list(await truth(mbox, INBOX))
            op = rng.random()
            if op < 0.35 or not live:
                await mbox.create_messages(INBOX, [NewMessage({T.PidTagSubject: f"{name}{step}"})
                                                   for _ in range(rng.randint(1, 3))])
                continue
            target = rng.choice(live)
            try:
                if op < 0.55:
                    await mbox.set_message_props(target, {T.PidTagSubject: f"{name}{step}"})
                elif op < 0.75:
                    await mbox.set_read([target], rng.random() < 0.5)
                elif op < 0.87:
                    await mbox.delete_messages([target], hard=True)
                else:
                    await mbox.move_messages([target], other)
            except Exception as exc:  # another writer removed it first
                assert "does not exist" in str(exc)
            await asyncio.sleep(0)

    async def syncer() -> None:
        while not stop.is_set():
            await replica.sync(mbox, INBOX, rng.randint(1, 7))
            await asyncio.sleep(0)

    running = asyncio.create_task(syncer())
    await asyncio.gather(writer("a"), writer("b"))
    stop.set()
    await running
    while (await replica.sync(mbox, INBOX, 5)).more:
        pass
    assert replica.items == await truth(mbox, INBOX)


async def test_hierarchy_sync_reports_folders_parents_first(mbox: Mailbox) -> None:
    root = int(Private.IPM_SUBTREE)
    first = await sync.sync_hierarchy(mbox, root, None)
    assert INBOX in [i.id for i in first.added]
    parent = await mbox.create_folder(INBOX, "P")
    child = await mbox.create_folder(parent, "C")
    await mbox.set_folder_props(INBOX, {T.PidTagComment: "changed"})
    second = await sync.sync_hierarchy(mbox, root, first.state)
    assert [i.id for i in second.added] == [parent, child]
    assert [i.id for i in second.changed] == [INBOX]
    await mbox.delete_folder(child, hard=True)
    third = await sync.sync_hierarchy(mbox, root, second.state)
    assert [i.id for i in third.deleted] == [child]


async def test_states_are_compact_and_foreign_ones_refused(store: Store, mbox: Mailbox) -> None:
    await mbox.create_message(INBOX, NewMessage({T.PidTagSubject: "x"}))
    state = (await sync.sync_contents(mbox, INBOX, None)).state
    assert len(state) < 24
    other = await store.create("other@example.org")
    for folder, owner, bad in [(INBOX, other, state), (int(Private.SENT_ITEMS), mbox, state),
                               (INBOX, mbox, "!!!"), (INBOX, mbox, state[:-2])]:
        with pytest.raises(InvalidArgument):
            await sync.sync_contents(owner, folder, bad)
    with pytest.raises(InvalidArgument):
        await sync.sync_contents(mbox, INBOX, state, scope="associated")


async def test_pruned_tombstones_expire_old_states(mbox: Mailbox) -> None:
    mid = await mbox.create_message(INBOX, NewMessage({T.PidTagSubject: "x"}))
    old = (await sync.sync_contents(mbox, INBOX, None)).state
    await mbox.delete_messages([mid], hard=True)
    assert await mbox.write(sync.prune_tombstones, -10) == 1
    with pytest.raises(sync.StateExpired):
        await sync.sync_contents(mbox, INBOX, old)
    assert len(await sync.sync_contents(mbox, INBOX, None)) == 0


async def test_opening_a_store_prunes_old_tombstones_once_a_day(store: Store) -> None:
    from dataclasses import replace

    mbox = await store.create("prune@example.org")
    mid = await mbox.create_message(INBOX, NewMessage({T.PidTagSubject: "x"}))
    await mbox.delete_messages([mid], hard=True)
    await mbox.write(lambda txn: txn.conn.execute(
        "UPDATE tombstones SET deleted_at = deleted_at - 200 * 86400"))
    await mbox.write(lambda txn: txn.conn.execute("DELETE FROM meta WHERE key = 'last_prune'"))
    store.section = replace(store.section, tombstone_days=90)
    await store._prune_if_due(mbox)
    assert await mbox.read(lambda txn: txn.conn.execute(
        "SELECT count(*) FROM tombstones").fetchone()[0]) == 0
