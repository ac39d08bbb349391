"""Benchmark: a trivial route through the full host vs. bare Starlette on bare hypercorn.

Both servers run one worker on this machine and serve the same handler
(``tests/bench/trivial.py``); ``wrk`` loads each in turn, alternating, in the
same run. The host runs on its defaults (access log and metrics on). Prints
requests/s of each and the ratio host/bare (target: >= 0.85).

    .venv/bin/python -m tests.bench.http_overhead [--duration 10] [--rounds 3]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from tests.bench.common import (
    REPO,
    env_with_path,
    free_port,
    gateway_command,
    load_arguments,
    start,
    stop,
    wait_port,
    write_gateway_config,
    wrk,
)


def run(duration: float, rounds: int, connections: int) -> dict[str, float]:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian package wrk; `make install` adds it)")
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        work = Path(tmp)
        host_port, bare_port = free_port(), free_port()
        write_gateway_config(work / "conf", host_port,
                             '[plugins]\nmodules = ["tests.bench.trivial"]\n')
        env = env_with_path()
        host = start(gateway_command(work / "conf"), work / "host.log", env, REPO)
        bare = start([sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{bare_port}",
                      "--workers", "1", "tests.bench.trivial:bare_app"],
                     work / "bare.log", env, REPO)
        try:
            wait_port(host_port, host)
            wait_port(bare_port, bare)
            urls = {"host": f"http://127.0.0.1:{host_port}/bench",
                    "bare": f"http://127.0.0.1:{bare_port}/bench"}
            for url in urls.values():  # warm-up
                wrk(url, 1, connections)
            results: dict[str, list[float]] = {"host": [], "bare": []}
            for _ in range(rounds):
                for name in ("bare", "host"):
                    results[name].append(wrk(urls[name], duration, connections)["rps"])
        finally:
            stop(host)
            stop(bare)
    figures = {name: statistics.median(values) for name, values in results.items()}
    figures["ratio"] = figures["host"] / figures["bare"]
    return figures


def main() -> None:
    args = load_arguments(__doc__, "server")
    figures = run(args.duration, args.rounds, args.connections)
    print(f"HTTP overhead, {args.rounds} x {args.duration:g} s, {args.connections} connections,"
          " medians:")
    print(f"  bare Starlette on hypercorn : {figures['bare']:9.0f} requests/s")
    print(f"  gateway host + plugin       : {figures['host']:9.0f} requests/s")
    print(f"  ratio host/bare             : {figures['ratio']:9.3f}  (target >= 0.85)")


if __name__ == "__main__":
    main()
