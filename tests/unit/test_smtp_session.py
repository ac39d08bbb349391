"""The SMTP/LMTP engine over real loopback sockets, with a recording policy.

Every command with wrong arguments, out of order, pipelined; line limits,
bare CR/LF, NUL bytes, size limits, smuggling, per-recipient LMTP replies,
a connection dropped mid-DATA, error limits and idle timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from gateway.net import Connection, TcpServer, TcpService, bind_socket
from plugins.smtp.grammar import MailFrom, RcptTo
from plugins.smtp.replies import Reply
from plugins.smtp.session import Envelope, Session
from plugins.smtp.settings import SmtpSection
from tests.harness.ports import free_port


@dataclass
class RecordingPolicy:
    """Accepts everything but ``unknown@``/``full@`` recipients; records messages."""

    name: str = "test"
    greetings: frozenset[str] = frozenset({"LHLO", "EHLO", "HELO"})
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse_at_data: set[str] = field(default_factory=set)

    async def on_connect(self, session: Session) -> Reply | None:
        return None

    def keywords(self, session: Session) -> list[str]:
        return []

    async def on_auth(self, session: Session, args: str) -> Reply:
        return Reply(502, "5.5.1", "no AUTH here")

    async def on_mail(self, session: Session, mail: MailFrom) -> Reply:
        return Reply(250, "2.1.0", "sender ok")

    async def on_rcpt(self, session: Session, envelope: Envelope, rcpt: RcptTo) -> Reply:
        if rcpt.address.startswith("unknown@"):
            return Reply(550, "5.1.1", "no such user")
        if rcpt.address.startswith("full@"):
            return Reply(452, "4.2.2", "mailbox full")
        return Reply(250, "2.1.5", "ok")

    async def on_data(self, session: Session, envelope: Envelope, raw: bytes) -> list[Reply]:
        addresses = [r.address for r in envelope.recipients]
        self.messages.append((envelope.mail.sender, addresses, raw))
        return [Reply(452, "4.2.2", f"{a} full") if a in self.refuse_at_data
                else Reply(250, "2.0.0", f"{a} stored") for a in addresses]


class Client:
    """A raw SMTP client: exact bytes out, whole (multi-line) replies in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 5)
            assert line.endswith(b"\r\n"), f"reply line without CRLF: {line!r}"
            lines.append(line[4:-2].decode())
            if line[3:4] == b" ":
                return int(line[:3]), "\n".join(lines)
            assert line[3:4] == b"-", line

    async def command(self, line: str | bytes) -> tuple[int, str]:
        await self.send(line.encode() + b"\r\n" if isinstance(line, str) else line)
        return await self.reply()

    async def closed(self) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(1), 5) == b""
        except ConnectionError:
            return True


