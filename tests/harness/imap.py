"""The ``imap_server`` fixture: a real ``gateway serve`` with IMAP listeners and two users.

The gateway runs as an administrator would run it (``gateway_factory``), with
``[imap] listen`` and ``listen_tls`` on free ports, and a Redis for store
events, so that a message put into a mailbox from the test process
(``ImapServer.deliver``, through the store API) wakes IDLE sessions in the
gateway process at once. The users are made with the CLI (``gateway domain
add``, ``gateway user add --password-stdin``), which also creates their
mailboxes.

``imap_server`` allows plaintext authentication (tests on 127.0.0.1);
``imap_server_factory(extra_toml, plaintext=False)`` starts others, e.g. one
that refuses LOGIN before STARTTLS or with small limits; ``imap_server_module``
is one server shared by a test module.
"""

from __future__ import annotations

import asyncio
import imaplib
import json
import re
import socket
import ssl
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.harness.gateway import GatewayFactory, RunningGateway, run_cli

DOMAIN = "example.org"
ALICE, ALICE_PW = "alice@example.org", "alice-secret-1"
BOB, BOB_PW = "bob@example.org", "bob-secret-2"
USERS = {ALICE: ALICE_PW, BOB: BOB_PW}


@dataclass
class ImapServer:
    """A running gateway's IMAP side and the accounts on it."""

    gateway: RunningGateway
    host: str
    port: int
    """Plain listener (STARTTLS offered)."""
    tls_port: int
    """Implicit-TLS listener."""
    ca_file: Path
    """The gateway's self-signed certificate, to trust for TLS."""
    users: dict[str, str] = field(default_factory=dict)
    """address -> password."""

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting the gateway's certificate."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def deliver(self, address: str, raw: bytes, folder: str = "INBOX") -> int:
        """Store ``raw`` (an Internet message) in ``folder`` of ``address`` as new mail.

        Goes through the store API from the test process, parsing with
        ``gateway.convert.mime_in`` like delivery does; the change is announced
        through Redis so the gateway's sessions see it at once. ``folder`` is
        ``INBOX`` or a ``/``-separated path below the top of the store (made
        when missing). Returns the store's message id.
        """
        return self.deliver_many(address, [raw], folder)[0]

    def deliver_many(self, address: str, messages: Sequence[bytes],
                     folder: str = "INBOX") -> list[int]:
        """Several messages in one go (one store transaction per 500); see ``deliver``."""
        return _in_thread(lambda: _deliver(self.gateway.config_dir, address, list(messages),
                                           folder))


    def grant_full_access(self, owner: str, member: str) -> None:
        """Give ``member`` full access to ``owner``'s whole store (for ``owner!member``
        logins and the other users' namespace)."""
        _in_thread(lambda: _grant(self.gateway.config_dir, owner, member))


async def _grant(config_dir: Path, owner: str, member: str) -> None:
    from gateway.host import load_config
    from gateway.store import Store, permissions

    config, _, _ = load_config([config_dir], environ={})
    store = Store(Path(config.gateway.data_dir), config.store)
    try:
        mbox = await store.open(owner)
        await mbox.write(permissions.set_grant, member,
                         permissions.Grant(full_access=True))
    finally:
        await store.close()


