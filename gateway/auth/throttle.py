"""Failed-login throttling: a delay after each failure, limits per account and per address.

Every failed password login is answered only after ``[auth] failure_delay``
seconds (grommunio waits 1 s; the auth registry waits, once every mechanism
has refused), and counted twice within a fixed window of
``[auth] failure_window`` seconds: once for the account (the canonical user
name when the login name resolved, else the name as typed, lower-cased) and
once for the client address (IPv6 addresses by their /64, since one client
usually holds a whole /64). Once an account has ``max_failures_per_account``
failures in the current window, or an address ``max_failures_per_address``,
further attempts are refused without checking the password until the window
ends (0 disables a limit). Successful logins do not reset the counters.

With ``[redis] url`` set the counters live in Redis (``SET NX EX`` then
``INCR`` on ``gateway:authfail:<kind>:<sha256 of the key>``), shared by all
workers and nodes; otherwise each process counts for itself. When Redis
cannot be reached the process falls back to its own counters and says so
in the log once.

Every failure is logged on the ``gateway.auth`` logger, at WARNING, as one
line fail2ban can match::

    auth failure: user=<name> client=<address> protocol=<protocol> reason=<reason>

``<name>`` is escaped (no spaces, ``=``, control or non-ASCII characters
survive, see :func:`gateway.auth.login.display_name`), ``<address>`` is the
client address after trusted proxies. A fail2ban filter::

    [Definition]
    failregex = auth failure: user=\\S+ client=<HOST> protocol=\\S+ reason=
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import logging
import time
from collections import OrderedDict
from typing import Any

from gateway.auth.login import display_name

log = logging.getLogger("gateway.auth")

MAX_TRACKED = 100_000
"""Most keys the in-process counters keep; the oldest windows are dropped first."""
REDIS_PREFIX = "gateway:authfail"
REDIS_RETRY = 30.0
"""Seconds to count in-process after a Redis error before trying Redis again."""


@functools.lru_cache(maxsize=4096)
def address_key(client: str) -> str:
    """The counter key of a client address: the address, an IPv6 one as its /64."""
    text = client.strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text.lower()[:128] or "-"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def account_key(name: str) -> str:
    return name.lower()[:1024]


def log_failure(user: str, client: str, protocol: str, reason: str) -> None:
    """The fail2ban line for one failed attempt."""
    log.warning("auth failure: user=%s client=%s protocol=%s reason=%s",
                display_name(user), display_name(client, 64) or "-",
                display_name(protocol, 32),
                reason[:300].encode("unicode_escape").decode("ascii"))


class _Counters:
    """Fixed-window counters in this process."""

    def __init__(self, max_entries: int = MAX_TRACKED):
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def get(self, key: str, window: float) -> int:
        item = self._data.get(key)
        if item is None:
            return 0
        started, count = item
        if time.monotonic() - started >= window:
            del self._data[key]
            return 0
        return count

    def incr(self, key: str, window: float) -> int:
        now = time.monotonic()
        item = self._data.get(key)
        if item is None or now - item[0] >= window:
            item = (now, 0)
            self._data.pop(key, None)
        count = item[1] + 1
        self._data[key] = (item[0], count)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)
        return count

    def clear(self) -> None:
        self._data.clear()


class Throttle:
    """Counts failures and says when an account or address is over its limit."""

    def __init__(self, *, window: float, per_account: int, per_address: int,
                 redis_url: str = "", delay: float = 1.0):
        self.window = window
        self.per_account = per_account
        self.per_address = per_address
        self.delay = delay
        self.redis_url = redis_url
        self._local = _Counters()
        self._redis: Any = None
        self._redis_down_until = 0.0

    def configure(self, *, window: float, per_account: int, per_address: int,
                  redis_url: str, delay: float) -> None:
        """Take new limits (SIGHUP); counts so far are kept."""
        self.window, self.per_account, self.per_address = window, per_account, per_address
        self.delay = delay
        if redis_url != self.redis_url:
            self.redis_url = redis_url
            redis, self._redis = self._redis, None
            if redis is not None:
                asyncio.get_running_loop().create_task(self._close_client(redis))

    @staticmethod
    async def _close_client(redis: Any) -> None:
        try:
            await redis.aclose()
        except Exception:  # pragma: no cover - closing a broken client
            log.debug("closing the Redis client failed", exc_info=True)

    def _client(self) -> Any:
        if not self.redis_url or time.monotonic() < self._redis_down_until:
            return None
        if self._redis is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(self.redis_url, socket_timeout=2.0,
                                            socket_connect_timeout=2.0)
        return self._redis

    def _redis_failed(self, exc: Exception) -> None:
        if self._redis_down_until <= time.monotonic():
            log.warning("auth throttle: Redis unavailable (%s); counting failed logins "
                        "in this process for %.0f s", exc, REDIS_RETRY)
        self._redis_down_until = time.monotonic() + REDIS_RETRY

    @staticmethod
    def _redis_key(kind: str, key: str) -> str:
        return f"{REDIS_PREFIX}:{kind}:{hashlib.sha256(key.encode()).hexdigest()}"

    async def _count(self, kind: str, key: str) -> int:
        redis = self._client()
        if redis is not None:
            try:
                value = await redis.get(self._redis_key(kind, key))
                return int(value or 0)
            except Exception as exc:
                self._redis_failed(exc)
        return self._local.get(f"{kind}:{key}", self.window)

    async def _incr(self, kind: str, key: str) -> int:
        redis = self._client()
        if redis is not None:
            name = self._redis_key(kind, key)
            try:
                async with redis.pipeline(transaction=True) as pipe:
                    # SET NX EX starts the window; INCR keeps its expiry.
                    pipe.set(name, 0, ex=max(1, round(self.window)), nx=True)
                    pipe.incr(name)
                    _, count = await pipe.execute()
                return int(count)
            except Exception as exc:
                self._redis_failed(exc)
        return self._local.incr(f"{kind}:{key}", self.window)

    async def address_blocked(self, client: str) -> bool:
        if self.per_address <= 0:
            return False
        return await self._count("addr", address_key(client)) >= self.per_address

    async def account_blocked(self, account: str) -> bool:
        if self.per_account <= 0 or not account:
            return False
        return await self._count("acct", account_key(account)) >= self.per_account

    async def failed(self, *, user: str, account: str, client: str, protocol: str,
                     reason: str, count: bool = True) -> None:
        """Log one failure of the login name ``user`` and count it for ``account`` (its
        canonical name, "" when none) and ``client`` unless ``count`` is false.

        The ``delay`` is not waited here: the mechanism hands it back in its
        result and the auth registry waits once all mechanisms have refused."""
        log_failure(user, client, protocol, reason)
        if count:
            if self.per_address > 0:
                await self._incr("addr", address_key(client))
            if self.per_account > 0 and account:
                await self._incr("acct", account_key(account))

    def reset_local(self) -> None:
        """Forget the in-process counts (tests, administrators via reload)."""
        self._local.clear()

    async def close(self) -> None:
        redis, self._redis = self._redis, None
        if redis is not None:
            await self._close_client(redis)
