"""LDAP password checks against a real slapd, users in the real directory (SQLite, MariaDB).

The directory holds ``alice@example.org`` as grommunio's LDAP import leaves
her (``externid`` set, no usable SQL password); slapd holds
``uid=alice,ou=people,dc=example,dc=org`` with ``mail: alice@example.org``.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from gateway.auth.ldap import LdapConfig
from gateway.directory import admin
from gateway.directory.passwords import hash_password
from gateway.host import Host
from tests.harness.ldap_server import LdapServer, ssha
from tests.unit.auth_support import (
    FAST,
    add_org,
    auth_host,
    init_database,
    login,
    password_mechanism,
    set_externid,
)

SQL_PASSWORD = "the sql one"


@pytest.fixture(params=["sqlite", "mariadb"])
def db_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return ""
    mariadb = request.getfixturevalue("mariadb")
    return str(mariadb.url(mariadb.create_database("gwldap")))


def ldap_settings(ldap: LdapServer, **changes: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"server": ldap.uri, "bind_user": ldap.bind_dn,
                                "bind_password": ldap.bind_password,
                                "base_dn": ldap.base_dn}
    settings.update(changes)
    return settings


@asynccontextmanager
async def ldap_host(db_url: str, tmp_path: Path, ldap: dict[str, Any],
                    mode: str = "externid") -> AsyncIterator[Host]:
    await init_database(db_url, tmp_path)
    async with auth_host(tmp_path, db_url, {**FAST, "mode": mode}, ldap) as host:
        engine = host.directory.engine
        if await host.directory.get_user("alice@example.org") is not None:
            yield host  # a second host on the same database in one test
            return
        await admin.add_domain(engine, "example.org", 50)
        await admin.add_user(engine, "alice@example.org", hash_password(SQL_PASSWORD))
        await set_externid(host.directory, "alice@example.org", uuid.uuid4().bytes)
        await admin.add_user(engine, "local@example.org", hash_password(SQL_PASSWORD))
        yield host


async def test_ldap_user_is_checked_against_slapd(db_url: str, tmp_path: Path,
                                                  ldap_server: LdapServer) -> None:
    async with ldap_host(db_url, tmp_path, ldap_settings(ldap_server)) as host:
        mechanism = password_mechanism(host)
        result = await login(host, "ALICE@example.org", ldap_server.user_password)
        assert result.ok and result.principal is not None, result.reason
        assert result.principal.username == "alice@example.org"
        assert result.principal.attributes["backend"] == "ldap"
        wrong = await login(host, "alice@example.org", "nope")
        assert not wrong.ok and wrong.reason == "LDAP: wrong password"
        # The directory's hash is not what counts for an LDAP user.
        assert not (await login(host, "alice@example.org", SQL_PASSWORD)).ok
        # Local users (externid NULL) keep their crypt hash in mode externid.
        local = await login(host, "local@example.org", SQL_PASSWORD)
        assert local.ok and local.principal is not None
        assert local.principal.attributes["backend"] == "sql"
        # A verified LDAP login is cached: no second bind.
        binds = mechanism.ldap.binds
        assert (await login(host, "alice@example.org", ldap_server.user_password)).ok
        assert mechanism.ldap.binds == binds
        # Empty passwords never reach LDAP (an empty simple bind would succeed).
        assert not (await login(host, "alice@example.org", "")).ok
        assert mechanism.ldap.binds == binds


async def test_modes_sql_and_ldap(db_url: str, tmp_path: Path,
                                  ldap_server: LdapServer) -> None:
    async with ldap_host(db_url, tmp_path, ldap_settings(ldap_server), mode="sql") as host:
        assert (await login(host, "alice@example.org", SQL_PASSWORD)).ok
        assert not (await login(host, "alice@example.org", ldap_server.user_password)).ok
    async with ldap_host(db_url, tmp_path / "2", ldap_settings(ldap_server),
                         mode="ldap") as host:
        assert (await login(host, "alice@example.org", ldap_server.user_password)).ok
        # local@ has no LDAP entry: refused in mode ldap whatever its hash.
        result = await login(host, "local@example.org", SQL_PASSWORD)
        assert not result.ok and result.reason == "LDAP: no entry"


async def test_per_organisation_override(db_url: str, tmp_path: Path,
                                         ldap_server: LdapServer) -> None:
    # Globally LDAP points at nothing useful; the organisation's orgparam fixes it.
    global_settings = ldap_settings(ldap_server, server="ldap://127.0.0.1:1",
                                    base_dn="ou=nowhere,dc=example,dc=org",
                                    username_attribute="uid", timeout=2.0)
    async with ldap_host(db_url, tmp_path, global_settings) as host:
        before = await login(host, "alice@example.org", ldap_server.user_password)
        assert not before.ok and "unavailable" in before.reason
        await add_org(host.directory, "example.org", {
            "ldap_uri": ldap_server.uri, "ldap_binddn": ldap_server.bind_dn,
            "ldap_bindpw": ldap_server.bind_password, "ldap_basedn": ldap_server.people_dn,
            "ldap_mail_attr": "mail", "ldap_start_tls": "0"})
        after = await login(host, "alice@example.org", ldap_server.user_password)
        assert after.ok, after.reason


async def test_search_filter_and_ambiguity(db_url: str, tmp_path: Path,
                                           ldap_server: LdapServer) -> None:
    twin = f"twin-{uuid.uuid4().hex[:8]}@example.org"
    ldif = ""
    for uid in ("twin1", "twin2"):
        uid = f"{uid}-{twin.split('@')[0]}"
        ldif += (f"dn: uid={uid},{ldap_server.people_dn}\nobjectClass: inetOrgPerson\n"
                 f"uid: {uid}\ncn: {uid}\nsn: Twin\nmail: {twin}\n"
                 f"userPassword: {ssha('twin-pass')}\n\n")
    ldap_server.add_ldif(ldif)
    settings = ldap_settings(ldap_server, filter="(objectClass=inetOrgPerson)")
    async with ldap_host(db_url, tmp_path, settings) as host:
        assert (await login(host, "alice@example.org", ldap_server.user_password)).ok
        await admin.add_user(host.directory.engine, twin, "")
        await set_externid(host.directory, twin, b"\x01")
        result = await login(host, twin, "twin-pass")
        assert not result.ok and "several entries" in result.reason
    strict = ldap_settings(ldap_server, filter="(objectClass=posixAccount)")
    async with ldap_host(db_url, tmp_path / "2", strict) as host:
        result = await login(host, "alice@example.org", ldap_server.user_password)
        assert not result.ok and result.reason == "LDAP: no entry"


async def test_filter_metacharacters_in_names_are_escaped(db_url: str, tmp_path: Path,
                                                          ldap_server: LdapServer) -> None:
    """``*@example.org`` would match alice's entry unescaped and bind with her password."""
    async with ldap_host(db_url, tmp_path, ldap_settings(ldap_server)) as host:
        for name in ("*@example.org", "alice*@example.org"):
            await admin.add_user(host.directory.engine, name, "")
            await set_externid(host.directory, name, b"x")
            result = await login(host, name, ldap_server.user_password)
            assert not result.ok and result.reason == "LDAP: no entry", name
        config = LdapConfig.from_section(host.config.ldap)
        assert config.search_filter("*)(uid=*") == r"(mail=\2a\29\28uid=\2a)"


