"""Sending queued mail over SMTP: to the relayhost, or to each recipient domain's MX.

One :meth:`Relay.deliver` call is one attempt for one message: recipients are
grouped by domain (or all go to the relayhost), each group tries its hosts in
order (MX preference, or the domain itself when it has no MX, RFC 5321
5.1) until one answers, and every recipient gets its own result: a 2xx is
delivered, 4xx (and anything that went wrong on the way) is retried later,
5xx fails for that recipient only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

import aiosmtplib
import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

from gateway.mail.queue import AttemptResult, Envelope, Recipient
from gateway.mail.settings import MailSettings

log = logging.getLogger("gateway.mail.relay")


@dataclass(frozen=True)
class Target:
    host: str
    """What to connect to: a name, or an address looked up from an MX host's name."""
    port: int
    tls: str
    """``none``, ``starttls`` (required, verified), ``tls`` (implicit) or ``may``
    (opportunistic STARTTLS without verification, for MX hosts)."""
    auth: bool = False
    name: str = ""
    """The host's name (TLS server name, Remote-MTA); "" when ``host`` is one."""

    @property
    def label(self) -> str:
        return self.name or self.host


class RouteError(Exception):
    """No host to try: ``code``/``enhanced`` say whether that is final."""

    def __init__(self, code: int, enhanced: str, text: str):
        super().__init__(text)
        self.code, self.enhanced, self.text = code, enhanced, text


def ascii_domain(domain: str) -> str:
    """The domain as sent on the wire: IDNA A-labels for a non-ASCII name."""
    domain = domain.strip().rstrip(".").lower()
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{domain!r} is not a valid domain name") from None


