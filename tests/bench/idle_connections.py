"""Benchmark: resident memory per idle connection to the example TCP line service.

Opens N connections (default 5,000) to the hello service of
``examples/hello-plugin`` served by the gateway, and to the same protocol on
bare asyncio (``raw_line_server``), reads each greeting, and reports the
growth of each server's resident memory divided by N (target: <= 20 KiB per
connection for the gateway).

    .venv/bin/python -m tests.bench.idle_connections [--connections 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.common import (
    REPO,
    env_with_path,
    free_port,
    gateway_command,
    rss_kib,
    start,
    stop,
    wait_port,
    write_gateway_config,
)
from tests.harness.gateway import install_example_plugin

BATCH = 250
WARM_UP = 200


async def open_idle(port: int, count: int) -> list[asyncio.StreamWriter]:
    """Open ``count`` connections, each having read its greeting."""
    writers: list[asyncio.StreamWriter] = []

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        greeting = await asyncio.wait_for(reader.readline(), 30)
        if not greeting.startswith(b"* hello"):
            raise RuntimeError(f"unexpected greeting {greeting!r}")
        writers.append(writer)

    for start_at in range(0, count, BATCH):
        await asyncio.gather(*(one() for _ in range(min(BATCH, count - start_at))))
    return writers


async def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()
    await asyncio.sleep(0.5)


async def measure(pid: int, port: int, count: int) -> float:
    """KiB of server RSS per idle connection."""
    await close_all(await open_idle(port, WARM_UP))  # one-time costs out of the figure
    await asyncio.sleep(0.5)
    before = rss_kib(pid)
    writers = await open_idle(port, count)
    await asyncio.sleep(1.0)
    after = rss_kib(pid)
    await close_all(writers)
    return (after - before) / count


def run(count: int) -> dict[str, float]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < count * 2 + 100:
        sys.exit(f"the open-file limit ({hard}) is too low for {count} connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    figures = {}
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        work = Path(tmp)
        http_port, hello_port, raw_port = free_port(), free_port(), free_port()
        write_gateway_config(work / "conf", http_port,
                             f'[hello]\nlisten = ["127.0.0.1:{hello_port}"]\n')
        env = env_with_path(install_example_plugin(work / "site"))
        gateway = start(gateway_command(work / "conf"), work / "gateway.log", env, REPO)
        raw = start([sys.executable, "-m", "tests.bench.raw_line_server", str(raw_port)],
                    work / "raw.log", env, REPO)
        try:
            wait_port(hello_port, gateway)
            wait_port(raw_port, raw)
            time.sleep(0.5)
            figures["gateway"] = asyncio.run(measure(gateway.pid, hello_port, count))
            figures["raw"] = asyncio.run(measure(raw.pid, raw_port, count))
        finally:
            stop(gateway)
            stop(raw)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=5000)
    args = parser.parse_args()
    figures = run(args.connections)
    print(f"Idle connections: {args.connections}, resident memory growth per connection:")
    print(f"  bare asyncio line server : {figures['raw']:6.1f} KiB")
    print(f"  gateway hello service    : {figures['gateway']:6.1f} KiB  (target <= 20 KiB)")


if __name__ == "__main__":
    main()
