"""Internet mail into a folder: .eml files, mbox files and Maildirs.

Sources are read one message at a time (an mbox of any size is streamed, never
loaded whole) on a worker thread, converted, and stored in batches of
``BATCH`` messages, each batch one store transaction. A message that cannot
be read as Internet mail is skipped with a warning and counted; it never
stops the import.

Each message keeps its original bytes (IMAP FETCH returns exactly them) and
is converted to MAPI by :mod:`gateway.convert.mime_in`; the source's flags
(Maildir file names, mbox Status headers) become the read, flagged, answered
and draft states.

The way back out, a folder as an mbox file, is :mod:`gateway.store.exporter`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from gateway.store import tags as T
from gateway.store.errors import StoreError
from gateway.store.imap import (
    FLAG_STATUS_FLAGGED,
    VERB_FORWARD,
    VERB_REPLY_TO_SENDER,
    ImapAnswered,
)
from gateway.store.mailbox import Mailbox
from gateway.store.objects import MSGFLAG_READ, MSGFLAG_UNSENT, NewMessage
from gateway.store.txn import PropKey

log = logging.getLogger(__name__)

BATCH = 200
MAX_HEADER_BYTES = 256 * 1024
MAX_WARNINGS = 100
LINE_PIECE = 1 << 20
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
QUOTED_FROM = re.compile(rb">*From ")
"""An mboxrd-quoted ``From_`` line: one ``>`` less on import, one more on export."""
_UNFOLD = re.compile(r"\r?\n(?=[ \t])")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")

Flags = frozenset[str]
"""Any of ``seen``, ``flagged``, ``answered``, ``forwarded``, ``draft``."""


class Unparseable(ValueError):
    """Bytes that are not an Internet message."""


@dataclass
class RawMessage:
    """One message as a source holds it."""

    data: bytes | None
    origin: str
    """Where it came from, for warnings (``file.mbox, message 3``)."""
    size: int
    """Bytes of the source it took (progress)."""
    flags: Flags | None = None
    """None: read them from the message's Status/X-Status headers (mbox writers')."""
    delivered: datetime | None = None
    error: str | None = None
    """Set when the source could not hand over the message (too large ...)."""


@dataclass
class ImportResult:
    imported: int = 0
    skipped: int = 0
    bytes_read: int = 0
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.skipped += 1
        log.warning("import: %s", message)
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)


# -- sources ------------------------------------------------------------------------------------


def source_kind(path: Path) -> str:
    """``maildir``, ``mbox`` or ``eml`` by what is at ``path``."""
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            return "maildir"
        raise Unparseable(f"{path} is a directory without cur/ or new/ (not a Maildir)")
    with open(path, "rb") as handle:
        return "mbox" if handle.read(5) == b"From " else "eml"


def source_size(path: Path, kind: str) -> int:
    """Bytes the source holds (the total of a progress bar)."""
    if kind != "maildir":
        return path.stat().st_size
    return sum(p.stat().st_size for p in _maildir_files(path))


def read_source(path: Path, kind: str, max_bytes: int) -> Iterator[RawMessage]:
    if kind == "maildir":
        return read_maildir(path, max_bytes)
    if kind == "mbox":
        return read_mbox(path, max_bytes)
    return read_eml(path, max_bytes)


def read_eml(path: Path, max_bytes: int) -> Iterator[RawMessage]:
    size = path.stat().st_size
    if size > max_bytes:
        yield RawMessage(None, str(path), size, error=f"larger than {max_bytes} bytes")
        return
    yield RawMessage(path.read_bytes(), str(path), size)


def read_mbox(path: Path, max_bytes: int) -> Iterator[RawMessage]:
    """Messages of an mbox file (mboxrd quoting undone), streamed line by line.

    A ``From_`` line starts a message at the top of the file or after a blank
    line; the blank line before it (and at the very end) is the separator.
    Lines are read in pieces of at most ``LINE_PIECE`` bytes, so neither a
    huge file nor a huge line is ever held whole.
    """
    lines: list[bytes] = []
    number, size, too_big = 0, 0, False
    delivered: datetime | None = None
    offset = begun = 0
    line_start = previous_blank = True

    def finish(end: int) -> RawMessage:
        if lines and lines[-1] in (b"\n", b"\r\n"):
            lines.pop()
        origin = f"{path}, message {number}"
        if too_big:
            return RawMessage(None, origin, end - begun, error=f"larger than {max_bytes} bytes")
        return RawMessage(b"".join(lines), origin, end - begun, delivered=delivered)

    with open(path, "rb") as handle:
        while line := handle.readline(LINE_PIECE):
            starts, line_start = line_start, line.endswith(b"\n")
            if starts and previous_blank and line.startswith(b"From "):
                if number:
                    yield finish(offset)
                    begun = offset
                lines, number, size, too_big = [], number + 1, 0, False
                delivered = _from_line_date(line)
                offset += len(line)
                previous_blank = False
                continue
            offset += len(line)
            previous_blank = starts and line in (b"\n", b"\r\n")
            if not number:
                continue  # text before the first From_ line is no message
            if starts and line.startswith(b">") and QUOTED_FROM.match(line):
                line = line[1:]
            size += len(line)
            if size > max_bytes:
                too_big = True
                lines.clear()
            elif not too_big:
                lines.append(line)
    if number:
        yield finish(offset)


def _from_line_date(line: bytes) -> datetime | None:
    """The date of ``From sender Mon Jan  1 00:00:00 2024`` (asctime, UTC)."""
    parts = line.decode("latin-1").split()[2:]
    if len(parts) < 5:
        return None
    try:
        parsed = datetime.strptime(" ".join(parts[:5]), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return _date(" ".join(parts))
    return parsed.replace(tzinfo=UTC)


def _maildir_files(path: Path) -> list[Path]:
    files: list[Path] = []
    for sub in ("cur", "new"):
        folder = path / sub
        if folder.is_dir():
            files.extend(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return sorted(files, key=lambda p: p.name)


MAILDIR_FLAGS = {"S": "seen", "F": "flagged", "R": "answered", "P": "forwarded", "D": "draft"}
"""Maildir info flags; ``T`` (trashed, IMAP \\Deleted) is ignored: the message is imported."""


def read_maildir(path: Path, max_bytes: int) -> Iterator[RawMessage]:
    """Messages of ``cur/`` and ``new/`` by name (delivery order); flags from ``:2,``."""
    for file in _maildir_files(path):
        stat = file.stat()
        _, _, info = file.name.partition(":2,")
        flags = frozenset(MAILDIR_FLAGS[c] for c in info if c in MAILDIR_FLAGS)
        delivered = datetime.fromtimestamp(stat.st_mtime, UTC)
        if stat.st_size > max_bytes:
            yield RawMessage(None, str(file), stat.st_size, error=f"larger than {max_bytes} bytes")
            continue
        yield RawMessage(file.read_bytes(), str(file), stat.st_size, flags, delivered)


# -- headers to properties ---------------------------------------------------------------------


def _header_block(data: bytes) -> bytes:
    if not _HEADER_LINE.match(data):
        raise Unparseable("it does not start with a header field")
    window = data[:MAX_HEADER_BYTES]
    ends = [i for i in (window.find(b"\n\n"), window.find(b"\r\n\r\n")) if i >= 0]
    if ends:
        return data[:min(ends)]
    if len(data) > MAX_HEADER_BYTES:
        raise Unparseable(f"no end of the header within {MAX_HEADER_BYTES} bytes")
    return data


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed if parsed.year >= 1601 else None


class Headers:
    """Header fields as they are (8-bit bytes kept as surrogates), looked up by name."""

    def __init__(self, head: bytes):
        msg = BytesParser(policy=compat32).parsebytes(head, headersonly=True)
        self.fields: list[tuple[str, str]] = [(name.lower(), str(value))
                                              for name, value in msg.raw_items()]

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.fields if key == name]

    def get(self, name: str, default: str | None = None) -> str | None:
        found = self.get_all(name)
        return found[0] if found else default


def _received_date(msg: Headers) -> datetime | None:
    received = msg.get("Received")
    if received is None:
        return None
    return _date(str(received).rpartition(";")[2].strip())


def header_flags(msg: Headers) -> Flags:
    """Flags mbox writers keep in headers: Status/X-Status (mutt) and X-Mozilla-Status."""
    status, extra = str(msg.get("Status", "")), str(msg.get("X-Status", ""))
    flags = {"seen"} if "R" in status else set()
    flags |= {flag for char, flag in (("A", "answered"), ("F", "flagged"), ("T", "draft"))
              if char in extra}
    mozilla = str(msg.get("X-Mozilla-Status", "")).strip()
    if re.fullmatch(r"[0-9A-Fa-f]{1,4}", mozilla):
        bits = int(mozilla, 16)
        flags |= {flag for bit, flag in ((0x1, "seen"), (0x2, "answered"), (0x4, "flagged"),
                                         (0x1000, "forwarded")) if bits & bit}
    return frozenset(flags)


def state_props(flags: Flags) -> dict[PropKey, Any]:
    """The MAPI form of a source's flags (read, draft, flagged, answered, forwarded)."""
    props: dict[PropKey, Any] = {
        T.PidTagMessageFlags: ((MSGFLAG_READ if "seen" in flags else 0)
                               | (MSGFLAG_UNSENT if "draft" in flags else 0))}
    if "flagged" in flags:
        props[T.PidTagFlagStatus] = FLAG_STATUS_FLAGGED
    if "forwarded" in flags:
        props[T.PidTagLastVerbExecuted] = VERB_FORWARD
        if "answered" in flags:
            props[ImapAnswered] = True
    elif "answered" in flags:
        props[T.PidTagLastVerbExecuted] = VERB_REPLY_TO_SENDER
    return props


