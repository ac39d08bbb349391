"""Internet mail to a MAPI message (MS-OXCMAIL): :func:`parse`.

The structure is split by :mod:`gateway.convert.mime_parts` (offsets into the
original bytes, limits on nesting, parts and header bytes); the header block
is read by :mod:`gateway.convert.mime_headers`; S/MIME, reports, calendar
parts and TNEF by :mod:`gateway.convert.mime_special`. Here the parts become
bodies and attachments:

- text/plain and text/html → ``PidTagBody`` / ``PidTagHtml`` (bytes in their
  own charset, named by ``PidTagInternetCodepage``; several HTML parts, or an
  unknown charset, are joined as UTF-8); format=flowed is undone;
- multipart/alternative keeps the richest HTML and plain alternatives;
- multipart/related: the root is the body, the other parts become inline
  attachments (``PidTagAttachFlags`` ``ATT_MHTML_REF``; hidden when the HTML
  refers to their Content-ID or Content-Location);
- multipart/mixed: the first inline text is the body (later inline text of the
  same kind is joined to it, as Apple Mail splits it around images); the rest
  become attachments with names, type, Content-ID and Content-Location;
- message/rfc822 → embedded messages (method 5), at most :data:`MAX_EMBEDDED`
  deep (the store's limit); deeper ones stay opaque.

Nothing raises out of :func:`parse`: a part that cannot be read is kept as an
opaque attachment, and what failed is appended to ``defects`` when given.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from gateway.convert import charsets
from gateway.convert import mime_special as special
from gateway.convert.charsets import decode
from gateway.convert.mime_headers import envelope, finish_recipients
from gateway.convert.mime_parts import (
    RENDERING_POSITION_NONE,
    Budget,
    Part,
    children,
    filename_props,
    unflow,
)
from gateway.store import tags as T
from gateway.store.named import NamedProp
from gateway.store.objects import NewAttachment, NewMessage
from gateway.store.txn import PropKey

log = logging.getLogger("gateway.convert.mime")

MAX_PARTS = 1000
MAX_DEPTH = 20
MAX_HEADER_BYTES = 256 * 1024
MAX_EMBEDDED = 8
"""Embedded messages nest at most as deep as the store keeps them."""
ATT_MHTML_REF = 0x4

_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9_:.\-]+)""", re.I)


# -- walking the parts --------------------------------------------------------------------------


@dataclass
class Content:
    """What the walk over one message's parts found."""

    plain: list[tuple[str, str | None]] = field(default_factory=list)
    html: list[tuple[bytes, str | None]] = field(default_factory=list)
    attachments: list[NewAttachment] = field(default_factory=list)
    calendar: bytes | None = None
    tnef: list[tuple[NewAttachment, bytes]] = field(default_factory=list)

    @property
    def has_body(self) -> bool:
        return bool(self.plain or self.html)


def _is_body(part: Part, ctype: str) -> bool:
    if part.disposition == "attachment" or part.filename:
        return False
    return ctype in ("text/plain", "text/html") or ctype in (
        "multipart/alternative", "multipart/related", "multipart/mixed")


def walk(part: Part, content: Content, budget: Budget, depth: int, embed: int,
         as_body: bool, default: str = "text/plain") -> None:
    """Read one part (and what it contains) into ``content``; as the body when
    ``as_body``, else as attachments. A part that fails is kept opaque."""
    try:
        _walk_part(part, content, budget, depth, embed, as_body, default)
    except Exception as exc:  # a broken part never breaks the message
        budget.defect(f"part at byte {part.start} kept opaque: {exc!r}")
        content.attachments.append(_opaque(part.entity()))


def _walk_part(part: Part, content: Content, budget: Budget, depth: int, embed: int,
               as_body: bool, default: str) -> None:
    ctype = part.ctype(default)
    if ctype.startswith("multipart/"):
        if depth >= budget.max_depth:
            budget.defect(f"MIME nested deeper than {budget.max_depth}; kept opaque")
            content.attachments.append(_opaque(part.entity()))
            return
        split = children(part, budget)
        if split is None:
            budget.defect(f"{ctype} without usable boundary; read as text")
            leaf(part, "text/plain", content, as_body)
            return
        parts, rest = split
        _multipart(ctype[10:], part, parts, content, budget, depth + 1, embed, as_body)
        if rest is not None:
            content.attachments.append(_opaque(rest, "application/octet-stream",
                                               "unparsed-parts.bin"))
        return
    if ctype in ("message/rfc822", "message/global"):
        content.attachments.append(_embedded(part, budget, depth + 1, embed + 1))
        return
    leaf(part, ctype, content, as_body)


