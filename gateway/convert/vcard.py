"""vCard (2.1, 3.0, 4.0) ⇄ MAPI contacts and contact groups: entry points, reader, vocabulary.

:func:`parse_vcards` turns a vCard stream into ``IPM.Contact`` / ``IPM.DistList``
messages (:mod:`gateway.convert.vcard_in`); :func:`render_vcard` writes one back
as vCard 3.0 or 4.0 (:mod:`gateway.convert.vcard_out`, which also folds and
escapes); contact groups and their member entry ids are in
:mod:`gateway.convert.contact_groups`.

This module holds the content-line reader and what both directions share: the
MAPI property tables, dates, and the gateway's own named properties. The reader
is a tolerant line parser of its own rather than vobject, which stops at the
first malformed line, a missing END, bad base64 or a vCard 2.1 quoted-printable
soft line break. It unfolds lines, joins quoted-printable continuations,
decodes each value by its ``ENCODING`` and ``CHARSET`` (UTF-8, then
Windows-1252, when none is given), accepts vCard 2.1 bare parameters
(``TEL;WORK;FAX``), RFC 6868 parameter escapes and quoted parameter values,
and skips what it cannot read. Base64 values stay undecoded until a caller
asks, so a huge ``KEY`` costs nothing.

Gateway named properties (property set ``PSETID_GATEWAY``):

- ``VCardUid`` (string): the card's UID, kept verbatim;
- ``VCardMembers`` (strings) and ``VCardMembersChecksum`` (long): see
  :mod:`gateway.convert.contact_groups`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from gateway.store import NamedProp, NewMessage
from gateway.store import tags as T
from gateway.store.named import PSETID_GATEWAY
from gateway.store.proptypes import PT_UNICODE
from gateway.store.txn import PropKey

log = logging.getLogger(__name__)

UID_PROP = NamedProp(PSETID_GATEWAY, "VCardUid", PT_UNICODE)
"""The vCard UID of a contact or group, kept verbatim (gateway property set)."""

MAX_PHOTO = 5 * 1024 * 1024
"""Largest photo kept (decoded bytes); a larger one is dropped with a warning."""
MAX_TEXT = 1024 * 1024
"""Longest text value kept (characters); longer ones are cut with a warning."""
MAX_CARDS = 10_000
"""Most cards read from one stream; the rest are dropped with a warning."""
MAX_LINES = 10_000
"""Most content lines read in one card."""
MAX_HEAD = 64 * 1024
"""Longest name-and-parameters part of a line; a line whose ``:`` is further is skipped."""
MAX_PARAMS = 100
"""Most parameters read on one line."""

_BARE_ENCODINGS = {"QUOTED-PRINTABLE", "BASE64", "B", "8BIT", "7BIT"}
_CARET = re.compile(r"\^([n^'])")
_CARET_MAP = {"n": "\n", "^": "^", "'": '"'}


def parse_vcards(data: bytes | str) -> list[NewMessage]:
    """Every card in ``data`` as a contact or contact-group message; never raises."""
    from gateway.convert.vcard_in import parse_vcards as parse

    return parse(data)


def render_vcard(message: NewMessage, version: str = "3.0") -> bytes:
    """``message`` (a contact or contact group) as one vCard ``version`` "3.0" or "4.0"."""
    from gateway.convert.vcard_out import render_vcard as render

    return render(message, version)


# -- reading ----------------------------------------------------------------------

@dataclass(slots=True)
class Line:
    """One unfolded content line: ``group.NAME;PARAM=value:raw``."""

    group: str
    name: str
    params: dict[str, list[str]] = field(default_factory=dict)
    raw: bytes = b""

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None

    @property
    def types(self) -> set[str]:
        """The ``TYPE`` values, lower case (2.1 bare parameters included)."""
        return {t.strip().lower() for t in self.params.get("TYPE", ()) if t.strip()}

    @property
    def encoding(self) -> str:
        return (self.param("ENCODING") or "").strip().upper()

    def is_base64(self) -> bool:
        return self.encoding in ("B", "BASE64")

    def text(self) -> str:
        """The value as text: quoted-printable undone, charset applied, NULs dropped."""
        raw = self.raw
        if self.encoding == "QUOTED-PRINTABLE":
            raw = binascii.a2b_qp(raw)
        return decode_text(raw, self.param("CHARSET")).replace("\x00", "")

    def binary(self, limit: int = MAX_PHOTO) -> bytes | None:
        """The base64 value decoded, or None when it is larger than ``limit`` or broken."""
        return decode_base64(self.raw, limit)


def decode_text(raw: bytes, charset: str | None) -> str:
    """``raw`` in its declared charset (bad bytes replaced), else UTF-8, else Windows-1252."""
    if charset:
        try:
            return raw.decode(codecs.lookup(charset.strip().strip('"')).name, "replace")
        except (LookupError, ValueError):
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def decode_base64(raw: bytes | str, limit: int) -> bytes | None:
    """Base64 with whitespace and junk ignored and padding repaired; None past ``limit``."""
    if isinstance(raw, str):
        raw = raw.encode("ascii", "ignore")
    if len(raw) * 3 // 4 > limit + 3 and len(raw.translate(None, b" \t\r\n")) * 3 // 4 > limit + 3:
        return None
    clean = re.sub(rb"[^A-Za-z0-9+/]", b"", raw.replace(b"-", b"+").replace(b"_", b"/"))
    clean = clean[: len(clean) - len(clean) % 4] if len(clean) % 4 == 1 else clean
    clean += b"=" * (-len(clean) % 4)
    try:
        data = base64.b64decode(clean)
    except (binascii.Error, ValueError):
        return None
    return data if len(data) <= limit else None


def _head_end(line: bytes) -> int:
    """Where the first ``:`` outside double quotes is (-1 when not in the first MAX_HEAD)."""
    quoted = False
    for i, byte in enumerate(line[:MAX_HEAD]):
        if byte == 0x22:
            quoted = not quoted
        elif byte == 0x3A and not quoted:
            return i
    return -1


def _params(head: str) -> list[str]:
    """``head`` split at ``;`` outside double quotes."""
    return re.findall(r'(?:[^;"]|"[^"]*")+', head)


def parse_line(physical: bytes) -> Line | None:
    """One logical line, or None when it has no ``name:`` form."""
    end = _head_end(physical)
    if end < 0:
        return None
    head = _params(physical[:end].decode("utf-8", "replace"))
    if not head:
        return None
    group, _, name = head[0].strip().rpartition(".")
    name = name.strip().upper()
    if not name or not re.fullmatch(r"[A-Z0-9-]+", name):
        return None
    line = Line(group.lower(), name, {}, physical[end + 1:])
    for param in head[1:MAX_PARAMS]:
        key, eq, val = param.strip().partition("=")
        key = key.strip().upper()
        if not key:
            continue
        if not eq:
            key, val = ("ENCODING" if key in _BARE_ENCODINGS else "TYPE"), key
        values = [v.strip().strip('"') for v in re.findall(r'"[^"]*"|[^,]+', val)]
        values = [_CARET.sub(lambda m: _CARET_MAP[m.group(1)], v) for v in values if v]
        if key == "TYPE":  # TYPE="work,voice" is a list too (RFC 6350 5.6)
            values = [t.strip().lower() for v in values for t in v.split(",") if t.strip()]
        line.params.setdefault(key, []).extend(values)
    return line


def _logical_lines(data: bytes) -> Iterator[bytes]:
    """Physical lines unfolded (RFC folding and quoted-printable soft breaks)."""
    current: list[bytes] = []
    qp = False
    for physical in re.split(rb"\r\n|\n|\r", data):
        if current and qp and current[-1].endswith(b"="):  # soft line break
            current[-1] = current[-1][:-1]
            current.append(physical)
            continue
        if not physical:  # blank lines (and CR CR LF endings) neither end nor add
            continue
        if current and physical[:1] in (b" ", b"\t"):
            current.append(physical[1:])
            continue
        if current:
            yield b"".join(current)
        current = [physical] if physical.strip() else []
        colon = physical.find(b":")
        qp = bool(current) and b"QUOTED-PRINTABLE" in physical[:max(colon, 0)].upper()
    if current:
        yield b"".join(current)


def _prepare(data: bytes | str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8", "replace").replace(b"\x00", b"")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        data = data.decode("utf-16", "replace").encode("utf-8", "replace")
    elif data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    return data.replace(b"\x00", b"")


def read_cards(data: bytes | str) -> list[list[Line]]:
    """The content lines of each card, in order; never raises.

    A card left open at the end of the stream or by the next ``BEGIN:VCARD``
    is kept as it is; a card nested after an empty 2.1 ``AGENT`` is skipped.
    """
    cards: list[list[Line]] = []
    card: list[Line] | None = None
    nested = skipped = 0
    for physical in _logical_lines(_prepare(data)):
        line = parse_line(physical)
        if line is None:
            skipped += card is not None
            continue
        value = line.raw.strip().upper()
        if line.name == "BEGIN" and value == b"VCARD":
            if card is not None and card and card[-1].name == "AGENT" and not card[-1].raw.strip():
                nested += 1
                continue
            if card is not None:
                log.warning("vcard: BEGIN:VCARD inside a card; the open card ends there")
                cards.append(card)
            card = []
            if len(cards) >= MAX_CARDS:
                log.warning("vcard: more than %d cards; the rest are dropped", MAX_CARDS)
                return cards
        elif line.name == "END" and value == b"VCARD":
            if nested:
                nested -= 1
            elif card is not None:
                cards.append(card)
                card = None
        elif card is not None and not nested:
            if len(card) < MAX_LINES:
                card.append(line)
            elif len(card) == MAX_LINES:
                log.warning("vcard: more than %d lines in a card; the rest are dropped", MAX_LINES)
                card.append(Line("", "X-GATEWAY-TRUNCATED"))
    if card is not None:
        log.warning("vcard: a card has no END:VCARD; kept as read")
        cards.append(card)
    if skipped:
        log.warning("vcard: skipped %d lines that are not content lines", skipped)
    return cards


def unescape(text: str) -> str:
    r"""Text value escapes undone: ``\n`` ``\,`` ``\;`` ``\:`` ``\\``."""
    if "\\" not in text:
        return text
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), text,
                  flags=re.DOTALL)


def split_escaped(text: str, sep: str) -> list[str]:
    """``text`` split at unescaped ``sep``, each part unescaped."""
    parts, current, i = [], [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if char == sep:
            parts.append(unescape("".join(current)))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append(unescape("".join(current)))
    return parts


# -- the MAPI side -----------------------------------------------------------------

EMAILS: list[tuple[PropKey, ...]] = [
    tuple(getattr(T, f"PidLidEmail{n}{field}") for field in (
        "EmailAddress", "DisplayName", "AddressType", "OriginalDisplayName", "OriginalEntryId"))
    for n in (1, 2, 3)]
"""Email1..3: address, display name, address type, original display name, one-off entry id."""
ADDRESSES: dict[str, tuple[PropKey, ...]] = {
    "home": (T.PidTagHomeAddressStreet, T.PidTagHomeAddressCity,
             T.PidTagHomeAddressStateOrProvince, T.PidTagHomeAddressPostalCode,
             T.PidTagHomeAddressCountry, T.PidTagHomeAddressPostOfficeBox, T.PidLidHomeAddress),
    "work": (T.PidLidWorkAddressStreet, T.PidLidWorkAddressCity, T.PidLidWorkAddressState,
             T.PidLidWorkAddressPostalCode, T.PidLidWorkAddressCountry,
             T.PidLidWorkAddressPostOfficeBox, T.PidLidWorkAddress),
    "other": (T.PidTagOtherAddressStreet, T.PidTagOtherAddressCity,
              T.PidTagOtherAddressStateOrProvince, T.PidTagOtherAddressPostalCode,
              T.PidTagOtherAddressCountry, T.PidTagOtherAddressPostOfficeBox, T.PidLidOtherAddress),
}
"""Street, city, state, postal code, country, PO box and the whole address, per kind."""
MAILING: tuple[PropKey, ...] = (
    T.PidTagStreetAddress, T.PidTagLocality, T.PidTagStateOrProvince, T.PidTagPostalCode,
    T.PidTagCountry, T.PidTagPostOfficeBox, T.PidTagPostalAddress)
"""The mailing address: a copy of the one ``PidLidPostalAddressId`` selects."""
POSTAL_ID = {"home": 1, "work": 2, "other": 3}
PHONE_KINDS: list[tuple[tuple[str, ...], list[int]]] = [
    (("assistant", "assistantphone"), [T.PidTagAssistantTelephoneNumber]),
    (("callback",), [T.PidTagCallbackTelephoneNumber]),
    (("company",), [T.PidTagCompanyMainTelephoneNumber]),
    (("radio",), [T.PidTagRadioTelephoneNumber]),
    (("ttytdd", "textphone", "tty"), [T.PidTagTelecommunicationsDeviceForDeafTelephoneNumber]),
    (("pager",), [T.PidTagPagerTelephoneNumber]),
    (("cell", "mobile", "iphone"), [T.PidTagMobileTelephoneNumber]),
    (("car",), [T.PidTagCarTelephoneNumber]),
    (("isdn",), [T.PidTagIsdnNumber]),
    (("main",), [T.PidTagPrimaryTelephoneNumber]),
    (("work",), [T.PidTagBusinessTelephoneNumber, T.PidTagBusiness2TelephoneNumber]),
    (("home",), [T.PidTagHomeTelephoneNumber, T.PidTagHome2TelephoneNumber]),
]
FAXES = {"work": [T.PidTagBusinessFaxNumber, T.PidTagPrimaryFaxNumber],
         "home": [T.PidTagHomeFaxNumber, T.PidTagPrimaryFaxNumber],
         "": [T.PidTagPrimaryFaxNumber]}
PHONE_FALLBACK = [T.PidTagOtherTelephoneNumber, T.PidTagBusinessTelephoneNumber,
                  T.PidTagHomeTelephoneNumber, T.PidTagBusiness2TelephoneNumber,
                  T.PidTagHome2TelephoneNumber]
"""Where a number goes when its own fields are taken. Each first field before its second,
so the card written back (in field order) reads into the same fields again."""
ABLABELS = {"mobile": {"cell"}, "iphone": {"cell"}, "main": {"main"}, "pager": {"pager"},
            "homefax": {"home", "fax"}, "workfax": {"work", "fax"}, "otherfax": {"fax"},
            "home": {"home"}, "work": {"work"}, "other": {"other"},
            "assistantphone": {"assistant"}, "assistant": {"assistant"}, "car": {"car"},
            "radio": {"radio"}, "callback": {"callback"}, "isdn": {"isdn"},
            "company": {"company"}, "companymain": {"company"}, "ttytdd": {"ttytdd"},
            "anniversary": {"anniversary"}, "spouse": {"spouse"}, "manager": {"manager"}}
IM_SCHEMES = {"X-JABBER": "xmpp", "X-GTALK": "xmpp", "X-AIM": "aim", "X-ICQ": "icq",
              "X-MSN": "msnim", "X-YAHOO": "ymsgr", "X-SKYPE": "skype",
              "X-SKYPE-USERNAME": "skype", "X-GADUGADU": "gg", "X-QQ": "qq"}
RELATED = {"spouse": T.PidTagSpouseName, "manager": T.PidTagManagerName,
           "assistant": T.PidTagAssistant}
RELATED_X = {f"{prefix}{who.upper()}": who for who in RELATED
             for prefix in ("X-MS-", "X-EVOLUTION-", "X-")}
RELATED_X.update({"X-KADDRESSBOOK-X-SPOUSENAME": "spouse",
                  "X-KADDRESSBOOK-X-MANAGERSNAME": "manager",
                  "X-KADDRESSBOOK-X-ASSISTANTSNAME": "assistant"})
ANNIVERSARIES = {"ANNIVERSARY", "X-ANNIVERSARY", "X-MS-ANNIVERSARY", "X-EVOLUTION-ANNIVERSARY",
                 "X-KADDRESSBOOK-X-ANNIVERSARY"}


def crlf(text: str) -> str:
    """Newlines as MAPI bodies and street fields keep them (CRLF)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def sniff_image(data: bytes) -> str | None:
    """The image type of ``data`` from its magic bytes; None when it is no known image."""
    for magic, mime in ((b"\xff\xd8", "image/jpeg"), (b"\x89PNG", "image/png"),
                        (b"GIF8", "image/gif"), (b"BM", "image/bmp"), (b"II*\x00", "image/tiff"),
                        (b"MM\x00*", "image/tiff")):
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"avif"):
        return "image/heic" if data[8:12] != b"avif" else "image/avif"
    return None


