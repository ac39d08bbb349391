"""Internet mail ⇄ MAPI (gateway.convert.mime_in / mime_out): corpus, round trips, bad input.

- every sample in tests/corpus/mail/ parses to the properties that matter;
- MIME → MAPI → MIME keeps them (the MAPI views match) and keeps the header
  fields and attachment payloads (compared through the stdlib's own parse);
- hypothesis: messages built from properties survive render → parse, and
  render(parse(render(x))) == render(x) byte for byte;
- hostile input (nesting bombs, giant headers, broken encodings, unknown
  charsets, NULs, random bytes) converts as far as it can, in bounded time and
  memory, never raising;
- a parsed message stored in a mailbox, loaded back and rendered.
"""

from __future__ import annotations

import email
import hashlib
import importlib.util
import re
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime
from email import policy
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.convert import addresses as A
from gateway.convert import charsets
from gateway.convert.load import load_message
from gateway.convert.mime_in import parse
from gateway.convert.mime_out import render
from gateway.convert.mime_parts import clean_filename, unflow
from gateway.convert.mime_special import meeting_class
from gateway.store import Mailbox, NewAttachment, NewMessage, Private
from gateway.store import tags as T

CORPUS = Path(__file__).parents[1] / "corpus" / "mail"
SAMPLES = sorted(CORPUS.glob("*.eml"))
HAS_TNEF = importlib.util.find_spec("gateway.convert.tnef") is not None
HAS_RTF = all(importlib.util.find_spec(f"gateway.convert.{name}") is not None
              for name in ("rtf", "body"))


def sample(name: str) -> NewMessage:
    defects: list[str] = []
    message = parse((CORPUS / name).read_bytes(), defects=defects)
    assert message.mime == (CORPUS / name).read_bytes()
    return message


def without_mime(message: NewMessage) -> NewMessage:
    message.mime = None
    for attachment in message.attachments:
        if attachment.embedded is not None:
            without_mime(attachment.embedded)
    return message


def names(message: NewMessage) -> list[str | None]:
    return [a.props.get(T.PidTagAttachLongFilename) for a in message.attachments]


def rows(message: NewMessage) -> list[tuple[int, str, str]]:
    return [(r[T.PidTagRecipientType], r[T.PidTagDisplayName], r[T.PidTagSmtpAddress])
            for r in message.recipients]


# -- the corpus ---------------------------------------------------------------------------------


def test_corpus_is_documented() -> None:
    readme = (CORPUS / "README.md").read_text()
    assert len(SAMPLES) >= 20
    assert [p.name for p in SAMPLES if f"`{p.name}`" not in readme] == []


def test_gmail_alternative() -> None:
    m = sample("gmail-alternative.eml")
    p = m.props
    assert p[T.PidTagMessageClass] == "IPM.Note"
    assert p[T.PidTagSentRepresentingName] == p[T.PidTagSenderName] == "Jeffrey Stedfast"
    assert p[T.PidTagSenderSmtpAddress] == "jeff.stedfast@gmail.com"
    assert p[T.PidTagSenderAddressType] == "SMTP"
    assert A.parse_one_off(p[T.PidTagSenderEntryId]) == (
        "Jeffrey Stedfast", "SMTP", "jeff.stedfast@gmail.com")
    assert rows(m) == [(1, "Jeffrey Stedfast", "jeff@xamarin.com")]
    assert p[T.PidTagDisplayTo] == "Jeffrey Stedfast"
    assert p[T.PidTagBody] == "This is the message body.\r\n\r\nJeff\r\n"
    assert p[T.PidTagHtml].startswith(b'<div dir="ltr">This is the message body.')
    assert p[T.PidTagInternetCodepage] == 65001
    assert p[T.PidTagClientSubmitTime] == datetime(2015, 6, 11, 2, 5, 37, tzinfo=UTC)
    assert p[T.PidTagInternetMessageId].startswith("<CAFksUUeRp=6VFpYM")
    assert p[T.PidTagTransportMessageHeaders].startswith("Delivered-To: jeff@xamarin.com")
    assert "DKIM-Signature: v=1;" in p[T.PidTagTransportMessageHeaders]
    assert m.attachments == []


