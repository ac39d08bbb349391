"""PROXY protocol headers: parsing, hostile input, reading without over-reading, trust."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from gateway.net import ProxyHeader, ProxyProtocolError, is_trusted, looks_like_proxy_header
from gateway.net.proxy import (
    V2_MAX_LENGTH,
    V2_SIGNATURE,
    parse_networks,
    parse_v1,
    read_proxy_header,
    read_proxy_header_from_socket,
)


def v2(command: int = 1, family: int = 0x11, body: bytes = b"", length: int | None = None,
       version: int = 2) -> bytes:
    size = len(body) if length is None else length
    return V2_SIGNATURE + bytes([version << 4 | command, family]) + struct.pack("!H", size) + body


def inet4(src: str, dst: str, sport: int, dport: int) -> bytes:
    return (socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
            + struct.pack("!HH", sport, dport))


def inet6(src: str, dst: str, sport: int, dport: int) -> bytes:
    return (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + struct.pack("!HH", sport, dport))


def stream(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def read(data: bytes, eof: bool = True) -> ProxyHeader:
    return await asyncio.wait_for(read_proxy_header(stream(data, eof)), 1.0)


# -- v1 -----------------------------------------------------------------------------------------


async def test_v1_tcp4() -> None:
    header = await read(b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 143\r\n")
    assert header == ProxyHeader(("203.0.113.7", 56324), ("192.0.2.1", 143), local=False)


async def test_v1_tcp6_and_unknown() -> None:
    header = await read(b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 993\r\n")
    assert header.source == ("2001:db8::7", 4000)
    assert header.destination == ("2001:db8::1", 993)
    unknown = await read(b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n")
    assert unknown.local and unknown.source is None and unknown.destination is None


async def test_v1_leaves_the_following_bytes() -> None:
    reader = stream(b"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\nA1 LOGIN\r\n")
    await read_proxy_header(reader)
    assert await reader.readline() == b"A1 LOGIN\r\n"


@pytest.mark.parametrize("line", [
    b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 143\n",            # no CR
    b"PROXY TCP4 203.0.113.7 192.0.2.1 56324\r\n",              # missing field
    b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 143 9\r\n",        # extra field
    b"PROXY TCP4 203.0.113.7  192.0.2.1 56324 143\r\n",         # double space
    b"PROXY TCP4 2001:db8::1 192.0.2.1 56324 143\r\n",          # IPv6 in TCP4
    b"PROXY TCP6 203.0.113.7 2001:db8::1 56324 143\r\n",        # IPv4 in TCP6
    b"PROXY TCP4 203.0.113.7 192.0.2.1 65536 143\r\n",          # port out of range
    b"PROXY TCP4 203.0.113.7 192.0.2.1 -1 143\r\n",
    b"PROXY TCP4 203.0.113.777 192.0.2.1 1 143\r\n",
    b"PROXY TCP4 203.0.113.7 192.0.2.1 1 1x\r\n",
    b"PROXY UDP4 203.0.113.7 192.0.2.1 1 2\r\n",
    b"PROXY \xff\xfe 203.0.113.7 192.0.2.1 1 2\r\n",
])
async def test_v1_malformed(line: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        await read(line)


async def test_v1_line_is_bounded() -> None:
    # 200 bytes and no newline, more to come: refused after 107 bytes, not waiting for more.
    reader = stream(b"PROXY TCP4 " + b"1" * 189, eof=False)
    with pytest.raises(ProxyProtocolError, match="107"):
        await asyncio.wait_for(read_proxy_header(reader), 1.0)
    assert len(await reader.read(1000)) == 200 - 107
    with pytest.raises(ProxyProtocolError):
        parse_v1(b"PROXY UNKNOWN " + b"x" * 100 + b"\r\n")


async def test_not_a_header_and_truncated() -> None:
    with pytest.raises(ProxyProtocolError, match="expected a PROXY"):
        await read(b"A1 LOGIN user password\r\n")
    with pytest.raises(ProxyProtocolError, match="closed"):
        await read(b"PROXY TCP4 1.2.3.4")
    with pytest.raises(ProxyProtocolError, match="closed"):
        await read(b"PROXY")


# -- v2 -----------------------------------------------------------------------------------------


async def test_v2_inet_with_tlvs() -> None:
    tlvs = b"\x04\x00\x03abc" + b"\x20\x00\x05\x01\x00\x00\x00\x00"  # NOOP + SSL, skipped
    header = await read(v2(body=inet4("203.0.113.7", "192.0.2.1", 56324, 993) + tlvs) + b"rest")
    assert header == ProxyHeader(("203.0.113.7", 56324), ("192.0.2.1", 993), False, version=2)


async def test_v2_inet6() -> None:
    header = await read(v2(family=0x21, body=inet6("2001:db8::7", "2001:db8::1", 1, 2)))
    assert header.source == ("2001:db8::7", 1)
    assert header.destination == ("2001:db8::1", 2)


async def test_v2_local_and_unspec_keep_the_real_peer() -> None:
    local = await read(v2(command=0, family=0x00))
    assert local.local and local.source is None
    # LOCAL ignores whatever address block follows.
    assert (await read(v2(command=0, body=inet4("1.2.3.4", "5.6.7.8", 1, 2)))).local
    assert (await read(v2(family=0x00, body=b"\x00" * 4))).local
    assert (await read(v2(family=0x31, body=b"\x00" * 216))).local


async def test_v2_leaves_the_following_bytes() -> None:
    reader = stream(v2(body=inet4("10.0.0.1", "10.0.0.2", 1, 2)) + b"\x16\x03\x01")
    await read_proxy_header(reader)
    assert await reader.read() == b"\x16\x03\x01"


@pytest.mark.parametrize("data", [
    v2(version=1, body=inet4("1.2.3.4", "5.6.7.8", 1, 2)),      # bad version
    v2(command=2, body=inet4("1.2.3.4", "5.6.7.8", 1, 2)),      # bad command
    v2(family=0x12, body=inet4("1.2.3.4", "5.6.7.8", 1, 2)),    # UDP
    v2(family=0x41, body=inet4("1.2.3.4", "5.6.7.8", 1, 2)),    # unknown family
    v2(body=inet4("1.2.3.4", "5.6.7.8", 1, 2)[:11]),            # shorter than its addresses
    v2(family=0x21, body=inet4("1.2.3.4", "5.6.7.8", 1, 2)),    # IPv6 with 12 bytes
    v2(body=inet4("1.2.3.4", "5.6.7.8", 1, 2), length=20),      # payload truncated
    V2_SIGNATURE + b"\x21",                                      # fixed header truncated
])
async def test_v2_malformed(data: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        await read(data)


@pytest.mark.parametrize("length", [V2_MAX_LENGTH + 1, 0xFFFF])
async def test_v2_hostile_length_refused_before_reading(length: int) -> None:
    # Only the 16 fixed bytes are there and the stream stays open: the header must be
    # refused from its length field at once, not after waiting for (or buffering) the payload.
    reader = stream(v2(length=length), eof=False)
    with pytest.raises(ProxyProtocolError, match="exceeds"):
        await asyncio.wait_for(read_proxy_header(reader), 0.5)


async def test_v2_largest_allowed_length() -> None:
    body = inet4("1.2.3.4", "5.6.7.8", 1, 2)
    body += b"\x04" + struct.pack("!H", V2_MAX_LENGTH - len(body) - 3)
    body += b"\x00" * (V2_MAX_LENGTH - len(body))
    assert (await read(v2(body=body))).source == ("1.2.3.4", 1)


# -- reading a raw socket -------------------------------------------------------------------------


@pytest.mark.parametrize("header", [
    b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 143\r\n",
    v2(body=inet4("203.0.113.7", "192.0.2.1", 56324, 143) + b"\x04\x00\x01x"),
])
async def test_socket_reader_stops_at_the_end_of_the_header(header: bytes) -> None:
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        left.sendall(header + b"\x16\x03\x01 TLS follows")
        parsed = await asyncio.wait_for(read_proxy_header_from_socket(right), 1.0)
        assert parsed.source == ("203.0.113.7", 56324)
        assert right.recv(100) == b"\x16\x03\x01 TLS follows"


async def test_socket_reader_waits_for_a_header_sent_in_pieces() -> None:
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        task = asyncio.create_task(read_proxy_header_from_socket(right))
        for piece in (b"PROXY TCP4 203", b".0.113.7 192.0", b".2.1 1 2\r", b"\nNEXT"):
            left.sendall(piece)
            await asyncio.sleep(0.02)
        assert (await asyncio.wait_for(task, 1.0)).source == ("203.0.113.7", 1)
        assert right.recv(100) == b"NEXT"


async def test_socket_reader_eof_and_garbage() -> None:
    left, right = socket.socketpair()
    with right:
        right.setblocking(False)
        left.sendall(b"PROXY TCP4 1.2")
        left.close()
        with pytest.raises(ProxyProtocolError, match="closed"):
            await asyncio.wait_for(read_proxy_header_from_socket(right), 1.0)
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        left.sendall(b"PROXY " + b"9" * 300)
        with pytest.raises(ProxyProtocolError, match="107"):
            await asyncio.wait_for(read_proxy_header_from_socket(right), 1.0)


# -- detection and trust -------------------------------------------------------------------------


def test_looks_like_proxy_header() -> None:
    assert looks_like_proxy_header(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")
    assert looks_like_proxy_header(V2_SIGNATURE + b"\x21\x11")
    assert not looks_like_proxy_header(V2_SIGNATURE[:11])
    assert not looks_like_proxy_header(b"PROXYX")
    assert not looks_like_proxy_header(b"A1 CAPABILITY\r\n")
    assert not looks_like_proxy_header(b"")


def test_is_trusted() -> None:
    nets = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
    assert is_trusted("10.1.2.3", nets)
    assert is_trusted("192.0.2.7", nets)
    assert not is_trusted("192.0.2.8", nets)
    assert is_trusted("2001:db8::1", nets)
    assert is_trusted("[2001:db8::1]", nets)
    assert not is_trusted("2001:db9::1", nets)
    assert is_trusted("::ffff:10.9.9.9", nets)          # IPv4-mapped IPv6
    assert not is_trusted("::ffff:11.9.9.9", nets)
    assert is_trusted(" 10.0.0.1 ", nets)
    assert not is_trusted("", nets)
    assert not is_trusted("not an address", nets)
    assert not is_trusted("10.0.0.1", [])
    assert is_trusted("127.0.0.1", ["127.0.0.1/8"])      # host bits tolerated


def test_is_trusted_rejects_bad_entries() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33'"):
        is_trusted("10.0.0.1", ["10.0.0.0/33"])
    with pytest.raises(ValueError, match=r"'proxy\.example'"):
        parse_networks(("proxy.example",))
