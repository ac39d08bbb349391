"""Scenarios shared by the SQLite (unit) and MariaDB (integration) directory tests.

Each ``check_*`` coroutine takes an open :class:`Directory` on an initialised,
empty database, fills it and asserts; the same code runs on both engines.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import func, insert, select, text, update

from gateway.directory import Directory, admin, schema
from gateway.directory.models import (
    Aliases,
    Altnames,
    Domains,
    Options,
    OrgParam,
    Orgs,
    UserProperties,
    Users,
)
from gateway.directory.passwords import hash_password, verify_password
from gateway.directory.types import PR_DISPLAY_NAME, PR_DISPLAY_TYPE_EX
from tests.harness.gateway import REPO, gateway_env


async def populate(directory: Directory) -> None:
    """Two domains, an organisation with LDAP settings, users, an alias and altnames."""
    engine = directory.engine
    async with engine.begin() as conn:
        org = await conn.execute(insert(Orgs).values(name="Acme", description="test org"))
        org_id = org.inserted_primary_key[0]  # type: ignore[index]
        await conn.execute(insert(OrgParam).values(
            [{"org_id": org_id, "key": "ldap_uri", "value": "ldap://127.0.0.1"},
             {"org_id": org_id, "key": "ldap_basedn", "value": "dc=example,dc=org"}]))
    await admin.add_domain(engine, "example.test", 10)
    await admin.add_domain(engine, "other.test", 10)
    async with engine.begin() as conn:
        await conn.execute(update(Domains).where(Domains.domainname == "other.test")
                           .values(org_id=org_id))
    await admin.add_user(engine, "alice@example.test", hash_password("secret"), "Alice Liddell")
    await admin.add_user(engine, "bob@example.test", "", None, deny={"imap"})
    await admin.add_user(engine, "carol@other.test", hash_password("pw"))
    await admin.add_alias(engine, "a.liddell@example.test", "alice@example.test")
    await admin.add_altname(engine, "alice@EXAMPLE.ORG", "alice@example.test")
    await admin.add_altname(engine, "bob-login", "bob@example.test")


async def check_case_insensitive_lookups(directory: Directory) -> None:
    await populate(directory)
    for name in ("alice@example.test", "ALICE@Example.Test", "a.liddell@example.test",
                 "A.Liddell@EXAMPLE.TEST", "alice@example.org", "Alice@Example.Org"):
        found = await directory.resolve_login(name)
        assert found.reason == "", name
        assert found.user is not None and found.user.username == "alice@example.test", name
    alice = (await directory.resolve_login("alice@example.test")).user
    assert alice is not None
    assert alice.display_type == 0 and alice.display_name == "Alice Liddell"
    assert alice.externid is None and alice.org_id == 0 and alice.maildir == ""
    assert alice.privilege_bits == 0xF and alice.address_status == 0
    assert verify_password("secret", alice.password)
    assert (await directory.resolve_login("BOB-LOGIN")).user is not None
    carol = await directory.get_user("CAROL@OTHER.TEST")
    assert carol is not None and carol.org_id > 0
    assert await directory.org_params(carol.org_id) == {
        "ldap_uri": "ldap://127.0.0.1", "ldap_basedn": "dc=example,dc=org"}
    assert await directory.org_params(0) == {}
    # Kerberos principals match exactly.
    assert (await directory.realm_user("alice@EXAMPLE.ORG")) == alice
    assert await directory.realm_user("alice@example.org") is None
    missing = await directory.resolve_login("nobody@example.test")
    assert missing.user is None and missing.reason == "no such user"


async def check_ambiguous_login(directory: Directory) -> None:
    await populate(directory)
    # grommunio does not forbid it: an altname of bob equal to alice's alias.
    bob = await directory.get_user("bob@example.test")
    assert bob is not None
    async with directory.engine.begin() as conn:
        await conn.execute(insert(Altnames).values(user_id=bob.id,
                                                   altname="A.LIDDELL@example.test", magic=0))
    directory.invalidate()
    found = await directory.resolve_login("a.liddell@example.test")
    assert found.user is None and found.reason == "ambiguous login name"
    # The same user reached by two names is not ambiguous.
    alice = await directory.get_user("alice@example.test")
    assert alice is not None
    async with directory.engine.begin() as conn:
        await conn.execute(insert(Altnames).values(user_id=alice.id,
                                                   altname="alice@example.test", magic=0))
    directory.invalidate()
    assert (await directory.resolve_login("alice@example.test")).user == alice


HOSTILE_NAMES = (
    "", " ", "alice@example.test ", " alice@example.test", "alice@example.test\0",
    "alice@example.test\n", "alice@exampIe.test", "\u0430lice@example.test",  # Cyrillic a
    "alice@example.t\u0435st", "' OR '1'='1", "alice@example.test' --", "%", "_",
    "alice%", "\"alice@example.test\"", "x" * 321, "a" * 5000, "\\", "alice@example.test;",
)


async def check_hostile_names(directory: Directory) -> None:
    await populate(directory)
    for name in HOSTILE_NAMES:
        assert (await directory.resolve_login(name)).user is None, repr(name)
        assert await directory.get_user(name) is None, repr(name)
        assert await directory.realm_user(name) is None, repr(name)
    async with directory.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(Users))).scalar() == 3


async def check_init_leaves_populated_database(directory: Directory) -> None:
    await populate(directory)
    again = await schema.init(directory.engine)
    assert not again.created and "nothing done" in again.message
    async with directory.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(Users))).scalar() == 3
        assert (await conn.execute(select(func.count()).select_from(Aliases))).scalar() == 1
        props = (await conn.execute(
            select(func.count()).select_from(UserProperties)
            .where(UserProperties.proptag == PR_DISPLAY_TYPE_EX))).scalar()
        assert props == 3
        name = (await conn.execute(select(UserProperties.propval_str)
                                   .where(UserProperties.proptag == PR_DISPLAY_NAME))).scalar()
        assert name == "Alice Liddell"
    assert (await directory.resolve_login("alice@example.test")).user is not None


async def check_upgrade_from_132(directory: Directory) -> None:
    """A grommunio database at n132 (no disabled_plugins, no gateway table) is upgraded
    in place: the users stay, the missing tables appear, the version becomes 133."""
    await populate(directory)
    async with directory.engine.begin() as conn:
        await conn.execute(text("DROP TABLE disabled_plugins"))
        await conn.execute(text("DROP TABLE gateway_denied_protocols"))
        await conn.execute(update(Options).where(Options.key == "schemaversion")
                           .values(value="132"))
    state = await schema.inspect_schema(directory.engine)
    assert state.version == 132 and state.missing_gateway_tables
    result = await schema.upgrade(directory.engine)
    assert result.applied == [133] and result.added_tables == ["gateway_denied_protocols"]
    state = await schema.inspect_schema(directory.engine)
    assert state.version == 133 and "disabled_plugins" in state.tables
    assert not state.missing_gateway_tables
    again = await schema.upgrade(directory.engine)
    assert again.applied == [] and again.added_tables == []
    assert (await directory.resolve_login("a.liddell@example.test")).user is not None


def run_gateway(*args: str, config_dirs: Sequence[Path] = (), stdin: str | None = None,
                timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``python -m gateway ARGS`` with ``stdin`` fed to it (run_cli has no input)."""
    command = [sys.executable, "-m", "gateway"]
    for directory in config_dirs:
        command += ["--config-dir", str(directory)]
    env = gateway_env()
    env.pop("GATEWAY_CONFIG_DIR", None)
    return subprocess.run(
        [*command, *args], input=stdin if stdin is not None else "", capture_output=True,
        text=True, timeout=timeout, env=env, cwd=REPO,
    )