def test_outlook_inline_image_and_envelope() -> None:
    m = sample("outlook-inline-image.eml")
    p = m.props
    assert p[T.PidTagSubject] == "AW: Angebot für Projekt Phoenix"
    assert p[T.PidTagSubjectPrefix] == "AW: "
    assert p[T.PidTagNormalizedSubject] == p[T.PidTagConversationTopic] == (
        "Angebot für Projekt Phoenix")
    assert p[T.PidTagConversationIndex][:6] == bytes.fromhex("0101daa9f2b6")
    assert p[T.PidTagSentRepresentingName] == "Anna Müller"
    assert rows(m) == [(1, "Smith, Bob", "bob@fabrikam.example"),
                       (1, "Carol", "carol@fabrikam.example"),
                       (2, "team@contoso.example", "team@contoso.example")]
    assert p[T.PidTagDisplayTo] == "Smith, Bob; Carol"
    assert p[T.PidTagDisplayCc] == "team@contoso.example"
    assert p[T.PidTagImportance] == 2 and p[T.PidTagSensitivity] == 3
    assert p[T.PidTagReadReceiptRequested] is True
    assert p[T.PidTagReadReceiptSmtpAddress] == "anna.mueller@contoso.example"
    assert p[T.PidTagInReplyToId] == p[T.PidTagInternetReferences] == (
        "<CAB9x7kV2nQ=abc123@mail.gmail.com>")
    assert p[T.PidTagInternetCodepage] == 28591
    assert b"Caf\xe9 on Friday" in p[T.PidTagHtml]  # kept in its own charset
    assert "Café on Friday?" in p[T.PidTagBody]
    image, pdf = m.attachments
    assert image.props[T.PidTagAttachContentId] == "image001.png@01DAB5A1.3C9E4F20"
    assert image.props[T.PidTagAttachFlags] == 4 and image.props[T.PidTagAttachmentHidden]
    assert image.props[T.PidTagAttachMimeTag] == "image/png"
    assert image.data is not None and b"".join(image.data).startswith(b"\x89PNG")
    assert pdf.props[T.PidTagAttachLongFilename] == "Angebot Phoenix \u2013 unterschrieben.pdf"
    assert pdf.props[T.PidTagAttachFilename] == "ANGEBO~1.PDF"
    assert pdf.props[T.PidTagAttachExtension] == ".pdf"
    assert pdf.props[T.PidTagAttachMethod] == 1
    assert T.PidTagAttachmentHidden not in pdf.props


@pytest.mark.parametrize(("name", "cls"), [
    ("outlook-meeting-request.eml", "IPM.Schedule.Meeting.Request"),
    ("google-calendar-reply.eml", "IPM.Schedule.Meeting.Resp.Neg"),
])
def test_meeting_messages_keep_the_calendar(name: str, cls: str) -> None:
    m = sample(name)
    assert m.props[T.PidTagMessageClass] == cls
    calendar = m.attachments[0]
    assert calendar.props[T.PidTagAttachMimeTag] == "text/calendar"
    assert calendar.data is not None and b"BEGIN:VCALENDAR" in b"".join(calendar.data)


def test_meeting_class_from_method_and_partstat() -> None:
    ics = b"BEGIN:VCALENDAR\r\nMETHOD:%s\r\nBEGIN:VEVENT\r\nATTENDEE;CN=A;\r\n PARTSTAT=%s:m\r\n"
    assert meeting_class(ics % (b"REQUEST", b"NEEDS-ACTION")) == "IPM.Schedule.Meeting.Request"
    assert meeting_class(ics % (b"CANCEL", b"X")) == "IPM.Schedule.Meeting.Canceled"
    assert meeting_class(ics % (b"REPLY", b"ACCEPTED")) == "IPM.Schedule.Meeting.Resp.Pos"
    assert meeting_class(ics % (b"REPLY", b"TENTATIVE")) == "IPM.Schedule.Meeting.Resp.Tent"
    assert meeting_class(ics % (b"COUNTER", b"X")) == "IPM.Schedule.Meeting.Resp.Tent"
    assert meeting_class(ics % (b"PUBLISH", b"X")) is None


def test_calendar_hook_sees_inline_calendar_parts_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.convert import mime_in

    ics = b"BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\nEND:VCALENDAR\r\n"
    inline = b"Content-Type: text/calendar; method=CANCEL\r\n\r\n" + ics
    assert parse(inline).props[T.PidTagMessageClass] == "IPM.Schedule.Meeting.Canceled"
    attached = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nhi\r\n--b\r\n"
                b"Content-Type: text/calendar\r\nContent-Disposition: attachment; filename=x.ics"
                b"\r\n\r\n" + ics + b"--b--")
    assert parse(attached).props[T.PidTagMessageClass] == "IPM.Note"
    seen: list[bytes] = []
    monkeypatch.setattr(mime_in, "calendar_part", lambda message, data: seen.append(data))
    parse(inline)
    assert seen == [ics]


