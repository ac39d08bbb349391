"""The schedule inbox and outbox (RFC 6638 2.1-2.2), and delivering scheduling messages.

``/dav/calendars/<address>/inbox/`` and ``/outbox/`` are collections of their
owner (or of a user with full access to the store). The outbox takes the
free/busy POSTs of :mod:`plugins.dav.m_post`. The inbox is always empty over
DAV: a scheduling message delivered here is already applied to the recipient's
Calendar (implicit scheduling), and its meeting request, response or
cancellation goes to the store's Inbox folder as Outlook expects it, where
every other protocol sees it. A DAV client therefore never has to process it.

Delivery of one iTIP message (RFC 5546) to one calendar user: an internal user
(a user of our directory with a store) gets it in their store
(:func:`write_copy`, :func:`to_inbox`); anyone else an iMIP mail (RFC 6047:
``multipart/alternative`` with ``text/plain`` and ``text/calendar; method=...``)
through the gateway's mail submission (``host.mail``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from hashlib import sha1
from typing import Any

from gateway.convert import goid
from gateway.convert.ical_in import parse_calendar_report
from gateway.mail.submission import is_local_domain
from gateway.store import NewMessage, NotFound, Private, StoreError, dav, permissions
from gateway.store import tags as T
from gateway.store.rights import Rights
from plugins.dav import items, paths, privileges
from plugins.dav.resources import Context, Resource
from plugins.dav.xmlns import CALDAV, CS, DAV, tag
from plugins.dav.xmlout import Element, element, href_element, sub

log = logging.getLogger("gateway.plugins.dav.scheduling")

D = lambda name: tag(DAV, name)  # noqa: E731
C = lambda name: tag(CALDAV, name)  # noqa: E731

BOXES = ("inbox", "outbox")
CALENDAR = int(Private.CALENDAR)
INBOX = int(Private.INBOX)
ASF_MEETING, ASF_RECEIVED = 0x1, 0x2
SUBJECTS = {"REQUEST": "Invitation", "CANCEL": "Cancelled", "ACCEPTED": "Accepted",
            "DECLINED": "Declined", "TENTATIVE": "Tentative"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SAFE = re.compile(r"^[A-Za-z0-9@._+-]{1,120}$")

BOX_PRIVILEGES = {
    "inbox": (C("schedule-deliver"), (C("schedule-deliver-invite"),
                                      C("schedule-deliver-reply"),
                                      C("schedule-query-freebusy"))),
    "outbox": (C("schedule-send"), (C("schedule-send-invite"), C("schedule-send-reply"),
                                    C("schedule-send-freebusy"))),
}


@dataclass
class ScheduleBox(Resource):
    """The schedule inbox or outbox of ``owner``."""

    href: str
    owner: str
    box: str
    """``"inbox"`` or ``"outbox"``."""


async def resolve_box(ctx: Context, owner: str, segment: str) -> ScheduleBox | None:
    """The box at ``/calendars/<owner>/<segment>/``; None when ``segment`` names no box or
    the requesting user may not use the owner's boxes (then the path is a 404)."""
    box = segment.lower()
    if box not in BOXES:
        return None
    if owner != ctx.user:
        if not ctx.host.store.exists(owner):
            return None
        mbox = await ctx.store(owner)
        grant = await mbox.read(permissions.grant_of, ctx.user)
        if not grant.full_access:
            return None
    return ScheduleBox(paths.href(ctx.base, "calendars", owner, box), owner, box)


async def members(ctx: Context, res: ScheduleBox) -> list[Resource]:
    """What a Depth 1 PROPFIND lists below a box: nothing (see the module's docstring)."""
    return []


def prop(ctx: Context, res: ScheduleBox, name: str) -> Element | None:
    """The live property ``name`` of a box; None when it has none. What every resource
    answers about the requesting user comes from :mod:`plugins.dav.props`."""
    base = ctx.base
    if name == D("resourcetype"):
        out = element(name)
        sub(out, D("collection"))
        sub(out, C(f"schedule-{res.box}"))
        return out
    if name == D("displayname"):
        return element(name, res.box.capitalize())
    if name == D("owner"):
        return href_element(name, paths.principal_href(base, res.owner))
    if name in (tag(CS, "getctag"), D("getetag"), D("sync-token")):
        value = "0" if name == tag(CS, "getctag") else '"0"'
        return element(name, "urn:x-gateway:schedule-box:0" if name == D("sync-token")
                       else value)
    if name == D("supported-report-set"):
        return element(name)
    if name == D("current-user-privilege-set"):
        out = privileges.current_user_privilege_set(Rights.READ_ANY)
        aggregate, parts = BOX_PRIVILEGES[res.box]
        for privilege in (aggregate, *parts):
            sub(sub(out, D("privilege")), privilege)
        return out
    if name == D("supported-privilege-set"):
        out = element(name)
        top = sub(out, D("supported-privilege"))
        sub(sub(top, D("privilege")), D("all"))
        sub(top, D("abstract"))
        read = sub(top, D("supported-privilege"))
        sub(sub(read, D("privilege")), D("read"))
        aggregate, parts = BOX_PRIVILEGES[res.box]
        agg = sub(top, D("supported-privilege"))
        sub(sub(agg, D("privilege")), aggregate)
        for part in parts:
            sub(sub(sub(agg, D("supported-privilege")), D("privilege")), part)
        return out
    if res.box == "inbox" and name in (C("schedule-default-calendar-URL"),
                                       C("calendar-free-busy-set")):
        return href_element(name, paths.href(base, "calendars", res.owner, "calendar"))
    return None