def to_new_message(raw: RawMessage) -> NewMessage:
    """The message converted by :mod:`gateway.convert.mime_in` (bodies, recipients,
    attachments, embedded messages), with the source's flags and delivery time."""
    from gateway.convert import mime_in

    if raw.error is not None or raw.data is None:
        raise Unparseable(raw.error or "no data")
    if not raw.data.strip():
        raise Unparseable("empty")
    headers = Headers(_header_block(raw.data))
    if not headers.fields:
        raise Unparseable("no header fields")
    message = mime_in.parse(raw.data)
    message.props.update(state_props(header_flags(headers) if raw.flags is None
                                     else raw.flags))
    delivered = (raw.delivered or _received_date(headers)
                 or message.props.get(T.PidTagClientSubmitTime))
    if delivered is not None:
        message.props[T.PidTagMessageDeliveryTime] = delivered
    return message


# -- import -------------------------------------------------------------------------------------


Progress = Callable[[ImportResult], None]


def _next_batch(source: Iterator[RawMessage], size: int,
                result: ImportResult) -> list[tuple[str, NewMessage]]:
    batch: list[tuple[str, NewMessage]] = []
    for raw in source:
        result.bytes_read += raw.size
        try:
            batch.append((raw.origin, to_new_message(raw)))
        except Unparseable as exc:
            result.warn(f"{raw.origin}: skipped, {exc}")
        if len(batch) >= size:
            break
    return batch


