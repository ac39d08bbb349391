"""TNEF (winmail.dat): real streams from public test suites, built streams, hostile streams."""

from __future__ import annotations

import hashlib
import random
import struct
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.convert import tnef
from gateway.convert.rtf import decompress
from gateway.convert.tnef import TnefError, decode
from gateway.store import NamedProp
from gateway.store import tags as T
from gateway.store.objects import ATTACH_EMBEDDED_MSG, NewMessage
from gateway.store.proptypes import PT_MV_UNICODE, PT_UNICODE

CORPUS = Path(__file__).parent.parent / "corpus"
TNEF_DIR = CORPUS / "tnef"


def load(name: str, errors: list[str] | None = None) -> NewMessage:
    return decode((TNEF_DIR / name).read_bytes(), errors=errors)


def blob(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def attachment_files(message: NewMessage) -> list[tuple[str | None, int, str]]:
    found = []
    for att in message.attachments:
        data = b"".join(att.data or [])
        found.append((att.props.get(T.PidTagAttachLongFilename), len(data), blob(data)[:16]))
    return found


# Attachment sizes and SHA-256 prefixes are those of the files the ``tnef`` tool
# (verdammelt/tnef tests/files/baselines) extracts from the same streams.
AUTHORS = ("AUTHORS", 244, "36c47da7d11846ca")
EXPECTED = {
    "one-file.tnef": ("one-file", "IPM.Note", [AUTHORS]),
    "two-files.tnef": ("two files", "IPM.Note", [AUTHORS, ("README", 893, "d0f163180d6ad5d8")]),
    "data-before-name.tnef": (None, "IPM.Note", [
        ("AUTOEXEC.BAT", 0, blob(b"")[:16]), ("CONFIG.SYS", 0, blob(b"")[:16]),
        ("boot.ini", 289, "a815374e31481bbb")]),
    "multi-value-attribute.tnef": (None, "IPM.Note.Microsoft.Voicemail.UM.CA", [
        ("208225__5_seconds__Voice_Mail.mp3", 10656, "cf2e3cd4175a3acd")]),
    "unicode-mapi-attr.tnef": ("example", "IPM.Note", [("example.dat", 1024, "b188960490adc658")]),
    "unicode-mapi-attr-name.tnef": (
        "RE: [ZGLOSZENIE] THU#29044 Aktualizacja numerów w dodatkowych panelach", "IPM.Note", [
            ("spaconsole2.cfg", 8387, "4d9639506fa4bf42"),
            ("image001.png", 3815, "037f9d1fa06bccd3"),
            ("image002.png", 3573, "ea179fb97a7e850e"),
            ("image003.png", 3792, "20c51557b9c7ec0a")]),
    "triples.tnef": ("Sample Summary", "IPM.Appointment", []),
    "multi-name-property.tnef": ("Pfingstmontag", "IPM.Appointment", []),
    "body.tnef": ("Bill of Rights", "IPM.Note", []),
    "rtf.tnef": ("", "IPM.Note", []),
    "garbage-at-end.tnef": (None, "Report.IPM.Note.IPNRN", []),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus(name: str) -> None:
    subject, message_class, files = EXPECTED[name]
    message = load(name)
    assert message.props.get(T.PidTagSubject) == subject
    assert message.props[T.PidTagMessageClass] == message_class
    assert attachment_files(message) == files


@pytest.mark.parametrize("name", ["rtf", "triples", "long-filename", "data-before-name",
                                  "multi-value-attribute"])
def test_rtf_body_as_compressed_rtf(name: str) -> None:
    rtf_compressed = load(f"{name}.tnef").props[T.PidTagRtfCompressed]
    assert decompress(rtf_compressed) == (CORPUS / "rtf" / f"{name}.rtf").read_bytes()


def test_html_body_and_recipients() -> None:
    message = load("body.tnef")
    assert message.props[T.PidTagHtml] == (TNEF_DIR / "body.html").read_bytes()
    (recipient,) = message.recipients
    assert recipient[T.PidTagDisplayName] == "3kuser2"
    assert recipient[T.PidTagAddressType] == "EX"
    assert recipient[T.PidTagRecipientType] == 1


def test_legacy_attributes() -> None:
    """triples.tnef carries attFrom (a TRP triple), attBody and DTR dates as legacy attributes."""
    props = load("triples.tnef").props
    assert props[T.PidTagSenderName] == "Martin Rakhmanoff"
    assert props[T.PidTagSenderEmailAddress] == "rakhmanoff@sundance.spb.ru"
    assert props[T.PidTagSenderAddressType] == "SMTP"
    assert props[T.PidTagBody] == "Sample description\r\n"
    assert props[T.PidTagClientSubmitTime] == datetime(2003, 5, 23, 13, 26, 17, 700000, tzinfo=UTC)
    location = NamedProp(T.PSETID_Appointment, 0x8208, PT_UNICODE)
    assert props[location] == "Sample Location"
    assert "IPM.Microsoft" not in load("one-file.tnef").props[T.PidTagMessageClass]


def test_named_and_multivalued() -> None:
    props = load("multi-name-property.tnef").props
    assert props[NamedProp(T.PS_PUBLIC_STRINGS, "Keywords", PT_MV_UNICODE)] == ["Feiertag"]
    props = load("multi-value-attribute.tnef").props
    assert props[NamedProp(T.PS_INTERNET_HEADERS, "content-class", PT_UNICODE)] == "voice"
    assert props[0x12051002] == [60]  # a PT_MV_SHORT from Exchange


def test_unicode_and_codepage_names() -> None:
    names = [a.props.get(T.PidTagAttachLongFilename) for a in load("umlaut.tnef").attachments]
    assert names == ["TBZ PARIV GmbH.jpg", "image003.jpg", "UmlautAnhang-äüö.txt"]
    sender = load("unicode-mapi-attr-name.tnef").props[T.PidTagSenderName]
    assert sender == "Marcin Jabłonkowski"


def test_embedded_message_and_bad_checksums() -> None:
    """IPM-DistList.tnef (tnefparse) embeds a distribution list; its checksums are wrong."""
    errors: list[str] = []
    message = load("IPM-DistList.tnef", errors)
    (attachment,) = message.attachments
    assert attachment.props[T.PidTagAttachMethod] == ATTACH_EMBEDDED_MSG
    assert attachment.data is None and attachment.embedded is not None
    inner = attachment.embedded.props
    assert inner[T.PidTagMessageClass] == "IPM.DistList"
    assert inner[T.PidTagSubject] == "XXXXnews"
    assert any("checksum" in e for e in errors)
    assert any("embedded" in e for e in errors)


def test_odd_writers() -> None:
    errors: list[str] = []
    minimal = load("minimal_attachment.tnef", errors)  # attribute ids without their type word
    assert [b"".join(a.data or []) for a in minimal.attachments] == [b"this is a test\n\x00"]
    errors.clear()
    assert load("garbage-at-end.tnef", errors).props[T.PidTagMessageClass]
    assert errors and "offset 4183" in errors[0]


# -- a small TNEF writer, for the tests only -------------------------------------------------------

def attr(level: int, ident: int, data: bytes) -> bytes:
    return struct.pack("<BII", level, ident, len(data)) + data + struct.pack(
        "<H", sum(data) & 0xFFFF)


def pad(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def prop(tag: int, value: bytes, name: bytes = b"") -> bytes:
    """One property: ``value`` already in stream form (count/size prefixes included)."""
    return struct.pack("<HH", tag & 0xFFFF, tag >> 16) + name + value


def var(*items: bytes) -> bytes:
    return struct.pack("<I", len(items)) + b"".join(struct.pack("<I", len(i)) + pad(i)
                                                  for i in items)


def props(*encoded: bytes) -> bytes:
    return struct.pack("<I", len(encoded)) + b"".join(encoded)


def stream(*attrs: bytes) -> bytes:
    return struct.pack("<IH", tnef.SIGNATURE, 0x1234) + b"".join(attrs)


def utf16(text: str) -> bytes:
    return (text + "\x00").encode("utf-16-le")


IID_IMESSAGE = uuid.UUID("00020307-0000-0000-C000-000000000046").bytes_le
REND = attr(2, tnef.ATT_ATTACH_REND_DATA, struct.pack("<HiHHI", 1, -1, 0, 0, 0))


def embedding(inner: bytes) -> bytes:
    return attr(2, tnef.ATT_ATTACHMENT, props(prop(0x3701000D, var(IID_IMESSAGE + inner))))


def test_built_property_types() -> None:
    guid = uuid.UUID("00020329-0000-0000-C000-000000000046")
    named_string = guid.bytes_le + struct.pack("<II", 1, len(utf16("Color"))) + pad(utf16("Color"))
    named_lid = uuid.UUID(str(T.PSETID_Common)).bytes_le + struct.pack("<II", 0, 0x8501)
    when = datetime(2024, 2, 29, 12, 30, tzinfo=UTC)
    filetime = (int((when - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds()) * 10_000_000)
    data = stream(attr(1, tnef.ATT_MAPI_PROPS, props(
        prop(T.PidTagSubject, var(utf16("Grüße 😀"))),
        prop(0x0E1D001E, var(b"legacy \xe9\x00")),  # PT_STRING8, stored as PT_UNICODE
        prop(T.PidTagImportance, struct.pack("<i", 2)),
        prop(T.PidTagRtfInSync, struct.pack("<I", 1)),
        prop(T.PidTagClientSubmitTime, struct.pack("<Q", filetime)),
        prop(0x8000001F, var(utf16("blue")), named_string),
        prop(0x80010003, struct.pack("<i", -15), named_lid),
        prop(0x3A54101F, var(utf16("a"), utf16("b"))),  # PT_MV_UNICODE
        prop(0x68001003, struct.pack("<III", 3, 1, 2) + struct.pack("<i", 3)),  # PT_MV_LONG
        prop(0x68010048, uuid.UUID(int=7).bytes_le),  # PT_CLSID
        prop(0x68020005, struct.pack("<d", 2.5)),
        prop(0x68030014, struct.pack("<q", -(1 << 40))),
        prop(0x68040040, struct.pack("<Q", (1 << 64) - 1)),  # past year 9999: dropped
    )))
    errors: list[str] = []
    out = decode(data, errors=errors).props
    assert not errors
    assert out[T.PidTagSubject] == "Grüße 😀"
    assert out[0x0E1D001F] == "legacy é"
    assert out[T.PidTagImportance] == 2 and out[T.PidTagRtfInSync] is True
    assert out[T.PidTagClientSubmitTime] == when
    assert out[NamedProp(guid, "Color", PT_UNICODE)] == "blue"
    assert out[NamedProp(T.PSETID_Common, 0x8501, 0x0003)] == -15
    assert out[0x3A54101F] == ["a", "b"] and out[0x68001003] == [1, 2, 3]
    assert out[0x68010048] == uuid.UUID(int=7) and out[0x68020005] == 2.5
    assert out[0x68030014] == -(1 << 40) and 0x68040040 not in out


def nested(depth: int) -> bytes:
    inner = stream(attr(1, tnef.ATT_SUBJECT, b"level %d\x00" % depth))
    for level in range(depth - 1, -1, -1):
        inner = stream(attr(1, tnef.ATT_SUBJECT, b"level %d\x00" % level), REND, embedding(inner))
    return inner


def test_embedded_depth_is_bounded() -> None:
    message = decode(nested(3))
    assert message.attachments[0].embedded.attachments[0].embedded.props[T.PidTagSubject] == \
        "level 2"
    errors: list[str] = []
    message = decode(nested(40), max_depth=2, errors=errors)
    third = message.attachments[0].embedded.attachments[0].embedded
    assert third.props[T.PidTagSubject] == "level 2"
    kept = third.attachments[0]
    assert kept.embedded is None and b"".join(kept.data or []).startswith(b"\x78\x9f\x3e\x22")
    assert any("deeper" in e for e in errors)


def test_attachment_count_is_bounded() -> None:
    one = REND + attr(2, tnef.ATT_ATTACH_DATA, b"x")
    errors: list[str] = []
    message = decode(stream(*[one] * 50, attr(1, tnef.ATT_SUBJECT, b"after\x00")),
                     max_attachments=10, errors=errors)
    assert len(message.attachments) == 10
    assert message.props[T.PidTagSubject] == "after"
    assert len(errors) == 40


# -- hostile streams -----------------------------------------------------------------------------

def test_not_tnef() -> None:
    for junk in (b"", b"\x78\x9f\x3e", b"PK\x03\x04 not tnef at all"):
        with pytest.raises(TnefError):
            decode(junk)


def test_lying_lengths_keep_what_came_before() -> None:
    good = attr(1, tnef.ATT_SUBJECT, b"kept\x00")
    liar = struct.pack("<BII", 1, tnef.ATT_BODY, 0xFFFFFFF0) + b"short"
    errors: list[str] = []
    message = decode(stream(good, liar), errors=errors)
    assert message.props == {T.PidTagSubject: "kept"}
    assert "4294967280 bytes wanted" in errors[0]
    for bomb in (struct.pack("<I", 0xFFFFFFFF),  # property count
                 struct.pack("<IHH", 1, 0x101F, 0x3A54) + struct.pack("<I", 0x7FFFFFFF),
                 struct.pack("<IHH", 1, 0x001F, 0x0037) + struct.pack("<II", 1, 0xFFFFFFFF),
                 struct.pack("<IHH", 1, 0x001F, 0x8000) + b"\x00" * 16 + struct.pack(
                     "<II", 1, 0xFFFFFFFF),
                 struct.pack("<IHH", 2, 0x0003, 0x0017) + b"\x01\x00\x00\x00" +
                 struct.pack("<HH", 0x0033, 0x1234) + b"\x00" * 8):  # unknown type
        errors = []
        tracemalloc.start()
        out = decode(stream(good, attr(1, tnef.ATT_MAPI_PROPS, bomb)), errors=errors)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert out.props[T.PidTagSubject] == "kept" and errors
        assert peak < 1_000_000


def test_every_truncation() -> None:
    data = (TNEF_DIR / "two-files.tnef").read_bytes()
    for end in range(6, len(data)):
        message = decode(data[:end])
        assert len(message.attachments) <= 2


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["one-file.tnef", "triples.tnef", "multi-name-property.tnef",
                        "rtf.tnef", "body.tnef"]),
       st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1,
                max_size=12))
def test_mutations_never_escape(name: str, flips: list[tuple[int, int]]) -> None:
    data = bytearray((TNEF_DIR / name).read_bytes())
    for where, value in flips:
        data[6 + where % (len(data) - 6)] = value
    decode(bytes(data))


def test_random_streams_never_escape() -> None:
    rnd = random.Random(11)
    for _ in range(300):
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(200)))
        decode(struct.pack("<IH", tnef.SIGNATURE, 0) + body)