async def test_starttls_is_requested(db_url: str, tmp_path: Path,
                                     ldap_server: LdapServer) -> None:
    """The plain test slapd has no certificate: with starttls the search must fail, not
    fall back to plain text."""
    async with ldap_host(db_url, tmp_path,
                         ldap_settings(ldap_server, starttls=True, timeout=3.0)) as host:
        result = await login(host, "alice@example.org", ldap_server.user_password)
        assert not result.ok and "unavailable" in result.reason
        await add_org(host.directory, "example.org", {"ldap_start_tls": "false"})
        assert (await login(host, "alice@example.org", ldap_server.user_password)).ok


async def test_starttls_with_private_ca(db_url: str, tmp_path: Path,
                                        ldap_server_tls: LdapServer,
                                        caplog: pytest.LogCaptureFixture) -> None:
    """With [ldap] ca_file naming slapd's CA, StartTLS logins work; without it the
    system's trust store does not know the CA: refused, no plain-text fallback, and
    the log says the certificate could not be verified."""
    trusted = ldap_settings(ldap_server_tls, starttls=True, ca_file=ldap_server_tls.ca_file,
                            timeout=3.0)
    async with ldap_host(db_url, tmp_path, trusted) as host:
        result = await login(host, "alice@example.org", ldap_server_tls.user_password)
        assert result.ok, result.reason
        assert result.principal is not None
        assert result.principal.attributes["backend"] == "ldap"
        wrong = await login(host, "alice@example.org", "nope")
        assert not wrong.ok and wrong.reason == "LDAP: wrong password"
    untrusted = ldap_settings(ldap_server_tls, starttls=True, timeout=3.0)
    with caplog.at_level("WARNING", logger="gateway.auth"):
        async with ldap_host(db_url, tmp_path / "2", untrusted) as host:
            mechanism = password_mechanism(host)
            result = await login(host, "alice@example.org", ldap_server_tls.user_password)
            assert not result.ok and "unavailable" in result.reason
            assert "certificate verification" in result.reason
            assert "trust store" in result.reason
            assert mechanism.ldap.binds == 0  # the search already failed: nothing sent
    logged = [r.getMessage() for r in caplog.records if "auth failure" in r.getMessage()]
    assert any("certificate verification" in line for line in logged), logged
    missing = ldap_settings(ldap_server_tls, starttls=True, ca_file=str(tmp_path / "no.pem"))
    async with ldap_host(db_url, tmp_path / "3", missing) as host:
        result = await login(host, "alice@example.org", ldap_server_tls.user_password)
        assert not result.ok and "not a readable file" in result.reason


