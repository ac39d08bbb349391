"""TcpServer and Connection over real loopback sockets: lines, literals, timeouts,
TLS, STARTTLS, PROXY protocol, per-address limits and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import logging
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.net import (
    Connection,
    ConnectionClosed,
    IdleTimeout,
    LineTooLong,
    LiteralTooLarge,
    ProxyProtocolError,
    TcpServer,
    TcpService,
    TlsUnavailable,
    bind_socket,
)
from gateway.net.connection import TLS_READ_BUFFER
from gateway.net.proxy import V2_SIGNATURE

# -- TLS material ----------------------------------------------------------------------------------


@dataclass
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A throwaway self-signed certificate for localhost / 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory: Path = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return Tls(server, client)


# -- the protocol under test ---------------------------------------------------------------------


@dataclass
class Record:
    """What the handlers saw, for assertions."""

    ended: list[BaseException | None] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)


async def echo(record: Record, conn: Connection) -> None:
    """A tiny line protocol: echoes lines, with a few commands to exercise the framework."""
    record.connections.append(conn)
    try:
        await conn.write(b"* ready\r\n")
        while True:
            try:
                line = await conn.readline()
            except LineTooLong:
                await conn.write(b"ERR too long\r\n")
                continue
            command = line.rstrip(b"\r\n")
            if command == b"QUIT":
                await conn.write(b"BYE\r\n")
                break
            elif command == b"PEER":
                proxy = f"{conn.proxy[0]}:{conn.proxy[1]}" if conn.proxy else "-"
                await conn.write(
                    f"{conn.peer[0]} {conn.peer[1]} {conn.local[0]} {conn.local[1]} "
                    f"{proxy} {conn.tls}\r\n".encode())
            elif command.startswith(b"LIT "):
                try:
                    data = await conn.readexactly(int(command[4:]))
                except LiteralTooLarge:
                    await conn.write(b"NO too large\r\n")
                    continue
                await conn.write(b"GOT %d %s\r\n" % (len(data), data[:20]))
            elif command == b"STARTTLS":
                if not conn.can_starttls:
                    await conn.write(b"NO tls\r\n")
                    continue
                await conn.write(b"OK go\r\n")
                await conn.starttls()
            elif command == b"FORCETLS":  # STARTTLS without checking can_starttls
                try:
                    await conn.starttls()
                except TlsUnavailable:
                    await conn.write(b"NO unavailable\r\n")
            elif command.startswith(b"SLOW "):
                await asyncio.sleep(float(command[5:]))
                await conn.write(b"DONE\r\n")
                break
            elif command == b"FLOOD":
                while True:
                    await conn.write(b"f" * 65536)
            elif command == b"STUCK":
                await asyncio.sleep(3600)
            elif command == b"CRASH":
                raise RuntimeError("handler bug on purpose")
            elif command.startswith(b"IDLE "):
                conn.idle_timeout = float(command[5:])
                await conn.write(b"OK idle\r\n")
            else:
                await conn.write(b"ECHO " + line)
    except BaseException as exc:
        record.ended.append(exc)
        raise
    record.ended.append(None)


@dataclass
class Running:
    server: TcpServer
    record: Record
    port: int = 0
    tls_port: int = 0


@contextlib.asynccontextmanager
async def running(ssl_context: ssl.SSLContext | None = None, plain: bool = True,
                  tls: bool = False, **options: Any) -> AsyncIterator[Running]:
    record = Record()

    async def handler(conn: Connection) -> None:
        await echo(record, conn)

    service = TcpService(name="echo", handler=handler, **options)
    plain_sockets = [bind_socket("127.0.0.1:0")] if plain else []
    tls_sockets = [bind_socket("127.0.0.1:0")] if tls else []
    server = TcpServer(service, ssl_context)
    await server.start(plain_sockets, tls_sockets)
    state = Running(server, record)
    if plain:
        state.port = plain_sockets[0].getsockname()[1]
    if tls:
        state.tls_port = tls_sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        await server.close(grace=0.5)
        for sock in plain_sockets + tls_sockets:
            sock.close()


class Client:
    """A line client over asyncio streams, with short timeouts so failures are quick."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, ssl_context: ssl.SSLContext | None = None,
                      first: bytes = b"") -> Client:
        if first:  # bytes that precede everything else, e.g. a PROXY header
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(first)
            reader, writer = await asyncio.open_connection(
                sock=sock, ssl=ssl_context, server_hostname="localhost" if ssl_context else None)
        else:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=ssl_context,
                server_hostname="localhost" if ssl_context else None)
        return cls(reader, writer)

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), 2.0)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def ask(self, data: bytes) -> bytes:
        await self.send(data)
        return await self.line()

    async def closed_by_server(self, within: float = 2.0) -> bool:
        """True when the server closes the connection (EOF or reset) within ``within`` s."""
        try:
            await asyncio.wait_for(self.reader.read(), within)  # whatever was left, then EOF
        except (ConnectionError, ssl.SSLError):
            return True
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


