"""The password mechanism against the real directory, on SQLite and on MariaDB.

Users are made as ``gateway user add`` makes them; every test runs once per
database engine. Throttling is checked in-process and through Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.auth.throttle import Throttle
from gateway.directory import admin
from gateway.directory.passwords import hash_password
from gateway.host import Host
from tests.harness.redis_server import RedisServer
from tests.unit.auth_support import (
    FAST,
    PASSWORD,
    auth_host,
    init_database,
    login,
    password_mechanism,
    populate,
    set_columns,
)


@pytest.fixture(params=["sqlite", "mariadb"])
def db_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return ""
    mariadb = request.getfixturevalue("mariadb")
    return str(mariadb.url(mariadb.create_database("gwauth")))


@pytest.fixture
async def host(db_url: str, tmp_path: Path) -> AsyncIterator[Host]:
    await init_database(db_url, tmp_path)
    async with auth_host(tmp_path, db_url) as made:
        await populate(made.directory)
        yield made


async def test_correct_password_gives_the_canonical_user(host: Host) -> None:
    for name in ("alice@example.test", "ALICE@Example.TEST", "a.liddell@example.test",
                 "alice-login"):
        result = await login(host, name, PASSWORD)
        assert result.ok and result.principal is not None, (name, result.reason)
        assert result.principal.username == "alice@example.test"
        assert result.principal.mechanism == "password"
        assert result.principal.attributes == {"target": "", "protocol": "imap",
                                               "backend": "sql"}


async def test_wrong_password_looks_like_unknown_user(host: Host) -> None:
    wrong = await login(host, "alice@example.test", "not it")
    unknown = await login(host, "nobody@example.test", PASSWORD)
    assert not wrong.ok and not unknown.ok
    assert wrong.principal is None and unknown.principal is None
    assert wrong.reason == "wrong password" and unknown.reason == "no such user"
    # Both cost a crypt verification (unknown users a dummy one).
    mechanism = password_mechanism(host)
    before = mechanism.crypt_calls
    await login(host, "nobody2@example.test", PASSWORD)
    assert mechanism.crypt_calls == before + 1


@pytest.mark.parametrize(("name", "why"), [
    ("shared@example.test", "shared mailbox"),
    ("suspended@example.test", "suspended"),
    ("deleted@example.test", "deleted"),
    ("contact@example.test", "contact"),
    ("insuspdomain@example.test", "suspended domain"),
    ("room@example.test", "display type 7"),
    ("notype@example.test", "no display type"),
    ("carol@example.test", "users.password is empty"),
])
async def test_accounts_that_may_not_log_in_are_refused(host: Host, name: str,
                                                        why: str) -> None:
    result = await login(host, name, PASSWORD)
    assert not result.ok and why in result.reason
    assert not (await login(host, name, "")).ok


async def test_privileges_are_enforced_per_protocol(host: Host) -> None:
    # bob: IMAP/POP3 and EWS denied; SMTP, EAS, DAV, WEB (no DETAIL1), MAPI allowed.
    for protocol in ("imap", "pop3", "ews"):
        result = await login(host, "bob@example.test", PASSWORD, protocol)
        assert not result.ok and f"no privilege for {protocol}" == result.reason
    for protocol in ("smtp", "eas", "dav", "web", "mapi", "autodiscover"):
        result = await login(host, "bob@example.test", PASSWORD, protocol)
        assert result.ok, (protocol, result.reason)
        assert result.principal is not None
        assert result.principal.attributes["protocol"] == protocol
    # DETAIL1 set with only DAV: EAS and WEB are now governed by their bits.
    await admin.set_user(host.directory.engine, "bob@example.test", deny={"eas", "web"})
    host.directory.invalidate()
    assert not (await login(host, "bob@example.test", PASSWORD, "eas")).ok
    assert not (await login(host, "bob@example.test", PASSWORD, "web")).ok
    assert (await login(host, "bob@example.test", PASSWORD, "dav")).ok
    unknown = await login(host, "alice@example.test", PASSWORD, "gopher")
    assert not unknown.ok and "unknown protocol" in unknown.reason


async def test_login_bang_target_both_orders(host: Host) -> None:
    for name in ("alice@example.test!shared@example.test",
                 "shared@example.test!alice@example.test",
                 "a.liddell@example.test!SHARED@example.test"):
        result = await login(host, name, PASSWORD)
        assert result.ok and result.principal is not None, (name, result.reason)
        assert result.principal.username == "alice@example.test"
        assert result.principal.attributes["target"] == "shared@example.test"
    # Both sides may log in: grommunio's reading (login!target) wins, with its password.
    result = await login(host, "alice@example.test!bob@example.test", PASSWORD, "smtp")
    assert result.ok and result.principal is not None
    assert result.principal.username == "alice@example.test"
    assert result.principal.attributes["target"] == "bob@example.test"
    # The target names oneself: no target.
    result = await login(host, "alice@example.test!alice-login", PASSWORD)
    assert result.ok and result.principal is not None
    assert result.principal.attributes["target"] == ""
    for name in ("alice@example.test!nobody@example.test", "alice@example.test!",
                 "!alice@example.test", "alice@example.test!!shared@example.test",
                 "nobody@example.test!shared@example.test"):
        result = await login(host, name, PASSWORD)
        assert not result.ok, name
    assert not (await login(host, "alice@example.test!shared@example.test", "bad")).ok


async def test_cache_hit_skips_crypt_and_follows_password_changes(host: Host) -> None:
    mechanism = password_mechanism(host)
    assert (await login(host, "alice@example.test", PASSWORD)).ok
    calls = mechanism.crypt_calls
    for _ in range(3):
        assert (await login(host, "a.liddell@example.test", PASSWORD, "smtp")).ok
    assert mechanism.crypt_calls == calls
    # A wrong password is never a cache hit.
    assert not (await login(host, "alice@example.test", PASSWORD + "x")).ok
    assert mechanism.crypt_calls == calls + 1
    # The cache holds HMACs only: no password, no user name in clear.
    assert len(mechanism.cache) == 1
    for digest in mechanism.cache:
        assert PASSWORD.encode() not in digest and b"alice" not in digest
    # A new hash in the directory: the cached old password no longer matches.
    await admin.set_password(host.directory.engine, "alice@example.test",
                             hash_password("n3w"))
    host.directory.invalidate()
    assert not (await login(host, "alice@example.test", PASSWORD)).ok
    assert (await login(host, "alice@example.test", "n3w")).ok
    # Suspending the account wins over a cached password.
    await set_columns(host.directory, "alice@example.test", address_status=1)
    assert not (await login(host, "alice@example.test", "n3w")).ok


async def test_reload_empties_the_credential_cache(host: Host) -> None:
    mechanism = password_mechanism(host)
    assert (await login(host, "alice@example.test", PASSWORD)).ok
    assert len(mechanism.cache) == 1
    assert await host.reload()
    assert len(mechanism.cache) == 0


async def test_verification_does_not_block_the_event_loop(host: Host) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        results = await asyncio.gather(*(
            login(host, "alice@example.test", f"wrong {i}") for i in range(20)))
    finally:
        task.cancel()
    assert not any(r.ok for r in results)
    assert ticks > 5


def _address() -> str:
    return f"198.51.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


async def test_failure_delay_is_applied(db_url: str, tmp_path: Path) -> None:
    await init_database(db_url, tmp_path)
    async with auth_host(tmp_path, db_url, {**FAST, "failure_delay": 0.3}) as host:
        await populate(host.directory)
        started = time.monotonic()
        assert (await login(host, "alice@example.test", PASSWORD)).ok
        assert time.monotonic() - started < 0.3
        for name, password in (("alice@example.test", "nope"), ("nobody@x.test", "nope"),
                               ("shared@example.test", PASSWORD), ("", "")):
            started = time.monotonic()
            assert not (await login(host, name, password)).ok
            assert time.monotonic() - started >= 0.29, name


async def test_throttle_per_account_and_per_address(db_url: str, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    await init_database(db_url, tmp_path)
    limits = {"failure_delay": 0.0, "max_failures_per_account": 3,
              "max_failures_per_address": 5, "failure_window": 60.0}
    async with auth_host(tmp_path, db_url, limits) as host:
        await populate(host.directory)
        caplog.set_level(logging.WARNING, logger="gateway.auth")
        one, two, three = _address(), _address(), _address()
        for _ in range(3):  # through the alias: counted for the canonical account
            assert not (await login(host, "a.liddell@example.test", "bad", client=one)).ok
        blocked = await login(host, "alice@example.test", PASSWORD, client=two)
        assert not blocked.ok and "too many failed logins for this account" in blocked.reason
        # Another account from the first address still works (3 < 5) ...
        assert (await login(host, "bob@example.test", PASSWORD, "smtp", client=one)).ok
        # ... until the address has 5 failures, whatever the names.
        for name in ("x1@example.test", "x2@example.test"):
            assert not (await login(host, name, "bad", client=one)).ok
        refused = await login(host, "bob@example.test", PASSWORD, "smtp", client=one)
        assert not refused.ok and "from this address" in refused.reason
        assert (await login(host, "bob@example.test", PASSWORD, "smtp", client=three)).ok
        lines = [r.getMessage() for r in caplog.records if "auth failure" in r.getMessage()]
        assert f"auth failure: user=a.liddell@example.test client={one} protocol=imap " \
               "reason=wrong password" in lines
        assert any("reason=too many failed logins" in line for line in lines)


async def test_throttle_is_shared_through_redis(db_url: str, tmp_path: Path,
                                                redis_server: RedisServer) -> None:
    """Two processes' mechanisms (two hosts) count failures of one address together."""
    await init_database(db_url, tmp_path)
    limits = {"failure_delay": 0.0, "max_failures_per_account": 0,
              "max_failures_per_address": 4, "failure_window": 30.0}
    async with auth_host(tmp_path, db_url, limits, redis_url=redis_server.url) as first:
        await populate(first.directory)
        async with auth_host(tmp_path, db_url, limits, redis_url=redis_server.url,
                             name="conf2") as second:
            client = _address()
            for host in (first, second, first, second):
                assert not (await login(host, "alice@example.test", "bad",
                                        client=client)).ok
            for host in (first, second):
                result = await login(host, "alice@example.test", PASSWORD, client=client)
                assert not result.ok and "from this address" in result.reason
            assert (await login(second, "alice@example.test", PASSWORD)).ok


async def test_redis_down_falls_back_to_process_counts() -> None:
    throttle = Throttle(window=30.0, per_account=2, per_address=0,
                        redis_url="redis://127.0.0.1:1/0", delay=0.0)
    try:
        for _ in range(2):
            await throttle.failed(user="x", account="x@example.test", client="192.0.2.1",
                                  protocol="imap", reason="wrong password")
        assert await throttle.account_blocked("X@example.test")
    finally:
        await throttle.close()