def format_address(street: str, city: str, region: str, code: str, country: str,
                   pobox: str = "") -> str:
    """The whole address as Outlook shows it: street, ``City, State  Code``, country."""
    place = ", ".join(p for p in (city, region) if p)
    place = "  ".join(p for p in (place, code) if p)
    return "\r\n".join(p for p in (street, pobox, place, country) if p)


# -- dates --------------------------------------------------------------------------

NO_YEAR = 1604
"""The year a date without one is stored with (Apple's ``X-APPLE-OMIT-YEAR`` convention)."""
_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})$|--(\d{2})-?(\d{2})$")


def parse_date(text: str, omit_year: str | None = None) -> date | None:
    """A BDAY/ANNIVERSARY value as a date (time and zone ignored); None when it is none.

    ``--MMDD`` (4.0) and a year equal to ``X-APPLE-OMIT-YEAR`` give :data:`NO_YEAR`.
    """
    match = _DATE.match(text.strip().split("T", 1)[0].strip())
    if match is None:
        return None
    year, month, day = ((int(match[1]), int(match[2]), int(match[3])) if match[1]
                        else (NO_YEAR, int(match[4]), int(match[5])))
    if omit_year and omit_year.strip() == str(year):
        year = NO_YEAR
    try:
        return date(max(year, NO_YEAR), month, day)
    except ValueError:
        return None


def to_mapi(day: date) -> datetime:
    """A date as PidTagBirthday/PidLidBirthdayLocal keep it: midnight, UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