def write_config(directory: Path, data_dir: Path, url: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    body = f'[gateway]\ndata_dir = "{data_dir}"\n'
    if url:
        body += f'[directory]\nurl = "{url}"\n'
    (directory / "50-directory.toml").write_text(body)
    return directory


def cli_round_trip(conf: Path) -> None:
    """The administrator's path through every directory command, on one database."""
    def ok(*args: str, stdin: str | None = None) -> str:
        done = run_gateway(*args, config_dirs=[conf], stdin=stdin)
        assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
        return done.stdout

    def fails(*args: str, stdin: str | None = None) -> str:
        done = run_gateway(*args, config_dirs=[conf], stdin=stdin)
        assert done.returncode != 0, f"{args} succeeded: {done.stdout}"
        assert "Traceback" not in done.stderr, done.stderr
        return done.stderr

    assert "added domain example.test" in ok("domain", "add", "Example.Test", "--max-users", "3")
    assert "exists already" in fails("domain", "add", "example.test")
    assert "example.test" in ok("domain", "list")
    ok("user", "add", "alice@example.test", "--password-stdin", "--display-name", "Alice",
       "--deny", "ews,web", stdin="s3cret pass\n")
    assert "already a login name" in fails("user", "add", "ALICE@example.test")
    assert "unknown domain" in fails("user", "add", "x@nowhere.test")
    assert "not a valid e-mail address" in fails(
        "user", "add", "x'; DROP TABLE users; --@example.test")
    assert "at most 320" in fails("user", "add", "a" * 300 + "@" + "b" * 30 + ".test")
    assert "unknown privilege" in fails("user", "add", "bob@example.test", "--allow", "root")
    assert "empty password" in fails("user", "add", "bob@example.test", "--password-stdin",
                                     stdin="\n")
    ok("user", "add", "o'brien@example.test")
    ok("user", "add", "bob@example.test", "--allow", "web", "--homeserver", "0")
    assert "maximum of 3 users" in fails("user", "add", "dave@example.test")
    assert "added alias" in ok("alias", "add", "al@example.test", "alice@example.test")
    assert "unknown domain" in fails("alias", "add", "al@nowhere.test", "alice@example.test")
    assert "added altname" in ok("altname", "add", "alice@EXAMPLE.ORG", "alice@example.test")
    assert "already a login name" in fails("altname", "add", "AL@example.test",
                                           "bob@example.test")
    assert "no such user" in fails("alias", "add", "b2@example.test", "zed@example.test")
    listing = ok("user", "list")
    alice_line = next(line for line in listing.splitlines() if line.startswith("alice@"))
    assert "name='Alice'" in alice_line and "aliases=al@example.test" in alice_line
    assert "privileges=imap,smtp,chgpasswd,pubaddr,eas,dav,mapi" in alice_line
    assert "o'brien@example.test" in listing
    ok("user", "set", "bob@example.test", "--deny", "mapi,imap", "--display-name", "Bob")
    ok("user", "passwd", "bob@example.test", "--password-stdin", stdin="n3w\n")
    users = {u["username"]: u for u in json.loads(ok("user", "list", "--json"))}
    assert users["bob@example.test"]["display_name"] == "Bob"
    assert "imap" not in users["bob@example.test"]["privileges"]
    assert "mapi" not in users["bob@example.test"]["privileges"]
    assert users["alice@example.test"]["altnames"] == ["alice@EXAMPLE.ORG"]
    assert "deleted user o'brien@example.test" in ok("user", "del", "O'Brien@example.test")
    assert "no such user" in fails("user", "del", "o'brien@example.test")
    assert "users=2/3" in ok("domain", "list")
    init = ok("db", "init")
    assert "nothing done" in init
    assert "current" in ok("db", "upgrade")
