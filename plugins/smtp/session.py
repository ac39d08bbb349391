"""The SMTP/LMTP protocol engine: one :class:`Session` per connection.

Why not aiosmtpd: its ``SMTP`` class *is* an ``asyncio.StreamReaderProtocol``
that owns the transport — it reads from its own stream reader, does STARTTLS
by swapping the transport itself, and applies its own line limits and
timeouts. Running it over :class:`gateway.net.Connection` (which already does
TLS, STARTTLS, PROXY protocol, line limits, idle timeouts and per-address
limits, the same way for IMAP) would mean faking a transport under it and
doing every one of those twice. The grammar is small, so the engine is
written here, in aiosmtpd's spirit: the engine parses and keeps state; a
*policy* (:class:`Policy`, one for the delivery listener and one for
submission) decides what to accept.

LMTP and SMTP share the engine. On the delivery listener the client's
greeting decides: ``LHLO`` makes the session LMTP (one reply per accepted
recipient after the data, RFC 2033), ``EHLO``/``HELO`` makes it SMTP (one
reply after the data), so Postfix can use ``lmtp:`` or ``smtp:`` transports
against the same port. A later greeting may switch, as it also resets the
transaction.

Replies are written as each command is handled, which keeps PIPELINING
(RFC 2920) correct whatever the client groups together. Every command line is
checked before it is parsed: at most 998 octets plus CRLF (``AUTH`` lines,
which carry SASL data, up to the service's line limit), ending in CRLF, no
bare CR, no NUL, valid UTF-8 (non-ASCII only in ``MAIL``/``RCPT`` with
SMTPUTF8). After ``max_errors`` refused commands the client is disconnected.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from gateway.net import Connection, ConnectionClosed, IdleTimeout, LineTooLong, NetError
from gateway.net.errors import TlsHandshakeError, TlsUnavailable
from plugins.smtp.data import MAX_TEXT_LINE, read_message
from plugins.smtp.grammar import (
    MailFrom,
    RcptTo,
    SyntaxProblem,
    parse_mail,
    parse_rcpt,
    split_command,
)
from plugins.smtp.replies import BAD_SEQUENCE, OK, Reply
from plugins.smtp.settings import SmtpSection

log = logging.getLogger("gateway.plugin.smtp")

GREETINGS = frozenset({"EHLO", "HELO", "LHLO"})
NOT_IMPLEMENTED = frozenset({"BDAT", "ETRN", "TURN", "ATRN", "EXPN", "SEND", "SOML", "SAML",
                             "XCLIENT", "XFORWARD"})
MAX_AUTH_LINE = 4096
TEMPORARY_FAILURE = Reply(451, "4.3.0", "temporary failure, try again later")


@dataclass
class Envelope:
    """One mail transaction: the sender and the recipients accepted so far."""

    mail: MailFrom
    recipients: list[RcptTo] = field(default_factory=list)


class Policy(Protocol):
    """What a listener decides; the engine handles the protocol around it."""

    name: str
    greetings: frozenset[str]
    """Greeting verbs accepted: ``{"LHLO", "EHLO", "HELO"}`` on the delivery port."""

    async def on_connect(self, session: Session) -> Reply | None:
        """A refusal to send instead of the greeting (and close), or None."""

    def keywords(self, session: Session) -> list[str]:
        """EHLO keywords beyond the common ones (``STARTTLS``, ``AUTH PLAIN LOGIN``)."""

    async def on_auth(self, session: Session, args: str) -> Reply:
        """Run an ``AUTH`` exchange (the policy may read and write through ``session``)."""

    async def on_mail(self, session: Session, mail: MailFrom) -> Reply: ...

    async def on_rcpt(self, session: Session, envelope: Envelope, rcpt: RcptTo) -> Reply: ...

    async def on_data(self, session: Session, envelope: Envelope, raw: bytes) -> list[Reply]:
        """One reply per accepted recipient, in order (the engine folds them for SMTP)."""


class Session:
    """One client: greeting, transaction state, authentication, the command loop."""

    def __init__(self, conn: Connection, policy: Policy, settings: SmtpSection,
                 hostname: str) -> None:
        self.conn = conn
        self.policy = policy
        self.settings = settings
        self.hostname = hostname
        self.helo: str | None = None
        self.lmtp = False
        self.esmtp = False
        self.user: str | None = None
        """The authenticated user's canonical address (submission)."""
        self.envelope: Envelope | None = None
        self.errors = 0
        self._handlers: dict[str, Callable[[str, str], Awaitable[bool]]] = {
            "EHLO": self._greet, "HELO": self._greet, "LHLO": self._greet,
            "MAIL": self._mail, "RCPT": self._rcpt, "DATA": self._data,
            "RSET": self._rset, "NOOP": self._noop, "QUIT": self._quit,
            "VRFY": self._vrfy, "HELP": self._help, "STARTTLS": self._starttls,
            "AUTH": self._auth,
        }

    # -- helpers for policies -----------------------------------------------------------------

    @property
    def peer_ip(self) -> str:
        return self.conn.peer[0]

    @property
    def protocol(self) -> str:
        """The ``with`` keyword of a Received header (RFC 3848): ESMTPSA, LMTPS, SMTP ..."""
        base = "LMTP" if self.lmtp else "ESMTP" if self.esmtp else "SMTP"
        if base == "SMTP":
            return base
        return base + ("S" if self.conn.tls else "") + ("A" if self.user else "")

    async def send(self, reply: Reply) -> None:
        await self.conn.write(reply.encode())

    async def send_raw(self, line: bytes) -> None:
        await self.conn.write(line)

    async def read_auth_line(self) -> bytes:
        """One client line during AUTH, CRLF removed; ``SyntaxProblem`` when malformed."""
        line = await self.conn.readline()
        if not line.endswith(b"\r\n") or b"\r" in line[:-2] or b"\0" in line:
            raise SyntaxProblem(Reply(501, "5.5.2", "malformed AUTH response line"))
        return line[:-2]

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        refusal = await self.policy.on_connect(self)
        if refusal is not None:
            await self.send(refusal)
            return
        kind = "LMTP" if self.policy.greetings == frozenset({"LHLO"}) else "ESMTP"
        await self.send(Reply(220, "", f"{self.hostname} {kind} ready"))
        try:
            while await self._one_command():
                if self.errors >= self.settings.max_errors:
                    await self.send(Reply(421, "4.7.0", "too many errors, closing"))
                    return
        except IdleTimeout:
            try:
                await self.send(Reply(421, "4.4.2", "idle for too long, closing"))
            except NetError:
                pass
        except (ConnectionClosed, TlsHandshakeError):
            return

    async def _one_command(self) -> bool:
        """Read and answer one command; False when the session is over."""
        try:
            line = await self.conn.readline()
        except LineTooLong:
            return await self._refuse(Reply(500, "5.5.2", "line too long"))
        limit = MAX_AUTH_LINE if line[:5].upper() == b"AUTH " else MAX_TEXT_LINE
        if len(line) > limit:
            return await self._refuse(Reply(500, "5.5.2", "line too long"))
        if not line.endswith(b"\r\n"):
            return await self._refuse(Reply(500, "5.5.2", "command lines must end with CRLF"))
        body = line[:-2]
        if b"\r" in body or b"\0" in body:
            return await self._refuse(Reply(500, "5.5.2", "bare CR or NUL in command"))
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return await self._refuse(Reply(500, "5.5.2", "command is not valid UTF-8"))
        verb, rest = split_command(text)
        if not text.isascii() and verb not in ("MAIL", "RCPT"):
            return await self._refuse(Reply(500, "5.5.2", "non-ASCII command"))
        handler = self._handlers.get(verb)
        if handler is None:
            if verb in NOT_IMPLEMENTED:
                return await self._refuse(Reply(502, "5.5.1", f"{verb} is not implemented"))
            return await self._refuse(Reply(500, "5.5.2", "command unrecognized"))
        try:
            return await handler(verb, rest)
        except SyntaxProblem as problem:
            return await self._refuse(problem.reply)

    async def _decide(self, decision: Awaitable[Reply]) -> Reply:
        """The policy's reply; a failure inside it (the directory is down ...) is logged
        and answered 451, so the client tries again later."""
        try:
            return await decision
        except Exception:
            log.exception("%s: a check for %s failed", self.policy.name, self.peer_ip)
            return TEMPORARY_FAILURE

    async def _answer(self, reply: Reply) -> bool:
        """Send ``reply``, counting refusals towards ``max_errors``; the session goes on."""
        if reply.code >= 500:
            self.errors += 1
        await self.send(reply)
        return True

    _refuse = _answer

    # -- commands -----------------------------------------------------------------------------

    async def _greet(self, verb: str, rest: str) -> bool:
        if verb not in self.policy.greetings:
            wanted = "/".join(sorted(self.policy.greetings))
            return await self._refuse(Reply(500, "5.5.1", f"{verb} is not accepted here; "
                                                          f"use {wanted}"))
        name = rest.strip(" ")
        if not name or " " in name or not name.isprintable():
            return await self._refuse(Reply(501, "5.5.4", f"syntax: {verb} domain"))
        self.helo, self.envelope = name, None
        self.lmtp, self.esmtp = verb == "LHLO", verb != "HELO"
        greeting = f"{self.hostname} greets {name}"
        if verb == "HELO":
            return await self._answer(Reply(250, "", greeting))
        keywords = ["PIPELINING", f"SIZE {self.settings.max_message_bytes}", "8BITMIME",
                    "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN", *self.policy.keywords(self)]
        return await self._answer(Reply(250, "", greeting, tuple(keywords)))

    def _need_greeting(self) -> Reply | None:
        if self.helo is None:
            wanted = "LHLO" if self.policy.greetings == frozenset({"LHLO"}) else "EHLO"
            return Reply(503, BAD_SEQUENCE, f"send {wanted} first")
        return None

    async def _mail(self, verb: str, rest: str) -> bool:
        if (problem := self._need_greeting()) is not None:
            return await self._refuse(problem)
        if self.envelope is not None:
            return await self._refuse(Reply(503, BAD_SEQUENCE, "a transaction is already "
                                                                "open (RSET first)"))
        mail = parse_mail(rest, esmtp=self.esmtp)
        limit = self.settings.max_message_bytes
        if mail.size is not None and mail.size > limit:
            return await self._answer(Reply(552, "5.3.4", f"message size exceeds the limit "
                                                          f"of {limit} bytes"))
        reply = await self._decide(self.policy.on_mail(self, mail))
        if reply.ok:
            self.envelope = Envelope(mail)
        return await self._answer(reply)

    async def _rcpt(self, verb: str, rest: str) -> bool:
        if (problem := self._need_greeting()) is not None:
            return await self._refuse(problem)
        envelope = self.envelope
        if envelope is None:
            return await self._refuse(Reply(503, BAD_SEQUENCE, "need MAIL before RCPT"))
        rcpt = parse_rcpt(rest, esmtp=self.esmtp, utf8=envelope.mail.smtputf8)
        if len(envelope.recipients) >= self.settings.max_recipients:
            return await self._answer(Reply(452, "4.5.3", "too many recipients"))
        reply = await self._decide(self.policy.on_rcpt(self, envelope, rcpt))
        if reply.ok:
            envelope.recipients.append(rcpt)
        return await self._answer(reply)

    async def _data(self, verb: str, rest: str) -> bool:
        if rest.strip(" "):
            return await self._refuse(Reply(501, "5.5.4", "DATA takes no arguments"))
        if (problem := self._need_greeting()) is not None:
            return await self._refuse(problem)
        envelope = self.envelope
        if envelope is None:
            return await self._refuse(Reply(503, BAD_SEQUENCE, "need MAIL before DATA"))
        if not envelope.recipients:
            return await self._refuse(Reply(554, "5.5.1", "no valid recipients"))
        await self.send(Reply(354, "", "end data with <CR><LF>.<CR><LF>"))
        message = await read_message(self.conn, self.settings.max_message_bytes)
        self.envelope = None
        replies: list[Reply]
        if message.problem is not None:
            replies = [message.problem] * len(envelope.recipients)
        elif (hops := count_received(message.raw)) > self.settings.max_hops:
            problem = Reply(554, "5.4.6", f"too many hops ({hops} Received headers): "
                                          f"a mail loop?")
            replies = [problem] * len(envelope.recipients)
        else:
            try:
                replies = await self.policy.on_data(self, envelope, message.raw)
            except Exception:
                log.exception("%s: accepting a message from %s failed", self.policy.name,
                              self.peer_ip)
                replies = [TEMPORARY_FAILURE] * len(envelope.recipients)
        if self.lmtp:
            for reply in replies:
                await self.send(reply)
            return True
        return await self._answer(fold(replies))

    async def _rset(self, verb: str, rest: str) -> bool:
        if rest.strip(" "):
            return await self._refuse(Reply(501, "5.5.4", "RSET takes no arguments"))
        self.envelope = None
        return await self._answer(OK)

    async def _noop(self, verb: str, rest: str) -> bool:
        return await self._answer(OK)

    async def _quit(self, verb: str, rest: str) -> bool:
        if rest.strip(" "):
            return await self._refuse(Reply(501, "5.5.4", "QUIT takes no arguments"))
        await self.send(Reply(221, "2.0.0", f"{self.hostname} closing"))
        return False

    async def _vrfy(self, verb: str, rest: str) -> bool:
        if not rest.strip(" "):
            return await self._refuse(Reply(501, "5.5.4", "syntax: VRFY address"))
        return await self._answer(Reply(252, "2.5.2", "cannot verify, but will accept the "
                                                      "message and attempt delivery"))

    async def _help(self, verb: str, rest: str) -> bool:
        return await self._answer(Reply(214, "2.0.0", "commands: " + " ".join(
            sorted(v for v in self._handlers if v not in GREETINGS - self.policy.greetings))))

    async def _starttls(self, verb: str, rest: str) -> bool:
        if rest.strip(" "):
            return await self._refuse(Reply(501, "5.5.4", "STARTTLS takes no arguments"))
        if self.conn.tls:
            return await self._refuse(Reply(503, BAD_SEQUENCE, "TLS is already active"))
        if not self.conn.can_starttls:
            return await self._refuse(Reply(502, "5.5.1", "STARTTLS is not offered here"))
        await self.send(Reply(220, "2.0.0", "ready to start TLS"))
        try:
            await self.conn.starttls()
        except TlsUnavailable:
            return False
        # RFC 3207 4.2: forget everything learnt before the handshake.
        self.helo, self.envelope, self.user = None, None, None
        self.lmtp = self.esmtp = False
        return True

    async def _auth(self, verb: str, rest: str) -> bool:
        if (problem := self._need_greeting()) is not None:
            return await self._refuse(problem)
        if not self.esmtp:
            return await self._refuse(Reply(503, BAD_SEQUENCE, "AUTH needs EHLO"))
        if self.user is not None:
            return await self._refuse(Reply(503, BAD_SEQUENCE, "already authenticated"))
        if self.envelope is not None:
            return await self._refuse(Reply(503, BAD_SEQUENCE, "AUTH is not allowed during "
                                                                "a mail transaction"))
        return await self._answer(await self.policy.on_auth(self, rest))


def fold(replies: list[Reply]) -> Reply:
    """The one SMTP reply after DATA for per-recipient results: success when any recipient
    got the message (the policy has reported the others), else the first failure."""
    for reply in replies:
        if reply.ok:
            return Reply(250, "2.0.0", reply.text) if len(replies) > 1 else reply
    return replies[0]


def count_received(raw: bytes) -> int:
    """How many ``Received:`` fields the header block of ``raw`` has."""
    end = raw.find(b"\r\n\r\n")
    head = raw if end < 0 else raw[:end + 2]
    return sum(1 for line in head.split(b"\r\n") if line[:9].lower() == b"received:")
