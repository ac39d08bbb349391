"""Password checks against LDAP, the way grommunio's ldap_adaptor makes them.

For a user the directory sends to LDAP (see ``[auth] mode``):

1. search the subtree under ``base_dn`` for
   ``(&(<username_attribute>=<canonical user name>)<filter>)`` (just the
   first part when ``filter`` is empty), the name escaped per RFC 4515, on a
   pooled *service* connection bound as ``bind_user`` (anonymous when empty);
2. require exactly one entry (none: unknown to LDAP; two or more: ambiguous,
   refused);
3. bind as that entry's DN with the given password on a fresh connection,
   closed right after. An empty password is refused before anything is
   sent, since a simple bind with an empty password is an *unauthenticated*
   bind that servers accept (RFC 4513 section 5.1.2).

Settings come from ``[ldap]``; an organisation's ``orgparam`` rows override
them key by key (``ldap_uri`` → server, ``ldap_binddn`` → bind_user,
``ldap_bindpw`` → bind_password, ``ldap_basedn`` → base_dn,
``ldap_mail_attr`` → username_attribute, ``ldap_start_tls`` → starttls).
``ca_file`` (the CA that signed the server's certificate, for StartTLS and
ldaps://) stays global: grommunio has no orgparam key for it. The server's
certificate is always verified (policy ``demand``), against ``ca_file`` when
set, else the system's trust store; a failed check fails the login closed.

The client is `bonsai <https://pypi.org/project/bonsai/>`_ (libldap bound to
asyncio; builds against the Debian packages ``libldap2-dev`` and
``libsasl2-dev``), so nothing here blocks the event loop. Service
connections are kept per (server, bind DN, StartTLS, CA file) in a small pool of
``pool_size`` connections; one that fails is dropped and the search retried
once on a new one, so a restarted LDAP server costs no failed login.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.auth.settings import LdapSection, check_attribute

log = logging.getLogger("gateway.auth.ldap")

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
ORG_KEYS = {
    "ldap_uri": "server",
    "ldap_binddn": "bind_user",
    "ldap_bindpw": "bind_password",
    "ldap_basedn": "base_dn",
    "ldap_mail_attr": "username_attribute",
}


def escape_filter_value(value: str) -> str:
    """``value`` as an RFC 4515 assertion value: ``*``, ``(``, ``)``, ``\\``, NUL,
    other control characters and every non-ASCII byte (of its UTF-8) as ``\\XX``."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        if byte < 0x20 or byte > 0x7E or char in "*()\\":
            out.append(f"\\{byte:02x}")
        else:
            out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class LdapConfig:
    """The effective LDAP settings for one user (global, or with organisation overrides)."""

    server: str
    bind_user: str
    bind_password: str = field(repr=False)
    base_dn: str
    filter: str
    username_attribute: str
    starttls: bool
    timeout: float = 10.0
    pool_size: int = 4
    ca_file: str = ""

    @classmethod
    def from_section(cls, section: LdapSection) -> LdapConfig:
        return cls(section.server, section.bind_user, section.bind_password, section.base_dn,
                   section.filter, section.username_attribute, section.starttls,
                   section.timeout, section.pool_size, section.ca_file)

    def with_org_params(self, params: Mapping[str, str]) -> LdapConfig:
        """These settings with an organisation's non-empty ``orgparam`` values applied."""
        changes: dict[str, Any] = {}
        for key, attr in ORG_KEYS.items():
            value = (params.get(key) or "").strip()
            if value:
                changes[attr] = value
        tls = (params.get("ldap_start_tls") or "").strip().lower()
        if tls:
            changes["starttls"] = tls in TRUE_WORDS
        return replace(self, **changes) if changes else self

    @property
    def configured(self) -> bool:
        return bool(self.server)

    def search_filter(self, username: str) -> str:
        """The user search filter for ``username``, escaped."""
        check_attribute(self.username_attribute)  # an orgparam value is not checked at load
        match = f"({self.username_attribute}={escape_filter_value(username)})"
        return f"(&{match}{self.filter})" if self.filter else match

    @property
    def pool_key(self) -> tuple[str, str, str, bool, str]:
        return (self.server, self.bind_user, self.bind_password, self.starttls, self.ca_file)

    @property
    def uses_tls(self) -> bool:
        """StartTLS on an ldap:// URI, or an ldaps:// URI."""
        return self.starttls or self.server.lower().startswith("ldaps:")


