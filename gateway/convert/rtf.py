"""Compressed RTF (MS-OXRTFCP): the form of ``PidTagRtfCompressed``.

A 16-byte header — COMPSIZE (content length + 12), RAWSIZE, COMPTYPE
(``LZFu`` compressed, ``MELA`` stored) and a CRC of the content — then the
content: for ``LZFu`` an LZ77 stream over a 4096-byte ring dictionary that
starts with a fixed RTF prologue (:data:`INITIAL_DICTIONARY`, 207 bytes). A
control byte gives, low bit first, the kind of the next eight tokens: a
literal byte, or a big-endian 16-bit reference (12-bit dictionary offset,
4-bit length - 2). A reference to the current write offset ends the stream.

The input is treated as hostile: every length is checked against what is
really there, output is bounded by ``max_output`` before it is produced, and
a reference to a dictionary slot nothing was written to is an error (the
reference implementation would read zero bytes there).

:func:`compress` follows the specification's encoder — for each position the
longest match of up to 17 bytes, the oldest one on a tie, overlapping the
write position where that is longer — so for the specification's examples it
yields the documented bytes. On long repetitive input it looks at no more
than :data:`MAX_CANDIDATES` earlier positions per match (the most recent
ones), which may pick a different, equally valid encoding.
"""

from __future__ import annotations

import struct
import zlib
from bisect import bisect_left

INITIAL_DICTIONARY = (
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss "
    b"\\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier"
    b"{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"
)
"""The dictionary's first 207 bytes (MS-OXRTFCP 2.1.2.1); the rest starts zeroed."""

COMPRESSED = 0x75465A4C  # "LZFu"
UNCOMPRESSED = 0x414C454D  # "MELA"
HEADER = struct.Struct("<IIII")
DICT_SIZE = 4096
MAX_MATCH = 17
MIN_MATCH = 2
MAX_OUTPUT = 64 * 1024 * 1024
"""Default bound on decompressed output (bytes)."""
MAX_CANDIDATES = 256
"""Earlier positions :func:`compress` tries per match on highly repetitive input."""


class RtfError(ValueError):
    """The compressed RTF is malformed, inconsistent or larger than allowed."""


def crc32(data: bytes | memoryview) -> int:
    """The MS-OXRTFCP CRC: the CRC-32 table, started at 0 and not inverted at the end."""
    return zlib.crc32(data, 0xFFFFFFFF) ^ 0xFFFFFFFF


def header(data: bytes) -> tuple[int, int, int, int]:
    """COMPSIZE, RAWSIZE, COMPTYPE and CRC of a compressed RTF stream."""
    if len(data) < HEADER.size:
        raise RtfError(f"compressed RTF is {len(data)} bytes, shorter than its 16-byte header")
    return HEADER.unpack_from(data)


def is_compressed_rtf(data: bytes) -> bool:
    """Whether ``data`` starts with a plausible compressed-RTF header."""
    return len(data) >= HEADER.size and HEADER.unpack_from(data)[2] in (COMPRESSED, UNCOMPRESSED)


def decompress(data: bytes, max_output: int = MAX_OUTPUT, *, check_crc: bool = True) -> bytes:
    """The RTF held in a ``PidTagRtfCompressed`` value.

    Raises :class:`RtfError` on a malformed header, an unknown COMPTYPE, a CRC
    mismatch, a reference to an unwritten dictionary slot, output beyond
    ``max_output`` or (when ``check_crc``) content that disagrees with
    COMPSIZE or RAWSIZE. With ``check_crc=False`` the decoder is lenient:
    it ignores the CRC, decodes what is there when COMPSIZE lies, and
    returns what it decoded up to the first bad reference or the end of the
    input, cut to RAWSIZE.
    """
    compsize, rawsize, comptype, crc = header(data)
    strict = check_crc
    if comptype not in (COMPRESSED, UNCOMPRESSED):
        raise RtfError(f"unknown COMPTYPE 0x{comptype:08X}")
    if compsize < 12:
        raise RtfError(f"COMPSIZE {compsize} is smaller than the rest of the header")
    end = compsize + 4
    if end > len(data):
        if strict:
            raise RtfError(f"COMPSIZE says {compsize - 12} content bytes, "
                           f"only {len(data) - HEADER.size} present")
        end = len(data)
    content = memoryview(data)[HEADER.size:end]
    if rawsize > max_output and strict:
        raise RtfError(f"RAWSIZE {rawsize} exceeds the limit of {max_output} bytes")
    if comptype == UNCOMPRESSED:
        if rawsize > len(content) and strict:
            raise RtfError(f"RAWSIZE {rawsize} exceeds the {len(content)} stored bytes")
        if min(rawsize, len(content)) > max_output:
            raise RtfError(f"RTF exceeds the limit of {max_output} bytes")
        return bytes(content[:rawsize])
    if strict and crc32(content) != crc:
        raise RtfError(f"CRC mismatch: header 0x{crc:08X}, content 0x{crc32(content):08X}")
    out = _lzfu(content, max_output, None if strict else rawsize)
    if strict and len(out) != rawsize:
        raise RtfError(f"RAWSIZE says {rawsize} bytes, the content decodes to {len(out)}")
    return out[:rawsize]


