"""Failure throttling in-process: windows, limits, address grouping, the fail2ban line."""

from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest

from gateway.auth import AuthRegistry, AuthResult, Credentials, Principal
from gateway.auth.throttle import Throttle, address_key


def throttle(**kwargs: float) -> Throttle:
    settings: dict[str, float] = {"window": 60.0, "per_account": 3, "per_address": 5,
                                  "delay": 0.0}
    settings.update(kwargs)
    return Throttle(window=settings["window"], per_account=int(settings["per_account"]),
                    per_address=int(settings["per_address"]), delay=settings["delay"])


async def fail(t: Throttle, account: str = "alice@x.test", client: str = "192.0.2.1") -> None:
    await t.failed(user=account, account=account, client=client, protocol="imap",
                   reason="wrong password")


async def test_account_limit_counts_case_insensitively() -> None:
    t = throttle()
    for _ in range(2):
        await fail(t, "Alice@X.test", client="192.0.2.1")
    assert not await t.account_blocked("alice@x.test")
    await fail(t, "alice@x.test", client="192.0.2.2")
    assert await t.account_blocked("ALICE@x.test")
    assert not await t.account_blocked("bob@x.test")


async def test_address_limit_and_ipv6_prefix() -> None:
    t = throttle(per_account=0)
    for i in range(5):
        await fail(t, f"u{i}@x.test", client=f"2001:db8:1:2::{i + 1}")
    assert await t.address_blocked("2001:db8:1:2:ffff::9")
    assert not await t.address_blocked("2001:db8:1:3::1")
    assert not await t.address_blocked("192.0.2.1")
    assert not await t.account_blocked("u0@x.test")  # per_account 0: no limit


def test_address_keys() -> None:
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("[2001:db8::1]") == "2001:db8::/64"
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("unix:/run/x") == "unix:/run/x"
    assert address_key("") == "-"


async def test_window_expiry() -> None:
    t = throttle(window=0.2, per_account=1)
    await fail(t)
    assert await t.account_blocked("alice@x.test")
    await asyncio.sleep(0.25)
    assert not await t.account_blocked("alice@x.test")


async def test_uncounted_failures_and_zero_limits() -> None:
    t = throttle(per_account=1, per_address=1)
    await t.failed(user="a", account="a", client="192.0.2.9", protocol="imap",
                   reason="LDAP server down", count=False)
    assert not await t.account_blocked("a") and not await t.address_blocked("192.0.2.9")
    await fail(t, "")  # an empty account counts for the address only
    assert not await t.account_blocked("")
    assert await t.address_blocked("192.0.2.1")


async def test_delay_is_waited_once_after_every_mechanism_refused() -> None:
    """The throttle only records; the registry waits, so a mechanism that refuses
    never holds up the next one, and a success after a refusal is not delayed."""
    t = throttle(delay=0.15)
    started = time.monotonic()
    await fail(t)
    assert time.monotonic() - started < 0.1

    class Refuses:
        name, kinds = "refuses", frozenset({"password"})

        async def authenticate(self, credentials: Credentials) -> AuthResult:
            return AuthResult(reason="no", delay=0.15)

    class Accepts:
        name, kinds = "accepts", frozenset({"password"})

        async def authenticate(self, credentials: Credentials) -> AuthResult:
            if credentials.secret == b"right":
                return AuthResult(Principal("a@x.test", self.name))
            return AuthResult(reason="wrong")

    registry = AuthRegistry()
    registry.add([Refuses(), Accepts()], "test")
    started = time.monotonic()
    assert (await registry.authenticate(
        Credentials("password", "imap", "192.0.2.1", "a", b"right"))).ok
    assert time.monotonic() - started < 0.1
    started = time.monotonic()
    assert not (await registry.authenticate(
        Credentials("password", "imap", "192.0.2.1", "a", b"wrong"))).ok
    assert 0.14 <= time.monotonic() - started < 0.3


FAIL2BAN = re.compile(r"auth failure: user=\S+ client=(?P<host>\S+) protocol=\S+ reason=")


@pytest.mark.parametrize("user", ["alice@x.test", "evil client=10.9.9.9 x", "a\nb", "",
                                  "\u0430lice", "x" * 5000])
async def test_log_line_matches_fail2ban_and_cannot_be_forged(
        user: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.auth")
    t = throttle()
    await t.failed(user=user, account=user, client="203.0.113.7", protocol="smtp",
                   reason="no such user")
    (record,) = [r for r in caplog.records if r.name == "gateway.auth"]
    line = record.getMessage()
    assert "\n" not in line and len(line) < 300
    found = FAIL2BAN.search(line)
    assert found is not None and found["host"] == "203.0.113.7"
    assert line.count("client=") == 1
