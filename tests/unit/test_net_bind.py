"""Listening sockets from address text."""

from __future__ import annotations

import socket

import pytest

from gateway.net import bind_socket, parse_address


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:143", ("127.0.0.1", 143)),
    ("[::1]:993", ("::1", 993)),
    ("[2001:db8::1]:0", ("2001:db8::1", 0)),
    ("*:25", ("", 25)),
    (":25", ("", 25)),
    ("localhost:65535", ("localhost", 65535)),
    (" mail.example.org:587 ", ("mail.example.org", 587)),
])
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", [
    "127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536", "127.0.0.1:-1",
    "::1:143", "[::1]", "[::1]143", "[127.0.0.1]:143", "[::1:143", "bad host:143",
    "127.0.0.1:\uff11\uff14\uff13", "",  # full-width digits
])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_address(text)
    assert repr(text.strip()) in str(info.value) or repr(text) in str(info.value)


def test_bind_socket_options() -> None:
    with bind_socket("127.0.0.1:0", backlog=16) as sock:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
        assert sock.family == socket.AF_INET
        assert sock.getblocking() is False
        assert sock.get_inheritable() is True
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass


def test_bind_socket_in_use_names_the_address() -> None:
    with bind_socket("127.0.0.1:0") as first:
        address = f"127.0.0.1:{first.getsockname()[1]}"
        with pytest.raises(OSError) as info:
            bind_socket(address)
    assert address in str(info.value)
    assert info.value.strerror and address not in info.value.strerror


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_bind_socket_reuse_port() -> None:
    with bind_socket("127.0.0.1:0", reuse_port=True) as first:
        assert first.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        address = f"127.0.0.1:{first.getsockname()[1]}"
        with bind_socket(address, reuse_port=True) as second:
            assert second.getsockname() == first.getsockname()


def test_bind_socket_ipv6() -> None:
    try:
        sock = bind_socket("[::1]:0")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with sock:
        assert sock.family == socket.AF_INET6
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        assert sock.getsockname()[0] == "::1"


def test_bind_socket_wildcard() -> None:
    with bind_socket("*:0") as sock:
        port = sock.getsockname()[1]
        if sock.family == socket.AF_INET6:
            assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        # Reachable over IPv4 either way (dual-stack or 0.0.0.0).
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass


def test_bind_socket_rejects_bad_text() -> None:
    with pytest.raises(ValueError, match="'nonsense'"):
        bind_socket("nonsense")
