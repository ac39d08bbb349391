"""A private Postfix (Debian ``postfix`` + ``postfix-mysql``) set up the way grommunio does.

``start_postfix(transport=..., maps=...)`` writes a configuration directory
of its own (``main.cf``, ``master.cf``, the ``mysql:`` lookup tables) in a
short temporary directory, with the queue and data directories beside it,
and runs ``postfix -c DIR start``; ``PostfixServer.stop()`` runs ``postfix
-c DIR stop``. smtpd listens on a free 127.0.0.1 port; logging goes to
``DIR/postfix.log`` (``maillog_file``, Postfix 3.4 or later).

The routing follows the grommunio admin manual: ``virtual_mailbox_domains``,
``virtual_mailbox_maps`` and ``virtual_alias_maps`` are ``mysql:`` lookups in
the directory's own tables (``domains``, ``users``, ``aliases``) and
``virtual_transport`` aims at the gateway's delivery listener
(``lmtp:inet:127.0.0.1:PORT`` or ``smtp:[127.0.0.1]:PORT``). Unknown
recipients are therefore refused by Postfix at RCPT time.

Postfix needs root to start (its master switches to ``mail_owner``); the
``postfix_factory`` fixture skips when the binary is missing or when not
running as root, saying so. ``PostfixServer.wait_queue_empty()``,
``wait_log()`` and ``deliveries()`` tell when and how Postfix handed mail on.

``exported_messages()`` reads back what the gateway stored (``gateway mbox
export``), for the SMTP tests that put Postfix in front of it.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.harness.daemons import log_tail
from tests.harness.ports import LOCALHOST, free_port

POSTFIX_PATHS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin")
START_TIMEOUT = 30.0
MAIL_OWNER = "postfix"
SETGID_GROUP = "postdrop"
HOSTNAME = "mx.postfix.test"   # in smtpd's greeting: tells our Postfix from another server

# The grommunio manual's three lookups, on the directory's own tables.
DOMAIN_QUERY = "SELECT 1 FROM domains WHERE domain_status=0 AND domainname='%s'"
MAILBOX_QUERY = "SELECT username FROM users WHERE username='%s'"
ALIAS_QUERY = "SELECT mainname FROM aliases WHERE aliasname='%s'"

# Every service the queue manager and smtpd call, none chrooted (the config is private).
MASTER_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixError(RuntimeError):
    """Postfix refused its configuration, did not start, or did not deliver in time."""


@dataclass(frozen=True)
class MysqlMaps:
    """Where Postfix's ``mysql:`` tables find the directory database."""

    host: str
    port: int
    user: str
    password: str
    database: str


