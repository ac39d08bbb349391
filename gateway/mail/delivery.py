"""Local delivery: check a recipient, store a message in Inboxes, forwards, auto-replies.

:func:`check_recipient` answers ``RCPT TO`` (directory look-up through
:mod:`gateway.mail.recipients`, the mailbox's receive quota).
:func:`deliver_local` is the one way mail enters a mailbox from outside —
from the LMTP/SMTP delivery listener and from submission (``host.mail``) for
local recipients:

1. the recipients are resolved; several naming the same mailbox (an address
   and its alias) are stored once and all answered;
2. ``Return-Path`` and a ``Received`` field (RFC 5321 4.4) are put in front of
   the message; the result is parsed into MAPI once (on a worker thread) and
   that one parse is shared by every recipient — only the ``PidTagReceivedBy*``
   properties differ, and the ``+tag`` of a plus address (:data:`PLUS_TAG`);
3. each mailbox gets one store write, all mailboxes concurrently: the message
   goes into the Inbox with ``new_mail`` (durable when the write returns), and
   in the same transaction the out-of-office settings are read and, when a
   reply is due, the sender is recorded;
4. then, after everything is stored, forwards (the directory's ``forwards``
   table: CC keeps the copy, redirect stores none) and out-of-office replies go
   out through ``host.mail.send_system``. A redirect that cannot be sent is
   stored after all, so nothing is lost. A message that already carries
   ``Delivered-To: <mailbox>`` is not forwarded again (a forwarding loop) but
   stored.

Replies: 250 2.0.0 stored; 550 5.1.1 unknown; 550 5.7.1 not a local domain;
452 4.2.2 mailbox full (receive quota reached); 552 5.2.2 message larger than
the whole quota; 451 4.3.0 store failure (try again).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from gateway.convert import mime_in
from gateway.mail import autoreply
from gateway.mail.recipients import (
    FORWARD_REDIRECT,
    Forward,
    Resolution,
    cached,
    forward_of,
    is_local_domain,
    resolve,
    split,
)
from gateway.store import messages
from gateway.store import proptypes as pt
from gateway.store import quota as quotas
from gateway.store import tags as T
from gateway.store.errors import NotFound, QuotaExceeded
from gateway.store.named import PSETID_GATEWAY, NamedProp
from gateway.store.objects import NewMessage
from gateway.store.special import Private
from gateway.store.txn import Txn

if TYPE_CHECKING:
    from gateway.host import Host
    from gateway.store.mailbox import Mailbox

log = logging.getLogger("gateway.mail")

INBOX = int(Private.INBOX)
PLUS_TAG = NamedProp(PSETID_GATEWAY, "DeliveryPlusTag", pt.PT_UNICODE)
"""The ``tag`` of a message delivered to ``user+tag@domain``, kept for rules (a folder hint)."""
DEFAULT_AUTOREPLY_INTERVAL = 7 * 86400.0


@dataclass(frozen=True)
class RecipientCheck:
    ok: bool
    address: str
    """Canonical primary address of the mailbox ("" when not ok)."""
    code: int
    enhanced: str
    text: str


@dataclass(frozen=True)
class DeliveryResult:
    address: str
    """As given in RCPT."""
    code: int
    enhanced: str
    text: str
    message_id: int | None = None
    """Store id in the Inbox when stored."""

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300


def local_hostname(host: Host) -> str:
    """The name this server gives itself in trace fields: ``[mail] hostname``, else
    ``[smtp] hostname``, else the machine's host name."""
    for section in ("mail", "smtp"):
        if section in host.config:
            name = getattr(host.config[section], "hostname", "")
            if name:
                return str(name)
    return socket.gethostname()


def _quota_refusal(size: int, limit: int | None) -> tuple[int, str, str]:
    if limit is not None and size > limit:
        return 552, "5.2.2", "message larger than the mailbox quota"
    return 452, "4.2.2", "mailbox full"


async def _check_quota(host: Host, mbox: Mailbox, mailbox: str,
                       size: int) -> tuple[int, str, str] | None:
    quota = await cached(host, ("quota", mailbox.lower()),
                         lambda: quotas.quota_for(host.directory, mailbox))
    try:
        await quotas.check_receive(mbox, quota, size)
    except QuotaExceeded as exc:
        return _quota_refusal(size, quota.receive if exc.kind == "receive" else quota.storage)
    return None


