"""The data behind IMAP FETCH: sizes, dates, ENVELOPE, BODYSTRUCTURE and body sections.

:func:`fetch_info` answers the per-message items (RFC822.SIZE, INTERNALDATE,
ENVELOPE, BODY, BODYSTRUCTURE) for a batch of messages with one query when
their structures are cached. Importing this module registers the parser
with the store (:func:`install`), so a message created with Internet bytes
gets its structure in the same write. Others (stored before, or by a process
without the plugin) are parsed (:mod:`plugins.imap.mime_structure`) on the
first FETCH, on a reader thread, the results of a whole batch written back in
one writer call; a blob over :data:`PARSE_IN_MEMORY` is parsed from a
memory-mapped temporary file. A message made through MAPI is first rendered
to MIME once (:func:`gateway.store.mime_cache.ensure_mime`).

:func:`section` serves ``BODY[...]`` / ``BINARY[...]`` as ``(length, chunks)``:
the literal's length first, then the bytes streamed from the blob by offset,
never the whole of a large message in memory. Header-field selections are
small and built in memory. BINARY decodes base64 and quoted-printable on the
fly; an unknown transfer encoding raises :class:`BinaryUndecodable`
(``NO [UNKNOWN-CTE]``).

Sections follow RFC 3501 6.4.5 / RFC 9051 6.4.5. A part number that does not
exist gives an empty string (as Dovecot does); HEADER/TEXT of a part that is
not message/rfc822 too.
"""

from __future__ import annotations

import binascii
import logging
import mmap
import re
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from gateway.store import Mailbox, mime_cache
from gateway.store.errors import CorruptStore
from gateway.store.txn import Txn
from gateway.store.values import from_filetime
from plugins.imap.mime_envelope import select_fields
from plugins.imap.mime_structure import (
    IDENTITY_ENCODINGS,
    MESSAGE,
    MULTIPART,
    STRUCTURE_VERSION,
    MappedBuffer,
    Node,
    ParsedMessage,
    load_tree,
    opaque_message,
    parse_message,
    parse_served,
    to_crlf,
)

log = logging.getLogger("gateway.imap.fetch")

BATCH = 500
"""Messages per query in :func:`fetch_info`."""
PARSE_GROUP = 50
"""Messages parsed per reader call (other reads get a turn in between)."""
TREE_CACHE = 256
"""Part trees kept in memory (by blob hash), for FETCH of several sections."""
PARSE_IN_MEMORY = 16 << 20
"""Blobs larger than this are parsed from a memory-mapped temporary file."""
DECODE_IN_MEMORY = 1 << 20
"""Encoded parts up to this size are decoded in memory for BINARY; larger ones twice
streamed (once to count, once to send)."""
READ_AT_ONCE = 256 * 1024
"""Sections up to this size are read in one go; larger ones are streamed in chunks."""
READ_AHEAD = 8 << 20
"""Bytes of small messages ``fetch_info(bodies=True)`` reads ahead per batch."""
MAX_FIELDS_HEADER = 4 << 20
"""HEADER.FIELDS looks at most this far into a header (it is built in memory)."""
MAX_FIELD_NAMES = 1000
MAX_PART_NUMBER = 1_000_000