@dataclass(frozen=True)
class LdapOutcome:
    """What the LDAP check found; ``reason`` is for the log only."""

    ok: bool
    reason: str = ""
    dn: str = ""
    server_error: bool = False
    """True when LDAP could not answer (unreachable, timeout, misconfigured)."""


def _client(config: LdapConfig, dn: str = "", password: str = "") -> Any:
    import bonsai

    starttls = config.starttls and not config.server.lower().startswith("ldaps:")
    client = bonsai.LDAPClient(config.server, tls=starttls)
    client.set_server_chase_referrals(False)
    if config.uses_tls:
        client.set_cert_policy("demand")  # whatever ldap.conf's TLS_REQCERT says
        if config.ca_file:
            client.set_ca_cert(config.ca_file)
    if dn:
        client.set_credentials("SIMPLE", user=dn, password=password)
    return client


class _ServicePool:
    """Up to ``size`` open service connections for searches, reused."""

    def __init__(self, config: LdapConfig):
        self.config = config
        self._idle: list[Any] = []
        self._slots = asyncio.Semaphore(max(1, config.pool_size))
        self._closed = False
        self.opened = 0
        """Connections opened so far (for tests and metrics)."""

    async def _open(self) -> Any:
        self.opened += 1
        client = _client(self.config, self.config.bind_user, self.config.bind_password)
        return await asyncio.wait_for(
            client.connect(is_async=True, timeout=self.config.timeout),
            self.config.timeout + 1)

    @contextlib.asynccontextmanager
    async def connection(self, fresh: bool = False) -> AsyncIterator[Any]:
        async with self._slots:
            conn = None
            if not fresh:
                while self._idle and conn is None:
                    candidate = self._idle.pop()
                    if not candidate.closed:
                        conn = candidate
            if conn is None:
                conn = await self._open()
            healthy = False
            try:
                yield conn
                healthy = True
            finally:
                if healthy and not self._closed and not conn.closed:
                    self._idle.append(conn)
                else:
                    _close(conn)

    def close(self) -> None:
        self._closed = True
        while self._idle:
            _close(self._idle.pop())

    @property
    def idle(self) -> int:
        return len(self._idle)


LDAP_CONNECT_ERROR = -11
"""libldap's code when the TLS handshake fails (GnuTLS gives no further detail)."""


def _failure(config: LdapConfig, exc: BaseException) -> str:
    """``exc`` in words for the log; a failed TLS handshake is named as such."""
    text = f"{type(exc).__name__} {exc}"
    if config.uses_tls and getattr(exc, "code", None) == LDAP_CONNECT_ERROR:
        trust = (f"[ldap] ca_file {config.ca_file!r}" if config.ca_file
                 else "the system's trust store ([ldap] ca_file is empty)")
        # First: the fail2ban line keeps 300 characters of the reason.
        text = (f"TLS handshake failed, most likely certificate verification against {trust} "
                f"(unknown CA, or not issued for the host in the URI): {text}")
    return text


def _ca_file_ok(config: LdapConfig) -> bool:
    """False when TLS is used and ``ca_file`` names no readable file (libldap would only
    say "Connect error"). One stat, too small to move off the event loop."""
    if not (config.uses_tls and config.ca_file):
        return True
    return os.path.isfile(config.ca_file) and os.access(config.ca_file, os.R_OK)


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):
        conn.close()


