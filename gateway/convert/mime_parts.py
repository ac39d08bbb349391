"""The structure of an Internet message, split over offsets into its bytes, within limits.

:class:`Part` is one MIME entity: where it starts, where its body starts and
ends in the buffer, and its header fields (names lower-cased, values unfolded
bytes). :func:`children` finds the parts of a multipart by searching for its
delimiter lines — linear in the part's size, never copying bodies — and stops
at the part limit of the :class:`Budget` shared by one parse. Header blocks are
read up to ``max_header_bytes``; Content-Type and Content-Disposition
parameters (RFC 2231 continuations and charsets) are read by the stdlib's
``compat32`` message, capped so its quadratic corner cases stay small.
"""

from __future__ import annotations

import binascii
import logging
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value
from functools import lru_cache
from typing import Any

from gateway.convert import charsets
from gateway.convert.charsets import decode_words, unescape
from gateway.store import tags as T
from gateway.store.txn import PropKey

log = logging.getLogger("gateway.convert.mime_in")

MAX_PARAM_HEADER = 16 * 1024
RENDERING_POSITION_NONE = 0xFFFFFFFF
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_SHORT_NAME_BAD = re.compile(r"[^A-Za-z0-9!#$%&'()\-@^_`{}~]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Budget:
    max_parts: int
    max_depth: int
    max_header_bytes: int
    defects: list[str] | None
    parts: int = 0

    def defect(self, text: str) -> None:
        log.debug("mime: %s", text)
        if self.defects is not None and len(self.defects) < 1000:
            self.defects.append(text)


# -- entities ------------------------------------------------------------------------------


class Part:
    """One MIME entity: offsets into its buffer and its header fields."""

    __slots__ = ("_msg", "_params", "body", "end", "fields", "head_end", "raw", "start")

    def __init__(self, raw: bytes, start: int, end: int, budget: Budget, top: bool = False):
        self.raw, self.start, self.end = raw, start, end
        if top and raw.startswith(b"From ", start):
            newline = raw.find(b"\n", start, end)
            self.start = start = end if newline < 0 else newline + 1
        self.fields, self.head_end, self.body = split_head(raw, start, end, budget)
        self._msg: Message | None = None
        self._params: dict[str, dict[str, Any]] = {}

    def get(self, name: str) -> bytes | None:
        for key, value in self.fields:
            if key == name:
                return value
        return None

    def all(self, name: str) -> list[bytes]:
        return [value for key, value in self.fields if key == name]

    @property
    def msg(self) -> Message:
        """Content-Type and Content-Disposition in a stdlib message (parameter parsing)."""
        if self._msg is None:
            self._msg = Message()
            for name in ("content-type", "content-disposition"):
                value = self.get(name)
                if value is not None:
                    self._msg[name] = value[:MAX_PARAM_HEADER].decode("ascii", "surrogateescape")
        return self._msg

    def ctype(self, default: str = "text/plain") -> str:
        if self.get("content-type") is None:
            return default
        return self.msg.get_content_type()

    def params(self, header: str = "content-type") -> dict[str, Any]:
        """The parameters of a header field, read once: a ``str``, or for an RFC 2231
        value the stdlib's ``(charset, language, value)``."""
        if header not in self._params:
            found: dict[str, Any] = {}
            try:
                for key, value in (self.msg.get_params(header=header) or [])[1:]:
                    found.setdefault(key, value)
            except (LookupError, ValueError, TypeError, IndexError):
                pass
            self._params[header] = found
        return self._params[header]

    @property
    def charset(self) -> str | None:
        value = self.params().get("charset")
        if isinstance(value, tuple):
            value = collapse_rfc2231_value(value)
        if not isinstance(value, str) or not value.strip().isascii():
            return None
        return value.strip().lower() or None

    @property
    def boundary(self) -> str | None:
        value = self.params().get("boundary")
        return None if value is None else collapse_rfc2231_value(value).rstrip()

    def param(self, name: str) -> str | None:
        value = self.params().get(name)
        if isinstance(value, tuple):
            return collapse_rfc2231_value(value, "replace", "utf-8")
        return None if value is None else decode_words(unescape(str(value), self.charset))

    @property
    def disposition(self) -> str:
        value = self.get("content-disposition")
        return "" if value is None else value.split(b";", 1)[0].strip().lower().decode("ascii",
                                                                                         "replace")

    @property
    def filename(self) -> str | None:
        """Content-Disposition's filename, else Content-Type's name: RFC 2231 values as
        they say, others with RFC 2047 words decoded (as Outlook and Gmail write them)."""
        for param, header in (("filename", "content-disposition"), ("name", "content-type")):
            value = self.params(header).get(param)
            if isinstance(value, tuple):
                name = collapse_rfc2231_value(value, "replace", "utf-8")
            elif value:
                name = decode_words(unescape(value, self.charset))
            else:
                continue
            return clean_filename(name) or None
        return None

    def text(self, name: str) -> str:
        value = self.get(name)
        return "" if value is None else charsets.header_bytes(value).strip()

    def payload(self) -> bytes:
        data = self.raw[self.body:self.end]
        cte = self.text("content-transfer-encoding").lower()
        if cte == "base64":
            return base64(data)
        if cte == "quoted-printable":
            return binascii.a2b_qp(data)
        return data

    def entity(self) -> bytes:
        return self.raw[self.start:self.end]


def split_head(raw: bytes, start: int, end: int,
               budget: Budget) -> tuple[list[tuple[str, bytes]], int, int]:
    """Header fields (lower-case names, unfolded values), where they end, where the body
    starts. Fields are read up to ``max_header_bytes``; beyond that the block is only
    searched for its end."""
    fields: list[tuple[str, bytes]] = []
    pos = start
    limit = min(end, start + budget.max_header_bytes)
    while pos < limit:
        newline = raw.find(b"\n", pos, end)
        line_end = end if newline < 0 else newline + 1
        line = raw[pos:min(line_end, limit)].rstrip(b"\r\n")
        if not line and line_end <= limit:
            return fields, pos, line_end
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + line)
        elif _HEADER_LINE.match(line):
            key, _, value = line.partition(b":")
            fields.append((key.strip().lower().decode("ascii"), value.lstrip(b" \t")))
        elif line:
            return fields, pos, pos
        pos = line_end
    if pos >= end:
        return fields, end, end
    budget.defect(f"header block over {budget.max_header_bytes} bytes; rest ignored")
    blank = re.compile(rb"\n\r?\n").search(raw, pos - 1, end)
    if blank is None:
        return fields, end, end
    return fields, blank.start() + 1, blank.end()


