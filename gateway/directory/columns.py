"""Column types that render as grommunio's on MariaDB and behave the same on SQLite.

grommunio (gromox ``lib/dbop_mysql.cpp``, schema n133) declares name and
address columns ``CHARACTER SET ascii``; MariaDB's default collation for it
(``ascii_general_ci``) compares case-insensitively, in lookups and in unique
keys alike. On SQLite the same columns carry ``COLLATE NOCASE`` so that
``alice@example.test`` and ``Alice@Example.TEST`` are one name on both.

Integers are ``int(10) unsigned`` / ``tinyint`` on MariaDB and plain
``INTEGER`` on SQLite (where an ``INTEGER PRIMARY KEY`` is the row id, so
auto-increment works).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import DefaultClause, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import TypeEngine

MYSQL = ("mysql", "mariadb")


def _mysql(generic: TypeEngine[Any], specific: TypeEngine[Any]) -> TypeEngine[Any]:
    return generic.with_variant(specific, *MYSQL)


def ascii_str(length: int) -> TypeEngine[Any]:
    """``varchar(N) CHARACTER SET ascii`` (case-insensitive), NOCASE on SQLite."""
    return _mysql(String(length, collation="NOCASE"), mysql.VARCHAR(length, charset="ascii"))


def nocase_str(length: int) -> TypeEngine[Any]:
    """``varchar(N)`` in the table's utf8mb4 (case-insensitive collation), NOCASE on SQLite."""
    return _mysql(String(length, collation="NOCASE"), mysql.VARCHAR(length))


def text_str(length: int) -> TypeEngine[Any]:
    """``varchar(N)`` in the table's utf8mb4."""
    return String(length)


def ascii_text() -> TypeEngine[Any]:
    """``text CHARACTER SET ascii`` (JSON documents such as sync_policy)."""
    return _mysql(Text(), mysql.TEXT(charset="ascii"))


def uint() -> TypeEngine[Any]:
    """``int(10) unsigned``."""
    return _mysql(Integer(), mysql.INTEGER(10, unsigned=True))


def sint() -> TypeEngine[Any]:
    """``int(10)`` (signed; list ids in associations and specifieds)."""
    return _mysql(Integer(), mysql.INTEGER(10))


def tinyint() -> TypeEngine[Any]:
    """``tinyint(4)``."""
    return _mysql(SmallInteger(), mysql.TINYINT(4))


def utinyint(width: int = 3) -> TypeEngine[Any]:
    """``tinyint(W) unsigned`` (home server ids, task states, flags)."""
    return _mysql(SmallInteger(), mysql.TINYINT(width, unsigned=True))


def utinyint_pk() -> TypeEngine[Any]:
    """``tinyint(5) unsigned`` as an auto-increment key (servers.id)."""
    return _mysql(Integer(), mysql.TINYINT(5, unsigned=True))


def varbinary(length: int) -> TypeEngine[Any]:
    """``varbinary(N)``."""
    return _mysql(LargeBinary(length), mysql.VARBINARY(length))


class _CurrentTimestamp(FunctionElement[Any]):
    """``CURRENT_TIMESTAMP``, with ``ON UPDATE CURRENT_TIMESTAMP`` on MariaDB when asked."""

    inherit_cache = True

    def __init__(self, on_update: bool = False):
        super().__init__()
        self.on_update = on_update


@compiles(_CurrentTimestamp)
def _current_timestamp_default(element: _CurrentTimestamp, compiler: Any, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(_CurrentTimestamp, "mysql")
@compiles(_CurrentTimestamp, "mariadb")
def _current_timestamp_mysql(element: _CurrentTimestamp, compiler: Any, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP" if element.on_update else (
        "CURRENT_TIMESTAMP")


def now_default(on_update: bool = False) -> DefaultClause:
    """Server default ``CURRENT_TIMESTAMP`` (optionally ``ON UPDATE`` on MariaDB)."""
    return DefaultClause(_CurrentTimestamp(on_update))
