"""A private Dovecot (Debian ``dovecot-imapd``/``dovecot-lmtpd``) for tests and benchmarks.

``start_dovecot(tmp_path, imap=True, lmtp=True)`` writes a self-contained
configuration (own ``base_dir``, no include of ``/etc/dovecot``), two users in
a passwd-file with plaintext passwords, Maildir storage, IMAP on a free
127.0.0.1 port, LMTP on a free TCP port and a unix socket, plaintext
authentication allowed, no TLS. Everything lives in a private directory in
the system temp dir (short socket paths, reachable by Dovecot's unprivileged
processes); ``tmp_path/dovecot/private`` links to it while it runs and the
log is kept in ``tmp_path/dovecot/dovecot.log``.

It runs as the current user: as root the login and internal processes use
Debian's ``dovenull`` and ``dovecot`` users and the mail belongs to
``nobody`` (Dovecot refuses mail access as root); as anyone else every
process runs as that user. ``DovecotServer.stop()`` ends it; the fixture
``dovecot_server`` does that after the test and skips the test only when the
dovecot binary is missing.

``import_messages()`` puts messages straight into a user's Maildir (files in
``cur/`` with Dovecot's name scheme, mtime = INTERNALDATE), which is what a
10,000-message benchmark needs; ``deliver()`` goes through ``doveadm save``
like a delivery agent would.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from tests.harness.daemons import DaemonError, log_tail, start_with_port_retry, stop_daemon
from tests.harness.ports import LOCALHOST, free_port

USERS = {"alice@example.org": "alice-secret", "bob@example.org": "bob-secret"}
DOVECOT_PATHS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin")
START_TIMEOUT = 20.0

# Folders every user has, with the special-use attributes our server also reports.
SPECIAL_FOLDERS = {"Drafts": "\\Drafts", "Sent": "\\Sent", "Trash": "\\Trash",
                   "Junk": "\\Junk", "Archive": "\\Archive"}


class DovecotMissing(RuntimeError):
    """The dovecot binary is not installed."""


def dovecot_binary() -> str:
    """Path of the dovecot master binary; ``DovecotMissing`` when there is none."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *DOVECOT_PATHS])
    found = shutil.which("dovecot", path=search)
    if found is None:
        raise DovecotMissing("dovecot not found: install the Debian packages "
                             "dovecot-imapd and dovecot-lmtpd")
    return found


def doveadm_binary() -> str:
    search = os.pathsep.join([os.environ.get("PATH", ""), *DOVECOT_PATHS])
    found = shutil.which("doveadm", path=search)
    if found is None:
        raise DovecotMissing("doveadm not found: install the Debian package dovecot-core")
    return found


