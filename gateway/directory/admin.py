"""Changes to the directory, made the way grommunio's admin API makes them.

Used by ``gateway domain|user|alias|altname`` (:mod:`gateway.directory.cli`).
Every function takes an :class:`AsyncEngine`, runs in one transaction and
raises :class:`AdminError` with a sentence for the administrator.

What a new user gets (grommunio's rules, admin-api ``Users.create``):

- ``username`` = local part as given + ``@`` + the domain's stored name; the
  domain must exist and have fewer than ``max_user`` users;
- ``group_id`` 0, ``homeserver`` as given (must be in ``servers``) or 0 (local);
- ``maildir`` empty: the mailbox store does not exist yet (the store issue
  fills it in when it provisions the mailbox; until then HTTP logins of
  grommunio-style services answer 503 for this user);
- ``address_status`` = the domain's status << 4 (0 in a normal domain);
- ``privilege_bits`` :data:`privileges.DEFAULT_NEW_USER` then ``--allow``/``--deny``;
- ``user_properties``: display type 0 (956628995, required for any login)
  and, when given, the display name (805371935);
- ``password`` a SHA-512-crypt hash, or empty (no SQL login) without one.

A name already used as a primary address, alias or altname (in any case) is
refused, since a login name must stay unambiguous.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.directory import privileges
from gateway.directory.directory import MAX_NAME, login_user_ids, plausible_name
from gateway.directory.models import (
    Aliases,
    Altnames,
    Domains,
    Forwards,
    GatewayDeniedProtocols,
    Servers,
    UserProperties,
    Users,
)
from gateway.directory.schema import inspect_schema
from gateway.directory.types import PR_DISPLAY_NAME, PR_DISPLAY_TYPE_EX

NO_END_DAY = dt.date(3333, 3, 3)
"""``domains.end_day`` grommunio writes for a domain that does not expire."""
DEFAULT_MAX_USERS = 1000

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*\Z")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
MAX_DISPLAY_NAME = 256


class AdminError(Exception):
    """A change the directory refuses; the message says why."""


@dataclass(frozen=True)
class DomainInfo:
    id: int
    name: str
    max_users: int
    users: int
    status: int
    org_id: int


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    domain: str
    display_name: str
    privileges: list[str]
    privilege_bits: int
    address_status: int
    homeserver: int
    maildir: str
    ldap: bool
    aliases: list[str]
    altnames: list[str]


def check_domain_name(name: str) -> str:
    """``name`` in lower case if it is a plain ASCII domain name, else :class:`AdminError`."""
    if not isinstance(name, str) or not 0 < len(name) <= 255:
        raise AdminError("a domain name has 1 to 255 characters")
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise AdminError(f"not a valid domain name: {name!r} (ASCII letters, digits, "
                         "hyphens and dots; IDNs in their xn-- form)")
    return name.lower()


def split_address(address: str) -> tuple[str, str]:
    """``(local, domain)`` of a plain ASCII e-mail address, else :class:`AdminError`."""
    if not isinstance(address, str) or len(address) > MAX_NAME:
        raise AdminError(f"an address has at most {MAX_NAME} characters")
    local, sep, domain = address.rpartition("@")
    if not sep or not local or len(local) > 64 or not _LOCAL.match(local):
        raise AdminError(f"not a valid e-mail address: {address!r}")
    return local, check_domain_name(domain)


async def _domain(conn: AsyncConnection, name: str) -> Any:
    """The ``domains`` row (id, domainname, max_user, domain_status ...) of ``name``."""
    row = (await conn.execute(select(Domains.__table__).where(Domains.domainname == name))
           ).first()
    if row is None:
        raise AdminError(f"unknown domain {name!r} (add it with `gateway domain add {name}`)")
    return row


async def _user_row(conn: AsyncConnection, address: str) -> tuple[int, str]:
    if not plausible_name(address):
        raise AdminError(f"no such user: {address!r}")
    row = (await conn.execute(select(Users.id, Users.username)
                              .where(Users.username == address))).first()
    if row is None:
        raise AdminError(f"no such user: {address!r}")
    return row[0], row[1]


async def _name_in_use(conn: AsyncConnection, name: str) -> None:
    ids = await login_user_ids(conn, name)
    if ids:
        owner = (await conn.execute(select(Users.username).where(Users.id == ids[0]))).scalar()
        raise AdminError(f"{name!r} is already a login name of {owner!r}")


async def _gateway_tables(engine: AsyncEngine) -> bool:
    return not (await inspect_schema(engine)).missing_gateway_tables


async def _denied(conn: AsyncConnection, user_id: int, has_table: bool) -> frozenset[str]:
    if not has_table:
        return frozenset()
    rows = (await conn.execute(select(GatewayDeniedProtocols.protocol)
                               .where(GatewayDeniedProtocols.user_id == user_id))).all()
    return frozenset(r[0].lower() for r in rows)


async def _write_denied(conn: AsyncConnection, user_id: int, old: frozenset[str],
                        new: frozenset[str], has_table: bool) -> None:
    if old == new:
        return
    if not has_table:
        raise AdminError("denying ews or mapi needs the gateway table "
                         "gateway_denied_protocols: run `gateway db upgrade` first")
    for name in old - new:
        await conn.execute(delete(GatewayDeniedProtocols).where(
            GatewayDeniedProtocols.user_id == user_id, GatewayDeniedProtocols.protocol == name))
    for name in sorted(new - old):
        await conn.execute(insert(GatewayDeniedProtocols).values(user_id=user_id, protocol=name))


async def _set_display_name(conn: AsyncConnection, user_id: int, name: str) -> None:
    if len(name) > MAX_DISPLAY_NAME or any(ord(c) < 0x20 for c in name):
        raise AdminError(f"a display name has at most {MAX_DISPLAY_NAME} characters "
                         "and no control characters")
    await conn.execute(delete(UserProperties).where(
        UserProperties.user_id == user_id, UserProperties.proptag == PR_DISPLAY_NAME))
    if name:
        await conn.execute(insert(UserProperties).values(
            user_id=user_id, proptag=PR_DISPLAY_NAME, order_id=1, propval_str=name))


async def _check_homeserver(conn: AsyncConnection, homeserver: int) -> None:
    if homeserver == 0:
        return
    if not 0 < homeserver < 256 or (await conn.execute(
            select(Servers.id).where(Servers.id == homeserver))).first() is None:
        raise AdminError(f"unknown home server {homeserver} (servers.id; 0 = local)")


def _privilege_changes(allow: Iterable[str], deny: Iterable[str], bits: int,
                       denied: frozenset[str]) -> tuple[int, frozenset[str]]:
    try:
        return privileges.apply_changes(bits, denied, allow, deny)
    except privileges.PrivilegeError as exc:
        raise AdminError(str(exc)) from None


# -- domains ------------------------------------------------------------------------------------


async def add_domain(engine: AsyncEngine, name: str, max_users: int = DEFAULT_MAX_USERS) -> int:
    """Create a domain (org 0, local home server, no end day); return its id."""
    name = check_domain_name(name)
    if not 0 <= max_users <= 0xFFFFFFFF:
        raise AdminError("--max-users must be between 0 and 4294967295")
    try:
        async with engine.begin() as conn:
            if (await conn.execute(select(Domains.id)
                                   .where(Domains.domainname == name))).first() is not None:
                raise AdminError(f"domain {name!r} exists already")
            result = await conn.execute(insert(Domains).values(
                org_id=0, domainname=name, homeserver=0, homedir="", max_user=max_users,
                title="", address="", admin_name="", tel="", end_day=NO_END_DAY,
                domain_status=0))
            return int(result.inserted_primary_key[0])  # type: ignore[index]
    except IntegrityError:
        raise AdminError(f"domain {name!r} exists already") from None


async def list_domains(engine: AsyncEngine) -> list[DomainInfo]:
    async with engine.connect() as conn:
        counts = dict((await conn.execute(
            select(Users.domain_id, func.count()).group_by(Users.domain_id))).all())
        rows = (await conn.execute(select(
            Domains.id, Domains.domainname, Domains.max_user, Domains.domain_status,
            Domains.org_id).order_by(Domains.domainname))).all()
    return [DomainInfo(r.id, r.domainname, r.max_user, counts.get(r.id, 0), r.domain_status,
                       r.org_id) for r in rows]


# -- users --------------------------------------------------------------------------------------


async def add_user(engine: AsyncEngine, address: str, password_hash: str = "",
                   display_name: str | None = None, allow: Iterable[str] = (),
                   deny: Iterable[str] = (), homeserver: int = 0) -> int:
    """Create a mailbox user as grommunio's admin API does; return its id."""
    local, domain_name = split_address(address)
    has_table = await _gateway_tables(engine)
    bits, denied = _privilege_changes(allow, deny, privileges.DEFAULT_NEW_USER, frozenset())
    try:
        async with engine.begin() as conn:
            domain = await _domain(conn, domain_name)
            username = f"{local}@{domain.domainname}"
            await _name_in_use(conn, username)
            members = (await conn.execute(
                select(func.count()).select_from(Users)
                .where(Users.domain_id == domain.id,
                       Users.address_status.op("&")(0x0F) != 5))).scalar_one()
            if members >= domain.max_user:
                raise AdminError(f"domain {domain.domainname!r} has reached its maximum of "
                                 f"{domain.max_user} users")
            await _check_homeserver(conn, homeserver)
            result = await conn.execute(insert(Users).values(
                username=username, password=password_hash, domain_id=domain.id, group_id=0,
                homeserver=homeserver, maildir="", lang="", timezone="",
                privilege_bits=bits, address_status=(domain.domain_status & 0x03) << 4,
                externid=None))
            user_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            await conn.execute(insert(UserProperties).values(
                user_id=user_id, proptag=PR_DISPLAY_TYPE_EX, order_id=1, propval_str="0"))
            if display_name:
                await _set_display_name(conn, user_id, display_name)
            await _write_denied(conn, user_id, frozenset(), denied, has_table)
            return user_id
    except IntegrityError as exc:
        raise AdminError(f"cannot add {address!r}: it collides with an existing entry "
                         f"({exc.orig})") from None