class LdapAuthenticator:
    """Search-then-bind password checks with pooled service connections."""

    def __init__(self) -> None:
        self._pools: dict[tuple[str, str, str, bool, str], _ServicePool] = {}
        self.binds = 0
        """User binds made (for tests and metrics)."""

    def _pool(self, config: LdapConfig) -> _ServicePool:
        pool = self._pools.get(config.pool_key)
        if pool is None:
            pool = self._pools[config.pool_key] = _ServicePool(config)
        return pool

    async def find_dn(self, config: LdapConfig, username: str) -> LdapOutcome:
        """The DN of the one entry for ``username``, or why there is none."""
        import bonsai

        pool = self._pool(config)
        query = config.search_filter(username)
        for attempt in (0, 1):
            try:
                async with pool.connection(fresh=attempt > 0) as conn:
                    entries = await asyncio.wait_for(
                        conn.search(config.base_dn, bonsai.LDAPSearchScope.SUBTREE, query,
                                    attrlist=["1.1"], timeout=config.timeout, sizelimit=2),
                        config.timeout + 1)
                break
            except bonsai.SizeLimitError:
                return LdapOutcome(False, f"LDAP: several entries match {query}")
            except bonsai.NoSuchObjectError:
                return LdapOutcome(False, f"LDAP: base DN {config.base_dn!r} does not exist",
                                   server_error=True)
            except bonsai.AuthenticationError as exc:
                return LdapOutcome(False, f"LDAP: the service bind as {config.bind_user!r} "
                                   f"was refused ({exc})", server_error=True)
            except (bonsai.LDAPError, OSError, TimeoutError) as exc:
                if attempt == 0:
                    log.debug("LDAP search on %s failed, retrying on a new connection: %r",
                              config.server, exc)
                    continue
                return LdapOutcome(False, f"LDAP server {config.server} unavailable: "
                                   f"{_failure(config, exc)}", server_error=True)
        if not entries:
            return LdapOutcome(False, "LDAP: no entry")
        if len(entries) > 1:
            return LdapOutcome(False, f"LDAP: several entries match {query}")
        return LdapOutcome(True, dn=str(entries[0].dn))

    async def bind(self, config: LdapConfig, dn: str, password: str) -> LdapOutcome:
        """Whether a simple bind as ``dn`` with ``password`` succeeds."""
        import bonsai

        if not password:
            return LdapOutcome(False, "empty password")
        self.binds += 1
        client = _client(config, dn, password)
        try:
            conn = await asyncio.wait_for(
                client.connect(is_async=True, timeout=config.timeout), config.timeout + 1)
        except bonsai.AuthenticationError:
            return LdapOutcome(False, "LDAP: wrong password", dn=dn)
        except (bonsai.LDAPError, OSError, TimeoutError) as exc:
            return LdapOutcome(False, f"LDAP server {config.server} unavailable for the "
                               f"bind: {_failure(config, exc)}", dn=dn, server_error=True)
        _close(conn)
        return LdapOutcome(True, dn=dn)

    async def verify(self, config: LdapConfig, username: str, password: str) -> LdapOutcome:
        """Search ``username``'s entry, then bind as it with ``password``."""
        if not config.configured:
            return LdapOutcome(False, "LDAP is not configured (no [ldap] server, no "
                               "ldap_uri for the organisation)", server_error=True)
        if not password:
            return LdapOutcome(False, "empty password")
        if "\0" in password:
            return LdapOutcome(False, "password contains a NUL byte")
        if not _ca_file_ok(config):
            return LdapOutcome(False, f"LDAP: [ldap] ca_file {config.ca_file!r} is not a "
                               "readable file", server_error=True)
        found = await self.find_dn(config, username)
        if not found.ok:
            return found
        return await self.bind(config, found.dn, password)

    def close(self) -> None:
        """Close every pooled connection (shutdown; reload when settings change)."""
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.close()
