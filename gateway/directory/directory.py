"""The directory API every other part of the gateway reads users through.

:meth:`Directory.open` connects to ``[directory] url`` (empty: SQLite under
``data_dir``, whose schema is created on first use), checks the schema and
returns a :class:`Directory`. Lookups are cached for ``cache_ttl`` seconds
(unknown names for at most :data:`NEGATIVE_TTL`) and the cache is dropped by
:meth:`Directory.invalidate`, which the host calls on SIGHUP.

Login names follow grommunio: ``users.username``, ``altnames.altname`` and
``aliases.aliasname`` are searched together, case-insensitively (MariaDB's
ascii collation; COLLATE NOCASE on SQLite), and must name exactly one user.
A name that cannot be stored in those ascii columns (non-ASCII, control
characters, spaces, longer than 320) names nobody; it is refused before any
query, so Unicode look-alikes and NUL bytes never reach the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select, union
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.cache import MISS, TtlCache
from gateway.directory import schema
from gateway.directory.engine import DirectoryError, create_engine, is_sqlite
from gateway.directory.models import (
    Aliases,
    Altnames,
    Domains,
    GatewayDeniedProtocols,
    OrgParam,
    UserProperties,
    Users,
)
from gateway.directory.types import PR_DISPLAY_NAME, PR_DISPLAY_TYPE_EX, LoginLookup, User

log = logging.getLogger("gateway.directory")

MAX_NAME = 320
NEGATIVE_TTL = 5.0
"""Seconds an unknown name stays cached (bounded by ``cache_ttl``)."""


PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")
"""Printable ASCII without spaces: what grommunio's ascii name columns can hold."""


def plausible_name(name: object) -> bool:
    """Whether ``name`` could be stored in grommunio's ascii name columns at all."""
    return (isinstance(name, str) and 0 < len(name) <= MAX_NAME
            and PRINTABLE_ASCII.fullmatch(name) is not None)


def _user_query() -> Select[Users, int]:
    return (select(Users, Domains.org_id)
            .outerjoin(Domains, Domains.id == Users.domain_id))


async def load_user(conn: AsyncConnection, where: Any) -> User | None:
    """The :class:`User` matching the ``users`` condition ``where``, or None."""
    rows = (await conn.execute(_user_query().where(where))).all()
    if len(rows) != 1:
        return None
    row = rows[0]
    props = (await conn.execute(
        select(UserProperties.proptag, UserProperties.propval_str)
        .where(UserProperties.user_id == row.id,
               UserProperties.proptag.in_((PR_DISPLAY_TYPE_EX, PR_DISPLAY_NAME)))
        .order_by(UserProperties.order_id))).all()
    values: dict[int, str | None] = {}
    for tag, value in props:
        values.setdefault(tag, value)
    display_type: int | None = None
    raw_type = values.get(PR_DISPLAY_TYPE_EX)
    if raw_type is not None:
        try:
            display_type = int(raw_type)
        except ValueError:
            display_type = None
    externid = row.externid
    return User(
        id=row.id, username=row.username, domain_id=row.domain_id,
        password=row.password or "", maildir=row.maildir or "", lang=row.lang or "",
        timezone=row.timezone or "", privilege_bits=row.privilege_bits or 0,
        address_status=row.address_status or 0,
        externid=bytes(externid) if externid is not None else None,
        homeserver=row.homeserver or 0, display_type=display_type,
        display_name=values.get(PR_DISPLAY_NAME) or "", org_id=row.org_id or 0,
    )


async def login_user_ids(conn: AsyncConnection, name: str) -> list[int]:
    """Ids of the users whose username, altname or alias is ``name`` (case-insensitive)."""
    query = union(
        select(Users.id.label("uid")).where(Users.username == name),
        select(Altnames.user_id.label("uid")).where(Altnames.altname == name),
        select(Users.id.label("uid"))
        .join(Aliases, Aliases.mainname == Users.username)
        .where(Aliases.aliasname == name),
    )
    return sorted({row[0] for row in (await conn.execute(query)).all()})


async def _init_sqlite_once(engine: AsyncEngine) -> None:
    """Create the embedded schema, one process at a time (workers start together)."""
    database = engine.url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        await schema.init(engine)
        return
    lock_path = Path(database + ".lock")
    fh = await asyncio.to_thread(lock_path.open, "a")
    try:
        await asyncio.to_thread(fcntl.flock, fh.fileno(), fcntl.LOCK_EX)
        state = await schema.inspect_schema(engine)
        if state.empty:
            await schema.init(engine)
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