async def set_user(engine: AsyncEngine, address: str, display_name: str | None = None,
                   allow: Iterable[str] = (), deny: Iterable[str] = (),
                   homeserver: int | None = None) -> None:
    """Change display name, privileges or home server of an existing user."""
    has_table = await _gateway_tables(engine)
    async with engine.begin() as conn:
        user_id, _ = await _user_row(conn, address)
        bits = (await conn.execute(select(Users.privilege_bits)
                                   .where(Users.id == user_id))).scalar_one()
        old_denied = await _denied(conn, user_id, has_table)
        new_bits, new_denied = _privilege_changes(allow, deny, bits, old_denied)
        values: dict[str, int] = {}
        if new_bits != bits:
            values["privilege_bits"] = new_bits
        if homeserver is not None:
            await _check_homeserver(conn, homeserver)
            values["homeserver"] = homeserver
        if values:
            await conn.execute(update(Users).where(Users.id == user_id).values(**values))
        if display_name is not None:
            await _set_display_name(conn, user_id, display_name)
        await _write_denied(conn, user_id, old_denied, new_denied, has_table)


async def set_password(engine: AsyncEngine, address: str, password_hash: str) -> None:
    async with engine.begin() as conn:
        user_id, _ = await _user_row(conn, address)
        await conn.execute(update(Users).where(Users.id == user_id)
                           .values(password=password_hash))


