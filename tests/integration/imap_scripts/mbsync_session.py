"""``mbsync`` (Debian isync): two-way sync of the server with a local Maildir.

The server gets messages (APPEND) and a folder; ``mbsync -a`` copies them to
a Maildir under ``target.workdir``. Then both sides change — a new message
written into the local Maildir, a local message marked seen and another
flagged, a message deleted on the server and one delivered on the server —
and a second ``mbsync -a`` must bring both sides to the same messages and
flags, which the script checks by Message-ID. A third run must change
nothing.
"""

from __future__ import annotations

import imaplib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from tests.integration.imap_scripts import Target, Transcript, crlf, session_messages

MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen",
                 "T": "\\Deleted"}
TIMEOUT = 120


class MbsyncMissing(RuntimeError):
    """mbsync is not installed."""


def mbsync_binary() -> str:
    found = shutil.which("mbsync")
    if found is None:
        raise MbsyncMissing("mbsync not found: install the Debian package isync")
    return found


def write_config(target: Target, work: Path) -> Path:
    local = work / "local"
    local.mkdir(parents=True, exist_ok=True)
    if target.use_tls or target.use_starttls:
        kind = "IMAPS" if target.use_tls else "STARTTLS"
        tls = f"SSLType {kind}\nCertificateFile {target.ca_file}\n"
    else:
        tls = "SSLType None\n"
    # mbsync matches a certificate's DNS names only (not IP addresses): over TLS it
    # connects to "localhost", which the gateway's self-signed certificate names.
    secure = target.use_tls or target.use_starttls
    host = "localhost" if secure and target.host == "127.0.0.1" else target.host
    config = work / "mbsyncrc"
    config.write_text(
        f"IMAPAccount server\nHost {host}\nPort {target.connect_port}\n"
        f"User {target.user}\nPass {target.password}\n{tls}AuthMechs LOGIN PLAIN\n"
        f"Timeout 60\n\n"
        f"IMAPStore remote\nAccount server\n\n"
        f"MaildirStore local\nPath {local}/\nInbox {local}/INBOX\nSubFolders Verbatim\n\n"
        f"Channel everything\nFar :remote:\nNear :local:\nPatterns INBOX Projects\n"
        f"Create Both\nRemove Both\nExpunge Both\nSyncState *\nCopyArrivalDate yes\n"
    )
    config.chmod(0o600)
    return config


def mbsync(config: Path) -> str:
    result = subprocess.run([mbsync_binary(), "-c", str(config), "-a"], capture_output=True,
                            text=True, timeout=TIMEOUT)
    if result.returncode != 0:
        raise AssertionError(f"mbsync failed ({result.returncode}):\n{result.stdout}\n"
                             f"{result.stderr}")
    return result.stdout + result.stderr


def imap_login(target: Target) -> imaplib.IMAP4:
    if target.use_tls:
        conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(target.host, target.connect_port,
                                                ssl_context=target.ssl_context(), timeout=30)
    else:
        conn = imaplib.IMAP4(target.host, target.connect_port, timeout=30)
    if target.use_starttls:
        conn.starttls(target.ssl_context())
    conn.login(target.user, target.password)
    return conn


MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>]*>)", re.IGNORECASE | re.MULTILINE)


def server_state(target: Target, folder: str) -> dict[str, list[str]]:
    """Message-ID -> flags (without \\Recent) of every message in the server's ``folder``."""
    conn = imap_login(target)
    try:
        kind, _ = conn.select(f'"{folder}"')
        if kind != "OK":
            return {}
        kind, data = conn.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        state: dict[str, list[str]] = {}
        if kind != "OK":
            return state
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, header = item
            flags = re.search(rb"FLAGS \(([^)]*)\)", head)
            found = MESSAGE_ID.search(header)
            key = found.group(1).decode() if found else "?"
            state[key] = sorted(f for f in (flags.group(1).decode().split() if flags else [])
                                if f != "\\Recent")
        return state
    finally:
        conn.logout()


