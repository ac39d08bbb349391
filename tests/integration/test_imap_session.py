"""The IMAP session engine against a real ``gateway serve``: greeting, login, TLS, states,
limits and hostile input, over raw sockets and Python's imaplib.

Most tests share one server (``imap_server_module``); tests that need another
configuration start their own.
"""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
import time

import pytest

from tests.harness.imap import (
    ALICE,
    ALICE_PW,
    BOB,
    BOB_PW,
    TIMEOUT,
    ImapServer,
    RawClient,
    untagged,
)
from tests.harness.imap import imaplib_client as client
from tests.harness.imap import make_message as message

Raw = RawClient


def test_greeting_and_capabilities_before_and_after_login(imap_server_module: ImapServer) -> None:
    raw = Raw(imap_server_module)
    try:
        assert raw.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
        before = raw.ok("c1", "CAPABILITY")[0].split()
        assert b"STARTTLS" in before and b"AUTH=PLAIN" in before and b"SASL-IR" in before
        assert b"LOGINDISABLED" not in before  # the shared server allows plaintext
        assert b"IDLE" in before and b"LITERAL+" in before
        raw.login()
        after = raw.ok("c2", "CAPABILITY")[0].split()
        for cap in (b"UIDPLUS", b"MOVE", b"SPECIAL-USE", b"NAMESPACE", b"CONDSTORE",
                    b"QRESYNC", b"ESEARCH", b"LIST-STATUS", b"UNSELECT", b"UTF8=ACCEPT",
                    b"STATUS=SIZE", b"APPENDLIMIT=67108864"):
            assert cap in after, cap
        assert b"STARTTLS" not in after
    finally:
        raw.close()


def test_plaintext_login_refused_until_starttls(imap_server_factory) -> None:
    server = imap_server_factory(plaintext=False)
    raw = Raw(server)
    try:
        assert b"LOGINDISABLED" in raw.greeting and b"AUTH=PLAIN" not in raw.greeting
        refused = raw.command("a1", f'LOGIN "{ALICE}" "{ALICE_PW}"')
        assert refused[-1].startswith(b"a1 NO [PRIVACYREQUIRED]"), refused
        refused = raw.command("a2", "AUTHENTICATE PLAIN AGFsaWNlAHg=")
        assert refused[-1].startswith(b"a2 NO [PRIVACYREQUIRED]"), refused
        assert raw.ok("a3", "NOOP")
    finally:
        raw.close()
    imap = imaplib.IMAP4(server.host, server.port, timeout=TIMEOUT)
    try:
        imap.starttls(server.ssl_context())
        assert "LOGINDISABLED" not in imap.capabilities
        assert imap.login(ALICE, ALICE_PW)[0] == "OK"
        assert imap.select("INBOX")[0] == "OK"
    finally:
        imap.logout()
    with imaplib.IMAP4_SSL(server.host, server.tls_port, ssl_context=server.ssl_context(),
                           timeout=TIMEOUT) as tls:
        assert tls.login(BOB, BOB_PW)[0] == "OK"


def test_implicit_tls_and_wrong_passwords(imap_server_module: ImapServer) -> None:
    server = imap_server_module
    with imaplib.IMAP4_SSL(server.host, server.tls_port, ssl_context=server.ssl_context(),
                           timeout=TIMEOUT) as imap:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.login(ALICE, "wrong")
        assert imap.login(ALICE, ALICE_PW)[0] == "OK"
        assert imap.list()[0] == "OK"


def test_authenticate_plain_with_initial_response_and_login_mechanism(
        imap_server_module: ImapServer) -> None:
    import base64

    raw = Raw(imap_server_module)
    try:
        token = base64.b64encode(f"\0{ALICE}\0{ALICE_PW}".encode()).decode()
        done = raw.ok("a1", f"AUTHENTICATE PLAIN {token}")
        assert b"[CAPABILITY " in done[-1]
    finally:
        raw.close()
    raw = Raw(imap_server_module)
    try:
        raw.send(b"a1 AUTHENTICATE LOGIN\r\n")
        assert raw.line() == b"+ VXNlcm5hbWU6\r\n"
        raw.send(base64.b64encode(BOB.encode()) + b"\r\n")
        assert raw.line() == b"+ UGFzc3dvcmQ6\r\n"
        raw.send(base64.b64encode(BOB_PW.encode()) + b"\r\n")
        assert raw.until_tagged("a1")[-1].startswith(b"a1 OK")
        raw.send(b"a2 AUTHENTICATE PLAIN\r\n")
        assert raw.until_tagged("a2")[-1].startswith(b"a2 BAD")  # already authenticated
    finally:
        raw.close()
    raw = Raw(imap_server_module)
    try:
        raw.send(b"a1 AUTHENTICATE PLAIN\r\n")
        assert raw.line().startswith(b"+")
        raw.send(b"*\r\n")
        assert raw.until_tagged("a1")[-1].startswith(b"a1 BAD")
        raw.send(b"a2 AUTHENTICATE PLAIN\r\n")
        assert raw.line().startswith(b"+")
        raw.send(b"not base64!\r\n")
        assert raw.until_tagged("a2")[-1].startswith(b"a2 BAD")
        raw.login()
    finally:
        raw.close()