async def _store(mbox: Mailbox, folder_id: int, batch: list[tuple[str, NewMessage]],
                 result: ImportResult) -> None:
    try:
        await mbox.create_messages(folder_id, [message for _, message in batch])
        result.imported += len(batch)
        return
    except StoreError:
        if len(batch) == 1:
            raise
    for origin, message in batch:  # find the culprits; store the rest
        try:
            await mbox.create_messages(folder_id, [message])
            result.imported += 1
        except StoreError as exc:
            result.warn(f"{origin}: skipped, the store refused it: {exc}")


async def import_path(mbox: Mailbox, folder_id: int, path: Path,
                      progress: Progress | None = None, kind: str | None = None,
                      batch_size: int = BATCH) -> ImportResult:
    """Import an .eml file, an mbox file or a Maildir into ``folder_id``."""
    if kind is None:
        kind = await asyncio.to_thread(source_kind, path)
    source = read_source(path, kind, mbox.limits.max_message_bytes)
    result = ImportResult()
    while batch := await asyncio.to_thread(_next_batch, source, batch_size, result):
        try:
            await _store(mbox, folder_id, batch, result)
        except StoreError as exc:
            result.warn(f"{batch[0][0]}: skipped, the store refused it: {exc}")
        if progress is not None:
            progress(result)
    if progress is not None:
        progress(result)
    return result
