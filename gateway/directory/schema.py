"""Create and upgrade the directory schema without ever harming a grommunio database.

grommunio numbers its user-database schema (gromox ``dbop_mysql.cpp``) and
records the number in ``options`` under ``schemaversion``; this gateway speaks
n133 (:data:`SCHEMA_VERSION`).

- :func:`init` creates every table on a database holding none of grommunio's
  tables (other tables are left alone) and records 133. On a database that
  already has any of them it says so and changes nothing.
- :func:`upgrade` applies the steps of :data:`STEPS` above the recorded
  version, recording each one; a newer database is refused (this gateway
  does not know what changed), and one older than the first step it carries
  is sent to ``gromox-dbop -U``. It also adds the gateway's own tables
  (:data:`gateway.directory.models.GATEWAY_TABLES`) when they are missing;
  grommunio's tables are never dropped, emptied or rewritten.
- :func:`inspect_schema` and :func:`check_usable` tell the running gateway
  whether it can read the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, insert, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.directory.engine import DirectoryError
from gateway.directory.models import GATEWAY_TABLES, GROMMUNIO_TABLES, Base, Options

SCHEMA_VERSION = 133
"""grommunio's schema number this gateway's models describe."""

OLDEST_READABLE = 129
"""Older databases lack ``altnames``; the gateway cannot log anyone in from them."""

log = logging.getLogger("gateway.directory")


@dataclass(frozen=True)
class Step:
    """One upgrade step: after it the database is at ``version``."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_tables(*names: str) -> Callable[[Connection], None]:
    def apply(conn: Connection) -> None:
        tables = [Base.metadata.tables[name] for name in names]
        Base.metadata.create_all(conn, tables=tables, checkfirst=True)
    return apply


STEPS: tuple[Step, ...] = (
    Step(133, "create disabled_plugins", _create_tables("disabled_plugins")),
)
"""Steps this gateway can apply, ascending. Schemas older than the first
step's predecessor are upgraded with grommunio's own ``gromox-dbop -U``."""


@dataclass(frozen=True)
class SchemaState:
    """What a database holds, as far as the directory cares."""

    tables: frozenset[str]
    version: int | None
    """``options.schemaversion``; None when the table or row is missing."""

    @property
    def grommunio_tables(self) -> frozenset[str]:
        return self.tables & frozenset(GROMMUNIO_TABLES)

    @property
    def empty(self) -> bool:
        """No grommunio table at all (other tables do not count)."""
        return not self.grommunio_tables

    @property
    def missing_gateway_tables(self) -> tuple[str, ...]:
        return tuple(name for name in GATEWAY_TABLES if name not in self.tables)


@dataclass
class InitResult:
    created: bool
    message: str


@dataclass
class UpgradeResult:
    from_version: int
    to_version: int
    applied: list[int] = field(default_factory=list)
    added_tables: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        parts = []
        if self.applied:
            parts.append(f"upgraded schema {self.from_version} -> {self.to_version} "
                         f"(steps {', '.join(map(str, self.applied))})")
        else:
            parts.append(f"schema {self.to_version} is current; no step to apply")
        if self.added_tables:
            parts.append(f"added gateway tables: {', '.join(self.added_tables)}")
        return "; ".join(parts)


def _read_state(conn: Connection) -> SchemaState:
    tables = frozenset(inspect(conn).get_table_names())
    version = None
    if "options" in tables:
        row = conn.execute(
            select(Options.value).where(Options.key == "schemaversion")).scalar_one_or_none()
        if row is not None:
            try:
                version = int(row)
            except ValueError:
                version = None
    return SchemaState(tables, version)


async def inspect_schema(engine: AsyncEngine) -> SchemaState:
    """The tables and recorded schema version of the database behind ``engine``."""
    async with engine.connect() as conn:
        return await conn.run_sync(_read_state)


def _init(conn: Connection) -> InitResult:
    state = _read_state(conn)
    if not state.empty:
        version = state.version if state.version is not None else "unknown"
        missing = sorted(set(GROMMUNIO_TABLES) - state.grommunio_tables)
        which = (f"only {', '.join(sorted(state.grommunio_tables))}" if missing
                 else "all of them")
        return InitResult(False, f"the database already has grommunio's tables ({which}; "
                                 f"schema version {version}); nothing done")
    Base.metadata.create_all(conn, checkfirst=True)
    conn.execute(insert(Options).values(key="schemaversion", value=str(SCHEMA_VERSION)))
    return InitResult(True, f"created the directory schema (version {SCHEMA_VERSION})")


async def init(engine: AsyncEngine) -> InitResult:
    """Create the schema on a database without grommunio tables; else change nothing."""
    async with engine.begin() as conn:
        result = await conn.run_sync(_init)
    if result.created:
        log.info("directory: %s", result.message)
    return result


def _upgrade(conn: Connection) -> UpgradeResult:
    state = _read_state(conn)
    if state.empty:
        raise DirectoryError("the database has no directory tables; run `gateway db init`")
    if state.version is None:
        raise DirectoryError("the database has grommunio tables but no schemaversion in "
                             "`options`; it cannot be upgraded safely, nothing done")
    if state.version > SCHEMA_VERSION:
        raise DirectoryError(f"the database is at schema {state.version}, newer than "
                             f"{SCHEMA_VERSION} which this gateway knows; nothing done "
                             "(upgrade the gateway)")
    first = STEPS[0].version
    if state.version < first - 1:
        raise DirectoryError(f"the database is at schema {state.version}; this gateway "
                             f"upgrades from {first - 1} on. Run grommunio's "
                             "`gromox-dbop -U` first; nothing done")
    result = UpgradeResult(state.version, state.version)
    for step in STEPS:
        if step.version <= state.version:
            continue
        step.apply(conn)
        conn.execute(update(Options).where(Options.key == "schemaversion")
                     .values(value=str(step.version)))
        result.applied.append(step.version)
        result.to_version = step.version
        log.info("directory: schema step %d applied (%s)", step.version, step.description)
    missing = state.missing_gateway_tables
    if missing:
        _create_tables(*missing)(conn)
        result.added_tables.extend(missing)
    return result


async def upgrade(engine: AsyncEngine) -> UpgradeResult:
    """Apply the steps above the recorded version and add missing gateway tables."""
    async with engine.begin() as conn:
        return await conn.run_sync(_upgrade)


def check_usable(state: SchemaState) -> list[str]:
    """Raise :class:`DirectoryError` when the gateway cannot read this database;
    return warnings (to log) when it can."""
    if state.empty:
        raise DirectoryError("the directory database has no tables; run `gateway db init`")
    if state.version is None:
        raise DirectoryError("the directory database has no schemaversion in `options`; "
                             "it is not a grommunio user database")
    if state.version < OLDEST_READABLE:
        raise DirectoryError(f"the directory database is at schema {state.version}; the "
                             f"gateway needs {SCHEMA_VERSION} (run `gromox-dbop -U`, then "
                             "`gateway db upgrade`)")
    warnings = []
    if state.version < SCHEMA_VERSION:
        warnings.append(f"directory schema {state.version} is older than {SCHEMA_VERSION}; "
                        "run `gateway db upgrade`")
    elif state.version > SCHEMA_VERSION:
        warnings.append(f"directory schema {state.version} is newer than {SCHEMA_VERSION}; "
                        "the gateway uses only the columns it knows")
    if state.missing_gateway_tables:
        warnings.append(f"gateway table(s) {', '.join(state.missing_gateway_tables)} missing: "
                        "EWS/MAPI denials are not available until `gateway db upgrade`")
    return warnings