# -- who a calendar user is -------------------------------------------------------------------
def cal_address(value: Any) -> str:
    """The e-mail address of a ``mailto:`` calendar user address, lower-case; "" for any
    other URI (those are not scheduled)."""
    text = str(value or "").strip()
    if text[:7].lower() != "mailto:":
        return ""
    address = text[7:].strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(ch in address for ch in " <>\r\n\t,;"):
        return ""
    return address


async def recipient_kind(ctx: Context, address: str) -> str:
    """``"internal"`` (a user of ours with a store), ``"external"`` (another domain's) or
    ``"invalid"`` (malformed, or no such user in one of our domains)."""
    if not address:
        return "invalid"
    user = await ctx.host.directory.get_user(address)
    if user is not None and user.username.lower() == address:
        return "internal" if ctx.host.store.exists(address) else "invalid"
    if await is_local_domain(ctx.host, address.rpartition("@")[2]):
        return "invalid"
    return "external"


# -- internal delivery ------------------------------------------------------------------------
def item_name(uid: str) -> str:
    """The URL name of a copy the server makes: the UID when it is a safe name, else a
    digest of it."""
    name = f"{uid}.ics"
    if not _SAFE.match(uid) or uid.startswith(".") or items.FALLBACK.match(name):
        name = f"{sha1(uid.encode()).hexdigest()}.ics"
    return name


async def find_copy(mbox: Any, uid: str, folders: list[int] | None = None
                    ) -> tuple[int, int, str] | None:
    """``(folder id, message id, name)`` of the item with ``uid`` in one of ``folders``
    (default: the Calendar)."""
    key = goid.uid_to_goid(uid)

    def run(txn: Any) -> tuple[int, int, str] | None:
        for folder in folders or [CALENDAR]:
            found = dav.by_prop(txn, folder, T.PidLidGlobalObjectId, key)
            if found:
                rows = dav.items(txn, folder, found[:1])
                if rows:
                    return folder, rows[0].id, rows[0].name or f"gw-{rows[0].id}.ics"
        return None

    return await mbox.read(run)


def as_message(data: bytes) -> NewMessage:
    """The message of one calendar object or iTIP message (ValueError when unreadable)."""
    result = parse_calendar_report(data)
    if len(result.messages) != 1:
        raise ValueError("; ".join(result.errors) or "no event in the scheduling message")
    return result.messages[0]


async def write_copy(ctx: Context, address: str, uid: str,
                     make: Callable[[bytes | None], bytes | None],
                     folders: list[int] | None = None, *, received_by: str | None) -> bool:
    """Create or change the copy of meeting ``uid`` in the store of ``address``:
    ``make(current bytes or None)`` gives the new bytes (None: leave it). The copy is
    found in ``folders`` (default: the Calendar) and made in the first of them.
    ``received_by``: the copy is an attendee's, marked received, with their response
    status (MS-OXOCAL). Returns whether something was written."""
    mbox = await ctx.host.store.open(address)
    found = await find_copy(mbox, uid, folders)
    current = None
    if found is not None:
        current = await _bytes_in(mbox, found[0], found[1])
    data = await asyncio.to_thread(make, current)
    if data is None:
        return False
    message = await asyncio.to_thread(as_message, data)
    if received_by is not None:
        mark_received(message, received_by)
    if found is None:
        folder, message_id, name = (folders or [CALENDAR])[0], None, item_name(uid)
        if await mbox.read(dav.by_name, folder, name) is not None:
            name = f"{sha1(uid.encode()).hexdigest()}-{len(uid)}.ics"
    else:
        folder, message_id, name = found
    await mbox.write(dav.save_item, folder, message_id, message, name, "ical", data)
    return True


def mark_received(message: NewMessage, attendee: str) -> None:
    """An attendee's copy: received, answered as their PARTSTAT says (the recipient
    track status values are those of PidLidResponseStatus)."""
    p = message.props
    p[T.PidLidAppointmentStateFlags] = int(p.get(T.PidLidAppointmentStateFlags, 0)) | \
        ASF_MEETING | ASF_RECEIVED
    p[T.PidLidResponseStatus] = 5
    for row in message.recipients:
        if str(row.get(T.PidTagSmtpAddress, "")).lower() == attendee:
            p[T.PidLidResponseStatus] = int(row.get(T.PidTagRecipientTrackStatus, 5) or 5)