async def set_maildir(engine: AsyncEngine, address: str, maildir: str) -> None:
    """Record where the user's mailbox store lives (``users.maildir``)."""
    async with engine.begin() as conn:
        result = await conn.execute(update(Users).where(
            func.lower(Users.username) == address.lower()).values(maildir=maildir))
        if result.rowcount != 1:
            raise AdminError(f"no such user: {address!r}")


async def delete_user(engine: AsyncEngine, address: str) -> str:
    """Delete a user with its names, properties and forward; return the username.

    Foreign keys remove aliases, altnames, properties, devices, store hints
    and gateway denials. The mailbox files stay (there is no store yet).
    """
    async with engine.begin() as conn:
        user_id, username = await _user_row(conn, address)
        await conn.execute(delete(Forwards).where(Forwards.username == username))
        await conn.execute(delete(Users).where(Users.id == user_id))
        return username


async def list_users(engine: AsyncEngine) -> list[UserInfo]:
    has_table = await _gateway_tables(engine)
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(Users.id, Users.username, Users.privilege_bits, Users.address_status,
                   Users.homeserver, Users.maildir, Users.externid, Domains.domainname)
            .outerjoin(Domains, Domains.id == Users.domain_id)
            .order_by(Users.username))).all()
        names = dict((await conn.execute(
            select(UserProperties.user_id, UserProperties.propval_str)
            .where(UserProperties.proptag == PR_DISPLAY_NAME, UserProperties.order_id == 1)
        )).all())
        aliases: dict[str, list[str]] = {}
        for alias, main in (await conn.execute(
                select(Aliases.aliasname, Aliases.mainname).order_by(Aliases.aliasname))).all():
            aliases.setdefault(main.lower(), []).append(alias)
        altnames: dict[int, list[str]] = {}
        for uid, altname in (await conn.execute(
                select(Altnames.user_id, Altnames.altname).order_by(Altnames.altname))).all():
            altnames.setdefault(uid, []).append(altname)
        denied: dict[int, set[str]] = {}
        if has_table:
            for uid, proto in (await conn.execute(select(
                    GatewayDeniedProtocols.user_id, GatewayDeniedProtocols.protocol))).all():
                denied.setdefault(uid, set()).add(proto.lower())
    return [UserInfo(
        id=r.id, username=r.username, domain=r.domainname or "",
        display_name=names.get(r.id) or "",
        privileges=privileges.granted_names(r.privilege_bits, denied.get(r.id, ())),
        privilege_bits=r.privilege_bits, address_status=r.address_status,
        homeserver=r.homeserver, maildir=r.maildir or "", ldap=r.externid is not None,
        aliases=aliases.get(r.username.lower(), []), altnames=altnames.get(r.id, []),
    ) for r in rows]


