"""The store across real processes: two writers at once, and kill -9 in the middle of writes."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from gateway.store import Private, Store, sync
from gateway.store import tags as T
from gateway.store.settings import StoreSection
from tests.harness.gateway import REPO

ADDRESS = "user@example.org"
INBOX = int(Private.INBOX)


def worker(data_dir: Path, name: str, count: int, start_at: float = 0.0
           ) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.store_worker", str(data_dir), ADDRESS, name,
         str(count), str(start_at)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def make_store(data_dir: Path) -> Store:
    store = Store(data_dir, StoreSection(reader_threads=2))
    await store.create(ADDRESS)
    return store


async def test_two_processes_write_one_store_and_sync_stays_exact(tmp_path: Path) -> None:
    store = await make_store(tmp_path)
    mbox = await store.open(ADDRESS)
    start_at = time.time() + 1.5
    procs = [worker(tmp_path, name, 150, start_at) for name in ("p", "q")]
    state, seen = None, set()
    while any(p.poll() is None for p in procs):
        result = await sync.sync_contents(mbox, INBOX, state, 7)
        for item in result.added:
            assert item.id not in seen
            seen.add(item.id)
        state = result.state
        await asyncio.sleep(0.01)
    for p in procs:
        _, err = p.communicate()
        assert p.returncode == 0, err
    while True:
        result = await sync.sync_contents(mbox, INBOX, state, 50)
        for item in result.added:
            assert item.id not in seen
            seen.add(item.id)
        state = result.state
        if not result.more:
            break

    def facts(txn):
        rows = txn.conn.execute(
            "SELECT m.message_id, m.uid, m.change_number, m.read_cn, substr(p.value, 1, 1) "
            "FROM messages m JOIN message_props p ON p.message_id = m.message_id AND p.tag = ? "
            "WHERE m.folder_id = ? ORDER BY m.message_id", (T.PidTagSubject, INBOX)).fetchall()
        return rows, txn.last_cn()

    rows, last_cn = await mbox.read(facts)
    assert len(rows) == 300 and seen == {r[0] for r in rows}
    assert len({r[1] for r in rows}) == 300
    writers = "".join(r[4] for r in rows)
    assert writers.count("pq") + writers.count("qp") > 5, "the two writers did not interleave"
    cns = [r[2] for r in rows] + [r[3] for r in rows if r[3]]
    assert len(set(cns)) == len(cns) and max(cns) <= last_cn
    await store.close()


async def test_kill_9_during_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    store = await make_store(tmp_path)
    await store.close()
    proc = worker(tmp_path, "k", 100_000)
    acked: dict[int, str] = {}
    assert proc.stdout is not None
    while len(acked) < 60:
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line, proc.stderr.read() if proc.stderr else "worker died"
        _, mid, subject = line.split()
        acked[int(mid)] = subject
    proc.send_signal(signal.SIGKILL)
    for line in proc.stdout:  # what was acknowledged before the kill landed
        if line.startswith("ACK "):
            _, mid, subject = line.split()
            acked[int(mid)] = subject
    proc.wait()

    db = Store(tmp_path, StoreSection()).path(ADDRESS) / "store.sqlite3"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = Store(tmp_path, StoreSection(reader_threads=2))
    mbox = await store.open(ADDRESS)
    for mid, subject in acked.items():
        assert (await mbox.message(mid, [T.PidTagSubject]))[T.PidTagSubject] == subject

    def dangling(txn):
        refs = txn.conn.execute(
            "SELECT blob FROM attachment_props WHERE blob IS NOT NULL UNION "
            "SELECT blob FROM message_props WHERE blob IS NOT NULL").fetchall()
        missing = []
        for (digest,) in refs:
            row = txn.conn.execute("SELECT data IS NULL FROM blobs WHERE hash = ?",
                                   (digest,)).fetchone()
            if row is None or (row[0] and not txn.blobs.path(digest).exists()):
                missing.append(digest)
        return missing

    assert await mbox.read(dangling) == []
    total = await mbox.total_size()
    counted = await mbox.read(lambda txn: int(txn.conn.execute(
        "SELECT total(size) FROM messages WHERE folder_id IS NOT NULL").fetchone()[0]))
    assert total == counted
    await mbox.create_message(INBOX, __import__("gateway.store").store.NewMessage(
        {T.PidTagSubject: "after"}))
    await store.close()
