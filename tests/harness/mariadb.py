"""The ``mariadb`` fixture: the local MariaDB when root may log in, else a private one.

The local server is 127.0.0.1:3306 accepting ``root`` with an empty password
over TCP (checked with PyMySQL). A private server is a fresh data directory
made by ``mariadb-install-db`` and a ``mariadbd`` listening on a free
127.0.0.1 port (Debian package ``mariadb-server``, or ``mariadb-server-core``
alone); ``GATEWAY_TEST_PRIVATE_SERVICES=1`` always starts a private one.

``create_database()`` makes a uniquely named database; every database made
that way is dropped when the fixture ends.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pymysql
import pytest

from tests.harness.daemons import (
    find_binary,
    log_tail,
    start_daemon,
    start_with_port_retry,
    stop_daemon,
    want_private,
)
from tests.harness.ports import LOCALHOST, free_port, port_open

LOCAL_PORT = 3306
START_TIMEOUT = 30.0
INSTALL_TIMEOUT = 60.0
_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,40}$")


@dataclass
class MariaDB:
    """A reachable MariaDB and an account allowed to create databases."""

    host: str
    port: int
    user: str = "root"
    password: str = ""
    private: bool = False
    created: list[str] = field(default_factory=list)

    def url(self, database: str) -> str:
        """SQLAlchemy URL ``mysql+aiomysql://user:pass@host:port/database``."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return f"mysql+aiomysql://{auth}@{self.host}:{self.port}/{database}"

    def connect(self, database: str | None = None) -> pymysql.connections.Connection:
        """A blocking PyMySQL connection (autocommit), for setup and checks."""
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            connect_timeout=5,
            autocommit=True,
        )

    def create_database(self, prefix: str = "gwtest") -> str:
        """Create a database named ``<prefix>_<random>`` (utf8mb4) and return its name."""
        if not _NAME_RE.match(prefix):
            raise ValueError(f"database prefix must be 1-40 of [A-Za-z0-9_]: {prefix!r}")
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        self.created.append(name)
        return name

    def drop_created(self) -> None:
        """Drop every database ``create_database`` made."""
        if not self.created:
            return
        with self.connect() as conn, conn.cursor() as cur:
            while self.created:
                cur.execute(f"DROP DATABASE IF EXISTS `{self.created.pop()}`")


def can_login(host: str, port: int, user: str = "root", password: str = "") -> bool:
    """True when ``user`` may log in on ``host:port`` and run a query."""
    if not port_open(host, port):
        return False
    try:
        conn = pymysql.connect(
            host=host, port=port, user=user, password=password, connect_timeout=3
        )
    except pymysql.MySQLError:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone() == (1,)
    except pymysql.MySQLError:
        return False
    finally:
        conn.close()


def local_mariadb() -> MariaDB | None:
    """The local server on 127.0.0.1:3306 when root logs in without a password."""
    if can_login(LOCALHOST, LOCAL_PORT):
        return MariaDB(LOCALHOST, LOCAL_PORT, private=False)
    return None


def _socket_dir(workdir: Path) -> tuple[Path, bool]:
    """A directory for the Unix socket short enough for ``sun_path`` (108 bytes)."""
    if len(str(workdir / "mariadbd.sock")) < 100:
        return workdir, False
    return Path(tempfile.mkdtemp(prefix="gw-mdb-")), True


@contextmanager
def private_mariadb(workdir: Path) -> Iterator[MariaDB]:
    """Initialise a data directory in ``workdir`` and run ``mariadbd`` on a free port,
    root with an empty password; stopped on exit."""
    install_db = find_binary("mariadb-install-db", "mariadb-server")
    mariadbd = find_binary("mariadbd", "mariadb-server")
    workdir.mkdir(parents=True, exist_ok=True)
    datadir = workdir / "data"
    log_path = workdir / "mariadbd.log"
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    install = subprocess.run(
        [
            install_db,
            "--no-defaults",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            f"--datadir={datadir}",
            *as_root,
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    if install.returncode != 0:
        raise RuntimeError(
            f"mariadb-install-db failed ({install.returncode}):\n{install.stdout}{install.stderr}"
        )
    sock_dir, remove_sock_dir = _socket_dir(workdir)

    def start(port: int) -> subprocess.Popen[bytes]:
        args = [
            mariadbd,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--socket={sock_dir / 'mariadbd.sock'}",
            f"--pid-file={workdir / 'mariadbd.pid'}",
            f"--tmpdir={workdir}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=2",
            *as_root,
        ]
        return start_daemon(
            args,
            name="mariadbd",
            log_path=log_path,
            ready=lambda: can_login(LOCALHOST, port),
            timeout=START_TIMEOUT,
        )

    try:
        proc, port = start_with_port_retry(start, free_port)
    except BaseException:
        if remove_sock_dir:
            shutil.rmtree(sock_dir, ignore_errors=True)
        raise
    server = MariaDB(LOCALHOST, port, private=True)
    try:
        yield server
    finally:
        stop_daemon(proc, timeout=30)
        if proc.returncode not in (0, None):
            # Not fatal for the tests, but worth seeing when teardown is slow or noisy.
            print(f"mariadbd stopped with status {proc.returncode}:\n{log_tail(log_path)}")
        if remove_sock_dir:
            shutil.rmtree(sock_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    """A MariaDB for the whole session: the local one when root logs in, else a private
    one. Databases made with ``create_database`` are dropped at the end."""
    if not want_private():
        local = local_mariadb()
        if local is not None:
            try:
                yield local
            finally:
                local.drop_created()
            return
    with private_mariadb(tmp_path_factory.mktemp("mariadb")) as server:
        try:
            yield server
        finally:
            server.drop_created()