# -- login names --------------------------------------------------------------------------------


async def add_alias(engine: AsyncEngine, alias: str, address: str) -> str:
    """Make ``alias`` (an address in a known domain) another name of ``address``."""
    _, domain_name = split_address(alias)
    try:
        async with engine.begin() as conn:
            _, username = await _user_row(conn, address)
            await _domain(conn, domain_name)
            await _name_in_use(conn, alias)
            await conn.execute(insert(Aliases).values(aliasname=alias, mainname=username))
            return username
    except IntegrityError as exc:
        raise AdminError(f"cannot add alias {alias!r} ({exc.orig})") from None


async def add_altname(engine: AsyncEngine, name: str, address: str) -> str:
    """Make ``name`` (any printable ASCII, e.g. a Kerberos principal) a login name."""
    if not plausible_name(name):
        raise AdminError(f"an altname is 1 to {MAX_NAME} printable ASCII characters "
                         "without spaces")
    try:
        async with engine.begin() as conn:
            user_id, username = await _user_row(conn, address)
            await _name_in_use(conn, name)
            await conn.execute(insert(Altnames).values(user_id=user_id, altname=name, magic=0))
            return username
    except IntegrityError as exc:
        raise AdminError(f"cannot add altname {name!r} ({exc.orig})") from None
