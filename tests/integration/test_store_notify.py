"""Store notifications: in-process subscribers, and across processes through a real Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from gateway.host import Host, load_config
from gateway.store import NewMessage, Private
from gateway.store import tags as T
from tests.harness.gateway import REPO

ADDRESS = "user@example.org"
INBOX = int(Private.INBOX)


def host_env(tmp_path: Path, redis_url: str = "") -> dict[str, str]:
    env = dict(os.environ, GATEWAY__GATEWAY__DATA_DIR=str(tmp_path / "data"))
    if redis_url:
        env["GATEWAY__REDIS__URL"] = redis_url
    return env


async def started(env: dict[str, str]) -> Host:
    config, pm, plugins = load_config([], env)
    host = Host(config, pm, plugins, environ=env)
    await host.startup()
    return host


async def test_a_write_wakes_a_subscriber_of_the_same_process(tmp_path: Path) -> None:
    host = await started(host_env(tmp_path))
    try:
        mbox = await host.store.create(ADDRESS)
        async with host.notifier.subscribe(ADDRESS) as events:
            mid = await mbox.create_message(INBOX, NewMessage({T.PidTagSubject: "x"}),
                                            new_mail=True)
            kinds = []
            while not any(kind == ("new_mail", mid) for kind in kinds):
                event = await asyncio.wait_for(events.get(), 5)
                kinds.append((event.kind, event.object_id))
            counts = await asyncio.wait_for(events.get(), 5)
            assert counts.kind == "folder_counts" and counts.data["unread_count"] == 1
    finally:
        await host.shutdown()


async def test_delivery_in_another_process_wakes_this_one_through_redis(
        tmp_path: Path, redis_server) -> None:
    env = host_env(tmp_path, redis_server.url)
    host = await started(env)
    try:
        await host.store.create(ADDRESS)
        async with host.notifier.subscribe(ADDRESS) as events:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.integration.store_deliver", ADDRESS, "from afar",
                cwd=REPO, env=env, stderr=subprocess.PIPE)
            while True:
                event = await asyncio.wait_for(events.get(), 15)
                if event.kind == "new_mail":
                    break
            _, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
        mbox = await host.store.open(ADDRESS)
        subject = (await mbox.message(event.object_id, [T.PidTagSubject]))[T.PidTagSubject]
        assert subject == "from afar" and event.folder_id == INBOX
    finally:
        await host.shutdown()