@dataclass
class Engine:
    policy: RecordingPolicy
    port: int
    settings: SmtpSection

    @contextlib.asynccontextmanager
    async def connect(self, greet: str | None = "EHLO client.test") -> AsyncIterator[Client]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        client = Client(reader, writer)
        code, text = await client.reply()
        assert code == 220, text
        if greet:
            code, text = await client.command(greet)
            assert code == 250, text
        try:
            yield client
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def small_settings(**changes: object) -> SmtpSection:
    values: dict[str, object] = {"max_message_bytes": 10_000, "max_recipients": 3,
                                 "max_errors": 30, "max_hops": 5}
    values.update(changes)
    return SmtpSection(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(policy: RecordingPolicy, settings: SmtpSection,
                  idle_timeout: float = 30.0) -> AsyncIterator[Engine]:
    port = free_port()

    async def handler(conn: Connection) -> None:
        await Session(conn, policy, settings, "mx.test").run()

    service = TcpService("smtp-test", handler, listen=[f"127.0.0.1:{port}"],
                         max_line_bytes=4096, idle_timeout=idle_timeout)
    sock = bind_socket(f"127.0.0.1:{port}")
    server = TcpServer(service, None)
    await server.start([sock], [])
    try:
        yield Engine(policy, port, settings)
    finally:
        await server.close(1.0)
        sock.close()


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    async with running(RecordingPolicy(), small_settings()) as started:
        yield started


# -- greeting and EHLO ----------------------------------------------------------------------------


async def test_ehlo_lists_the_extensions(engine: Engine) -> None:
    async with engine.connect(greet=None) as c:
        code, text = await c.command("EHLO client.test")
        assert code == 250
        lines = text.split("\n")
        assert lines[0] == "mx.test greets client.test"
        assert {"PIPELINING", "SIZE 10000", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
                "DSN"} <= set(lines[1:])
        assert "STARTTLS" not in lines and not any(x.startswith("AUTH") for x in lines)
        assert (await c.command("HELO client.test"))[0] == 250
        assert (await c.command("LHLO client.test"))[0] == 250


@pytest.mark.parametrize("line", ["EHLO", "EHLO ", "HELO", "LHLO", "EHLO two words"])
async def test_greeting_needs_one_domain(engine: Engine, line: str) -> None:
    async with engine.connect(greet=None) as c:
        code, text = await c.command(line)
        assert code == 501 and text.startswith("5.5.4"), text


async def test_greeting_verb_not_accepted_by_policy() -> None:
    policy = RecordingPolicy(greetings=frozenset({"EHLO", "HELO"}))
    async with running(policy, small_settings()) as eng, eng.connect(greet=None) as c:
        code, text = await c.command("LHLO client.test")
        assert code == 500 and "use EHLO/HELO" in text


# -- ordering -------------------------------------------------------------------------------------


async def test_commands_out_of_order(engine: Engine) -> None:
    async with engine.connect(greet=None) as c:
        assert (await c.command("MAIL FROM:<a@example.test>"))[0] == 503
        assert (await c.command("RCPT TO:<b@example.test>"))[0] == 503
        assert (await c.command("DATA"))[0] == 503
        assert (await c.command("EHLO client.test"))[0] == 250
        code, text = await c.command("RCPT TO:<b@example.test>")
        assert code == 503 and "need MAIL" in text
        code, text = await c.command("DATA")
        assert code == 503 and text.startswith("5.5.1")
        assert (await c.command("MAIL FROM:<a@example.test>"))[0] == 250
        code, text = await c.command("MAIL FROM:<a@example.test>")
        assert code == 503 and "already open" in text
        code, text = await c.command("DATA")
        assert code == 554 and "no valid recipients" in text
        assert (await c.command("RCPT TO:<unknown@example.test>"))[0] == 550
        assert (await c.command("DATA"))[0] == 554
        assert (await c.command("RSET"))[0] == 250
        assert (await c.command("RCPT TO:<b@example.test>"))[0] == 503
        assert (await c.command("MAIL FROM:<>"))[0] == 250
    assert engine.policy.messages == []


async def test_ehlo_resets_the_transaction(engine: Engine) -> None:
    async with engine.connect() as c:
        assert (await c.command("MAIL FROM:<a@example.test>"))[0] == 250
        assert (await c.command("EHLO again.test"))[0] == 250
        assert (await c.command("RCPT TO:<b@example.test>"))[0] == 503


# -- wrong arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "code", "enhanced"), [
    ("MAIL", 501, "5.5.4"),
    ("MAIL TO:<a@example.test>", 501, "5.5.4"),
    ("MAIL FROM:a@example.test", 501, "5.1.7"),
    ("MAIL FROM:<a@example.test", 501, "5.1.7"),
    ("MAIL FROM:<a@@example.test>", 501, "5.1.7"),
    ("MAIL FROM:<a@exa mple.test>", 501, "5.1.7"),
    ("MAIL FROM:<@example.test>", 501, "5.1.7"),
    ("MAIL FROM:<a.@example.test>", 501, "5.1.7"),
    ("MAIL FROM:<a@-example.test>", 501, "5.1.7"),
    ("MAIL FROM:<a@example.test.>", 501, "5.1.7"),
    ("MAIL FROM:<" + "a" * 65 + "@example.test>", 501, "5.1.7"),
    ("MAIL FROM:<a@" + "b" * 250 + ".test>", 501, "5.1.7"),
    ("MAIL FROM:<a@example.test>x", 501, "5.1.7"),
    ("MAIL FROM:<a@example.test> FOO=1", 555, "5.5.4"),
    ("MAIL FROM:<a@example.test> SIZE=abc", 501, "5.5.4"),
    ("MAIL FROM:<a@example.test> SIZE=", 501, "5.5.4"),
    ("MAIL FROM:<a@example.test> SIZE=1 SIZE=2", 501, "5.5.4"),
    ("MAIL FROM:<a@example.test> SIZE=10001", 552, "5.3.4"),
    ("MAIL FROM:<a@example.test> SIZE=" + "9" * 30, 501, "5.5.4"),
    ("MAIL FROM:<a@example.test> BODY=BINARYMIME", 555, "5.5.4"),
    ("MAIL FROM:<a@example.test> RET=ALL", 501, "5.5.4"),
    ("MAIL FROM:<a@example.test> ENVID=a=b", 501, "5.5.4"),
    ("MAIL FROM:<a@example.test> SMTPUTF8=yes", 501, "5.5.4"),
    ("MAIL FROM:<ä@example.test>", 553, "5.6.7"),
])
async def test_mail_with_wrong_arguments(engine: Engine, line: str, code: int,
                                         enhanced: str) -> None:
    async with engine.connect() as c:
        got, text = await c.command(line)
        assert (got, text[:5]) == (code, enhanced), text
        assert (await c.command("MAIL FROM:<a@example.test>"))[0] == 250  # nothing was opened


