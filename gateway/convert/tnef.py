"""TNEF (MS-OXTNEF, ``winmail.dat``, ``application/ms-tnef``) decoded into a message.

A TNEF stream is a signature (0x223E9F78), a 16-bit legacy key, then
attributes: a level byte (message or attachment), a 32-bit attribute id, a
32-bit length, the data and a 16-bit checksum (the sum of the data bytes).
Most of a message travels in ``attMAPIProps`` / ``attAttachment``: counted
MAPI properties with their tags, named-property names (GUID plus LID or
UTF-16 name), multi-valued and variable-length values padded to four bytes,
and ``PT_OBJECT`` attachments whose content is an embedded TNEF message.
The older attributes (``attSubject``, ``attBody``, ``attFrom``, dates,
``attAttachTitle``, ``attAttachData``, ...) fill only what the MAPI
properties leave unset.

The input is hostile: every length and count is checked against the bytes
that remain before anything is taken, so nothing is allocated beyond the
input's own size. A bad length ends decoding at that attribute — what came
before is kept — and is reported, like checksum mismatches (which are only
noted), in the ``errors`` list and the module logger. ``PT_STRING8`` values
become Unicode (the store keeps strings so), decoded with the stream's OEM
code page; RTF stays compressed in ``PidTagRtfCompressed``.
"""

from __future__ import annotations

import logging
import struct
import uuid
from datetime import UTC, datetime
from typing import Any

from gateway.convert.codepages import codec
from gateway.store import tags as T
from gateway.store import values
from gateway.store.named import NamedProp
from gateway.store.objects import ATTACH_BY_VALUE, ATTACH_EMBEDDED_MSG, NewAttachment, NewMessage
from gateway.store.proptypes import (
    MV_FLAG,
    PT_BINARY,
    PT_BOOLEAN,
    PT_CLSID,
    PT_OBJECT,
    PT_STRING8,
    PT_SVREID,
    PT_SYSTIME,
    PT_UNICODE,
    STORABLE_TYPES,
    normal_tag,
    prop_tag,
)

log = logging.getLogger(__name__)

SIGNATURE = 0x223E9F78
LVL_MESSAGE, LVL_ATTACHMENT = 1, 2
ATTACH_OLE = 6
IID_IMESSAGE = uuid.UUID("00020307-0000-0000-C000-000000000046")
MAX_ATTACHMENTS = 1000
MAX_DEPTH = 8
MAX_ERRORS = 100

# Attribute ids (MS-OXTNEF 2.1.3.3): the attribute type in the high word, the id in the low.
ATT_FROM, ATT_SUBJECT = 0x00008000, 0x00018004
ATT_DATE_SENT, ATT_DATE_RECD, ATT_DATE_MODIFIED = 0x00038005, 0x00038006, 0x00038020
ATT_MESSAGE_CLASS, ATT_ORIGINAL_MESSAGE_CLASS = 0x00078008, 0x00070006
ATT_MESSAGE_ID, ATT_BODY, ATT_PRIORITY = 0x00018009, 0x0002800C, 0x0004800D
ATT_DATE_START, ATT_DATE_END = 0x00030006, 0x00030007
ATT_ATTACH_DATA, ATT_ATTACH_TITLE, ATT_ATTACH_META_FILE = 0x0006800F, 0x00018010, 0x00068011
ATT_ATTACH_CREATE_DATE, ATT_ATTACH_MODIFY_DATE = 0x00038012, 0x00038013
ATT_ATTACH_TRANSPORT_FILENAME, ATT_ATTACH_REND_DATA = 0x00069001, 0x00069002
ATT_MAPI_PROPS, ATT_RECIP_TABLE, ATT_ATTACHMENT = 0x00069003, 0x00069004, 0x00069005
ATT_TNEF_VERSION, ATT_OEM_CODEPAGE = 0x00089006, 0x00069007
_BY_ID = {value & 0xFFFF: value for name, value in dict(globals()).items()
          if name.startswith("ATT_") and value & 0xFFFF >= 0x8000}