def test_iphone_html_split_around_the_photo_is_joined() -> None:
    m = sample("iphone-mail-photo.eml")
    assert m.props[T.PidTagSubject] == "Sunset 🌅"
    assert m.props[T.PidTagSentRepresentingName] == "Zoë Baker"
    html = m.props[T.PidTagHtml]
    assert b"Look at this!" in html and b"Sent from my iPhone" in html
    assert m.props[T.PidTagBody].endswith("Sent from my iPhone")
    assert names(m) == ["IMG_4821.jpeg"]


def test_smime_stays_opaque() -> None:
    signed = sample("thunderbird-smime-signed.eml")
    assert signed.props[T.PidTagMessageClass] == "IPM.Note.SMIME.MultipartSigned"
    assert "generated and signed by Thunderbird 24.1.0 using my free" in signed.props[
        T.PidTagBody]  # flowed text joined
    (p7m,) = signed.attachments
    assert p7m.props[T.PidTagAttachLongFilename] == "smime.p7m"
    assert p7m.props[T.PidTagAttachMimeTag] == "multipart/signed"
    data = b"".join(p7m.data or [])
    assert data.startswith(b"Content-Type: multipart/signed;")
    assert data.endswith(b"--------------ms000505020301050400050509--\n")
    encrypted = sample("outlook-smime-encrypted.eml")
    assert encrypted.props[T.PidTagMessageClass] == "IPM.Note.SMIME"
    assert encrypted.attachments[0].props[T.PidTagAttachMimeTag] == "application/pkcs7-mime"
    assert b"".join(encrypted.attachments[0].data or [])[4:15] == bytes.fromhex(
        "06092a864886f70d010703")


def test_delivery_reports() -> None:
    ndr = sample("delivery-status.eml")
    assert ndr.props[T.PidTagMessageClass] == "REPORT.IPM.Note.NDR"
    assert rows(ndr) == [(1, "newsletter-request@imusic.com", "newsletter-request@imusic.com")]
    assert ndr.props[T.PidTagBody].startswith("Processing your mail message caused")
    assert ndr.props[T.PidTagOriginalSubject] == "unsubscribe"
    assert ndr.attachments[0].embedded is not None
    bounce = sample("bounce-multiple-status.eml")
    assert bounce.props[T.PidTagMessageClass] == "REPORT.IPM.Note.NDR"
    assert bounce.recipients[0][T.PidTagNonDeliveryReportStatusCode] == 530
    assert bounce.props[T.PidTagBody].startswith("This Message was undeliverable")
    receipt = sample("read-receipt.eml")
    assert receipt.props[T.PidTagMessageClass] == "REPORT.IPM.Note.IPNRN"
    assert receipt.props[T.PidTagOriginalMessageId] == "<199509192301.23456@example.org>"
    assert receipt.props[T.PidTagOriginalDisplayTo] == "Joe_Recipient@example.com"


def test_charsets_and_encoded_parameters() -> None:
    assert sample("thunderbird-iso-2022-jp.eml").props[T.PidTagSubject] == (
        "日本語メールテスト (testing Japanese emails)")
    korean = sample("ks_c_5601-1987.eml")
    assert korean.props[T.PidTagBody].startswith("스티해")
    assert korean.props[T.PidTagInternetCodepage] == 949
    utf8 = sample("utf8-headers.eml")
    assert utf8.props[T.PidTagSubject] == "Säying Hello"
    assert utf8.props[T.PidTagSenderSmtpAddress] == "jdöe@mächine.example"
    assert names(sample("apple-mail-rfc2231-filename.eml")) == ["Eelanalüüsi päring.jpg"]
    assert names(sample("apple-mail-long-japanese-filename.eml")) == [
        "かきくけこかきくけこかきくけこかきくけこかきくけこ.txt"]
    k9 = sample("k9-mail-android.eml")
    assert names(k9) == ["отчёт_июнь.csv"]
    assert k9.props[T.PidTagSentRepresentingName] == "Мария Иванова"
    assert k9.props[T.PidTagBody].startswith("Привет, Дэн!")


def test_list_headers_and_flowed_text() -> None:
    m = sample("thunderbird-mailman-list.eml")
    p = m.props
    assert p[T.PidTagListUnsubscribe] == "<mailto:devel-leave@lists.example.org>"
    assert p[T.PidTagListHelp] == "<mailto:devel-request@lists.example.org?subject=help>"
    list_id = next(v for k, v in p.items() if getattr(k, "key", None) == "List-Id")
    assert list_id == "Development discussion <devel.lists.example.org>"
    assert "> Can we move the freeze to the 20th? Two of the translations are still missing." \
        in p[T.PidTagBody]
    assert "(Übersetzer)" in p[T.PidTagBody]


