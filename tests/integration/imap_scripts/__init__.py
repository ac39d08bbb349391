"""Realistic sessions of unmodified IMAP clients, runnable against any IMAP server.

Each script module has ``run(target: Target) -> Transcript``: it logs in as
``target.user``, does what a real client of that library does, and returns
what it saw as a list of ``(step, value)`` pairs with everything that
legitimately differs between servers normalised away (UIDVALIDITY values,
capability lists, server texts, dates the server chooses, ``\\Recent``).
The same script is run against Dovecot and against the gateway and the two
transcripts are compared step by step (``first_differences``); a script
also raises ``AssertionError`` itself where the RFC leaves nothing open.

The scripts are shared by ``tests/integration/test_imap_clients*.py`` and
``tests/bench/imap_dovecot.py`` (for the corpus and the target description).
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "mail"
# Small, varied messages: plain, alternative, nested message/rfc822, attachments, charsets.
SESSION_CORPUS = (
    "thunderbird-reply.eml",
    "gmail-alternative.eml",
    "outlook-embedded-message.eml",
    "apple-mail-rfc2231-filename.eml",
    "thunderbird-iso-2022-jp.eml",
    "k9-mail-android.eml",
)

Transcript = list[tuple[str, Any]]


@dataclass
class Target:
    """An IMAP server a script talks to, and how to put mail into it behind IMAP's back."""

    name: str                               # "dovecot" or "gateway" (for messages)
    host: str
    port: int                               # plaintext port (LOGIN allowed on loopback)
    user: str
    password: str
    other_user: str
    other_password: str
    deliver: Callable[[str, bytes, str], None]   # (address, raw, folder)
    tls_port: int | None = None             # implicit TLS, when the server offers it
    ca_file: Path | None = None
    use_tls: bool = False                   # scripts connect to tls_port instead of port
    use_starttls: bool = False              # STARTTLS on the plain port before LOGIN
    workdir: Path | None = None             # scratch space (mbsync's Maildir and config)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def connect_port(self) -> int:
        if self.use_tls:
            if self.tls_port is None:
                raise ValueError(f"{self.name} offers no implicit TLS port")
            return self.tls_port
        return self.port

    def ssl_context(self) -> ssl.SSLContext | None:
        """The context for TLS (trusting ``ca_file``), or None for plaintext."""
        if not (self.use_tls or self.use_starttls):
            return None
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        context.check_hostname = False
        return context


def debug_level() -> int:
    """imaplib's protocol trace level from ``IMAP_SCRIPT_DEBUG`` (4 prints every line sent
    and received to stderr, which pytest shows for a failing test)."""
    try:
        return int(os.environ.get("IMAP_SCRIPT_DEBUG", "0"))
    except ValueError:
        return 0


def crlf(raw: bytes) -> bytes:
    """``raw`` with every line ending CRLF (what APPEND should carry)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def corpus_message(name: str) -> bytes:
    return crlf((CORPUS / name).read_bytes())


def session_messages() -> list[bytes]:
    """The small varied set the client scripts append, CRLF line endings."""
    return [corpus_message(name) for name in SESSION_CORPUS]


def corpus_cycle(count: int, *, tag: str = "bench") -> list[bytes]:
    """``count`` messages from the whole corpus, cycled, each with a distinct Message-ID
    and a distinct subject suffix (so header searches find exactly one)."""
    names = sorted(p.name for p in CORPUS.glob("*.eml"))
    bodies = [crlf((CORPUS / name).read_bytes()) for name in names]
    out = []
    for index in range(count):
        raw = bodies[index % len(bodies)]
        out.append(with_message_id(raw, f"<{tag}-{index}@corpus.test>", f"{tag}-{index}"))
    return out


def with_message_id(raw: bytes, message_id: str, subject_tag: str = "") -> bytes:
    """``raw`` with its Message-ID (and Subject, suffixed by ``subject_tag``) replaced."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines: list[bytes] = []
    skip = False
    subject = b""
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if skip:
                continue
            lines.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower()
        skip = name in (b"message-id", b"subject")
        if name == b"subject":
            subject = line.split(b":", 1)[1].strip()
            continue
        if not skip:
            lines.append(line)
    if subject_tag:
        subject = (subject + b" " if subject else b"") + subject_tag.encode()
    lines.insert(0, b"Message-ID: " + message_id.encode())
    lines.insert(1, b"Subject: " + subject)
    return b"\r\n".join(lines) + (sep or b"\r\n\r\n") + body


def message_date(raw: bytes) -> datetime | None:
    """The Date header of ``raw`` as an aware datetime (None when missing or invalid)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n"):
        if line.lower().startswith("date:"):
            try:
                when = parsedate_to_datetime(line[5:].strip())
            except (TypeError, ValueError):
                return None
            return when if when.tzinfo else None
    return None


def flags_of(values: Any) -> list[str]:
    """Sorted flags as text, without ``\\Recent`` (IMAP4rev2 has none; servers differ)."""
    out = []
    for flag in values or ():
        text = flag.decode() if isinstance(flag, bytes) else str(flag)
        if text.lower() != "\\recent":
            out.append(text)
    return sorted(out, key=str.lower)


def plain(value: Any) -> Any:
    """Response data as comparable plain data: bytes to text, tuples to lists, envelope
    and address objects to lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    return value


def first_differences(ours: Transcript, reference: Transcript, limit: int = 5) -> list[str]:
    """Human-readable differences between two transcripts of the same script."""
    diffs: list[str] = []
    ref_steps = dict(reference)
    our_steps = dict(ours)
    for step, expected in reference:
        if step not in our_steps:
            diffs.append(f"{step}: missing in ours (reference {expected!r})")
        elif our_steps[step] != expected:
            diffs.append(f"{step}:\n    ours      {our_steps[step]!r}\n    reference {expected!r}")
        if len(diffs) >= limit:
            break
    for step, _value in ours:
        if step not in ref_steps and len(diffs) < limit:
            diffs.append(f"{step}: only in ours")
    return diffs
