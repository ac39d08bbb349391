"""Listening sockets from ``host:port`` text.

Accepted forms:

- ``192.0.2.1:143`` or ``localhost:143`` (a name is resolved once, first answer wins);
- ``[2001:db8::1]:143`` (IPv6 in brackets; bound IPv6-only so it can sit next
  to an IPv4 wildcard on the same port);
- ``*:143`` or ``:143`` (every interface: dual-stack ``::`` when IPv6 is
  available, else ``0.0.0.0``).

``bind_socket`` is synchronous on purpose: the host binds every listener
before any event loop runs, possibly in a parent process whose workers then
share the sockets.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket

__all__ = ["bind_socket", "parse_address"]

WILDCARD = ""


def _invalid(text: str, why: str) -> ValueError:
    return ValueError(f"invalid listen address {text!r}: {why}")


def parse_address(text: str) -> tuple[str, int]:
    """Split ``host:port`` into ``(host, port)``; the wildcard host is ``""``.

    Brackets around an IPv6 address are removed. Raises ``ValueError`` naming
    the address when it is malformed.
    """
    value = text.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise _invalid(text, "expected [ipv6]:port")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _invalid(text, f"{host!r} is not an IPv6 address") from None
        port_text = rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise _invalid(text, "expected host:port")
        if ":" in host:
            raise _invalid(text, "write an IPv6 address in brackets, as [::1]:port")
        if host == "*":
            host = WILDCARD
        elif host and not all(c.isalnum() or c in ".-_" for c in host):
            raise _invalid(text, f"{host!r} is not a host name or address")
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise _invalid(text, f"port {port_text!r} is not a number")
    port = int(port_text)
    if port > 65535:
        raise _invalid(text, f"port {port} is out of range")
    return host, port


def _resolve(text: str, host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int], bool]:
    """Family, socket address and whether the socket should be dual-stack."""
    if host == WILDCARD:
        if socket.has_ipv6:
            return socket.AF_INET6, ("::", port), True
        return socket.AF_INET, ("0.0.0.0", port), False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise _invalid(text, f"cannot resolve {host!r}: {exc.strerror}") from None
        family, _, _, _, sockaddr = infos[0]
        return family, (str(sockaddr[0]), port), False
    if ip.version == 6:
        return socket.AF_INET6, (str(ip), port), False
    return socket.AF_INET, (str(ip), port), False


def bind_socket(address: str, backlog: int = 1024, reuse_port: bool = False) -> socket.socket:
    """A non-blocking, inheritable TCP socket bound to ``address`` and listening.

    ``ValueError`` for a malformed address; ``OSError`` from the system (address
    in use, permission denied ...) with ``address`` as the error's filename, so
    it shows in the message while ``strerror`` stays the system's text.
    """
    host, port = parse_address(address)
    family, sockaddr, dual_stack = _resolve(address, host, port)
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        if not dual_stack:
            raise
        # IPv6 compiled in but disabled in this kernel: the wildcard falls back to IPv4.
        family, sockaddr, dual_stack = socket.AF_INET, ("0.0.0.0", port), False
        sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            if not hasattr(socket, "SO_REUSEPORT"):
                raise OSError(f"SO_REUSEPORT is not supported here (listening on {address})")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):  # some kernels fix the value
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind(sockaddr)
            sock.listen(backlog)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror or str(exc), address) from exc
        sock.setblocking(False)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock
