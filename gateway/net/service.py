"""``TcpService``: what a plugin declares to serve a line protocol over TCP.

A plugin returns one per protocol from ``gateway_tcp_services``; the host
binds its listeners and runs a ``TcpServer`` for it in every worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.net.proxy import parse_networks

if TYPE_CHECKING:
    from gateway.net.connection import Connection

__all__ = ["TcpService"]


@dataclass
class TcpService:
    """One TCP line-protocol service and its limits.

    ``handler`` is called once per client with a ``Connection`` and owns the
    session; when it returns or raises, the connection is closed.
    """

    name: str
    """Listener name, e.g. ``"imap"``; used in logs and metrics."""
    handler: Callable[[Connection], Awaitable[None]]
    listen: list[str] = field(default_factory=list)
    """Plain listeners (``host:port``); STARTTLS is offered there when ``starttls``."""
    listen_tls: list[str] = field(default_factory=list)
    """Implicit TLS listeners."""
    starttls: bool = False
    proxy_protocol: bool = False
    """Expect a PROXY v1/v2 header from ``trusted_proxies`` (and only from them)."""
    trusted_proxies: list[str] = field(default_factory=list)
    """Addresses or CIDR networks of the load balancers allowed to send PROXY headers."""
    max_line_bytes: int = 8192
    """Longest line ``Connection.readline`` returns, terminator included."""
    max_literal_bytes: int = 64 * 1024 * 1024
    idle_timeout: float = 300.0
    """Seconds without input before the connection is closed (0 disables)."""
    handshake_timeout: float = 30.0
    """Seconds allowed for the PROXY header and for the TLS handshake (each)."""
    max_connections_per_address: int = 0
    """Open connections allowed from one client address; 0 is unlimited."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a TcpService needs a name")
        if self.max_line_bytes < 16:
            raise ValueError(f"service {self.name}: max_line_bytes must be at least 16")
        if self.max_literal_bytes < 0 or self.max_connections_per_address < 0:
            raise ValueError(f"service {self.name}: limits must not be negative")
        if self.handshake_timeout <= 0:
            raise ValueError(f"service {self.name}: handshake_timeout must be positive")
        try:
            parse_networks(tuple(self.trusted_proxies))
        except ValueError as exc:
            raise ValueError(f"service {self.name}: trusted_proxies: {exc}") from None
