"""The one path out for mail: :class:`MailService` (``host.mail``).

Every message a user sends — SMTP submission today, EWS, EAS and MAPI later —
goes through :meth:`MailService.submit_mime` or :meth:`MailService.submit_message`:
the checks of :mod:`gateway.mail.submission`, a copy in the sender's Sent
Items, local recipients delivered at once (:mod:`gateway.mail.delivery`),
remote ones put in the durable queue (:mod:`gateway.mail.queue`) that sends
them through :mod:`gateway.mail.relay` and tells the sender what failed
(:mod:`gateway.mail.dsn`). Mail the server writes itself (bounces, forwards,
auto-replies) takes :meth:`MailService.send_system`: the same routes, no checks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.mail.dsn import notice as dsn_notice
from gateway.mail.queue import FAILED, AttemptResult, Envelope, OutboundQueue, Recipient
from gateway.mail.relay import Relay, domain_of
from gateway.mail.settings import MailSettings, mail_settings
from gateway.mail.submission import (
    DsnRequest,
    SubmissionRefused,
    check_address,
    is_local_domain,
    prepare,
)

if TYPE_CHECKING:
    from gateway.mail.delivery import DeliveryResult

__all__ = ["DsnRequest", "MailService", "SubmissionRefused", "SubmitResult"]

log = logging.getLogger("gateway.mail")


@dataclass
class SubmitResult:
    queue_id: str
    """"" when nothing was queued."""
    delivered: list[DeliveryResult] = field(default_factory=list)
    """One result per local recipient (a 4xx one is also queued for another try)."""
    queued: list[str] = field(default_factory=list)
    sent_copy_id: int | None = None


@dataclass
class _Routes:
    local: list[str] = field(default_factory=list)
    retry_local: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    refused: list[tuple[str, Any]] = field(default_factory=list)


class MailService:
    """Submission, the outbound queue and its runner, for one gateway process."""

    def __init__(self, host: Any, settings: MailSettings | None = None):
        self.host = host
        self.settings = settings or mail_settings(host)
        self.relay = Relay(self.settings)
        self.queue = OutboundQueue(host.data_dir / "queue", self.settings, self._transport,
                                   self._report)

    async def start(self) -> None:
        await self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()

    @property
    def has_route(self) -> bool:
        return self.settings.relay is not None or self.settings.mx_lookup

    # -- sending ------------------------------------------------------------------------------
    async def submit_mime(self, user: str, raw: bytes, *, envelope_from: str | None = None,
                          recipients: list[str] | None = None, save_copy: bool = True,
                          dsn: DsnRequest | None = None, smtputf8: bool = False
                          ) -> SubmitResult:
        """Send ``raw`` for the authenticated ``user``; :class:`SubmissionRefused` when not.
        ``dsn``: RET/ENVID/NOTIFY/ORCPT as given (RFC 3461); ``smtputf8``: the client
        asked for SMTPUTF8 (also implied by a non-ASCII address)."""
        prepared = await prepare(self.host, self.settings, user, raw,
                                 envelope_from=envelope_from, recipients=recipients)
        routes = await self._route(prepared.recipients, len(prepared.transmit))
        if routes.refused:
            address, check = routes.refused[0]
            raise SubmissionRefused(check.code, check.enhanced, f"<{address}>: {check.text}")
        if routes.remote and not self.has_route:
            raise SubmissionRefused(550, "5.4.4", "this gateway sends no mail to other "
                                    "domains: [mail] relayhost is empty and mx_lookup is off "
                                    f"(first remote recipient: <{routes.remote[0]}>)")
        result = await self._send(prepared.transmit, prepared.sender, routes,
                                  dsn or DsnRequest(), prepared.smtputf8 or smtputf8)
        if save_copy:
            result.sent_copy_id = await self._save_sent(user, prepared.sent_copy)
        return result

    async def submit_message(self, user: str, mailbox: str, message_id: int, *,
                             save_copy: bool = True) -> SubmitResult:
        """Send a stored MAPI message (a draft in ``mailbox``) for ``user``; then the draft
        moves to that store's Sent Items (or is deleted: ``PidTagDeleteAfterSubmit``, or
        ``save_copy=False``)."""
        from gateway.convert import mime_out
        from gateway.convert.load import load_message
        from gateway.store import permissions
        from gateway.store import tags as T
        from gateway.store.objects import MSGFLAG_READ
        from gateway.store.special import Private

        mbox = await self.host.store.open(mailbox)
        if mbox.key != user.lower():
            grant = await mbox.read(permissions.grant_of, user)
            if not grant:
                raise SubmissionRefused(553, "5.7.1", f"{user} may not send messages of "
                                        f"{mbox.key}")
        message = await load_message(mbox, message_id)
        raw = await asyncio.to_thread(mime_out.render, message)
        recipients = [mime_out.recipient_address(row) for row in message.recipients]
        result = await self.submit_mime(user, raw, recipients=[r for r in recipients if r],
                                        save_copy=False)
        if message.props.get(T.PidTagDeleteAfterSubmit) or not save_copy:
            await mbox.delete_messages([message_id])
            return result
        moved = await mbox.move_messages([message_id], int(Private.SENT_ITEMS))
        new_id = moved.get(message_id, message_id)
        await mbox.set_message_props(new_id, {T.PidTagMessageFlags: MSGFLAG_READ})
        result.sent_copy_id = new_id
        return result

    async def send_system(self, raw: bytes, *, sender: str, recipients: list[str]) -> str:
        """Mail the server writes (bounces, forwards, auto-replies): no permission checks.
        Returns the queue id, or "" when nothing was queued. Raises
        :class:`SubmissionRefused` (before sending anything) when a recipient is remote and
        there is no route out, so a forward can be kept instead of lost."""
        if sender:
            sender = check_address(sender, sender=True)
        valid = []
        for address in recipients:
            try:
                valid.append(check_address(address, sender=False))
            except SubmissionRefused as exc:
                log.warning("system mail from <%s>: recipient dropped: %s", sender, exc.text)
        if not valid:
            return ""
        routes = await self._route(valid, len(raw))
        for address, check in routes.refused:
            log.warning("system mail from <%s> to <%s> not delivered: %s %s", sender, address,
                        check.code, check.text)
        if routes.remote and not self.has_route:
            raise SubmissionRefused(550, "5.4.4", "no route to remote addresses ([mail] "
                                    "relayhost is empty and mx_lookup is off): "
                                    + ", ".join(routes.remote))
        result = await self._send(raw, sender, routes, DsnRequest(),
                                  not all(a.isascii() for a in [sender, *valid]))
        return result.queue_id

    # -- routes -------------------------------------------------------------------------------
    async def _route(self, recipients: list[str], size: int) -> _Routes:
        from gateway.mail.delivery import check_recipient

        routes = _Routes()
        domains: dict[str, bool] = {}
        for address in recipients:
            check = await check_recipient(self.host, address, size)
            if check.ok:
                routes.local.append(address)
                continue
            domain = domain_of(address)
            if domain not in domains:
                domains[domain] = await is_local_domain(self.host, domain)
            if not domains[domain]:
                routes.remote.append(address)
            elif 400 <= check.code < 500:
                routes.retry_local.append(address)
            else:
                routes.refused.append((address, check))
        return routes

    async def _send(self, raw: bytes, sender: str, routes: _Routes, request: DsnRequest,
                    smtputf8: bool) -> SubmitResult:
        from gateway.mail.delivery import deliver_local

        def entry(address: str, transport: str) -> Recipient:
            return Recipient(address, transport, notify=request.notify.get(address),
                             orcpt=request.orcpt.get(address, ""))

        result = SubmitResult(queue_id="")
        entries = [entry(a, "relay") for a in routes.remote]
        entries += [entry(a, "local") for a in routes.retry_local]
        if routes.local:
            result.delivered = await deliver_local(self.host, raw, sender=sender,
                                                   recipients=routes.local)
            for delivered in result.delivered:
                if 400 <= delivered.code < 500:
                    entries.append(entry(delivered.address, "local"))
                elif delivered.code >= 500:
                    failed = entry(delivered.address, "local")
                    failed.state, failed.action = FAILED, "failed"
                    failed.code, failed.enhanced = delivered.code, delivered.enhanced
                    failed.text = delivered.text
                    entries.append(failed)  # the queue sends the bounce
        if entries:
            result.queue_id = await self.queue.enqueue(
                raw, sender, entries, ret=request.ret, envid=request.envid, smtputf8=smtputf8)
            result.queued = [e.address for e in entries if e.state != FAILED]
        return result

    async def _save_sent(self, user: str, raw: bytes) -> int | None:
        from gateway.convert import mime_in
        from gateway.store import tags as T
        from gateway.store.errors import NotFound
        from gateway.store.objects import MSGFLAG_READ
        from gateway.store.special import Private

        try:
            mbox = await self.host.store.open(user)
        except NotFound:
            log.warning("%s has no store: no copy in Sent Items", user)
            return None
        message = await asyncio.to_thread(mime_in.parse, raw)
        message.props[T.PidTagMessageFlags] = MSGFLAG_READ
        message_id: int = await mbox.create_message(int(Private.SENT_ITEMS), message)
        return message_id

    # -- the queue's callbacks ----------------------------------------------------------------
    async def _transport(self, envelope: Envelope, raw: bytes,
                         recipients: list[Recipient]) -> list[AttemptResult]:
        from gateway.mail.delivery import deliver_local

        local = [r.address for r in recipients if r.transport == "local"]
        remote = [r for r in recipients if r.transport != "local"]
        results: list[AttemptResult] = []
        if local:
            for done in await deliver_local(self.host, raw, sender=envelope.sender,
                                            recipients=local):
                results.append(AttemptResult(done.address, done.code, done.enhanced, done.text,
                                             f"dns; {self.settings.hostname}", "delivered"))
        if remote:
            results += await self.relay.deliver(envelope, raw, remote)
        return results

    async def _report(self, envelope: Envelope, raw: bytes, recipients: list[Recipient],
                      action: str) -> None:
        notice = dsn_notice(hostname=self.settings.hostname,
                           bounce_from=self.settings.bounce_from, envelope=envelope, raw=raw,
                           recipients=recipients, action=action,
                           max_queue_age=self.settings.max_queue_age)
        if notice is None:
            return
        log.info("%s: %s notice to <%s> for %s", envelope.id, action, envelope.sender,
                 ", ".join(r.address for r in recipients))
        try:
            await self.send_system(notice, sender="", recipients=[envelope.sender])
        except SubmissionRefused as exc:
            log.warning("%s: %s notice to <%s> not sent: %s", envelope.id, action,
                        envelope.sender, exc.text)
