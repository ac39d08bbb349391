"""Out-of-office replies: the settings kept in the store, RFC 3834 rules, the reply.

Where the state lives. gromox keeps it beside the mailbox as files
(``config/autoreply.cfg`` with OOF_STATE 0 off / 1 on / 2 scheduled,
START_TIME, END_TIME, ALLOW_EXTERNAL_OOF, EXTERNAL_AUDIENCE, plus the MIME
texts ``config/internal-reply`` and ``config/external-reply``). Here it is in
the store itself, as properties of the root folder, so it travels with the
mailbox and every protocol (EWS Get/SetUserOofSettings, MAPI, a CLI) reads and
writes the same thing through :func:`get_settings` / :func:`set_settings`:

- ``PidTagOutOfOfficeState`` (0x661D000B) — mirrors "a reply would be sent
  now" for MAPI clients, written by :func:`set_settings`;
- named properties in the gateway's property set (``PSETID_GATEWAY``):
  ``OofState`` (PT_LONG 0/1/2 as in gromox), ``OofStart``/``OofEnd``
  (PT_SYSTIME, the window of state 2), ``OofInternalSubject``/``OofInternalBody``,
  ``OofExternalSubject``/``OofExternalBody`` (PT_UNICODE, plain text),
  ``OofAllowExternal`` (PT_BOOLEAN), ``OofExternalAudience`` (PT_LONG: 0 every
  external sender, 1 known contacts only — not evaluated yet, so treated as
  nobody external);
- ``OofReplied`` (PT_UNICODE, JSON ``{sender: unix time}``): who got a reply
  when, so each sender gets one per ``interval`` (default 7 days, RFC 3834
  section 2). Entries older than the interval are dropped on each write and
  at most :data:`MAX_RECORD` are kept.

Which messages never get a reply (RFC 3834 section 2): a null sender,
``Auto-Submitted`` other than ``no``, ``Precedence: bulk/list/junk``, any
``List-*`` field, ``X-Auto-Response-Suppress`` with OOF or All, and senders
that are robots by name (mailer-daemon, owner-*, *-request, noreply ...).
The reply goes to the envelope sender, from the null sender, with
``Auto-Submitted: auto-replied``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any

from gateway.store import proptypes as pt
from gateway.store import tags as T
from gateway.store.named import PSETID_GATEWAY, NamedProp
from gateway.store.special import Private
from gateway.store.txn import Txn

if TYPE_CHECKING:
    from email.message import Message

    from gateway.store.mailbox import Mailbox

OFF, ON, SCHEDULED = 0, 1, 2
AUDIENCE_ALL, AUDIENCE_KNOWN = 0, 1
MAX_RECORD = 2000
ROOT = int(Private.ROOT)

OOF_STATE = NamedProp(PSETID_GATEWAY, "OofState", pt.PT_LONG)
OOF_START = NamedProp(PSETID_GATEWAY, "OofStart", pt.PT_SYSTIME)
OOF_END = NamedProp(PSETID_GATEWAY, "OofEnd", pt.PT_SYSTIME)
OOF_INTERNAL_SUBJECT = NamedProp(PSETID_GATEWAY, "OofInternalSubject", pt.PT_UNICODE)
OOF_INTERNAL_BODY = NamedProp(PSETID_GATEWAY, "OofInternalBody", pt.PT_UNICODE)
OOF_EXTERNAL_SUBJECT = NamedProp(PSETID_GATEWAY, "OofExternalSubject", pt.PT_UNICODE)
OOF_EXTERNAL_BODY = NamedProp(PSETID_GATEWAY, "OofExternalBody", pt.PT_UNICODE)
OOF_ALLOW_EXTERNAL = NamedProp(PSETID_GATEWAY, "OofAllowExternal", pt.PT_BOOLEAN)
OOF_EXTERNAL_AUDIENCE = NamedProp(PSETID_GATEWAY, "OofExternalAudience", pt.PT_LONG)
OOF_REPLIED = NamedProp(PSETID_GATEWAY, "OofReplied", pt.PT_UNICODE)

SETTING_KEYS = (OOF_STATE, OOF_START, OOF_END, OOF_INTERNAL_SUBJECT, OOF_INTERNAL_BODY,
                OOF_EXTERNAL_SUBJECT, OOF_EXTERNAL_BODY, OOF_ALLOW_EXTERNAL,
                OOF_EXTERNAL_AUDIENCE)
ROBOT_PREFIXES = ("mailer-daemon", "owner-", "listserv", "majordomo", "noreply", "no-reply",
                  "do-not-reply", "donotreply", "bounce")
ROBOT_SUFFIXES = ("-request", "-owner", "-bounces")
BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})


@dataclass(frozen=True)
class OofSettings:
    """A mailbox's out-of-office settings (see the module docstring)."""

    state: int = OFF
    start: datetime | None = None
    end: datetime | None = None
    internal_subject: str = ""
    internal_body: str = ""
    external_subject: str = ""
    external_body: str = ""
    allow_external: bool = False
    external_audience: int = AUDIENCE_ALL

    def active(self, now: datetime | None = None) -> bool:
        """Whether replies go out at ``now`` (state on, or scheduled and inside the window)."""
        if self.state == ON:
            return True
        if self.state != SCHEDULED:
            return False
        now = now or datetime.now(UTC)
        return ((self.start is None or self.start <= now)
                and (self.end is None or now < self.end))

    def reply_for(self, internal: bool) -> tuple[str, str] | None:
        """(subject, body) for an internal or external sender, or None for no reply."""
        if internal:
            return self.internal_subject, self.internal_body
        if not self.allow_external or self.external_audience != AUDIENCE_ALL:
            return None
        return self.external_subject, self.external_body or self.internal_body


