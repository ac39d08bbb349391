"""The submission listeners' policy (RFC 6409): authenticated users send mail.

``AUTH`` (PLAIN, LOGIN) is offered after TLS — STARTTLS on
``submission_listen``, implicit on ``submission_listen_tls`` — or before it
with ``[smtp] allow_plaintext_auth``; ``MAIL`` without it gets 530 5.7.0, and
an envelope sender the user may not use (not theirs, no send-as or
on-behalf right) 553 5.7.1.
Recipients in local domains are checked at ``RCPT`` (unknown: 550 5.1.1);
others are accepted for the outbound queue. After the data, a ``Received``
field (``with ESMTPSA``) is put in front and the message goes to
``host.mail.submit_mime``, which checks the sender (own address, alias,
send-as / on-behalf), saves the Sent Items copy, delivers local recipients
and queues the rest — or raises ``SubmissionRefused`` (553 5.7.1 ...), whose
reply the client gets. DSN parameters (RET, ENVID, NOTIFY, ORCPT) are passed
on with the submission.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from gateway.mail.delivery import check_recipient, local_hostname
from gateway.mail.recipients import is_local_domain, split
from gateway.mail.submission import (
    DsnRequest,
    SubmissionRefused,
    owned_addresses,
    sender_right,
)
from plugins.smtp.auth import MECHANISMS, authenticate
from plugins.smtp.grammar import MailFrom, RcptTo
from plugins.smtp.ratelimit import ConnectionRate
from plugins.smtp.replies import Reply
from plugins.smtp.session import Envelope, Session
from plugins.smtp.settings import SmtpSection

if TYPE_CHECKING:
    from gateway.host import Host

log = logging.getLogger("gateway.plugin.smtp")


class SubmissionPolicy:
    name = "submission"
    greetings = frozenset({"EHLO", "HELO"})

    def __init__(self, host: Host, settings: SmtpSection, rate: ConnectionRate) -> None:
        self.host = host
        self.settings = settings
        self.rate = rate

    async def on_connect(self, session: Session) -> Reply | None:
        if not self.rate.admit(session.peer_ip):
            return Reply(421, "4.7.0", "too many connections from your address, try later")
        return None

    def _auth_allowed(self, session: Session) -> bool:
        return session.conn.tls or self.settings.allow_plaintext_auth

    def keywords(self, session: Session) -> list[str]:
        words = []
        if session.conn.can_starttls:
            words.append("STARTTLS")
        if self._auth_allowed(session):
            words.append("AUTH " + " ".join(MECHANISMS))
        return words

    async def on_auth(self, session: Session, args: str) -> Reply:
        reply = await authenticate(self.host, session, args,
                                   allow_plaintext=self.settings.allow_plaintext_auth)
        if reply.ok:
            log.info("submission: %s authenticated from %s", session.user, session.peer_ip)
        return reply

    async def on_mail(self, session: Session, mail: MailFrom) -> Reply:
        if session.user is None:
            return Reply(530, "5.7.0", "authentication required")
        if mail.sender:  # refused early; submit_mime checks again, with the From: fields
            owned = await owned_addresses(self.host, session.user)
            if not await sender_right(self.host, session.user, mail.sender, owned):
                return Reply(553, "5.7.1", f"{session.user} may not send as {mail.sender}")
        return Reply(250, "2.1.0", "sender ok")

    async def on_rcpt(self, session: Session, envelope: Envelope, rcpt: RcptTo) -> Reply:
        if await is_local_domain(self.host, split(rcpt.address)[1]):
            check = await check_recipient(self.host, rcpt.address, envelope.mail.size or 0)
            if not check.ok:
                return Reply(check.code, check.enhanced, check.text)
        return Reply(250, "2.1.5", "recipient ok")

    def _received(self, session: Session, envelope: Envelope) -> bytes:
        recipients = envelope.recipients
        text = (f"Received: from {session.helo} ([{session.peer_ip}])\r\n"
                f"\tby {local_hostname(self.host)} (groupware-gateway) with {session.protocol}"
                f" id {secrets.token_hex(6).upper()}")
        if len(recipients) == 1:
            text += f"\r\n\tfor <{recipients[0].address}>"
        return (text + f"; {format_datetime(datetime.now(UTC))}\r\n").encode("utf-8")

    async def on_data(self, session: Session, envelope: Envelope, raw: bytes) -> list[Reply]:
        count = len(envelope.recipients)
        service: Any = getattr(self.host, "mail", None)
        if service is None or session.user is None:
            return [Reply(451, "4.3.5", "submission is unavailable: the mail service "
                                        "(host.mail) is not running")] * count
        mail = envelope.mail
        dsn = DsnRequest(ret=mail.ret or "", envid=mail.envid or "",
                         notify={r.address: list(r.notify) for r in envelope.recipients
                                 if r.notify},
                         orcpt={r.address: r.orcpt for r in envelope.recipients if r.orcpt})
        try:
            result = await service.submit_mime(
                session.user, self._received(session, envelope) + raw,
                envelope_from=mail.sender, recipients=[r.address for r in envelope.recipients],
                dsn=dsn, smtputf8=mail.smtputf8)
        except SubmissionRefused as refused:
            log.info("submission: refused for %s: %s", session.user, refused)
            return [Reply(refused.code, refused.enhanced, refused.text)] * count
        except Exception:
            log.exception("submission: failed for %s", session.user)
            return [Reply(451, "4.3.0", "could not accept the message, try again later")] * count
        queue_id = getattr(result, "queue_id", "")
        text = f"queued as {queue_id}" if queue_id else "delivered"
        return [Reply(250, "2.0.0", text)] * count