def test_embedded_messages() -> None:
    m = sample("apple-mail-forwarded-message.eml")
    (forwarded,) = m.attachments
    inner = forwarded.embedded
    assert inner is not None and forwarded.props[T.PidTagAttachMethod] == 5
    assert forwarded.props[T.PidTagAttachLongFilename] == "ForwardedMessage.eml"
    assert inner.props[T.PidTagSubject] == "Another PDF"
    assert inner.props[T.PidTagSentRepresentingName] == "Test Tester"  # mbox From_ line skipped
    assert names(inner) == ["broken.pdf"]
    outlook = sample("outlook-embedded-message.eml")
    assert outlook.attachments[0].props[T.PidTagDisplayName] == "embedded message"


def test_related_root_by_type_and_location() -> None:
    m = sample("mhtml-related.eml")
    assert m.props[T.PidTagHtml].startswith(b"<!DOCTYPE html")
    (image,) = m.attachments
    assert image.props[T.PidTagAttachContentLocation] == "image1"
    assert image.props[T.PidTagAttachmentHidden] is True


@pytest.mark.skipif(not HAS_TNEF, reason="gateway.convert.tnef not there yet")
def test_winmail_dat_is_decoded_and_merged() -> None:
    m = sample("outlook365-winmail-dat.eml")
    assert m.props[T.PidTagSubject] == "rr test 7"
    assert m.props[T.PidTagInternetMessageId].startswith("<AM0PR0702MB3522C04E")
    assert "winmail.dat" not in [n and n.lower() for n in names(m)]
    assert T.PidTagHtml in m.props  # from the TNEF stream


# -- MIME -> MAPI -> MIME -----------------------------------------------------------------------


def view(message: NewMessage, ids: bool = True) -> dict[str, Any]:
    """What must survive a round trip, in comparable form (``ids=False``: without the
    Message-ID, which rendering derives when a message has none)."""
    p = message.props
    html = p.get(T.PidTagHtml)
    return {
        "class": p.get(T.PidTagMessageClass), "subject": p.get(T.PidTagSubject, ""),
        "from": (p.get(T.PidTagSentRepresentingName), p.get(T.PidTagSentRepresentingSmtpAddress)),
        "sender": (p.get(T.PidTagSenderName), p.get(T.PidTagSenderSmtpAddress)),
        "reply_to": A.reply_to_of(p), "recipients": rows(message),
        "body": p.get(T.PidTagBody, ""),
        "html": None if html is None else charsets.decode(
            re.sub(rb"\r\n|\r|\n", b"\r\n", html),
            charsets.charset_of(p.get(T.PidTagInternetCodepage))),
        "importance": p.get(T.PidTagImportance, 1), "sensitivity": p.get(T.PidTagSensitivity, 0),
        "receipt": bool(p.get(T.PidTagReadReceiptRequested)),
        "id": p.get(T.PidTagInternetMessageId) if ids else None,
        **{name: p.get(tag) for name, tag in (
            ("date", T.PidTagClientSubmitTime),
            ("in_reply_to", T.PidTagInReplyToId), ("refs", T.PidTagInternetReferences),
            ("unsubscribe", T.PidTagListUnsubscribe),
            ("index", T.PidTagConversationIndex), ("topic", T.PidTagConversationTopic),
            ("report", T.PidTagReportText), ("original_id", T.PidTagOriginalMessageId))},
        "attachments": [(a.props.get(T.PidTagAttachLongFilename),
                         a.props.get(T.PidTagAttachMimeTag),
                         a.props.get(T.PidTagAttachContentId),
                         a.props.get(T.PidTagAttachContentLocation),
                         bool(a.props.get(T.PidTagAttachmentHidden)),
                         None if a.data is None else hashlib.sha256(b"".join(a.data)).hexdigest(),
                         None if a.embedded is None else view(a.embedded, False))
                        for a in message.attachments],
    }


SKIPPED = ("text/plain", "text/html", "message/rfc822", "application/ms-tnef")