@contextlib.asynccontextmanager
async def client(port: int, ssl_context: ssl.SSLContext | None = None,
                 first: bytes = b"") -> AsyncIterator[Client]:
    c = await Client.connect(port, ssl_context, first)
    try:
        yield c
    finally:
        await c.close()


@contextlib.contextmanager
def catch_loop_errors() -> Iterator[list[dict[str, Any]]]:
    """Collect whatever reaches the event loop's exception handler (must stay empty)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        yield errors
    finally:
        loop.set_exception_handler(previous)


# -- lines and literals ---------------------------------------------------------------------------


async def test_line_echo_and_quit() -> None:
    async with running() as srv, client(srv.port) as c:
        assert await c.line() == b"* ready\r\n"
        assert await c.ask(b"hello world\r\n") == b"ECHO hello world\r\n"
        assert await c.ask(b"bare newline\n") == b"ECHO bare newline\n"
        await c.send(b"one\r\ntwo\r\n")  # pipelined
        assert [await c.line(), await c.line()] == [b"ECHO one\r\n", b"ECHO two\r\n"]
        client_port = c.writer.get_extra_info("sockname")[1]
        assert await c.ask(b"PEER\r\n") == \
            f"127.0.0.1 {client_port} 127.0.0.1 {srv.port} - False\r\n".encode()
        assert await c.ask(b"QUIT\r\n") == b"BYE\r\n"
        assert await c.closed_by_server()
    assert srv.record.ended == [None]


async def test_line_too_long_then_recovery() -> None:
    async with running(max_line_bytes=64) as srv, client(srv.port) as c:
        await c.line()
        exact = b"x" * 62 + b"\r\n"  # 64 bytes with its terminator: allowed
        assert await c.ask(exact) == b"ECHO " + exact
        assert await c.ask(b"y" * 63 + b"\r\n") == b"ERR too long\r\n"
        assert await c.ask(b"after\r\n") == b"ECHO after\r\n"
        # A long line arriving in pieces: refused at once, its rest skipped as it comes.
        await c.send(b"z" * 1000)
        assert await c.line() == b"ERR too long\r\n"
        for _ in range(3):
            await c.send(b"z" * 5000)
            await asyncio.sleep(0.01)
        await c.send(b"zzz\r\nnext\r\n")
        assert await c.ask(b"last\r\n") == b"ECHO next\r\n"
        assert await c.line() == b"ECHO last\r\n"
        assert await c.ask(b"QUIT\r\n") == b"BYE\r\n"


async def test_partial_line_at_eof_is_a_close() -> None:
    async with running() as srv:
        async with client(srv.port) as c:
            await c.line()
            await c.send(b"no newline")
            c.writer.write_eof()
            assert await c.closed_by_server()
        for _ in range(50):
            if srv.record.ended:
                break
            await asyncio.sleep(0.01)
        assert isinstance(srv.record.ended[0], ConnectionClosed)


async def test_literal_refused_before_read() -> None:
    async with running(max_literal_bytes=100) as srv, client(srv.port) as c:
        await c.line()
        # The refusal comes before a single literal byte is sent.
        assert await c.ask(b"LIT 101\r\n") == b"NO too large\r\n"
        assert await c.ask(b"LIT 5\r\nhello") == b"GOT 5 hello\r\n"
        assert await c.ask(b"LIT 100\r\n" + b"a" * 100) == b"GOT 100 " + b"a" * 20 + b"\r\n"
        assert await c.ask(b"LIT 0\r\n") == b"GOT 0 \r\n"
        assert await c.ask(b"after\r\n") == b"ECHO after\r\n"


async def test_large_literal_in_chunks() -> None:
    size = 3 * 1024 * 1024
    async with running(idle_timeout=1.0) as srv, client(srv.port) as c:
        await c.line()
        await c.send(b"LIT %d\r\n" % size)
        for _ in range(6):
            await c.send(b"b" * (size // 6))
        assert await c.line() == b"GOT %d %s\r\n" % (size, b"b" * 20)


# -- timeouts -------------------------------------------------------------------------------------


async def test_idle_timeout_closes() -> None:
    async with running(idle_timeout=0.2) as srv, client(srv.port) as c:
        start = time.monotonic()
        await c.line()
        assert await c.closed_by_server(within=2.0)
        assert 0.15 < time.monotonic() - start < 1.5
        await asyncio.sleep(0.05)
    assert isinstance(srv.record.ended[0], IdleTimeout)


async def test_write_to_a_client_that_does_not_read_times_out() -> None:
    async with running(idle_timeout=0.3) as srv, client(srv.port) as c:
        await c.line()
        await c.send(b"FLOOD\r\n")  # and never read again
        for _ in range(300):
            if srv.record.ended:
                break
            await asyncio.sleep(0.01)
        assert isinstance(srv.record.ended[0], IdleTimeout)


async def test_idle_timeout_is_per_connection() -> None:
    async with running(idle_timeout=0.2) as srv, client(srv.port) as c:
        await c.line()
        assert await c.ask(b"IDLE 5\r\n") == b"OK idle\r\n"
        assert not await c.closed_by_server(within=0.5)  # would have closed at 0.2 s
        assert await c.ask(b"still here\r\n") == b"ECHO still here\r\n"


# -- TLS ------------------------------------------------------------------------------------------


async def test_implicit_tls_echo(tls: Tls) -> None:
    async with running(tls.server, plain=False, tls=True) as srv, \
            client(srv.tls_port, tls.client) as c:
        assert await c.line() == b"* ready\r\n"
        assert (await c.ask(b"PEER\r\n")).endswith(b" - True\r\n")
        assert await c.ask(b"secret\r\n") == b"ECHO secret\r\n"
        assert await c.ask(b"STARTTLS\r\n") == b"NO tls\r\n"  # already TLS
        assert srv.server.open_connections == 1


def tls_read_buffer(conn: Connection) -> int:
    """Size of asyncio's per-connection TLS receive buffer (private, see _trim_tls_buffer)."""
    return len(conn._writer.transport._ssl_protocol._ssl_buffer)  # type: ignore[attr-defined]