@lru_cache(maxsize=256)
def _delimiter(boundary: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"\n--" + re.escape(boundary) + rb"(--)?[ \t]*(?=\r?\n|\Z)")


def children(part: Part, budget: Budget) -> tuple[list[Part], bytes | None] | None:
    """The parts of a multipart and the unread rest beyond the part limit (None: no
    boundary or no delimiter found)."""
    boundary = part.boundary
    if not boundary or len(boundary) > 200:
        return None
    pattern = _delimiter(boundary.encode("utf-8", "surrogateescape"))
    raw, pos = part.raw, max(part.body - 1, part.start)
    children: list[Part] = []
    content_start = None
    while True:
        match = pattern.search(raw, pos, part.end)
        stop = part.end if match is None else match.start() - (raw[match.start() - 1:match.start()]
                                                               == b"\r")
        if content_start is not None:
            budget.parts += 1
            if budget.parts > budget.max_parts:
                budget.defect(f"more than {budget.max_parts} parts; the rest kept unread")
                return children, raw[content_start:part.end]
            children.append(Part(raw, content_start, max(stop, content_start), budget))
        if match is None or match.group(1):
            break
        after = match.end()
        after += 2 if raw[after:after + 2] == b"\r\n" else 1 if raw[after:after + 1] == b"\n" else 0
        content_start, pos = after, max(after - 1, match.end())
    if content_start is None:
        return None
    return children, None


def base64(data: bytes) -> bytes:
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        pass
    clean = re.sub(rb"[^A-Za-z0-9+/]", b"", data.split(b"=", 1)[0])
    clean = clean[: len(clean) - len(clean) % 4] if len(clean) % 4 == 1 else clean
    try:
        return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4))
    except binascii.Error:
        return data


def unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed undone: soft line breaks joined, space-stuffing removed,
    quoted lines written ``> text`` (one space after the quote marks)."""
    out: list[str] = []
    joined: str | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        body = line[depth:]
        body = body[1:] if body.startswith(" ") else body
        if joined is None:
            joined = (">" * depth + " ") if depth else ""
        if body.endswith(" ") and body != "-- ":
            joined += body[:-1] if delsp else body
            continue
        out.append(joined + body)
        joined = None
    if joined:
        out.append(joined)
    return "\r\n".join(out)


def clean_filename(name: str) -> str:
    """A file name as attachments keep it: no control characters, no directories,
    no surrounding blanks, at most 255 characters."""
    name = re.split(r"[\\/]", _CONTROL.sub("", name))[-1].strip()
    return name[:255].strip()


def filename_props(name: str) -> dict[PropKey, Any]:
    """Long and 8.3 file names, extension and display name of an attachment."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    short_stem = _SHORT_NAME_BAD.sub("", stem).upper() or "ATT"
    short_ext = _SHORT_NAME_BAD.sub("", ext).upper()[:3]
    if len(short_stem) > 8 or short_stem != stem.upper() or short_ext != ext.upper():
        short_stem = short_stem[:6] + "~1"
    props: dict[PropKey, Any] = {
        T.PidTagAttachLongFilename: name, T.PidTagDisplayName: name,
        T.PidTagAttachFilename: short_stem + ("." + short_ext if short_ext else ""),
    }
    if ext:
        props[T.PidTagAttachExtension] = "." + ext
    return props
