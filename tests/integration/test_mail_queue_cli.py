"""``gateway queue list|flush|requeue|delete`` as an administrator runs them: a real
``gateway`` process on a data dir whose queue holds a deferred remote message and a
local one waiting for another try.

Until ``gateway/cli.py`` calls :func:`gateway.mail.cli.register`, the same
command group is run through a one-line wrapper around the real ``gateway``
command (still a separate process, still the real argument parsing).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateway.directory import admin
from gateway.host import build_host
from gateway.mail import MailService
from gateway.mail.queue import Recipient
from gateway.mail.settings import MailSection, resolve
from gateway.store.special import Private
from tests.harness.gateway import REPO, gateway_env, run_cli
from tests.harness.ports import free_port
from tests.unit.test_mail_service import stop_default_mail, write_config

ALICE, BOB = "alice@example.org", "bob@example.org"
WRAPPER = ("import sys; from gateway.cli import cli; from gateway.mail.cli import register; "
           "register(cli); cli(sys.argv[1:], prog_name='gateway')")


_WIRED: list[bool] = []


def queue_cli(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not _WIRED or _WIRED[0]:
        result = run_cli("--config-dir", str(conf), "queue", *args)
        if not _WIRED:
            _WIRED.append("No such command 'queue'" not in result.stderr)
        if _WIRED[0]:
            return result
    return subprocess.run([sys.executable, "-c", WRAPPER, "--config-dir", str(conf), "queue",
                           *args], capture_output=True, text=True, timeout=60,
                          env=gateway_env(), cwd=REPO)


async def _prepare(base: Path) -> tuple[Path, str, str]:
    down = MailSection(relayhost=f"[127.0.0.1]:{free_port()}", relay_tls="none",
                       retry_schedule=[3600], hostname="gw.example.org")
    conf = write_config(base, down)
    host = build_host([conf], environ={})
    await host.startup()
    await stop_default_mail(host)
    try:
        for address in (ALICE, BOB):
            if address == ALICE:
                await admin.add_domain(host.directory.engine, "example.org")
            await admin.add_user(host.directory.engine, address, "", None)
            await host.store.create(address)
        service = MailService(host, resolve(down))
        host.mail = service  # type: ignore[attr-defined]
        raw = (f"From: <{ALICE}>\r\nTo: <far@remote.test>\r\nSubject: remote\r\n\r\n"
               "x\r\n").encode()
        remote = (await service.submit_mime(ALICE, raw, save_copy=False)).queue_id
        await service.queue.run_once()  # refused connection: deferred for an hour
        local_raw = (f"From: <{ALICE}>\r\nTo: <{BOB}>\r\nSubject: local retry\r\n\r\n"
                     "y\r\n").encode()
        local = await service.queue.enqueue(local_raw, ALICE, [Recipient(BOB, "local")])
    finally:
        await host.shutdown()
    return conf, remote, local


async def _inbox_subjects(conf: Path, address: str) -> list[bytes]:
    host = build_host([conf], environ={})
    await host.startup()
    await stop_default_mail(host)
    try:
        mbox = await host.store.open(address)
        ids = await mbox.read(lambda txn: [r[0] for r in txn.conn.execute(
            "SELECT message_id FROM messages WHERE folder_id = ?", (int(Private.INBOX),))])
        return [b"".join([c async for c in mbox.original_message(i)]) for i in ids]
    finally:
        await host.shutdown()


async def test_queue_list_requeue_flush_delete(tmp_path: Path) -> None:
    conf, remote, local = await _prepare(tmp_path)

    listed = queue_cli(conf, "list")
    assert listed.returncode == 0, listed.stderr
    assert remote in listed.stdout and local in listed.stdout and "2 message(s)" in listed.stdout
    assert f"<{ALICE}>" in listed.stdout and "to <far@remote.test>" in listed.stdout
    assert "last error:" in listed.stdout and "next in 59m" in listed.stdout

    rows = {row["id"]: row for row in json.loads(queue_cli(conf, "list", "--json").stdout)}
    assert rows[remote]["attempts"] == 1 and rows[remote]["next_attempt"] > 3000
    assert "far@remote.test" in rows[remote]["last_error"]

    requeued = queue_cli(conf, "requeue", remote.lower())
    assert requeued.returncode == 0 and f"requeued {remote}" in requeued.stdout
    rows = {row["id"]: row for row in json.loads(queue_cli(conf, "list", "--json").stdout)}
    assert rows[remote]["attempts"] == 0 and rows[remote]["next_attempt"] <= 0

    flushed = queue_cli(conf, "flush", local)
    assert flushed.returncode == 0, flushed.stderr
    assert "1 still queued" in flushed.stdout and remote in flushed.stdout
    inbox = await _inbox_subjects(conf, BOB)
    assert len(inbox) == 1 and b"Subject: local retry" in inbox[0]

    deleted = queue_cli(conf, "delete", remote)
    assert deleted.returncode == 0 and f"deleted {remote}" in deleted.stdout
    assert "queue is empty" in queue_cli(conf, "list").stdout

    again = queue_cli(conf, "delete", remote)
    assert again.returncode != 0 and f"no queued message {remote}" in again.stderr
    hostile = queue_cli(conf, "delete", "../../etc/passwd")
    assert hostile.returncode != 0 and "not a queue id" in hostile.stderr
    assert queue_cli(conf, "flush").returncode == 0
