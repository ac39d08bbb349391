"""New connections per client address per minute, counted in a sliding window."""

from __future__ import annotations

import time
from collections import deque

WINDOW = 60.0
MAX_ADDRESSES = 100_000
"""Addresses remembered at most; beyond, the oldest are forgotten (bounded memory)."""


class ConnectionRate:
    """Admits at most ``per_minute`` new connections from one address in any 60 s."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}

    def admit(self, address: str, now: float | None = None) -> bool:
        if self.per_minute <= 0:
            return True
        now = time.monotonic() if now is None else now
        times = self._seen.pop(address, None)
        if times is None:
            times = deque()
            if len(self._seen) >= MAX_ADDRESSES:
                self._prune(now)
        while times and now - times[0] >= WINDOW:
            times.popleft()
        self._seen[address] = times  # re-inserted: most recently seen last
        if len(times) >= self.per_minute:
            return False
        times.append(now)
        return True

    def _prune(self, now: float) -> None:
        for address in list(self._seen):
            times = self._seen[address]
            if not times or now - times[-1] >= WINDOW:
                del self._seen[address]
        while len(self._seen) >= MAX_ADDRESSES:
            del self._seen[next(iter(self._seen))]
