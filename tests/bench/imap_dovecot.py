"""IMAP beside Dovecot, same machine, same run (``python -m tests.bench.imap_dovecot``).

Imports the same N messages (default 10,000: ``tests/corpus/mail`` cycled,
each with its own Message-ID and subject tag) into the gateway (``gateway
mbox import`` of a Maildir, before it starts) and into a private Dovecot (the
same files written into its Maildir), then times on each server, with the
same raw-socket client (so the client is not what is measured):

- SELECT INBOX again in the same session (after one warm-up SELECT, which lets
  Dovecot build its index), and connect + LOGIN + SELECT INBOX on a new connection;
- FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE);
- UID FETCH BODY.PEEK[] of 1,000 random messages (one command);
- UID SEARCH HEADER Message-ID, UID SEARCH SUBJECT (20 each), UID SEARCH TEXT (3);
- APPEND of 1,000 messages, one after another, each waiting for its OK
  (LITERAL+ where the server offers it);
- N connections (default 1,000) logged in, INBOX selected, in IDLE: growth of
  the server's memory per connection (the gateway's processes' RSS and PSS; the
  sum of PSS over Dovecot's processes, one ``imap`` process per connection);
  then, with those still open, N more in IDLE on an empty folder.

Prints a table: row, ours, Dovecot, ratio (our throughput / Dovecot's;
for IDLE Dovecot's memory per connection / ours, where ours is the gateway
process's RSS growth and Dovecot's the growth of PSS summed over its
processes, RSS counting the pages they share once per process). Targets (issue 6): ratio
>= 0.5 on every row, IDLE <= 30 KiB per connection.

    .venv/bin/python -m tests.bench.imap_dovecot [--messages 10000] [--idle 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

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
from tests.integration.imap_scripts import corpus_cycle, message_date

USER = "alice@example.org"
PASSWORD = "alice-bench-secret"
CHUNK = 1 << 18
IDLE_BATCH = 50


class ImapError(RuntimeError):
    """A command was not answered OK."""


class RawImap:
    """A minimal blocking IMAP client on a socket: commands out, whole responses in.

    Literals in responses are read by count and, unless ``keep`` is asked for,
    only counted, so reading 1,000 message bodies costs the client little.
    """

    def __init__(self, host: str, port: int, timeout: float = 300.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = bytearray()
        self.tags = 0
        self.greeting = self.readline()
        self.capabilities: set[str] = set()

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        data = self.sock.recv(CHUNK)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data

    def readline(self) -> bytes:
        start = 0
        while True:
            end = self.buf.find(b"\r\n", start)
            if end >= 0:
                line = bytes(self.buf[:end + 2])
                del self.buf[:end + 2]
                return line
            start = max(0, len(self.buf) - 1)
            self._fill()

    def skip(self, count: int, keep: bool) -> bytes:
        while len(self.buf) < count:
            self._fill()
        data = bytes(self.buf[:count]) if keep else b""
        del self.buf[:count]
        return data

    def response(self, tag: bytes, keep: bool = False) -> tuple[list[bytes], int]:
        """Read until the tagged line; (untagged lines, literal bytes). Raises on NO/BAD."""
        lines: list[bytes] = []
        literal_bytes = 0
        current = b""
        while True:
            line = self.readline()
            if line.endswith(b"}\r\n") and b"{" in line:
                count = int(line[line.rindex(b"{") + 1:-3].rstrip(b"+"))
                literal_bytes += count
                current += line + self.skip(count, keep)
                continue
            line = current + line
            current = b""
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].startswith(b"OK"):
                    raise ImapError(line.decode(errors="replace").strip())
                return lines, literal_bytes
            lines.append(line)

    def command(self, text: str, keep: bool = False) -> tuple[list[bytes], int]:
        self.tags += 1
        tag = b"b%d" % self.tags
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        return self.response(tag, keep)

    def login(self, user: str, password: str) -> None:
        self.command(f'LOGIN "{user}" "{password}"')
        caps, _ = self.command("CAPABILITY")
        for line in caps:
            if line.startswith(b"* CAPABILITY"):
                self.capabilities = set(line.decode().upper().split()[2:])

    def append(self, mailbox: str, raw: bytes) -> None:
        self.tags += 1
        tag = b"b%d" % self.tags
        if "LITERAL+" in self.capabilities:
            self.sock.sendall(tag + f' APPEND "{mailbox}" {{{len(raw)}+}}\r\n'.encode()
                              + raw + b"\r\n")
        else:
            self.sock.sendall(tag + f' APPEND "{mailbox}" {{{len(raw)}}}\r\n'.encode())
            line = self.readline()
            if not line.startswith(b"+"):
                raise ImapError(f"no continuation for APPEND: {line!r}")
            self.sock.sendall(raw + b"\r\n")
        self.response(tag)


# -- servers ---------------------------------------------------------------------------------


@dataclass
class Peer:
    name: str
    port: int
    pids: Callable[[], list[int]]
    stop: Callable[[], None]


def write_maildir(directory: Path, messages: Sequence[bytes]) -> Path:
    """``messages`` as a Maildir (cur/, seen flag on every other one), names in order."""
    for sub in ("cur", "new", "tmp"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    for index, raw in enumerate(messages):
        flags = "S" if index % 2 else ""
        (directory / "cur" / f"{stamp}.M{index:07d}P1.bench,S={len(raw)}:2,{flags}").write_bytes(
            raw)
    return directory


def gateway_cli(config_dir: Path, *args: str, stdin: str | None = None) -> None:
    command = [sys.executable, "-m", "gateway", "--config-dir", str(config_dir), *args]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=3600,
                          env=env_with_path(), cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"gateway {' '.join(args)} failed: {done.stderr}")


def start_ours(work: Path, maildir: Path) -> Peer:
    http_port, imap_port = free_port(), free_port()
    config = work / "conf"
    write_gateway_config(config, http_port, (
        f'[imap]\nlisten = ["127.0.0.1:{imap_port}"]\nlisten_tls = []\n'
        "allow_plaintext_auth = true\nmax_connections_per_user = 0\n"
        "max_connections_per_address = 0\n"))
    gateway_cli(config, "domain", "add", "example.org")
    gateway_cli(config, "user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
    started = time.perf_counter()
    gateway_cli(config, "mbox", "import", USER, "Inbox", str(maildir))
    print(f"  gateway: imported in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    proc = start(gateway_command(config), work / "gateway.log", env_with_path(), REPO)
    try:
        wait_port(imap_port, proc)
    except RuntimeError as exc:
        stop(proc)
        raise RuntimeError(f"gateway did not start:\n{(work / 'gateway.log').read_text()}") from exc
    return Peer("gateway", imap_port, lambda: process_tree(proc.pid), lambda: stop(proc))


def start_peer(work: Path, messages: Sequence[bytes]) -> Peer:
    server: DovecotServer = start_dovecot(work, imap=True, lmtp=False,
                                          users={USER: PASSWORD})
    started = time.perf_counter()
    server.import_messages(USER, messages, dates=[message_date(m) for m in messages])
    print(f"  dovecot: imported in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return Peer("dovecot", server.port, lambda: process_tree(server.proc.pid), server.stop)


def process_tree(pid: int) -> list[int]:
    found = [pid]
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            kids = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += map(int, kids)
        todo += map(int, kids)
    return found


def memory_kib(pids: Sequence[int]) -> tuple[int, int]:
    """(sum of VmRSS, sum of Pss) in KiB over ``pids`` (processes gone are skipped)."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