"""Some writers leave the type word out; ids from 0x8000 are unambiguous without it."""
_KNOWN = frozenset(_BY_ID.values()) | {ATT_ORIGINAL_MESSAGE_CLASS, ATT_DATE_START, ATT_DATE_END}

LEGACY_CLASSES = {
    "IPM.Microsoft Mail.Note": "IPM.Note",
    "IPM.Microsoft Mail.Read Receipt": "Report.IPM.Note.IPNRN",
    "IPM.Microsoft Mail.Non-Delivery": "Report.IPM.Note.NDR",
    "IPM.Microsoft Schedule.MtgRespP": "IPM.Schedule.Meeting.Resp.Pos",
    "IPM.Microsoft Schedule.MtgRespN": "IPM.Schedule.Meeting.Resp.Neg",
    "IPM.Microsoft Schedule.MtgRespA": "IPM.Schedule.Meeting.Resp.Tent",
    "IPM.Microsoft Schedule.MtgReq": "IPM.Schedule.Meeting.Request",
    "IPM.Microsoft Schedule.MtgCncl": "IPM.Schedule.Meeting.Canceled",
}
"""Message classes of the legacy ``attMessageClass`` and their MAPI names."""

_FIXED = {0x0002: 4, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000A: 4,
          0x000B: 4, 0x0014: 8, 0x0040: 8, 0x0048: 16, 0x0001: 4, 0x0000: 4}
"""Bytes a fixed-size value takes in the stream, padding included."""
_VARIABLE = {PT_STRING8, PT_UNICODE, PT_BINARY, PT_OBJECT, PT_SVREID}
_UNPACK = {0x0002: "<h", 0x0003: "<i", 0x0004: "<f", 0x0005: "<d", 0x0006: "<q",
           0x0007: "<d", 0x000A: "<I", 0x0014: "<q"}


class TnefError(ValueError):
    """A TNEF stream that cannot be decoded at all (no signature)."""


class _Truncated(Exception):
    """A length or count points beyond the data (internal: ends the current structure)."""


class _Reader:
    """Little-endian reads over a memoryview that never go past its end."""

    def __init__(self, data: memoryview) -> None:
        self.data, self.pos = data, 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, size: int, what: str) -> memoryview:
        if size < 0 or size > self.left():
            raise _Truncated(f"{what}: {size} bytes wanted, {self.left()} left")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def u16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "little")

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "little")

    def skip_pad(self, size: int) -> None:
        self.pos = min(len(self.data), self.pos + (-size % 4))


