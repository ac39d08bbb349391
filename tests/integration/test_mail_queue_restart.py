"""The outbound queue survives ``kill -9``: every message is delivered exactly once.

A worker process (this module run as ``python -m``: a real host on a temporary
data dir, :class:`MailService` with the SMTP sink as relayhost) queues twelve
messages and starts delivering them one at a time; the sink holds each DATA
reply for a while, and the worker is killed with SIGKILL while the sink holds
one. A second worker on the same data dir delivers the rest. The sink then
holds each message exactly once: the one cut off mid-DATA (whose 250 the dead
worker never saw) was sent again, none was lost, none went out twice.
"""

from __future__ import annotations

import asyncio
import email
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gateway.directory import admin
from gateway.host import build_host
from gateway.mail import MailService
from gateway.mail.settings import MailSection, resolve
from tests.harness.gateway import REPO, gateway_env
from tests.unit.test_mail_service import stop_default_mail, write_config
from tests.unit.test_mail_sink import SmtpSink

ALICE = "alice@example.org"
COUNT = 12


def section_for(port: int) -> dict[str, Any]:
    return {"relayhost": f"[127.0.0.1]:{port}", "relay_tls": "none", "concurrency": 1,
            "retry_schedule": [1], "scan_interval": 0.2, "timeout": 10.0,
            "hostname": "gw.example.org"}


def start_worker(conf: Path, port: int, submit: int, log: Path) -> subprocess.Popen[bytes]:
    section = section_for(port)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.integration.test_mail_queue_restart", str(conf),
             json.dumps(section), str(submit)],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=gateway_env())


def queued_files(base: Path) -> list[str]:
    folder = base / "data" / "queue" / "messages"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


async def test_kill_9_mid_delivery_then_restart_delivers_each_once(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    sink = await SmtpSink(data_delay=0.6).start()
    conf = write_config(tmp_path, MailSection(**section_for(sink.port)))
    worker = start_worker(conf, sink.port, COUNT, log)
    try:
        deadline = time.monotonic() + 60
        while not (len(sink.messages) >= 3 and sink.in_delay):
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no progress:\n{log.read_text()}"
            await asyncio.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)
        await asyncio.to_thread(worker.wait, 10)
    finally:
        if worker.poll() is None:
            worker.kill()
    delivered_before = len(sink.messages)
    left = queued_files(tmp_path)
    assert len(left) == 2 * (COUNT - delivered_before), left  # .eml + .json each
    await asyncio.sleep(0.7)  # the sink finishes the held DATA and sees the client gone
    assert len(sink.messages) == delivered_before

    sink.data_delay = 0.0
    worker = start_worker(conf, sink.port, 0, log)
    try:
        code = await asyncio.to_thread(worker.wait, 60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert code == 0, log.read_text()
    subjects = [email.message_from_bytes(m.data)["Subject"] for m in sink.messages]
    assert sorted(subjects) == sorted(f"message {i}" for i in range(COUNT)), subjects
    assert queued_files(tmp_path) == []
    await sink.stop()


async def test_queue_survives_kill_9_with_relay_down(tmp_path: Path) -> None:
    """Messages queued while the relay is down stay queued through SIGKILL."""
    log = tmp_path / "worker.log"
    sink = SmtpSink()
    sink.port = 0
    await sink.start()
    port = sink.port
    await sink.stop()  # nobody listens: every attempt is deferred
    conf = write_config(tmp_path, MailSection(**section_for(port)))
    worker = start_worker(conf, port, 5, log)
    try:
        deadline = time.monotonic() + 60
        while b"SUBMITTED" not in (log.read_bytes() if log.exists() else b""):
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # some attempts fail meanwhile
        os.kill(worker.pid, signal.SIGKILL)
        await asyncio.to_thread(worker.wait, 10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert len(queued_files(tmp_path)) == 10
    sink = await SmtpSink(port=port).start()
    try:
        worker = start_worker(conf, port, 0, log)
        assert await asyncio.to_thread(worker.wait, 60) == 0, log.read_text()
        assert len(sink.messages) == 5
    finally:
        if worker.poll() is None:
            worker.kill()
        await sink.stop()


# -- the worker process ------------------------------------------------------------------
async def _worker(conf: str, section_json: str, submit: int) -> None:
    host = build_host([conf], environ={})
    await host.startup()
    await stop_default_mail(host)
    try:
        service = MailService(host, resolve(MailSection(**json.loads(section_json))))
        host.mail = service  # type: ignore[attr-defined]
        if submit:
            await admin.add_domain(host.directory.engine, "example.org")
            await admin.add_user(host.directory.engine, ALICE, "", "Alice")
            await host.store.create(ALICE)
            for i in range(submit):
                raw = (f"From: <{ALICE}>\r\nTo: <peer{i}@remote.test>\r\n"
                       f"Subject: message {i}\r\n\r\nbody {i}\r\n").encode()
                await service.submit_mime(ALICE, raw)
            print("SUBMITTED", flush=True)
        await service.start()
        deadline = time.monotonic() + 50
        while await service.queue.list():
            if time.monotonic() > deadline:
                raise SystemExit("queue not empty after 50 s")
            await asyncio.sleep(0.1)
        print("EMPTY", flush=True)
        await service.stop()
    finally:
        await host.shutdown()


if __name__ == "__main__":
    asyncio.run(_worker(sys.argv[1], sys.argv[2], int(sys.argv[3])))
