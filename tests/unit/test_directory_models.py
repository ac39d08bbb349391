"""The models are grommunio's n133 tables, with its names and types."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateTable

from gateway.directory.models import GATEWAY_TABLES, GROMMUNIO_TABLES, Base

N133 = {
    "users", "domains", "aliases", "altnames", "user_properties", "groups", "mlists",
    "associations", "specifieds", "classes", "orgs", "orgparam", "servers", "forwards",
    "fetchmail", "configs", "options", "user_devices", "user_device_history",
    "secondary_store_hints", "disabled_plugins", "admin_roles",
    "admin_role_permission_relation", "admin_user_role_relation", "tasq",
}


def ddl(table: str, dialect: Dialect) -> str:
    return str(CreateTable(Base.metadata.tables[table]).compile(dialect=dialect))


def column_line(text: str, column: str) -> str:
    for line in text.splitlines():
        if line.strip().lstrip("`\"").startswith(f"{column}`") or \
                line.strip().lstrip("`\"").startswith(f"{column}\"") or \
                line.strip().startswith(f"{column} "):
            return line
    raise AssertionError(f"no column {column} in {text}")


def test_every_n133_table_and_nothing_dropped() -> None:
    assert set(GROMMUNIO_TABLES) == N133
    assert set(Base.metadata.tables) == N133 | set(GATEWAY_TABLES)
    assert "members" not in Base.metadata.tables and "hierarchy" not in Base.metadata.tables
    assert "task_queue" not in Base.metadata.tables


@pytest.mark.parametrize(("table", "column"), [
    ("users", "username"), ("users", "password"), ("aliases", "aliasname"),
    ("aliases", "mainname"), ("domains", "domainname"), ("forwards", "username"),
    ("groups", "groupname"), ("mlists", "listname"), ("associations", "username"),
    ("specifieds", "username"), ("classes", "listname"), ("servers", "hostname"),
    ("options", "key"), ("orgparam", "key"),
])
def test_name_columns_are_ascii_on_mariadb_and_nocase_on_sqlite(table: str, column: str) -> None:
    assert "CHARACTER SET ascii" in column_line(ddl(table, mysql.dialect()), column)
    assert 'COLLATE "NOCASE"' in column_line(ddl(table, sqlite.dialect()), column)


def test_users_columns_match_gromox() -> None:
    text = ddl("users", mysql.dialect())
    for expected in (
        "username VARCHAR(320) CHARACTER SET ascii NOT NULL",
        "password VARCHAR(136) CHARACTER SET ascii NOT NULL DEFAULT ''",
        "domain_id INTEGER(10) UNSIGNED NOT NULL", "group_id INTEGER(10) UNSIGNED NOT NULL",
        "homeserver TINYINT(5) UNSIGNED NOT NULL DEFAULT '0'",
        "maildir VARCHAR(128) NOT NULL DEFAULT ''", "privilege_bits INTEGER(10) UNSIGNED NOT NULL",
        "address_status TINYINT(4) NOT NULL DEFAULT '0'", "externid VARBINARY(64)",
        "sync_policy TEXT CHARACTER SET ascii", "chat_id VARCHAR(26)",
        "CONSTRAINT domain_id_2 UNIQUE (domain_id, username)", "UNIQUE (username)",
        "CHARSET=utf8mb4",
    ):
        assert expected in text, expected


def test_cascades_follow_users() -> None:
    aliases = ddl("aliases", mysql.dialect())
    assert ("FOREIGN KEY(mainname) REFERENCES users (username) ON DELETE CASCADE "
            "ON UPDATE CASCADE") in aliases
    props = ddl("user_properties", mysql.dialect())
    assert "PRIMARY KEY (user_id, proptag, order_id)" in props
    assert "order_id INTEGER(10) UNSIGNED NOT NULL DEFAULT '1'" in props
    assert "ON UPDATE CURRENT_TIMESTAMP" in ddl("fetchmail", mysql.dialect())
    assert "ON UPDATE CURRENT_TIMESTAMP" not in ddl("fetchmail", sqlite.dialect())