@dataclass
class DovecotServer:
    """One running Dovecot and where to reach it."""

    proc: subprocess.Popen[bytes]
    root: Path
    config: Path
    host: str
    port: int                     # IMAP, plaintext (no TLS offered)
    lmtp_port: int | None         # LMTP over TCP
    lmtp_socket: Path | None      # LMTP over a unix socket
    log_path: Path
    keep_dir: Path                # under tmp_path: the log is copied here by stop()
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))

    # -- where things are ------------------------------------------------------------------

    def home(self, address: str) -> Path:
        local, domain = address.split("@", 1)
        return self.root / "home" / domain / local

    def maildir(self, address: str, folder: str = "INBOX") -> Path:
        """The Maildir++ directory of ``folder`` ("INBOX", "Sent", "a/b")."""
        base = self.home(address) / "Maildir"
        if folder.upper() == "INBOX":
            return base
        return base / ("." + folder.replace("/", "."))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[tuple[int, str]]:
        """(pid, process name) of every process started by this dovecot master."""
        found: list[tuple[int, str]] = []
        todo = [self.proc.pid]
        while todo:
            parent = todo.pop()
            try:
                kids = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            except OSError:
                continue
            for kid in map(int, kids):
                try:
                    name = Path(f"/proc/{kid}/comm").read_text().strip()
                except OSError:
                    continue
                found.append((kid, name))
                todo.append(kid)
        return found

    # -- putting mail in ---------------------------------------------------------------

    def doveadm(self, *args: str, input: bytes | None = None,
                timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
        """Run ``doveadm -c CONFIG ARGS`` and return its result (raises on failure)."""
        result = subprocess.run([doveadm_binary(), "-c", str(self.config), *args], input=input,
                                capture_output=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed ({result.returncode}): "
                               f"{result.stderr.decode(errors='replace')}")
        return result

    def deliver(self, address: str, raw: bytes, folder: str = "INBOX") -> None:
        """Save a message into ``folder`` the way a delivery agent does (``doveadm save``)."""
        self.doveadm("save", "-u", address, "-m", folder, input=raw)

    def import_messages(self, address: str, messages: Iterable[bytes], folder: str = "INBOX",
                        *, seen: bool = False,
                        dates: Iterable[datetime | None] | None = None) -> int:
        """Write messages straight into ``folder``'s Maildir ``cur/`` (fast: no IPC).

        File names follow Dovecot's scheme (``S=`` size so it needs not stat
        them), numbered so that they sort in the order given, which is the
        order Dovecot assigns UIDs in when the folder is next opened; each
        file's mtime becomes the INTERNALDATE. Returns the number written.
        """
        directory = self.maildir(address, folder)
        for sub in ("cur", "new", "tmp"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        if folder.upper() != "INBOX":
            (directory / "maildirfolder").touch()
        uid, gid = mail_owner()
        chown = uid != os.getuid()
        if chown:
            for path in [*self.home(address).parent.parents, self.home(address).parent]:
                if self.root in path.parents or path == self.root / "home":
                    os.chown(path, uid, gid)
            for path in [self.home(address), *self.home(address).rglob("*")]:
                os.chown(path, uid, gid)
        hostname = socket.gethostname().replace("/", "_").replace(":", "_")
        stamp = int(time.time())
        batch = secrets.token_hex(3)  # names unique across calls within one second
        date_iter = iter(dates) if dates is not None else None
        flags = "S" if seen else ""
        count = 0
        for count, raw in enumerate(messages, 1):
            name = (f"{stamp}.M{count:08d}R{batch}P{os.getpid()}.{hostname},"
                    f"S={len(raw)}:2,{flags}")
            path = directory / "cur" / name
            path.write_bytes(raw)
            when = next(date_iter, None) if date_iter is not None else None
            if chown:
                os.chown(path, uid, gid)
            if when is not None:
                os.utime(path, (when.timestamp(), when.timestamp()))
        return count

    def stop(self) -> None:
        """Stop Dovecot, keep its log in ``keep_dir`` and remove its private directory."""
        stop_daemon(self.proc)
        if self.log_path.exists():
            shutil.copy(self.log_path, self.keep_dir / "dovecot.log")
        (self.keep_dir / "private").unlink(missing_ok=True)
        shutil.rmtree(self.root, ignore_errors=True)


def mail_owner() -> tuple[int, int]:
    """(uid, gid) owning the mail: the current user, or ``nobody`` when that is root
    (Dovecot refuses to access mail as root)."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def _identity() -> tuple[str, int, int, str, str]:
    """(user, mail uid, mail gid, login user, internal user) for the config."""
    user = pwd.getpwuid(os.getuid()).pw_name
    uid, gid = mail_owner()
    if os.getuid() != 0:
        return user, uid, gid, user, user
    # As root Dovecot wants unprivileged login/internal users: Debian's package has them.
    login = "dovenull" if _user_exists("dovenull") else "nobody"
    internal = "dovecot" if _user_exists("dovecot") else "nobody"
    return user, uid, gid, login, internal


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def private_root() -> Path:
    """A fresh directory in the system's temp dir for everything Dovecot's processes touch.

    Not under pytest's ``tmp_path``: unix socket paths are limited to 107 bytes, and
    pytest keeps its base directory at mode 0700, which Dovecot's unprivileged
    processes (as root: dovenull, dovecot, nobody) cannot enter.
    """
    root = Path(tempfile.mkdtemp(prefix="dovecot-"))
    root.chmod(0o755)
    return root


def write_config(root: Path, imap_port: int | None, lmtp_port: int | None,
                 users: dict[str, str], *, lmtp: bool = True) -> Path:
    """Write ``root/dovecot.conf`` (and the passwd-file) and return the config path."""
    user, uid, gid, login_user, internal_user = _identity()
    as_root = os.getuid() == 0
    run_dir = root / "run"
    for directory in (run_dir, root / "state", root / "home"):
        directory.mkdir(parents=True, exist_ok=True)
    if as_root:
        os.chown(root / "home", uid, gid)
    passwd = root / "passwd"
    passwd.write_text("".join(f"{address}:{{PLAIN}}{secret}::::::\n"
                              for address, secret in users.items()))
    passwd.chmod(0o600)
    if as_root:  # read by the auth process, which runs as the internal user
        internal = pwd.getpwnam(internal_user)
        os.chown(passwd, internal.pw_uid, internal.pw_gid)
    protocols = " ".join(p for p, on in (("imap", imap_port), ("lmtp", lmtp)) if on)
    imap_listener = (f"  inet_listener imap {{\n    address = {LOCALHOST}\n"
                     f"    port = {imap_port}\n  }}\n" if imap_port else "")
    lmtp_tcp = (f"  inet_listener lmtp {{\n    address = {LOCALHOST}\n"
                f"    port = {lmtp_port}\n  }}\n" if lmtp_port else "")
    mailboxes = "".join(
        f'  mailbox "{name}" {{\n    special_use = {use}\n    auto = subscribe\n  }}\n'
        for name, use in SPECIAL_FOLDERS.items())
    text = f"""# Written by tests/harness/dovecot.py: a private Dovecot in {root}
base_dir = {run_dir}
state_dir = {root / "state"}
instance_name = dovecot-test-{os.getpid()}-{imap_port or lmtp_port}
protocols = {protocols}
listen = {LOCALHOST}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {root / "dovecot.log"}
info_log_path = {root / "dovecot.log"}
debug_log_path = {root / "dovecot.log"}
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal_user).pw_gid).gr_name}
first_valid_uid = {min(uid, 500)}
last_valid_uid = 0
first_valid_gid = 0
mail_location = maildir:~/Maildir
mail_privileged_group =
mail_access_groups =
postmaster_address = postmaster@example.org
hostname = dovecot.test
lda_mailbox_autocreate = yes
imap_idle_notify_interval = 1 mins
# IDLE learns of changes through inotify; when the user's inotify instances run out
# (128 by default, e.g. with 1,000 IDLE processes of a benchmark running as the same
# user) Dovecot falls back to polling at this interval (default 30 s).
mailbox_idle_check_interval = 1 secs
mail_max_userip_connections = 5000
login_trusted_networks =
verbose_proctitle = no

