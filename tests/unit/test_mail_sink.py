"""A tiny SMTP server standing in for the relayhost in the mail tests, and its own tests.

:class:`SmtpSink` listens on 127.0.0.1 (a free port), speaks enough ESMTP for
a client (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, AUTH PLAIN) and records
every message it accepted. It can temp-fail the first N transactions (451 at
MAIL FROM), refuse chosen recipients for good (550) or for now (451), leave
out extensions (SMTPUTF8, DSN) and pause before its final reply to DATA (a
client that vanished meanwhile never saw the 250, so nothing is recorded).
Also used by ``tests/integration/test_mail_queue*.py``; ``python -m
tests.unit.test_mail_sink PORT FILE`` runs one as a process that appends each
accepted message as a JSON line to FILE.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import smtplib
import ssl
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.ports import free_port


@dataclass
class Accepted:
    sender: str
    recipients: list[str]
    data: bytes
    mail_options: list[str]
    rcpt_options: dict[str, list[str]]


@dataclass
class SmtpSink:
    temp_fail_first: int = 0
    reject: set[str] = field(default_factory=set)
    """Recipients answered 550 5.1.1."""
    defer: set[str] = field(default_factory=set)
    """Recipients answered 451 4.2.0 every time."""
    smtputf8: bool = False
    dsn: bool = False
    auth: tuple[str, str] | None = None
    data_delay: float = 0.0
    record: Path | None = None
    tls: ssl.SSLContext | None = None
    """Offer STARTTLS with this server context (or, with ``implicit_tls``, start in TLS)."""
    implicit_tls: bool = False
    port: int = 0
    messages: list[Accepted] = field(default_factory=list)
    transactions: int = 0
    connections: int = 0
    secured: list[bool] = field(default_factory=list)
    """Per connection: whether it ended up in TLS."""
    in_delay: bool = False
    """True while the sink waits ``data_delay`` before answering a DATA."""
    _server: asyncio.AbstractServer | None = None

    async def start(self) -> SmtpSink:
        self.port = self.port or free_port()
        context = self.tls if self.implicit_tls else None
        self._server = await asyncio.start_server(self._session, "127.0.0.1", self.port,
                                                  ssl=context)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    def extensions(self) -> list[str]:
        found = ["PIPELINING", "SIZE 100000000", "8BITMIME", "ENHANCEDSTATUSCODES"]
        if self.smtputf8:
            found.append("SMTPUTF8")
        if self.dsn:
            found.append("DSN")
        if self.auth:
            found.append("AUTH PLAIN")
        if self.tls is not None and not self.implicit_tls:
            found.append("STARTTLS")
        return found

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1

        def send(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        sender: str | None = None
        recipients: list[str] = []
        mail_options: list[str] = []
        rcpt_options: dict[str, list[str]] = {}
        authed = self.auth is None
        self.secured.append(self.implicit_tls)
        try:
            send("220 sink.test ESMTP")
            while True:
                line = await reader.readline()
                if not line:
                    return
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                verb = text.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    lines = ["sink.test", *self.extensions()]
                    for i, ext in enumerate(lines):
                        send(f"250{'-' if i < len(lines) - 1 else ' '}{ext}")
                elif verb == "HELO":
                    send("250 sink.test")
                elif verb == "STARTTLS" and self.tls is not None:
                    send("220 2.0.0 ready to start TLS")
                    await writer.drain()
                    await writer.start_tls(self.tls)
                    self.secured[-1] = True
                    sender, recipients = None, []
                    continue
                elif verb == "AUTH":
                    parts = text.split()
                    ok = False
                    if len(parts) == 3 and parts[1].upper() == "PLAIN" and self.auth:
                        _, user, password = base64.b64decode(parts[2]).decode().split("\0")
                        ok = (user, password) == self.auth
                    authed = authed or ok
                    send("235 2.7.0 ok" if ok else "535 5.7.8 bad credentials")
                elif verb == "MAIL":
                    if not authed:
                        send("530 5.7.0 authentication required")
                        continue
                    self.transactions += 1
                    if self.transactions <= self.temp_fail_first:
                        send("451 4.3.0 try again later")
                        continue
                    address, options = _path(text[len("MAIL FROM:"):])
                    if "SMTPUTF8" in options and not self.smtputf8:
                        send("555 5.5.4 SMTPUTF8 not supported")
                        continue
                    if not address.isascii() and not self.smtputf8:
                        send("553 5.6.7 non-ASCII address without SMTPUTF8")
                        continue
                    sender, recipients, mail_options, rcpt_options = address, [], options, {}
                    send("250 2.1.0 ok")
                elif verb == "RCPT":
                    if sender is None:
                        send("503 5.5.1 MAIL first")
                        continue
                    address, options = _path(text[len("RCPT TO:"):])
                    if address in self.reject:
                        send(f"550 5.1.1 <{address}>: no such user")
                    elif address in self.defer:
                        send(f"451 4.2.0 <{address}>: try later")
                    else:
                        recipients.append(address)
                        rcpt_options[address] = options
                        send("250 2.1.5 ok")
                elif verb == "DATA":
                    if not recipients:
                        send("554 5.5.1 no valid recipients")
                        continue
                    send("354 go ahead")
                    data = await _read_data(reader)
                    if self.data_delay:
                        self.in_delay = True
                        try:
                            await asyncio.sleep(self.data_delay)
                        finally:
                            self.in_delay = False
                        if await _gone(reader):
                            return
                    accepted = Accepted(sender or "", recipients, data, mail_options,
                                        rcpt_options)
                    self.messages.append(accepted)
                    if self.record is not None:
                        with self.record.open("a") as out:
                            out.write(json.dumps({"sender": accepted.sender,
                                                  "recipients": recipients,
                                                  "data": data.decode("utf-8", "replace")})
                                      + "\n")
                    send("250 2.0.0 queued as SINK")
                    sender, recipients = None, []
                elif verb == "RSET":
                    sender, recipients = None, []
                    send("250 2.0.0 ok")
                elif verb == "NOOP":
                    send("250 2.0.0 ok")
                elif verb == "QUIT":
                    send("221 2.0.0 bye")
                    await writer.drain()
                    return
                else:
                    send("502 5.5.2 unknown command")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


def _path(rest: str) -> tuple[str, list[str]]:
    rest = rest.strip()
    address, _, options = rest.partition(">")
    return address.lstrip("<"), options.split()


async def _read_data(reader: asyncio.StreamReader) -> bytes:
    lines: list[bytes] = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed during DATA")
        if line == b".\r\n":
            return b"".join(lines)
        lines.append(line[1:] if line.startswith(b"..") else line)


async def _gone(reader: asyncio.StreamReader) -> bool:
    """Whether the client hung up (EOF waiting, nothing else)."""
    try:
        data = await asyncio.wait_for(reader.read(1), 0.05)
    except TimeoutError:
        return False
    return data == b""


# -- the sink's own tests -------------------------------------------------------------------------
async def _client(port: int, *, sender: str, recipients: list[str], body: bytes
                  ) -> tuple[dict[str, tuple[int, bytes]], Exception | None]:
    def run() -> tuple[dict[str, tuple[int, bytes]], Exception | None]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            try:
                return client.sendmail(sender, recipients, body), None
            except smtplib.SMTPException as exc:
                return {}, exc
    return await asyncio.to_thread(run)


async def test_sink_accepts_and_records() -> None:
    sink = await SmtpSink().start()
    try:
        refused, error = await _client(sink.port, sender="a@x.test", recipients=["b@y.test"],
                                       body=b"Subject: hi\r\n\r\n.leading dot\r\n")
        assert error is None and refused == {}
        assert sink.messages[0].recipients == ["b@y.test"]
        assert sink.messages[0].data == b"Subject: hi\r\n\r\n.leading dot\r\n"
    finally:
        await sink.stop()


async def test_sink_temp_fails_then_accepts_and_refuses_per_recipient() -> None:
    sink = await SmtpSink(temp_fail_first=1, reject={"no@y.test"}).start()
    try:
        _, error = await _client(sink.port, sender="a@x.test", recipients=["b@y.test"],
                                 body=b"\r\n")
        assert isinstance(error, smtplib.SMTPSenderRefused) and error.smtp_code == 451
        refused, error = await _client(sink.port, sender="a@x.test",
                                       recipients=["b@y.test", "no@y.test"], body=b"\r\n")
        assert error is None and refused["no@y.test"][0] == 550
        assert sink.messages[0].recipients == ["b@y.test"]
    finally:
        await sink.stop()


async def _serve_forever(port: int, record: Path) -> None:
    sink = await SmtpSink(port=port, record=record).start()
    try:
        await asyncio.Event().wait()
    finally:
        await sink.stop()


if __name__ == "__main__":
    asyncio.run(_serve_forever(int(sys.argv[1]), Path(sys.argv[2])))
