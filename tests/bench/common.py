"""Helpers shared by the benchmarks: processes, ports, readiness, memory."""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env_with_path(*paths: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in paths), str(REPO)])
    return env


def start(command: Sequence[str], log: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd)


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def gateway_command(config_dir: Path) -> list[str]:
    return [sys.executable, "-m", "gateway", "--config-dir", str(config_dir), "serve"]


QUIET_LISTENERS = (
    "[imap]\nlisten = []\nlisten_tls = []\n"
    "[smtp]\ndelivery_listen = []\nsubmission_listen = []\nsubmission_listen_tls = []\n")
"""The line protocols' fixed default ports off: a benchmark names the ports it measures
(in ``extra``, a later fragment) and never collides with a gateway already running."""


def write_gateway_config(directory: Path, http_port: int, extra: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "00-quiet.toml").write_text(QUIET_LISTENERS)
    (directory / "bench.toml").write_text(
        f'[gateway]\ndata_dir = "{directory.parent / "data"}"\nlog_level = "info"\n'
        f'[http]\nlisten = ["127.0.0.1:{http_port}"]\nlisten_tls = []\n' + extra
    )


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise RuntimeError(f"wrk latency not understood: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, duration: float, connections: int,
        header: str | None = None) -> dict[str, float]:
    """Requests/s and p50 latency (ms) as wrk measured them (one thread)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency"]
    if header:
        command += ["-H", header]
    out = subprocess.run([*command, url], capture_output=True, text=True,
                         timeout=duration + 60, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    if not rate or not p50 or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk output not understood or errors seen:\n{out}")
    return {"rps": float(rate.group(1)), "p50_ms": _ms(p50.group(1))}


def load_arguments(doc: str | None, each: str) -> argparse.Namespace:
    """``--duration``, ``--rounds`` and ``--connections`` of a wrk benchmark."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help=f"alternating runs per {each}")
    parser.add_argument("--connections", type=int, default=32)
    return parser.parse_args()
