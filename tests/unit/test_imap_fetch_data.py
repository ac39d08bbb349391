"""FETCH data over a real store: fetch_info, sections, BINARY, MAPI-made messages."""

from __future__ import annotations

import base64
import os
import sqlite3

import pytest

from gateway.convert.mime_in import parse
from gateway.events import StoreEvent
from gateway.store import Mailbox, NewAttachment, NewMessage
from gateway.store import tags as T
from gateway.store.special import Private
from plugins.imap import fetch_data
from plugins.imap.fetch_data import (
    BinaryUndecodable,
    MessageInfo,
    SectionSpec,
    binary_size,
    fetch_info,
    section,
)
from plugins.imap.mime_structure import parse_message
from tests.unit.test_imap_fetch_samples import SAMPLES, corpus

INBOX = int(Private.INBOX)


async def _deliver(mbox: Mailbox, raw: bytes) -> int:
    return await mbox.create_message(INBOX, parse(raw))


async def _text(mbox: Mailbox, info: MessageInfo, spec: str, fields: list[str] | None = None,
                **kwargs: object) -> bytes:
    length, chunks = await section(mbox, info, SectionSpec.parse(spec, fields), **kwargs)
    data = b"".join([chunk async for chunk in chunks])
    assert len(data) == length
    return data


def _db(mbox: Mailbox) -> sqlite3.Connection:
    return sqlite3.connect(mbox.path / "store.sqlite3")


# -- SectionSpec ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "fields", "part", "kind", "canonical"), [
    ("", None, (), "", ""),
    ("header", None, (), "HEADER", "HEADER"),
    ("TEXT", None, (), "TEXT", "TEXT"),
    ("1.2", None, (1, 2), "", "1.2"),
    ("1.2.mime", None, (1, 2), "MIME", "1.2.MIME"),
    ("3.HEADER", None, (3,), "HEADER", "3.HEADER"),
    ("HEADER.FIELDS", ["From", b"to"], (), "HEADER.FIELDS", "HEADER.FIELDS (FROM TO)"),
    ("2.HEADER.FIELDS.NOT", ["x-a"], (2,), "HEADER.FIELDS.NOT", "2.HEADER.FIELDS.NOT (X-A)"),
])
def test_section_specs_parse_and_print(text: str, fields: list | None, part: tuple,
                                       kind: str, canonical: str) -> None:
    spec = SectionSpec.parse(text, fields)
    assert (spec.part, spec.text, spec.imap()) == (part, kind, canonical)


@pytest.mark.parametrize(("text", "fields"), [
    ("0", None), ("1.0", None), ("01", None), ("MIME", None), ("HEADER.FIELDS", None),
    ("HEADER.FIELDS", []), ("HEADER", ["From"]), ("1.BODY", None), ("1..2", None),
    ("HEADER.FIELDS", ["bad name"]), ("99999999999", None), ("TEXT.1", None), (".", None),
])
def test_malformed_sections_are_refused_with_a_reason(text: str, fields: list | None) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        SectionSpec.parse(text, fields)


# -- fetch_info ----------------------------------------------------------------------------------


async def test_fetch_info_matches_the_parser_and_is_cached_per_blob(mbox: Mailbox) -> None:
    raws = [SAMPLES["nested-multipart"], SAMPLES["rfc822-in-multipart"],
            corpus()["outlook-inline-image.eml"]]
    ids = [await _deliver(mbox, raw) for raw in raws]
    ids.append(await _deliver(mbox, raws[0]))  # same bytes: one blob, one structure
    infos = await fetch_info(mbox, [*ids, 999_999_999])
    assert sorted(infos) == sorted(ids)
    for mid, raw in zip(ids, [*raws, raws[0]], strict=True):
        parsed = parse_message(raw)
        info = infos[mid]
        assert (info.size, info.envelope, info.body, info.bodystructure) == (
            len(raw), parsed.envelope, parsed.body, parsed.bodystructure)
        assert info.internal_date.tzinfo is not None
    with _db(mbox) as conn:
        assert conn.execute("SELECT count(*) FROM mime_structures").fetchone()[0] == 3
    again = await fetch_info(mbox, ids)
    assert again == infos