async def test_ldap_outage_is_not_counted_as_a_guess(db_url: str, tmp_path: Path,
                                                     ldap_server: LdapServer) -> None:
    down = ldap_settings(ldap_server, server="ldap://127.0.0.1:1", timeout=2.0)
    await init_database(db_url, tmp_path)
    limits = {"failure_delay": 0.0, "max_failures_per_account": 2,
              "max_failures_per_address": 0}
    async with auth_host(tmp_path, db_url, {**limits, "mode": "ldap"}, down) as host:
        await admin.add_domain(host.directory.engine, "example.org", 5)
        await admin.add_user(host.directory.engine, "alice@example.org", "")
        for _ in range(3):
            result = await login(host, "alice@example.org", ldap_server.user_password)
            assert not result.ok and "unavailable" in result.reason
        mechanism = password_mechanism(host)
        assert not await mechanism.throttle.account_blocked("alice@example.org")


async def test_pool_survives_a_dropped_connection(db_url: str, tmp_path: Path,
                                                  ldap_server: LdapServer) -> None:
    async with ldap_host(db_url, tmp_path, ldap_settings(ldap_server, pool_size=2)) as host:
        mechanism = password_mechanism(host)
        assert (await login(host, "alice@example.org", ldap_server.user_password)).ok
        pools = list(mechanism.ldap._pools.values())
        assert len(pools) == 1 and pools[0].idle == 1
        for conn in pools[0]._idle:  # what a server restart does to idle connections
            with socket.fromfd(conn.fileno(), socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        mechanism.cache.clear()
        assert pools[0].opened == 1
        assert (await login(host, "alice@example.org", ldap_server.user_password)).ok
        assert pools[0].opened == 2 and pools[0].idle == 1
        # A healthy pooled connection is reused.
        mechanism.cache.clear()
        assert (await login(host, "alice@example.org", ldap_server.user_password)).ok
        assert pools[0].opened == 2
