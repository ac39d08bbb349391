"""Kerberos over HTTP: the SPNEGO (``Authorization: Negotiate``) acceptor.

:class:`SpnegoAcceptor` checks the GSSAPI tokens of RFC 4559 with MIT
Kerberos through the python ``gssapi`` package. The HTTP layer
(:class:`gateway.auth.http.HttpAuth`) calls it directly, because a Negotiate
exchange may need a continuation token and returns a mutual-authentication
token, which :class:`~gateway.auth.registry.AuthResult` has no room for;
:class:`SpnegoMechanism` wraps it as an ``AuthMechanism`` (kind ``"gssapi"``)
for one-leg callers.

Acceptor credentials
    come from ``[spnego] keytab`` through the GSSAPI credential store
    (``{"keytab": path}``; no environment variable is changed), restricted to
    ``[spnego] principal`` when set, else any key in the keytab (whatever
    ``HTTP/<host name>`` the client asked for). They are acquired on first
    use and again after a SIGHUP; MIT reads the keytab file on every
    accepted token, so a re-exported keytab takes effect at once.

Every GSSAPI call
    runs in the default executor, never on the event loop (MIT may touch
    the replay cache on disk).

Multi-leg exchanges
    With Kerberos, the usual case, the exchange is one leg: the client's
    first token completes the context and the 200 answer carries the
    mutual-authentication token (``WWW-Authenticate: Negotiate <token>``).
    When SPNEGO needs more legs (the client listed another mechanism first,
    so SPNEGO asks for the Kerberos token and then the mechanism-list MIC),
    the acceptor answers 401 with ``WWW-Authenticate: Negotiate <token>`` and
    keeps the half-open context for :data:`PENDING_TTL` seconds under the
    *connection* (listener address and the client's address and port, as
    hypercorn reports them for every request of one keep-alive HTTP/1.1
    connection or HTTP/2 session). The next ``negTokenResp`` on that
    connection continues it; a new initial token always starts afresh. At
    most :data:`MAX_PENDING` contexts are kept (the oldest are dropped).
    Behind a trusted reverse proxy the client's port is not known and the
    proxy may mix clients on one upstream connection, so there only one-leg
    exchanges are accepted (a continuation is refused and logged).

NTLM is not supported
    Neither raw NTLMSSP in a Negotiate header nor NTLM negotiated inside
    SPNEGO (a three-leg exchange) is accepted: MIT has no NTLM mechanism
    unless gss-ntlmssp is installed, and even then a context whose
    mechanism is not Kerberos is refused. Each case is logged ("client
    offered NTLM ... only Kerberos is accepted"); it usually means the
    client found no Kerberos ticket for this service.

Principal to user
    ``alice@EXAMPLE.ORG`` is looked up as an altname in the directory
    (:meth:`Directory.realm_user`, exact case); failing that, ``[spnego]
    realm_domains = {"EXAMPLE.ORG" = "example.org"}`` turns it into the login
    name ``alice@example.org``, which the directory resolves to its user
    (primary address, alias or altname). Principals with an instance
    (``host/x@REALM``) map only through altnames. Without a directory
    (``host.directory is None``) the realm_domains name is the username. The
    account must be active and allowed the asking protocol, as for passwords.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from gateway.auth.registry import AuthResult, Credentials, Principal
from gateway.config import option

if TYPE_CHECKING:
    from gateway.host import Host

log = logging.getLogger("gateway.auth.spnego")

MAX_TOKEN = 64 * 1024
"""Largest Negotiate token accepted, in bytes after base64 decoding. Active
Directory tickets with many groups reach 48 000 bytes (MaxTokenSize)."""
PENDING_TTL = 30.0
"""Seconds a half-open multi-leg exchange waits for the client's next token."""
MAX_PENDING = 1024
"""Most half-open exchanges kept per acceptor."""

KERBEROS_MECHS = frozenset({
    "1.2.840.113554.1.2.2",  # Kerberos 5 (RFC 1964 / 4121)
    "1.2.840.48018.1.2.2",   # Kerberos 5 as Microsoft clients name it in SPNEGO
    "1.3.6.1.5.2.5",         # IAKERB (Kerberos through the acceptor)
})
NTLMSSP_SIGNATURE = b"NTLMSSP\x00"


def check_realm_domains(value: dict[str, Any]) -> None:
    """``{"REALM": "domain"}``: non-empty strings without ``@`` on both sides."""
    for realm, domain in value.items():
        if not isinstance(domain, str):
            raise ValueError(f"the domain of realm {realm!r} must be a string, got {domain!r}")
        for what, text in (("realm", realm), ("domain", domain)):
            if not text or "@" in text or any(c.isspace() for c in text):
                raise ValueError(f"{what} {text!r} must be a non-empty name without '@' "
                                 "or spaces")


