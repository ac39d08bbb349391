"""Who is asked about, where they live, and whether the asking user may know.

Shared by every AutoDiscover flavour: the external base URL of a request,
the legacy DN of a user, the home server redirect (directory ``servers``
table), the rights check for another user's mailbox (store grants and folder
ACLs, :mod:`gateway.store.permissions`), Outlook's alternative mailboxes
(``secondary_store_hints``) and the endpoints the enabled plugins contribute
(``gateway_autodiscover_endpoints``).
"""

from __future__ import annotations

import functools
import logging
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select
from starlette.requests import Request

from gateway.directory.directory import load_user
from gateway.directory.models import SecondaryStoreHints, Servers, Users
from gateway.directory.types import User
from gateway.discovery import DiscoveryRequest, Endpoint
from gateway.store import permissions
from gateway.store.special import Private
from gateway.store.txn import Txn
from plugins.autodiscover.settings import HOST_PORT, AutodiscoverSection

if TYPE_CHECKING:
    from gateway.host import Host

log = logging.getLogger("gateway.plugin.autodiscover")

EAG = "ou=Exchange Administrative Group (FYDIBOHF23SPDLT)"
SEE_MAILBOX = permissions.Rights.FOLDER_VISIBLE | permissions.Rights.READ_ANY


def section(host: Host) -> AutodiscoverSection:
    current: AutodiscoverSection = host.config.autodiscover
    return current


def external_base(request: Request, settings: AutodiscoverSection) -> str:
    """``scheme://host[:port]`` as the client should reach this gateway.

    ``[autodiscover] external_host`` wins (https); otherwise X-Forwarded-Host
    when the peer is a trusted proxy (the scheme was already taken from
    X-Forwarded-Proto by the host's middleware), else the Host header. A
    malformed name falls back to the address the request arrived on.
    """
    if settings.external_host:
        return f"https://{settings.external_host}"
    scope = request.scope
    name = ""
    if scope.get("gateway.trusted_proxy"):
        forwarded = request.headers.get("x-forwarded-host", "")
        name = forwarded.split(",")[0].strip()
    if not name:
        name = request.headers.get("host", "")
    if not HOST_PORT.match(name):
        server = scope.get("server") or ("localhost", None)
        name = server[0] if not server[1] else f"{server[0]}:{server[1]}"
        if ":" in server[0]:
            name = f"[{server[0]}]" + (f":{server[1]}" if server[1] else "")
    scheme = scope.get("scheme", "http")
    if scheme not in ("http", "https"):
        scheme = "https"
    return f"{scheme}://{name.lower()}"


def legacy_dn(settings: AutodiscoverSection, user: User) -> str:
    """grommunio's ESSDN of a user: the domain and user ids in hex, then the local part."""
    local = user.username.split("@", 1)[0]
    return (f"/o={settings.organization}/{EAG}/cn=Recipients/"
            f"cn={user.domain_id:08x}{user.id:08x}-{local}")


def deployment_id(settings: AutodiscoverSection) -> str:
    return settings.deployment_id or _derived_deployment_id(settings.organization)