# -- measurements ----------------------------------------------------------------------------


def timed(work: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(peer: Peer, count: int, bodies: int, appends: int, idle: int,
            idle_seconds: float, seed: int = 11) -> dict[str, float]:
    rng = random.Random(seed)
    figures: dict[str, float] = {}
    client = RawImap("127.0.0.1", peer.port)
    client.login(USER, PASSWORD)
    client.command("SELECT INBOX")       # warm-up: Dovecot indexes a fresh Maildir here
    figures["select_ms"] = timed(lambda: client.command("SELECT INBOX"), 5) * 1000

    def fresh_select() -> None:
        other = RawImap("127.0.0.1", peer.port)
        other.login(USER, PASSWORD)
        other.command("SELECT INBOX")
        other.close()
    figures["login_select_ms"] = timed(fresh_select, 5) * 1000

    def fetch_all() -> None:
        lines, _ = client.command("FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
        fetched = sum(1 for line in lines if b" FETCH " in line[:20])
        if fetched != count:
            raise RuntimeError(f"{peer.name}: FETCH 1:* answered {fetched} of {count}")
    figures["fetch_all_ms"] = timed(fetch_all, 3) * 1000

    lines, _ = client.command("UID SEARCH ALL")
    uids = [int(u) for line in lines if line.startswith(b"* SEARCH")
            for u in line.split()[2:]]
    if len(uids) != count:
        raise RuntimeError(f"{peer.name}: UID SEARCH ALL found {len(uids)} of {count}")
    chosen = sorted(rng.sample(uids, min(bodies, len(uids))))

    def fetch_bodies() -> None:
        lines, size = client.command(
            f"UID FETCH {','.join(map(str, chosen))} (BODY.PEEK[])")
        figures["bodies_mib"] = size / 2**20
        if sum(1 for line in lines if b" FETCH " in line[:20]) != len(chosen):
            raise RuntimeError(f"{peer.name}: BODY[] answered too few")
    figures["fetch_bodies_ms"] = timed(fetch_bodies, 3) * 1000

    picks = rng.sample(range(count), min(20, count))

    def search(criteria: str, expect: int | None) -> None:
        lines, _ = client.command(f"UID SEARCH {criteria}")
        found = [u for line in lines if line.startswith(b"* SEARCH") for u in line.split()[2:]]
        if expect is not None and len(found) != expect:
            raise RuntimeError(f"{peer.name}: UID SEARCH {criteria} found {len(found)}")

    def header_searches() -> None:
        for index in picks:
            search(f'HEADER Message-ID "<bench-{index}@corpus.test>"', 1)

    def subject_searches() -> None:
        for index in picks:
            search(f'SUBJECT "bench-{index}"', None)
    figures["search_header_ms"] = timed(header_searches, 1) * 1000 / len(picks)
    figures["search_subject_ms"] = timed(subject_searches, 1) * 1000 / len(picks)
    figures["search_text_ms"] = timed(lambda: search('TEXT "quarterly-report-zzz"', 0), 3) * 1000

    extra = corpus_cycle(appends, tag="append")
    started = time.perf_counter()
    for raw in extra:
        client.append("INBOX", raw)
    figures["append_per_s"] = appends / (time.perf_counter() - started)
    client.command('CREATE "Idle"')
    client.command("LOGOUT")
    client.close()

    if idle:
        figures.update(asyncio.run(idle_rows(peer, idle, idle_seconds)))
    return figures


async def idle_rows(peer: Peer, count: int, seconds: float) -> dict[str, float]:
    """IDLE on INBOX, then (those still open, so no freed memory is reused) on an empty
    folder; the figures of the second carry the suffix ``_empty``."""
    figures, inbox = await idle_memory(peer, count, seconds, "INBOX")
    try:
        empty, more = await idle_memory(peer, count, seconds, "Idle")
        figures.update({f"{key}_empty": value for key, value in empty.items()})
        for writer in more:
            writer.close()
    finally:
        for writer in inbox:
            writer.close()
        await asyncio.sleep(0.5)
    return figures


async def idle_memory(peer: Peer, count: int, seconds: float, folder: str
                      ) -> tuple[dict[str, float], list[asyncio.StreamWriter]]:
    """Open up to ``count`` connections in IDLE on ``folder`` (within ``seconds``); growth
    of the server's memory per connection, and the connections (left open)."""
    async def one() -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection("127.0.0.1", peer.port)
        await reader.readline()
        writer.write(f'a LOGIN "{USER}" "{PASSWORD}"\r\nb SELECT "{folder}"\r\n'
                     "c IDLE\r\n".encode())
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError(f"{peer.name} closed an IDLE connection")
            if line[:1] in (b"a", b"b") and b" OK" not in line[:5]:
                raise ImapError(line.decode(errors="replace"))
            if line.startswith(b"+"):
                return writer

    async def batch(size: int) -> list[asyncio.StreamWriter]:
        return list(await asyncio.gather(*(one() for _ in range(size))))

    for writer in await batch(min(20, count)):   # one-time costs out of the figure
        writer.close()
    await asyncio.sleep(1.0)
    before = memory_kib(peer.pids())
    writers: list[asyncio.StreamWriter] = []
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    while len(writers) < count and time.monotonic() < deadline:
        writers += await batch(min(IDLE_BATCH, count - len(writers)))
    opened_in = time.monotonic() - started
    await asyncio.sleep(2.0)
    after = memory_kib(peer.pids())
    opened = len(writers)
    return {"idle_connections": opened, "idle_open_s": opened_in,
            "idle_rss_kib": (after[0] - before[0]) / max(opened, 1),
            "idle_pss_kib": (after[1] - before[1]) / max(opened, 1),
            # The fair figure for each: one process's RSS growth (the gateway), the PSS
            # growth over many processes sharing pages (Dovecot's process per connection).
            "idle_kib": (after[0 if peer.name == "gateway" else 1]
                         - before[0 if peer.name == "gateway" else 1]) / max(opened, 1),
            }, writers


def run(messages: int = 10_000, bodies: int = 1000, appends: int = 1000, idle: int = 1000,
        idle_seconds: float = 300.0, work: str | None = None,
        peers: Sequence[str] = ("dovecot", "gateway")) -> dict[str, dict[str, float]]:
    """Figures per server; a server that fails gets ``{"error": ...}`` instead (printed)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < idle * 2 + 200:
        sys.exit(f"the open-file limit ({hard}) is too low for {idle} IDLE connections")
    corpus = corpus_cycle(messages)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="imap-bench-", dir=work) as tmp:
        root = Path(tmp)
        maildir = write_maildir(root / "source", corpus)
        starters = {"dovecot": lambda: start_peer(root / "dovecot", corpus),
                    "gateway": lambda: start_ours(root / "gateway", maildir)}
        for name in peers:
            (root / name).mkdir(exist_ok=True)
            try:
                peer = starters[name]()
            except Exception as exc:
                results[name] = {"error": f"did not start: {exc}"}   # type: ignore[dict-item]
                continue
            try:
                results[name] = measure(peer, messages, bodies, appends, idle, idle_seconds)
            except (OSError, ImapError, RuntimeError) as exc:
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}  # type: ignore[dict-item]
            finally:
                peer.stop()
    return results


ROWS = (
    # key, label, unit, higher is better
    ("select_ms", "SELECT INBOX (again, same session)", "ms", False),
    ("login_select_ms", "connect, LOGIN, SELECT INBOX", "ms", False),
    ("fetch_all_ms", "FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)", "ms", False),
    ("fetch_bodies_ms", "UID FETCH BODY.PEEK[] of {bodies} messages", "ms", False),
    ("search_header_ms", "UID SEARCH HEADER Message-ID (each)", "ms", False),
    ("search_subject_ms", "UID SEARCH SUBJECT (each)", "ms", False),
    ("search_text_ms", "UID SEARCH TEXT (whole mailbox)", "ms", False),
    ("append_per_s", "APPEND, one by one", "msg/s", True),
    ("idle_kib", "IDLE on INBOX, memory per connection", "KiB", False),
    ("idle_kib_empty", "IDLE on an empty folder, memory per connection", "KiB", False),
)


def ratio(key: str, ours: float, peer: float, higher_better: bool) -> float:
    if higher_better:
        return ours / peer if peer else 0.0
    return peer / ours if ours else float("inf")


def report(results: dict[str, dict[str, float]], messages: int, bodies: int) -> str:
    ours, peer = results.get("gateway", {}), results.get("dovecot", {})
    out = [f"IMAP, {messages} messages in INBOX: gateway vs Dovecot "
           f"(ratio = our throughput / Dovecot's; target >= 0.5)",
           f"  {'row':58} {'ours':>10} {'Dovecot':>10} {'ratio':>7}"]
    for key, label, unit, higher in ROWS:
        if key not in ours or key not in peer:
            continue
        label = label.format(bodies=bodies)
        value = ratio(key, ours[key], peer[key], higher)
        flag = "" if value >= 0.5 else "  BELOW TARGET"
        out.append(f"  {label + ' (' + unit + ')':58} {ours[key]:10.1f} {peer[key]:10.1f} "
                   f"{value:7.2f}{flag}")
    for name, figures in results.items():
        if "error" in figures:
            out.append(f"  {name}: not measured: {str(figures['error'])[:2000]}")
    for name, figures in results.items():
        if "error" not in figures:
            out.append(f"  {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()))
    for suffix, where in (("", "INBOX"), ("_empty", "an empty folder")):
        if f"idle_rss_kib{suffix}" not in ours or f"idle_pss_kib{suffix}" not in peer:
            continue
        out.append(f"  IDLE on {where}: gateway {ours['idle_connections' + suffix]:.0f} "
                   f"connections (opened in {ours['idle_open_s' + suffix]:.1f} s), RSS growth "
                   f"{ours['idle_rss_kib' + suffix]:.1f} KiB per connection (target <= 30 KiB);"
                   f" Dovecot {peer['idle_connections' + suffix]:.0f} connections (opened in "
                   f"{peer['idle_open_s' + suffix]:.1f} s), {peer['idle_pss_kib' + suffix]:.1f} "
                   f"KiB PSS / {peer['idle_rss_kib' + suffix]:.1f} KiB RSS per connection "
                   "(one imap process each)")
    out.append(f"  BODY[] read: {ours.get('bodies_mib', 0):.1f} MiB (gateway), "
               f"{peer.get('bodies_mib', 0):.1f} MiB (Dovecot)")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--bodies", type=int, default=1000, help="messages in the BODY[] fetch")
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=1000, help="IDLE connections")
    parser.add_argument("--idle-seconds", type=float, default=300.0,
                        help="time allowed for opening the IDLE connections")
    parser.add_argument("--dir", help="work directory (default: a temporary one)")
    parser.add_argument("--only", choices=("dovecot", "gateway"), help="measure one server")
    args = parser.parse_args()
    results = run(args.messages, args.bodies, args.appends, args.idle, args.idle_seconds,
                  args.dir, peers=[args.only] if args.only else ("dovecot", "gateway"))
    print(report(results, args.messages, args.bodies))


if __name__ == "__main__":
    main()
