"""``TcpServer``: accepts clients of one ``TcpService`` and runs its handler for each.

The host binds the listening sockets (possibly in a parent process, shared by
several workers) and hands them to ``start``. For every accepted client, in
this order:

1. from a trusted proxy (``proxy_protocol`` on), the PROXY header is read
   straight from the socket, never past its end, within ``handshake_timeout``;
2. the per-address limit is applied to the real client address;
3. on an implicit TLS listener the TLS handshake runs, within ``handshake_timeout``;
4. ``service.handler(connection)`` owns the session; the connection is
   closed when it returns or raises.

Each client is one task; a failure in one never reaches another. Expected
ends (closed, idle, handshake garbage) are logged in one line without a
traceback, handler bugs once at ERROR with one.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from typing import Any

from gateway.net.connection import CLOSE_TIMEOUT, Connection, describe_error, format_endpoint
from gateway.net.errors import NetError, ProxyProtocolError
from gateway.net.proxy import (
    V2_SIGNATURE,
    ProxyHeader,
    is_trusted,
    looks_like_proxy_header,
    read_proxy_header_from_socket,
)
from gateway.net.service import TcpService

__all__ = ["TcpServer"]

log = logging.getLogger("gateway.net")

ACCEPT_BATCH = 64
"""Connections taken from the backlog per wake-up of an accept loop."""

_LISTENER_GONE = frozenset({errno.EBADF, errno.ENOTSOCK, errno.EINVAL})
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def _endpoint(address: Any) -> tuple[str, int]:
    """``(host, port)`` from a socket address; IPv4-mapped IPv6 becomes plain IPv4."""
    if not isinstance(address, tuple) or len(address) < 2:
        return str(address), 0
    host = str(address[0])
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return host, int(address[1])


def _untrusted_proxy_header(sock: socket.socket) -> bool:
    """Whether a PROXY header is already waiting on ``sock`` (peeked, not consumed).

    Catches a load balancer sending PROXY headers to a service that does not
    trust it before anything is said to it, TLS ports included. Data that
    arrives later is checked by the first ``readline``.
    """
    try:
        first = sock.recv(len(V2_SIGNATURE), socket.MSG_PEEK)
    except OSError:  # nothing yet (BlockingIOError), or a reset the next step will see
        return False
    return looks_like_proxy_header(first)


class TcpServer:
    """Serves one ``TcpService`` on sockets the host has bound.

    ``open_connections`` counts accepted connections not yet closed (for the
    metrics gauge); ``connections_by_address`` maps each client address to its
    open connections, which ``max_connections_per_address`` limits.
    """

    def __init__(self, service: TcpService, ssl_context: ssl.SSLContext | None) -> None:
        self.service = service
        self.ssl_context = ssl_context
        self.connections_by_address: dict[str, int] = {}
        self._trusted = tuple(service.trusted_proxies)
        self._tasks: dict[asyncio.Task[None], Connection | None] = {}
        self._acceptors: list[asyncio.Task[None]] = []
        self._closing = False

    @property
    def open_connections(self) -> int:
        return len(self._tasks)

    @property
    def closing(self) -> bool:
        """True once ``close`` was called."""
        return self._closing

    async def start(self, plain_sockets: list[socket.socket],
                    tls_sockets: list[socket.socket]) -> None:
        """Start accepting on bound, listening sockets (they stay the caller's to close)."""
        if self._closing:
            raise RuntimeError(f"service {self.service.name}: the server was closed")
        if tls_sockets and self.ssl_context is None:
            raise ValueError(f"service {self.service.name}: TLS listeners need an ssl_context")
        loop = asyncio.get_running_loop()
        listeners = [(s, False) for s in plain_sockets] + [(s, True) for s in tls_sockets]
        for sock, tls in listeners:
            sock.setblocking(False)
            where = format_endpoint(_endpoint(sock.getsockname()))
            log.debug("%s: accepting on %s%s", self.service.name, where, " (TLS)" if tls else "")
            self._acceptors.append(loop.create_task(
                self._accept(sock, tls), name=f"{self.service.name} accept {where}"))

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting now, let handlers finish for ``grace`` seconds, then cancel them.

        Cancelled handlers see ``asyncio.CancelledError`` (they may catch it to
        say goodbye, then must re-raise); their connections are aborted. Returns
        when every connection task has ended.
        """
        self._closing = True
        for acceptor in self._acceptors:
            acceptor.cancel()
        await asyncio.gather(*self._acceptors, return_exceptions=True)
        self._acceptors.clear()
        pending = set(self._tasks)
        if pending and grace > 0:
            _, pending = await asyncio.wait(pending, timeout=grace)
        if not pending:
            return
        log.info("%s: cancelling %d connection(s) still open after %g s",
                 self.service.name, len(pending), grace)
        for task in pending:
            task.cancel()
        _, stuck = await asyncio.wait(pending, timeout=CLOSE_TIMEOUT)
        for task in stuck:  # a handler swallowed the cancellation
            conn = self._tasks.get(task)
            if conn is not None:
                conn.abort()
            log.warning("%s: a handler ignored cancellation (%r)", self.service.name, conn)

    # -- accepting --------------------------------------------------------------------------

    async def _accept(self, listener: socket.socket, tls: bool) -> None:
        loop = asyncio.get_running_loop()
        name = self.service.name
        while True:
            try:
                sock, address = await loop.sock_accept(listener)
                self._spawn(sock, address, tls)
                for _ in range(ACCEPT_BATCH - 1):  # drain the backlog without the selector
                    sock, address = listener.accept()
                    sock.setblocking(False)
                    self._spawn(sock, address, tls)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue
            except OSError as exc:
                if exc.errno in _LISTENER_GONE:
                    log.error("%s: stopped accepting: %s", name, describe_error(exc))
                    return
                if exc.errno in _OUT_OF_RESOURCES:
                    log.error("%s: cannot accept: %s; retrying in 1 s", name, describe_error(exc))
                    await asyncio.sleep(1.0)
                else:  # a network error of a connection still in the backlog
                    log.debug("%s: accept failed: %s", name, describe_error(exc))
            except ValueError as exc:  # the listening socket was closed under us
                log.error("%s: stopped accepting: %s", name, exc)
                return

    def _spawn(self, sock: socket.socket, address: Any, tls: bool) -> None:
        if self._closing:
            sock.close()
            return
        task = asyncio.get_running_loop().create_task(self._serve(sock, address, tls))
        self._tasks[task] = None
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s: connection task failed", self.service.name, exc_info=exc)

    # -- one connection ---------------------------------------------------------------------

    async def _serve(self, sock: socket.socket, address: Any, tls: bool) -> None:
        service = self.service
        peer = _endpoint(address)
        try:
            local = _endpoint(sock.getsockname())
        except OSError:
            sock.close()
            return
        proxy: tuple[str, int] | None = None
        via_proxy = service.proxy_protocol and is_trusted(peer[0], self._trusted)
        counted: str | None = None
        handed_over = False  # to asyncio, which then closes the socket itself
        conn: Connection | None = None
        try:
            if via_proxy:
                header = await self._proxy_header(sock, peer)
                if header is None:
                    return
                if not header.local and header.source and header.destination:
                    proxy, peer = peer, _endpoint(header.source)
                    local = _endpoint(header.destination)
            elif _untrusted_proxy_header(sock):
                log.warning("%s: PROXY header from untrusted address %s, closing",
                            service.name, format_endpoint(peer))
                return
            if not self._admit(peer[0]):
                log.info("%s: refused %s: more than %d connections from that address",
                         service.name, format_endpoint(peer), service.max_connections_per_address)
                return
            counted = peer[0]
            handed_over = True
            conn = await self._connect(sock, peer, local, proxy, tls, check=not via_proxy)
            if conn is None or self._closing:
                return
            task = asyncio.current_task()
            if task is not None:
                self._tasks[task] = conn  # so close() can abort it should the handler hang
            await self._run(conn)
        finally:
            if counted is not None:
                self._release(counted)
            if not handed_over:
                sock.close()
            elif conn is not None and not conn.closed:
                conn.abort()

    async def _proxy_header(self, sock: socket.socket, peer: tuple[str, int]) -> ProxyHeader | None:
        name, where = self.service.name, format_endpoint(peer)
        try:
            async with asyncio.timeout(self.service.handshake_timeout):
                return await read_proxy_header_from_socket(sock)
        except ProxyProtocolError as exc:
            log.warning("%s: %s (from proxy %s); closing", name, exc, where)
        except TimeoutError:
            log.warning("%s: no PROXY header from proxy %s within %g s; closing",
                        name, where, self.service.handshake_timeout)
        return None

    async def _connect(self, sock: socket.socket, peer: tuple[str, int], local: tuple[str, int],
                       proxy: tuple[str, int] | None, tls: bool, check: bool) -> Connection | None:
        """Wrap ``sock`` in asyncio streams, doing the TLS handshake for a TLS listener."""
        service = self.service
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=service.max_line_bytes - 1)
        writers: list[asyncio.StreamWriter] = []
        # A connected-callback marks the protocol server-side, which StreamWriter.start_tls needs.
        protocol = asyncio.StreamReaderProtocol(reader, lambda _, writer: writers.append(writer))
        try:
            if tls:
                async with asyncio.timeout(service.handshake_timeout + 1.0):
                    await loop.connect_accepted_socket(
                        lambda: protocol, sock, ssl=self.ssl_context,
                        ssl_handshake_timeout=service.handshake_timeout,
                        ssl_shutdown_timeout=CLOSE_TIMEOUT)
            else:
                await loop.connect_accepted_socket(lambda: protocol, sock)
        except (OSError, EOFError) as exc:  # TimeoutError is an OSError
            log.info("%s: %s with %s failed: %s; closing", service.name,
                     "TLS handshake" if tls else "connection set-up", format_endpoint(peer),
                     describe_error(exc))
            return None
        return Connection(service, reader, writers[0], peer=peer, local=local, proxy=proxy,
                          tls=tls, ssl_context=self.ssl_context, check_proxy_header=check)

    async def _run(self, conn: Connection) -> None:
        name = self.service.name
        if conn.proxy:
            log.debug("%s: connection from %s via %s", name, format_endpoint(conn.peer),
                      format_endpoint(conn.proxy))
        else:
            log.debug("%s: connection from %s", name, format_endpoint(conn.peer))
        try:
            await self.service.handler(conn)
        except Exception as exc:
            if isinstance(exc, NetError):
                log.debug("%s: %s ended: %s", name, format_endpoint(conn.peer), exc)
            else:
                log.error("%s: handler failed for %s", name, format_endpoint(conn.peer),
                          exc_info=exc)
        except BaseException:  # cancelled (server closing) or the process is exiting
            conn.abort()
            raise
        else:
            log.debug("%s: %s done", name, format_endpoint(conn.peer))
        await conn.close()

    def _admit(self, host: str) -> bool:
        count = self.connections_by_address.get(host, 0)
        limit = self.service.max_connections_per_address
        if limit and count >= limit:
            return False
        self.connections_by_address[host] = count + 1
        return True

    def _release(self, host: str) -> None:
        count = self.connections_by_address.get(host, 0) - 1
        if count > 0:
            self.connections_by_address[host] = count
        else:
            self.connections_by_address.pop(host, None)