_TEXTS = ("", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME")
_FIELD_NAME = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BinaryUndecodable(Exception):
    """BINARY of a part whose Content-Transfer-Encoding is unknown: ``NO [UNKNOWN-CTE]``."""


UnknownCharset = BinaryUndecodable
"""The name the interface notes also use for :class:`BinaryUndecodable`."""


# -- section specifications -----------------------------------------------------------------


@dataclass(frozen=True)
class SectionSpec:
    part: tuple[int, ...]
    """() = the whole message; (1, 2) = "1.2"."""
    text: str
    """"", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT" or "MIME"."""
    fields: tuple[str, ...] = ()
    """Upper-cased header names for HEADER.FIELDS[.NOT]."""

    @classmethod
    def parse(cls, section: str, fields: Iterable[str | bytes] | None = None) -> SectionSpec:
        """``section`` is what stood between ``[`` and ``]`` before any ``(``; ValueError
        with a reason for a malformed one."""
        if not isinstance(section, str):
            raise ValueError("section must be text")
        pieces = section.split(".") if section else []
        part: list[int] = []
        while pieces and pieces[0].isdigit():
            number = pieces.pop(0)
            if number.startswith("0") or not 0 < int(number) <= MAX_PART_NUMBER:
                raise ValueError(f"invalid part number {number!r}")
            part.append(int(number))
        text = ".".join(pieces).upper()
        if text not in _TEXTS or (section and not text and not part):
            raise ValueError(f"unknown section {section!r}")
        if text == "MIME" and not part:
            raise ValueError("MIME needs a part number")
        names: tuple[str, ...] = ()
        if text.startswith("HEADER.FIELDS"):
            if not fields:
                raise ValueError(f"{text} needs a list of header names")
            decoded = [f.decode("ascii", "replace") if isinstance(f, bytes) else f
                       for f in fields]
            if len(decoded) > MAX_FIELD_NAMES:
                raise ValueError("too many header names")
            for name in decoded:
                if not isinstance(name, str) or not _FIELD_NAME.match(name):
                    raise ValueError(f"invalid header name {name!r}")
            names = tuple(name.upper() for name in decoded)
        elif fields:
            raise ValueError(f"{text or 'a part'} takes no header list")
        return cls(tuple(part), text, names)

    def imap(self) -> str:
        """The canonical form for the response: ``1.2.HEADER.FIELDS (FROM TO)``."""
        out = ".".join(str(n) for n in self.part)
        if self.text:
            out = f"{out}.{self.text}" if out else self.text
        if self.fields:
            out += " (" + " ".join(self.fields) + ")"
        return out


# -- per-message data -------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageInfo:
    message_id: int
    size: int
    """RFC822.SIZE: the exact length of what BODY[] returns."""
    internal_date: datetime
    envelope: bytes
    body: bytes
    """BODY (the non-extensible BODYSTRUCTURE)."""
    bodystructure: bytes
    digest: str = ""
    """Hash of the MIME blob the sections are read from."""
    crlf: bool = False
    """The blob has bare LF line ends, served as CRLF."""
    data: bytes | None = field(default=None, repr=False, compare=False)
    """The served bytes, when :func:`fetch_info` read them ahead (``bodies=True``)."""


def _date(value: object) -> datetime:
    if isinstance(value, int):
        try:
            return from_filetime(value)
        except (OverflowError, ValueError):
            pass
    return _EPOCH


def _row(parsed: ParsedMessage, digest: str) -> mime_cache.StructureRow:
    return (digest, STRUCTURE_VERSION, parsed.size, parsed.crlf, parsed.envelope,
            parsed.body, parsed.bodystructure, parsed.tree())


def build_row(raw: bytes, digest: str) -> mime_cache.StructureRow:
    """The cache row of a MIME blob (registered with the store for new messages)."""
    try:
        parsed = parse_message(raw)
    except Exception:  # the parser must not raise; should it, serve the bytes opaque
        log.exception("MIME structure of blob %s not parsed", digest)
        parsed = opaque_message(raw)
    return _row(parsed, digest)


def install() -> None:
    """Have the store derive structures when messages with Internet bytes are created
    (called when the plugin starts; importing this module does it too)."""
    mime_cache.register_structure_builder(STRUCTURE_VERSION, build_row)


install()


def _parse_group(txn: Txn, digests: list[str]) -> dict[str, mime_cache.StructureRow]:
    """Parse blobs on a reader thread, one at a time (only one message held)."""
    out: dict[str, mime_cache.StructureRow] = {}
    for digest in digests:
        try:
            if txn.blobs.size(txn.conn, digest) > PARSE_IN_MEMORY:
                try:
                    out[digest] = _build_large(txn, digest)
                    continue
                except OSError:  # no room for the temporary file: parse in memory
                    log.exception("MIME structure of blob %s: no temporary file", digest)
            out[digest] = build_row(mime_cache.blob_bytes(txn, digest), digest)
        except CorruptStore:  # its message went away since it was listed
            continue
    return out


def _build_large(txn: Txn, digest: str) -> mime_cache.StructureRow:
    """Parse a large blob from a temporary file beside the store, memory-mapped."""
    with tempfile.TemporaryFile(dir=txn.info.path) as raw:
        lfs = crlfs = 0
        after_cr = False
        for chunk in txn.blobs.iter_chunks(txn.conn, digest):
            raw.write(chunk)
            lfs += chunk.count(b"\n")
            crlfs += chunk.count(b"\r\n") + (after_cr and chunk.startswith(b"\n"))
            after_cr = chunk.endswith(b"\r")
        raw.flush()
        converted = lfs != crlfs
        if not converted:
            return _build_mapped(raw, digest, False)
        raw.seek(0)
        with tempfile.TemporaryFile(dir=txn.info.path) as served:
            for chunk in mime_cache.crlf_chunks(iter(lambda: raw.read(1 << 20), b"")):
                served.write(chunk)
            served.flush()
            return _build_mapped(served, digest, True)


def _build_mapped(file: BinaryIO, digest: str, converted: bool) -> mime_cache.StructureRow:
    with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        try:
            parsed = parse_served(MappedBuffer(mapped), converted)
        except Exception:  # the parser must not raise; should it, serve the bytes opaque
            log.exception("MIME structure of blob %s not parsed", digest)
            parsed = opaque_message(mapped[:])
        return _row(parsed, digest)


async def _parse_blobs(mbox: Mailbox, digests: list[str]) -> dict[str, mime_cache.StructureRow]:
    rows: dict[str, mime_cache.StructureRow] = {}
    for start in range(0, len(digests), PARSE_GROUP):
        rows.update(await mbox.read(_parse_group, digests[start:start + PARSE_GROUP]))
    try:
        await mbox.write(mime_cache.save_structures, list(rows.values()))
    except Exception:  # the answer stands; it is only not cached
        log.exception("store %s: caching %d MIME structures failed", mbox.key, len(rows))
    return rows


async def fetch_info(mbox: Mailbox, message_ids: list[int], *,
                     bodies: bool = False) -> dict[int, MessageInfo]:
    """The FETCH data of each existing message among ``message_ids`` (others are left
    out): one query per batch of :data:`BATCH` when cached. With ``bodies`` (the FETCH
    asks for sections) small messages' bytes and part trees come in the same reader
    call, up to :data:`READ_AHEAD` bytes a batch, so their sections need no more."""
    ids = list(dict.fromkeys(message_ids))
    out: dict[int, MessageInfo] = {}
    for start in range(0, len(ids), BATCH):
        out.update(await _fetch_batch(mbox, ids[start:start + BATCH], bodies))
    return out


def _read_batch(txn: Txn, ids: list[int], bodies: bool
                ) -> tuple[list[tuple[Any, ...]], dict[str, bytes], dict[str, bytes]]:
    """The cache rows of a batch, and with ``bodies`` the served bytes of its small
    messages and their part trees (by blob hash)."""
    rows = mime_cache.fetch_rows(txn, ids, STRUCTURE_VERSION)
    datas: dict[str, bytes] = {}
    trees: dict[str, bytes] = {}
    if not bodies:
        return rows, datas, trees
    budget = READ_AHEAD
    for _, digest, size, crlf, envelope, *_ in rows:
        if envelope is None or digest in datas or size > READ_AT_ONCE or size > budget:
            continue
        try:
            raw = mime_cache.blob_bytes(txn, digest)
        except CorruptStore:
            continue
        datas[digest] = to_crlf(raw) if crlf else raw
        budget -= size
    missing = [digest for digest in datas if digest not in _TREES]
    if missing:
        trees = mime_cache.structure_trees(txn, missing, STRUCTURE_VERSION)
    return rows, datas, trees


async def _fetch_batch(mbox: Mailbox, ids: list[int], bodies: bool) -> dict[int, MessageInfo]:
    rows, datas, trees = await mbox.read(_read_batch, ids, bodies)
    for digest, tree in trees.items():
        _remember_tree(digest, load_tree(tree))
    out: dict[int, MessageInfo] = {}
    todo: dict[int, str] = {}
    dates: dict[int, datetime] = {}
    without_mime: list[int] = []
    for mid, digest, size, crlf, envelope, body, structure, when in rows:
        dates[mid] = _date(when)
        if digest is None:
            without_mime.append(mid)
        elif envelope is None:
            todo[mid] = digest
        else:
            out[mid] = MessageInfo(mid, int(size), dates[mid], bytes(envelope), bytes(body),
                                   bytes(structure), digest, bool(crlf), datas.get(digest))
    if without_mime:
        for mid, (digest, _) in (await mime_cache.ensure_mime(mbox, without_mime)).items():
            todo[mid] = digest
    if todo:
        parsed = await _parse_blobs(mbox, list(dict.fromkeys(todo.values())))
        for mid, digest in todo.items():
            if digest not in parsed:
                continue  # expunged meanwhile: left out, as RFC 2180 4.1.1 allows
            _, _, size, crlf, envelope, body, structure, _ = parsed[digest]
            out[mid] = MessageInfo(mid, size, dates[mid], envelope, body, structure, digest,
                                   crlf)
    return out


# -- part trees --------------------------------------------------------------------------------

_TREES: OrderedDict[str, Node] = OrderedDict()


async def _tree(mbox: Mailbox, info: MessageInfo) -> Node:
    node = _TREES.get(info.digest)
    if node is not None:
        _TREES.move_to_end(info.digest)
        return node
    data = await mbox.read(mime_cache.structure_tree, info.digest, STRUCTURE_VERSION)
    if data is None:  # not cached (yet, or no longer): parse again
        rows = await _parse_blobs(mbox, [info.digest])
        if info.digest not in rows:
            raise CorruptStore(f"message {info.message_id}: its MIME blob is gone")
        data = rows[info.digest][7]
    node = load_tree(data)
    _remember_tree(info.digest, node)
    return node


def _remember_tree(digest: str, node: Node) -> None:
    _TREES[digest] = node
    _TREES.move_to_end(digest)
    while len(_TREES) > TREE_CACHE:
        _TREES.popitem(last=False)


def _child(node: Node, number: int) -> Node | None:
    """Part ``number`` below ``node`` (RFC 3501 6.4.5): a multipart's children; the parts
    of a message/rfc822's message (its body as part 1 when it is no multipart)."""
    if node.kind == MULTIPART:
        return node.children[number - 1] if number <= len(node.children) else None
    if node.kind == MESSAGE and node.message is not None:
        inner = node.message
        if inner.kind == MULTIPART:
            return _child(inner, number)
        return inner if number == 1 else None
    return node if number == 1 else None


def locate(root: Node, spec: SectionSpec, size: int) -> tuple[int, int, Node] | None:
    """``(start, end, node)`` of what ``spec`` names, or None when it names nothing."""
    message: Node | None = root
    if spec.part:
        node: Node | None = Node(0, 0, size, MESSAGE, "", [], root)
        for number in spec.part:
            node = _child(node, number) if node is not None else None
        if node is None:
            return None
        if spec.text == "":
            return node.body_start, node.body_end, node
        if spec.text == "MIME":
            return node.header_start, node.body_start, node
        message = node.message if node.kind == MESSAGE else None
    elif spec.text == "":
        return 0, size, root
    if message is None:
        return None
    if spec.text == "TEXT":
        return message.body_start, message.body_end, message
    return message.header_start, message.body_start, message


# -- sections ------------------------------------------------------------------------------------


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover


async def _once(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


def _window(start: int, end: int, partial: tuple[int, int] | None) -> tuple[int, int]:
    if partial is None:
        return start, end
    offset, count = partial
    first = min(start + max(offset, 0), end)
    return first, min(first + max(count, 0), end)


def _stream(mbox: Mailbox, info: MessageInfo, start: int, end: int) -> AsyncIterator[bytes]:
    if end <= start:
        return _empty()
    if info.data is not None:
        return _once(info.data[start:end])
    if end - start <= READ_AT_ONCE:
        return _small(mbox, info, start, end)
    return mbox.stream(mime_cache.iter_range, info.digest, start, end, info.crlf)


def _range_bytes(txn: Txn, digest: str, start: int, end: int, crlf: bool) -> bytes:
    return b"".join(mime_cache.iter_range(txn, digest, start, end, crlf))


async def _small(mbox: Mailbox, info: MessageInfo, start: int, end: int
                 ) -> AsyncIterator[bytes]:
    """A short range in one reader call (a stream costs a thread hop per chunk)."""
    yield await mbox.read(_range_bytes, info.digest, start, end, info.crlf)


async def _read(mbox: Mailbox, info: MessageInfo, start: int, end: int) -> bytes:
    return b"".join([chunk async for chunk in _stream(mbox, info, start, end)])


async def section(mbox: Mailbox, info: MessageInfo, spec: SectionSpec, *,
                  partial: tuple[int, int] | None = None,
                  binary: bool = False) -> tuple[int, AsyncIterator[bytes]]:
    """``(length, chunks)`` of a BODY[...] (or, with ``binary``, BINARY[...]) section;
    ``partial`` = (offset, count) of ``<offset.count>``. A literal cannot carry NUL
    (RFC 3501 CHAR8), so BODY sections show NUL bytes as 0x80, as Dovecot does;
    BINARY's literal8 carries them as they are."""
    length, chunks = await _section(mbox, info, spec, partial, binary)
    return length, chunks if binary else _without_nul(chunks)


async def _without_nul(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk.replace(b"\x00", b"\x80") if b"\x00" in chunk else chunk


async def _section(mbox: Mailbox, info: MessageInfo, spec: SectionSpec,
                   partial: tuple[int, int] | None,
                   binary: bool) -> tuple[int, AsyncIterator[bytes]]:
    if binary and spec.text:
        raise ValueError("BINARY takes a part number only")
    if not spec.part and not spec.text:  # BODY[] / RFC822: no part tree needed
        first, last = _window(0, info.size, partial)
        return last - first, _stream(mbox, info, first, last)
    root = await _tree(mbox, info)
    found = locate(root, spec, info.size)
    if found is None:
        return 0, _empty()
    start, end, node = found
    if spec.text.startswith("HEADER.FIELDS"):
        header = await _read(mbox, info, start, min(end, start + MAX_FIELDS_HEADER))
        data = select_fields(header, spec.fields, exclude=spec.text.endswith(".NOT"))
        first, last = _window(0, len(data), partial)
        return last - first, _once(data[first:last])
    if binary and spec.part and _needs_decoding(node):
        return await _decoded(mbox, info, node, partial)
    first, last = _window(start, end, partial)
    return last - first, _stream(mbox, info, first, last)


async def binary_size(mbox: Mailbox, info: MessageInfo, spec: SectionSpec) -> int:
    """BINARY.SIZE: the length of BINARY[part] (decoded)."""
    if spec.text:
        raise ValueError("BINARY.SIZE takes a part number only")
    length, chunks = await section(mbox, info, spec, binary=True)
    await chunks.aclose()  # type: ignore[attr-defined]
    return length


# -- decoding for BINARY -----------------------------------------------------------------------


def _needs_decoding(node: Node) -> bool:
    if node.kind != "l" or node.cte in IDENTITY_ENCODINGS:
        return False
    if node.cte in _DECODERS:
        return True
    raise BinaryUndecodable(f"unknown Content-Transfer-Encoding {node.cte!r}")


class _Base64:
    _SKIP = bytes(c for c in range(256)
                  if not (chr(c).isascii() and (chr(c).isalnum() or chr(c) in "+/")))

    def __init__(self) -> None:
        self.rest = b""

    def feed(self, data: bytes) -> bytes:
        data = self.rest + data.translate(None, self._SKIP)
        whole = len(data) // 4 * 4
        self.rest = data[whole:]
        return self._decode(data[:whole])

    def finish(self) -> bytes:
        rest, self.rest = self.rest, b""
        return self._decode(rest + b"=" * (-len(rest) % 4)) if len(rest) > 1 else b""

    @staticmethod
    def _decode(data: bytes) -> bytes:
        try:
            return binascii.a2b_base64(data)
        except binascii.Error:
            return b""


class _QuotedPrintable:
    _TRAILING = re.compile(rb"[ \t]+(?=\r?\n)")

    def __init__(self) -> None:
        self.rest = b""

    def feed(self, data: bytes) -> bytes:
        data = self.rest + data
        cut = data.rfind(b"\n") + 1
        self.rest = data[cut:]
        return self._decode(data[:cut])

    def finish(self) -> bytes:
        rest, self.rest = self.rest, b""
        return self._decode(rest.rstrip(b" \t"))

    def _decode(self, data: bytes) -> bytes:
        return binascii.a2b_qp(self._TRAILING.sub(b"", data)) if data else b""


_DECODERS: dict[str, type[_Base64] | type[_QuotedPrintable]] = {
    "base64": _Base64, "quoted-printable": _QuotedPrintable}


async def _decoded_chunks(mbox: Mailbox, info: MessageInfo, node: Node) -> AsyncIterator[bytes]:
    decoder = _DECODERS[node.cte]()
    async for chunk in _stream(mbox, info, node.body_start, node.body_end):
        out = decoder.feed(chunk)
        if out:
            yield out
    tail = decoder.finish()
    if tail:
        yield tail


async def _decoded(mbox: Mailbox, info: MessageInfo, node: Node,
                   partial: tuple[int, int] | None) -> tuple[int, AsyncIterator[bytes]]:
    if node.body_end - node.body_start <= DECODE_IN_MEMORY:
        data = b"".join([chunk async for chunk in _decoded_chunks(mbox, info, node)])
        first, last = _window(0, len(data), partial)
        return last - first, _once(data[first:last])
    total = 0
    async for chunk in _decoded_chunks(mbox, info, node):
        total += len(chunk)
    first, last = _window(0, total, partial)
    return last - first, _cut(_decoded_chunks(mbox, info, node), first, last)


async def _cut(chunks: AsyncIterator[bytes], start: int, end: int) -> AsyncIterator[bytes]:
    position = 0
    try:
        async for chunk in chunks:
            following = position + len(chunk)
            if following > start:
                piece = chunk[max(start - position, 0):end - position]
                if piece:
                    yield piece
            position = following
            if position >= end:
                break
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