async def _bytes_in(mbox: Any, folder: int, message_id: int) -> bytes | None:
    rows = await mbox.read(dav.items, folder, [message_id])
    if not rows:
        return None
    found = await items.bodies(mbox, [items.ItemRef(message_id, "", rows[0].change_number)],
                               "calendar")
    return found.get(message_id)


async def to_inbox(ctx: Context, address: str, itip: bytes, sender: str,
                   subject: str) -> None:
    """A meeting request, response or cancellation in the Inbox of ``address``."""
    message = await asyncio.to_thread(as_message, itip)
    p = message.props
    now = datetime.now(UTC)
    p[T.PidTagSubject] = subject
    p[T.PidTagMessageDeliveryTime] = now
    p[T.PidTagClientSubmitTime] = now
    p[T.PidTagMessageFlags] = 0
    p[T.PidTagReceivedByEmailAddress] = address
    for key, value in ((T.PidTagSenderEmailAddress, sender), (T.PidTagSenderSmtpAddress, sender),
                       (T.PidTagSenderAddressType, "SMTP"), (T.PidTagSenderName, sender)):
        p[key] = value
    if not str(p.get(T.PidTagMessageClass, "")).startswith("IPM.Schedule.Meeting.Request"):
        p[T.PidTagSentRepresentingEmailAddress] = sender
        p[T.PidTagSentRepresentingSmtpAddress] = sender
        p[T.PidTagSentRepresentingName] = sender
        p[T.PidTagSentRepresentingAddressType] = "SMTP"
    mbox = await ctx.host.store.open(address)
    await mbox.create_message(INBOX, message)


def subject_of(what: str, summary: str) -> str:
    """``"Invitation: <summary>"``: one line, at most 200 characters."""
    text = " ".join(_CONTROL.sub(" ", summary).split())[:200] or "(no subject)"
    return f"{SUBJECTS.get(what, what.capitalize())}: {text}"


# -- external delivery (iMIP) -----------------------------------------------------------------
def imip(sender: str, recipient: str, itip: bytes, method: str, subject: str,
         text: str) -> bytes:
    """An iMIP message (RFC 6047 2.4): the text for people and the iTIP object."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = f"<{sender}>"
    mail["To"] = f"<{recipient}>"
    mail["Subject"] = subject
    mail.set_content(text)
    mail.add_alternative(itip.decode("utf-8", "replace"), subtype="calendar",
                         params={"method": method},
                         cte="7bit" if itip.isascii() else "quoted-printable")
    return mail.as_bytes()


async def send_imip(ctx: Context, sender: str, recipient: str, itip: bytes, method: str,
                    subject: str, text: str) -> str:
    """Send an iMIP message; the SCHEDULE-STATUS it earns: ``1.1`` sent, ``5.1`` not."""
    service = getattr(ctx.host, "mail", None)
    if service is None:
        log.warning("iMIP %s from %s to %s not sent: no mail service (host.mail)", method,
                    sender, recipient)
        return "5.1"
    try:
        raw = imip(sender, recipient, itip, method, subject, text)
        await service.submit_mime(ctx.user, raw, recipients=[recipient], save_copy=False)
    except Exception as exc:  # SubmissionRefused, or the queue failing: the PUT still stands
        log.warning("iMIP %s from %s to %s not sent: %s", method, sender, recipient, exc)
        return "5.1"
    return "1.1"


async def deliver(ctx: Context, sender: str, recipient: str, method: str, itip: bytes,
                  summary: str, copy: Callable[[bytes | None], bytes | None] | None,
                  uid: str, folders: list[int] | None = None) -> str:
    """Deliver one iTIP message; its SCHEDULE-STATUS (RFC 6638 3.2.9): ``1.2`` delivered,
    ``1.1`` sent by mail, ``3.7`` no such calendar user, ``5.1`` delivery failed.
    ``copy`` makes the recipient's calendar copy (internal recipients only)."""
    kind = await recipient_kind(ctx, recipient)
    subject = subject_of(method, summary)
    if kind == "invalid":
        return "3.7"
    if kind == "external":
        text = f"{subject}\r\n\r\nFrom {sender}. Open the attached invitation in your " \
               "calendar program.\r\n"
        return await send_imip(ctx, sender, recipient, itip, method, subject, text)
    try:
        if copy is not None:
            await write_copy(ctx, recipient, uid, copy, folders, received_by=recipient)
        await to_inbox(ctx, recipient, itip, sender, subject)
    except (StoreError, NotFound, ValueError) as exc:
        log.warning("%s of %s to %s not delivered: %s", method, uid, recipient, exc)
        return "5.1"
    except Exception:  # one attendee's failure must not stop the others
        log.exception("%s of %s to %s not delivered", method, uid, recipient)
        return "5.1"
    return "1.2"

