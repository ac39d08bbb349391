"""Start and stop the private server processes the service fixtures run.

Every wait here is bounded: a daemon that neither becomes ready nor exits
within its timeout is killed and reported with the tail of its log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

PRIVATE_ENV = "GATEWAY_TEST_PRIVATE_SERVICES"


class DaemonError(RuntimeError):
    """A private server did not come up."""

    def __init__(self, message: str, *, exited: bool) -> None:
        super().__init__(message)
        self.exited = exited


def want_private() -> bool:
    """True when ``GATEWAY_TEST_PRIVATE_SERVICES`` asks for private instances only."""
    return os.environ.get(PRIVATE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def find_binary(name: str, package: str, *extra_dirs: str) -> str:
    """Path of ``name`` (on PATH, in /usr/sbin, /usr/bin or ``extra_dirs``); skip the
    test with the Debian package to install when it is missing."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *extra_dirs, "/usr/sbin", "/usr/bin"])
    found = shutil.which(name, path=search)
    if found is None:
        pytest.skip(f"{name} not found: install the Debian package {package}")
    return found


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file (empty when it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start_daemon(
    args: Sequence[str],
    *,
    name: str,
    log_path: Path,
    ready: Callable[[], bool],
    timeout: float = 20.0,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``args`` in the foreground with output appended to ``log_path`` and wait,
    at most ``timeout`` seconds, until ``ready()`` returns true.

    ``ready`` may raise ``OSError`` while the daemon is still starting. Raises
    ``DaemonError`` (``exited`` tells whether the process died by itself, the
    usual sign of a port taken in between) after stopping the process.
    """
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            raise DaemonError(
                f"{name} exited with status {code} before it was ready; "
                f"log {log_path}:\n{log_tail(log_path)}",
                exited=True,
            )
        try:
            if ready():
                return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_daemon(proc)
            raise DaemonError(
                f"{name} was not ready within {timeout}s; log {log_path}:\n{log_tail(log_path)}",
                exited=False,
            )
        time.sleep(0.05)


def stop_daemon(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process, SIGKILL it if it is still there after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def start_with_port_retry(
    start: Callable[[int], subprocess.Popen[bytes]],
    pick_port: Callable[[], int],
    attempts: int = 3,
) -> tuple[subprocess.Popen[bytes], int]:
    """Call ``start(port)`` with a fresh free port, again when the daemon exited on its
    own (another process took the port between picking and binding)."""
    for attempt in range(attempts):
        port = pick_port()
        try:
            return start(port), port
        except DaemonError as exc:
            if not exc.exited or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