async def check_recipient(host: Host, address: str, size_hint: int = 0) -> RecipientCheck:
    """Whether ``address`` can receive a message of about ``size_hint`` bytes here."""
    found = await resolve(host, address)
    if not found.local:
        return RecipientCheck(False, "", found.code, found.enhanced, found.text)
    try:
        mbox = await host.store.open(found.mailbox)
    except NotFound:
        return RecipientCheck(False, "", 550, "5.1.1", "no mailbox for this user")
    refusal = await _check_quota(host, mbox, found.mailbox, size_hint)
    if refusal is not None:
        return RecipientCheck(False, "", *refusal)
    return RecipientCheck(True, found.mailbox, 250, "2.1.5", "recipient ok")


def _clean(text: str) -> str:
    return "".join(c for c in text if c >= " " and c != "\x7f")


def trace_fields(host: Host, *, sender: str, recipients: list[str], remote: str,
                 protocol: str, queue_id: str) -> bytes:
    """``Return-Path`` and ``Received`` for the top of a delivered message (RFC 5321 4.4);
    ``for <address>`` only when there is one recipient, so others' names do not leak."""
    received = ""
    if remote:
        received += f"from {_clean(remote)}\r\n\t"
    received += (f"by {_clean(local_hostname(host))} (groupware-gateway) "
                 f"with {_clean(protocol) or 'local'} id {queue_id}")
    if len(recipients) == 1:
        received += f"\r\n\tfor <{_clean(recipients[0])}>"
    received += f"; {format_datetime(datetime.now(UTC))}"
    return (f"Return-Path: <{_clean(sender)}>\r\nReceived: {received}\r\n").encode()


def _received_by(message: NewMessage, mailbox: str, name: str, tag: str) -> NewMessage:
    props: dict[Any, Any] = dict(message.props)
    if tag:
        props[PLUS_TAG] = tag
    props.update({T.PidTagReceivedByEmailAddress: mailbox, T.PidTagReceivedByAddressType: "SMTP",
                  T.PidTagReceivedByName: name or mailbox,
                  T.PidTagReceivedRepresentingEmailAddress: mailbox,
                  T.PidTagReceivedRepresentingAddressType: "SMTP",
                  T.PidTagReceivedRepresentingName: name or mailbox})
    return replace(message, props=props)


def _store(txn: Txn, message: NewMessage, want_reply: str, interval: float
           ) -> tuple[int, autoreply.OofSettings | None]:
    """One write: the message into the Inbox; the OOF settings when a reply is due."""
    message_id = messages.create(txn, INBOX, message, None, 0, "new_mail")
    if not want_reply:
        return message_id, None
    settings = autoreply.read_settings(txn)
    if not settings.active() or not autoreply.claim_reply(txn, want_reply, interval):
        return message_id, None
    return message_id, settings


@dataclass
class _Target:
    """One mailbox of a delivery and what happened there."""

    mailbox: str
    found: Resolution
    forward: Forward | None = None
    result: tuple[int, str, str] = (451, "4.3.0", "not delivered")
    message_id: int | None = None
    oof: autoreply.OofSettings | None = None


def _autoreply_interval(host: Host) -> float:
    if "smtp" in host.config:
        return float(getattr(host.config.smtp, "autoreply_interval", DEFAULT_AUTOREPLY_INTERVAL))
    return DEFAULT_AUTOREPLY_INTERVAL


async def deliver_local(host: Host, raw: bytes, *, sender: str, recipients: list[str],
                        remote: str = "", protocol: str = "local") -> list[DeliveryResult]:
    """Store ``raw`` in each recipient's Inbox; one result per recipient, in order.

    ``remote`` describes the client for the Received field (``"mx.example
    ([192.0.2.1])"``), ``protocol`` is its ``with`` keyword (LMTP, ESMTPS ...).
    """
    queue_id = secrets.token_hex(6).upper()
    resolved = [await resolve(host, address) for address in recipients]
    targets: dict[str, _Target] = {}
    for found in resolved:
        if found.local and found.mailbox.lower() not in targets:
            targets[found.mailbox.lower()] = _Target(found.mailbox, found)
    stored_raw = trace_fields(host, sender=sender, recipients=recipients, remote=remote,
                              protocol=protocol, queue_id=queue_id) + raw
    message = await asyncio.to_thread(mime_in.parse, stored_raw) if targets else None
    headers = autoreply.header_block(raw)
    loops = {str(v).strip().strip("<>").lower() for v in headers.get_all("Delivered-To", [])}
    reply_to = sender if autoreply.may_reply(headers, sender) else ""
    interval = _autoreply_interval(host)
    if message is not None:
        await asyncio.gather(*(
            _deliver_one(host, target, message, stored_raw, reply_to, interval, loops)
            for target in targets.values()))
    results = []
    for address, found in zip(recipients, resolved, strict=True):
        target = targets.get(found.mailbox.lower()) if found.local else None
        if target is None:
            results.append(DeliveryResult(address, found.code, found.enhanced, found.text))
        else:
            results.append(DeliveryResult(address, *target.result, message_id=target.message_id))
    log.info("delivery %s from=<%s> %s", queue_id, sender, " ".join(
        f"to=<{r.address}> {r.code} {r.enhanced}" for r in results))
    await _after_delivery(host, [t for t in targets.values() if t.result[0] < 300],
                          stored_raw, sender, headers, reply_to)
    return results