def test_commands_in_the_wrong_state(imap_server_module: ImapServer) -> None:
    raw = Raw(imap_server_module)
    try:
        for command in ("SELECT INBOX", "FETCH 1 FLAGS", "LIST \"\" *", "IDLE", "ENABLE QRESYNC"):
            assert raw.command("w1", command)[-1].startswith(b"w1 BAD"), command
        raw.login()
        assert raw.command("w2", "FETCH 1 FLAGS")[-1].startswith(b"w2 BAD")
        assert raw.command("w3", "CLOSE")[-1].startswith(b"w3 BAD")
        assert raw.command("w4", f'LOGIN "{ALICE}" "{ALICE_PW}"')[-1].startswith(b"w4 BAD")
        assert raw.ok("w5", "NOOP")
    finally:
        raw.close()


BAD_COMMANDS = [
    "FROB",
    "SELECT",
    "FETCH",
    "FETCH 1",
    "FETCH 1 (FLAGS",
    "FETCH 1 NONSENSE",
    "FETCH 1 BODY[NOPE]",
    "FETCH 99999 FLAGS",
    "FETCH 1:2,,3 FLAGS",
    "FETCH 0 FLAGS",
    "STORE 1 +FLAGS (\\Bogus)",
    "STORE 1 FROB (\\Seen)",
    "SEARCH FROB",
    "UID FROB 1",
    "UID",
    "LIST",
    "STATUS INBOX (FROBS)",
    "CREATE &AGE-",
    "CREATE Entw&APw-rfe&",
    'LOGIN "x" "y"',
    "ENABLE",
    "NOOP extra",
    "ID (\"only-a-key\")",
    "APPEND INBOX",
    'SEARCH SUBJECT "unterminated',
    "FETCH 1 BODY[HEADER.FIELDS (FROM]",
    "COPY 1",
    "EXPUNGE now",
]


def test_bad_commands_get_bad_and_the_session_carries_on(imap_server_module: ImapServer) -> None:
    server = imap_server_module
    server.deliver(ALICE, message("for bad input"), "BadInput")
    raw = Raw(server)
    try:
        raw.login()
        raw.ok("s0", "SELECT BadInput")
        for i, command in enumerate(BAD_COMMANDS):
            tag = f"b{i}"
            lines = raw.command(tag, command)
            assert lines[-1].startswith(f"{tag} BAD ".encode()), (command, lines)
            assert len(lines[-1]) > len(tag) + 6, (command, lines)  # carries a reason
        huge = "1," * 20000 + "1"
        lines = raw.command("h1", f"FETCH {huge} FLAGS")
        assert lines[-1].startswith(b"h1 BAD"), lines[-1][:100]
        raw.send(b"x1 NOOP " + b"x" * 70000 + b"\r\n")
        assert raw.line().startswith(b"* BAD [TOOBIG]")
        raw.send(b"x2 APPEND BadInput {999999999999}\r\n")
        assert raw.line().startswith(b"x2 NO [TOOBIG]")
        raw.send(b"+bad NOOP\r\n")
        assert raw.line().startswith(b"* BAD")
        raw.send(b"\r\n")
        assert raw.line().startswith(b"* BAD")
        raw.send(b"a1 LOGIN {5}\r\n")
        assert raw.line().startswith(b"+")
        raw.send(b"alice\r\n")
        assert raw.until_tagged("a1")[-1].startswith(b"a1 BAD")
        lines = raw.ok("z1", "FETCH 1 (FLAGS)")
        assert untagged(lines, b"FETCH")
    finally:
        raw.close()


def test_huge_non_synchronizing_literal_closes_the_connection(
        imap_server_module: ImapServer) -> None:
    raw = Raw(imap_server_module)
    try:
        raw.login()
        raw.send(b"a1 APPEND INBOX {999999999999+}\r\n")
        lines = [raw.line(), raw.line()]
        assert lines[0].startswith(b"a1 BAD [TOOBIG]") and lines[1].startswith(b"* BYE")
        assert raw.closed()
    finally:
        raw.close()


