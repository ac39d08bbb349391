"""The password mechanism with hostile input, on the embedded SQLite directory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from gateway.auth import Credentials
from gateway.auth.password import CredentialCache, PasswordMechanism, decode_password
from gateway.directory.models import Altnames
from gateway.host import Host, build_host
from tests.unit.auth_support import PASSWORD, auth_host, login, password_mechanism, populate
from tests.unit.directory_support import HOSTILE_NAMES


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    async with auth_host(tmp_path) as made:
        await populate(made.directory)
        yield made


HOSTILE = [*HOSTILE_NAMES, "alice@example.test\0!shared@example.test",
           "alice@example.test!shared@example.test\0", "alice@example.test%",
           "ALICE@EXAMPLE.TEST' OR 1=1 --", "alice@example.test\\", "alice@example.test*",
           "*", "(uid=*)", "alice@example.test)(|(mail=*", "\uff41lice@example.test",
           "alice@example.test\u200b", "alice@example.test" + "!" * 5000]


@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_names_are_refused_like_unknown_users(host: Host, name: str) -> None:
    result = await login(host, name, PASSWORD)
    assert not result.ok and result.principal is None
    assert result.reason in ("no such user", "not a valid login name"), result.reason


@pytest.mark.parametrize("secret", [
    b"", b"\0", PASSWORD.encode() + b"\0", b"\0" + PASSWORD.encode(), b"\xff\xfe",
    PASSWORD.encode("utf-16"), b"x" * 1025, b"y" * 1_000_000,
])
async def test_hostile_passwords_are_refused_cheaply(host: Host, secret: bytes) -> None:
    started = time.monotonic()
    result = await login(host, "alice@example.test", secret)
    assert not result.ok and result.principal is None
    assert time.monotonic() - started < 1.0


async def test_ambiguous_names_are_refused(host: Host) -> None:
    bob = await host.directory.get_user("bob@example.test")
    assert bob is not None
    async with host.directory.engine.begin() as conn:
        # grommunio does not forbid it: bob's altname equal to alice's alias.
        await conn.execute(insert(Altnames).values(user_id=bob.id,
                                                   altname="a.liddell@example.test", magic=0))
    host.directory.invalidate()
    result = await login(host, "a.liddell@example.test", PASSWORD, "smtp")
    assert not result.ok and result.reason == "ambiguous login name"
    assert (await login(host, "alice@example.test", PASSWORD)).ok


async def test_without_a_directory_nothing_is_checked(tmp_path: Path) -> None:
    host = build_host([], environ={"GATEWAY__GATEWAY__DATA_DIR": str(tmp_path)})
    result = await host.auth.authenticate(
        Credentials("password", "imap", "127.0.0.1", "alice@example.test", b"x"))
    assert not result.ok and result.reason == "the directory is not open"
    assert password_mechanism(host).crypt_calls == 0


async def test_hook_registers_the_mechanism_once(host: Host) -> None:
    mechanism = password_mechanism(host)
    assert isinstance(mechanism, PasswordMechanism)
    assert host.auth.names.count("password") == 1 and mechanism.kinds == {"password"}
    other = await host.auth.authenticate(Credentials("gssapi", "ews", "::1", "alice", b"t"))
    assert not other.ok and "no mechanism" in other.reason


def test_decode_password() -> None:
    assert decode_password(b"p\xc3\xa4ss") == ("p\u00e4ss", "")
    assert decode_password(b"")[0] is None
    assert decode_password(b"a\0b")[0] is None
    assert decode_password(b"\xff")[0] is None
    assert decode_password(b"x" * 1025)[0] is None


def test_credential_cache() -> None:
    cache = CredentialCache(0.2, max_entries=2)
    cache.put("Alice@x", "pw", "proof")
    assert cache.hit("alice@x", "pw", "proof")
    assert not cache.hit("alice@x", "pw", "other proof")
    assert not cache.hit("alice@x", "pw2", "proof")
    assert not CredentialCache(0.2).hit("alice@x", "pw", "proof")  # another key
    # Framing: moving characters between fields gives another digest.
    cache.put("a", "bc", "")
    assert not cache.hit("ab", "c", "")
    cache.put("c", "d", "e")
    assert len(cache) == 2 and not cache.hit("Alice@x", "pw", "proof")
    time.sleep(0.25)
    assert not cache.hit("c", "d", "e") and len(cache) == 1
    off = CredentialCache(0.0)
    off.put("a", "b", "c")
    assert len(off) == 0 and not off.hit("a", "b", "c")
