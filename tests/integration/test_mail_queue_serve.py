"""The queue runner inside a real ``gateway serve``: it picks up queued messages, keeps
them through ``kill -9`` while the relay is down, and delivers each exactly once after
a restart. Needs the host to declare [mail] and start ``host.mail`` (skipped before)."""

from __future__ import annotations

import asyncio
import email
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.mail.queue import Envelope, QueueFiles, Recipient, new_queue_id
from tests.harness.gateway import GatewayFactory, RunningGateway, gateway_env, wait_healthy
from tests.harness.ports import free_port
from tests.unit.test_mail_service import mail_registered
from tests.unit.test_mail_sink import SmtpSink

pytestmark = pytest.mark.skipif(not mail_registered(),
                                reason="[mail] is not declared in gateway/settings.py yet")


def queue_message(data_dir: Path, i: int) -> str:
    now = time.time()
    qid = new_queue_id()
    raw = (f"From: <alice@example.org>\r\nTo: <peer{i}@remote.test>\r\n"
           f"Subject: served {i}\r\n\r\nbody\r\n").encode()
    QueueFiles(data_dir / "queue").put(raw, Envelope(
        id=qid, sender="alice@example.org", recipients=[Recipient(f"peer{i}@remote.test")],
        size=len(raw), created=now, queued_at=now, next_attempt=now))
    return qid


def envelopes(data_dir: Path) -> list[Envelope]:
    files = QueueFiles(data_dir / "queue")
    return [e for e in (files.load(q) for q in files.ids()) if e is not None]


def restart(gw: RunningGateway) -> RunningGateway:
    with gw.log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config-dir", str(gw.config_dir), "serve"],
            stdout=log, stderr=subprocess.STDOUT, env=gateway_env(), cwd=gw.config_dir.parent)
    again = RunningGateway(proc, gw.config_dir, gw.data_dir, gw.http_port, gw.https_port,
                           gw.log_path, gw.ports)
    wait_healthy(again)
    return again


async def test_served_runner_survives_kill_9(gateway_factory: GatewayFactory) -> None:
    port = free_port()
    gw = gateway_factory(  # only the host: no listeners of other plugins to collide
        '[plugins]\ndisabled = ["imap", "smtp", "autodiscover"]\n'
        f'[mail]\nrelayhost = "[127.0.0.1]:{port}"\nrelay_tls = "none"\n'
        'retry_schedule = [1]\nscan_interval = 0.3\nhostname = "gw.example.org"\n')
    ids = [queue_message(gw.data_dir, i) for i in range(5)]
    deadline = time.monotonic() + 30
    while not all(e.attempts >= 1 for e in envelopes(gw.data_dir)):
        assert time.monotonic() < deadline, gw.log()
        await asyncio.sleep(0.1)  # the server's runner tries them (the relay is down)
    os.kill(gw.proc.pid, signal.SIGKILL)
    gw.proc.wait(10)
    assert sorted(e.id for e in envelopes(gw.data_dir)) == sorted(ids)

    sink = await SmtpSink(port=port).start()
    again = await asyncio.to_thread(restart, gw)
    gateway_factory.running.append(again)
    try:
        deadline = time.monotonic() + 30
        while envelopes(gw.data_dir) or len(sink.messages) < 5:
            assert time.monotonic() < deadline, again.log()
            await asyncio.sleep(0.1)
        subjects = sorted(email.message_from_bytes(m.data)["Subject"] for m in sink.messages)
        assert subjects == [f"served {i}" for i in range(5)]
    finally:
        await sink.stop()
