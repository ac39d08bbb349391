"""TCP services for line protocols (IMAP, SMTP, LMTP ...).

A plugin describes its protocol as a ``TcpService`` and writes one coroutine,
``handler(connection)``; the host binds the listeners (``bind_socket``) and
runs a ``TcpServer`` per service, which takes care of PROXY protocol headers
from trusted load balancers, implicit TLS and STARTTLS, per-address limits,
idle timeouts and graceful shutdown. The handler reads with
``Connection.readline``/``readexactly`` and answers with ``write``.
"""

from gateway.net.bind import bind_socket, parse_address
from gateway.net.connection import Connection
from gateway.net.errors import (
    ConnectionClosed,
    IdleTimeout,
    LineTooLong,
    LiteralTooLarge,
    NetError,
    ProxyProtocolError,
    TlsHandshakeError,
    TlsUnavailable,
)
from gateway.net.proxy import (
    ProxyHeader,
    is_trusted,
    looks_like_proxy_header,
    read_proxy_header,
)
from gateway.net.server import TcpServer
from gateway.net.service import TcpService

__all__ = [
    "Connection",
    "ConnectionClosed",
    "IdleTimeout",
    "LineTooLong",
    "LiteralTooLarge",
    "NetError",
    "ProxyHeader",
    "ProxyProtocolError",
    "TcpServer",
    "TcpService",
    "TlsHandshakeError",
    "TlsUnavailable",
    "bind_socket",
    "is_trusted",
    "looks_like_proxy_header",
    "parse_address",
    "read_proxy_header",
]
