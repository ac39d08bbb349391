"""Benchmark: LMTP deliveries per second, the smtp plugin beside Dovecot's ``dovecot-lmtpd``.

One ``gateway serve`` (one worker, SQLite directory, ``[smtp]
delivery_listen`` on a free port) and one private Dovecot
(``tests/harness/dovecot.py``: Maildir, static userdb) in the same run. The
same client drives both: ``--connections`` parallel LMTP connections
(raw asyncio), each pipelining MAIL, the RCPTs and DATA (RFC 2920, which
LMTP servers offer) and then sending the message, one transaction after
another. Every reply is checked (250 for each recipient after the final
dot), and afterwards the messages are counted in the stores (``gateway mbox
stats``, Maildir ``new/``), so a fast refusal cannot pass for a delivery.

Rows: a 10 KB message to one recipient, and to ten recipients (one
transaction, ten per-recipient replies). Figures are messages per second
(transactions); ten recipients mean ten stored copies per message. Target
(issue 7): ours ≥ 0.5 of Dovecot's.

    .venv/bin/python -m tests.bench.lmtp_dovecot [--messages 400] [--connections 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.bench.common import (
    REPO,
    env_with_path,
    free_port,
    gateway_command,
    start,
    stop,
    wait_port,
    write_gateway_config,
)
from tests.harness.dovecot import DovecotServer, start_dovecot

DOMAIN = "example.org"
USERS = [f"user{i}@{DOMAIN}" for i in range(10)]
SENDER = "sender@remote.example"
MESSAGE_BYTES = 10 * 1024
TARGET = 0.5
ROWS = {"1 recipient": USERS[:1], "10 recipients": USERS}
T = TypeVar("T")


def message(index: int, size: int = MESSAGE_BYTES) -> bytes:
    """A plain-text message of just under ``size`` bytes (whole lines, CRLF), no line
    starting with a dot."""
    head = (f"From: Sender <{SENDER}>\r\nTo: <{USERS[0]}>\r\n"
            f"Subject: LMTP benchmark message {index}\r\n"
            f"Message-ID: <bench.{index}.{time.time_ns()}@remote.example>\r\n"
            "Date: Sun, 29 Nov 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n").encode()
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"
    body = (line * (size // len(line) + 1))[: max(0, size - len(head) - 2)]
    return head + body.rsplit(b"\r\n", 1)[0] + b"\r\n"


class LmtpError(RuntimeError):
    """The server answered something other than success."""


@dataclass
class LmtpClient:
    """One LMTP connection that pipelines each transaction's envelope."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def connect(cls, port: int) -> LmtpClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        client = cls(reader, writer)
        await client.expect(220)
        writer.write(b"LHLO bench.client\r\n")
        extensions = await client.expect(250)
        if not any(line.upper().startswith(b"PIPELINING") for line in extensions):
            raise LmtpError(f"no PIPELINING in the LHLO reply: {extensions!r}")
        return client

    async def reply(self) -> tuple[int, list[bytes]]:
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 60)
            if not line:
                raise LmtpError("connection closed by the server")
            lines.append(line[4:].rstrip(b"\r\n"))
            if line[3:4] != b"-":
                return int(line[:3]), lines

    async def expect(self, code: int) -> list[bytes]:
        got, lines = await self.reply()
        if got != code:
            raise LmtpError(f"expected {code}, got {got} {b' '.join(lines)!r}")
        return lines

    async def deliver(self, raw: bytes, recipients: list[str]) -> None:
        """One transaction: MAIL, RCPTs and DATA in one write, then the data."""
        envelope = [f"MAIL FROM:<{SENDER}>\r\n".encode()]
        envelope += [f"RCPT TO:<{rcpt}>\r\n".encode() for rcpt in recipients]
        self.writer.write(b"".join(envelope) + b"DATA\r\n")
        await self.expect(250)
        for _ in recipients:
            await self.expect(250)
        await self.expect(354)
        self.writer.write(raw + b".\r\n")  # message() has no line starting with "."
        for _ in recipients:  # LMTP: one reply per recipient
            await self.expect(250)

    async def close(self) -> None:
        self.writer.write(b"QUIT\r\n")
        try:
            await asyncio.wait_for(self.reply(), 5)
        except (LmtpError, TimeoutError, ConnectionError):
            pass
        self.writer.close()