@pytest.mark.parametrize(("line", "code", "enhanced"), [
    ("RCPT", 501, "5.5.4"),
    ("RCPT FROM:<b@example.test>", 501, "5.5.4"),
    ("RCPT TO:<>", 501, "5.1.3"),
    ("RCPT TO:b@example.test", 501, "5.1.3"),
    ("RCPT TO:<b>", 501, "5.1.3"),
    ("RCPT TO:<b@example.test> NOTIFY=SOMETIMES", 501, "5.5.4"),
    ("RCPT TO:<b@example.test> NOTIFY=NEVER,SUCCESS", 501, "5.5.4"),
    ("RCPT TO:<b@example.test> NOTIFY=SUCCESS,SUCCESS", 501, "5.5.4"),
    ("RCPT TO:<b@example.test> ORCPT=b@example.test", 501, "5.5.4"),
    ("RCPT TO:<b@example.test> ORCPT=rfc822;a+2", 501, "5.5.4"),
    ("RCPT TO:<b@example.test> SIZE=1", 555, "5.5.4"),
    ("RCPT TO:<bö@example.test>", 553, "5.6.7"),
])
async def test_rcpt_with_wrong_arguments(engine: Engine, line: str, code: int,
                                         enhanced: str) -> None:
    async with engine.connect() as c:
        assert (await c.command("MAIL FROM:<a@example.test>"))[0] == 250
        got, text = await c.command(line)
        assert (got, text[:5]) == (code, enhanced), text


@pytest.mark.parametrize(("line", "code"), [
    ("RSET now", 501), ("QUIT now", 501), ("DATA now", 501), ("VRFY", 501),
    ("STARTTLS now", 501), ("STARTTLS", 502), ("FROB", 500), ("BDAT 10 LAST", 502),
    ("EXPN list", 502), ("AUTH PLAIN", 502),
])
async def test_other_commands_with_wrong_arguments(engine: Engine, line: str, code: int) -> None:
    async with engine.connect() as c:
        got, text = await c.command(line)
        assert got == code, text
        assert (await c.command("NOOP"))[0] == 250


async def test_vrfy_help_noop(engine: Engine) -> None:
    async with engine.connect() as c:
        assert (await c.command("VRFY someone"))[0] == 252
        code, text = await c.command("HELP")
        assert code == 214 and "MAIL" in text
        assert (await c.command("NOOP anything"))[0] == 250
        code, text = await c.command("quit")
        assert code == 221
        assert await c.closed()


