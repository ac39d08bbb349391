"""Registry of authentication mechanisms and the ``authenticate`` entry point."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

log = logging.getLogger("gateway.auth")


@dataclass(frozen=True)
class Credentials:
    """What a client presented, with where and how it came."""

    kind: str
    """``"password"`` (username + secret), ``"gssapi"`` (token), ..."""
    protocol: str
    """The asking protocol: ``"imap"``, ``"smtp"``, ``"ews"``, ``"eas"``, ``"dav"``, ..."""
    client: str
    """The client's address (after trusted PROXY / X-Forwarded-For)."""
    username: str = ""
    secret: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Principal:
    """An authenticated user."""

    username: str
    """The canonical login name (the directory's primary address)."""
    mechanism: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthResult:
    """A principal, or the reason there is none (for logs, never for clients)."""

    principal: Principal | None = None
    reason: str = ""
    delay: float = 0.0
    """Seconds the caller should wait before answering a failure (anti-guessing).
    The registry waits once, after every mechanism had its turn, so a mechanism
    that refuses never holds up the next one."""

    @property
    def ok(self) -> bool:
        return self.principal is not None


@runtime_checkable
class AuthMechanism(Protocol):
    """What ``gateway_auth_mechanisms`` returns."""

    name: str
    kinds: frozenset[str]

    async def authenticate(self, credentials: Credentials) -> AuthResult: ...


class AuthRegistry:
    """The mechanisms of one running gateway, tried in registration order."""

    def __init__(self) -> None:
        self._mechanisms: dict[str, AuthMechanism] = {}

    def add(self, mechanisms: Iterable[AuthMechanism], plugin: str) -> None:
        for mechanism in mechanisms:
            if not isinstance(mechanism, AuthMechanism):
                raise TypeError(f"plugin {plugin!r}: {mechanism!r} is not an AuthMechanism")
            if mechanism.name in self._mechanisms:
                raise ValueError(
                    f"plugin {plugin!r}: auth mechanism {mechanism.name!r} is already registered"
                )
            self._mechanisms[mechanism.name] = mechanism

    @property
    def names(self) -> list[str]:
        return list(self._mechanisms)

    def get(self, name: str) -> AuthMechanism | None:
        """The mechanism registered as ``name``, or None."""
        return self._mechanisms.get(name)

    async def authenticate(self, credentials: Credentials) -> AuthResult:
        """Ask each mechanism that handles ``credentials.kind`` until one answers.

        The first successful result wins; otherwise the last reason is kept.
        """
        result = AuthResult(reason=f"no mechanism for {credentials.kind!r} credentials")
        delay = 0.0
        for mechanism in self._mechanisms.values():
            if credentials.kind not in mechanism.kinds:
                continue
            result = await mechanism.authenticate(credentials)
            if result.ok:
                return result
            delay = max(delay, result.delay)
        log.info(
            "authentication failed for %r via %s from %s: %s",
            credentials.username, credentials.protocol, credentials.client, result.reason,
        )
        if delay > 0:
            await asyncio.sleep(delay)
        return result