def read_settings(txn: Txn) -> OofSettings:
    """The settings, read inside a store transaction."""
    props = txn.read_props("folder_props", ROOT, SETTING_KEYS)
    if not props.get(OOF_STATE):
        return OofSettings()
    return OofSettings(
        state=int(props.get(OOF_STATE) or OFF),
        start=_aware(props.get(OOF_START)), end=_aware(props.get(OOF_END)),
        internal_subject=props.get(OOF_INTERNAL_SUBJECT) or "",
        internal_body=props.get(OOF_INTERNAL_BODY) or "",
        external_subject=props.get(OOF_EXTERNAL_SUBJECT) or "",
        external_body=props.get(OOF_EXTERNAL_BODY) or "",
        allow_external=bool(props.get(OOF_ALLOW_EXTERNAL)),
        external_audience=int(props.get(OOF_EXTERNAL_AUDIENCE) or AUDIENCE_ALL))


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def get_settings(mbox: Mailbox) -> OofSettings:
    return await mbox.read(read_settings)


async def set_settings(mbox: Mailbox, settings: OofSettings) -> None:
    """Store ``settings`` on the root folder (an empty setting removes its property)."""
    props: dict[Any, Any] = {
        OOF_STATE: settings.state, OOF_START: settings.start, OOF_END: settings.end,
        OOF_INTERNAL_SUBJECT: settings.internal_subject or None,
        OOF_INTERNAL_BODY: settings.internal_body or None,
        OOF_EXTERNAL_SUBJECT: settings.external_subject or None,
        OOF_EXTERNAL_BODY: settings.external_body or None,
        OOF_ALLOW_EXTERNAL: settings.allow_external,
        OOF_EXTERNAL_AUDIENCE: settings.external_audience,
        T.PidTagOutOfOfficeState: settings.active(),
    }
    await mbox.set_folder_props(ROOT, props)


def claim_reply(txn: Txn, sender: str, interval: float, now: float | None = None) -> bool:
    """Inside a write: True (and the sender recorded) when ``sender`` had no reply within
    ``interval`` seconds; False when it had one."""
    now = time.time() if now is None else now
    key = sender.lower()
    stored = txn.read_props("folder_props", ROOT, [OOF_REPLIED]).get(OOF_REPLIED)
    try:
        record = json.loads(stored) if stored else {}
        if not isinstance(record, dict):
            record = {}
    except ValueError:
        record = {}
    last = record.get(key)
    if isinstance(last, int | float) and now - last < interval:
        return False
    fresh = {k: v for k, v in record.items()
             if isinstance(v, int | float) and now - v < interval}
    fresh[key] = int(now)
    if len(fresh) > MAX_RECORD:
        fresh = dict(sorted(fresh.items(), key=lambda kv: kv[1])[-MAX_RECORD:])
    txn.write_props("folder_props", ROOT, {OOF_REPLIED: json.dumps(fresh)})
    return True


def header_block(raw: bytes) -> Message:
    """The header fields of ``raw`` (parsed up to the first empty line only)."""
    end = raw.find(b"\r\n\r\n")
    head = raw if end < 0 else raw[:end + 2]
    return BytesHeaderParser().parsebytes(head)


def may_reply(headers: Message, sender: str) -> bool:
    """Whether RFC 3834 allows an automatic reply to this message from ``sender``."""
    if not sender or "@" not in sender:
        return False
    local = sender.rpartition("@")[0].lower()
    if local.startswith(ROBOT_PREFIXES) or local.endswith(ROBOT_SUFFIXES):
        return False
    auto = str(headers.get("Auto-Submitted", "no")).strip().lower()
    if auto.split(";")[0].strip() != "no":
        return False
    if str(headers.get("Precedence", "")).strip().lower() in BULK_PRECEDENCE:
        return False
    if any(name.lower().startswith("list-") for name in headers.keys()):
        return False
    suppress = str(headers.get("X-Auto-Response-Suppress", "")).lower()
    return not ("oof" in suppress or "all" in suppress)


def build_reply(*, mailbox: str, display_name: str, to: str, subject: str, body: str,
                original: Message) -> bytes:
    """The auto-reply message (text/plain, UTF-8) as bytes with CRLF line ends."""
    reply = EmailMessage(policy=SMTP)
    try:
        reply["From"] = Address(display_name or "", addr_spec=mailbox)
    except (ValueError, IndexError):
        reply["From"] = mailbox
    reply["To"] = to
    original_subject = str(original.get("Subject", "")).replace("\r", "").replace("\n", "")
    reply["Subject"] = subject or f"Automatic reply: {original_subject}".strip()
    reply["Date"] = format_datetime(datetime.now(UTC))
    reply["Message-ID"] = make_msgid(domain=mailbox.rpartition("@")[2] or None)
    message_id = str(original.get("Message-ID", "")).strip()
    if message_id.startswith("<") and "\n" not in message_id and len(message_id) < 998:
        reply["In-Reply-To"] = message_id
        reply["References"] = message_id
    reply["Auto-Submitted"] = "auto-replied"
    reply["X-Auto-Response-Suppress"] = "All"
    reply.set_content(body or "I am out of the office.", charset="utf-8")
    return reply.as_bytes()
