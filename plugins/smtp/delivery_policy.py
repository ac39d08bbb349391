"""The delivery listener's policy: the MTA hands over mail for local mailboxes.

Only ``[smtp] delivery_clients`` may connect (others get 554 5.7.1 instead of
a greeting); there is no AUTH. Any sender is accepted; recipients must be
local mailboxes able to receive (:func:`gateway.mail.delivery.check_recipient`)
— a recipient in a domain not served here is relaying and refused with
550 5.7.1. After the data, :func:`gateway.mail.delivery.deliver_local` stores
the message and each recipient gets its own reply (LMTP). In SMTP mode, when
some recipients were stored and others failed at that last moment, the client
is told 250 and, as an MTA would, the gateway takes over the others (through
``host.mail``): temporary failures are queued and tried again, permanent ones
bounced to the sender. DSN parameters (NOTIFY, ORCPT, RET, ENVID) are parsed
and, apart from those bounces, not acted upon here: the MTA in front reports
final delivery itself (LMTP and SMTP replies are its delivery status).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from gateway.mail import dsn
from gateway.mail.delivery import DeliveryResult, check_recipient, deliver_local
from gateway.mail.queue import Envelope as QueueEnvelope
from gateway.mail.queue import Recipient, new_queue_id
from gateway.mail.settings import mail_settings
from gateway.net.proxy import is_trusted
from plugins.smtp.grammar import MailFrom, RcptTo
from plugins.smtp.ratelimit import ConnectionRate
from plugins.smtp.replies import Reply
from plugins.smtp.session import Envelope, Session
from plugins.smtp.settings import SmtpSection

if TYPE_CHECKING:
    from gateway.host import Host

log = logging.getLogger("gateway.plugin.smtp")


class DeliveryPolicy:
    name = "delivery"
    greetings = frozenset({"LHLO", "EHLO", "HELO"})

    def __init__(self, host: Host, settings: SmtpSection, rate: ConnectionRate) -> None:
        self.host = host
        self.settings = settings
        self.rate = rate
        self.clients = tuple(settings.delivery_clients)

    async def on_connect(self, session: Session) -> Reply | None:
        if not is_trusted(session.peer_ip, self.clients):
            log.info("delivery: refused %s (not in delivery_clients)", session.peer_ip)
            return Reply(554, "5.7.1", f"{session.hostname} accepts no mail from "
                                       f"{session.peer_ip}")
        if not self.rate.admit(session.peer_ip):
            return Reply(421, "4.7.0", "too many connections from your address, try later")
        return None

    def keywords(self, session: Session) -> list[str]:
        return []

    async def on_auth(self, session: Session, args: str) -> Reply:
        return Reply(502, "5.5.1", "AUTH is not offered on the delivery port")

    async def on_mail(self, session: Session, mail: MailFrom) -> Reply:
        return Reply(250, "2.1.0", "sender ok")

    async def on_rcpt(self, session: Session, envelope: Envelope, rcpt: RcptTo) -> Reply:
        check = await check_recipient(self.host, rcpt.address, envelope.mail.size or 0)
        return Reply(check.code, check.enhanced, check.text)

    async def on_data(self, session: Session, envelope: Envelope, raw: bytes) -> list[Reply]:
        results = await deliver_local(
            self.host, raw, sender=envelope.mail.sender,
            recipients=[r.address for r in envelope.recipients],
            remote=f"{session.helo} ([{session.peer_ip}])", protocol=session.protocol)
        replies = [Reply(r.code, r.enhanced, r.text) for r in results]
        if not session.lmtp and any(r.ok for r in results):
            failed = [(rcpt, result) for rcpt, result in zip(envelope.recipients, results,
                                                             strict=True) if not result.ok]
            if failed:
                await self._hand_over(envelope, raw, failed)
        return replies

    async def _hand_over(self, envelope: Envelope, raw: bytes,
                         failed: list[tuple[RcptTo, DeliveryResult]]) -> None:
        """Recipients an SMTP client was told 250 for but that failed: temporary failures
        go to the outbound queue (``host.mail``) to be tried again, permanent ones are
        bounced to the sender (RFC 3464) unless the sender is null."""
        service: Any = getattr(self.host, "mail", None)
        who = ", ".join(result.address for _, result in failed)
        if service is None:
            log.error("delivery: failed for %s and neither retried nor bounced: the mail "
                      "service (host.mail) is not running", who)
            return
        later = [result.address for _, result in failed if 400 <= result.code < 500]
        if later:
            try:
                await service.send_system(raw, sender=envelope.mail.sender, recipients=later)
            except Exception:
                log.exception("delivery: could not queue %s for another try", later)
        permanent = [(rcpt, result) for rcpt, result in failed if result.code >= 500]
        if permanent:
            await self._bounce(envelope, raw, permanent)

    async def _bounce(self, envelope: Envelope, raw: bytes,
                      failed: list[tuple[RcptTo, DeliveryResult]]) -> None:
        service: Any = getattr(self.host, "mail", None)
        if not envelope.mail.sender or service is None:
            log.warning("delivery: failed for %s; null sender, no bounce",
                        ", ".join(result.address for _, result in failed))
            return
        settings = mail_settings(self.host)
        recipients = [Recipient(result.address, transport="local", state="failed",
                                notify=list(rcpt.notify) or None, orcpt=rcpt.orcpt or "",
                                code=result.code, enhanced=result.enhanced, text=result.text,
                                action="failed")
                      for rcpt, result in failed]
        now = time.time()
        queued = QueueEnvelope(id=new_queue_id(), sender=envelope.mail.sender,
                               recipients=recipients, size=len(raw), created=now,
                               queued_at=now, next_attempt=now, ret=envelope.mail.ret or "",
                               envid=envelope.mail.envid or "",
                               smtputf8=envelope.mail.smtputf8)
        notice = dsn.notice(hostname=settings.hostname, bounce_from=settings.bounce_from,
                            envelope=queued, raw=raw, recipients=recipients, action="failed")
        if notice is None:
            return
        try:
            await service.send_system(notice, sender="", recipients=[envelope.mail.sender])
        except Exception:
            log.exception("delivery: bounce to %s failed", envelope.mail.sender)