def postfix_binary() -> str | None:
    """Path of the ``postfix`` command, or None when Postfix is not installed."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *POSTFIX_PATHS])
    return shutil.which("postfix", path=search)


def mysql_supported() -> bool:
    """True when ``postconf -m`` lists the mysql table type (package postfix-mysql)."""
    postconf = shutil.which("postconf", path=os.pathsep.join(POSTFIX_PATHS))
    if postconf is None:
        return False
    done = subprocess.run([postconf, "-m"], capture_output=True, text=True, timeout=30)
    return "mysql" in done.stdout.split()


@dataclass
class PostfixServer:
    """One private Postfix instance and where to reach it."""

    root: Path                    # everything of this instance lives below here
    config_dir: Path
    port: int                     # smtpd on 127.0.0.1
    transport: str                # virtual_transport as configured
    log_path: Path
    commands: dict[str, str] = field(default_factory=dict)
    running: bool = True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def run(self, command: str, *args: str, check: bool = True,
            timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run a Postfix command (``postfix``, ``postqueue``, ``postconf``) on this instance."""
        done = subprocess.run([self.commands[command], "-c", str(self.config_dir), *args],
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise PostfixError(f"{command} {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}\nlog:\n{log_tail(self.log_path)}")
        return done

    def queue(self) -> str:
        """``postqueue -p``: the queue listing ("Mail queue is empty" when it is)."""
        return self.run("postqueue", "-p").stdout

    def flush(self) -> None:
        """``postqueue -f``: try every deferred message again now."""
        self.run("postqueue", "-f")

    def queue_is_empty(self) -> bool:
        return "Mail queue is empty" in self.queue()

    def wait_queue_empty(self, timeout: float = 30.0) -> None:
        """Wait until Postfix has handed every message on (or bounced it)."""
        deadline = time.monotonic() + timeout
        while not self.queue_is_empty():
            if time.monotonic() > deadline:
                raise PostfixError(f"Postfix queue not empty after {timeout}s:\n{self.queue()}"
                                   f"\nlog:\n{log_tail(self.log_path, 40)}")
            time.sleep(0.1)

    def wait_log(self, pattern: str, timeout: float = 30.0, flags: int = 0) -> re.Match[str]:
        """Wait until a line of the log matches the regular expression ``pattern``."""
        regex = re.compile(pattern, flags | re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.log())
            if found:
                return found
            if time.monotonic() > deadline:
                raise PostfixError(f"no log line matching {pattern!r} within {timeout}s; "
                                   f"log:\n{log_tail(self.log_path, 40)}")
            time.sleep(0.1)

    def deliveries(self, message_id: str | None = None) -> list[dict[str, str]]:
        """The delivery lines of the log: queue_id, to, relay, status (sent, deferred,
        bounced), text; only those of the message with ``message_id`` when given."""
        log = self.log()
        wanted = None
        if message_id is not None:
            wanted = {m.group(1) for m in re.finditer(
                rf"(\w+): message-id={re.escape(message_id)}$", log, re.MULTILINE)}
        found = []
        for match in re.finditer(
                r"(?P<queue_id>\w+): to=<(?P<to>[^>]*)>.*?relay=(?P<relay>\S+),"
                r".*?status=(?P<status>\w+) \((?P<text>.*)\)$", log, re.MULTILINE):
            if wanted is None or match.group("queue_id") in wanted:
                found.append(match.groupdict())
        return found

    def stop(self) -> None:
        """``postfix stop`` (waits for the master to go), then remove the instance."""
        if self.running:
            self.running = False
            pid = self._master()
            self.run("postfix", "stop", check=False)
            deadline = time.monotonic() + 20
            while pid is not None and _running(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid is not None and self._master() == pid:  # did not stop: end it
                os.kill(pid, 9)
        shutil.rmtree(self.root, ignore_errors=True)

    def _master(self) -> int | None:
        """Process id of this instance's running master (checked by its MAIL_CONFIG, so a
        stale pid file never names another process), or None."""
        pid = _master_pid(self.root)
        if pid is None:
            return None
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if f"MAIL_CONFIG={self.config_dir}".encode() in environ else None


def _running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _master_pid(root: Path) -> int | None:
    try:
        return int((root / "queue" / "pid" / "master.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _mysql_cf(maps: MysqlMaps, query: str) -> str:
    return (f"# Written by tests/harness/postfix.py (as in the grommunio admin manual)\n"
            f"hosts = inet:{maps.host}:{maps.port}\nuser = {maps.user}\n"
            f"password = {maps.password}\ndbname = {maps.database}\nquery = {query}\n")


def write_config(root: Path, port: int, transport: str, maps: MysqlMaps | None,
                 virtual: dict[str, list[str]] | None = None,
                 extra: dict[str, str] | None = None) -> Path:
    """Write ``root/etc`` (main.cf, master.cf, lookup tables); return the config directory.

    Without ``maps`` the virtual tables are ``inline:`` ones built from
    ``virtual`` (domain -> mailbox addresses), for tests without MariaDB.
    """
    config_dir, queue_dir, data_dir = root / "etc", root / "queue", root / "data"
    for directory in (config_dir, queue_dir, data_dir):
        directory.mkdir(parents=True, exist_ok=True)
    owner = pwd.getpwnam(MAIL_OWNER)
    os.chown(data_dir, owner.pw_uid, owner.pw_gid)
    if maps is not None:
        for name, query in (("mbxdom.cf", DOMAIN_QUERY), ("mbxmaps.cf", MAILBOX_QUERY),
                            ("alias.cf", ALIAS_QUERY)):
            path = config_dir / name
            path.write_text(_mysql_cf(maps, query))
            path.chmod(0o640)
            os.chown(path, 0, owner.pw_gid)  # smtpd and cleanup read it as the postfix group
        tables = {
            "virtual_mailbox_domains": f"mysql:{config_dir}/mbxdom.cf",
            "virtual_mailbox_maps": f"mysql:{config_dir}/mbxmaps.cf",
            "virtual_alias_maps": f"mysql:{config_dir}/alias.cf, mysql:{config_dir}/mbxmaps.cf",
        }
    else:
        virtual = virtual or {}
        domains = " ".join(virtual) or "example.invalid"
        mailboxes = ", ".join(f"{a}={a}" for addrs in virtual.values() for a in addrs)
        tables = {
            "virtual_mailbox_domains": domains,
            "virtual_mailbox_maps": f"inline:{{ {mailboxes} }}" if mailboxes else "",
            "virtual_alias_maps": "",
        }
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": str(queue_dir),
        "data_directory": str(data_dir),
        "mail_owner": MAIL_OWNER,
        "setgid_group": SETGID_GROUP,
        "myhostname": HOSTNAME,
        "mydomain": "postfix.test",
        "myorigin": "$myhostname",
        "mydestination": "",
        "inet_interfaces": LOCALHOST,
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
        "smtpd_peername_lookup": "no",
        "smtp_dns_support_level": "disabled",
        "lmtp_dns_support_level": "disabled",
        "smtp_host_lookup": "native",
        "lmtp_host_lookup": "native",
        "smtp_tls_security_level": "none",
        "lmtp_tls_security_level": "none",
        "smtpd_tls_security_level": "none",
        "biff": "no",
        "alias_maps": "",
        "alias_database": "",
        "local_recipient_maps": "",
        "recipient_delimiter": "+",
        "maillog_file": str(root / "postfix.log"),
        "maillog_file_prefixes": str(root),
        # A test should see a refused or failed delivery at once, not after 5 minutes.
        "queue_run_delay": "2s",
        "minimal_backoff_time": "2s",
        "maximal_backoff_time": "10s",
        "smtp_connect_timeout": "5s",
        "lmtp_connect_timeout": "5s",
        "virtual_transport": transport,
        **tables,
        **(extra or {}),
    }
    (config_dir / "main.cf").write_text(
        "# Written by tests/harness/postfix.py: a private Postfix\n"
        + "".join(f"{key} = {value}\n" for key, value in settings.items()))
    (config_dir / "master.cf").write_text(
        "# Written by tests/harness/postfix.py\n"
        f"{LOCALHOST}:{port} inet n - n - - smtpd\n" + MASTER_SERVICES)
    return config_dir


def start_postfix(*, transport: str, maps: MysqlMaps | None = None,
                  virtual: dict[str, list[str]] | None = None,
                  extra: dict[str, str] | None = None,
                  timeout: float = START_TIMEOUT) -> PostfixServer:
    """Write a private configuration and start Postfix on it; wait until smtpd answers.

    ``transport`` is the ``virtual_transport`` (``lmtp:inet:127.0.0.1:2424``
    or ``smtp:[127.0.0.1]:2424``). Raises ``PostfixError`` with the log's tail
    when ``postfix check`` complains or the master does not come up.
    """
    binary = postfix_binary()
    if binary is None:
        raise PostfixError("postfix not found: install the Debian package postfix")
    commands = {name: shutil.which(name, path=os.pathsep.join(POSTFIX_PATHS)) or name
                for name in ("postqueue", "postconf")}
    commands["postfix"] = binary
    for attempt in range(3):
        try:
            return _start(commands, transport, maps, virtual, extra, timeout)
        except PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class PortTaken(PostfixError):
    """Another process took the chosen smtpd port between picking and binding it."""


def _start(commands: dict[str, str], transport: str, maps: MysqlMaps | None,
           virtual: dict[str, list[str]] | None, extra: dict[str, str] | None,
           timeout: float) -> PostfixServer:
    # Short path: Postfix's unix sockets live below the queue directory (sun_path limit),
    # and the postfix user must be able to reach it (pytest's tmp_path is mode 0700).
    root = Path(tempfile.mkdtemp(prefix="gw-pf-"))
    root.chmod(0o755)
    port = free_port()
    config_dir = write_config(root, port, transport, maps, virtual, extra)
    server = PostfixServer(root, config_dir, port, transport, root / "postfix.log", commands)
    try:
        server.run("postfix", "check")
        started = server.run("postfix", "start", check=False)
        if started.returncode != 0:
            kind = PortTaken if "Address already in use" in server.log() else PostfixError
            raise kind(f"postfix start failed ({started.returncode}): {started.stderr}\n"
                       f"log:\n{log_tail(server.log_path)}")
        deadline = time.monotonic() + timeout
        while not _greets(port):
            if "Address already in use" in server.log():
                raise PortTaken(f"smtpd port {port} was taken")
            if time.monotonic() > deadline:
                raise PostfixError(f"Postfix smtpd did not answer on {port} within {timeout}s; "
                                   f"log:\n{log_tail(server.log_path)}")
            time.sleep(0.1)
    except BaseException:
        server.stop()
        raise
    return server


def _greets(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=2) as sock:
            sock.settimeout(5)
            return sock.recv(100).startswith(b"220 " + HOSTNAME.encode())
    except OSError:
        return False


PostfixFactory = Callable[..., PostfixServer]


def skip_without_postfix(mysql: bool = False) -> None:
    """Skip the test when Postfix (with ``mysql``: its mysql tables) is not installed,
    or when not running as root, saying which."""
    if postfix_binary() is None:
        pytest.skip("postfix not found: install the Debian package postfix")
    if os.geteuid() != 0:
        pytest.skip("a private Postfix must be started as root (its master drops to "
                    f"{MAIL_OWNER}); run these tests as root or in the test container")
    if mysql and not mysql_supported():
        pytest.skip("Postfix has no mysql tables: install the Debian package postfix-mysql")


@pytest.fixture
def postfix_factory() -> Iterator[PostfixFactory]:
    """``postfix_factory(transport=..., maps=...)`` starts private Postfix instances,
    all stopped after the test; skips when Postfix (or its mysql tables, when
    ``maps`` are given) is not installed, or when not running as root."""
    skip_without_postfix()
    started: list[PostfixServer] = []

    def factory(**kwargs: object) -> PostfixServer:
        skip_without_postfix(mysql=kwargs.get("maps") is not None)
        server = start_postfix(**kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()


# -- reading back what the gateway stored (for the SMTP tests) ----------------------------------


def exported_messages(config_dir: Path, address: str, folder: str, workdir: Path,
                      run: Callable[..., subprocess.CompletedProcess[str]]) -> list[bytes]:
    """The messages of ``folder`` in ``address``'s store as the gateway keeps them
    (``gateway mbox export`` into an mbox file, read back with :mod:`mailbox`).

    ``run`` is :func:`tests.harness.gateway.run_cli` (passed in, so this module
    stays free of the gateway harness).
    """
    import mailbox

    workdir.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkstemp(prefix="export-", suffix=".mbox", dir=workdir)[1])
    done = run("mbox", "export", address, folder, str(target), config_dirs=[config_dir])
    if done.returncode != 0:
        raise PostfixError(f"gateway mbox export {address} {folder} failed:\n"
                           f"{done.stdout}{done.stderr}")
    box = mailbox.mbox(str(target), create=False)
    try:
        return [box.get_bytes(key) for key in box.keys()]
    finally:
        box.close()