def _in_thread(work: Callable[[], Any]) -> Any:
    """Run a coroutine function on an event loop of its own (callable from async tests too)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(work())
        except BaseException as exc:  # handed to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="imap-harness-deliver")
    thread.start()
    thread.join(60)
    if thread.is_alive():
        raise TimeoutError("delivery did not finish within 60 s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


async def _deliver(config_dir: Path, address: str, messages: list[bytes],
                   folder: str) -> list[int]:
    import redis.asyncio as aioredis

    from gateway.convert import mime_in
    from gateway.events import StoreEvent
    from gateway.host import load_config
    from gateway.notify import CHANNEL
    from gateway.store import Private, Store
    from gateway.store.cli import resolve_folder
    from gateway.store.store import publisher

    config, _, _ = load_config([config_dir], environ={})
    redis = aioredis.from_url(config.redis.url) if config.redis.url else None

    async def publish(event: StoreEvent) -> None:
        if redis is not None:
            await redis.publish(CHANNEL, event.to_json())

    store = Store(Path(config.gateway.data_dir), config.store, publisher(publish))
    try:
        mbox = await store.open(address)
        if folder.upper() == "INBOX":
            folder_id = int(Private.INBOX)
        else:
            folder_id = await mbox.write(resolve_folder, folder, True)
        if len(messages) == 1:
            return [await mbox.create_message(folder_id, mime_in.parse(messages[0]),
                                              new_mail=True)]
        ids: list[int] = []
        for start in range(0, len(messages), 500):  # one transaction per 500 messages
            batch = [mime_in.parse(raw) for raw in messages[start:start + 500]]
            ids += await mbox.create_messages(folder_id, batch)
        return ids
    finally:
        await store.close()
        if redis is not None:
            await redis.aclose()


def other_listeners_off(keep: Sequence[str] = ("http", "imap")) -> dict[str, dict[str, Any]]:
    """Settings switching off the default listeners of every other TCP plugin (SMTP ...).

    Their defaults are fixed ports, which two gateways running at once (or one
    test next to another helper's) would both try to bind.
    """
    import dataclasses

    from gateway.host import collect_schemas, make_plugin_manager

    pm, _ = make_plugin_manager()
    sections: dict[str, dict[str, Any]] = {}
    for section, schema in collect_schemas(pm).items():
        if section in keep or not dataclasses.is_dataclass(schema):
            continue
        defaults = schema()
        off: dict[str, Any] = {f.name: [] for f in dataclasses.fields(schema)
               if "listen" in f.name and isinstance(getattr(defaults, f.name), list)
               and getattr(defaults, f.name)}
        if off:
            sections[section] = off
    return sections


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML here")


def to_toml(sections: dict[str, dict[str, Any]]) -> str:
    """Simple sections (strings, numbers, booleans, lists of them) as TOML text."""
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def start_imap_server(gateway_factory: GatewayFactory, redis_url: str, extra: str = "", *,
                      plaintext: bool = True, ports: Sequence[str] = (),
                      args: Sequence[str] = ()) -> ImapServer:
    """Start a gateway with IMAP on free ports, then create the domain and the two users.

    ``extra`` is TOML merged key by key over the fixture's settings (so it may set
    ``[imap]`` keys too); ``{port_imap}``/``{port_imaps}`` are the IMAP ports and
    ``{port_NAME}`` a free port for each NAME in ``ports`` (``gateway.ports[NAME]``);
    ``args`` go to ``gateway serve`` (``["--workers", "2"]``).
    """
    sections = other_listeners_off()
    sections["imap"] = {
        "listen": ["127.0.0.1:{port_imap}"],
        "listen_tls": ["127.0.0.1:{port_imaps}"],
        "allow_plaintext_auth": plaintext,
    }
    if redis_url:
        sections["redis"] = {"url": redis_url}
    for section, values in tomllib.loads(extra).items():
        sections.setdefault(section, {}).update(values)
    gw = gateway_factory(to_toml(sections), ports=["imap", "imaps", *ports], args=args)
    conf = [gw.config_dir]

    def ok(*args: str, stdin: str | None = None) -> None:
        done = _run_cli_stdin(args, conf, stdin)
        if done.returncode != 0:
            raise RuntimeError(f"gateway {' '.join(args)} failed: {done.stderr}")

    ok("domain", "add", DOMAIN)
    for address, password in USERS.items():
        ok("user", "add", address, "--password-stdin", stdin=password + "\n")
    return ImapServer(gw, "127.0.0.1", gw.ports["imap"], gw.ports["imaps"], gw.certificate,
                      dict(USERS))


def _run_cli_stdin(args: Sequence[str], config_dirs: list[Path], stdin: str | None) -> Any:
    if stdin is None:
        return run_cli(*args, config_dirs=config_dirs)
    import subprocess
    import sys

    from tests.harness.gateway import REPO, gateway_env

    command = [sys.executable, "-m", "gateway"]
    for directory in config_dirs:
        command += ["--config-dir", str(directory)]
    return subprocess.run([*command, *args], input=stdin, capture_output=True, text=True,
                          timeout=60, env=gateway_env(), cwd=REPO)


@pytest.fixture
def imap_server_factory(gateway_factory: GatewayFactory, redis_server: Any
                        ) -> Callable[..., ImapServer]:
    """``factory(extra_toml="", plaintext=True, ports=(), args=())`` -> a started
    ``ImapServer`` (see ``start_imap_server``)."""
    def start(extra: str = "", *, plaintext: bool = True, ports: Sequence[str] = (),
              args: Sequence[str] = ()) -> ImapServer:
        return start_imap_server(gateway_factory, redis_server.url, extra, plaintext=plaintext,
                                 ports=ports, args=args)
    return start


@pytest.fixture
def imap_server(imap_server_factory: Callable[..., ImapServer]) -> ImapServer:
    """A gateway serving IMAP on 127.0.0.1 (plaintext login allowed) with alice and bob."""
    return imap_server_factory()


@pytest.fixture(scope="module")
def imap_server_module(tmp_path_factory: pytest.TempPathFactory, redis_server: Any
                       ) -> Iterator[ImapServer]:
    """Like ``imap_server``, shared by the tests of one module (each must use its own
    folders or tolerate the others' messages): saves a gateway start per test."""
    factory = GatewayFactory(tmp_path_factory.mktemp("imap-module"))
    try:
        yield start_imap_server(factory, redis_server.url)
    finally:
        factory.stop_all()


# -- clients for tests ---------------------------------------------------------------------

TIMEOUT = 15.0


def make_message(subject: str, body: str = "Hello there.\r\n",
                 sender: str = "carol@example.net", to: str = ALICE) -> bytes:
    """A small RFC 5322 message with CRLF line ends and a unique Message-ID."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '.')}.{time.monotonic_ns()}@example.net>"
    msg["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
    msg.set_content(body)
    return msg.as_bytes().replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")


class RawClient:
    """A minimal IMAP client over a socket: send lines, read responses literal-aware."""

    def __init__(self, server: ImapServer, *, tls: bool = False) -> None:
        sock = socket.create_connection((server.host, server.tls_port if tls else server.port),
                                        timeout=TIMEOUT)
        if tls:
            sock = server.ssl_context().wrap_socket(sock, server_hostname="127.0.0.1")
        self.sock = sock
        self.file = sock.makefile("rb")
        self.greeting = self.line()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        line = self.file.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        match = re.search(rb"~?\{(\d+)\}\r\n$", line)
        if match:
            line += self.file.read(int(match.group(1)))
            line += self.line()
        return line

    def until_tagged(self, tag: str) -> list[bytes]:
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines

    def command(self, tag: str, text: str | bytes) -> list[bytes]:
        data = text.encode() if isinstance(text, str) else text
        self.send(tag.encode() + b" " + data + b"\r\n")
        return self.until_tagged(tag)

    def ok(self, tag: str, text: str | bytes) -> list[bytes]:
        lines = self.command(tag, text)
        assert lines[-1].startswith(f"{tag} OK".encode()), lines
        return lines

    def login(self, user: str = ALICE, password: str = ALICE_PW) -> None:
        self.ok("l1", f'LOGIN "{user}" "{password}"')

    def closed(self) -> bool:
        try:
            return self.file.readline() == b""
        except OSError:
            return True

    def close(self) -> None:
        self.sock.close()


def imaplib_client(server: ImapServer, user: str = ALICE, password: str = ALICE_PW
                   ) -> imaplib.IMAP4:
    """An imaplib client logged in on the plain port."""
    imap = imaplib.IMAP4(server.host, server.port, timeout=TIMEOUT)
    imap.login(user, password)
    return imap


def untagged(lines: list[bytes], word: bytes) -> list[bytes]:
    """The untagged lines of a response that contain ``word``."""
    return [line for line in lines if line.startswith(b"* ") and word in line]
