"""Directory lookups on the embedded SQLite database: login names, cache, schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, update

from gateway.cache import TtlCache
from gateway.directory import Directory, DirectoryError, LoginLookup, User, admin, schema
from gateway.directory.engine import SQLITE_FILE, create_engine, resolve_url
from gateway.directory.models import Options, UserProperties
from gateway.directory.types import PR_DISPLAY_TYPE_EX
from tests.unit import directory_support as cases


@pytest.fixture
async def directory(tmp_path: Path) -> AsyncIterator[Directory]:
    opened = await Directory.open("", tmp_path / "data")
    yield opened
    await opened.close()


async def test_open_creates_the_embedded_schema(tmp_path: Path) -> None:
    directory = await Directory.open("", tmp_path / "fresh")
    try:
        assert (tmp_path / "fresh" / SQLITE_FILE).is_file()
        state = await schema.inspect_schema(directory.engine)
        assert state.version == schema.SCHEMA_VERSION == 133
        assert not state.missing_gateway_tables
        async with directory.engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            keys = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
        assert mode == "wal" and keys == 1
    finally:
        await directory.close()


async def test_init_on_an_empty_database_then_refuses(tmp_path: Path) -> None:
    engine = create_engine("", tmp_path)
    try:
        first = await schema.init(engine)
        assert first.created and "133" in first.message
        second = await schema.init(engine)
        assert not second.created and "nothing done" in second.message
    finally:
        await engine.dispose()


async def test_init_keeps_other_tables_and_refuses_a_partial_grommunio_database(
    tmp_path: Path,
) -> None:
    engine = create_engine("", tmp_path)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE unrelated (x INTEGER)")
        assert (await schema.init(engine)).created
        engine2 = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'partial.db'}", tmp_path)
        async with engine2.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE users (id INTEGER PRIMARY KEY)")
        result = await schema.init(engine2)
        assert not result.created and "only users" in result.message
        with pytest.raises(DirectoryError, match="no schemaversion"):
            await schema.upgrade(engine2)
        await engine2.dispose()
    finally:
        await engine.dispose()


async def test_init_leaves_a_populated_database_untouched(directory: Directory) -> None:
    await cases.check_init_leaves_populated_database(directory)


async def test_upgrade_applies_steps_from_132(directory: Directory) -> None:
    await cases.check_upgrade_from_132(directory)


@pytest.mark.parametrize(("version", "message"), [
    ("134", "newer than 133"), ("100", "gromox-dbop -U")])
async def test_upgrade_refuses_newer_and_too_old(directory: Directory, version: str,
                                                 message: str) -> None:
    async with directory.engine.begin() as conn:
        await conn.execute(update(Options).where(Options.key == "schemaversion")
                           .values(value=version))
    with pytest.raises(DirectoryError, match=message):
        await schema.upgrade(directory.engine)
    assert (await schema.inspect_schema(directory.engine)).version == int(version)


async def test_upgrade_on_an_empty_database_sends_to_init(tmp_path: Path) -> None:
    engine = create_engine("", tmp_path)
    try:
        with pytest.raises(DirectoryError, match="db init"):
            await schema.upgrade(engine)
    finally:
        await engine.dispose()


async def test_open_refuses_an_unusable_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}", tmp_path)
    assert engine.url.drivername == "sqlite+aiosqlite"
    async with engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE users (id INTEGER PRIMARY KEY)")
        await conn.exec_driver_sql("CREATE TABLE options (key TEXT PRIMARY KEY, value TEXT)")
        await conn.exec_driver_sql("INSERT INTO options VALUES ('schemaversion', '100')")
    await engine.dispose()
    with pytest.raises(DirectoryError, match="schema 100"):
        await Directory.open(f"sqlite+aiosqlite:///{path}", tmp_path)


def test_urls() -> None:
    assert str(resolve_url("", Path("/d"))) == f"sqlite+aiosqlite:////d/{SQLITE_FILE}"
    assert resolve_url("mysql://u:p@h/db", Path()).drivername == "mysql+aiomysql"
    assert resolve_url("mariadb://u:p@h/db", Path()).drivername == "mariadb+aiomysql"
    with pytest.raises(DirectoryError, match="unsupported"):
        resolve_url("postgresql://h/db", Path())
    with pytest.raises(DirectoryError, match="not a SQLAlchemy URL"):
        resolve_url("::nonsense::", Path())


async def test_case_insensitive_lookups(directory: Directory) -> None:
    await cases.check_case_insensitive_lookups(directory)


async def test_ambiguous_login(directory: Directory) -> None:
    await cases.check_ambiguous_login(directory)


async def test_hostile_names_find_nobody(directory: Directory) -> None:
    await cases.check_hostile_names(directory)


async def test_lookups_are_cached_until_invalidated(directory: Directory) -> None:
    await cases.populate(directory)
    before = await directory.get_user("alice@example.test")
    assert before is not None and before.display_type == 0
    assert (await directory.resolve_login("Alice@example.test")).user == before
    async with directory.engine.begin() as conn:
        await conn.execute(update(UserProperties)
                           .where(UserProperties.user_id == before.id,
                                  UserProperties.proptag == PR_DISPLAY_TYPE_EX)
                           .values(propval_str="7"))
    assert await directory.get_user("alice@example.test") == before  # cached
    assert (await directory.resolve_login("ALICE@example.test")).user == before
    directory.invalidate()
    after = await directory.get_user("alice@example.test")
    assert after is not None and after.display_type == 7
    # An unknown name is remembered only briefly, and dropped on invalidate as well.
    assert (await directory.resolve_login("new@example.test")).user is None
    await admin.add_user(directory.engine, "new@example.test")
    directory.invalidate()
    assert (await directory.resolve_login("new@example.test")).user is not None


async def test_missing_display_type_row_is_none(directory: Directory) -> None:
    await cases.populate(directory)
    user = await directory.get_user("bob@example.test")
    assert user is not None
    async with directory.engine.begin() as conn:
        await conn.execute(delete(UserProperties).where(UserProperties.user_id == user.id))
        await conn.execute(insert(UserProperties).values(
            user_id=user.id, proptag=PR_DISPLAY_TYPE_EX, order_id=2, propval_str="junk"))
    directory.invalidate()
    bob = await directory.get_user("bob@example.test")
    assert bob is not None and bob.display_type is None and bob.display_name == ""


async def test_denied_protocols(directory: Directory) -> None:
    await cases.populate(directory)
    await admin.set_user(directory.engine, "alice@example.test", deny={"ews", "mapi"})
    alice = await directory.get_user("alice@example.test")
    assert alice is not None
    assert await directory.denied_protocols(alice) == frozenset({"ews", "mapi"})
    await admin.set_user(directory.engine, "alice@example.test", allow={"mapi"})
    directory.invalidate()
    assert await directory.denied_protocols(alice) == frozenset({"ews"})


async def test_deleting_a_user_removes_its_names(directory: Directory) -> None:
    await cases.populate(directory)
    await admin.set_user(directory.engine, "alice@example.test", deny={"ews"})
    assert await admin.delete_user(directory.engine, "ALICE@example.test") == (
        "alice@example.test")
    directory.invalidate()
    for name in ("alice@example.test", "a.liddell@example.test", "alice@example.org"):
        assert (await directory.resolve_login(name)).reason == "no such user"
    # Its names are free again.
    await admin.add_user(directory.engine, "a.liddell@example.test")


def test_ttl_cache_expires_and_is_bounded() -> None:
    cache = TtlCache(60.0, max_entries=3)
    for key in "abcd":
        cache.put(key, key.upper())
    assert len(cache) == 3 and cache.get("a") is not cache.get("b")
    assert cache.get("d") == "D"
    cache.put("e", "E", ttl=0)
    assert len(cache) == 3
    off = TtlCache(0.0)
    off.put("x", 1)
    assert len(off) == 0


def test_user_repr_hides_the_password_hash() -> None:
    user = User(id=1, username="a@b.c", domain_id=1, password="$6$salt$hash", maildir="",
                lang="", timezone="", privilege_bits=0, address_status=0, externid=None,
                homeserver=0, display_type=0, display_name="", org_id=0)
    assert "$6$" not in repr(user)
    assert LoginLookup(user, "").user is user


async def test_domain_users_lists_primary_addresses_of_one_domain(directory: Directory) -> None:
    await cases.populate(directory)
    assert await directory.domain_users("Example.TEST") == ["alice@example.test",
                                                            "bob@example.test"]
    assert await directory.domain_users("other.test") == ["carol@other.test"]
    assert await directory.domain_users("nowhere.test") == []
    assert await directory.domain_users("bad domain\x00") == []
