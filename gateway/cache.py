"""A small in-process LRU map whose entries expire, for lookups worth keeping briefly.

Used by the directory (users, login names) and the password mechanism
(verified credentials). Not shared between processes; ``clear`` on SIGHUP.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Any

CACHE_ENTRIES = 10000
"""Most entries kept; the least recently used go first."""

MISS: Any = object()
"""What :meth:`TtlCache.get` returns for a missing or expired key."""


class TtlCache:
    """A small LRU map whose entries expire; not shared between processes."""

    def __init__(self, ttl: float, max_entries: int = CACHE_ENTRIES):
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        item = self._data.get(key)
        if item is None:
            return MISS
        expires, value = item
        if expires < time.monotonic():
            del self._data[key]
            return MISS
        self._data.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any, ttl: float | None = None) -> None:
        lifetime = self.ttl if ttl is None else min(ttl, self.ttl)
        if lifetime <= 0:
            return
        self._data[key] = (time.monotonic() + lifetime, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(list(self._data))