async def _drive(port: int, raw: list[bytes], recipients: list[str], connections: int) -> float:
    """Deliver every message of ``raw`` over ``connections`` connections; seconds taken."""
    clients = [await LmtpClient.connect(port) for _ in range(connections)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for item in raw:
        queue.put_nowait(item)

    async def work(client: LmtpClient) -> None:
        while not queue.empty():
            await client.deliver(queue.get_nowait(), recipients)

    began = time.perf_counter()
    try:
        await asyncio.gather(*(work(client) for client in clients))
        return time.perf_counter() - began
    finally:
        for client in clients:
            await client.close()


def rate(port: int, count: int, recipients: list[str], connections: int, first: int) -> float:
    """Messages per second for ``count`` deliveries to ``recipients``."""
    raw = [message(first + i) for i in range(count)]
    seconds = asyncio.run(_drive(port, raw, recipients, min(connections, count)))
    return count / seconds


# -- the two servers ----------------------------------------------------------------------------


async def _with_host(conf: Path, env: dict[str, str], work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(host)`` on a host built from the gateway's config (no listeners)."""
    from gateway.host import Host, load_config

    config, pm, plugins = load_config([conf], env)
    host = Host(config, pm, plugins, environ=env)
    await host.startup()
    try:
        return await work(host)
    finally:
        await host.shutdown()


def create_users(conf: Path, env: dict[str, str]) -> None:
    """What ``gateway domain add`` and ``gateway user add`` do, in one process."""
    from gateway.directory import admin

    async def work(host: Any) -> None:
        engine = host.directory.engine
        await admin.add_domain(engine, DOMAIN)
        for address in USERS:
            await admin.add_user(engine, address)
            mailbox = await host.store.create(address)
            await admin.set_maildir(engine, address, str(mailbox.path))

    asyncio.run(_with_host(conf, env, work))


def gateway_inbox_counts(conf: Path, env: dict[str, str]) -> dict[str, int]:
    """Messages in each user's Inbox, as ``gateway mbox stats`` counts them."""
    from gateway.store import Private
    from gateway.store.check import store_stats

    async def work(host: Any) -> dict[str, int]:
        counts = {}
        for address in USERS:
            report = await (await host.store.open(address)).read(store_stats)
            counts[address] = sum(row["messages"] for row in report["folders"]
                                  if row["id"] == int(Private.INBOX))
        return counts

    return asyncio.run(_with_host(conf, env, work))


def dovecot_inbox_count(server: DovecotServer, address: str) -> int:
    maildir = server.maildir(address)
    return sum(len(list((maildir / sub).iterdir())) for sub in ("new", "cur")
               if (maildir / sub).is_dir())


def run(messages: int = 400, connections: int = 4, rounds: int = 1) -> dict[str, float]:
    """Measure both servers; return ``{"<row> ours": msg/s, "<row> dovecot": ..., ratio}``."""
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gw-bench-lmtp-") as tmp:
        work = Path(tmp)
        env = env_with_path()
        http_port, lmtp_port = free_port(), free_port()
        conf = work / "gateway" / "conf"
        write_gateway_config(conf, http_port,
                             '[plugins]\ndisabled = ["imap"]\n'
                             f'[smtp]\ndelivery_listen = ["127.0.0.1:{lmtp_port}"]\n'
                             "submission_listen = []\nsubmission_listen_tls = []\n"
                             f"max_recipients = {len(USERS)}\n")
        create_users(conf, env)
        gateway = start(gateway_command(conf), work / "gateway.log", env, REPO)
        dovecot = None
        try:
            wait_port(lmtp_port, gateway)
            dovecot = start_dovecot(work, imap=False, lmtp=True,
                                    users={address: "unused" for address in USERS})
            assert dovecot.lmtp_port is not None
            ports = {"ours": lmtp_port, "dovecot": dovecot.lmtp_port}
            sent = 0
            for port in ports.values():  # warm-up: processes, caches, mailboxes
                rate(port, min(10, messages), USERS, connections, sent)
            sent += min(10, messages)
            expected = {address: sent for address in USERS}
            for row, recipients in ROWS.items():
                samples: dict[str, list[float]] = {name: [] for name in ports}
                for _ in range(rounds):
                    for name, port in ports.items():
                        samples[name].append(rate(port, messages, recipients, connections,
                                                  sent))
                    sent += messages
                    for address in recipients:
                        expected[address] += messages
                for name in ports:
                    figures[f"{row} {name}"] = statistics.median(samples[name])
                figures[f"{row} ratio"] = figures[f"{row} ours"] / figures[f"{row} dovecot"]
            stored = gateway_inbox_counts(conf, env)
            for address, count in expected.items():
                ours = stored[address]
                theirs = dovecot_inbox_count(dovecot, address)
                if ours != count or theirs != count:
                    raise RuntimeError(f"{address}: expected {count} messages, the gateway "
                                       f"stored {ours}, Dovecot {theirs}")
        except BaseException:
            log = (work / "gateway.log").read_text(errors="replace")[-3000:]
            print(f"gateway log (tail):\n{log}", file=sys.stderr)
            raise
        finally:
            stop(gateway)
            if dovecot is not None:
                dovecot.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=400, help="messages per row and server")
    parser.add_argument("--connections", type=int, default=4, help="parallel LMTP connections")
    parser.add_argument("--rounds", type=int, default=1, help="alternating runs per row (median)")
    args = parser.parse_args()
    figures = run(args.messages, args.connections, args.rounds)
    print(f"LMTP deliveries, {MESSAGE_BYTES // 1024} KB message, {args.messages} messages per "
          f"row, {args.connections} connections, pipelined; median of {args.rounds} round(s)")
    print(f"{'row':<15} {'ours msg/s':>11} {'Dovecot msg/s':>14} {'ratio':>7}  target")
    for row in ROWS:
        ratio = figures[f"{row} ratio"]
        verdict = "ok" if ratio >= TARGET else "BELOW"
        print(f"{row:<15} {figures[f'{row} ours']:>11.1f} {figures[f'{row} dovecot']:>14.1f} "
              f"{ratio:>7.3f}  >= {TARGET} {verdict}")


if __name__ == "__main__":
    main()
