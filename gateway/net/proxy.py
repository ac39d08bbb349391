"""PROXY protocol v1 (text) and v2 (binary) headers, as HAProxy defines them.

A load balancer in front of the gateway prepends one header to each TCP
connection telling the real client's address. The header is read only from
addresses in ``trusted_proxies``; everything in it is treated as hostile: a v1
line is at most 107 bytes, a v2 payload at most ``V2_MAX_LENGTH`` bytes (TLVs
are skipped), and anything malformed raises ``ProxyProtocolError``.

Two readers share one parser: ``read_proxy_header`` for an asyncio stream and
``read_proxy_header_from_socket`` for a raw accepted socket. The second never
reads past the header, which matters when TLS starts right after it.

Specification: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.net.errors import ProxyProtocolError

__all__ = [
    "V1_MAX_LINE",
    "V2_MAX_LENGTH",
    "V2_SIGNATURE",
    "ProxyHeader",
    "is_trusted",
    "looks_like_proxy_header",
    "parse_v1",
    "parse_v2",
    "read_proxy_header",
    "read_proxy_header_from_socket",
]

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX_LINE = 107  # "PROXY TCP6 <39> <39> 65535 65535\r\n"
V2_MAX_LENGTH = 1024  # bytes after the 16-byte v2 header; addresses are at most 216

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """What a PROXY header said.

    ``local`` (v2 ``LOCAL`` command, v1 ``UNKNOWN``, or an address family
    without IP addresses) means: keep the real peer of the TCP connection.
    """

    source: tuple[str, int] | None
    destination: tuple[str, int] | None
    local: bool
    version: int = 1


def looks_like_proxy_header(first_bytes: bytes) -> bool:
    """Whether data that opens a connection is a PROXY v1 or v2 header."""
    return first_bytes.startswith((b"PROXY ", V2_SIGNATURE))


# -- parsing ----------------------------------------------------------------------------------


def _v1_address(field: bytes, version: int) -> str:
    try:
        ip = ipaddress.ip_address(field.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProxyProtocolError(f"PROXY v1: bad address {field[:45]!r}") from None
    if ip.version != version:
        raise ProxyProtocolError(f"PROXY v1: {ip} is not an IPv{version} address")
    return str(ip)


def _v1_port(field: bytes) -> int:
    if not (field.isdigit() and len(field) <= 5) or int(field) > 65535:
        raise ProxyProtocolError(f"PROXY v1: bad port {field[:8]!r}")
    return int(field)


def parse_v1(line: bytes) -> ProxyHeader:
    """Parse one v1 line, ``PROXY TCP4 src dst sport dport\\r\\n`` or ``PROXY UNKNOWN ...``."""
    if len(line) > V1_MAX_LINE:
        raise ProxyProtocolError("PROXY v1: line longer than 107 bytes")
    if not line.endswith(b"\r\n"):
        raise ProxyProtocolError("PROXY v1: line does not end with CRLF")
    fields = line[:-2].split(b" ")
    if fields[0] != b"PROXY" or len(fields) < 2:
        raise ProxyProtocolError("PROXY v1: not a PROXY line")
    if fields[1] == b"UNKNOWN":
        return ProxyHeader(None, None, local=True, version=1)
    version = {b"TCP4": 4, b"TCP6": 6}.get(fields[1])
    if version is None:
        raise ProxyProtocolError(f"PROXY v1: unknown protocol {fields[1][:8]!r}")
    if len(fields) != 6:
        raise ProxyProtocolError("PROXY v1: expected 6 space-separated fields")
    source = (_v1_address(fields[2], version), _v1_port(fields[4]))
    destination = (_v1_address(fields[3], version), _v1_port(fields[5]))
    return ProxyHeader(source, destination, local=False, version=1)


def _v2_endpoints(body: bytes, size: int) -> tuple[tuple[str, int], tuple[str, int]]:
    src: _IPAddress
    dst: _IPAddress
    if size == 12:
        src, dst = ipaddress.IPv4Address(body[0:4]), ipaddress.IPv4Address(body[4:8])
    else:
        src, dst = ipaddress.IPv6Address(body[0:16]), ipaddress.IPv6Address(body[16:32])
    ports = body[size - 4:size]
    sport, dport = int.from_bytes(ports[0:2], "big"), int.from_bytes(ports[2:4], "big")
    return (str(src), sport), (str(dst), dport)


def parse_v2(header: bytes, body: bytes) -> ProxyHeader:
    """Parse a v2 header: the 16 fixed bytes and the ``length`` bytes after them."""
    if len(header) != 16 or not header.startswith(V2_SIGNATURE):
        raise ProxyProtocolError("PROXY v2: bad signature")
    length = int.from_bytes(header[14:16], "big")
    if length != len(body):
        raise ProxyProtocolError("PROXY v2: length does not match the payload")
    if length > V2_MAX_LENGTH:
        raise ProxyProtocolError(f"PROXY v2: payload of {length} bytes exceeds {V2_MAX_LENGTH}")
    version, command = header[12] >> 4, header[12] & 0x0F
    if version != 2:
        raise ProxyProtocolError(f"PROXY v2: unsupported version {version}")
    if command == 0x0:  # LOCAL: health check or the proxy's own connection
        return ProxyHeader(None, None, local=True, version=2)
    if command != 0x1:
        raise ProxyProtocolError(f"PROXY v2: unknown command {command}")
    family = header[13]
    if family in (0x00, 0x31):  # UNSPEC, or a UNIX stream: no IP address to use
        return ProxyHeader(None, None, local=True, version=2)
    size = {0x11: 12, 0x21: 36}.get(family)  # TCP over IPv4, TCP over IPv6
    if size is None:
        raise ProxyProtocolError(f"PROXY v2: unsupported address family 0x{family:02x}")
    if length < size:
        raise ProxyProtocolError("PROXY v2: payload shorter than its addresses")
    source, destination = _v2_endpoints(body, size)
    return ProxyHeader(source, destination, local=False, version=2)


# -- reading ----------------------------------------------------------------------------------


class _Source(Protocol):
    async def exactly(self, n: int) -> bytes: ...

    async def line(self, limit: int) -> bytes: ...


async def _read(source: _Source) -> ProxyHeader:
    start = await source.exactly(len(V2_SIGNATURE))
    if start == V2_SIGNATURE:
        fixed = start + await source.exactly(4)
        length = int.from_bytes(fixed[14:16], "big")
        if length > V2_MAX_LENGTH:  # refuse before reading (or waiting for) the payload
            raise ProxyProtocolError(
                f"PROXY v2: payload of {length} bytes exceeds {V2_MAX_LENGTH}")
        return parse_v2(fixed, await source.exactly(length) if length else b"")
    if start.startswith(b"PROXY "):
        return parse_v1(start + await source.line(V1_MAX_LINE - len(start)))
    raise ProxyProtocolError("expected a PROXY protocol header")


class _StreamSource:
    __slots__ = ("reader",)

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    async def exactly(self, n: int) -> bytes:
        try:
            return await self.reader.readexactly(n)
        except asyncio.IncompleteReadError:
            raise ProxyProtocolError("connection closed inside the PROXY header") from None

    async def line(self, limit: int) -> bytes:
        # One byte at a time from the stream's buffer: never more than ``limit``.
        data = bytearray()
        while len(data) < limit:
            data += await self.exactly(1)
            if data.endswith(b"\n"):
                return bytes(data)
        raise ProxyProtocolError("PROXY v1: line longer than 107 bytes")


class _SocketSource:
    """Reads a non-blocking socket without consuming a byte past the header."""

    __slots__ = ("loop", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()

    async def exactly(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = await self.loop.sock_recv(self.sock, n - len(data))
            if not chunk:
                raise ProxyProtocolError("connection closed inside the PROXY header")
            data += chunk
        return bytes(data)

    async def line(self, limit: int) -> bytes:
        data = bytearray()
        while len(data) < limit:
            peeked = await self._peek(limit - len(data))
            end = peeked.find(b"\n")
            # Consume only bytes known to belong to the line; what follows stays queued.
            data += await self.exactly(end + 1 if end >= 0 else len(peeked))
            if end >= 0:
                return bytes(data)
        raise ProxyProtocolError("PROXY v1: line longer than 107 bytes")

    async def _peek(self, n: int) -> bytes:
        while True:
            try:
                peeked = self.sock.recv(n, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                await self._readable()
                continue
            if not peeked:
                raise ProxyProtocolError("connection closed inside the PROXY header")
            return peeked

    async def _readable(self) -> None:
        ready: asyncio.Future[None] = self.loop.create_future()
        fd = self.sock.fileno()
        self.loop.add_reader(fd, _wake, ready)
        try:
            await ready
        finally:
            self.loop.remove_reader(fd)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def read_proxy_header(reader: asyncio.StreamReader) -> ProxyHeader:
    """Read and parse the PROXY header that opens ``reader``.

    Raises ``ProxyProtocolError`` when the stream does not start with a valid
    header (the caller should close the connection). Apply a timeout around it.
    """
    return await _read(_StreamSource(reader))


async def read_proxy_header_from_socket(sock: socket.socket) -> ProxyHeader:
    """Like ``read_proxy_header`` for a non-blocking socket, leaving what follows unread."""
    try:
        return await _read(_SocketSource(sock))
    except OSError as exc:
        raise ProxyProtocolError(f"connection failed inside the PROXY header: {exc}") from None


# -- trust ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def parse_networks(entries: tuple[str, ...]) -> tuple[_IPNetwork, ...]:
    """Addresses and CIDR networks; ``ValueError`` naming a bad entry."""
    networks: list[_IPNetwork] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(networks)


def _address(text: str) -> _IPAddress | None:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_trusted(addr: str, networks: Sequence[str]) -> bool:
    """Whether ``addr`` is one of, or inside one of, ``networks`` (addresses or CIDRs).

    An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) also matches as IPv4.
    A malformed ``addr`` is not trusted; a malformed entry of ``networks`` raises
    ``ValueError`` (validate configuration with ``parse_networks`` at start-up).
    """
    if not networks:
        return False
    ip = _address(addr)
    if ip is None:
        return False
    candidates: list[_IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        candidates.append(ip.ipv4_mapped)
    return any(
        candidate in network
        for network in parse_networks(tuple(networks))
        for candidate in candidates
        if candidate.version == network.version
    )
