"""Store events cross processes through a real Redis."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.harness.gateway import GatewayFactory


def test_hook_gateway_store_event_across_processes(
    gateway_factory: GatewayFactory, redis_server, tmp_path: Path
) -> None:
    channel_config = (
        '[plugins]\nmodules = ["tests.plugins.probe"]\n'
        f'[probe]\nrecord_dir = "{tmp_path / "records"}"\n'
        f'[redis]\nurl = "{redis_server.url}"\n'
    )
    first = gateway_factory(channel_config)
    second = gateway_factory(channel_config)
    event = {"mailbox": f"alice-{time.time_ns()}@example.org", "kind": "new_mail"}
    assert httpx.post(f"{first.http_url}/probe/events", json=event).status_code == 200
    pids = {first.proc.pid, second.proc.pid}
    deadline = time.monotonic() + 10
    seen: dict[int, list] = {}
    while time.monotonic() < deadline:
        seen = {}
        for path in (tmp_path / "records").glob("event-*"):
            pid = int(path.name.split("-")[1])
            seen[pid] = [json.loads(line) for line in path.read_text().splitlines()]
        if set(seen) == pids:
            break
        time.sleep(0.1)
    # Each process received the event once, the publisher included.
    assert seen == {pid: [event] for pid in pids}
