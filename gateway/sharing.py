"""Who shared something with a user: the other stores of the user's domain in which the user
may see a folder.

There is no index of "who granted me rights", so the domain's users are read from
the directory and each existing store is asked once (one indexed query on its ACL
table); the answer is cached per user for :data:`SHARERS_TTL` seconds per worker.
IMAP's "Other Users" namespace and the DAV plugin's calendar proxies both start here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from gateway.store import StoreError, permissions
from gateway.store.rights import Rights
from gateway.store.txn import Txn

if TYPE_CHECKING:
    from gateway.host import Host

log = logging.getLogger("gateway.sharing")

SHARERS_TTL = 60.0
MAX_SHARER_SCAN = 2000
"""Stores of the domain looked at for shares; beyond this, none are (logged)."""
SHARER_CONCURRENCY = 8
VISIBLE = Rights.FOLDER_VISIBLE | Rights.READ_ANY
"""Rights that make a folder show up for its member."""

_sharers_cache: dict[tuple[int, str], tuple[float, list[str]]] = {}


async def sharers(host: Host, user: str) -> list[str]:
    """Other stores of the user's domain in which ``user`` may see a folder (an ACL entry
    for them or ``default`` with FolderVisible or ReadAny, or a full-access grant).

    Cached :data:`SHARERS_TTL` s per user; :func:`forget_sharers` drops the cache."""
    key = (id(host), user)
    cached = _sharers_cache.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[0] < SHARERS_TTL:
        return cached[1]
    candidates = await domain_users(host, user.rpartition("@")[2])
    if len(candidates) > MAX_SHARER_SCAN:
        log.warning("domain of %s has %d users; not scanning them for shared folders",
                    user, len(candidates))
        candidates = []
    gate = asyncio.Semaphore(SHARER_CONCURRENCY)

    async def check(owner: str) -> bool:
        async with gate:
            try:
                mbox = await host.store.open(owner)
                return bool(await mbox.read(shares_with, user))
            except StoreError:
                return False

    owners = sorted({owner.lower() for owner in candidates} - {user})
    owners = [owner for owner in owners if host.store.exists(owner)]
    results = await asyncio.gather(*(check(owner) for owner in owners))
    found = [owner for owner, shared in zip(owners, results, strict=True) if shared]
    _sharers_cache[key] = (now, found)
    return found


def forget_sharers(user: str | None = None) -> None:
    """Drop cached share look-ups (all, or one user's)."""
    for key in [k for k in _sharers_cache if user is None or k[1] == user]:
        del _sharers_cache[key]


def shares_with(txn: Txn, user: str) -> bool:
    """Whether this store shows ``user`` any folder (in a transaction)."""
    if permissions.grant_of(txn, user).full_access:
        return True
    row = txn.conn.execute(
        "SELECT 1 FROM permissions WHERE member IN (?, ?) AND rights & ? != 0 LIMIT 1",
        (user, permissions.DEFAULT, int(VISIBLE))).fetchone()
    return row is not None


async def domain_users(host: Host, domain: str) -> list[str]:
    """Primary addresses of the domain's users."""
    if host.directory is None or not domain:
        return []
    users: list[str] = await host.directory.domain_users(domain)
    return users