async def _deliver_one(host: Host, target: _Target, message: NewMessage, stored_raw: bytes,
                       reply_to: str, interval: float, loops: set[str]) -> None:
    try:
        mbox = await host.store.open(target.mailbox)
    except NotFound:
        target.result = (550, "5.1.1", "no mailbox for this user")
        return
    refusal = await _check_quota(host, mbox, target.mailbox, len(stored_raw))
    if refusal is not None:
        target.result = refusal
        return
    target.forward = await forward_of(host, target.mailbox)
    if target.mailbox.lower() in loops:
        target.forward = None  # already forwarded through here once
    if target.forward is not None and target.forward.kind == FORWARD_REDIRECT:
        if await _send_forward(host, target, stored_raw):
            target.result = (250, "2.1.5", f"redirected to {target.forward.destination}")
            target.forward = None
            return
        target.forward = None  # could not redirect: keep it here instead
    name = target.found.user.display_name if target.found.user else ""
    want = reply_to if reply_to.lower() != target.mailbox.lower() else ""
    try:
        target.message_id, target.oof = await mbox.write(
            _store, _received_by(message, target.mailbox, name, target.found.tag), want, interval)
    except QuotaExceeded:
        target.result = (452, "4.2.2", "mailbox full")
        return
    except Exception:
        log.exception("delivery to %s failed", target.mailbox)
        target.result = (451, "4.3.0", "could not store the message, try again later")
        return
    target.result = (250, "2.0.0", "delivered")


def _mail_service(host: Host) -> Any:
    return getattr(host, "mail", None)


async def _send_forward(host: Host, target: _Target, stored_raw: bytes) -> bool:
    service, forward = _mail_service(host), target.forward
    if forward is None:
        return False
    if service is None:
        log.warning("forward of %s to %s not sent: the mail service (host.mail) is not "
                    "running", target.mailbox, forward.destination)
        return False
    copy = f"Delivered-To: {target.mailbox}\r\n".encode() + stored_raw
    try:
        await service.send_system(copy, sender=_return_path(stored_raw),
                                  recipients=[forward.destination])
    except Exception:
        log.exception("forward of %s to %s failed", target.mailbox, forward.destination)
        return False
    return True


def _return_path(stored_raw: bytes) -> str:
    first = stored_raw.split(b"\r\n", 1)[0].decode("utf-8", "replace")
    return first.partition("<")[2].rpartition(">")[0]


async def _after_delivery(host: Host, stored: list[_Target], stored_raw: bytes, sender: str,
                          headers: Any, reply_to: str) -> None:
    """Forwards (CC) and out-of-office replies, after every copy is stored."""
    internal: bool | None = None
    for target in stored:
        if target.forward is not None:
            await _send_forward(host, target, stored_raw)
        if target.oof is None or not reply_to:
            continue
        if internal is None:
            internal = await is_local_domain(host, split(reply_to)[1])
        text = target.oof.reply_for(internal)
        service = _mail_service(host)
        if text is None:
            continue
        if service is None:
            log.warning("out-of-office reply of %s not sent: the mail service (host.mail) "
                        "is not running", target.mailbox)
            continue
        name = target.found.user.display_name if target.found.user else ""
        reply = autoreply.build_reply(mailbox=target.mailbox, display_name=name, to=reply_to,
                                      subject=text[0], body=text[1], original=headers)
        try:
            await service.send_system(reply, sender="", recipients=[reply_to])
        except Exception:
            log.exception("out-of-office reply of %s to %s failed", target.mailbox, reply_to)