async def test_parameters_need_ehlo(engine: Engine) -> None:
    async with engine.connect(greet="HELO client.test") as c:
        code, _ = await c.command("MAIL FROM:<a@example.test> SIZE=10")
        assert code == 555
        assert (await c.command("MAIL FROM:<a@example.test>"))[0] == 250


async def test_dsn_and_size_parameters_are_parsed() -> None:
    seen: list[tuple[MailFrom, RcptTo]] = []

    class Keeping(RecordingPolicy):
        async def on_rcpt(self, session: Session, envelope: Envelope, rcpt: RcptTo) -> Reply:
            seen.append((envelope.mail, rcpt))
            return Reply(250, "2.1.5", "ok")

    async with running(Keeping(), small_settings()) as eng, eng.connect() as c:
        assert (await c.command("MAIL FROM:<a@example.test> SIZE=500 BODY=8BITMIME "
                                "RET=HDRS ENVID=QQ+2B1"))[0] == 250
        assert (await c.command("RCPT TO:<b@example.test> NOTIFY=SUCCESS,FAILURE "
                                "ORCPT=rfc822;b+2Bx@example.test"))[0] == 250
    mail, rcpt = seen[0]
    assert (mail.size, mail.body, mail.ret, mail.envid) == (500, "8BITMIME", "HDRS", "QQ+1")
    assert rcpt.notify == ("SUCCESS", "FAILURE") and rcpt.orcpt == "rfc822;b+x@example.test"


async def test_smtputf8_addresses_and_source_routes(engine: Engine) -> None:
    async with engine.connect() as c:
        assert (await c.command("MAIL FROM:<jörg@bücher.test> SMTPUTF8"))[0] == 250
        assert (await c.command("RCPT TO:<ünal@example.test>"))[0] == 250
        assert (await c.command("RCPT TO:<@relay.test,@other.test:b@example.test>"))[0] == 250
        assert (await c.command('RCPT TO:<"odd local"@example.test>'))[0] == 250
        assert (await c.command("RCPT TO:<c@[192.0.2.1]>"))[0] == 452  # max_recipients 3


# -- line discipline ------------------------------------------------------------------------------


async def test_command_line_limits_and_bad_bytes(engine: Engine) -> None:
    async with engine.connect() as c:
        code, text = await c.command("NOOP " + "x" * 995)  # 1000 + CRLF
        assert code == 500 and "too long" in text
        assert (await c.command("NOOP " + "x" * 993))[0] == 250  # exactly 998 + CRLF
        code, text = await c.command(b"NOOP " + b"y" * 6000 + b"\r\n")  # over the buffer
        assert code == 500 and "too long" in text
        assert (await c.command(b"NOOP\n"))[0] == 500
        assert (await c.command(b"NOOP\x00\r\n"))[0] == 500
        assert (await c.command(b"NOOP \xff\xfe\r\n"))[0] == 500
        assert (await c.command("NOOP ä"))[0] == 500
        assert (await c.command("NOOP"))[0] == 250


async def test_crlf_injection_in_envelope_values(engine: Engine) -> None:
    async with engine.connect() as c:
        code, text = await c.command(b"MAIL FROM:<a@example.test>\rRCPT TO:<x@evil.test>\r\n")
        assert code == 500 and "bare CR" in text
        assert (await c.command("MAIL FROM:<a@example.test>"))[0] == 250
        code, _ = await c.command(b"RCPT TO:<b@example.test>\nRCPT TO:<c@evil.test>\r\n")
        assert code == 500  # the bare-LF line is refused ...
        code, _ = await c.reply()  # ... and what followed it is a line of its own
        assert code == 250
        code, text = await c.command("RCPT TO:<b@exa\tmple.test>")
        assert code == 501
    assert engine.policy.messages == []


# -- data -----------------------------------------------------------------------------------------


async def test_pipelined_transaction(engine: Engine) -> None:
    async with engine.connect() as c:
        await c.send(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n"
                     b"RCPT TO:<unknown@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n")
        assert [(await c.reply())[0] for _ in range(5)] == [250, 250, 550, 250, 354]
        await c.send(b"Subject: hi\r\n\r\n..leading dot\r\n.\r\n"
                     b"MAIL FROM:<>\r\nRCPT TO:<d@example.test>\r\nDATA\r\n")
        assert [(await c.reply())[0] for _ in range(4)] == [250, 250, 250, 354]
        code, _ = await c.command(b"second\r\n.\r\n")
        assert code == 250
        assert (await c.command("QUIT"))[0] == 221
    first, second = engine.policy.messages
    assert first == ("a@example.test", ["b@example.test", "c@example.test"],
                     b"Subject: hi\r\n\r\n.leading dot\r\n")
    assert second == ("", ["d@example.test"], b"second\r\n")


async def _transaction(c: Client, body: bytes) -> tuple[int, str]:
    assert (await c.command("MAIL FROM:<a@example.test>"))[0] == 250
    assert (await c.command("RCPT TO:<b@example.test>"))[0] == 250
    assert (await c.command("DATA"))[0] == 354
    return await c.command(body)


@pytest.mark.parametrize(("body", "code"), [
    (b"a bare\nLF\r\n.\r\n", 554),
    (b"a bare\rCR\r\n.\r\n", 554),
    (b"a NUL \x00\r\n.\r\n", 554),
    (b"x" * 999 + b"\r\n.\r\n", 554),
    (b"x" * 5000 + b"\r\n.\r\n", 554),
    ((b"y" * 98 + b"\r\n") * 101 + b".\r\n", 552),
])
async def test_refused_data_stores_nothing(engine: Engine, body: bytes, code: int) -> None:
    async with engine.connect() as c:
        got, text = await _transaction(c, body)
        assert got == code, text
        assert (await c.command("NOOP"))[0] == 250  # still in step
        got, _ = await _transaction(c, b"x" * 998 + b"\r\n.\r\n")
        assert got == 250
    assert [m[2] for m in engine.policy.messages] == [b"x" * 998 + b"\r\n"]


async def test_smuggled_message_stays_inside_the_data(engine: Engine) -> None:
    async with engine.connect() as c:
        got, text = await _transaction(
            c, b"Subject: one\r\n\r\nbody\n.\r\nMAIL FROM:<evil@example.test>\r\n"
               b"RCPT TO:<b@example.test>\r\nDATA\r\n\r\nsmuggled\r\n.\r\n")
        assert got == 554, text
        assert (await c.command("NOOP"))[0] == 250
    assert engine.policy.messages == []


async def test_too_many_hops(engine: Engine) -> None:
    async with engine.connect() as c:
        got, text = await _transaction(c, b"Received: x\r\n" * 6 + b"\r\nloop\r\n.\r\n")
        assert (got, text[:5]) == (554, "5.4.6")
        got, _ = await _transaction(c, b"Received: x\r\n" * 5 + b"\r\nok\r\n.\r\n")
        assert got == 250


async def test_dropped_connection_mid_data_delivers_nothing(engine: Engine) -> None:
    async with engine.connect() as c:
        assert (await c.command("MAIL FROM:<a@example.test>"))[0] == 250
        assert (await c.command("RCPT TO:<b@example.test>"))[0] == 250
        assert (await c.command("DATA"))[0] == 354
        await c.send(b"Subject: half\r\n\r\nsome of it\r\n")
    await asyncio.sleep(0.2)
    assert engine.policy.messages == []


async def test_lmtp_answers_each_recipient() -> None:
    policy = RecordingPolicy(refuse_at_data={"c@example.test"})
    async with running(policy, small_settings()) as eng, eng.connect("LHLO mta.test") as c:
        assert (await c.command("RCPT TO:<b@example.test>"))[0] == 503
        assert (await c.command("MAIL FROM:<a@example.test>"))[0] == 250
        for rcpt, expected in (("b", 250), ("unknown", 550), ("c", 250), ("full", 452),
                               ("d", 250)):
            assert (await c.command(f"RCPT TO:<{rcpt}@example.test>"))[0] == expected
        assert (await c.command("DATA"))[0] == 354
        await c.send(b"hello\r\n.\r\n")
        replies = [await c.reply() for _ in range(3)]
        assert [r[0] for r in replies] == [250, 452, 250]
        assert "b@example.test" in replies[0][1] and "c@example.test" in replies[1][1]
        assert (await c.command("NOOP"))[0] == 250  # nothing more was sent


async def test_smtp_folds_per_recipient_results() -> None:
    policy = RecordingPolicy(refuse_at_data={"c@example.test"})
    async with running(policy, small_settings()) as eng, eng.connect() as c:
        assert (await c.command("MAIL FROM:<a@example.test>"))[0] == 250
        assert (await c.command("RCPT TO:<b@example.test>"))[0] == 250
        assert (await c.command("RCPT TO:<c@example.test>"))[0] == 250
        assert (await _data(c, b"x\r\n.\r\n"))[0] == 250
        assert (await c.command("MAIL FROM:<a@example.test>"))[0] == 250
        assert (await c.command("RCPT TO:<c@example.test>"))[0] == 250
        assert (await _data(c, b"x\r\n.\r\n"))[0] == 452


async def _data(c: Client, body: bytes) -> tuple[int, str]:
    assert (await c.command("DATA"))[0] == 354
    return await c.command(body)


# -- limits ---------------------------------------------------------------------------------------


async def test_too_many_errors_disconnects() -> None:
    async with running(RecordingPolicy(), small_settings(max_errors=3)) as eng, \
            eng.connect() as c:
        for _ in range(3):
            assert (await c.command("FROB"))[0] == 500
        code, text = await c.reply()
        assert code == 421 and text.startswith("4.7.0")
        assert await c.closed()


async def test_idle_client_is_told_and_closed() -> None:
    async with running(RecordingPolicy(), small_settings(), idle_timeout=0.3) as eng, \
            eng.connect() as c:
        code, text = await c.reply()
        assert code == 421 and text.startswith("4.4.2")
        assert await c.closed()


async def test_a_failing_policy_check_is_a_temporary_failure() -> None:
    class Broken(RecordingPolicy):
        async def on_rcpt(self, session: Session, envelope: Envelope, rcpt: RcptTo) -> Reply:
            raise OSError("directory down")

        async def on_data(self, session: Session, envelope: Envelope,
                          raw: bytes) -> list[Reply]:
            raise OSError("store down")

    async with running(Broken(), small_settings()) as eng, eng.connect() as c:
        assert (await c.command("MAIL FROM:<a@example.test>"))[0] == 250
        code, text = await c.command("RCPT TO:<b@example.test>")
        assert (code, text[:5]) == (451, "4.3.0")

    class BrokenData(RecordingPolicy):
        async def on_data(self, session: Session, envelope: Envelope,
                          raw: bytes) -> list[Reply]:
            raise OSError("store down")

    async with running(BrokenData(), small_settings()) as eng, eng.connect() as c:
        code, text = await _transaction(c, b"x\r\n.\r\n")
        assert (code, text[:5]) == (451, "4.3.0")
        assert (await c.command("NOOP"))[0] == 250


async def test_auth_exchange_lines_are_checked() -> None:
    from plugins.smtp import auth

    class Authenticating(RecordingPolicy):
        async def on_auth(self, session: Session, args: str) -> Reply:
            # malformed exchanges are refused before the host is asked anything
            return await auth.authenticate(None, session, args,  # type: ignore[arg-type]
                                           allow_plaintext=True)

    async with running(Authenticating(), small_settings()) as eng, eng.connect() as c:
        assert (await c.command("AUTH PLAIN"))[0] == 334
        code, text = await c.command(b"A" * 5000 + b"\r\n")
        assert (code, text[:5]) == (501, "5.5.2")
        assert (await c.command("AUTH LOGIN"))[0] == 334
        code, text = await c.command(b"dXNlcg==\rx\r\n")
        assert (code, text[:5]) == (501, "5.5.2")
        assert (await c.command("AUTH PLAIN dXNlcg=="))[0] == 501  # "user": no NUL at all
        assert (await c.command("NOOP"))[0] == 250