def local_state(work: Path, folder: str) -> dict[str, list[str]]:
    """Message-ID -> flags of every message in the local Maildir folder."""
    directory = work / "local" / folder
    state: dict[str, list[str]] = {}
    for sub in ("new", "cur"):
        for path in sorted((directory / sub).glob("*")) if (directory / sub).is_dir() else []:
            found = MESSAGE_ID.search(path.read_bytes())
            key = found.group(1).decode() if found else "?"
            info = path.name.split(":2,", 1)[1] if ":2," in path.name else ""
            state[key] = sorted(MAILDIR_FLAGS[c] for c in info if c in MAILDIR_FLAGS)
    return state


def set_local_flags(work: Path, folder: str, message_id: str, letters: str) -> None:
    """Give a local message the Maildir flags ``letters`` (rename into cur/)."""
    directory = work / "local" / folder
    for sub in ("new", "cur"):
        for path in (directory / sub).glob("*"):
            found = MESSAGE_ID.search(path.read_bytes())
            if found and found.group(1).decode() == message_id:
                base = path.name.split(":2,", 1)[0]
                current = path.name.split(":2,", 1)[1] if ":2," in path.name else ""
                flags = "".join(sorted(set(current) | set(letters)))
                path.rename(directory / "cur" / f"{base}:2,{flags}")
                return
    raise AssertionError(f"{message_id} not in the local {folder}")


def run(target: Target, out: Transcript | None = None) -> Transcript:
    """Run the session against ``target``; steps are appended to ``out`` as they happen."""
    if target.workdir is None:
        raise ValueError("the mbsync script needs target.workdir")
    work = target.workdir / f"mbsync-{target.name}"
    work.mkdir(parents=True, exist_ok=True)
    out = [] if out is None else out
    messages = [m for m in session_messages() if MESSAGE_ID.search(m)][:4]
    ids = [MESSAGE_ID.search(m).group(1).decode() for m in messages]  # type: ignore[union-attr]

    conn = imap_login(target)
    try:
        conn.create('"Projects"')
        conn.append("INBOX", "(\\Flagged)", None, messages[0])
        conn.append("INBOX", "()", None, messages[1])
        conn.append("INBOX", "(\\Seen)", None, messages[2])
        conn.append('"Projects"', "()", None, messages[3])
    finally:
        conn.logout()

    config = write_config(target, work)
    mbsync(config)
    out.append(("first sync: local INBOX", local_state(work, "INBOX")))
    out.append(("first sync: local Projects", local_state(work, "Projects")))

    # Changes on both sides.
    local_new = crlf(b"Message-ID: <local-new@mbsync.test>\nFrom: me@example.org\n"
                     b"Subject: written locally\n\nfrom the laptop\n")
    name = f"{int(time.time())}.{os.getpid()}_1.laptop"
    (work / "local" / "INBOX" / "new" / name).write_bytes(local_new)
    set_local_flags(work, "INBOX", ids[1], "S")
    set_local_flags(work, "Projects", ids[3], "F")
    conn = imap_login(target)
    try:
        kind, data = conn.select("INBOX")
        if kind != "OK":
            raise AssertionError(f"SELECT INBOX after the first sync: {kind} {data!r}")
        _kind, data = conn.search(None, "HEADER", "Message-ID", ids[2])
        conn.store(data[0].split()[0].decode(), "+FLAGS", "(\\Deleted)")
        conn.expunge()
    finally:
        conn.logout()
    target.deliver(target.user, crlf(b"Message-ID: <delivered@mbsync.test>\n"
                                     b"From: mta@example.net\nSubject: delivered on the server"
                                     b"\n\nhello\n"), "INBOX")

    mbsync(config)
    for folder in ("INBOX", "Projects"):
        server, local = server_state(target, folder), local_state(work, folder)
        out.append((f"second sync: server {folder}", server))
        out.append((f"second sync: both sides agree on {folder}", server == local or
                    {"server": server, "local": local}))
    mbsync(config)
    out.append(("third sync changes nothing", local_state(work, "INBOX") ==
                server_state(target, "INBOX")))
    return out
