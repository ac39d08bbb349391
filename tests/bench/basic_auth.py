"""Benchmark: the added cost of HTTP Basic auth on a warm cache.

One ``gateway serve`` (one worker, defaults: access log and metrics on) with
the test plugin ``tests.plugins.protected``, which serves the same handler at
``/open/`` (no auth) and ``/protected/`` (``HttpAuth``: Basic and Negotiate).
``wrk`` sends a fixed ``Authorization: Basic ...`` header (no Lua) to both,
alternating, in the same run:

* latency: one connection, so p50 is the cost of one request, not queueing;
* throughput: ``--connections`` connections, requests/s.

The credentials are checked by the host's password mechanism
(``gateway/auth/password.py``) against a user made with ``gateway user add``
(SHA-512-crypt); after the first request its verified-credentials cache
(``[auth] cache_ttl``, set to 1 hour here) answers, which is the "warm
cache".

    .venv/bin/python -m tests.bench.basic_auth [--duration 10] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import base64
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
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

USER, PASSWORD = "bench@bench.test", "bench-secret"


def _cli(conf: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "gateway", "--config-dir", str(conf), *args],
                   input=stdin, text=True, capture_output=True, check=True, env=env,
                   cwd=REPO, timeout=120)


def run(duration: float, rounds: int, connections: int) -> dict[str, float | str]:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian package wrk; `make install` adds it)")
    with tempfile.TemporaryDirectory(prefix="gw-bench-auth-") as tmp:
        work = Path(tmp)
        port = free_port()
        write_gateway_config(work / "conf", port,
                             '[plugins]\nmodules = ["tests.plugins.protected"]\n'
                             "[auth]\ncache_ttl = 3600.0\n")
        env = env_with_path()
        _cli(work / "conf", env, "domain", "add", "bench.test")
        _cli(work / "conf", env, "user", "add", USER, "--password-stdin",
             stdin=PASSWORD + "\n")
        server = start(gateway_command(work / "conf"), work / "gateway.log", env, REPO)
        try:
            wait_port(port, server)
            credentials = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            header = f"Authorization: Basic {credentials}"
            base = f"http://127.0.0.1:{port}"
            request = urllib.request.Request(f"{base}/protected/",
                                              headers={"Authorization": f"Basic {credentials}"})
            with urllib.request.urlopen(request, timeout=30) as answer:  # warms the cache
                body = answer.read().decode()
            if f"user={USER}" not in body:
                raise RuntimeError(f"the protected route did not log in: {body!r}")
            targets = {"open": (f"{base}/open/", None), "basic": (f"{base}/protected/", header)}
            for url, auth in targets.values():  # warm-up
                wrk(url, 1, connections, auth)
            latency: dict[str, list[float]] = {"open": [], "basic": []}
            rate: dict[str, list[float]] = {"open": [], "basic": []}
            for _ in range(rounds):
                for name, (url, auth) in targets.items():
                    latency[name].append(wrk(url, duration, 1, auth)["p50_ms"])
                    rate[name].append(wrk(url, duration, connections, auth)["rps"])
        finally:
            stop(server)
    figures: dict[str, float | str] = {
        "mechanism": "password (directory, SHA-512-crypt, cache)"}
    for name in ("open", "basic"):
        figures[f"{name}_p50_ms"] = statistics.median(latency[name])
        figures[f"{name}_rps"] = statistics.median(rate[name])
    figures["added_p50_ms"] = float(figures["basic_p50_ms"]) - float(figures["open_p50_ms"])
    figures["rps_ratio"] = float(figures["basic_rps"]) / float(figures["open_rps"])
    return figures


def main() -> None:
    args = load_arguments(__doc__, "route")
    f = run(args.duration, args.rounds, args.connections)
    print(f"Basic auth cost, {args.rounds} x {args.duration:g} s per measurement, medians; "
          f"mechanism: {f['mechanism']}")
    print(f"  p50 latency, 1 connection   : open {f['open_p50_ms']:.3f} ms, "
          f"Basic {f['basic_p50_ms']:.3f} ms, added {f['added_p50_ms']:+.3f} ms "
          "(target <= 1 ms)")
    print(f"  throughput, {args.connections} connections : open {f['open_rps']:.0f} requests/s, "
          f"Basic {f['basic_rps']:.0f} requests/s, ratio Basic/open {f['rps_ratio']:.3f}")


if __name__ == "__main__":
    main()
