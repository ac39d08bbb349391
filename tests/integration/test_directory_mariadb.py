"""The directory on a real MariaDB: schema, case-insensitive lookups, a database made
the way grommunio makes it, and the CLI round trip."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.directory import Directory, DirectoryError, admin, schema
from gateway.directory.engine import SQLITE_FILE, create_engine
from gateway.directory.passwords import hash_password, verify_password
from gateway.directory.privileges import account_problem, protocol_allowed
from tests.harness.mariadb import MariaDB
from tests.unit import directory_support as cases


@pytest.fixture
async def directory(mariadb: MariaDB, tmp_path: Path) -> AsyncIterator[Directory]:
    url = mariadb.url(mariadb.create_database("gwdir"))
    engine = create_engine(url, tmp_path)
    assert (await schema.init(engine)).created
    await engine.dispose()
    opened = await Directory.open(url, tmp_path)
    yield opened
    await opened.close()


async def test_open_refuses_an_empty_mariadb(mariadb: MariaDB, tmp_path: Path) -> None:
    url = mariadb.url(mariadb.create_database("gwempty"))
    with pytest.raises(DirectoryError, match="gateway db init"):
        await Directory.open(url, tmp_path)


async def test_init_creates_n133_with_ascii_columns(directory: Directory,
                                                    mariadb: MariaDB) -> None:
    state = await schema.inspect_schema(directory.engine)
    assert state.version == 133 and not state.missing_gateway_tables
    database = directory.engine.url.database
    with mariadb.connect(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name, column_name, character_set_name, collation_name "
                    "FROM information_schema.columns WHERE table_schema=%s AND "
                    "column_name IN ('username','aliasname','domainname','altname')",
                    (database,))
        columns = {(t, c): (cs, coll) for t, c, cs, coll in cur.fetchall()}
        cur.execute("SELECT `value` FROM `options` WHERE `key`='schemaversion'")
        assert cur.fetchone() == ("133",)
    assert columns[("users", "username")][0] == "ascii"
    assert columns[("aliases", "aliasname")][0] == "ascii"
    assert columns[("domains", "domainname")][0] == "ascii"
    assert columns[("altnames", "altname")][0] == "utf8mb4"
    assert all(coll.endswith("_ci") for _, coll in columns.values())


async def test_init_leaves_a_populated_database_untouched(directory: Directory) -> None:
    await cases.check_init_leaves_populated_database(directory)


async def test_upgrade_applies_steps_from_132(directory: Directory) -> None:
    await cases.check_upgrade_from_132(directory)


async def test_upgrade_refuses_a_newer_database(directory: Directory) -> None:
    async with directory.engine.begin() as conn:
        await conn.exec_driver_sql(
            "UPDATE `options` SET `value`='140' WHERE `key`='schemaversion'")
    with pytest.raises(DirectoryError, match="newer than 133"):
        await schema.upgrade(directory.engine)


async def test_case_insensitive_lookups(directory: Directory) -> None:
    await cases.check_case_insensitive_lookups(directory)


async def test_ambiguous_login(directory: Directory) -> None:
    await cases.check_ambiguous_login(directory)


async def test_hostile_names_find_nobody(directory: Directory) -> None:
    await cases.check_hostile_names(directory)


async def test_duplicate_names_differing_in_case_are_refused(directory: Directory) -> None:
    await admin.add_domain(directory.engine, "example.test")
    await admin.add_user(directory.engine, "alice@example.test")
    with pytest.raises(admin.AdminError, match="already a login name"):
        await admin.add_user(directory.engine, "ALICE@EXAMPLE.TEST")
    with pytest.raises(admin.AdminError, match="exists already"):
        await admin.add_domain(directory.engine, "EXAMPLE.test")


# A database as grommunio makes it: gromox-dbop's n133 DDL (the tables logins read),
# users inserted the way grommunio's admin API and LDAP import write them.
GROMMUNIO_DDL = [
    """CREATE TABLE `options` (`key` varchar(32) CHARACTER SET ascii NOT NULL,
       `value` varchar(255) DEFAULT NULL, PRIMARY KEY (`key`)) DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE `orgs` (`id` int(10) unsigned NOT NULL AUTO_INCREMENT,
       `name` varchar(32) NOT NULL, `description` varchar(128), PRIMARY KEY (`id`))
       DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE `domains` (`id` int(10) unsigned NOT NULL AUTO_INCREMENT,
       `org_id` int(10) unsigned NOT NULL DEFAULT 0,
       `domainname` varchar(255) CHARACTER SET ascii NOT NULL,
       `homeserver` tinyint(5) NOT NULL DEFAULT 0, `homedir` varchar(128) NOT NULL DEFAULT '',
       `max_user` int(10) unsigned NOT NULL, `title` varchar(128) NOT NULL DEFAULT '',
       `address` varchar(128) NOT NULL DEFAULT '', `admin_name` varchar(32) NOT NULL DEFAULT '',
       `tel` varchar(64) NOT NULL DEFAULT '', `end_day` date NOT NULL,
       `domain_status` tinyint(4) NOT NULL DEFAULT 0,
       `sync_policy` text CHARACTER SET ascii DEFAULT NULL, `chat_id` varchar(26) DEFAULT NULL,
       PRIMARY KEY (`id`), UNIQUE KEY `domainname` (`domainname`)) DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE `users` (`id` int(10) unsigned NOT NULL AUTO_INCREMENT,
       `username` varchar(320) CHARACTER SET ascii NOT NULL,
       `primary_email` varchar(320) CHARACTER SET ascii, `altname` varchar(64),
       `password` varchar(136) CHARACTER SET ascii NOT NULL DEFAULT '',
       `domain_id` int(10) unsigned NOT NULL, `group_id` int(10) unsigned NOT NULL,
       `homeserver` tinyint(5) unsigned NOT NULL DEFAULT 0,
       `maildir` varchar(128) NOT NULL DEFAULT '', `lang` varchar(32) NOT NULL DEFAULT '',
       `timezone` varchar(64) NOT NULL DEFAULT '', `privilege_bits` int(10) unsigned NOT NULL,
       `address_status` tinyint(4) NOT NULL DEFAULT 0, `externid` varbinary(64) DEFAULT NULL,
       `sync_policy` text CHARACTER SET ascii DEFAULT NULL, `chat_id` varchar(26) DEFAULT NULL,
       PRIMARY KEY (`id`), UNIQUE KEY `username` (`username`),
       UNIQUE KEY `domain_id_2` (`domain_id`,`username`)) DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE `aliases` (`aliasname` varchar(320) CHARACTER SET ascii NOT NULL,
       `mainname` varchar(320) CHARACTER SET ascii NOT NULL, PRIMARY KEY (`aliasname`),
       CONSTRAINT `aliases_ibfk_1` FOREIGN KEY (`mainname`) REFERENCES `users` (`username`)
       ON DELETE CASCADE ON UPDATE CASCADE) DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE `user_properties` (`user_id` int(10) unsigned NOT NULL,
       `proptag` int(10) unsigned NOT NULL, `order_id` int(10) unsigned DEFAULT 1,
       `propval_bin` varbinary(4096) DEFAULT NULL, `propval_str` varchar(4096) DEFAULT NULL,
       PRIMARY KEY (`user_id`,`proptag`,`order_id`),
       CONSTRAINT `user_properties_ibfk_1` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)
       ON DELETE CASCADE ON UPDATE CASCADE) DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE `orgparam` (`org_id` int(10) unsigned NOT NULL,
       `key` varchar(32) CHARACTER SET ascii NOT NULL, `value` varchar(255),
       PRIMARY KEY (`org_id`, `key`), CONSTRAINT `orgparam_ibfk_1` FOREIGN KEY (`org_id`)
       REFERENCES `orgs` (`id`) ON DELETE CASCADE ON UPDATE CASCADE) DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE `altnames` (`user_id` int(10) unsigned NOT NULL,
       `altname` varchar(320) NOT NULL, `magic` int(10) unsigned NOT NULL DEFAULT 0,
       PRIMARY KEY (`user_id`, `altname`), UNIQUE KEY `altname` (`altname`),
       CONSTRAINT `altnames_ibfk_1` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)
       ON DELETE CASCADE ON UPDATE CASCADE) DEFAULT CHARSET=utf8mb4""",
]

GROMMUNIO_ROWS = [
    "INSERT INTO options VALUES ('schemaversion', '133')",
    "INSERT INTO orgs (id, name) VALUES (1, 'Acme')",
    "INSERT INTO orgparam VALUES (1, 'ldap_uri', 'ldap://ldap.acme.test'), "
    "(1, 'ldap_mail_attr', 'mail')",
    "INSERT INTO domains (id, org_id, domainname, max_user, end_day) "
    "VALUES (1, 1, 'acme.test', 100, '3333-03-03')",
    # a local user (externid NULL), a suspended one, an LDAP-imported one, a room
    "INSERT INTO users (id, username, password, domain_id, group_id, maildir, lang, "
    "privilege_bits, address_status, externid) VALUES "
    "(1, 'Ann@acme.test', %(hash)s, 1, 0, '/var/lib/gromox/user/acme.test/ann', 'de_DE', "
    "3343, 0, NULL), "
    "(2, 'sus@acme.test', '', 1, 0, '', '', 15, 1, NULL), "
    "(3, 'lou@acme.test', '', 1, 0, '/var/lib/gromox/user/acme.test/lou', '', 15, 0, "
    "x'0123456789abcdef'), "
    "(4, 'room1@acme.test', '', 1, 0, '', '', 0, 0, NULL)",
    "INSERT INTO user_properties (user_id, proptag, propval_str) VALUES "
    "(1, 956628995, '0'), (1, 805371935, 'Ann Example'), (2, 956628995, '0'), "
    "(3, 956628995, '0'), (4, 956628995, '7')",
    "INSERT INTO aliases VALUES ('sales@acme.test', 'Ann@acme.test')",
    "INSERT INTO altnames VALUES (1, 'ann@ACME.REALM', 0)",
]


@pytest.fixture
def grommunio_db(mariadb: MariaDB) -> str:
    database = mariadb.create_database("gwgromm")
    with mariadb.connect(database) as conn, conn.cursor() as cur:
        for statement in GROMMUNIO_DDL:
            cur.execute(statement)
        for statement in GROMMUNIO_ROWS:
            if "%(hash)s" in statement:
                cur.execute(statement, {"hash": hash_password("ann-pw")})
            else:
                cur.execute(statement)
    return mariadb.url(database)


async def test_a_grommunio_made_database_logs_its_users_in(
    grommunio_db: str, tmp_path: Path, mariadb: MariaDB,
) -> None:
    engine = create_engine(grommunio_db, tmp_path)
    result = await schema.init(engine)
    assert not result.created and "only" in result.message  # a partial table set: refused
    await engine.dispose()
    directory = await Directory.open(grommunio_db, tmp_path)
    try:
        assert not directory.has_gateway_tables
        ann = (await directory.resolve_login("SALES@acme.test")).user
        assert ann is not None and ann.username == "Ann@acme.test" and ann.org_id == 1
        assert ann == (await directory.resolve_login("ann@acme.test")).user
        assert ann == await directory.realm_user("ann@ACME.REALM")
        assert ann.display_name == "Ann Example" and ann.lang == "de_DE"
        assert verify_password("ann-pw", ann.password) and ann.externid is None
        assert account_problem(ann) is None
        assert protocol_allowed(ann, "eas", await directory.denied_protocols(ann))
        assert not protocol_allowed(ann, "web", ())  # 3343 = DETAIL1|EAS|DAV|0xF, no WEB
        lou = await directory.get_user("LOU@acme.test")
        assert lou is not None and lou.externid == bytes.fromhex("0123456789abcdef")
        assert await directory.org_params(lou.org_id) == {
            "ldap_uri": "ldap://ldap.acme.test", "ldap_mail_attr": "mail"}
        sus = (await directory.resolve_login("sus@acme.test")).user
        assert sus is not None and "suspended" in (account_problem(sus) or "")
        room = await directory.get_user("room1@acme.test")
        assert room is not None and "display type 7" in (account_problem(room) or "")
    finally:
        await directory.close()


async def test_cli_round_trip_on_mariadb(mariadb: MariaDB, tmp_path: Path) -> None:
    url = mariadb.url(mariadb.create_database("gwcli"))
    conf = cases.write_config(tmp_path / "conf", tmp_path / "data", url=url)
    done = cases.run_gateway("domain", "add", "example.test", config_dirs=[conf])
    assert done.returncode == 1 and "gateway db init" in done.stderr
    done = cases.run_gateway("db", "init", config_dirs=[conf])
    assert done.returncode == 0 and "created" in done.stdout, done.stderr
    cases.cli_round_trip(conf)
    # The directory is in MariaDB: no SQLite directory; the mailboxes are on disk.
    assert not (tmp_path / "data" / SQLITE_FILE).exists()
    assert (tmp_path / "data" / "mailboxes" / "example.test").is_dir()


async def test_cli_upgrade_adds_the_gateway_table_to_a_grommunio_database(
    grommunio_db: str, tmp_path: Path,
) -> None:
    conf = cases.write_config(tmp_path / "conf", tmp_path / "data", url=grommunio_db)
    denied = cases.run_gateway("user", "set", "ann@acme.test", "--deny", "ews",
                               config_dirs=[conf])
    assert denied.returncode == 1 and "gateway db upgrade" in denied.stderr
    done = cases.run_gateway("db", "upgrade", config_dirs=[conf])
    assert done.returncode == 0 and "gateway_denied_protocols" in done.stdout, done.stderr
    assert cases.run_gateway("user", "set", "ann@acme.test", "--deny", "ews",
                             config_dirs=[conf]).returncode == 0
    directory = await Directory.open(grommunio_db, tmp_path)
    try:
        ann = await directory.get_user("ann@acme.test")
        assert ann is not None and await directory.denied_protocols(ann) == {"ews"}
        assert ann.privilege_bits == 3343  # grommunio's bits untouched
    finally:
        await directory.close()
