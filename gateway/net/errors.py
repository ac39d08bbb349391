"""Exceptions of the TCP service framework.

Everything a protocol handler may see from a ``Connection`` derives from
``NetError``. ``ConnectionClosed`` and ``IdleTimeout`` end a session normally:
a handler may let them escape and the server closes the connection quietly.
"""

from __future__ import annotations


class NetError(Exception):
    """Base class of the errors raised by ``gateway.net``."""


class ConnectionClosed(NetError):
    """The peer closed or reset the connection (a partial line at EOF counts as closed)."""


class IdleTimeout(NetError):
    """No input arrived (or no output was taken) within the connection's ``idle_timeout``."""


class TlsHandshakeError(ConnectionClosed):
    """The TLS handshake failed or timed out; the connection is closed."""


class TlsUnavailable(NetError):
    """STARTTLS is not possible here: already TLS, not enabled, or no certificate."""


class LineTooLong(NetError):
    """A line exceeded ``max_line_bytes``; the rest of it is skipped by the next read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"line longer than {limit} bytes")
        self.limit = limit


class LiteralTooLarge(NetError):
    """A literal larger than ``max_literal_bytes`` was asked for; nothing was read."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"literal of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class ProxyProtocolError(NetError):
    """A PROXY protocol header was missing, malformed or not allowed."""