class _Decoder:
    def __init__(self, max_attachments: int, max_depth: int, errors: list[str]) -> None:
        self.max_attachments, self.max_depth, self.errors = max_attachments, max_depth, errors
        self.codepage = "cp1252"

    def error(self, text: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(text)
            log.info("TNEF: %s", text)
        elif len(self.errors) == MAX_ERRORS:
            self.errors.append("further problems not recorded")

    def text(self, raw: bytes | memoryview) -> str:
        return bytes(raw).split(b"\x00", 1)[0].decode(self.codepage, errors="replace")

    # -- the attribute stream ------------------------------------------------------------------

    def message(self, data: memoryview, depth: int) -> NewMessage:
        reader = _Reader(data)
        if reader.left() < 6 or reader.u32("signature") != SIGNATURE:
            raise TnefError("not a TNEF stream (bad signature)")
        reader.u16("legacy key")
        where = f" of an embedded message (depth {depth})" if depth else ""
        codepage = self.codepage
        message, legacy = NewMessage(), dict[Any, Any]()
        current: tuple[NewAttachment, dict[Any, Any]] | None = None
        while reader.left():
            start = reader.pos
            try:
                level = reader.take(1, "attribute level")[0]
                attr = reader.u32("attribute id")
                size = reader.u32("attribute length")
                value = reader.take(size, f"attribute 0x{attr:08X} at offset {start}")
                checksum = reader.u16("attribute checksum")
            except _Truncated as exc:
                self.error(f"stopped at offset {start}{where}: {exc}")
                break
            if sum(value) & 0xFFFF != checksum:
                self.error(f"checksum mismatch in attribute 0x{attr:08X} at offset {start}{where}")
            if attr not in _KNOWN:
                attr = _BY_ID.get(attr & 0xFFFF, attr)
            try:
                if level == LVL_MESSAGE:
                    self.message_attr(message, legacy, attr, value, depth)
                elif level != LVL_ATTACHMENT:
                    self.error(f"unknown attribute level {level} at offset {start}{where}")
                elif attr == ATT_ATTACH_REND_DATA or current is None:
                    # attAttachRendData opens an attachment (MS-OXTNEF 2.1.3.2)
                    if current is not None:
                        self.finish(*current)
                    current = self.open_attachment(message, attr)
                    if current is not None:
                        self.attach_attr(*current, attr, value, depth)
                else:
                    self.attach_attr(*current, attr, value, depth)
            except _Truncated as exc:
                self.error(f"attribute 0x{attr:08X} at offset {start}{where} is malformed: {exc}")
        if current is not None:
            self.finish(*current)
        message.props = {**legacy, **message.props}
        self.codepage = codepage  # an embedded message's attOemCodepage ends with it
        return message

    def open_attachment(self, message: NewMessage,
                        attr: int) -> tuple[NewAttachment, dict[Any, Any]] | None:
        if len(message.attachments) >= self.max_attachments:
            if attr == ATT_ATTACH_REND_DATA:
                self.error(f"more than {self.max_attachments} attachments: one dropped")
            return None
        message.attachments.append(NewAttachment())
        return message.attachments[-1], {}

    def finish(self, attachment: NewAttachment, legacy: dict[Any, Any]) -> None:
        attachment.props = {**legacy, **attachment.props}
        if attachment.embedded is not None:
            attachment.props[T.PidTagAttachMethod] = ATTACH_EMBEDDED_MSG
        elif attachment.data is None:
            attachment.data = [b""]

    def message_attr(self, message: NewMessage, legacy: dict[Any, Any], attr: int,
                     value: memoryview, depth: int) -> None:
        if attr == ATT_MAPI_PROPS:
            message.props.update(self.props(_Reader(value), None, depth))
        elif attr == ATT_RECIP_TABLE:
            message.recipients.extend(self.recipients(_Reader(value), depth))
        elif attr == ATT_OEM_CODEPAGE and len(value) >= 4:
            self.codepage = codec(int.from_bytes(value[:4], "little"))
        elif attr == ATT_SUBJECT:
            legacy[T.PidTagSubject] = self.text(value)
        elif attr == ATT_BODY:
            legacy[T.PidTagBody] = self.text(value)
        elif attr in (ATT_MESSAGE_CLASS, ATT_ORIGINAL_MESSAGE_CLASS):
            name = self.text(value)
            tag = T.PidTagMessageClass if attr == ATT_MESSAGE_CLASS else \
                T.PidTagOriginalMessageClass
            legacy[tag] = LEGACY_CLASSES.get(name, name)
        elif attr == ATT_PRIORITY and len(value) >= 2:
            legacy[T.PidTagImportance] = {1: 2, 2: 1, 3: 0}.get(
                int.from_bytes(value[:2], "little"), 1)
        elif attr == ATT_MESSAGE_ID:
            try:
                legacy[T.PidTagSearchKey] = bytes.fromhex(self.text(value))
            except ValueError:
                pass
        elif attr == ATT_FROM:
            legacy.update(self.triple(value))
        else:
            dates = {ATT_DATE_SENT: T.PidTagClientSubmitTime,
                     ATT_DATE_RECD: T.PidTagMessageDeliveryTime,
                     ATT_DATE_MODIFIED: T.PidTagLastModificationTime,
                     ATT_DATE_START: T.PidTagStartDate, ATT_DATE_END: T.PidTagEndDate}
            if attr in dates and (when := self.date(value)) is not None:
                legacy[dates[attr]] = when

    def attach_attr(self, attachment: NewAttachment, legacy: dict[Any, Any], attr: int,
                    value: memoryview, depth: int) -> None:
        if attr == ATT_ATTACHMENT:
            attachment.props.update(self.props(_Reader(value), attachment, depth))
        elif attr == ATT_ATTACH_DATA:
            if attachment.data is None and attachment.embedded is None:
                attachment.data = [bytes(value)]
        elif attr == ATT_ATTACH_REND_DATA and len(value) >= 6:
            kind = int.from_bytes(value[:2], "little")
            legacy[T.PidTagAttachMethod] = ATTACH_OLE if kind == 2 else ATTACH_BY_VALUE
            legacy[T.PidTagRenderingPosition] = int.from_bytes(value[2:6], "little", signed=True)
        elif attr == ATT_ATTACH_TITLE:
            legacy[T.PidTagAttachFilename] = legacy[T.PidTagAttachLongFilename] = \
                self.text(value)
        elif attr == ATT_ATTACH_META_FILE:
            legacy[T.PidTagAttachRendering] = bytes(value)
        elif attr == ATT_ATTACH_TRANSPORT_FILENAME:
            legacy[T.PidTagAttachTransportName] = self.text(value)
        elif attr in (ATT_ATTACH_CREATE_DATE, ATT_ATTACH_MODIFY_DATE):
            if (when := self.date(value)) is not None:
                legacy[T.PidTagCreationTime if attr == ATT_ATTACH_CREATE_DATE
                       else T.PidTagLastModificationTime] = when

    def date(self, value: memoryview) -> datetime | None:
        """A DTR structure (seven 16-bit fields, the sender's clock; taken as UTC)."""
        if len(value) < 12:
            return None
        year, month, day, hour, minute, second = struct.unpack_from("<6H", value)
        try:
            return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            self.error(f"invalid date {year}-{month}-{day} {hour}:{minute}:{second}")
            return None

    def triple(self, value: memoryview) -> dict[int, str]:
        """``attFrom``: a TRP structure, then the display name and ``TYPE:address``."""
        reader = _Reader(value)
        try:
            reader.take(4, "triple id and size")
            name_size, address_size = reader.u16("name size"), reader.u16("address size")
            name = self.text(reader.take(name_size, "sender name"))
            address = self.text(reader.take(address_size, "sender address"))
        except _Truncated as exc:
            self.error(f"attFrom is malformed: {exc}")
            return {}
        kind, _, email = address.rpartition(":")
        found = {T.PidTagSenderName: name, T.PidTagSenderEmailAddress: email or address}
        if kind:
            found[T.PidTagSenderAddressType] = kind
        return {tag: text for tag, text in found.items() if text}

    # -- MAPI property streams -----------------------------------------------------------------

    def recipients(self, reader: _Reader, depth: int) -> list[dict[Any, Any]]:
        rows: list[dict[Any, Any]] = []
        try:
            count = reader.u32("recipient count")
            for _ in range(count):
                if reader.left() < 4:
                    raise _Truncated(f"{count} recipients announced, {len(rows)} present")
                rows.append(self.props(reader, None, depth))
        except _Truncated as exc:
            self.error(f"recipient table: {exc}")
        return rows

    def props(self, reader: _Reader, attachment: NewAttachment | None,
              depth: int) -> dict[Any, Any]:
        """A counted property sequence; stops, keeping what it has, at the first bad one."""
        found: dict[Any, Any] = {}
        try:
            count = reader.u32("property count")
            for index in range(count):
                if not reader.left():
                    raise _Truncated(f"{count} properties announced, {index} present")
                self.prop(reader, found, attachment, depth)
        except _Truncated as exc:
            self.error(f"property stream: {exc}")
        return found

    def prop(self, reader: _Reader, found: dict[Any, Any], attachment: NewAttachment | None,
             depth: int) -> None:
        kind, ident = reader.u16("property type"), reader.u16("property id")
        base = kind & ~MV_FLAG
        key: int | NamedProp = prop_tag(ident, kind)
        if ident >= 0x8000:
            guid = uuid.UUID(bytes_le=bytes(reader.take(16, "named property GUID")))
            if reader.u32("named property kind") == 0:
                name: int | str = reader.u32("named property LID")
            else:
                size = reader.u32("named property name length")
                name = bytes(reader.take(size, "named property name")).decode(
                    "utf-16-le", errors="replace").split("\x00", 1)[0]
                reader.skip_pad(size)
            key = NamedProp(guid, name, kind)
        if base not in _VARIABLE and base not in _FIXED:
            raise _Truncated(f"unknown property type 0x{kind:04X}, cannot find its size")
        if kind & MV_FLAG or base in _VARIABLE:
            count = reader.u32("value count")
            least = 4 if base in _VARIABLE else _FIXED[base]
            if count * least > reader.left():
                raise _Truncated(f"{count} values announced, {reader.left()} bytes left")
            items = [self.value(reader, base) for _ in range(count)]
        else:
            items = [self.value(reader, base)]
        if base == PT_OBJECT:
            if attachment is not None and ident == T.PidTagAttachDataObject >> 16 and items:
                self.attach_object(attachment, items[0], depth)
            return
        if not kind & MV_FLAG and ident == T.PidTagAttachDataBinary >> 16:
            if attachment is not None and items and attachment.embedded is None:
                attachment.data = [items[0]]
            return
        stored = normal_tag(kind) & 0xFFFF
        if stored not in STORABLE_TYPES:
            return
        key = prop_tag(ident, stored) if isinstance(key, int) else \
            NamedProp(key.propset, key.key, stored)
        items = [item for item in items if item is not None]
        if kind & MV_FLAG:
            found[key] = items
        elif items:
            found[key] = items[0]

    def value(self, reader: _Reader, base: int) -> Any:
        if base in _VARIABLE:
            size = reader.u32("value size")
            raw = bytes(reader.take(size, "value"))
            reader.skip_pad(size)
            if base == PT_UNICODE:
                return raw.decode("utf-16-le", errors="replace").split("\x00", 1)[0]
            if base == PT_STRING8:
                return self.text(raw)
            return raw
        fixed = reader.take(_FIXED[base], "value")
        if base == PT_BOOLEAN:
            return fixed[0] != 0 or fixed[1] != 0
        if base == PT_CLSID:
            return uuid.UUID(bytes_le=bytes(fixed))
        if base == PT_SYSTIME:
            filetime = int.from_bytes(fixed, "little")
            try:
                return values.from_filetime(filetime)
            except OverflowError:
                return None
        if base in _UNPACK:
            return struct.unpack_from(_UNPACK[base], fixed)[0]
        return None

    def attach_object(self, attachment: NewAttachment, raw: bytes, depth: int) -> None:
        """``PidTagAttachDataObject``: an IID, then an embedded TNEF message or OLE data."""
        if len(raw) < 16:
            self.error("attachment object shorter than its interface id")
            return
        iid, content = uuid.UUID(bytes_le=raw[:16]), memoryview(raw)[16:]
        if iid == IID_IMESSAGE and depth + 1 > self.max_depth:
            self.error(f"embedded message nested deeper than {self.max_depth}: kept as data")
        elif iid == IID_IMESSAGE:
            try:
                attachment.embedded = self.message(content, depth + 1)
                attachment.data = None
                return
            except TnefError as exc:
                self.error(f"embedded message: {exc}")
        attachment.data = [bytes(content)]


def decode(data: bytes, *, max_attachments: int = MAX_ATTACHMENTS, max_depth: int = MAX_DEPTH,
           errors: list[str] | None = None) -> NewMessage:
    """The message in a TNEF stream, as far as it can be read.

    Raises :class:`TnefError` only when ``data`` is not TNEF at all; every
    other problem ends decoding at the bad spot (or is merely noted) and is
    appended to ``errors`` when given.
    """
    decoder = _Decoder(max_attachments, max_depth, errors if errors is not None else [])
    return decoder.message(memoryview(bytes(data)), 0)
