"""Who may send what: the checks every message from a user passes before it goes out.

:func:`prepare` takes the authenticated user, the message and the envelope
and returns a :class:`Prepared` submission or raises :class:`SubmissionRefused`
with the SMTP reply it deserves:

- envelope addresses: no control characters, CR/LF, spaces; one ``@``; RFC 5321
  lengths (501 5.1.7 / 5.1.3);
- size and recipient count (552 5.3.4, 452 5.5.3);
- every ``From:`` address, the ``Sender:`` and the envelope sender must be the
  user's primary address or an alias (directory), or a mailbox whose store
  grants the user send-as, or send-on-behalf — then ``Sender:`` names the user
  (added when missing) (553 5.7.1);
- the user's send quota (552 5.2.2);
- with no relayhost and ``mx_lookup`` off, remote recipients are refused
  (550 5.4.4) rather than queued to expire.

Missing ``Date:``, ``Message-ID:`` and ``From:`` are added (RFC 6409 8). The
copy sent keeps every byte of the message except ``Bcc:`` fields; the Sent
Items copy keeps them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from sqlalchemy import func, select

from gateway.convert.addresses import mailboxes
from gateway.directory.models import Aliases, Domains
from gateway.mail.settings import MailSettings

MAX_ADDRESS = 254
MAX_LOCAL = 64
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class SubmissionRefused(Exception):
    """A submission the gateway will not send; ``code``/``enhanced``/``text`` are the reply."""

    def __init__(self, code: int, enhanced: str, text: str):
        super().__init__(f"{code} {enhanced} {text}")
        self.code, self.enhanced, self.text = code, enhanced, text


@dataclass
class DsnRequest:
    """RFC 3461 parameters given with a submission."""

    ret: str = ""
    envid: str = ""
    notify: dict[str, list[str]] = field(default_factory=dict)
    """Recipient address (as given) → NOTIFY values."""
    orcpt: dict[str, str] = field(default_factory=dict)


@dataclass
class Prepared:
    user: str
    sender: str
    recipients: list[str]
    transmit: bytes
    """What recipients get: the message without Bcc, with added Sender/Date/Message-ID."""
    sent_copy: bytes
    """What goes to Sent Items: the same with Bcc kept."""
    smtputf8: bool


# -- addresses ------------------------------------------------------------------------------------
def check_address(address: str, *, sender: bool) -> str:
    """A well-formed envelope address (domain lower-cased), else :class:`SubmissionRefused`."""
    enhanced = "5.1.7" if sender else "5.1.3"
    what = "sender" if sender else "recipient"
    if not isinstance(address, str):
        raise SubmissionRefused(501, enhanced, f"{what} address is not text")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in address) or "<" in address \
            or ">" in address:
        raise SubmissionRefused(501, enhanced, f"{what} address {address[:80]!r} contains "
                                "control characters, spaces or angle brackets")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise SubmissionRefused(501, enhanced, f"{what} address {address[:80]!r} is not "
                                "local-part@domain")
    if len(address.encode()) > MAX_ADDRESS or len(local.encode()) > MAX_LOCAL:
        raise SubmissionRefused(501, enhanced, f"{what} address {address[:80]!r} is too long")
    if not (domain.startswith("[") and domain.endswith("]")):
        try:
            ascii_form = domain.encode("idna").decode() if not domain.isascii() else domain
        except UnicodeError:
            ascii_form = ""
        labels = ascii_form.rstrip(".").split(".")
        if not ascii_form or len(labels) < 1 or not all(_LABEL.fullmatch(lb) for lb in labels):
            raise SubmissionRefused(501, enhanced, f"{what} domain {domain[:80]!r} is not a "
                                    "valid domain name")
    return f"{local}@{domain.lower()}"


async def owned_addresses(host: Any, user: str) -> set[str]:
    """The user's primary address and aliases, lower-cased."""
    owned = {user.lower()}
    async with host.directory.engine.connect() as conn:
        rows = await conn.execute(select(Aliases.aliasname).where(
            func.lower(Aliases.mainname) == user.lower()))
        owned.update(row[0].lower() for row in rows)
    return owned


async def is_local_domain(host: Any, domain: str) -> bool:
    """Whether ``domain`` is one of this gateway's domains (any status)."""
    if not domain.isascii():
        return False
    async with host.directory.engine.connect() as conn:
        row = (await conn.execute(select(Domains.id).where(
            func.lower(Domains.domainname) == domain.lower()))).first()
    return row is not None


async def _grant(host: Any, user: str, address: str) -> str:
    """``"send_as"``, ``"on_behalf"`` or ``""``: what the store of ``address`` grants ``user``."""
    from gateway.store import permissions
    from gateway.store.errors import NotFound

    lookup = await host.directory.resolve_login(address)
    if lookup.user is None:
        return ""
    owner = lookup.user.username
    try:
        mbox = await host.store.open(owner)
    except NotFound:
        return ""
    if await mbox.read(permissions.can_send_as, user):
        return "send_as"
    if await mbox.read(permissions.can_send_on_behalf, user):
        return "on_behalf"
    return ""


async def sender_right(host: Any, user: str, address: str, owned: set[str]) -> str:
    """``"own"``, ``"send_as"``, ``"on_behalf"`` or ``""`` for ``user`` sending as ``address``."""
    if address.lower() in owned:
        return "own"
    return await _grant(host, user, address)