def _multipart(subtype: str, part: Part, parts: list[Part], content: Content, budget: Budget,
               depth: int, embed: int, as_body: bool) -> None:
    def into(child: Part, body: bool, default: str = "text/plain") -> None:
        walk(child, content, budget, depth, embed, body, default)

    if subtype == "alternative" and parts:
        types = [child.ctype() for child in parts]
        rich = [i for i, t in enumerate(types)
                if t == "text/html" or t in ("multipart/related", "multipart/mixed")]
        plain = [i for i, t in enumerate(types) if t == "text/plain"]
        calendars = [i for i, t in enumerate(types) if t == "text/calendar"]
        chosen = ([rich[-1]] if rich else []) + ([plain[-1]] if plain else [])
        if not chosen and not calendars:
            chosen = [len(parts) - 1]
        if not as_body:
            chosen = chosen[:1]
        for index in chosen:
            into(parts[index], as_body)
        for index in calendars:
            into(parts[index], False)
        return
    if subtype == "related" and parts:
        start, kind = part.param("start"), (part.param("type") or "").lower()
        root = next((c for c in parts if start and c.text("content-id") == start.strip()),
                    None) or next((c for c in parts if kind and c.ctype() == kind), parts[0])
        into(root, as_body)
        for child in parts:
            if child is not root:
                before = len(content.attachments)
                into(child, False)
                for attachment in content.attachments[before:]:
                    if attachment.embedded is None:
                        attachment.props[T.PidTagAttachFlags] = ATT_MHTML_REF
        return
    if subtype == "signed" and parts:
        into(parts[0], as_body)
        for child in parts[1:]:
            into(child, False)
        return
    default = "message/rfc822" if subtype == "digest" else "text/plain"
    for child in parts:
        ctype = child.ctype(default)
        into(child, as_body and _is_body(child, ctype) and _joins_body(content, ctype), default)


def _joins_body(content: Content, ctype: str) -> bool:
    """Whether an inline part of a multipart/mixed is (more of) the body: the first
    body part is, and later text of the one kind the body has so far (Apple Mail's
    html, image, html) is joined to it; anything else becomes an attachment."""
    if not content.has_body:
        return True
    if ctype == "text/plain":
        return not content.html
    return ctype == "text/html" and not content.plain


def leaf(part: Part, ctype: str, content: Content, as_body: bool) -> None:
    data = part.payload()
    if ctype == "text/calendar" and content.calendar is None and (
            part.disposition != "attachment"):  # an attached .ics file is just a file
        content.calendar = data
    if as_body and ctype in ("text/plain", "text/html") and not part.filename and (
            part.disposition != "attachment"):
        charset = part.charset
        if ctype == "text/html":
            if not charset:
                sniffed = _META_CHARSET.search(data[:4096])
                charset = sniffed.group(1).decode("ascii") if sniffed else None
            content.html.append((data, charset))
        else:
            text = decode(data, charset)
            if (part.param("format") or "").lower() == "flowed":
                text = unflow(text, (part.param("delsp") or "").lower() == "yes")
            content.plain.append((text, charset))
        return
    attachment = _attachment(part, ctype, data)
    name = (attachment.props.get(T.PidTagAttachLongFilename) or "").lower()
    if ctype == "application/ms-tnef" or name == "winmail.dat":
        content.tnef.append((attachment, data))
    content.attachments.append(attachment)


def _attachment(part: Part, ctype: str, data: bytes) -> NewAttachment:
    props: dict[PropKey, Any] = {
        T.PidTagAttachMethod: 1, T.PidTagAttachMimeTag: ctype,
        T.PidTagRenderingPosition: RENDERING_POSITION_NONE,
    }
    name = part.filename
    if name:
        props.update(filename_props(name))
    content_id = part.text("content-id").strip("<> \t")
    if content_id:
        props[T.PidTagAttachContentId] = content_id[:1024]
    location = part.text("content-location")
    if location:
        props[T.PidTagAttachContentLocation] = location[:2048]
    if ctype.startswith("text/") and part.charset:
        props[T.PidTagTextAttachmentCharset] = part.charset
    return NewAttachment(props=props, data=[data])


def _opaque(data: bytes, ctype: str = "application/octet-stream",
            name: str = "unparsed-part.eml") -> NewAttachment:
    """Bytes kept unread as an attachment (a MIME entity a client can still open)."""
    props: dict[PropKey, Any] = {T.PidTagAttachMethod: 1, T.PidTagAttachMimeTag: ctype,
                                 T.PidTagRenderingPosition: RENDERING_POSITION_NONE}
    props.update(filename_props(name))
    return NewAttachment(props=props, data=[data])


def _embedded(part: Part, budget: Budget, depth: int, embed: int) -> NewAttachment:
    name = part.filename
    cte = part.text("content-transfer-encoding").lower()
    if embed > MAX_EMBEDDED or depth >= budget.max_depth:
        budget.defect("message/rfc822 nested too deep; kept opaque")
        return _opaque(part.payload(), "message/rfc822", name or "message.eml")
    if cte in ("base64", "quoted-printable"):
        raw = part.payload()
        inner = _message(Part(raw, 0, len(raw), budget, top=True), budget, depth, embed)
    else:
        inner = _message(Part(part.raw, part.body, part.end, budget, top=True), budget, depth,
                         embed)
    props: dict[PropKey, Any] = {T.PidTagAttachMethod: 5, T.PidTagAttachMimeTag: "message/rfc822",
                                 T.PidTagRenderingPosition: RENDERING_POSITION_NONE}
    if name:
        props.update(filename_props(name))
    else:
        props[T.PidTagDisplayName] = inner.props.get(T.PidTagSubject, "")
    return NewAttachment(props=props, embedded=inner)


