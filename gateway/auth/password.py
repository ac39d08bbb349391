"""The ``password`` mechanism: user name and password against the directory or LDAP.

One :class:`PasswordMechanism` per process, contributed by
:mod:`gateway.auth.mechanisms`. For each attempt, in this order:

1. the client address must not be over its failure limit
   (:mod:`gateway.auth.throttle`);
2. the password must be non-empty UTF-8 of at most
   :data:`~gateway.auth.sasl.MAX_PASSWORD` bytes without NUL;
3. the login name (plain, ``login!target`` or ``target!login``, see
   :mod:`gateway.auth.login`) must resolve to exactly one user through
   ``host.directory``; the account (canonical name, or the name as typed
   when unknown) must not be over its failure limit;
4. the account must be able to log in at all (address_status 0, display
   type 0: :func:`~gateway.directory.privileges.account_problem`) and hold
   the privilege of ``credentials.protocol``
   (:func:`~gateway.directory.privileges.protocol_allowed`, grommunio's bits
   with the DETAIL1 rule, plus the gateway's EWS/MAPI denials);
5. the password is checked: against ``users.password`` (crypt, in a worker
   thread, never on the event loop) or by LDAP (:mod:`gateway.auth.ldap`),
   as ``[auth] mode`` and ``users.externid`` say. A verified (user, password)
   pair is remembered for ``[auth] cache_ttl`` seconds under an HMAC with a
   random per-process key (the clear password is never kept), bound to the
   stored hash or the LDAP settings, so a changed hash is not matched;
6. a target mailbox, when given, must resolve to exactly one user.

Every refusal looks the same to the client: a result without principal,
after ``[auth] failure_delay`` seconds; the reason goes to the log only.
Unknown users and refused accounts still cost one crypt verification, so
that timing does not tell them from existing ones either.

A success is ``Principal(username=<users.username>, mechanism="password",
attributes={"target": <canonical target or "">, "protocol": <protocol>,
"backend": "sql" | "ldap"})``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Hashable, Iterator
from typing import TYPE_CHECKING, Any

from gateway.auth.ldap import LdapAuthenticator, LdapConfig
from gateway.auth.login import LoginName, candidates
from gateway.auth.registry import AuthResult, Credentials, Principal
from gateway.auth.sasl import MAX_PASSWORD
from gateway.auth.settings import AuthSection, LdapSection
from gateway.auth.throttle import Throttle
from gateway.cache import CACHE_ENTRIES, MISS, TtlCache

if TYPE_CHECKING:
    from gateway.directory import Directory, User

log = logging.getLogger("gateway.auth")



@functools.cache
def _dummy_hash() -> str:
    """A SHA-512-crypt hash of a random password, to spend the same time on refusals."""
    from gateway.directory.passwords import hash_password

    return hash_password(secrets.token_urlsafe(24))


def _frame(*parts: str) -> bytes:
    """Length-prefixed concatenation: no two part lists give the same bytes."""
    out = bytearray()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


class CredentialCache:
    """Verified (user, password, proof) triples as HMACs with a per-process random key.

    The clear password is never kept: only the HMAC, whose key dies with the process.
    """

    def __init__(self, ttl: float, max_entries: int = CACHE_ENTRIES):
        self._entries = TtlCache(ttl, max_entries)
        self._key = secrets.token_bytes(32)

    @property
    def ttl(self) -> float:
        return self._entries.ttl

    @ttl.setter
    def ttl(self, value: float) -> None:
        self._entries.ttl = value

    def _digest(self, username: str, password: str, proof: str) -> bytes:
        return hmac.new(self._key, _frame(username.lower(), proof, password),
                        hashlib.sha256).digest()

    def hit(self, username: str, password: str, proof: str) -> bool:
        if self.ttl <= 0:
            return False
        return self._entries.get(self._digest(username, password, proof)) is not MISS

    def put(self, username: str, password: str, proof: str) -> None:
        if self.ttl > 0:
            self._entries.put(self._digest(username, password, proof), True)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Hashable]:
        """The stored digests (what an inspection of the cache would find)."""
        return iter(self._entries)


def decode_password(secret: bytes) -> tuple[str | None, str]:
    """``(password, "")`` or ``(None, reason)`` for a secret no backend may see."""
    if not secret:
        return None, "empty password"
    if len(secret) > MAX_PASSWORD:
        return None, f"password longer than {MAX_PASSWORD} bytes"
    if b"\0" in secret:
        return None, "password contains a NUL byte"
    try:
        return secret.decode("utf-8"), ""
    except UnicodeDecodeError:
        return None, "password is not UTF-8"


class PasswordMechanism:
    """Password logins for every protocol, against the directory (crypt) or LDAP."""

    name = "password"
    kinds = frozenset({"password"})

    def __init__(self, host: Any):
        self.host = host
        self.cache = CredentialCache(60.0)
        self.ldap = LdapAuthenticator()
        self.throttle = Throttle(window=300.0, per_account=10, per_address=30)
        self.crypt_calls = 0
        """crypt verifications run (real and dummy), for tests and metrics."""
        self._config: Any = None
        self._ldap_section: LdapSection | None = None

    # -- configuration -------------------------------------------------------

    def _sections(self) -> tuple[AuthSection, LdapSection]:
        """``[auth]`` and ``[ldap]`` of the running configuration, applied when it changed."""
        config = self.host.config
        auth: AuthSection = config.auth
        ldap: LdapSection = config.ldap
        if config is not self._config:
            self._config = config
            self.cache.ttl = auth.cache_ttl
            self.throttle.configure(
                window=auth.failure_window, per_account=auth.max_failures_per_account,
                per_address=auth.max_failures_per_address,
                redis_url=config.redis.url if "redis" in config else "",
                delay=auth.failure_delay)
            if self._ldap_section is not None and ldap != self._ldap_section:
                self.ldap.close()
            self._ldap_section = ldap
        return auth, ldap

    def reload(self) -> None:
        """SIGHUP: forget verified credentials and LDAP connections."""
        self.cache.clear()
        self.ldap.close()

    async def close(self) -> None:
        self.cache.clear()
        self.ldap.close()
        await self.throttle.close()

    # -- the check -----------------------------------------------------------

    async def authenticate(self, credentials: Credentials) -> AuthResult:
        directory: Directory | None = self.host.directory
        if directory is None:
            return AuthResult(reason="the directory is not open")
        auth, ldap = self._sections()
        raw, client = credentials.username, credentials.client
        protocol = credentials.protocol.lower()

        if await self.throttle.address_blocked(client):
            return await self._refuse(credentials, "", "too many failed logins from this "
                                      "address", count=False)
        password, problem = decode_password(credentials.secret)
        reading, user, problem = await self._resolve(directory, raw, problem)
        # Unknown names are counted as typed, but only names that could exist
        # (anything else is counted for the address alone).
        account = (user.username if user is not None
                   else raw.lower() if reading is not None or candidates(raw) else "")
        if account and await self.throttle.account_blocked(account):
            return await self._refuse(credentials, account, "too many failed logins for "
                                      "this account", count=False)
        if user is None or password is None or problem:
            await self._dummy_verify(password or "x")
            return await self._refuse(credentials, account, problem or "no such user")
        problem = await self._account_problem(directory, user, protocol)
        if problem:
            await self._dummy_verify(password)
            return await self._refuse(credentials, account, problem)

        backend, outcome = await self._verify(directory, auth, ldap, user, password)
        if outcome:
            return await self._refuse(credentials, account, outcome,
                                      count=not outcome.startswith("LDAP server"))
        target = ""
        if reading is not None and reading.target:
            found = await directory.resolve_login(reading.target)
            if found.user is None:
                return await self._refuse(credentials, account,
                                          f"target mailbox: {found.reason}")
            if found.user.id != user.id:
                target = found.user.username
        log.debug("auth success: user=%s client=%s protocol=%s backend=%s target=%s",
                  user.username, client, protocol, backend, target or "-")
        return AuthResult(Principal(user.username, self.name, {
            "target": target, "protocol": protocol, "backend": backend}))

    async def _resolve(self, directory: Directory, raw: str, problem: str,
                       ) -> tuple[LoginName | None, User | None, str]:
        """The reading of ``raw`` whose login side may log in, else the first that
        names a user at all, else ``(None, None, reason)``."""
        from gateway.directory.privileges import account_problem

        readings = candidates(raw)
        if not readings:
            return None, None, problem or "not a valid login name"
        first: tuple[LoginName, User] | None = None
        reason = "no such user"
        for reading in readings:
            found = await directory.resolve_login(reading.login)
            if found.user is None:
                if found.reason != "no such user":
                    reason = found.reason
                continue
            if account_problem(found.user) is None:
                return reading, found.user, problem
            if first is None:
                first = (reading, found.user)
        if first is not None:
            return first[0], first[1], problem
        return None, None, problem or reason

    @staticmethod
    async def _account_problem(directory: Directory, user: User, protocol: str) -> str:
        from gateway.directory.privileges import account_problem, protocol_allowed

        problem = account_problem(user)
        if problem:
            return problem
        denied = await directory.denied_protocols(user)
        try:
            allowed = protocol_allowed(user, protocol, denied)
        except ValueError:
            return f"unknown protocol {protocol!r}"
        return "" if allowed else f"no privilege for {protocol}"

    async def _verify(self, directory: Directory, auth: AuthSection, ldap: LdapSection,
                      user: User, password: str) -> tuple[str, str]:
        """``(backend, "")`` when ``password`` is ``user``'s, else ``(backend, reason)``."""
        use_ldap = auth.mode == "ldap" or (auth.mode == "externid"
                                           and user.externid is not None)
        if use_ldap:
            config = LdapConfig.from_section(ldap).with_org_params(
                await directory.org_params(user.org_id))
            proof = "ldap\n" + "\n".join((
                config.server, config.base_dn, config.username_attribute, config.filter,
                str(config.starttls), (user.externid or b"").hex()))
            if self.cache.hit(user.username, password, proof):
                return "ldap", ""
            outcome = await self.ldap.verify(config, user.username, password)
            if not outcome.ok:
                return "ldap", outcome.reason
        else:
            if not user.password:
                await self._dummy_verify(password)
                return "sql", "no password set (users.password is empty)"
            proof = "sql\n" + user.password
            if self.cache.hit(user.username, password, proof):
                return "sql", ""
            if not await self._crypt(password, user.password):
                return "sql", "wrong password"
        self.cache.put(user.username, password, proof)
        return ("ldap" if use_ldap else "sql"), ""

    async def _crypt(self, password: str, stored: str) -> bool:
        from gateway.directory.passwords import verify_password

        self.crypt_calls += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, verify_password, password, stored)

    async def _dummy_verify(self, password: str) -> None:
        loop = asyncio.get_running_loop()
        stored = await loop.run_in_executor(None, _dummy_hash)
        await self._crypt(password[:MAX_PASSWORD] or "x", stored)

    async def _refuse(self, credentials: Credentials, account: str, reason: str,
                      count: bool = True) -> AuthResult:
        await self.throttle.failed(user=credentials.username, account=account,
                                   client=credentials.client, protocol=credentials.protocol,
                                   reason=reason, count=count)
        return AuthResult(reason=reason, delay=self.throttle.delay)