async def test_a_cached_batch_is_one_query(mbox: Mailbox, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    ids = [await _deliver(mbox, SAMPLES["group-addresses"].replace(b"body", b"b%d" % n))
           for n in range(30)]
    await fetch_info(mbox, ids)
    reads: list[str] = []
    original = Mailbox.read

    async def counting(self: Mailbox, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(fn.__name__)
        return await original(self, fn, *args, **kwargs)

    async def no_write(self: Mailbox, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError(f"a cached FETCH wrote ({fn.__name__})")

    monkeypatch.setattr(Mailbox, "read", counting)
    monkeypatch.setattr(Mailbox, "write", no_write)
    infos = await fetch_info(mbox, ids)
    assert len(infos) == 30 and reads == ["_read_batch"]


async def test_internal_date_is_the_delivery_time(mbox: Mailbox) -> None:
    from datetime import UTC, datetime
    when = datetime(2020, 5, 17, 8, 30, 5, tzinfo=UTC)
    message = parse(SAMPLES["no-body"])
    message.props[T.PidTagMessageDeliveryTime] = when
    mid = await mbox.create_message(INBOX, message)
    info = (await fetch_info(mbox, [mid]))[mid]
    assert info.internal_date == when


async def test_mapi_message_is_rendered_once_and_kept(mbox: Mailbox,
                                                      store_events: list[StoreEvent]) -> None:
    mid = await mbox.create_message(INBOX, NewMessage(
        props={T.PidTagSubject: "Draft from Outlook", T.PidTagBody: "Hello\r\nthere\r\n",
               T.PidTagSenderSmtpAddress: "user@example.org", T.PidTagSenderName: "User"},
        attachments=[NewAttachment({T.PidTagAttachLongFilename: "a.bin",
                                    T.PidTagAttachMethod: 1}, data=[b"\x00\x01" * 100])]))
    with _db(mbox) as conn:
        before = conn.execute("SELECT change_number, modseq, size FROM messages "
                              "WHERE message_id = ?", (mid,)).fetchone()
    store_events.clear()
    info = (await fetch_info(mbox, [mid]))[mid]
    assert b'"Draft from Outlook"' in info.envelope
    assert b'"mixed"' in info.bodystructure
    whole = await _text(mbox, info, "")
    assert len(whole) == info.size
    assert whole == b"".join([chunk async for chunk in mbox.original_message(mid)])
    with _db(mbox) as conn:
        after = conn.execute("SELECT change_number, modseq, size FROM messages "
                             "WHERE message_id = ?", (mid,)).fetchone()
    assert after == before and store_events == []
    # a later edit through MAPI does not re-render: IMAP content stays as first shown
    await mbox.set_message_props(mid, {T.PidTagSubject: "changed"})
    fetch_data._TREES.clear()
    assert (await fetch_info(mbox, [mid]))[mid].envelope == info.envelope


# -- sections ------------------------------------------------------------------------------------


async def test_sections_of_a_nested_message(mbox: Mailbox) -> None:
    raw = SAMPLES["rfc822-in-multipart"]
    mid = await _deliver(mbox, raw)
    info = (await fetch_info(mbox, [mid]))[mid]
    header_end = raw.index(b"\r\n\r\n") + 4
    assert await _text(mbox, info, "") == raw
    assert await _text(mbox, info, "HEADER") == raw[:header_end]
    assert await _text(mbox, info, "TEXT") == raw[header_end:]
    assert await _text(mbox, info, "1") == b"see attached"
    assert await _text(mbox, info, "1.MIME") == b"Content-Type: text/plain\r\n\r\n"
    inner = await _text(mbox, info, "2")
    assert inner.startswith(b'From: "Carol, C."') and inner.endswith(b"--b2--")
    assert await _text(mbox, info, "2.HEADER.FIELDS", ["subject", "FROM"]) == (
        b'From: "Carol, C." <carol@example.com>\r\nSubject: inner\r\n\r\n')
    assert (await _text(mbox, info, "2.HEADER.FIELDS.NOT", ["from", "sender", "reply-to",
                                                              "content-type"])
            == b"Subject: inner\r\nIn-Reply-To: <x@y>\r\n\r\n")
    assert await _text(mbox, info, "2.1") == b"inner text\r\ntwo lines"
    assert await _text(mbox, info, "2.2") == b"<b>inner</b>"
    assert await _text(mbox, info, "2.1.MIME") == b"Content-Type: text/plain\r\n\r\n"
    assert (await _text(mbox, info, "2.TEXT")).startswith(b"--b2\r\n")
    # what Dovecot answers for parts that are not there: empty strings
    for missing in ("9", "1.HEADER", "2.3", "1.2"):
        assert await _text(mbox, info, missing) == b""
    assert await _text(mbox, info, "1.1") == b"see attached"  # a leaf's part 1 is itself


async def test_partial_ranges(mbox: Mailbox) -> None:
    raw = SAMPLES["nested-multipart"]
    mid = await _deliver(mbox, raw)
    info = (await fetch_info(mbox, [mid]))[mid]
    assert await _text(mbox, info, "", partial=(0, 10)) == raw[:10]
    assert await _text(mbox, info, "", partial=(len(raw) - 5, 100)) == raw[-5:]
    assert await _text(mbox, info, "", partial=(len(raw) + 5, 100)) == b""
    assert await _text(mbox, info, "HEADER.FIELDS", ["subject"], partial=(2, 5)) == b"bject"
    assert await _text(mbox, info, "1.1", partial=(4, 3)) == b"C3="


async def test_bare_lf_messages_are_served_with_crlf(mbox: Mailbox) -> None:
    raw = SAMPLES["lf-only"]
    mid = await _deliver(mbox, raw)
    info = (await fetch_info(mbox, [mid]))[mid]
    served = raw.replace(b"\n", b"\r\n")
    assert info.size == len(served) == 145  # Dovecot's RFC822.SIZE for this message
    assert await _text(mbox, info, "") == served
    assert await _text(mbox, info, "1", partial=(3, 4)) == b"e on"
    assert await _text(mbox, info, "HEADER.FIELDS", ["Subject"]) == b"Subject: bare LF\r\n\r\n"


async def test_binary_decodes_and_refuses_unknown_encodings(mbox: Mailbox) -> None:
    mid = await _deliver(mbox, SAMPLES["binary-parts"])
    info = (await fetch_info(mbox, [mid]))[mid]
    # Dovecot's answers for this message
    assert await _text(mbox, info, "1", binary=True) == "café softbreak, trailing".encode(
        "latin-1")
    assert await _text(mbox, info, "2", binary=True) == bytes(range(8))
    assert await _text(mbox, info, "2", binary=True, partial=(2, 3)) == b"\x02\x03\x04"
    assert await binary_size(mbox, info, SectionSpec.parse("1")) == 24
    assert await binary_size(mbox, info, SectionSpec.parse("2")) == 8
    odd = await _deliver(mbox, SAMPLES["odd-content-types"])
    odd_info = (await fetch_info(mbox, [odd]))[odd]
    assert await _text(mbox, odd_info, "1", binary=True) == b"no subtype"
    with pytest.raises(BinaryUndecodable):
        await section(mbox, odd_info, SectionSpec.parse("3"), binary=True)
    with pytest.raises(BinaryUndecodable):
        await binary_size(mbox, odd_info, SectionSpec.parse("3"))


async def test_large_messages_stream_in_chunks(mbox: Mailbox, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    payload = os.urandom(3 << 20)
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    raw = (b"From: big@example.org\r\nSubject: big\r\nContent-Type: multipart/mixed; "
           b"boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsmall\r\n--B\r\n"
           b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64"
           b"\r\n\r\n" + encoded + b"--B--\r\n")
    mid = await _deliver(mbox, raw)
    info = (await fetch_info(mbox, [mid]))[mid]
    assert info.size == len(raw)
    length, chunks = await section(mbox, info, SectionSpec.parse("2"))
    sizes, data = [], []
    async for chunk in chunks:
        sizes.append(len(chunk))
        data.append(chunk)
    assert length == len(encoded) - 2 and b"".join(data) == encoded[:-2]
    assert max(sizes) <= 64 * 1024
    monkeypatch.setattr(fetch_data, "DECODE_IN_MEMORY", 1024)  # the two-pass path
    assert await binary_size(mbox, info, SectionSpec.parse("2")) == len(payload)
    length, chunks = await section(mbox, info, SectionSpec.parse("2"), binary=True,
                                   partial=(1000, 200_000))
    piece = b"".join([chunk async for chunk in chunks])
    assert length == 200_000 and piece == payload[1000:201_000]
    length, chunks = await section(mbox, info, SectionSpec.parse("2"), binary=True)
    assert b"".join([chunk async for chunk in chunks]) == payload


async def test_messages_stored_without_a_parser_are_parsed_on_first_fetch(
        mbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.store import mime_cache

    raws = list(SAMPLES.values())
    monkeypatch.setattr(mime_cache, "_builder", None)  # as after a CLI import
    ids = [await _deliver(mbox, raw) for raw in raws]
    with _db(mbox) as conn:
        assert conn.execute("SELECT count(*) FROM mime_structures").fetchone()[0] == 0
    writes: list[str] = []
    original = Mailbox.write

    async def counting(self: Mailbox, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        writes.append(fn.__name__)
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(Mailbox, "write", counting)
    monkeypatch.setattr(fetch_data, "PARSE_GROUP", 5)
    cold = await fetch_info(mbox, ids)
    assert writes == ["save_structures"]  # one writer call for the batch
    for mid, raw in zip(ids, raws, strict=True):
        parsed = parse_message(raw)
        assert (cold[mid].envelope, cold[mid].bodystructure, cold[mid].size) == (
            parsed.envelope, parsed.bodystructure, parsed.size)
    assert await fetch_info(mbox, ids) == cold


async def test_a_message_whose_blob_goes_away_meanwhile_is_left_out(
        mbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.store import mime_cache
    from gateway.store.errors import CorruptStore

    monkeypatch.setattr(mime_cache, "_builder", None)
    kept = await _deliver(mbox, SAMPLES["no-body"])
    gone = await _deliver(mbox, SAMPLES["empty-body"])
    vanished = (await mime_cache.ensure_mime(mbox, [gone]))[gone][0]
    real = mime_cache.blob_bytes

    def flaky(txn, digest: str) -> bytes:  # type: ignore[no-untyped-def]
        if digest == vanished:
            raise CorruptStore("gone")
        return real(txn, digest)

    monkeypatch.setattr(mime_cache, "blob_bytes", flaky)
    assert set(await fetch_info(mbox, [kept, gone])) == {kept}


async def test_nul_bytes_become_0x80_in_body_sections_but_not_in_binary(mbox: Mailbox) -> None:
    mid = await _deliver(mbox, SAMPLES["cr-and-nul"])
    info = (await fetch_info(mbox, [mid]))[mid]
    assert await _text(mbox, info, "TEXT") == b"nul \x80 byte\r\nbare\rCR\r\n"  # as Dovecot
    assert b"\x00" not in await _text(mbox, info, "")
    assert await _text(mbox, info, "1", binary=True) == b"nul \x00 byte\r\nbare\rCR\r\n"


async def test_large_blobs_are_parsed_from_a_mapped_file(
        mbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.store import mime_cache

    monkeypatch.setattr(mime_cache, "_builder", None)
    monkeypatch.setattr(fetch_data, "PARSE_IN_MEMORY", 100)
    raws = [SAMPLES[name] for name in ("lf-only", "rfc822-in-multipart", "binary-parts",
                                       "no-body", "cr-and-nul")]
    raws.append(corpus()["thunderbird-smime-signed.eml"])  # LF line ends, 210 KB
    ids = [await _deliver(mbox, raw) for raw in raws]
    infos = await fetch_info(mbox, ids)
    for mid, raw in zip(ids, raws, strict=True):
        parsed = parse_message(raw)
        assert (infos[mid].size, infos[mid].crlf, infos[mid].bodystructure,
                infos[mid].envelope) == (parsed.size, parsed.crlf, parsed.bodystructure,
                                         parsed.envelope)
    fetch_data._TREES.clear()
    assert await _text(mbox, infos[ids[0]], "1") == b"line one\r\nline two"


async def test_bodies_read_ahead_serve_sections_without_more_reads(
        mbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    small = [await _deliver(mbox, SAMPLES[name]) for name in ("rfc822-in-multipart", "lf-only")]
    big = await _deliver(mbox, b"Subject: big\r\n\r\n" + b"x" * (fetch_data.READ_AT_ONCE + 1))
    fetch_data._TREES.clear()
    infos = await fetch_info(mbox, [*small, big], bodies=True)
    assert infos[big].data is None and all(infos[m].data is not None for m in small)

    async def no_read(self: Mailbox, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError(f"a read-ahead section read the store ({fn.__name__})")

    monkeypatch.setattr(Mailbox, "read", no_read)
    monkeypatch.setattr(Mailbox, "stream", no_read)
    first, second = infos[small[0]], infos[small[1]]
    assert await _text(mbox, first, "") == SAMPLES["rfc822-in-multipart"]
    assert await _text(mbox, first, "2.1") == b"inner text\r\ntwo lines"
    assert await _text(mbox, first, "2.HEADER.FIELDS", ["subject"]) == b"Subject: inner\r\n\r\n"
    assert await _text(mbox, second, "1", partial=(3, 4)) == b"e on"
    assert await _text(mbox, second, "") == SAMPLES["lf-only"].replace(b"\n", b"\r\n")
