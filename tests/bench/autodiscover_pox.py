"""Benchmark: authenticated POX AutoDiscover requests/s vs the host's trivial route.

One ``gateway serve`` (one worker, defaults: access log and metrics on) with
the trivial route of ``tests/bench/trivial.py`` and the test plugin
``tests.plugins.endpoints`` (EXCH, EXPR, EWS, OAB ... endpoints). ``wrk``
alternates, in the same run, between ``GET /bench`` and an outlook POX
request ``POST /autodiscover/autodiscover.xml`` (a Lua script sets method,
body and a fixed ``Authorization: Basic`` header). The user is made with
``gateway user add``; the verified-credentials cache (``[auth] cache_ttl``)
and the directory cache answer after the first request. Every POX answer is
checked once for the user's settings before measuring.

Prints requests/s of each and the ratio POX/trivial (target: >= 0.5).

    .venv/bin/python -m tests.bench.autodiscover_pox [--duration 10] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import base64
import re
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
NS_REQUEST = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
NS_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
BODY = (f'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="{NS_REQUEST}"><Request>'
        f"<EMailAddress>{USER}</EMailAddress><AcceptableResponseSchema>{NS_RESPONSE}"
        "</AcceptableResponseSchema></Request></Autodiscover>")


def _cli(conf: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "gateway", "--config-dir", str(conf), *args],
                   input=stdin, text=True, capture_output=True, check=True, env=env,
                   cwd=REPO, timeout=120)


def _script(path: Path, authorization: str) -> Path:
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [[{BODY}]]\n"
        'wrk.headers["Content-Type"] = "text/xml; charset=utf-8"\n'
        f'wrk.headers["Authorization"] = "{authorization}"\n')
    return path


def wrk_post(url: str, duration: float, connections: int, script: Path) -> float:
    """Requests/s of wrk running ``script`` (one thread); errors are fatal."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
               "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60,
                         check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rate or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk output not understood or errors seen:\n{out}")
    return float(rate.group(1))


def run(duration: float, rounds: int, connections: int) -> dict[str, float]:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian package wrk; `make install` adds it)")
    with tempfile.TemporaryDirectory(prefix="gw-bench-ad-") as tmp:
        work = Path(tmp)
        port = free_port()
        write_gateway_config(work / "conf", port,
                             '[plugins]\nmodules = ["tests.bench.trivial", '
                             '"tests.plugins.endpoints"]\ndisabled = ["imap", "dav"]\n'
                             '[auth]\ncache_ttl = 3600.0\n'
                             '[smtp]\ndelivery_listen = []\nsubmission_listen = []\n'
                             'submission_listen_tls = []\n')
        env = env_with_path()
        _cli(work / "conf", env, "domain", "add", "bench.test")
        _cli(work / "conf", env, "user", "add", USER, "--password-stdin",
             stdin=PASSWORD + "\n")
        server = start(gateway_command(work / "conf"), work / "gateway.log", env, REPO)
        try:
            wait_port(port, server)
            credentials = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            base = f"http://127.0.0.1:{port}"
            pox_url = f"{base}/autodiscover/autodiscover.xml"
            request = urllib.request.Request(
                pox_url, data=BODY.encode(), method="POST",
                headers={"Authorization": f"Basic {credentials}", "Content-Type": "text/xml"})
            with urllib.request.urlopen(request, timeout=30) as answer:  # warms the caches
                body = answer.read().decode()
            if f"<AutoDiscoverSMTPAddress>{USER}<" not in body or "<EwsUrl>" not in body:
                raise RuntimeError(f"the POX answer lacks the user's settings: {body!r}")
            script = _script(work / "pox.lua", f"Basic {credentials}")
            wrk(f"{base}/bench", 1, connections)  # warm-up
            wrk_post(pox_url, 1, connections, script)
            rate: dict[str, list[float]] = {"trivial": [], "pox": []}
            for _ in range(rounds):
                rate["trivial"].append(wrk(f"{base}/bench", duration, connections)["rps"])
                rate["pox"].append(wrk_post(pox_url, duration, connections, script))
        finally:
            stop(server)
    figures = {name: statistics.median(values) for name, values in rate.items()}
    figures["ratio"] = figures["pox"] / figures["trivial"]
    return figures


def main() -> None:
    args = load_arguments(__doc__, "route")
    f = run(args.duration, args.rounds, args.connections)
    print(f"POX AutoDiscover, {args.rounds} x {args.duration:g} s, {args.connections} "
          "connections, medians:")
    print(f"  trivial route (GET /bench)        : {f['trivial']:9.0f} requests/s")
    print(f"  authenticated POX (Basic, cached) : {f['pox']:9.0f} requests/s")
    print(f"  ratio POX/trivial                 : {f['ratio']:9.3f}  (target >= 0.5)")


if __name__ == "__main__":
    main()