def check_gssapi_available(enabled: bool) -> None:
    if enabled:
        try:
            import gssapi  # noqa: F401
        except ImportError:
            raise ValueError("needs the Python package gssapi "
                             "(pip install 'groupware-gateway[kerberos]')") from None


@dataclass
class SpnegoSection:
    enabled: bool = option(False, "Accept Kerberos tickets (Authorization: Negotiate) on "
                           "HTTP routes that allow it.", check=check_gssapi_available)
    keytab: str = option("", "Keytab with the service keys (HTTP/<host name>@REALM); empty: "
                         "the system default (KRB5_KTNAME, else /etc/krb5.keytab).")
    principal: str = option("", "Accept only tickets for this service principal, e.g. "
                            "\"HTTP/mail.example.org@EXAMPLE.ORG\"; empty: any key in the "
                            "keytab.")
    realm_domains: dict[str, str] = option(
        {}, "Kerberos realm to mail domain, e.g. {\"EXAMPLE.ORG\" = \"example.org\"}: "
        "alice@EXAMPLE.ORG logs in as alice@example.org. Principals listed as altnames "
        "map to their user first.", check=check_realm_domains)


# --------------------------------------------------------------------------
# Errors in words an administrator can act on
# --------------------------------------------------------------------------


def explain(message: str, keytab: str = "", principal: str = "") -> str:
    """What a GSSAPI error message means for whoever runs the gateway.

    MIT's minor codes are renumbered per process by the mechglue, so the
    message text is what can be matched.
    """
    text = message.lower()
    where = f"keytab {keytab}" if keytab else "the default keytab"
    if "clock skew" in text:
        return ("the client's clock differs from ours by more than 5 minutes (Kerberos "
                "clock skew; krb5.conf clockskew): synchronise both clocks with NTP")
    if ("kvno" in text and "out of date" in text) or "key version is not available" in text:
        return (f"wrong key version: the client's ticket uses a version of the service key "
                f"that {where} does not hold; the keytab is out of date (the key was changed "
                f"after it was exported): export the service key again")
    if ("not found in keytab" in text or "no key table entry" in text
            or ("isn't for us" in text and not principal)):
        return (f"unknown server principal: the client's ticket is for a service whose key is "
                f"not in {where}: add the key of HTTP/<the host name clients use>, or check "
                f"the name clients use")
    if "nonexistent or empty" in text or "key table file" in text:
        return f"cannot use {where}: check the path and that the gateway may read it"
    if "integrity check" in text or "cannot decrypt" in text or "bad encryption" in text:
        return (f"the key in {where} does not match the KDC's key for the service (same "
                f"version, different key): export the keytab again")
    if "wrong principal" in text or "isn't for us" in text:
        restriction = f" ([spnego] principal = {principal!r})" if principal else ""
        return f"the ticket is for a service principal this gateway does not accept{restriction}"
    if "ticket expired" in text:
        return "the client's ticket has expired; the client must renew it (kinit)"
    if "not yet valid" in text:
        return "the client's ticket is not yet valid (clock skew between client, KDC and us?)"
    if "replay" in text:
        return "the token replays one seen before (a replay attack, or a client resending it)"
    if "unsupported mechanism" in text or "no mechanism" in text:
        return ("the client offered no mechanism we accept, usually NTLM because it has no "
                "Kerberos ticket for this service; NTLM is not supported, only Kerberos")
    if "invalid token" in text or "defective token" in text or "malformed" in text:
        return "the client sent a malformed Negotiate token"
    return "GSSAPI refused the token"


# --------------------------------------------------------------------------
# The acceptor
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SpnegoOutcome:
    """What one Negotiate token led to."""

    status: Literal["ok", "continue", "failed"]
    principal: Principal | None = None
    token: bytes | None = None
    """To send back in ``WWW-Authenticate: Negotiate``: the mutual-authentication
    token (``ok``) or the continuation token (``continue``)."""
    reason: str = ""
    """For the log (``failed``), never for the client."""


class _Refused(Exception):
    """A GSSAPI error, with its message read in the thread that saw it."""


@dataclass
class _Pending:
    context: Any
    expires: float


@dataclass
class _Step:
    context: Any
    token: bytes | None
    complete: bool
    initiator: str = ""
    mech: str = ""


@dataclass
class _Creds:
    config: Any
    """The ``host.config`` these credentials were acquired for (SIGHUP replaces it)."""
    creds: Any = None
    error: str = ""
    last_logged: str = field(default="", repr=False)


