"""Delivery status notifications (RFC 3464) for the envelope sender.

:func:`notice` builds a ``multipart/report; report-type=delivery-status``
message: a human-readable part, the ``message/delivery-status`` part
(Reporting-MTA, Arrival-Date, and per recipient Final-Recipient, Action,
Status, Remote-MTA, Diagnostic-Code) and the original message, whole or its
header only as the sender's RET asked. It returns None when no notice is due:
a null sender (never bounce a bounce), or recipients whose NOTIFY (RFC 3461)
does not ask for this kind of notice. Without NOTIFY, only failures are
reported; delay notices need an explicit ``NOTIFY=DELAY``.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from email.utils import format_datetime, formatdate

from gateway.mail.queue import Envelope, Recipient

FULL_LIMIT = 256 * 1024
"""Without RET, messages up to this size come back whole, larger ones as headers only."""

_KEYWORDS = {"failed": "FAILURE", "delayed": "DELAY", "delivered": "SUCCESS",
             "relayed": "SUCCESS", "expanded": "SUCCESS"}
_SUBJECTS = {
    "failed": "Undelivered Mail Returned to Sender",
    "delayed": "Delayed Mail (still being retried)",
    "delivered": "Successful Mail Delivery Report",
    "relayed": "Successful Mail Delivery Report",
    "expanded": "Successful Mail Delivery Report",
}
_HUMAN = {
    "failed": "Your message could not be delivered to the recipients below. This is a\r\n"
              "permanent error; the mail system gave up on them.",
    "delayed": "Your message has not been delivered yet to the recipients below. The mail\r\n"
               "system keeps trying; you do not need to send it again.",
    "delivered": "Your message was delivered to the recipients below.",
    "relayed": "Your message was passed on to the recipients' mail systems below,\r\n"
               "which may not report on it further.",
    "expanded": "Your message was delivered to the recipients below.",
}


def wants_notice(notify: list[str] | None, action: str) -> bool:
    """Whether a recipient's NOTIFY asks for a notice of ``action``."""
    if notify is None:
        return action == "failed"
    if "NEVER" in notify:
        return False
    return _KEYWORDS.get(action, "") in notify


def _clean(text: str) -> str:
    """A header-field value: one line, no control characters."""
    return " ".join("".join(ch if ch >= " " or ch == "\t" else " " for ch in text).split())


def _address_type(address: str) -> str:
    return f"rfc822; {address}" if address.isascii() else f"utf-8; {address}"


def header_block(raw: bytes) -> bytes:
    """The header of ``raw`` up to (not including) the empty line."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(separator)
        if end >= 0:
            return raw[:end + len(separator) // 2]
    return raw


def _date(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, UTC))


def notice(*, hostname: str, bounce_from: str, envelope: Envelope, raw: bytes,
           recipients: list[Recipient], action: str, max_queue_age: float = 0,
           now: float | None = None) -> bytes | None:
    """The DSN for ``recipients`` of ``envelope`` with ``action``, or None when none is due."""
    if not envelope.sender:
        return None
    concerned = [r for r in recipients if wants_notice(r.notify, action)]
    if not concerned:
        return None
    now = time.time() if now is None else now
    boundary = f"=_{secrets.token_hex(12)}"
    lines = [f"This is the mail system at {hostname}.", "", _HUMAN[action], ""]
    for r in concerned:
        lines.append(f"<{r.address}>: {_clean(r.text) or 'no further detail'}")
    human = "\r\n".join(lines).encode() + b"\r\n"

    fields = [f"Reporting-MTA: dns; {hostname}", f"X-Gateway-Queue-ID: {envelope.id}"]
    if envelope.envid:
        fields.append(f"Original-Envelope-Id: {_clean(envelope.envid)}")
    fields.append(f"Arrival-Date: {_date(envelope.created)}")
    status_parts = ["\r\n".join(fields)]
    for r in concerned:
        per = []
        if r.orcpt:
            kind, _, value = r.orcpt.partition(";")
            per.append(f"Original-Recipient: {_clean(kind)}; {_clean(value)}")
        per.append(f"Final-Recipient: {_address_type(r.address)}")
        per.append(f"Action: {action}")
        status = r.enhanced if r.enhanced and action in ("failed", "delayed") else (
            "2.0.0" if action not in ("failed", "delayed") else "5.0.0")
        per.append(f"Status: {status}")
        if r.remote_mta:
            per.append(f"Remote-MTA: {_clean(r.remote_mta)}")
        if r.code:
            per.append(f"Diagnostic-Code: smtp; {_clean(f'{r.code} {r.text}')}")
        per.append(f"Last-Attempt-Date: {_date(now)}")
        if action == "delayed" and max_queue_age:
            per.append(f"Will-Retry-Until: {_date(envelope.queued_at + max_queue_age)}")
        status_parts.append("\r\n".join(per))
    delivery_status = ("\r\n\r\n".join(status_parts) + "\r\n").encode("utf-8")

    whole = action == "failed" and (envelope.ret == "FULL" or (
        envelope.ret == "" and len(raw) <= FULL_LIMIT))
    if whole:
        original_head = b"Content-Type: message/rfc822\r\n"
        original = raw
    else:
        original_head = b"Content-Type: text/rfc822-headers\r\n"
        original = header_block(raw)
    if not original.isascii():
        original_head += b"Content-Transfer-Encoding: 8bit\r\n"
    if not original.endswith(b"\n"):
        original += b"\r\n"

    subject = _SUBJECTS[action]
    head = "\r\n".join([
        f"From: Mail Delivery System <{bounce_from}>",
        f"To: <{envelope.sender}>",
        f"Subject: {subject}",
        f"Date: {formatdate(now, localtime=False)}",
        f"Message-ID: <{envelope.id}.{secrets.token_hex(4)}.dsn@{hostname}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status;\r\n'
        f' boundary="{boundary}"',
    ]).encode("utf-8")
    sep = f"--{boundary}\r\n".encode()
    return b"".join([
        head, b"\r\n\r\nThis is a MIME-encapsulated delivery status notification.\r\n\r\n",
        sep, b"Content-Type: text/plain; charset=utf-8\r\nContent-Description: Notification"
             b"\r\n\r\n", human, b"\r\n",
        sep, b"Content-Type: message/delivery-status\r\n"
             b"Content-Description: Delivery report\r\n\r\n", delivery_status, b"\r\n",
        sep, original_head, b"Content-Description: The original message\r\n\r\n", original,
        f"\r\n--{boundary}--\r\n".encode(),
    ])
