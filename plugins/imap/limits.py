"""Connections per client address (at connect) and sessions per user (after login).

The plugin counts both itself, rather than leaving the address limit to
``gateway.net`` (which closes silently), so that a refused client reads a
``* BYE`` saying why.
"""

from __future__ import annotations


class ConnectionLimits:
    """Open sessions by canonical user name, for one worker process."""

    def __init__(self) -> None:
        self.by_user: dict[str, int] = {}
        self.by_address: dict[str, int] = {}

    @staticmethod
    def _acquire(counts: dict[str, int], key: str, limit: int) -> bool:
        current = counts.get(key, 0)
        if limit and current >= limit:
            return False
        counts[key] = current + 1
        return True

    @staticmethod
    def _release(counts: dict[str, int], key: str) -> None:
        left = counts.get(key, 0) - 1
        if left > 0:
            counts[key] = left
        else:
            counts.pop(key, None)

    def acquire(self, user: str, limit: int) -> bool:
        """Count one more session of ``user``; False (nothing counted) when over ``limit``."""
        return self._acquire(self.by_user, user.lower(), limit)

    def release(self, user: str) -> None:
        self._release(self.by_user, user.lower())

    def acquire_address(self, address: str, limit: int) -> bool:
        """Count one more connection from ``address``; False when over ``limit``."""
        return self._acquire(self.by_address, address, limit)

    def release_address(self, address: str) -> None:
        self._release(self.by_address, address)
