"""Which mailbox an envelope address reaches: directory look-ups for delivery.

An address is *local* when its domain is in ``domains``; then it must name a
mailbox through ``users.username`` (the primary address) or
``aliases.aliasname`` — the two maps grommunio's Postfix set-up reads
(``virtual_mailbox_maps``, ``virtual_alias_maps``); altnames are login names,
not mail addresses, and are not used. Failing an exact match,
``local+tag@domain`` is tried as ``local@domain`` and the tag kept (a folder
hint for later rules; nothing uses it yet).

Whether a local mailbox may receive follows grommunio's columns:
``domains.domain_status`` (0 normal, 1 suspended, 3 deleted),
``users.address_status`` (low nibble 0 normal and 4 shared mailbox receive;
1 suspended, 3 deleted, 5 contact do not; bits 0x30 mirror the domain) and
the display type (mailing lists and contacts are not mailboxes here).

Every answer carries the SMTP reply for a refusal, so the SMTP plugin and the
submission path answer alike.

Look-ups go through the directory's own cache (``[directory] cache_ttl``,
unknown names for at most a few seconds, dropped on SIGHUP), since every
message asks the same few questions at ``RCPT`` and again at delivery.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select, union

from gateway.directory.directory import plausible_name
from gateway.directory.models import Aliases, Domains, Forwards, Users
from gateway.directory.types import User

if TYPE_CHECKING:
    from gateway.host import Host

DOMAIN_NORMAL, DOMAIN_SUSPENDED, DOMAIN_DELETED = 0, 1, 3
STATUS_NORMAL, STATUS_SUSPENDED, STATUS_DELETED, STATUS_SHARED, STATUS_CONTACT = 0, 1, 3, 4, 5
DT_DISTLIST, DT_REMOTE = 1, 6
FORWARD_CC, FORWARD_REDIRECT = 0, 1

_T = TypeVar("_T")


async def cached(host: Host, key: Hashable, compute: Callable[[], Awaitable[_T]]) -> _T:
    """``compute()`` through the directory's cache (the same lifetimes and invalidation as
    its own look-ups)."""
    parts = key if isinstance(key, tuple) else (key,)
    result: _T = await host.directory.cached(("mail", *parts), compute)
    return result


@dataclass(frozen=True)
class Resolution:
    """What an envelope address reaches."""

    address: str
    """As given."""
    kind: str
    """``"local"`` (a mailbox that may receive), ``"refused"`` (a local domain, but no
    mailbox or one that may not receive), ``"remote"`` (a domain not served here)."""
    mailbox: str = ""
    """The canonical ``users.username`` (``"local"`` only)."""
    tag: str = ""
    """The ``+tag`` of a plus address, without the plus."""
    user: User | None = None
    code: int = 250
    enhanced: str = "2.1.5"
    text: str = "recipient ok"

    @property
    def local(self) -> bool:
        return self.kind == "local"


@dataclass(frozen=True)
class Forward:
    """A ``forwards`` row: ``kind`` FORWARD_CC keeps a copy, FORWARD_REDIRECT does not."""

    kind: int
    destination: str


def split(address: str) -> tuple[str, str]:
    """``(local part, domain)``; the domain lower-cased, IDNA U-labels as A-labels."""
    local, _, domain = address.rpartition("@")
    domain = domain.lower()
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    return local, domain


async def domain_status(host: Host, domain: str) -> int | None:
    """``domains.domain_status`` of ``domain``, or None when it is not served here."""
    if not plausible_name(domain):
        return None

    async def compute() -> int | None:
        async with host.directory.engine.connect() as conn:
            row = (await conn.execute(select(Domains.domain_status)
                                      .where(Domains.domainname == domain))).first()
        return None if row is None else int(row[0] or 0)
    return await cached(host, ("domain", domain.lower()), compute)


async def is_local_domain(host: Host, domain: str) -> bool:
    return await domain_status(host, domain) is not None


async def mailbox_of(host: Host, address: str) -> str | None:
    """The primary address whose username or alias is ``address`` (case-insensitive)."""
    if not plausible_name(address):
        return None

    async def compute() -> str | None:
        query = union(
            select(Users.username.label("name")).where(Users.username == address),
            select(Aliases.mainname.label("name")).where(Aliases.aliasname == address),
        )
        async with host.directory.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        names = {str(row[0]).lower(): str(row[0]) for row in rows}
        return next(iter(names.values())) if len(names) == 1 else None
    return await cached(host, ("mailbox", address.lower()), compute)


def _refused(address: str, code: int, enhanced: str, text: str) -> Resolution:
    return Resolution(address, "refused", code=code, enhanced=enhanced, text=text)


async def resolve(host: Host, address: str) -> Resolution:
    """Resolve one envelope recipient; see the module docstring."""
    local, domain = split(address)
    if not local or not domain:
        return _refused(address, 501, "5.1.3", "malformed recipient address")
    status = await domain_status(host, domain)
    if status is None:
        return Resolution(address, "remote", code=550, enhanced="5.7.1",
                          text=f"relaying to {domain} denied: not a local domain")
    if status == DOMAIN_DELETED:
        return _refused(address, 550, "5.1.2", f"domain {domain} no longer exists")
    if status != DOMAIN_NORMAL:
        return _refused(address, 550, "5.2.1", f"domain {domain} is suspended")
    tag = ""
    mailbox = await mailbox_of(host, f"{local}@{domain}")
    if mailbox is None and "+" in local:
        base, _, tag = local.partition("+")
        mailbox = await mailbox_of(host, f"{base}@{domain}") if base else None
    if mailbox is None:
        return _refused(address, 550, "5.1.1", "no such user here")
    user = await host.directory.get_user(mailbox)
    if user is None:
        return _refused(address, 550, "5.1.1", "no such user here")
    refusal = _receive_refusal(user)
    if refusal is not None:
        return _refused(address, *refusal)
    return Resolution(address, "local", mailbox=user.username, tag=tag, user=user)


def _receive_refusal(user: User) -> tuple[int, str, str] | None:
    """Why ``user`` cannot receive mail, as (code, enhanced, text); None when it can."""
    state, domain_state = user.address_status & 0x0F, user.address_status & 0x30
    if domain_state:
        return 550, "5.2.1", "the mailbox's domain is suspended"
    if state == STATUS_DELETED:
        return 550, "5.1.1", "no such user here"
    if state == STATUS_SUSPENDED:
        return 550, "5.2.1", "mailbox disabled"
    if state == STATUS_CONTACT or user.display_type == DT_REMOTE:
        return 550, "5.1.1", "not a mailbox"
    if user.display_type == DT_DISTLIST:
        return 550, "5.3.3", "mailing lists are not expanded here"
    if state not in (STATUS_NORMAL, STATUS_SHARED):
        return 550, "5.2.1", "mailbox cannot receive mail"
    return None


async def forward_of(host: Host, mailbox: str) -> Forward | None:
    """The ``forwards`` row of a mailbox, or None."""
    async def compute() -> Forward | None:
        async with host.directory.engine.connect() as conn:
            row: Any = (await conn.execute(
                select(Forwards.forward_type, Forwards.destination)
                .where(Forwards.username == mailbox))).first()
        if row is None or not row.destination:
            return None
        kind = FORWARD_REDIRECT if int(row.forward_type or 0) == FORWARD_REDIRECT else FORWARD_CC
        return Forward(kind, str(row.destination))
    return await cached(host, ("forward", mailbox.lower()), compute)