class SpnegoAcceptor:
    """Checks Negotiate tokens for one host; keeps half-open exchanges per connection."""

    def __init__(self, host: Host):
        self.host = host
        self._creds: _Creds | None = None
        self._pending: OrderedDict[Hashable, _Pending] = OrderedDict()

    @property
    def section(self) -> SpnegoSection:
        section: SpnegoSection = self.host.config.spnego
        return section

    @property
    def enabled(self) -> bool:
        return bool(self.section.enabled)

    # -- credentials --------------------------------------------------------

    def _acquire(self, section: SpnegoSection) -> Any:
        """Acceptor credentials from the configured keytab (runs in the executor)."""
        import gssapi

        store: dict[bytes | str, bytes | str] | None = (
            {"keytab": section.keytab} if section.keytab else None)
        name = (gssapi.Name(section.principal, gssapi.NameType.kerberos_principal)
                if section.principal else None)
        try:
            return gssapi.Credentials(name=name, usage="accept", store=store)
        except gssapi.exceptions.GSSError as exc:
            raise _Refused(exc.gen_message()) from None

    async def _credentials(self) -> Any:
        config = self.host.config
        state = self._creds
        if state is None or state.config is not config:
            state = self._creds = _Creds(config)
        if state.creds is not None:
            return state.creds
        section = self.section
        loop = asyncio.get_running_loop()
        try:
            state.creds = await loop.run_in_executor(None, self._acquire, section)
            state.error = ""
            return state.creds
        except _Refused as exc:
            message = str(exc)
            where = f"keytab {section.keytab}" if section.keytab else "the default keytab"
            wanted = (f"key for [spnego] principal {section.principal!r}"
                      if section.principal else "key")
            state.error = (f"cannot load the service keys: {where} is missing, unreadable by "
                           f"the gateway or holds no {wanted}; Negotiate logins fail until "
                           f"that is fixed ({message})")
            if state.error != state.last_logged:
                log.error("SPNEGO: %s", state.error)
                state.last_logged = state.error
            return None

    # -- pending exchanges --------------------------------------------------

    def _take_pending(self, key: Hashable) -> Any:
        entry = self._pending.pop(key, None)
        if entry is None or entry.expires < time.monotonic():
            return None
        return entry.context

    def _keep_pending(self, key: Hashable, context: Any) -> None:
        now = time.monotonic()
        while self._pending:
            oldest_key, oldest = next(iter(self._pending.items()))
            if oldest.expires >= now and len(self._pending) < MAX_PENDING:
                break
            del self._pending[oldest_key]
        self._pending[key] = _Pending(context, now + PENDING_TTL)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    # -- one token ----------------------------------------------------------

    @staticmethod
    def _step(creds: Any, context: Any, token: bytes) -> _Step:
        """One ``gss_accept_sec_context`` (runs in the executor)."""
        import gssapi

        try:
            if context is None:
                context = gssapi.SecurityContext(creds=creds, usage="accept")
            out = context.step(token)
            if not context.complete:
                return _Step(context, out, False)
            return _Step(context, out, True, str(context.initiator_name),
                         context.mech.dotted_form)
        except gssapi.exceptions.GSSError as exc:
            # MIT keeps the detailed message (principal, kvno) per thread: read it here.
            raise _Refused(exc.gen_message()) from None

    async def accept(
        self, token: bytes, *, connection: Hashable | None, protocol: str, client: str,
    ) -> SpnegoOutcome:
        """Check one Negotiate token (already base64-decoded).

        ``connection`` names the client connection for multi-leg exchanges;
        ``None`` (behind a proxy) allows one-leg exchanges only.
        """
        if not token or len(token) > MAX_TOKEN:
            return self._failed(client, protocol, "empty or oversized Negotiate token")
        if token.startswith(NTLMSSP_SIGNATURE):
            return self._failed(client, protocol,
                                "client offered NTLM (raw NTLMSSP), which is not supported; "
                                "only Kerberos is accepted: the client has no Kerberos ticket "
                                "for this service (check its realm configuration and the "
                                "host name it uses)")
        context = None
        if token[0] == 0xA1:  # negTokenResp: the next leg of an exchange
            if connection is not None:
                context = self._take_pending(connection)
            if context is None:
                return self._failed(client, protocol,
                                    "continuation token without a pending exchange on this "
                                    "connection (connection closed, exchange older than "
                                    f"{PENDING_TTL:g} s, or behind a proxy)")
        elif connection is not None:
            self._pending.pop(connection, None)  # a fresh start replaces a stale exchange
        creds = await self._credentials()
        if creds is None:
            assert self._creds is not None
            return SpnegoOutcome("failed", reason=self._creds.error)
        loop = asyncio.get_running_loop()
        section = self.section
        try:
            step = await loop.run_in_executor(None, partial(self._step, creds, context, token))
        except _Refused as exc:
            message = str(exc)
            meaning = explain(message, section.keytab, section.principal)
            return self._failed(client, protocol, f"{meaning} ({message})")
        except Exception as exc:  # never a traceback for what a client sent
            log.debug("SPNEGO: GSSAPI raised", exc_info=True)
            return self._failed(client, protocol, f"GSSAPI could not read the token ({exc!r})")
        if not step.complete:
            if connection is None:
                return self._failed(client, protocol,
                                    "the exchange needs more than one leg, which is not "
                                    "possible behind a reverse proxy; configure the client "
                                    "to use Kerberos directly")
            self._keep_pending(connection, step.context)
            return SpnegoOutcome("continue", token=step.token)
        if step.mech not in KERBEROS_MECHS:
            return self._failed(client, protocol,
                                f"client negotiated mechanism {step.mech} (NTLM?) inside "
                                "SPNEGO; only Kerberos is accepted")
        return await self._map(step, protocol, client)

    def _failed(self, client: str, protocol: str, reason: str) -> SpnegoOutcome:
        log.warning("SPNEGO: refused a Negotiate token from %s (%s): %s", client, protocol, reason)
        return SpnegoOutcome("failed", reason=reason)

    async def _map(self, step: _Step, protocol: str, client: str) -> SpnegoOutcome:
        username, reason = await map_principal(self.host, step.initiator, protocol)
        if username is None:
            return self._failed(client, protocol, reason)
        principal = Principal(username, "spnego", {"krb5_principal": step.initiator})
        log.info("SPNEGO: %s authenticated as %s from %s (%s)",
                 step.initiator, username, client, protocol)
        return SpnegoOutcome("ok", principal=principal, token=step.token)