def stdlib_view(raw: bytes, report: bool) -> dict[str, Any]:
    """Header fields and attachment payloads as the stdlib reads them."""
    msg = email.message_from_bytes(raw, policy=policy.default)
    out: dict[str, Any] = {}
    for name in ("from", "to", "cc", "reply-to"):
        if name in ("to", "cc") and report:
            continue  # a report's recipients are the ones it reports on
        value = msg.get(name)
        out[name] = sorted((" ".join(n.split()), a.lower())
                           for n, a in getaddresses([str(value or "")]) if "@" in a)
    for name in ("subject", "message-id", "in-reply-to", "references", "importance"):
        out[name] = " ".join(str(msg.get(name) or "").split()).lower()
    raw_date = email.message_from_bytes(raw, policy=policy.compat32)["date"]
    date = re.sub(r"\([^()]*\)", " ", str(raw_date or ""))
    out["date"] = parsedate_to_datetime(date) if date else None
    payloads: Counter[tuple[str, str]] = Counter()
    for part in msg.walk():
        ctype = part.get_content_type()
        if part.is_multipart() or ctype.startswith("multipart/") or ctype in SKIPPED or \
                ctype.endswith(("-status", "-notification")):
            continue
        data = part.get_payload(decode=True) or b""
        payloads[(ctype, hashlib.sha256(data).hexdigest())] += 1
    out["payloads"] = payloads
    return out


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_mime_mapi_mime_keeps_what_matters(path: Path) -> None:
    raw = path.read_bytes()
    first = without_mime(parse(raw))
    rendered = render(first)
    second = without_mime(parse(rendered))
    has_id = T.PidTagInternetMessageId in first.props
    assert view(second, has_id) == view(first, has_id)
    assert render(second) == rendered  # deterministic: a fixed point after one trip
    report = str(first.props.get(T.PidTagMessageClass)).startswith("REPORT.")
    before, after = stdlib_view(raw, report), stdlib_view(rendered, report)
    if not before["message-id"]:
        after["message-id"] = ""  # derived when rendering
    if path.name.startswith("outlook365-winmail"):
        before.pop("payloads"), after.pop("payloads")  # winmail.dat became properties
    assert after == before


# -- property-built messages: render -> parse ---------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"),
                max_size=80)
_address = st.builds("{}@{}.example".format,
                     st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,15}", fullmatch=True),
                     st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True))
_name = _text.map(lambda s: " ".join(s.split()))
_filename = st.one_of(_text, st.sampled_from([
    'report "final"; v2.pdf', "a/b\\c.txt", "  spaced  name .doc", "ü😀" * 60 + ".png",
    "=?utf-8?q?not-a-word?=.txt", "x" * 300, "semi;colon,comma'quote.bin"]))
_body = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                max_size=400)


@st.composite
def messages(draw: st.DrawFn, depth: int = 0) -> NewMessage:
    props: dict[Any, Any] = {T.PidTagMessageClass: "IPM.Note", T.PidTagSubject: draw(_text)}
    props.update(A.person_props((draw(_name), draw(_address)), A.SENT_REPRESENTING))
    props.update(A.person_props((draw(_name), draw(_address)), A.SENDER))
    if draw(st.booleans()):
        props[T.PidTagBody] = draw(_body)
    if draw(st.booleans()):
        props[T.PidTagHtml] = ("<p>" + draw(_body) + "</p>").encode("utf-8")
        props[T.PidTagInternetCodepage] = 65001
        props.setdefault(T.PidTagBody, draw(_body))
    props[T.PidTagImportance] = draw(st.sampled_from([0, 1, 2]))
    if draw(st.booleans()):
        props[T.PidTagClientSubmitTime] = draw(st.datetimes(
            datetime(1980, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))).replace(
            microsecond=0)
        props[T.PidTagInternetMessageId] = f"<{draw(_address)}>"
    recipients = sorted((A.recipient((draw(_name), draw(_address)), rtype)
                         for rtype in draw(st.lists(st.sampled_from([1, 2, 3]), max_size=4))),
                        key=lambda r: r[T.PidTagRecipientType])
    attachments = []
    for _ in range(draw(st.integers(0, 3))):
        data = draw(st.binary(max_size=300))
        aprops = {T.PidTagAttachLongFilename: draw(_filename), T.PidTagAttachMimeTag:
                  draw(st.sampled_from(["application/pdf", "image/png", "text/plain",
                                        "application/octet-stream"]))}
        if draw(st.booleans()):
            aprops[T.PidTagAttachContentId] = f"part{len(attachments)}@example"
            aprops[T.PidTagAttachmentHidden] = draw(st.booleans())
        attachments.append(NewAttachment(props=aprops, data=[data]))
    if depth < 2 and draw(st.integers(0, 5)) == 0:
        attachments.append(NewAttachment(props={}, embedded=draw(messages(depth + 1))))
    return NewMessage(props=props, recipients=recipients, attachments=attachments)