def test_connections_per_user_are_limited(imap_server_factory) -> None:
    server = imap_server_factory("[imap]\nmax_connections_per_user = 2\n")
    first, second = client(server), client(server)
    third = imaplib.IMAP4(server.host, server.port, timeout=TIMEOUT)
    try:
        with pytest.raises(imaplib.IMAP4.error, match="LIMIT"):
            third.login(ALICE, ALICE_PW)
        assert client(server, BOB, BOB_PW).logout()[0] == "BYE"
        first.logout()
        time.sleep(0.3)
        assert third.login(ALICE, ALICE_PW)[0] == "OK"
    finally:
        for imap in (second, third):
            try:
                imap.logout()
            except (imaplib.IMAP4.error, OSError, ssl.SSLError):
                pass


def test_address_limit_says_bye_and_silence_is_ended_with_bye(imap_server_factory) -> None:
    server = imap_server_factory(
        "[imap]\nmax_connections_per_address = 2\nidle_timeout = 1.0\nlogin_timeout = 1.0\n")
    first, second = Raw(server), Raw(server)
    try:
        third = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        with third, third.makefile("rb") as answer:
            assert answer.readline().startswith(b"* BYE [UNAVAILABLE]")
            assert answer.readline() == b""
        second.login()
        second.ok("s1", "SELECT INBOX")
        second.send(b"i1 IDLE\r\n")
        assert second.line().startswith(b"+ ")
        started = time.monotonic()
        assert second.line().startswith(b"* BYE")  # idle_timeout, also inside IDLE
        assert time.monotonic() - started < 5
        assert first.line().startswith(b"* BYE")  # never logged in: login_timeout
    finally:
        first.close()
        second.close()


def test_shared_mailbox_login_needs_full_access(imap_server_module: ImapServer) -> None:
    server = imap_server_module
    server.deliver(BOB, message("for bob's delegate", to=BOB), "Delegated")
    raw = Raw(server)
    try:
        refused = raw.command("a1", f'LOGIN "{ALICE}!{BOB}" "{ALICE_PW}"')
        assert refused[-1].startswith(b"a1 NO [AUTHORIZATIONFAILED]"), refused
        server.grant_full_access(BOB, ALICE)
        raw.ok("a2", f'LOGIN "{ALICE}!{BOB}" "{ALICE_PW}"')
        lines = raw.ok("s1", "SELECT Delegated")
        assert b"* 1 EXISTS\r\n" in lines
        lines = raw.ok("f1", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"for bob's delegate" in lines[0]
    finally:
        raw.close()


def test_random_garbage_lines_never_disturb_the_session(imap_server_module: ImapServer) -> None:
    import random

    rng = random.Random(1234)
    raw = Raw(imap_server_module)
    try:
        raw.login()
        raw.ok("s0", "SELECT INBOX")
        alphabet = bytes(b for b in range(1, 256) if b not in b"\r\n{")
        for i in range(150):
            words = [bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
                     for _ in range(rng.randint(1, 6))]
            line = b" ".join(words)
            if rng.random() < 0.5:  # a plausible tag and command name in front
                line = b"g%d %s " % (i, rng.choice([b"FETCH", b"STORE", b"SEARCH", b"LIST",
                                                    b"UID", b"COPY", b"SELECT", b"STATUS"])) + line
            raw.send(line + b"\r\n")
            answer = raw.line()
            while answer.startswith(b"* ") and not answer.startswith(b"* BAD"):
                answer = raw.line()  # untagged data of a command that happened to parse
            assert re.match(rb"(\* BAD|g?\S* (BAD|NO|OK)) ", answer), (line, answer)
        lines = raw.ok("z1", "NOOP")
        assert lines[-1].startswith(b"z1 OK")
        lines = raw.ok("z2", 'LIST "" ""')
        assert lines[0] == b'* LIST (\\Noselect) "/" ""\r\n'
    finally:
        raw.close()


def test_proxy_protocol_gives_the_real_client_address(imap_server_factory) -> None:
    server = imap_server_factory('[imap]\nproxy_protocol = true\ntrusted_proxies = ["127.0.0.1"]\n'
                                 "max_connections_per_address = 1\n")

    def connect(source: str) -> tuple[socket.socket, bytes]:
        sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        sock.sendall(f"PROXY TCP4 {source} 127.0.0.1 40000 143\r\n".encode())
        return sock, sock.makefile("rb").readline()

    first, greeting = connect("192.0.2.10")
    second, other = connect("192.0.2.11")
    third, refused = connect("192.0.2.10")
    try:
        assert greeting.startswith(b"* OK") and other.startswith(b"* OK")
        assert refused.startswith(b"* BYE [UNAVAILABLE]")
    finally:
        for sock in (first, second, third):
            sock.close()


def test_commands_pipelined_behind_starttls_are_not_taken_over_tls(
        imap_server_module: ImapServer) -> None:
    raw = Raw(imap_server_module)
    try:
        raw.send(b"t1 STARTTLS\r\nt2 LOGIN alice@example.org alice-secret-1\r\n")
        assert raw.line().startswith(b"t1 OK")
        assert raw.closed()  # the plaintext LOGIN was refused with the connection
    finally:
        raw.close()