async def map_principal(host: Host, principal: str, protocol: str) -> tuple[str | None, str]:
    """``(username, "")`` for a Kerberos principal, or ``(None, reason)``."""
    section: SpnegoSection = host.config.spnego
    directory = host.directory
    user = None
    if directory is not None:
        user = await directory.realm_user(principal)
    if user is None:
        name, _, realm = principal.rpartition("@")
        domain = section.realm_domains.get(realm)
        if not name or "/" in name or domain is None:
            return None, (f"unknown client principal {principal!r}: no user has it as altname "
                          f"(gateway altname add {principal} ADDRESS) and its realm "
                          f"{realm!r} is not in [spnego] realm_domains")
        login = f"{name}@{domain}"
        if directory is None:
            return login, ""
        lookup = await directory.resolve_login(login)
        user = lookup.user
        if user is None:
            return None, (f"unknown client principal {principal!r}: no user {login!r} in the "
                          f"directory ({lookup.reason}; [spnego] realm_domains maps "
                          f"{realm!r} to {domain!r})")
    from gateway.directory.privileges import account_problem, protocol_allowed

    problem = account_problem(user)
    if problem:
        return None, f"{principal} maps to {user.username}, but the {problem}"
    if not protocol_allowed(user, protocol, await directory.denied_protocols(user)):
        return None, f"{principal} maps to {user.username}, who may not use {protocol}"
    return user.username, ""


class SpnegoMechanism:
    """The acceptor as an :class:`~gateway.auth.registry.AuthMechanism` (kind ``gssapi``).

    One leg only: ``credentials.secret`` is the raw (not base64) initial
    token; a token that needs a continuation fails. The mutual-authentication
    token, if any, is in ``principal.attributes["gssapi_token"]`` (base64).
    """

    name = "spnego"
    kinds = frozenset({"gssapi"})

    def __init__(self, host: Host, acceptor: SpnegoAcceptor | None = None):
        self.acceptor = acceptor or SpnegoAcceptor(host)

    async def authenticate(self, credentials: Credentials) -> AuthResult:
        if not self.acceptor.enabled:
            return AuthResult(reason="[spnego] is not enabled")
        outcome = await self.acceptor.accept(
            credentials.secret, connection=None, protocol=credentials.protocol,
            client=credentials.client)
        if outcome.status != "ok" or outcome.principal is None:
            return AuthResult(reason=outcome.reason or "Negotiate exchange incomplete")
        attributes = dict(outcome.principal.attributes)
        if outcome.token:
            attributes["gssapi_token"] = base64.b64encode(outcome.token).decode("ascii")
        return AuthResult(Principal(outcome.principal.username, self.name, attributes))
