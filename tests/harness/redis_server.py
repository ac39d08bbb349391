"""The ``redis_server`` fixture: the local Redis when one answers, else a private one.

The local server is 127.0.0.1:6379 answering ``PING`` without a password. A
private ``redis-server`` (Debian package ``redis-server``) listens on a free
127.0.0.1 port with persistence off and its files in a temporary directory;
``GATEWAY_TEST_PRIVATE_SERVICES=1`` always starts a private one.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.daemons import (
    find_binary,
    start_daemon,
    start_with_port_retry,
    stop_daemon,
    want_private,
)
from tests.harness.ports import LOCALHOST, free_port

LOCAL_PORT = 6379
START_TIMEOUT = 15.0


@dataclass(frozen=True)
class RedisServer:
    """Where a running Redis is reached; ``private`` tells whether this session started it."""

    host: str
    port: int
    private: bool = False
    db: int = 0

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``, for ``redis.asyncio.from_url`` and gateway configs."""
        return f"redis://{self.host}:{self.port}/{self.db}"


def redis_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a Redis on ``host:port`` answers ``PING`` with ``+PONG`` (no AUTH needed)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            reply = b""
            while not reply.endswith(b"\r\n") and len(reply) < 512:
                chunk = sock.recv(512)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return False
    return reply.startswith(b"+PONG")


def local_redis() -> RedisServer | None:
    """The local Redis on 127.0.0.1:6379, or ``None`` when it does not answer ``PING``."""
    if redis_ping(LOCALHOST, LOCAL_PORT):
        return RedisServer(LOCALHOST, LOCAL_PORT, private=False)
    return None


@contextmanager
def private_redis(workdir: Path) -> Iterator[RedisServer]:
    """Run a private ``redis-server`` with its files in ``workdir``; stopped on exit."""
    binary = find_binary("redis-server", "redis-server")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "redis.log"

    def start(port: int) -> subprocess.Popen[bytes]:
        args = [
            binary,
            "--port", str(port),
            "--bind", LOCALHOST,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(workdir),
            "--protected-mode", "yes",
        ]
        return start_daemon(
            args,
            name="redis-server",
            log_path=log_path,
            ready=lambda: redis_ping(LOCALHOST, port),
            timeout=START_TIMEOUT,
            cwd=workdir,
        )

    proc, port = start_with_port_retry(start, free_port)
    try:
        yield RedisServer(LOCALHOST, port, private=True)
    finally:
        stop_daemon(proc)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis for the whole session: the local one when it answers, else a private one."""
    if not want_private():
        local = local_redis()
        if local is not None:
            yield local
            return
    with private_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server