def expected_attachments(message: NewMessage) -> list[tuple[Any, ...]]:
    html = T.PidTagHtml in message.props
    inline = [a for a in message.attachments if html and a.embedded is None
              and a.props.get(T.PidTagAttachContentId) and a.props.get(T.PidTagAttachmentHidden)]
    order = inline + [a for a in message.attachments if not any(a is b for b in inline)]
    return [(clean_filename(a.props.get(T.PidTagAttachLongFilename, "")) or None,
             "message/rfc822" if a.embedded else a.props.get(T.PidTagAttachMimeTag),
             None if a.data is None else b"".join(a.data),
             a.props.get(T.PidTagAttachContentId)) for a in order]


def crlf(text: str) -> str:
    return re.sub(r"\r\n|\r|\n", "\r\n", text)


def check_round_trip(original: NewMessage, parsed: NewMessage) -> None:
    p, q = original.props, parsed.props
    assert q[T.PidTagSubject] == p[T.PidTagSubject]
    for keys in (A.SENT_REPRESENTING, A.SENDER):
        name, address = A.person_of(p, keys) or ("", "")
        assert (q[keys[0]], q[keys[3]]) == (name or address, address)
    assert rows(parsed) == [(r[T.PidTagRecipientType], r[T.PidTagDisplayName] or "",
                             r[T.PidTagSmtpAddress]) for r in original.recipients]
    assert q.get(T.PidTagBody, "") == crlf(p.get(T.PidTagBody, ""))
    if T.PidTagHtml in p:
        assert q[T.PidTagHtml] == crlf(p[T.PidTagHtml].decode()).encode()
    assert q[T.PidTagImportance] == p[T.PidTagImportance]
    for tag in (T.PidTagClientSubmitTime, T.PidTagInternetMessageId):
        if tag in p:
            assert q[tag] == p[tag]
    got = [(a.props.get(T.PidTagAttachLongFilename), a.props.get(T.PidTagAttachMimeTag),
            None if a.data is None else b"".join(a.data), a.props.get(T.PidTagAttachContentId))
           for a in parsed.attachments]
    assert got == expected_attachments(original)
    for mine, theirs in zip(original.attachments, parsed.attachments, strict=False):
        if mine.embedded is not None:
            assert theirs.embedded is not None
    embedded = [(a, b) for a, b in zip([a for a in original.attachments if a.embedded],
                                       [a for a in parsed.attachments if a.embedded],
                                       strict=True)]
    for mine, theirs in embedded:
        assert mine.embedded is not None and theirs.embedded is not None
        check_round_trip(mine.embedded, theirs.embedded)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_render_parse_round_trip(message: NewMessage) -> None:
    rendered = render(message)
    assert render(message) == rendered
    parsed = without_mime(parse(rendered))
    check_round_trip(message, parsed)
    assert render(parsed) == rendered


# -- pieces -------------------------------------------------------------------------------------


def test_one_off_entry_ids_and_flat_lists() -> None:
    entry = A.one_off_entry_id("Zoë", "zoe@example.org")
    assert entry[:4] == b"\0\0\0\0" and entry[4:20] == A.ONE_OFF_UID
    assert entry[20:24] == bytes.fromhex("00000190")  # version 0, Unicode | no rich info
    assert A.parse_one_off(entry) == ("Zoë", "SMTP", "zoe@example.org")
    flat = A.flat_entry_list([entry, A.one_off_entry_id("", "b@example.org")])
    assert A.parse_flat_entry_list(flat)[0] == entry and len(flat) % 4 == 0
    assert A.parse_flat_entry_list(b"\xff\xff\xff\xff" + flat[4:12]) == []  # hostile count
    assert A.search_key("a@b.c") == b"SMTP:A@B.C\0"


def test_encoded_words_and_charsets() -> None:
    # a character split across two encoded words survives
    assert charsets.decode_words("=?utf-8?b?w6Q=?= =?utf-8?q?=C3?= =?utf-8?q?=BC?=") == "äü"
    assert charsets.decode_words("a =?iso-8859-1?q?caf=E9?= b") == "a café b"
    assert charsets.decode_words("=?x-unknown?q?caf=E9?=") == "café"  # best effort
    assert charsets.decode(b"caf\xe9", "iso-8859-1") == "café"
    assert charsets.decode(b"\x80 euro", "iso-8859-1") == "€ euro"  # read as windows-1252
    assert charsets.decode("ü".encode(), "us-ascii") == "ü"
    assert charsets.decode(b"\xff\xfe", "no-such-charset") == "ÿþ"  # UTF-8, else windows-1252
    assert charsets.codepage("ISO-8859-15") == 28605 and charsets.codepage("x-sjis") == 932
    assert charsets.codepage("koi8-r") == 20866 and charsets.codepage("bogus") is None
    words = charsets.encode_words("ü" * 100)
    assert all(len(w) <= 75 for w in words)
    assert charsets.decode_words(" ".join(words)) == "ü" * 100


def test_unflow() -> None:
    text = "one \r\ntwo\r\n> quoted \r\n> more\r\n-- \r\nsig"
    assert unflow(text, False) == "one two\r\n> quoted more\r\n-- \r\nsig"
    assert unflow("wo \r\nrd", True) == "word"


def test_render_returns_the_original_bytes() -> None:
    m = sample("gmail-alternative.eml")
    assert render(m) == (CORPUS / "gmail-alternative.eml").read_bytes()


def test_render_from_properties() -> None:
    message = NewMessage(props={
        T.PidTagMessageClass: "IPM.Note", T.PidTagSubject: "RE: Größe",
        T.PidTagBody: "plain\n", T.PidTagImportance: 0, T.PidTagSensitivity: 2,
        T.PidTagClientSubmitTime: datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        T.PidTagReadReceiptRequested: True,
        **A.person_props(("Anna", "anna@example.org"), A.SENT_REPRESENTING),
        **A.reply_to_props([("Desk", "desk@example.org")])},
        recipients=[A.recipient(("Bob", "bob@example.org"), 1)])
    raw = render(message)
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Subject"] == "RE: Größe" and msg["From"] == "Anna <anna@example.org>"
    assert msg["Reply-To"] == "Desk <desk@example.org>" and msg["To"] == "Bob <bob@example.org>"
    assert msg["Date"] == "Tue, 02 Jan 2024 03:04:05 +0000"
    assert msg["Importance"] == "low" and msg["Sensitivity"] == "Private"
    assert msg["Disposition-Notification-To"] == "Anna <anna@example.org>"
    assert re.fullmatch(r"<[0-9a-f]{32}@example\.org>", msg["Message-ID"])
    assert msg.get_content() == "plain\r\n" and b"\r\n" in raw and b"\n" not in raw.replace(
        b"\r\n", b"")


@pytest.mark.skipif(not HAS_RTF, reason="gateway.convert.rtf / body not there yet")
def test_rtf_only_message_renders_html_and_text() -> None:
    from gateway.convert import rtf

    body = rb"{\rtf1\ansi\fromhtml1 {\*\htmltag1 <html><body>}Hello{\*\htmltag1 </body></html>}}"
    message = NewMessage(props={T.PidTagSubject: "rtf", T.PidTagRtfCompressed: rtf.compress(body)})
    parsed = parse(render(message))
    assert b"Hello" in parsed.props[T.PidTagHtml] and "Hello" in parsed.props[T.PidTagBody]


def test_long_and_odd_header_values_fold_cleanly() -> None:
    subject = "word  " * 40 + "x" * 120 + " tail "
    raw = render(NewMessage(props={T.PidTagSubject: subject}))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 998 and line.strip() for line in head.split(b"\r\n"))
    assert parse(raw).props[T.PidTagSubject] == subject


# -- hostile input ------------------------------------------------------------------------------

BOMBS = {
    "nested multiparts": b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n"
                                  % (i, i) for i in range(10_000)) + b"\r\nhi\r\n",
    "nested, one boundary": b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                            + b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" * 10_000,
    "nested messages": b"Content-Type: message/rfc822\r\n\r\n" * 10_000 + b"Subject: x\r\n\r\nb",
    "100k parts": b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n\r\nx\r\n"
                  * 100_000 + b"--b--\r\n",
    "giant header line": b"Subject: " + b"a" * 5_000_000 + b"\r\n\r\nbody",
    "many header lines": b"X-A: b\r\n" * 300_000 + b"\r\nbody",
    "huge address list": b"To: " + b"a@b.c, " * 200_000 + b"\r\n\r\nbody",
    "many encoded words": b"Subject: " + b"=?utf-8?q?a?= " * 300_000 + b"\r\n\r\n",
    "parameter soup": b"Content-Type: text/plain" + b';a="' * 300_000 + b"\r\n\r\n",
    "no header, one line": b"A" * 5_000_000,
}
BROKEN = {
    "broken base64": b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                     b"iVBORw0KG!!!*\r\ngo=AAA=\r\nA",
    "broken qp": b"Content-Type: text/plain; charset=utf-8\r\n"
                 b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=C3=\r\n=A4 = =\r\n",
    "unknown charsets": b"Subject: =?x-bogus?q?caf=E9?= =?utf-8?b?!!?=\r\n"
                        b"From: =?foo?q?x?= <a@b.c>\r\nContent-Type: text/html; charset=x-bogus"
                        b"\r\n\r\n\xe9\xff<p>x</p>",
    "NULs": b"Subject: a\x00b\r\nFrom: \x00 <a@b.c>\r\nTo: \x00\r\nContent-Type: text/plain;"
            b" name=\"a\x00.txt\"\r\n\r\n\x00body\x00",
    "empty boundary": b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\nx\r\n----\r\n",
    "no delimiter": b"Content-Type: multipart/alternative; boundary=zz\r\n\r\nplain text\r\n",
    "unclosed multipart": b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
                          b"Content-Type: text/plain\r\n\r\nbody\r\n--q\r\nContent-Type: "
                          b"application/pdf; name=x.pdf\r\n\r\n%PDF",
    "bad dates and ids": b"Date: Feb 30 99999 25:61:61 +9999\r\nMessage-ID: \r\n"
                         b"Thread-Index: !!!\r\nImportance: ultra\r\n\r\nx",
    "empty": b"",
    "only a blank line": b"\r\n",
    "bare CRs": b"Subject: x\rTo: y\r\r\rbody\r",
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_bombs_are_bounded(name: str) -> None:
    raw = BOMBS[name]
    tracemalloc.start()
    started = time.perf_counter()
    defects: list[str] = []
    message = parse(raw, defects=defects)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert message.mime == raw and isinstance(message.props, dict)
    assert elapsed < 5.0, f"{name}: {elapsed:.1f} s"
    assert peak < 20 * len(raw) + (64 << 20), f"{name}: {peak >> 20} MiB"
    assert len(message.attachments) <= 1001 and len(message.recipients) <= 10_000
    message.mime = None
    render(message)


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_input_converts_as_far_as_it_can(name: str) -> None:
    raw = BROKEN[name]
    message = parse(raw)
    assert message.mime == raw
    for value in message.props.values():
        assert not (isinstance(value, str) and "\x00" in value)
    rendered = render(without_mime(message))
    assert render(without_mime(parse(rendered))) == rendered


def test_broken_input_keeps_what_is_readable() -> None:
    png = parse(BROKEN["broken base64"]).attachments[0]
    assert b"".join(png.data or []).startswith(b"\x89PNG")
    assert parse(BROKEN["no delimiter"]).props[T.PidTagBody] == "plain text\r\n"
    unclosed = parse(BROKEN["unclosed multipart"])
    assert unclosed.props[T.PidTagBody] == "body"
    assert names(unclosed) == ["x.pdf"]
    nul = parse(BROKEN["NULs"])
    assert nul.props[T.PidTagSubject] == "ab" and nul.recipients == []
    assert names(nul) == ["a.txt"] and nul.attachments[0].data == [b"\x00body\x00"]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SAMPLES), st.data())
def test_mutated_samples_never_raise(path: Path, data: st.DataObject) -> None:
    raw = bytearray(path.read_bytes()[:20_000])
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        action = data.draw(st.sampled_from(["cut", "flip", "insert", "truncate"]))
        if action == "cut":
            del raw[at:at + data.draw(st.integers(1, 200))]
        elif action == "flip" and raw:
            raw[at] = data.draw(st.integers(0, 255))
        elif action == "insert":
            raw[at:at] = data.draw(st.sampled_from(
                [b"\r\n", b"\r\n\r\n", b"--", b"=?", b"\x00", b";", b"\"", b"=\r\n", b"\n--"]))
        else:
            del raw[at:]
    message = parse(bytes(raw))
    assert message.mime == bytes(raw)
    render(without_mime(message))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    render(without_mime(parse(raw)))


# -- through the store --------------------------------------------------------------------------


async def test_store_load_render(mbox: Mailbox) -> None:
    for path in SAMPLES:
        parsed = parse(path.read_bytes())
        mid = await mbox.create_message(int(Private.INBOX), parsed)
        loaded = await load_message(mbox, mid)
        assert loaded.props.get(T.PidTagSubject) == parsed.props.get(T.PidTagSubject)
        rendered = render(loaded)
        again = without_mime(parse(rendered))
        original = view(without_mime(parsed))
        assert view(again)["attachments"] == original["attachments"], path.name
        assert view(again)["recipients"] == original["recipients"], path.name
        assert view(again)["body"] == original["body"], path.name
        assert render(again) == rendered