async def test_tls_buffer_trimmed_and_bulk_transfer(tls: Tls) -> None:
    size = 1024 * 1024 + 7
    async with running(tls.server, plain=False, tls=True) as srv, \
            client(srv.tls_port, tls.client) as c:
        await c.line()
        assert tls_read_buffer(srv.record.connections[0]) == TLS_READ_BUFFER
        await c.send(b"LIT %d\r\n" % size + b"c" * size)
        assert await c.line() == b"GOT %d %s\r\n" % (size, b"c" * 20)


async def test_starttls_upgrade_then_echo(tls: Tls) -> None:
    async with running(tls.server, starttls=True) as srv, client(srv.port) as c:
        await c.line()
        assert (await c.ask(b"PEER\r\n")).endswith(b" False\r\n")
        assert await c.ask(b"STARTTLS\r\n") == b"OK go\r\n"
        await c.writer.start_tls(tls.client, server_hostname="localhost")
        assert c.writer.get_extra_info("ssl_object") is not None
        assert (await c.ask(b"PEER\r\n")).endswith(b" True\r\n")
        assert await c.ask(b"over tls\r\n") == b"ECHO over tls\r\n"
        assert srv.record.connections[0].get_extra_info("cipher") is not None
        assert await c.ask(b"FORCETLS\r\n") == b"NO unavailable\r\n"
        assert tls_read_buffer(srv.record.connections[0]) == TLS_READ_BUFFER
        assert await c.ask(b"QUIT\r\n") == b"BYE\r\n"


