"""Compressed RTF (MS-OXRTFCP): the specification's examples, real streams, hostile input."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.convert import rtf
from gateway.convert.rtf import RtfError, compress, crc32, decompress

CORPUS = Path(__file__).parent.parent / "corpus" / "rtf"

# MS-OXRTFCP 3.1.1 "Example 1: Simple Compressed RTF" / 3.2.1 "Example 1: Simple RTF"
# (the same bytes appear in the test suites of delimitry/compressed_rtf, MIT, and of
# microsoft/outlook-pst-rs crates/compressed-rtf, MIT).
SIMPLE_RTF = b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"
SIMPLE_COMPRESSED = bytes.fromhex(
    "2d0000002b0000004c5a4675f1c5c7a703000a007263706731323542320af32068656c0900206277"
    "05b06c647d0a800fa0")
# MS-OXRTFCP 3.1.2 "Example 2: Reading a Token from the Dictionary that Crosses
# WritePosition" / 3.2.2 "Example 2: Compressing with Tokens that Cross WritePosition".
CROSSING_RTF = b"{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}"
CROSSING_COMPRESSED = bytes.fromhex(
    "1a0000001c0000004c5a4675e2d44b51410004205758595a0d6e7d010eb0")

# The initial dictionary as MS-OXRTFCP 2.1.2.1 prints it, typed out again here so
# that the reference decoder below shares no code with the module under test.
SPEC_PRELOAD = (
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss "
    b"\\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier"
    b"{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx")


def spec_decompress(data: bytes) -> bytes:
    """The decompression algorithm of MS-OXRTFCP 2.1.3.1, transcribed literally."""
    compsize, rawsize, comptype, _ = struct.unpack_from("<IIII", data)
    if comptype == 0x414C454D:
        return data[16:16 + rawsize]
    dictionary = bytearray(4096)
    dictionary[:len(SPEC_PRELOAD)] = SPEC_PRELOAD
    write = len(SPEC_PRELOAD)
    out = bytearray()
    pos, end = 16, compsize + 4
    while pos < end:
        control = data[pos]
        pos += 1
        for bit in range(8):
            if pos >= end:
                return bytes(out)
            if control & (1 << bit):
                token = data[pos] << 8 | data[pos + 1]
                pos += 2
                offset, length = token >> 4, (token & 0xF) + 2
                if offset == write:
                    return bytes(out)
                for i in range(length):
                    byte = dictionary[(offset + i) % 4096]
                    out.append(byte)
                    dictionary[write] = byte
                    write = (write + 1) % 4096
            else:
                out.append(data[pos])
                dictionary[write] = data[pos]
                write = (write + 1) % 4096
                pos += 1
    return bytes(out)


def test_spec_preload_is_ours() -> None:
    assert rtf.INITIAL_DICTIONARY == SPEC_PRELOAD and len(SPEC_PRELOAD) == 207


@pytest.mark.parametrize(("raw", "packed"), [(SIMPLE_RTF, SIMPLE_COMPRESSED),
                                             (CROSSING_RTF, CROSSING_COMPRESSED)])
def test_specification_examples(raw: bytes, packed: bytes) -> None:
    assert decompress(packed) == raw
    assert compress(raw) == packed  # byte for byte what the specification documents
    assert spec_decompress(packed) == raw


def test_spec_crc() -> None:
    assert crc32(SIMPLE_COMPRESSED[16:]) == 0xA7C7C5F1 == rtf.header(SIMPLE_COMPRESSED)[3]
    assert crc32(b"") == 0


def test_uncompressed_mela() -> None:
    stored = compress(SIMPLE_RTF, compressed=False)
    assert stored == struct.pack("<IIII", 55, 43, 0x414C454D, 0) + SIMPLE_RTF
    assert decompress(stored) == SIMPLE_RTF == spec_decompress(stored)
    assert rtf.is_compressed_rtf(stored) and rtf.is_compressed_rtf(SIMPLE_COMPRESSED)
    assert not rtf.is_compressed_rtf(b"{\\rtf1 plain}")


@pytest.mark.parametrize("name", ["rtf", "triples", "long-filename", "data-before-name",
                                  "multi-value-attribute"])
def test_real_streams(name: str) -> None:
    """Outlook/Exchange streams decode to what the ``tnef`` tool extracted (corpus README)."""
    packed = (CORPUS / f"{name}.lzfu").read_bytes()
    expected = (CORPUS / f"{name}.rtf").read_bytes()
    assert decompress(packed) == expected == spec_decompress(packed)[:len(expected)]
    assert decompress(compress(expected)) == expected


rtf_like = st.lists(st.sampled_from([b"\\par ", b"\\b ", b"{", b"}", b"hello ", b"world",
                                     b"\\'e9", b"\\f0\\fs20 ", b"\r\n", b"x"]),
                    max_size=400).map(b"".join)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=3000), rtf_like,
                 st.binary(min_size=1, max_size=8).map(lambda b: b * 700)))
def test_round_trip(data: bytes) -> None:
    packed = compress(data)
    assert decompress(packed) == data
    assert spec_decompress(packed) == data  # our encoder's output per the spec's decoder


def test_round_trip_beyond_the_dictionary() -> None:
    """Long input wraps the 4096-byte ring many times; matches then reach back 4095."""
    import random

    rnd = random.Random(5)
    words = [b"\\par ", b"abc", b"{\\b bold}", bytes(range(256)), b"zz"]
    data = b"".join(rnd.choice(words) for _ in range(20_000))
    packed = compress(data)
    assert len(packed) < len(data) // 2
    assert decompress(packed) == data == spec_decompress(packed)


# -- hostile input ---------------------------------------------------------------------------

def test_short_and_unknown() -> None:
    with pytest.raises(RtfError, match="header"):
        decompress(b"0123456789abcde")
    with pytest.raises(RtfError, match="COMPTYPE"):
        decompress(struct.pack("<IIII", 12, 0, 0x44434241, 0))
    with pytest.raises(RtfError, match="COMPSIZE"):
        decompress(struct.pack("<IIII", 3, 0, 0x75465A4C, 0))


def test_crc_mismatch() -> None:
    broken = SIMPLE_COMPRESSED[:12] + b"\x00\x00\x00\x00" + SIMPLE_COMPRESSED[16:]
    with pytest.raises(RtfError, match="CRC"):
        decompress(broken)
    assert decompress(broken, check_crc=False) == SIMPLE_RTF


def test_lying_lengths() -> None:
    longer = struct.pack("<I", 5000) + SIMPLE_COMPRESSED[4:]
    with pytest.raises(RtfError, match="COMPSIZE"):
        decompress(longer)
    assert decompress(longer, check_crc=False) == SIMPLE_RTF
    small_raw = SIMPLE_COMPRESSED[:4] + struct.pack("<I", 10) + SIMPLE_COMPRESSED[8:]
    with pytest.raises(RtfError, match="RAWSIZE"):
        decompress(small_raw)
    assert decompress(small_raw, check_crc=False) == SIMPLE_RTF[:10]
    huge_raw = SIMPLE_COMPRESSED[:4] + struct.pack("<I", 0xFFFFFFFF) + SIMPLE_COMPRESSED[8:]
    with pytest.raises(RtfError, match="limit"):
        decompress(huge_raw)
    mela = struct.pack("<IIII", 12 + 4, 1000, 0x414C454D, 0) + b"abcd"
    with pytest.raises(RtfError, match="RAWSIZE"):
        decompress(mela)
    assert decompress(mela, check_crc=False) == b"abcd"


def _stream(content: bytes, rawsize: int = 0) -> bytes:
    return struct.pack("<IIII", len(content) + 12, rawsize, 0x75465A4C, crc32(content)) + content


def test_reference_to_unwritten_dictionary() -> None:
    bad = _stream(bytes([0x01]) + (3000 << 4 | 5).to_bytes(2, "big"), 7)
    with pytest.raises(RtfError, match="nothing was written"):
        decompress(bad)
    assert decompress(bad, check_crc=False) == b""
    assert len(spec_decompress(bad)) == 7  # the reference decoder reads zeros there


def test_truncated_inside_reference_and_missing_end() -> None:
    with pytest.raises(RtfError, match="ends inside"):
        decompress(_stream(b"\x01\x00", 0))
    with pytest.raises(RtfError, match="end-of-stream"):
        decompress(_stream(b"\x00abc", 3))
    assert decompress(SIMPLE_COMPRESSED[:-2], check_crc=False) == SIMPLE_RTF


def test_decompression_bomb_is_bounded() -> None:
    bomb = compress(b"A" * 2_000_000)
    assert len(bomb) < 260_000  # about 8:1, the most LZFu can do
    started = time.perf_counter()
    with pytest.raises(RtfError, match="limit"):
        decompress(bomb, max_output=100_000)
    with pytest.raises(RtfError, match="limit"):
        decompress(bomb, max_output=100_000, check_crc=False)
    assert time.perf_counter() - started < 2


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.booleans())
def test_garbage_never_escapes(noise: bytes, strict: bool) -> None:
    for data in (noise, _stream(noise, len(noise) * 4), SIMPLE_COMPRESSED[:16] + noise):
        try:
            out = decompress(data, max_output=10_000, check_crc=strict)
        except RtfError:
            continue
        assert len(out) <= 10_000


def test_speed() -> None:
    """A 1 MB RTF-like body compresses and decompresses in well under a second each."""
    data = ((CORPUS / "multi-value-attribute.rtf").read_bytes() * 600)[:1_000_000]
    started = time.perf_counter()
    packed = compress(data)
    middle = time.perf_counter()
    assert decompress(packed) == data
    assert middle - started < 3 and time.perf_counter() - middle < 1