namespace inbox {{
  inbox = yes
  separator = /
  prefix =
{mailboxes}}}

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root / "home"}/%d/%n allow_all_users=yes
}}

service imap-login {{
{imap_listener}  inet_listener imaps {{
    port = 0
  }}
  chroot =
  service_count = 0
  process_min_avail = 1
  process_limit = 4
  client_limit = 5000
  vsz_limit = 512M
}}
service imap {{
  process_limit = 3000
  client_limit = 1
}}
service lmtp {{
  unix_listener lmtp {{
    path = lmtp
    mode = 0666
  }}
{lmtp_tcp}}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
service managesieve-login {{
  inet_listener sieve {{
    port = 0
  }}
}}
service auth {{
  unix_listener auth-userdb {{
    mode = 0666
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
service auth-worker {{
  user = {"$default_internal_user" if as_root else user}
}}
default_process_limit = 100
default_client_limit = 20000
protocol lmtp {{
  postmaster_address = postmaster@example.org
}}
"""
    config = root / "dovecot.conf"
    config.write_text(text)
    return config


def _imap_ready(port: int) -> bool:
    with socket.create_connection((LOCALHOST, port), timeout=1) as sock:
        sock.settimeout(2)
        return sock.recv(200).startswith(b"* OK")


def start_dovecot(tmp_path: Path, *, imap: bool = True, lmtp: bool = False,
                  users: dict[str, str] | None = None,
                  timeout: float = START_TIMEOUT) -> DovecotServer:
    """Start a private Dovecot and wait until it answers.

    Its files live in a private directory in the system temp dir (``root``;
    ``tmp_path/dovecot/private`` links to it while it runs), and its log is kept
    in ``tmp_path/dovecot/dovecot.log`` after ``stop()``.

    ``DovecotMissing`` when the binary is not installed; ``DaemonError`` when it
    does not come up (the message carries the log's tail).
    """
    binary = dovecot_binary()
    users = dict(users or USERS)
    keep = tmp_path / "dovecot"
    keep.mkdir(parents=True, exist_ok=True)
    root = private_root()
    (keep / "private").unlink(missing_ok=True)
    (keep / "private").symlink_to(root)
    log_path = root / "dovecot.log"
    chosen: dict[str, int | None] = {}

    def launch(port: int) -> subprocess.Popen[bytes]:
        imap_port = port if imap else None
        lmtp_port = (free_port() if imap else port) if lmtp else None
        chosen.update(imap=imap_port, lmtp=lmtp_port)
        config = write_config(root, imap_port, lmtp_port, users, lmtp=lmtp)
        check = subprocess.run([binary, "-c", str(config), "-n"], capture_output=True,
                               timeout=30)
        if check.returncode != 0:
            raise DaemonError(f"dovecot rejected its config {config}:\n"
                              f"{check.stderr.decode(errors='replace')}", exited=False)
        with log_path.open("ab") as log:
            proc = subprocess.Popen([binary, "-F", "-c", str(config)], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise DaemonError(f"dovecot exited with status {proc.returncode}; log "
                                  f"{log_path}:\n{log_tail(log_path)}", exited=True)
            try:
                ready = (_imap_ready(imap_port) if imap_port
                         else socket.create_connection((LOCALHOST, lmtp_port), 1).close() is None)
                if ready:
                    return proc
            except OSError:
                pass
            if time.monotonic() > deadline:
                stop_daemon(proc)
                raise DaemonError(f"dovecot not ready within {timeout}s; log "
                                  f"{log_path}:\n{log_tail(log_path)}", exited=False)
            time.sleep(0.05)

    if not imap and not lmtp:
        raise ValueError("start_dovecot needs imap or lmtp")
    try:
        proc, _port = start_with_port_retry(launch, free_port)
    except BaseException:
        if log_path.exists():
            shutil.copy(log_path, keep / "dovecot.log")
        shutil.rmtree(root, ignore_errors=True)
        raise
    return DovecotServer(
        proc=proc, root=root, config=root / "dovecot.conf", host=LOCALHOST,
        port=chosen["imap"] or 0, lmtp_port=chosen["lmtp"],
        lmtp_socket=(root / "run" / "lmtp") if lmtp else None, log_path=log_path,
        keep_dir=keep, users=users,
    )


@pytest.fixture
def dovecot_server(tmp_path: Path) -> Iterator[DovecotServer]:
    """A private Dovecot with IMAP and LMTP; skipped only when dovecot is not installed."""
    try:
        server = start_dovecot(tmp_path, imap=True, lmtp=True)
    except DovecotMissing as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()