async def test_starttls_unavailable(tls: Tls) -> None:
    async with running(tls.server, starttls=False) as srv, client(srv.port) as c:
        await c.line()
        assert await c.ask(b"STARTTLS\r\n") == b"NO tls\r\n"
        assert await c.ask(b"FORCETLS\r\n") == b"NO unavailable\r\n"
    async with running(None, starttls=True) as srv, client(srv.port) as c:
        await c.line()
        assert await c.ask(b"FORCETLS\r\n") == b"NO unavailable\r\n"


async def test_starttls_with_pipelined_plaintext_is_refused(tls: Tls) -> None:
    async with running(tls.server, starttls=True) as srv, client(srv.port) as c:
        await c.line()
        await c.send(b"STARTTLS\r\nINJECTED\r\n")
        assert await c.line() == b"OK go\r\n"
        assert await c.closed_by_server()


async def test_starttls_handshake_failure_closes(tls: Tls) -> None:
    async with running(tls.server, starttls=True) as srv, client(srv.port) as c:
        await c.line()
        assert await c.ask(b"STARTTLS\r\n") == b"OK go\r\n"
        await c.send(b"this is not a client hello\r\n" * 4)
        assert await c.closed_by_server()
        await asyncio.sleep(0.05)
    assert isinstance(srv.record.ended[0], ConnectionClosed)