# -- one message --------------------------------------------------------------------------------


def _message(part: Part, budget: Budget, depth: int, embed: int) -> NewMessage:
    message = NewMessage()
    try:
        block = part.raw[part.start:min(part.head_end, part.start + budget.max_header_bytes)]
        props, recipients = envelope(part.fields, block, budget.defect)
        message.props.update(props)
        message.recipients = recipients
    except Exception as exc:
        budget.defect(f"header block unreadable: {exc!r}")
    content = Content()
    ctype = part.ctype()
    if not special.top_level(part, ctype, message, content, budget, depth, embed):
        walk(part, content, budget, depth, embed, True)
    _finish(message, content, budget)
    special.after_walk(message, content, budget)
    finish_recipients(message)
    message.props.setdefault(T.PidTagMessageClass, "IPM.Note")
    return message


def _finish(message: NewMessage, content: Content, budget: Budget) -> None:
    props = message.props
    codepage = None
    if content.plain:
        text = "\r\n".join(t for t, _ in content.plain)
        props[T.PidTagBody] = _crlf(text)
        codepage = charsets.codepage(content.plain[0][1]) or charsets.UTF8_CODEPAGE
    if content.html:
        data, charset = content.html[0]
        cp = charsets.codepage(charset)
        if len(content.html) > 1 or cp is None or not charsets.decodes_strictly(data, charset):
            data = "".join(decode(d, c) for d, c in content.html).encode("utf-8")
            cp = charsets.UTF8_CODEPAGE
        props[T.PidTagHtml] = data
        codepage = cp
        lowered = data.lower()
        for attachment in content.attachments:
            attachment_props = attachment.props
            if attachment_props.get(T.PidTagAttachFlags, 0) & ATT_MHTML_REF:
                cid = attachment_props.get(T.PidTagAttachContentId, "")
                location = attachment_props.get(T.PidTagAttachContentLocation, "")
                if (cid and b"cid:" + cid.lower().encode("utf-8", "replace") in lowered) or (
                        location and location.lower().encode("utf-8", "replace") in lowered):
                    attachment_props[T.PidTagAttachmentHidden] = True
        if not content.plain:
            try:
                from gateway.convert import body
                props[T.PidTagBody] = _crlf(body.text_from_html(data, cp))
            except Exception as exc:  # the body helper is optional here
                budget.defect(f"no plain text from HTML: {exc!r}")
    if codepage is not None:
        props[T.PidTagInternetCodepage] = codepage
    message.attachments.extend(content.attachments)


def _crlf(text: str) -> str:
    text = text.replace("\x00", "")
    return re.sub(r"\r\n|\r|\n", "\r\n", text) if "\n" in text or "\r" in text else text


# What a meeting message takes over from its calendar object: the appointment's
# named properties and its time span; subject, body, sender and recipients stay
# the e-mail's own (MS-OXCICAL 2.1.3.1.1.20: the iCalendar data completes them).
_FROM_CALENDAR = (T.PidTagStartDate, T.PidTagEndDate, T.PidTagSensitivity)


def calendar_part(message: NewMessage, ics: bytes) -> None:
    """The hook for a message's first text/calendar part (``ics`` its decoded bytes).

    Sets the meeting message class from METHOD (and, for replies, the attendee's
    PARTSTAT) and lays the appointment properties of the calendar's first object
    over the message. The calendar data itself is already an attachment."""
    cls = special.meeting_class(ics)
    if cls:
        message.props[T.PidTagMessageClass] = cls
    try:
        from gateway.convert.ical_in import parse_calendar

        items = parse_calendar(ics)
    except Exception as exc:  # a broken calendar leaves a plain meeting message
        log.warning("meeting message: calendar data unreadable: %r", exc)
        return
    if not items:
        return
    for key, value in items[0].props.items():
        if isinstance(key, NamedProp) or key in _FROM_CALENDAR:
            message.props.setdefault(key, value)


def parse(raw: bytes, *, max_parts: int = MAX_PARTS, max_depth: int = MAX_DEPTH,
          max_header_bytes: int = MAX_HEADER_BYTES,
          defects: list[str] | None = None) -> NewMessage:
    """The MAPI message of an Internet message; ``mime`` keeps ``raw`` byte for byte.

    Beyond ``max_depth`` nested multiparts or ``max_parts`` parts, the rest is kept
    as an opaque attachment; header blocks are read up to ``max_header_bytes``.
    Never raises; what could not be read is described in ``defects``."""
    raw = bytes(raw)
    budget = Budget(max_parts, max_depth, max_header_bytes, defects)
    try:
        message = _message(Part(raw, 0, len(raw), budget, top=True), budget, 0, 0)
    except Exception as exc:
        budget.defect(f"message unreadable, kept opaque: {exc!r}")
        message = NewMessage(props={T.PidTagMessageClass: "IPM.Note"},
                             attachments=[_opaque(raw)])
    message.mime = raw
    return message