@functools.lru_cache(maxsize=16)
def _derived_deployment_id(organization: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{organization}.deployment.gateway"))


def display_name(user: User) -> str:
    return user.display_name or user.username.split("@", 1)[0]


@dataclass
class Alternative:
    """A mailbox Outlook adds to the profile (MS-OXDSCLI AlternativeMailbox)."""

    user: User
    legacy_dn: str


@dataclass
class Resolution:
    """The answer about one address for one asking user."""

    status: str
    """``"ok"``, ``"unknown"`` (no such user, or no rights: the same answer) or ``"redirect"``."""
    user: User | None = None
    redirect_host: str = ""
    """``servers.extname`` of the home server, for ``"redirect"``."""
    alternatives: list[Alternative] = field(default_factory=list)
    checked_rights: bool = False
    """Whether mailbox rights (the store) were consulted: then the answer is not cached."""


def this_node(settings: AutodiscoverSection) -> str:
    return settings.server_id or socket.gethostname()


async def home_server(host: Host, user: User) -> tuple[str, str] | None:
    """``(hostname, extname)`` of the user's home server; None when local (0 or unknown)."""
    if not user.homeserver:
        return None

    async def compute() -> tuple[str, str] | None:
        async with host.directory.engine.connect() as conn:
            row = (await conn.execute(select(Servers.hostname, Servers.extname)
                                      .where(Servers.id == user.homeserver))).first()
        return None if row is None else (row[0] or "", row[1] or "")

    found: tuple[str, str] | None = await host.directory.cached(
        ("autodiscover-server", user.homeserver), compute)
    return found


async def hinted_users(host: Host, user: User) -> list[User]:
    """The users of ``secondary_store_hints`` rows whose primary is ``user``."""

    async def compute() -> list[User]:
        async with host.directory.engine.connect() as conn:
            ids = [row[0] for row in (await conn.execute(
                select(SecondaryStoreHints.secondary)
                .where(SecondaryStoreHints.primary == user.id)
                .order_by(SecondaryStoreHints.secondary))).all()]
            found = []
            for uid in ids[:100]:
                other = await load_user(conn, Users.id == uid)
                if other is not None:
                    found.append(other)
        return found

    users: list[User] = await host.directory.cached(("autodiscover-hints", user.id), compute)
    return users


def _may_see(txn: Txn, login: str) -> bool:
    if permissions.is_owner(txn, login):
        return True
    if permissions.grant_of(txn, login):
        return True
    for folder in (Private.IPM_SUBTREE, Private.INBOX):
        try:
            if permissions.rights_for(txn, login, int(folder)) & SEE_MAILBOX:
                return True
        except Exception:  # a store without that folder grants nothing through it
            continue
    return False


async def may_access(host: Host, login: str, target: str) -> bool:
    """Whether ``login`` holds rights on ``target``'s mailbox (owner, a store grant, or
    visible/read rights on its top of information store or Inbox)."""
    if login.lower() == target.lower():
        return True
    if host.store is None or not host.store.exists(target):
        return False
    try:
        mbox = await host.store.open(target)
        allowed: bool = await mbox.read(_may_see, login)
    except Exception:
        log.exception("autodiscover: cannot check rights of %s on %s", login, target)
        return False
    return allowed


async def resolve(host: Host, address: str, login: str | None) -> Resolution:
    """What to answer about ``address`` to ``login`` (None: an anonymous request, which
    only ever gets URLs, never user data)."""
    lookup = await host.directory.resolve_login(address)
    user: User | None = lookup.user
    if user is None:
        return Resolution("unknown")
    home = await home_server(host, user)
    if home is not None and home[0] and home[0].lower() != this_node(section(host)).lower():
        return Resolution("redirect", user, redirect_host=home[1] or home[0])
    if login is None:
        return Resolution("ok", user)
    own = login.lower() == user.username.lower()
    if not own and not await may_access(host, login, user.username):
        return Resolution("unknown")
    settings = section(host)
    alternatives = []
    hinted = [other for other in await hinted_users(host, user) if other.id != user.id]
    for other in hinted:
        if await may_access(host, login, other.username):
            alternatives.append(Alternative(other, legacy_dn(settings, other)))
    return Resolution("ok", user, alternatives=alternatives,
                      checked_rights=not own or bool(hinted))


def collect(host: Host, request: DiscoveryRequest) -> list[Endpoint]:
    """Every endpoint the enabled plugins contribute; a failing plugin is logged and skipped."""
    found: list[Endpoint] = []
    caller = host.pm.hook.gateway_autodiscover_endpoints
    for impl in caller.get_hookimpls():
        try:
            arguments = {"host": host, "request": request}
            result = cast(Sequence[Any], impl.function(
                **{name: arguments[name] for name in impl.argnames}) or ())
        except Exception:
            log.exception("plugin %r failed in gateway_autodiscover_endpoints", impl.plugin_name)
            continue
        found.extend(e for e in result if isinstance(e, Endpoint))
    return found


def first(endpoints: Sequence[Endpoint], protocol: str) -> Endpoint | None:
    """The first endpoint of ``protocol`` (case-insensitive)."""
    wanted = protocol.lower()
    return next((e for e in endpoints if e.protocol.lower() == wanted), None)