async def test_garbage_on_tls_port(tls: Tls, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway.net")
    with catch_loop_errors() as loop_errors:
        async with running(tls.server, plain=False, tls=True) as srv:
            for garbage in (b"A1 LOGIN user pass\r\n", bytes(range(256)) * 4,
                            b"\x16\x03\x01\x00\x05hello"):
                async with client(srv.tls_port) as c:
                    await c.send(garbage)
                    assert await c.closed_by_server()
            async with client(srv.tls_port) as c:  # connects and hangs up at once
                pass
            async with client(srv.tls_port, tls.client) as c:
                assert await c.line() == b"* ready\r\n"
                assert await c.ask(b"fine\r\n") == b"ECHO fine\r\n"
            assert len(srv.record.connections) == 1  # the handler never saw the garbage
    failures = [r for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert len(failures) >= 3
    for record in failures:
        assert record.levelno in (logging.INFO, logging.WARNING)
        assert record.exc_info is None and "\n" not in record.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert loop_errors == []


async def test_tls_handshake_timeout(tls: Tls) -> None:
    async with running(tls.server, plain=False, tls=True, handshake_timeout=0.2) as srv, \
            client(srv.tls_port) as c:
        start = time.monotonic()
        assert await c.closed_by_server(within=2.0)
        assert time.monotonic() - start < 1.5


# -- PROXY protocol -------------------------------------------------------------------------------

V1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 143\r\n"


def v2_header(src: str = "203.0.113.7", sport: int = 56324, length: int | None = None) -> bytes:
    body = (socket.inet_aton(src) + socket.inet_aton("192.0.2.1") + struct.pack("!HH", sport, 993)
            + b"\x04\x00\x02xx")
    size = len(body) if length is None else length
    return V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", size) + body


async def test_proxy_v1_from_trusted_sets_peer() -> None:
    async with running(proxy_protocol=True, trusted_proxies=["127.0.0.0/8"]) as srv, \
            client(srv.port, first=V1) as c:
        assert await c.line() == b"* ready\r\n"
        answer = (await c.ask(b"PEER\r\n")).decode().split()
        assert answer[:4] == ["203.0.113.7", "56324", "192.0.2.1", "143"]
        assert answer[4].startswith("127.0.0.1:") and answer[5] == "False"
        assert srv.server.connections_by_address == {"203.0.113.7": 1}


async def test_proxy_v2_then_implicit_tls(tls: Tls) -> None:
    # The PROXY header and the TLS ClientHello arrive back to back; the header must
    # be read without swallowing the start of the handshake.
    async with running(tls.server, plain=False, tls=True, proxy_protocol=True,
                       trusted_proxies=["127.0.0.1"]) as srv, \
            client(srv.tls_port, tls.client, first=v2_header()) as c:
        assert await c.line() == b"* ready\r\n"
        answer = (await c.ask(b"PEER\r\n")).decode().split()
        assert answer[:4] == ["203.0.113.7", "56324", "192.0.2.1", "993"]
        assert answer[5] == "True"


async def test_proxy_header_in_one_segment_with_client_hello(tls: Tls) -> None:
    async with running(tls.server, plain=False, tls=True, proxy_protocol=True,
                       trusted_proxies=["127.0.0.1"]) as srv:
        answer = await asyncio.to_thread(one_segment_client, srv.tls_port, V1, tls.client)
        assert answer.startswith(b"203.0.113.7 56324 ")


def one_segment_client(port: int, header: bytes, context: ssl.SSLContext) -> bytes:
    """Send the PROXY header and the ClientHello in one write, then ask ``PEER`` over TLS."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.do_handshake()
        sock.sendall(header + outgoing.read())

        def pump() -> None:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            incoming.write(data)

        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                pump()
        sock.sendall(outgoing.read())
        received = b""
        while b"* ready\r\n" not in received:
            try:
                received += tls.read(4096)
            except ssl.SSLWantReadError:
                pump()
        tls.write(b"PEER\r\n")
        sock.sendall(outgoing.read())
        received = b""
        while not received.endswith(b"\r\n"):
            try:
                received += tls.read(4096)
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                pump()
        return received


def refused(sock: socket.socket) -> bool:
    """Closed by the server without a word (a reset, as the client's data went unread)."""
    with sock:
        sock.settimeout(2)
        try:
            return sock.recv(100) == b""
        except ConnectionResetError:
            return True


def untrusted_warnings(caplog: pytest.LogCaptureFixture) -> int:
    return sum("PROXY header from untrusted address 127.0.0.1" in r.getMessage()
               and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize("header", [V1, v2_header()])
async def test_proxy_header_from_untrusted_is_refused_at_once(
        header: bytes, caplog: pytest.LogCaptureFixture) -> None:
    # The header is already there when the connection is accepted: no greeting, no handler.
    async with running(proxy_protocol=True, trusted_proxies=["192.0.2.99"]) as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port))
        sock.sendall(header + b"A1 NOOP\r\n")
        await asyncio.sleep(0.1)
        assert refused(sock)
        assert srv.record.connections == []
    assert untrusted_warnings(caplog) == 1


@pytest.mark.parametrize("header", [V1, v2_header()])
async def test_proxy_header_from_untrusted_on_first_read(
        header: bytes, caplog: pytest.LogCaptureFixture) -> None:
    # The header comes after the greeting: the handler's first readline refuses it.
    async with running(proxy_protocol=True, trusted_proxies=["192.0.2.99"]) as srv, \
            client(srv.port) as c:
        assert await c.line() == b"* ready\r\n"
        await c.send(header)
        assert await c.closed_by_server()
        await asyncio.sleep(0.05)
    assert isinstance(srv.record.ended[0], ProxyProtocolError)
    assert untrusted_warnings(caplog) == 1


async def test_proxy_header_from_untrusted_on_tls_port(
        tls: Tls, caplog: pytest.LogCaptureFixture) -> None:
    async with running(tls.server, plain=False, tls=True) as srv:
        sock = socket.create_connection(("127.0.0.1", srv.tls_port))
        sock.sendall(V1)
        await asyncio.sleep(0.1)
        assert refused(sock)
    assert untrusted_warnings(caplog) == 1


async def test_proxy_header_refused_when_proxy_protocol_is_off() -> None:
    async with running() as srv, client(srv.port) as c:
        await c.line()
        await c.send(V1)
        assert await c.closed_by_server()


async def test_empty_first_line_is_not_mistaken_for_v2() -> None:
    async with running(proxy_protocol=True, trusted_proxies=["192.0.2.99"]) as srv, \
            client(srv.port) as c:
        await c.line()
        assert await c.ask(b"\r\n") == b"ECHO \r\n"
        assert await c.ask(b"PROXY later is fine\r\n") == b"ECHO PROXY later is fine\r\n"


@pytest.mark.parametrize("first", [b"A1 CAPABILITY\r\n", b"PROXY TCP4 1.2.3.4\r\n",
                                   v2_header(length=5000), b""])
async def test_missing_or_bad_proxy_header_from_trusted_closes(
        first: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.net")
    async with running(proxy_protocol=True, trusted_proxies=["127.0.0.1"],
                       handshake_timeout=0.3) as srv:
        c = await Client.connect(srv.port)
        try:
            if first:
                await c.send(first)
            assert await c.closed_by_server()
            await asyncio.sleep(0.02)
        finally:
            await c.close()
        assert srv.record.ended == []  # the handler never ran
        assert srv.server.open_connections == 0
    assert any("PROXY" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)


# -- limits, failures and shutdown ----------------------------------------------------------------


async def test_per_address_limit() -> None:
    async with running(max_connections_per_address=2) as srv:
        first, second = await Client.connect(srv.port), await Client.connect(srv.port)
        assert await first.line() == b"* ready\r\n"
        assert await second.line() == b"* ready\r\n"
        assert srv.server.connections_by_address == {"127.0.0.1": 2}
        assert srv.server.open_connections == 2
        async with client(srv.port) as third:
            assert await third.reader.read() == b""  # closed without a greeting
        await first.ask(b"QUIT\r\n")
        await first.close()
        for _ in range(100):
            if srv.server.connections_by_address == {"127.0.0.1": 1}:
                break
            await asyncio.sleep(0.01)
        async with client(srv.port) as fourth:
            assert await fourth.line() == b"* ready\r\n"
        await second.close()
        for _ in range(100):
            if not srv.server.connections_by_address:
                break
            await asyncio.sleep(0.01)
        assert srv.server.connections_by_address == {}
        assert srv.server.open_connections == 0


async def test_handler_crash_is_logged_once_and_isolated(caplog: pytest.LogCaptureFixture) -> None:
    with catch_loop_errors() as loop_errors:
        async with running() as srv, client(srv.port) as good, client(srv.port) as bad:
            await good.line()
            await bad.line()
            await bad.send(b"CRASH\r\n")
            assert await bad.closed_by_server()
            assert await good.ask(b"alive\r\n") == b"ECHO alive\r\n"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].name == "gateway.net" and errors[0].exc_info is not None
    assert "handler bug on purpose" in str(errors[0].exc_info[1])
    assert loop_errors == []


async def test_close_drains_then_cancels() -> None:
    async with running() as srv:
        slow, stuck = await Client.connect(srv.port), await Client.connect(srv.port)
        idle = await Client.connect(srv.port)
        for c in (slow, stuck, idle):
            await c.line()
        await slow.send(b"SLOW 0.3\r\n")
        await stuck.send(b"STUCK\r\n")
        await asyncio.sleep(0.05)
        start = time.monotonic()
        await srv.server.close(grace=1.0)
        elapsed = time.monotonic() - start
        assert 0.9 < elapsed < 2.0
        assert await slow.line() == b"DONE\r\n"           # finished within the grace period
        assert await stuck.closed_by_server(within=0.5)    # cancelled after it
        assert await idle.closed_by_server(within=0.5)
        assert srv.server.open_connections == 0
        assert srv.server.connections_by_address == {}
        assert srv.record.ended[0] is None
        assert sum(isinstance(e, asyncio.CancelledError) for e in srv.record.ended) == 2
        # No longer accepting: a new client gets no greeting.
        late = await Client.connect(srv.port)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(late.reader.readline(), 0.2)
        for c in (slow, stuck, idle, late):
            await c.close()


async def test_close_returns_at_once_when_handlers_finish() -> None:
    async with running() as srv:
        async with client(srv.port) as c:
            await c.line()
            await c.send(b"SLOW 0.1\r\n")
            start = time.monotonic()
            await srv.server.close(grace=5.0)
            assert time.monotonic() - start < 1.0
            assert await c.line() == b"DONE\r\n"


# -- resources ------------------------------------------------------------------------------------


async def test_idle_connection_memory() -> None:
    """Python memory per idle plain connection, streams and handler task included."""
    import gc
    import tracemalloc

    count = 200
    async with running() as srv:
        async with client(srv.port) as warm:  # first-use allocations out of the way
            await warm.line()
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            socks = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(count)]
            for _ in range(200):
                if srv.server.open_connections == count and len(srv.record.connections) > count:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # every handler has sent its greeting and waits for input
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        per_connection = sum(s.size_diff for s in after.compare_to(before, "filename")) / count
        serving = srv.server.open_connections
        for sock in socks:
            sock.close()
        assert serving == count
        assert per_connection < 20 * 1024, f"{per_connection:.0f} bytes per idle connection"