# -- header fields --------------------------------------------------------------------------------
def split_header(raw: bytes) -> tuple[list[bytes], bytes]:
    """The header's fields (each with its continuation lines and line end) and the rest."""
    end = len(raw)
    for separator in (b"\r\n\r\n", b"\n\n"):
        found = raw.find(separator)
        if found >= 0:
            end = min(end, found + len(separator) // 2)
    if raw.startswith((b"\r\n", b"\n")):
        end = 0
    head, rest = raw[:end], raw[end:]
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields, rest


def field_name(line: bytes) -> str:
    return line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()


def field_value(line: bytes) -> bytes:
    return line.split(b":", 1)[1] if b":" in line else b""


def values_of(fields: list[bytes], name: str) -> list[bytes]:
    return [field_value(f) for f in fields if field_name(f) == name]


def addresses_of(fields: list[bytes], *names: str, limit: int = 100_000) -> list[str]:
    out: list[str] = []
    for name in names:
        for value in values_of(fields, name):
            out.extend(address for _, address in mailboxes(value, limit=limit))
    return out


# -- the whole check ------------------------------------------------------------------------------
async def prepare(host: Any, settings: MailSettings, user: str, raw: bytes, *,
                  envelope_from: str | None, recipients: list[str] | None) -> Prepared:
    if len(raw) > settings.max_message_bytes:
        raise SubmissionRefused(552, "5.3.4", f"message of {len(raw)} bytes is larger than "
                                f"the limit of {settings.max_message_bytes}")
    if recipients is not None and len(recipients) > settings.max_recipients:
        raise SubmissionRefused(452, "5.5.3", f"too many recipients: {len(recipients)}, at "
                                f"most {settings.max_recipients}")
    fields, body = split_header(raw)
    if recipients is None:
        recipients = addresses_of(fields, "to", "cc", "bcc",
                                  limit=settings.max_recipients + 1)
        if len(recipients) > settings.max_recipients:
            raise SubmissionRefused(452, "5.5.3", f"too many recipients, at most "
                                    f"{settings.max_recipients}")
    checked: list[str] = []
    seen: set[str] = set()
    for address in recipients:
        address = check_address(address, sender=False)
        if address.lower() not in seen:
            seen.add(address.lower())
            checked.append(address)
    if not checked:
        raise SubmissionRefused(554, "5.5.1", "no recipients")

    owned = await owned_addresses(host, user)
    rights: dict[str, str] = {}

    async def right(address: str) -> str:
        key = address.lower()
        if key not in rights:
            rights[key] = await sender_right(host, user, address, owned)
        return rights[key]

    from_addresses = addresses_of(fields, "from", limit=100)
    added: list[bytes] = []
    for address in from_addresses:
        if not await right(address):
            raise SubmissionRefused(553, "5.7.1", f"{user} may not send as {address} "
                                    "(From:): not their address, no send-as or "
                                    "send-on-behalf permission")
    sender_field = addresses_of(fields, "sender", limit=2)
    if sender_field and (len(sender_field) > 1 or sender_field[0].lower() not in owned):
        raise SubmissionRefused(553, "5.7.1", f"Sender: must be {user} or one of their "
                                "aliases")
    if any(rights.get(a.lower()) == "on_behalf" for a in from_addresses) and not sender_field:
        added.append(f"Sender: <{user}>\r\n".encode())
    if not from_addresses:
        added.append(f"From: <{user}>\r\n".encode())

    if envelope_from is None:
        first = from_addresses[0] if len(from_addresses) == 1 else ""
        sender = first if first and rights.get(first.lower()) in ("own", "send_as") else user
    elif envelope_from == "":
        sender = ""  # the null sender (e.g. a read receipt): no bounce comes back
    else:
        sender = check_address(envelope_from, sender=True)
        if not await right(sender):
            raise SubmissionRefused(553, "5.7.1", f"{user} may not use {sender} as the "
                                    "envelope sender")
    if sender:
        sender = check_address(sender, sender=True)

    await _check_send_quota(host, user)

    if not values_of(fields, "date"):
        added.append(f"Date: {formatdate(localtime=True)}\r\n".encode())
    if not values_of(fields, "message-id"):
        added.append(f"Message-ID: <{uuid.uuid4().hex}@{settings.hostname}>\r\n".encode())
    kept = [f for f in fields if field_name(f) not in ("bcc", "resent-bcc")]
    transmit = b"".join([*added, *kept]) + body
    sent_copy = b"".join([*added, *fields]) + body
    utf8 = not all(a.isascii() for a in [sender, *checked])
    return Prepared(user, sender, checked, transmit, sent_copy, utf8)


async def _check_send_quota(host: Any, user: str) -> None:
    from gateway.store import quota
    from gateway.store.errors import NotFound, QuotaExceeded

    limits = await quota.quota_for(host.directory, user)
    if limits.send is None:
        return
    try:
        mbox = await host.store.open(user)
    except NotFound:
        return
    try:
        await quota.check_send(mbox, limits)
    except QuotaExceeded as exc:
        raise SubmissionRefused(552, "5.2.2", str(exc)) from None
