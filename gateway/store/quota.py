"""Mailbox quotas: read from the directory, enforced on delivery, sending and every write.

grommunio keeps three limits per user as ``user_properties`` rows (decimal
text, in KiB; 0 or no row means unlimited), the same properties Exchange
exposes on the store:

* ``PR_STORAGE_QUOTA_LIMIT`` (0x3FF50003): beyond it nothing more is stored —
  enforced by the mailbox on every write (:attr:`Mailbox.storage_limit`, set by
  :func:`apply`); a write that would grow the store past it fails whole, while
  writes that shrink it (deletes) always go through;
* ``PR_PROHIBIT_RECEIVE_QUOTA`` (0x666A0003): no more deliveries
  (:func:`check_receive`, before accepting a message);
* ``PR_PROHIBIT_SEND_QUOTA`` (0x666E0003): no more sending (:func:`check_send`).

Sizes are the store's message-size accounting: ``meta.total_size`` is the sum
of the sizes of the messages in folders (attachments and embedded messages
included), kept by :mod:`gateway.store.messages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from gateway.directory.models import UserProperties
from gateway.store import tags as T
from gateway.store.errors import QuotaExceeded
from gateway.store.txn import Txn

if TYPE_CHECKING:
    from gateway.directory import Directory
    from gateway.store.mailbox import Mailbox

PR_STORAGE_QUOTA_LIMIT = 0x3FF50003
PR_PROHIBIT_RECEIVE_QUOTA = 0x666A0003
PR_PROHIBIT_SEND_QUOTA = 0x666E0003
QUOTA_TAGS = (PR_STORAGE_QUOTA_LIMIT, PR_PROHIBIT_RECEIVE_QUOTA, PR_PROHIBIT_SEND_QUOTA)
KIB = 1024


@dataclass(frozen=True)
class Quota:
    """A mailbox's limits in bytes; ``None``: unlimited."""

    storage: int | None = None
    receive: int | None = None
    send: int | None = None

    @classmethod
    def from_kib(cls, storage: int | None, receive: int | None, send: int | None) -> Quota:
        """From directory values in KiB (0, negative or None: unlimited)."""
        def conv(value: int | None) -> int | None:
            return value * KIB if value is not None and value > 0 else None
        return cls(conv(storage), conv(receive), conv(send))


UNLIMITED = Quota()


def _kib(text: str | None) -> int | None:
    """A user_properties value (decimal text of a PT_LONG) as KiB; unreadable: None."""
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        return None
    # PT_LONG is signed in MAPI; grommunio may store a large limit as its signed form.
    return value & 0xFFFFFFFF if value < 0 else value


async def quota_for(directory: Directory, address: str) -> Quota:
    """The limits of the user whose primary address (or other login name) is ``address``.

    A store without a user (public folders, an address not in the directory)
    is unlimited.
    """
    user = await directory.get_user(address)
    if user is None:
        user = (await directory.resolve_login(address)).user
    if user is None:
        return UNLIMITED
    async with directory.engine.connect() as conn:
        rows = (await conn.execute(
            select(UserProperties.proptag, UserProperties.propval_str)
            .where(UserProperties.user_id == user.id,
                   UserProperties.proptag.in_(QUOTA_TAGS))
            .order_by(UserProperties.order_id))).all()
    found: dict[int, int | None] = {}
    for tag, value in rows:
        found.setdefault(int(tag), _kib(value))
    return Quota.from_kib(found.get(PR_STORAGE_QUOTA_LIMIT), found.get(PR_PROHIBIT_RECEIVE_QUOTA),
                          found.get(PR_PROHIBIT_SEND_QUOTA))


def apply(mbox: Mailbox, quota: Quota) -> None:
    """Make the mailbox enforce ``quota.storage`` on its writes."""
    mbox.storage_limit = quota.storage


async def load(mbox: Mailbox, directory: Directory) -> Quota:
    """Read the owner's limits from the directory and :func:`apply` them; returns them."""
    quota = UNLIMITED if mbox.info.public else await quota_for(directory, mbox.key)
    apply(mbox, quota)
    return quota


def total_size(txn: Txn) -> int:
    """Bytes the store's messages take (``meta.total_size``)."""
    row = txn.conn.execute("SELECT value FROM meta WHERE key = 'total_size'").fetchone()
    return int(row[0])


async def check_receive(mbox: Mailbox, quota: Quota, incoming_size: int) -> None:
    """Refuse a delivery of ``incoming_size`` bytes that would take the mailbox past its
    receive quota (``QuotaExceeded("receive")``) or its storage quota
    (``QuotaExceeded("storage")``). SMTP/LMTP answer 452/552 4.2.2/5.2.2."""
    if quota.receive is None and quota.storage is None:
        return
    current = await mbox.read(total_size)
    after = current + max(incoming_size, 0)
    if quota.receive is not None and after > quota.receive:
        raise QuotaExceeded("receive", f"the mailbox {mbox.key} is full: {current} bytes "
                                       f"used, {incoming_size} more would pass its receive "
                                       f"quota of {quota.receive}")
    if quota.storage is not None and after > quota.storage:
        raise QuotaExceeded("storage", f"the mailbox {mbox.key} is full: {current} bytes "
                                       f"used, {incoming_size} more would pass its storage "
                                       f"quota of {quota.storage}")


async def check_send(mbox: Mailbox, quota: Quota) -> None:
    """Refuse sending from a mailbox larger than its send quota (``QuotaExceeded("send")``)."""
    if quota.send is None:
        return
    current = await mbox.read(total_size)
    if current > quota.send:
        raise QuotaExceeded("send", f"the mailbox {mbox.key} holds {current} bytes, more than "
                                    f"its send quota of {quota.send}; delete something first")


def _to_kib(limit: int | None) -> int | None:
    return None if limit is None else min(-(-limit // KIB), 0x7FFFFFFF)


def quota_props(txn: Txn, quota: Quota) -> dict[int, int]:
    """The store's quota properties: the three limits in KiB (left out when unlimited)
    and its size, ``PidTagMessageSizeExtended`` in bytes."""
    size = total_size(txn)
    props: dict[int, int] = {
        T.PidTagMessageSize: min(size, 0x7FFFFFFF),
        T.PidTagMessageSizeExtended: size,
    }
    for tag, limit in ((T.PidTagStorageQuotaLimit, quota.storage),
                       (T.PidTagProhibitReceiveQuota, quota.receive),
                       (T.PidTagProhibitSendQuota, quota.send)):
        kib = _to_kib(limit)
        if kib is not None:
            props[tag] = kib
    return props


async def store_props(mbox: Mailbox, quota: Quota) -> dict[int, int]:
    """:func:`quota_props` of an open mailbox."""
    return await mbox.read(quota_props, quota)
