"""A MAPI message as Internet mail (MS-OXCMAIL 2.1): :func:`render`.

A message that arrived as Internet mail is returned as it arrived
(``message.mime``). Otherwise the MIME is built from the properties, and the
same object always gives the same bytes (IMAP sizes stay stable): multipart
boundaries are hashes of the parts they enclose, Date comes from
``PidTagClientSubmitTime`` (else delivery, else creation time), and a missing
Message-ID is derived from ``PidTagSearchKey`` or from the content.

Layout, as the common clients write it::

    multipart/mixed                      when there are attachments
      multipart/alternative              plain text and HTML
        text/plain
        multipart/related                when the HTML shows inline images
          text/html
          image/png; Content-ID          (hidden or ATT_MHTML_REF attachments)
        text/calendar; method=...        meeting messages
      application/pdf ...                attachments (base64, RFC 2231 names)
      message/rfc822                     embedded messages, rendered in turn

S/MIME messages are written back from their single ``smime.p7m``
attachment. Header fields are folded at 78 columns; non-ASCII text becomes
RFC 2047 words and non-ASCII parameters RFC 2231 values. Nothing raises out
of :func:`render`: what cannot be written is left out and logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import mimetypes
import re
from typing import Any

from gateway.convert import addresses as A
from gateway.convert import charsets
from gateway.convert.mime_headers import (
    Header,
    envelope_headers,
    fold,
    unstructured,
    with_params,
)
from gateway.convert.mime_parts import clean_filename
from gateway.store import tags as T
from gateway.store.objects import NewAttachment, NewMessage

log = logging.getLogger(__name__)

MAX_DEPTH = 10
ATT_MHTML_REF = 0x4
CRLF = b"\r\n"
_TYPES = mimetypes.MimeTypes()  # the built-in table only: the same on every host
_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")


class Entity:
    """A MIME entity being built: its header fields and its encoded body."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: list[Header], body: bytes):
        self.headers, self.body = headers, body

    def bytes(self) -> bytes:
        return CRLF.join(self.headers) + CRLF + CRLF + self.body


# -- bodies -------------------------------------------------------------------------------------


def _transfer(data: bytes, text: bool) -> tuple[str, bytes]:
    """A content transfer encoding and the encoded body (CRLF line breaks)."""
    lines_ok = all(len(line) <= 998 for line in data.split(CRLF))
    bare = b"\r" in data.replace(CRLF, b"") or b"\n" in data.replace(CRLF, b"")
    if text and data.isascii() and lines_ok and not bare and b"\0" not in data:
        return "7bit", data
    if text and not bare and sum(b > 127 for b in data) * 4 < len(data):
        encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
        return "quoted-printable", re.sub(rb"(?<!\r)\n", CRLF, encoded)
    return "base64", base64.encodebytes(data).replace(b"\n", CRLF).rstrip(CRLF)


def _text(text: str, charset: str, subtype: str = "plain",
          params: list[tuple[str, str]] | None = None) -> Entity:
    text = re.sub(r"\r\n|\r|\n", "\r\n", text.replace("\x00", ""))
    codec = charsets.codec(charset) or "utf-8"
    data = text.encode(codec)
    cte, body = _transfer(data, True)
    return Entity([with_params("Content-Type", f"text/{subtype}",
                                [("charset", charset), *(params or [])]),
                   f"Content-Transfer-Encoding: {cte}".encode()], body)


def _plain_charset(text: str, codepage: int | None) -> str:
    charset = charsets.charset_of(codepage)
    codec = charsets.codec_of(codepage)
    if charset and codec and codepage not in (1200, 1201, 65000):
        try:
            text.encode(codec)
            return charset
        except UnicodeEncodeError:
            pass
    return "us-ascii" if text.isascii() else "utf-8"


def _html(data: bytes, codepage: int | None) -> Entity:
    charset = charsets.charset_of(codepage)
    if charset is None:
        charset = "utf-8" if charsets.decodes_strictly(data, "utf-8") else "windows-1252"
    if codepage in (1200, 1201, 65000):
        cte, body = "base64", base64.encodebytes(data).replace(b"\n", CRLF).rstrip(CRLF)
    else:
        cte, body = _transfer(re.sub(rb"\r\n|\r|\n", CRLF, data), True)
    return Entity([with_params("Content-Type", "text/html", [("charset", charset)]),
                   f"Content-Transfer-Encoding: {cte}".encode()], body)


def _bodies(props: dict[Any, Any]) -> tuple[str | None, bytes | None, int | None]:
    plain = props.get(T.PidTagBody)
    html = props.get(T.PidTagHtml)
    codepage = props.get(T.PidTagInternetCodepage)
    if not isinstance(html, bytes) and isinstance(props.get(T.PidTagBodyHtml), str):
        html, codepage = props[T.PidTagBodyHtml].encode("utf-8"), charsets.UTF8_CODEPAGE
    if not isinstance(html, bytes):
        html = None
    if not isinstance(plain, str):
        plain = None
    rtf = props.get(T.PidTagRtfCompressed)
    if plain is None and html is None and isinstance(rtf, bytes):
        try:
            from gateway.convert import body
            from gateway.convert import rtf as rtfcp
            raw = rtfcp.decompress(rtf)
            html = body.html_from_rtf(raw)
            if html is None:
                plain = body.text_from_rtf(raw)
            elif not isinstance(codepage, int) or charsets.codec_of(codepage) is None:
                codepage = charsets.UTF8_CODEPAGE if charsets.decodes_strictly(
                    html, "utf-8") else 1252
        except Exception as exc:  # the RTF helpers are optional here
            log.warning("render: RTF body not converted: %r", exc)
    if html is not None and plain is None:
        try:
            from gateway.convert import body
            plain = body.text_from_html(html, codepage if isinstance(codepage, int) else None)
        except Exception as exc:
            log.debug("render: no plain text from HTML: %r", exc)
    return plain, html, codepage if isinstance(codepage, int) else None


# -- attachments --------------------------------------------------------------------------------


def _data(attachment: NewAttachment) -> bytes:
    if attachment.data is not None:
        return b"".join(bytes(chunk) for chunk in attachment.data)
    value = attachment.props.get(T.PidTagAttachDataBinary)
    return value if isinstance(value, bytes) else b""


def _name(props: dict[Any, Any], embedded: bool = False) -> str:
    tags = (T.PidTagAttachLongFilename, T.PidTagAttachFilename, T.PidTagDisplayName)
    for tag in tags[:2] if embedded else tags:
        value = props.get(tag)
        if isinstance(value, str) and clean_filename(value):
            return clean_filename(value)
    return ""


def _mime_type(props: dict[Any, Any], name: str) -> str:
    tag = props.get(T.PidTagAttachMimeTag)
    if isinstance(tag, str) and _MIME_TYPE.fullmatch(tag.strip().lower()):
        return tag.strip().lower()
    guessed = _TYPES.guess_type(name, strict=False)[0] if name else None
    return guessed or "application/octet-stream"


def _is_inline(attachment: NewAttachment) -> bool:
    props = attachment.props
    referable = props.get(T.PidTagAttachContentId) or props.get(T.PidTagAttachContentLocation)
    flagged = (props.get(T.PidTagAttachFlags) or 0) & ATT_MHTML_REF or props.get(
        T.PidTagAttachmentHidden)
    return attachment.embedded is None and bool(referable) and bool(flagged)


def _is_calendar(attachment: NewAttachment) -> bool:
    return (attachment.embedded is None and not _name(attachment.props)
            and _mime_type(attachment.props, "") == "text/calendar")


def _attachment(attachment: NewAttachment, inline: bool, depth: int) -> Entity:
    props = attachment.props
    name = _name(props, attachment.embedded is not None)
    headers: list[Header] = []
    if attachment.embedded is not None:
        body = render_message(attachment.embedded, depth + 1)
        headers.append(b"Content-Type: message/rfc822")
        headers.append(with_params("Content-Disposition", "attachment",
                                   [("filename", name)] if name else []))
        cte = "7bit" if body.isascii() else "8bit"
        return Entity([*headers, f"Content-Transfer-Encoding: {cte}".encode()], body)
    data = _data(attachment)
    ctype = _mime_type(props, name)
    params = [("name", name)] if name else []
    charset = props.get(T.PidTagTextAttachmentCharset)
    if ctype.startswith("text/") and isinstance(charset, str) and charset.strip():
        params.insert(0, ("charset", charset.strip().lower()))
    headers.append(with_params("Content-Type", ctype, params))
    headers.append(with_params("Content-Disposition", "inline" if inline else "attachment",
                               [("filename", name)] if name else []))
    for tag, field in ((T.PidTagAttachContentId, "Content-ID"),
                       (T.PidTagAttachContentLocation, "Content-Location")):
        value = props.get(tag)
        value = value.strip().strip("<> \t") if tag == T.PidTagAttachContentId and isinstance(
            value, str) else value.strip() if isinstance(value, str) else ""
        if value:
            headers.append(fold(field, [f"<{value}>" if field == "Content-ID" else value]))
    if ctype == "message/rfc822":
        cte, body = _transfer(data, True)
        if cte == "7bit" or (cte != "base64" and b"\0" not in data):
            return Entity([*headers, f"Content-Transfer-Encoding: {cte}".encode()], data)
        headers[0] = with_params("Content-Type", "application/octet-stream", params)
    body = base64.encodebytes(data).replace(b"\n", CRLF).rstrip(CRLF)
    return Entity([*headers, b"Content-Transfer-Encoding: base64"], body)


def _calendar(attachment: NewAttachment) -> Entity:
    data = _data(attachment)
    method = re.search(rb"(?im)^METHOD:\s*([A-Za-z-]+)", data[:65536])
    charset = attachment.props.get(T.PidTagTextAttachmentCharset)
    params = [("charset", charset.strip().lower() if isinstance(charset, str) and charset.strip()
               else "utf-8")]
    if method:
        params.append(("method", method.group(1).decode("ascii").upper()))
    body = base64.encodebytes(data).replace(b"\n", CRLF).rstrip(CRLF)
    return Entity([with_params("Content-Type", "text/calendar", params),
                   b"Content-Transfer-Encoding: base64"], body)


def _multipart(subtype: str, parts: list[Entity],
               params: list[tuple[str, str]] | None = None) -> Entity:
    encoded = [part.bytes() for part in parts]
    digest = hashlib.sha256(subtype.encode() + b"\0" + b"\0".join(encoded)).hexdigest()
    boundary = f"=_{digest[:40]}"
    body = b"".join(b"--" + boundary.encode() + CRLF + part + CRLF for part in encoded)
    body += b"--" + boundary.encode() + b"--"
    return Entity([with_params("Content-Type", f"multipart/{subtype}",
                               [("boundary", boundary), *(params or [])])], body)


# -- the message --------------------------------------------------------------------------------


def _content(message: NewMessage, depth: int) -> Entity:
    plain, html, codepage = _bodies(message.props)
    meeting = str(message.props.get(T.PidTagMessageClass, "")).startswith("IPM.Schedule.Meeting")
    inline = [a for a in message.attachments if html is not None and _is_inline(a)]
    calendars = [a for a in message.attachments if meeting and _is_calendar(a)]
    others = [a for a in message.attachments
              if not any(a is b for b in inline) and not any(a is b for b in calendars)]
    alternatives = []
    if plain is not None:
        alternatives.append(_text(plain, _plain_charset(plain, codepage)))
    if html is not None:
        entity = _html(html, codepage)
        if inline:
            entity = _multipart("related", [entity, *(_attachment(a, True, depth)
                                                      for a in inline)], [("type", "text/html")])
        alternatives.append(entity)
    alternatives.extend(_calendar(a) for a in calendars)
    if not alternatives and not others:
        alternatives.append(_text("", "us-ascii"))
    parts = [_attachment(a, False, depth) for a in others]
    body = None
    if alternatives:
        body = alternatives[0] if len(alternatives) == 1 else _multipart("alternative",
                                                                          alternatives)
    report = _report(message, body or _text("", "us-ascii"), parts)
    if report is not None:
        return report
    if body is None:
        return _multipart("mixed", parts) if len(parts) > 1 else parts[0]
    return _multipart("mixed", [body, *parts]) if parts else body


def _report(message: NewMessage, body: Entity, parts: list[Entity]) -> Entity | None:
    """A report message as multipart/report: delivery status (RFC 3464) for the
    ``REPORT.*.NDR`` and ``.DR`` classes, read receipts (RFC 8098) for ``IPNRN`` and
    ``IPNNRN``; None for other classes or a delivery report without recipients."""
    props = message.props
    cls = str(props.get(T.PidTagMessageClass, ""))
    if not cls.upper().startswith("REPORT."):
        return None
    author = A.person_of(props, A.SENT_REPRESENTING) or A.person_of(props, A.SENDER)
    domain = author[1].rpartition("@")[2] if author and "@" in author[1] else "localhost"
    suffix = cls.rsplit(".", 2)
    if suffix[-1].upper() in ("IPNRN", "IPNNRN"):
        kind, fields = "disposition-notification", _disposition_fields(props, author, suffix[-1])
    else:
        action = _ACTIONS.get(".".join(suffix[-2:]).upper()) or _ACTIONS.get(suffix[-1].upper())
        rows = [row for row in message.recipients if recipient_address(row)]
        if action is None or not rows:
            return None
        kind, fields = "delivery-status", [f"Reporting-MTA: dns; {domain}", ""]
        for row in rows:
            fields += _status_fields(row, action)
    status = Entity([f"Content-Type: message/{kind}".encode()],
                    CRLF.join(line.encode("utf-8") for line in fields) + CRLF)
    return _multipart("report", [body, status, *parts], [("report-type", kind)])


_ACTIONS = {"NDR": "failed", "DR": "delivered", "DELAYED.DR": "delayed",
            "RELAYED.DR": "relayed", "EXPANDED.DR": "expanded"}
_DEFAULT_STATUS = {"failed": 500, "delayed": 400}


def recipient_address(row: dict[Any, Any]) -> str:
    return A.smtp_address(row.get(T.PidTagSmtpAddress), row.get(T.PidTagAddressType),
                          row.get(T.PidTagEmailAddress), row.get(T.PidTagEntryId))


def _status_fields(row: dict[Any, Any], action: str) -> list[str]:
    address = recipient_address(row)
    code = row.get(T.PidTagNonDeliveryReportStatusCode)
    code = code if isinstance(code, int) and 200 <= code < 600 else _DEFAULT_STATUS.get(action,
                                                                                        200)
    fields = [f"Final-Recipient: rfc822; {address}", f"Action: {action}",
              f"Status: {code // 100}.{code // 10 % 10}.{code % 10}"]
    name = row.get(T.PidTagDisplayName)
    if isinstance(name, str) and name.strip() and name != address:
        fields.append(unstructured("X-Display-Name", name).decode("utf-8"))
    info = row.get(T.PidTagSupplementaryInfo)
    if isinstance(info, str) and info.strip():
        fields.append(unstructured("X-Supplementary-Info", info).decode("utf-8"))
    return [*fields, ""]


def _disposition_fields(props: dict[Any, Any], author: A.Mailbox | None,
                        kind: str) -> list[str]:
    final = props.get(T.PidTagOriginalDisplayTo)
    final = final if isinstance(final, str) and "@" in final else author[1] if author else ""
    disposition = props.get(T.PidTagReportText)
    if not (isinstance(disposition, str) and ";" in disposition and "\n" not in disposition):
        disposition = "manual-action/MDN-sent-manually; " + (
            "displayed" if kind.upper() == "IPNRN" else "deleted")
    fields = [f"Final-Recipient: rfc822; {final}"]
    original = props.get(T.PidTagOriginalMessageId)
    if isinstance(original, str) and original.strip():
        fields.append(f"Original-Message-ID: {' '.join(original.split())}")
    return [*fields, f"Disposition: {disposition}"]


def _smime(message: NewMessage) -> Entity | None:
    """The S/MIME entity of an ``IPM.Note.SMIME*`` message (its one attachment)."""
    cls = str(message.props.get(T.PidTagMessageClass, ""))
    if ".SMIME" not in cls or len(message.attachments) != 1:
        return None
    attachment = message.attachments[0]
    data, ctype = _data(attachment), _mime_type(attachment.props, "")
    if ctype == "multipart/signed" or cls.endswith(".MultipartSigned"):
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep or not head.lower().startswith(b"content-type:") or b"\n\n" in head:
            return None
        return Entity(head.split(CRLF), body)
    kind = "signed-data" if _SIGNED_DATA in data[:64] else "enveloped-data"
    body = base64.encodebytes(data).replace(b"\n", CRLF).rstrip(CRLF)
    return Entity([with_params("Content-Type", "application/pkcs7-mime",
                               [("smime-type", kind), ("name", "smime.p7m")]),
                   b'Content-Disposition: attachment; filename="smime.p7m"',
                   b"Content-Transfer-Encoding: base64"], body)


def render_message(message: NewMessage, depth: int = 0) -> bytes:
    """The Internet form of a message built from its properties (``mime`` not consulted
    at this level, but embedded messages that kept theirs are written as they came)."""
    if depth and message.mime is not None:
        return message.mime
    if depth > MAX_DEPTH:
        return b"Content-Type: text/plain\r\n\r\n"
    smime = _smime(message)
    content = smime or _content(message, depth)
    content_bytes = content.bytes()
    message_id = message.props.get(T.PidTagInternetMessageId)
    if not isinstance(message_id, str) or not message_id.strip():
        message_id = _message_id(message, content_bytes)
    head = envelope_headers(message, message_id)
    head.append(b"MIME-Version: 1.0")
    tail = CRLF if smime is None and content.headers[0].startswith(b"Content-Type: multipart/") \
        else b""
    return CRLF.join(head) + CRLF + content_bytes + tail


def _message_id(message: NewMessage, content: bytes) -> str:
    key = message.props.get(T.PidTagSearchKey)
    digest = hashlib.sha256(key if isinstance(key, bytes) and key else content).hexdigest()[:32]
    author = A.person_of(message.props, A.SENT_REPRESENTING) or A.person_of(
        message.props, A.SENDER)
    domain = author[1].rpartition("@")[2] if author and "@" in author[1] else "localhost"
    return f"<{digest}@{domain}>"


def render(message: NewMessage) -> bytes:
    """The Internet message of a MAPI message: ``message.mime`` when it came as one,
    else built from the properties, the same bytes every time. Never raises."""
    if message.mime is not None:
        return message.mime
    try:
        return render_message(message)
    except Exception:
        log.exception("render: message not converted; writing its subject only")
        subject = message.props.get(T.PidTagSubject)
        head = [b"MIME-Version: 1.0"]
        if isinstance(subject, str):
            head.insert(0, fold("Subject", charsets.encode_words(subject)))
        return CRLF.join([*head, b"Content-Type: text/plain; charset=us-ascii", b"", b""])