def _lzfu(content: memoryview, limit: int, stop: int | None) -> bytes:
    """Decode LZFu tokens; ``buf`` is the initial dictionary followed by the output.

    Output beyond ``limit`` is an error; a lenient caller passes ``stop`` (RAWSIZE)
    to end quietly there and at the first malformed token.
    """
    strict = stop is None
    buf = bytearray(INITIAL_DICTIONARY)
    start = len(INITIAL_DICTIONARY)
    bound = start + limit
    quiet = start + (stop if stop is not None else limit)
    pos, size = 0, len(content)
    while pos < size:
        control = content[pos]
        pos += 1
        for bit in range(8):
            if not control & (1 << bit):
                if pos >= size:
                    break
                buf.append(content[pos])
                pos += 1
            else:
                if pos + 2 > size:
                    if strict:
                        raise RtfError("compressed RTF ends inside a dictionary reference")
                    return bytes(buf[start:])
                token = content[pos] << 8 | content[pos + 1]
                pos += 2
                offset, length = token >> 4, (token & 0xF) + MIN_MATCH
                here = len(buf)
                back = (here - offset) % DICT_SIZE
                if back == 0:
                    return bytes(buf[start:])
                source = here - back
                if source < 0:
                    if strict:
                        raise RtfError(f"reference to dictionary offset {offset}, "
                                       "which nothing was written to")
                    return bytes(buf[start:])
                if back >= length:
                    buf += buf[source:source + length]
                else:
                    run = buf[source:here]
                    buf += (run * (length // back + 1))[:length]
            if len(buf) > quiet and not strict:
                return bytes(buf[start:quiet])
            if len(buf) > bound:
                raise RtfError(f"RTF exceeds the limit of {limit} bytes")
    if strict:
        raise RtfError("compressed RTF ends without its end-of-stream reference")
    return bytes(buf[start:])


def compress(data: bytes, *, compressed: bool = True) -> bytes:
    """``data`` as a ``PidTagRtfCompressed`` value (``LZFu``, or ``MELA`` stored)."""
    if len(data) > 0xFFFFFFFF - 16:
        raise RtfError("RTF too large to compress")
    if not compressed:
        return HEADER.pack(len(data) + 12, len(data), UNCOMPRESSED, 0) + data
    content = _encode(data)
    return HEADER.pack(len(content) + 12, len(data), COMPRESSED, crc32(content)) + content


def _encode(data: bytes) -> bytes:
    buf = INITIAL_DICTIONARY + data
    total = len(buf)
    chains: dict[bytes, list[int]] = {}
    out = bytearray()
    pos = len(INITIAL_DICTIONARY)
    indexed = 0
    group, control, bit = bytearray(), 0, 0
    while True:
        # every position before ``pos`` may start a match (which may overlap ``pos``)
        while indexed < pos and indexed + 1 < total:
            chains.setdefault(buf[indexed:indexed + 2], []).append(indexed)
            indexed += 1
        if pos >= total:
            group += ((pos % DICT_SIZE) << 4).to_bytes(2, "big")
            control |= 1 << bit
            out.append(control)
            out += group
            return bytes(out)
        offset, length = _longest(buf, pos, chains)
        if length >= MIN_MATCH:
            group += ((offset % DICT_SIZE) << 4 | (length - MIN_MATCH)).to_bytes(2, "big")
            control |= 1 << bit
        else:
            length = 1
            group.append(buf[pos])
        pos += length
        bit += 1
        if bit == 8:
            out.append(control)
            out += group
            group, control, bit = bytearray(), 0, 0


def _longest(buf: bytes, pos: int, chains: dict[bytes, list[int]]) -> tuple[int, int]:
    """Oldest longest match for ``buf[pos:]`` among the previous 4095 positions."""
    limit = min(MAX_MATCH, len(buf) - pos)
    if limit < MIN_MATCH:
        return 0, 0
    chain = chains.get(buf[pos:pos + 2])
    if not chain:
        return 0, 0
    first = bisect_left(chain, pos - (DICT_SIZE - 1))
    if len(chain) - first > MAX_CANDIDATES:
        first = len(chain) - MAX_CANDIDATES
    best_at, best = 0, 0
    for i in range(first, len(chain)):
        at = chain[i]
        if best and buf[at + best] != buf[pos + best]:
            continue
        n = MIN_MATCH
        while n < limit and buf[at + n] == buf[pos + n]:
            n += 1
        if n > best:
            best_at, best = at, n
            if n == limit:
                break
    return best_at, best
