"""``Connection``: one client of a ``TcpService``, as its protocol handler sees it.

Reads are bounded and timed: ``readline`` refuses lines over
``max_line_bytes`` (and skips the rest of such a line on the next read, so the
protocol can answer an error and carry on), ``readexactly`` refuses literals
over ``max_literal_bytes`` before reading a byte, and any read or write that
sees no progress for ``idle_timeout`` seconds raises ``IdleTimeout``. Socket
and TLS failures surface as ``ConnectionClosed``.

The object is deliberately small (``__slots__``): an IMAP server keeps
thousands of them idle.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.net.errors import (
    ConnectionClosed,
    IdleTimeout,
    LineTooLong,
    LiteralTooLarge,
    ProxyProtocolError,
    TlsHandshakeError,
    TlsUnavailable,
)
from gateway.net.proxy import V2_SIGNATURE, looks_like_proxy_header

if TYPE_CHECKING:
    from gateway.net.service import TcpService

__all__ = ["CLOSE_TIMEOUT", "TLS_READ_BUFFER", "Connection", "describe_error", "format_endpoint"]

log = logging.getLogger("gateway.net")

CLOSE_TIMEOUT = 2.0
"""Seconds ``close`` waits for buffered output and the TLS goodbye before aborting."""

TLS_READ_BUFFER = 16 * 1024
"""Receive buffer of a TLS connection (asyncio's default is 256 KiB per connection)."""

_T = TypeVar("_T")


def format_endpoint(endpoint: tuple[str, int] | None) -> str:
    """``192.0.2.1:143``, ``[2001:db8::1]:143`` or ``-``."""
    if endpoint is None:
        return "-"
    host, port = endpoint
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _buffered(reader: asyncio.StreamReader, n: int) -> bytes:
    """Up to ``n`` bytes received but not yet read, without consuming them.

    asyncio streams have no public peek; this reads the buffer StreamReader has
    kept in ``_buffer`` since Python 3.4 and returns nothing should that change.
    """
    buffer = getattr(reader, "_buffer", None)
    return bytes(buffer[:n]) if isinstance(buffer, bytearray) else b""


def _trim_tls_buffer(transport: asyncio.BaseTransport) -> None:
    """Shrink the receive buffer asyncio's TLS protocol allocates for each connection.

    ``asyncio.sslproto.SSLProtocol`` keeps a 256 KiB bytearray per connection,
    which would make an idle TLS client cost some 280 KiB instead of some 40.
    Its size is read from ``max_size`` whenever the transport asks for a buffer,
    so setting both on the instance is enough. Only attributes that exist are
    touched: with another TLS implementation (uvloop ...) this does nothing.
    """
    protocol: Any = getattr(transport, "_ssl_protocol", None)
    buffer = getattr(protocol, "_ssl_buffer", None)
    if (protocol is None or not isinstance(buffer, bytearray) or len(buffer) <= TLS_READ_BUFFER
            or not isinstance(getattr(protocol, "max_size", None), int)
            or not hasattr(protocol, "_ssl_buffer_view")):
        return
    smaller = bytearray(TLS_READ_BUFFER)
    protocol.max_size = TLS_READ_BUFFER
    protocol._ssl_buffer = smaller
    protocol._ssl_buffer_view = memoryview(smaller)


class Connection:
    """A client connection: bounded line and literal reads, writes, STARTTLS, close.

    ``peer`` is the real client (from the PROXY header when one was accepted),
    ``proxy`` the load balancer that sent it, ``local`` the address the client
    connected to. ``idle_timeout`` may be changed at any time, e.g. raised for
    IMAP IDLE; 0 disables it.
    """

    __slots__ = (
        "_check_proxy",
        "_reader",
        "_skip_line",
        "_ssl_context",
        "_writer",
        "idle_timeout",
        "local",
        "peer",
        "proxy",
        "service",
        "tls",
    )

    def __init__(
        self,
        service: TcpService,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        peer: tuple[str, int],
        local: tuple[str, int],
        proxy: tuple[str, int] | None = None,
        tls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        check_proxy_header: bool = True,
    ) -> None:
        self.service = service
        self.peer = peer
        self.local = local
        self.proxy = proxy
        self.tls = tls
        self.idle_timeout = service.idle_timeout
        self._reader = reader
        self._writer = writer
        self._ssl_context = ssl_context
        self._check_proxy = check_proxy_header
        self._skip_line = False
        if tls:
            _trim_tls_buffer(writer.transport)

    def __repr__(self) -> str:
        return f"<Connection {self.service.name} {format_endpoint(self.peer)}>"

    @property
    def can_starttls(self) -> bool:
        """Whether ``starttls`` would be attempted (to decide what to advertise)."""
        return not self.tls and self.service.starttls and self._ssl_context is not None

    @property
    def closed(self) -> bool:
        """True once the connection is closing or closed (by either side)."""
        return self._writer.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Transport details: ``"cipher"``, ``"peercert"``, ``"ssl_object"``, ``"socket"`` ..."""
        return self._writer.get_extra_info(name, default)

    # -- reading ----------------------------------------------------------------------------

    async def readline(self) -> bytes:
        """The next line, terminator included.

        Raises ``LineTooLong`` (the rest of that line is skipped by the next
        read), ``ConnectionClosed`` at EOF, even after a partial line, and
        ``IdleTimeout``.
        """
        check, self._check_proxy = self._check_proxy, False
        line = await self._guard(self._readline())
        if check:
            self._refuse_proxy_header(line)
        return line

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes (a literal).

        Raises ``LiteralTooLarge`` before reading anything when ``n`` exceeds
        ``max_literal_bytes``. The idle timeout applies to each chunk, so a
        large literal may take longer as long as data keeps coming.
        """
        if n < 0:
            raise ValueError("a literal cannot have a negative size")
        if n > self.service.max_literal_bytes:
            raise LiteralTooLarge(n, self.service.max_literal_bytes)
        self._check_proxy = False
        if self._skip_line:
            await self._guard(self._discard_line())
        chunks: list[bytes] = []
        remaining = n
        while remaining:
            chunk = await self._guard(self._reader.read(remaining))
            if not chunk:
                raise ConnectionClosed("connection closed inside a literal")
            chunks.append(chunk)
            remaining -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _readline(self) -> bytes:
        if self._skip_line:
            await self._discard_line()
        try:
            return await self._reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            self._skip_line = True
            raise LineTooLong(self.service.max_line_bytes) from None

    async def _discard_line(self) -> None:
        # ``readuntil`` keeps what it could not return; drop it up to and including
        # the next newline, however many limits-worth that takes.
        while True:
            try:
                await self._reader.readuntil(b"\n")
            except asyncio.LimitOverrunError as exc:
                await self._reader.readexactly(exc.consumed)
            else:
                self._skip_line = False
                return

    def _refuse_proxy_header(self, line: bytes) -> None:
        first = line
        if line == b"\r\n":  # maybe the start of the binary v2 signature
            first += _buffered(self._reader, len(V2_SIGNATURE) - 2)
        if looks_like_proxy_header(first):
            log.warning("%s: PROXY header from untrusted address %s, closing",
                        self.service.name, format_endpoint(self.peer))
            self.abort()
            raise ProxyProtocolError("PROXY header from an untrusted address")

    # -- writing ----------------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        """Send ``data`` and wait until the transport has taken it.

        A client that reads nothing for ``idle_timeout`` seconds makes this raise
        ``IdleTimeout``.
        """
        if self._writer.is_closing():
            raise ConnectionClosed("connection is closed")
        self._writer.write(data)
        await self._guard(self._writer.drain())

    # -- TLS --------------------------------------------------------------------------------

    async def starttls(self, ssl_context: ssl.SSLContext | None = None) -> None:
        """Upgrade this plain connection to TLS in place (server side).

        Call it after answering the protocol's STARTTLS command. Raises
        ``TlsUnavailable`` (nothing changed) when already TLS, when the service
        has ``starttls`` off or when there is no certificate; on a failed
        handshake, or when the client sent data before it, the connection is
        closed and ``TlsHandshakeError`` raised.
        """
        context = ssl_context or self._ssl_context
        if self.tls:
            raise TlsUnavailable("the connection is already TLS")
        if not self.service.starttls:
            raise TlsUnavailable(f"STARTTLS is not enabled for service {self.service.name}")
        if context is None:
            raise TlsUnavailable("no TLS certificate is configured")
        await self.write(b"")  # flush the protocol's "go ahead" first
        if _buffered(self._reader, 1):
            # Plaintext pipelined behind STARTTLS would be taken as sent over TLS
            # (CVE-2011-0411 and kin): refuse rather than discard silently.
            self.abort()
            raise TlsHandshakeError("client sent data before the TLS handshake")
        try:
            await self._writer.start_tls(
                context, ssl_handshake_timeout=self.service.handshake_timeout)
        except (OSError, EOFError, ValueError, RuntimeError) as exc:
            self.abort()
            raise TlsHandshakeError(f"TLS handshake failed: {describe_error(exc)}") from None
        except BaseException:
            self.abort()
            raise
        self.tls = True
        _trim_tls_buffer(self._writer.transport)

    # -- closing ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Close gracefully: flush output and say TLS goodbye, abort after ``CLOSE_TIMEOUT``."""
        writer = self._writer
        if not writer.is_closing():
            writer.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await writer.wait_closed()
        except TimeoutError:
            self.abort()
        except (OSError, EOFError):
            pass
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop the connection at once, discarding unsent output."""
        self._writer.transport.abort()

    # -- helpers ----------------------------------------------------------------------------

    async def _guard(self, operation: Coroutine[Any, Any, _T]) -> _T:
        """Run one read or write under the idle timeout, translating failures."""
        seconds = self.idle_timeout
        timeout = asyncio.timeout(seconds if seconds and seconds > 0 else None)
        try:
            async with timeout:
                return await operation
        except TimeoutError:
            if timeout.expired():
                raise IdleTimeout(f"no activity for {seconds:g} seconds") from None
            raise ConnectionClosed("connection timed out") from None
        except asyncio.IncompleteReadError:
            raise ConnectionClosed("connection closed by the client") from None
        except (OSError, EOFError) as exc:  # resets, broken pipes, TLS alerts
            raise ConnectionClosed(describe_error(exc)) from None


def describe_error(exc: BaseException) -> str:
    """A one-line account of a socket or TLS failure, for logs."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"TLS error {exc.reason}"
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out"
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if text:
        return text
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the client"
    return type(exc).__name__
