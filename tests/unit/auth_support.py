"""A real host with a real directory for the password-mechanism tests.

:func:`auth_host` builds a :class:`~gateway.host.Host` from a config
directory (so ``[auth]``, ``[ldap]`` and ``[redis]`` go through the real
configuration code), opens the directory at ``url`` (empty: SQLite under
``tmp_path``) and attaches it as ``Host.startup`` does. :func:`populate` adds
users the way the ``gateway`` CLI does (``gateway.directory.admin``) and
changes what grommunio's admin API or LDAP import would change
(address_status, display type, externid) with plain SQL on the same tables.
The same scenarios run on SQLite and MariaDB.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, text, update

from gateway.auth import AuthResult, Credentials
from gateway.auth.password import PasswordMechanism
from gateway.directory import Directory, admin, schema
from gateway.directory.engine import create_engine
from gateway.directory.models import Domains, OrgParam, Orgs, UserProperties, Users
from gateway.directory.passwords import hash_password
from gateway.directory.types import PR_DISPLAY_TYPE_EX
from gateway.host import Host, build_host

FAST = {"failure_delay": 0.0, "max_failures_per_account": 0, "max_failures_per_address": 0}
"""[auth] overrides for tests that do not look at throttling."""


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


def write_config(directory: Path, sections: Mapping[str, Mapping[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    body = ""
    for section, values in sections.items():
        body += f"[{section}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items())
    (directory / "50-auth-test.toml").write_text(body)
    return directory


async def init_database(url: str, tmp_path: Path) -> None:
    """``gateway db init`` on a non-SQLite database (SQLite initialises itself)."""
    if url:
        engine = create_engine(url, tmp_path)
        try:
            await schema.init(engine)
        finally:
            await engine.dispose()


@asynccontextmanager
async def auth_host(tmp_path: Path, url: str = "", auth: Mapping[str, Any] | None = None,
                    ldap: Mapping[str, Any] | None = None,
                    redis_url: str = "", name: str = "conf") -> AsyncIterator[Host]:
    """A host whose ``host.directory`` is open on ``url`` (shared between hosts of one test)."""
    data_dir = tmp_path / "data"
    sections: dict[str, dict[str, Any]] = {"gateway": {"data_dir": str(data_dir)},
                                           "auth": dict(FAST if auth is None else auth)}
    if url:
        sections["directory"] = {"url": url}
    if ldap:
        sections["ldap"] = dict(ldap)
    if redis_url:
        sections["redis"] = {"url": redis_url}
    host = build_host([write_config(tmp_path / name, sections)], environ={})
    host.directory = await Directory.open(url, data_dir, 60.0)
    try:
        yield host
    finally:
        mechanism = password_mechanism(host)
        await mechanism.close()
        await host.directory.close()
        host.directory = None


def password_mechanism(host: Host) -> PasswordMechanism:
    found = host.auth.get("password")
    assert isinstance(found, PasswordMechanism)
    return found


async def login(host: Host, username: str, password: str | bytes, protocol: str = "imap",
                client: str = "192.0.2.10") -> AuthResult:
    secret = password.encode() if isinstance(password, str) else password
    return await host.auth.authenticate(Credentials("password", protocol, client, username,
                                                    secret))


async def set_columns(directory: Directory, address: str, **values: Any) -> None:
    async with directory.engine.begin() as conn:
        await conn.execute(update(Users).where(Users.username == address).values(**values))
    directory.invalidate()


async def set_externid(directory: Directory, address: str, externid: bytes) -> None:
    """What grommunio's LDAP import writes (a bound ``bytes`` parameter: this also
    proves aiomysql can bind varbinary values with the pinned PyMySQL)."""
    async with directory.engine.begin() as conn:
        await conn.execute(text("UPDATE users SET externid = :externid WHERE username = :name"),
                           {"externid": externid, "name": address})
    directory.invalidate()


async def set_display_type(directory: Directory, address: str, value: int | None) -> None:
    user = await directory.get_user(address)
    assert user is not None
    async with directory.engine.begin() as conn:
        await conn.execute(delete(UserProperties).where(
            UserProperties.user_id == user.id, UserProperties.proptag == PR_DISPLAY_TYPE_EX))
        if value is not None:
            await conn.execute(insert(UserProperties).values(
                user_id=user.id, proptag=PR_DISPLAY_TYPE_EX, order_id=1,
                propval_str=str(value)))
    directory.invalidate()


async def add_org(directory: Directory, domain: str, params: Mapping[str, str]) -> int:
    """An organisation holding ``domain`` with ``orgparam`` rows ``params``."""
    async with directory.engine.begin() as conn:
        org = await conn.execute(insert(Orgs).values(name=f"org of {domain}", description=""))
        org_id = int(org.inserted_primary_key[0])  # type: ignore[index]
        if params:
            await conn.execute(insert(OrgParam).values(
                [{"org_id": org_id, "key": k, "value": v} for k, v in params.items()]))
        await conn.execute(update(Domains).where(Domains.domainname == domain)
                           .values(org_id=org_id))
    directory.invalidate()
    return org_id


PASSWORD = "s3cret pass"
"""alice's, bob's and shared's password in :func:`populate`."""


async def populate(directory: Directory) -> None:
    """example.test with alice (alias, altname), bob (no IMAP), carol (no password),
    shared (a shared mailbox), room (display type 7) and a few grommunio states."""
    engine = directory.engine
    hashed = hash_password(PASSWORD)
    await admin.add_domain(engine, "example.test", 50)
    await admin.add_user(engine, "alice@example.test", hashed, "Alice")
    await admin.add_alias(engine, "a.liddell@example.test", "alice@example.test")
    await admin.add_altname(engine, "alice-login", "alice@example.test")
    await admin.add_user(engine, "bob@example.test", hashed, deny={"imap", "ews"})
    await admin.add_user(engine, "carol@example.test", "")
    await admin.add_user(engine, "shared@example.test", hashed)
    await set_columns(directory, "shared@example.test", address_status=4)
    for name, status in (("suspended", 1), ("deleted", 3), ("contact", 5),
                         ("insuspdomain", 0x10)):
        await admin.add_user(engine, f"{name}@example.test", hashed)
        await set_columns(directory, f"{name}@example.test", address_status=status)
    await admin.add_user(engine, "room@example.test", hashed)
    await set_display_type(directory, "room@example.test", 7)
    await admin.add_user(engine, "notype@example.test", hashed)
    await set_display_type(directory, "notype@example.test", None)
    directory.invalidate()