class Directory:
    """Users, login names and organisation settings, cached."""

    engine: AsyncEngine

    def __init__(self, engine: AsyncEngine, cache_ttl: float = 60.0,
                 has_gateway_tables: bool = True):
        self.engine = engine
        self.cache_ttl = cache_ttl
        self.has_gateway_tables = has_gateway_tables
        """False on a grommunio database where ``gateway db upgrade`` has not added
        ``gateway_denied_protocols``: then nothing is denied beyond grommunio's bits."""
        self._cache = TtlCache(cache_ttl)

    @classmethod
    async def open(cls, url: str, data_dir: Path, cache_ttl: float = 60.0) -> Directory:
        """Connect and check the schema. The embedded SQLite database gets its
        schema on first use; any other must have been made by ``gateway db init``
        or grommunio. Raises :class:`DirectoryError` with what to do."""
        engine = create_engine(url, Path(data_dir))
        try:
            state = await schema.inspect_schema(engine)
            if state.empty and is_sqlite(engine):
                await _init_sqlite_once(engine)
                state = await schema.inspect_schema(engine)
            for warning in schema.check_usable(state):
                log.warning("directory: %s", warning)
        except DirectoryError:
            await engine.dispose()
            raise
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise DirectoryError(f"cannot open the directory database "
                                 f"({engine.url.render_as_string(hide_password=True)}): "
                                 f"{exc}") from exc
        return cls(engine, cache_ttl, has_gateway_tables=not state.missing_gateway_tables)

    async def close(self) -> None:
        self._cache.clear()
        await self.engine.dispose()

    def invalidate(self) -> None:
        """Forget every cached lookup (SIGHUP, or after a change made here)."""
        self._cache.clear()

    async def cached(self, key: Hashable, compute: Any) -> Any:
        """``await compute()`` once per ``cache_ttl`` for ``key`` (misses for a short while).

        Other parts of the gateway cache their own directory-derived lookups here, so
        that SIGHUP and ``invalidate()`` forget them too.
        """
        value = self._cache.get(key)
        if value is not MISS:
            return value
        value = await compute()
        found = value is not None and not (isinstance(value, LoginLookup) and value.user is None)
        self._cache.put(key, value, None if found else NEGATIVE_TTL)
        return value

    async def resolve_login(self, name: str) -> LoginLookup:
        """The one user whose primary address, altname or alias is ``name``."""
        if not plausible_name(name):
            return LoginLookup(None, LoginLookup.NO_SUCH_USER)

        async def compute() -> LoginLookup:
            async with self.engine.connect() as conn:
                ids = await login_user_ids(conn, name)
                if len(ids) > 1:
                    return LoginLookup(None, LoginLookup.AMBIGUOUS)
                user = await load_user(conn, Users.id == ids[0]) if ids else None
            if user is None:
                return LoginLookup(None, LoginLookup.NO_SUCH_USER)
            return LoginLookup(user, "")

        result: LoginLookup = await self.cached(("login", name.lower()), compute)
        return result

    async def get_user(self, username: str) -> User | None:
        """The user whose primary address is ``username`` (case-insensitive)."""
        if not plausible_name(username):
            return None

        async def compute() -> User | None:
            async with self.engine.connect() as conn:
                return await load_user(conn, Users.username == username)

        result: User | None = await self.cached(("user", username.lower()), compute)
        return result

    async def domain_users(self, domain: str) -> list[str]:
        """Primary addresses of the users of ``domain`` (case-insensitive), sorted."""
        if not plausible_name(domain):
            return []

        async def compute() -> list[str]:
            async with self.engine.connect() as conn:
                rows = await conn.execute(
                    select(Users.username).join(Domains, Domains.id == Users.domain_id)
                    .where(func.lower(Domains.domainname) == domain.lower())
                    .order_by(Users.username))
                return [row[0] for row in rows]

        result: list[str] = await self.cached(("domain-users", domain.lower()), compute)
        return result

    async def realm_user(self, principal: str) -> User | None:
        """The user with the altname ``principal`` exactly (Kerberos principals
        are case-sensitive, so a match differing in case is no match)."""
        if not plausible_name(principal):
            return None

        async def compute() -> User | None:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(
                    select(Altnames.user_id, Altnames.altname)
                    .where(Altnames.altname == principal))).all()
                ids = {uid for uid, altname in rows if altname == principal}
                if len(ids) != 1:
                    return None
                return await load_user(conn, Users.id == ids.pop())

        result: User | None = await self.cached(("realm", principal), compute)
        return result

    async def org_params(self, org_id: int) -> dict[str, str]:
        """``orgparam`` of one organisation (LDAP overrides), ``{}`` when none."""
        if org_id <= 0:
            return {}

        async def compute() -> dict[str, str]:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(
                    select(OrgParam.key, OrgParam.value).where(OrgParam.org_id == org_id))).all()
            return {key: value or "" for key, value in rows}

        result: dict[str, str] = await self.cached(("org", org_id), compute)
        return dict(result)

    async def denied_protocols(self, user: User) -> frozenset[str]:
        """Protocols without a grommunio bit (``ews``, ``mapi``) denied to ``user``;
        pass the result to :func:`gateway.directory.privileges.protocol_allowed`."""
        if not self.has_gateway_tables:
            return frozenset()

        async def compute() -> frozenset[str]:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(
                    select(GatewayDeniedProtocols.protocol)
                    .where(GatewayDeniedProtocols.user_id == user.id))).all()
            return frozenset(row[0].lower() for row in rows)

        result: frozenset[str] = await self.cached(("denied", user.id), compute)
        return result
