"""The service fixtures of tests/harness work with real clients.

Redis through ``redis.asyncio``, MariaDB through SQLAlchemy's asyncio engine
with aiomysql, Kerberos through ``kinit`` and a GSSAPI security context
(``gssapi``), LDAP through ``ldapwhoami``; plus the private-instance paths
of Redis and MariaDB, started directly even when local servers run.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.harness.daemons import find_binary, want_private
from tests.harness.kerberos import Krb5Realm
from tests.harness.ldap_server import LdapServer
from tests.harness.mariadb import MariaDB, local_mariadb, private_mariadb
from tests.harness.ports import LOCALHOST, port_open
from tests.harness.redis_server import RedisServer, local_redis, private_redis


async def _redis_round_trip(server: RedisServer) -> None:
    client = aioredis.from_url(server.url, socket_timeout=5)
    key = f"gwtest:{uuid.uuid4().hex}"
    try:
        assert await client.ping() is True
        assert await client.set(key, "héllo", ex=60) is True
        assert await client.get(key) == "héllo".encode()
        assert await client.delete(key) == 1
        assert await client.get(key) is None
    finally:
        await client.aclose()


async def _mariadb_round_trip(server: MariaDB) -> None:
    name = server.create_database()
    assert name.startswith("gwtest_")
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE %s", (name,))
        assert cur.fetchall() == ((name,),)

    metadata = sa.MetaData()
    items = sa.Table(
        "items",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(200), nullable=False),
    )
    engine = create_async_engine(server.url(name))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(items.insert().values(subject="Grüße ✉"))
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(items.c.id, items.c.subject))).all()
            database = (await conn.execute(sa.text("SELECT DATABASE()"))).scalar_one()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "Grüße ✉")]
    assert database == name


async def test_redis_ping_set_get(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://{redis_server.host}:{redis_server.port}/0"
    # Local first, private when forced or when no local server answers.
    assert redis_server.private == (want_private() or local_redis() is None)
    await _redis_round_trip(redis_server)


async def test_private_redis_starts_and_stops(tmp_path: Path) -> None:
    with private_redis(tmp_path / "redis") as server:
        assert server.private
        assert server.host == LOCALHOST
        assert server.port != 6379
        await _redis_round_trip(server)
    assert not port_open(LOCALHOST, server.port)


async def test_mariadb_create_database_and_round_trip(mariadb: MariaDB) -> None:
    assert mariadb.private == (want_private() or local_mariadb() is None)
    url = mariadb.url("somedb")
    assert url.startswith(f"mysql+aiomysql://{mariadb.user}")
    assert url.endswith(f"@{mariadb.host}:{mariadb.port}/somedb")
    await _mariadb_round_trip(mariadb)


async def test_private_mariadb_starts_and_stops(tmp_path: Path) -> None:
    with private_mariadb(tmp_path / "mariadb") as server:
        assert server.private
        assert server.port != 3306
        await _mariadb_round_trip(server)
        server.drop_created()
        assert server.created == []
    assert not port_open(LOCALHOST, server.port)


def test_kerberos_kinit_with_password(krb5_realm: Krb5Realm, tmp_path: Path) -> None:
    ccache = tmp_path / "ccache"
    result = krb5_realm.kinit(ccache=ccache)
    assert result.returncode == 0, result.stderr
    klist = subprocess.run(
        [find_binary("klist", "krb5-user"), f"FILE:{ccache}"],
        env={**os.environ, **krb5_realm.env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert f"Default principal: {krb5_realm.user_principal}" in klist.stdout

    wrong = krb5_realm.kinit(password="not-the-password", ccache=tmp_path / "wrong")
    assert wrong.returncode != 0
    assert "incorrect" in wrong.stderr.lower() or "preauthentication failed" in wrong.stderr.lower()


def test_kerberos_gssapi_context(
    krb5_realm: Krb5Realm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gssapi = pytest.importorskip("gssapi")
    ccache = tmp_path / "alice.ccache"
    result = krb5_realm.kinit(ccache=ccache)
    assert result.returncode == 0, result.stderr
    for key, value in krb5_realm.env.items():
        monkeypatch.setenv(key, value)

    target = gssapi.Name("HTTP@localhost", gssapi.NameType.hostbased_service)
    initiator = gssapi.SecurityContext(
        name=target,
        creds=gssapi.Credentials(usage="initiate", store={"ccache": f"FILE:{ccache}"}),
        usage="initiate",
    )
    acceptor = gssapi.SecurityContext(
        creds=gssapi.Credentials(usage="accept", store={"keytab": str(krb5_realm.keytab)}),
        usage="accept",
    )
    token = initiator.step()
    for _ in range(10):
        if token is None or acceptor.complete:
            break
        token = acceptor.step(token)
        if token is not None and not initiator.complete:
            token = initiator.step(token)
    assert acceptor.complete and initiator.complete
    assert str(acceptor.initiator_name) == krb5_realm.user_principal == "alice@EXAMPLE.ORG"
    assert str(initiator.target_name) == krb5_realm.service_principal

    # The session protects messages both ways.
    wrapped = initiator.wrap(b"hello gateway", encrypt=True).message
    assert acceptor.unwrap(wrapped).message == b"hello gateway"


def _whoami(server: LdapServer, dn: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_binary("ldapwhoami", "ldap-utils"), "-x", "-H", server.uri, "-D", dn, "-w", password],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_ldap_user_binds(ldap_server: LdapServer) -> None:
    assert ldap_server.uri.startswith(f"ldap://{LOCALHOST}:")
    ok = _whoami(ldap_server, ldap_server.user_dn, ldap_server.user_password)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"dn:{ldap_server.user_dn}"

    bad = _whoami(ldap_server, ldap_server.user_dn, "wrong-password")
    assert bad.returncode == 49, bad.stderr
    assert "Invalid credentials" in bad.stderr

    entry = ldap_server.search(f"(uid={ldap_server.user})", "mail")
    assert f"mail: {ldap_server.user_mail}" in entry


def test_ldap_add_ldif(ldap_server: LdapServer) -> None:
    uid = f"bob{uuid.uuid4().hex[:8]}"
    ldap_server.add_ldif(
        f"dn: uid={uid},{ldap_server.people_dn}\n"
        "objectClass: inetOrgPerson\n"
        f"uid: {uid}\ncn: Bob\nsn: Builder\nmail: {uid}@example.org\nuserPassword: pw-{uid}\n"
    )
    ok = _whoami(ldap_server, f"uid={uid},{ldap_server.people_dn}", f"pw-{uid}")
    assert ok.returncode == 0, ok.stderr
    with pytest.raises(RuntimeError, match="Already exists"):
        ldap_server.add_ldif(f"dn: {ldap_server.user_dn}\nobjectClass: inetOrgPerson\n"
                             "uid: alice\ncn: A\nsn: B\n")