def wire_address(address: str) -> str:
    """``address`` with its domain in ASCII (the local part is kept as it is)."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    try:
        return f"{local}@{ascii_domain(domain)}"
    except ValueError:
        return address


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def xtext(value: str) -> str:
    """RFC 3461 xtext: printable ASCII but "+" and "=", others as +HH."""
    return "".join(ch if 0x21 <= ord(ch) <= 0x7E and ch not in "+=" else f"+{ord(ch):02X}"
                   for ch in value)


class Relay:
    """The SMTP client side of the queue."""

    def __init__(self, settings: MailSettings):
        self.settings = settings
        self._resolver: dns.asyncresolver.Resolver | None = None

    # -- routing -------------------------------------------------------------------------------
    def resolver(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            servers = self.settings.dns_servers
            resolver = dns.asyncresolver.Resolver(configure=not servers)
            if servers:
                hosts, ports = [], set()
                for entry in servers:
                    host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (
                        entry, "", "")
                    hosts.append(host)
                    ports.add(int(port) if port else 53)
                resolver.nameservers = hosts
                resolver.port = ports.pop() if len(ports) == 1 else 53
            resolver.lifetime = min(self.settings.timeout, 30.0)
            self._resolver = resolver
        return self._resolver

    async def mx_hosts(self, domain: str) -> list[str]:
        """Hosts to try for ``domain``: MX by preference (ties shuffled), or the domain."""
        if domain.startswith("[") and domain.endswith("]"):
            return [domain[1:-1].removeprefix("IPv6:")]
        name = ascii_domain(domain)
        try:
            answer = await self.resolver().resolve(name, "MX")
        except dns.resolver.NXDOMAIN:
            raise RouteError(550, "5.1.2", f"domain {domain} does not exist") from None
        except dns.resolver.NoAnswer:
            return [name]  # implicit MX: the domain's own A/AAAA
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise RouteError(451, "4.4.3", f"MX lookup of {domain} failed: {exc}") from None
        records = sorted(answer, key=lambda r: (r.preference, random.random()))
        if any(r.exchange == dns.name.root for r in records):
            raise RouteError(556, "5.1.10", f"domain {domain} accepts no mail (null MX)")
        return [r.exchange.to_text(omit_final_dot=True) for r in records]

    async def addresses(self, name: str) -> list[str]:
        """A and AAAA records of ``name`` (an address literal is its own answer)."""
        try:
            ipaddress.ip_address(name)
            return [name]
        except ValueError:
            pass
        found: list[str] = []
        for kind in ("A", "AAAA"):
            try:
                answer = await self.resolver().resolve(name, kind)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
                log.info("lookup of %s %s failed: %s", name, kind, exc)
                continue
            found.extend(record.address for record in answer)
        return found

    async def _mx_targets(self, domain: str, port: int, tls: str, auth: bool) -> list[Target]:
        hosts = await self.mx_hosts(domain)
        targets = [Target(address, port, tls, auth, name)
                   for name in hosts for address in await self.addresses(name)]
        if not targets:
            raise RouteError(451, "4.4.3", f"no address found for the mail hosts of {domain} "
                                           f"({', '.join(hosts)})")
        return targets

    async def targets(self, domain: str) -> list[Target]:
        relay = self.settings.relay
        if relay is not None:
            auth = bool(self.settings.relay_user)
            if relay.mx:
                return await self._mx_targets(relay.host, relay.port,
                                              self.settings.relay_tls, auth)
            return [Target(relay.host, relay.port, self.settings.relay_tls, auth)]
        if not self.settings.mx_lookup:
            raise RouteError(451, "4.4.4", "no route: [mail] relayhost is empty and "
                                           "mx_lookup is off")
        return await self._mx_targets(domain, self.settings.mx_port, "may", False)

    # -- one attempt ---------------------------------------------------------------------------
    async def deliver(self, envelope: Envelope, raw: bytes,
                      recipients: list[Recipient]) -> list[AttemptResult]:
        groups: dict[str, list[Recipient]] = {}
        for r in recipients:
            key = "" if self.settings.relay is not None else domain_of(r.address)
            groups.setdefault(key, []).append(r)
        results = await asyncio.gather(*(self._group(envelope, raw, domain, members)
                                         for domain, members in groups.items()))
        return [result for group in results for result in group]

    async def _group(self, envelope: Envelope, raw: bytes, domain: str,
                     recipients: list[Recipient]) -> list[AttemptResult]:
        try:
            targets = await self.targets(domain)
        except RouteError as exc:
            return _all(recipients, exc.code, exc.enhanced, exc.text)
        errors = []
        for target in targets:
            try:
                return await self._session(target, envelope, raw, recipients)
            except _TryNext as exc:
                errors.append(f"{target.label}[{target.host}]:{target.port}: {exc}")
                log.info("%s: %s:%d: %s", envelope.id, target.label, target.port, exc)
        text = "; ".join(errors) or "no host to try"
        return _all(recipients, 451, "4.4.1", f"no host accepted a connection: {text}")

    def _tls_context(self, target: Target) -> ssl.SSLContext:
        if target.tls == "may":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        return ssl.create_default_context(cafile=self.settings.relay_ca_file or None)

    async def _session(self, target: Target, envelope: Envelope, raw: bytes,
                       recipients: list[Recipient]) -> list[AttemptResult]:
        context = self._tls_context(target) if target.tls != "none" else None
        smtp = aiosmtplib.SMTP(hostname=target.host, port=target.port,
                               local_hostname=self.settings.hostname,
                               timeout=self.settings.timeout, use_tls=target.tls == "tls",
                               start_tls=False, tls_context=context)
        mta = f"dns; {target.label}"
        try:
            try:
                await smtp.connect()
                await smtp.ehlo()
                if target.tls in ("starttls", "may"):
                    if smtp.supports_extension("starttls"):
                        await smtp.starttls(tls_context=context,
                                            server_hostname=target.name or None)
                        await smtp.ehlo()
                    elif target.tls == "starttls":
                        raise _TryNext("STARTTLS required ([mail] relay_tls) but not offered")
            except aiosmtplib.SMTPException as exc:
                raise _TryNext(str(exc) or type(exc).__name__) from None
            except (OSError, TimeoutError) as exc:
                raise _TryNext(f"connection failed: {exc}") from None
            if target.auth:
                try:
                    await smtp.login(self.settings.relay_user, self.settings.relay_password)
                except aiosmtplib.SMTPException as exc:
                    return _all(recipients, 451, "4.7.0",
                                f"authentication at {target.label} failed: {exc}", mta)
            return await self._transaction(smtp, mta, envelope, raw, recipients)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return _all(recipients, 451, "4.4.2", f"{target.label}: connection lost during "
                                                  f"the transaction: {exc}", mta)
        finally:
            if smtp.is_connected:
                try:
                    await asyncio.wait_for(smtp.quit(), 5)
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    smtp.close()

    async def _transaction(self, smtp: aiosmtplib.SMTP, mta: str, envelope: Envelope,
                           raw: bytes, recipients: list[Recipient]) -> list[AttemptResult]:
        sender = wire_address(envelope.sender)
        if not _safe(sender):
            return _all(recipients, 553, "5.1.7", "sender address unusable in SMTP", mta)
        unusable = [r for r in recipients if not _safe(r.address)]
        recipients = [r for r in recipients if _safe(r.address)]
        if unusable:
            refused = _all(unusable, 553, "5.1.3", "recipient address unusable in SMTP", mta)
            return refused + await self._transaction(smtp, mta, envelope, raw, recipients) \
                if recipients else refused
        addresses = {r.address: wire_address(r.address) for r in recipients}
        utf8 = envelope.smtputf8 or not all(a.isascii() for a in [sender, *addresses.values()])
        if utf8 and not smtp.supports_extension("smtputf8"):
            return _all(recipients, 550, "5.6.7", f"{smtp.hostname} does not support SMTPUTF8, "
                        "needed for a non-ASCII address", mta)
        dsn = smtp.supports_extension("dsn")
        options = []
        if smtp.supports_extension("size"):
            options.append(f"SIZE={len(raw)}")
        if smtp.supports_extension("8bitmime") and not raw.isascii():
            options.append("BODY=8BITMIME")
        if utf8:
            options.append("SMTPUTF8")
        if dsn and envelope.ret:
            options.append(f"RET={envelope.ret}")
        if dsn and envelope.envid:
            options.append(f"ENVID={xtext(envelope.envid)}")
        reply = await smtp.execute_command(b"MAIL", f"FROM:<{sender}>".encode(),
                                           *(o.encode() for o in options))
        if reply.code >= 300:
            return _all(recipients, reply.code, _enhanced(reply.message, reply.code),
                        f"MAIL FROM refused: {reply.message}", mta)
        results: dict[str, AttemptResult] = {}
        accepted = []
        for r in recipients:
            rcpt_options = []
            if dsn and r.notify:
                rcpt_options.append("NOTIFY=" + ",".join(r.notify))
            if dsn and r.orcpt:
                kind, _, value = r.orcpt.partition(";")
                rcpt_options.append(f"ORCPT={kind};{xtext(value)}")
            reply = await smtp.execute_command(b"RCPT", f"TO:<{addresses[r.address]}>".encode(),
                                               *(o.encode() for o in rcpt_options))
            if reply.code < 300:
                accepted.append(r)
            else:
                results[r.address] = AttemptResult(r.address, reply.code,
                                                   _enhanced(reply.message, reply.code),
                                                   reply.message, mta)
        if accepted:
            try:
                reply = await smtp.data(raw)
                code, message = reply.code, reply.message
            except aiosmtplib.SMTPResponseException as exc:
                code, message = exc.code, exc.message
            # A relay that speaks DSN reports on from here; else we say "relayed".
            action = "transferred" if dsn else "relayed"
            for r in accepted:
                results[r.address] = AttemptResult(r.address, code, _enhanced(message, code),
                                                   message, mta, action)
        else:
            await smtp.execute_command(b"RSET")
        return [results[r.address] for r in recipients]


def _safe(address: str) -> bool:
    """No byte that could end or extend an SMTP command (CR, LF, NUL, <, >, space)."""
    return not any(ord(ch) < 0x21 or ch in "<>\x7f" for ch in address)


class _TryNext(Exception):
    """This host did not get as far as MAIL FROM: the next one may."""


def _enhanced(message: str, code: int) -> str:
    """The enhanced status code at the start of a reply text, else one derived from ``code``."""
    first = message.split(" ", 1)[0]
    parts = first.split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts) and first[0] in "245":
        return first
    return f"{code // 100}.0.0"


def _all(recipients: Iterable[Recipient], code: int, enhanced: str, text: str,
         mta: str = "") -> list[AttemptResult]:
    return [AttemptResult(r.address, code, enhanced, text, mta) for r in recipients]
