"""MAPI → vCard: a contact or contact group as one vCard 3.0 or 4.0 (RFC 2426, RFC 6350).

The output is deterministic — the same properties give the same bytes — in
UTF-8 with CRLF line ends, lines folded at 75 octets, text escaped per the RFCs
(URIs are not). It writes what :mod:`gateway.convert.vcard_in` reads back to
the same properties: for 3.0 the forms Apple and Outlook read (``TYPE=`` lists,
``X-ANNIVERSARY``, ``X-MS-*``, ``X-ADDRESSBOOKSERVER-*`` for groups); for 4.0
``PREF=1``, ``ANNIVERSARY``, ``GENDER``, ``RELATED``, ``KIND:group`` and
``MEMBER``, and the photo as a ``data:`` URI.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from gateway.convert import contact_groups
from gateway.convert.vcard import (
    ADDRESSES,
    EMAILS,
    MAX_PHOTO,
    NO_YEAR,
    POSTAL_ID,
    UID_PROP,
    sniff_image,
)
from gateway.store import NamedProp, NewMessage
from gateway.store import tags as T
from gateway.store.txn import PropKey

log = logging.getLogger(__name__)

LINE_OCTETS = 75
"""Folding width (RFC 6350 3.2, RFC 2426 2.6)."""

PRODID = "-//Groupware Gateway//vCard//EN"
PHONES = [  # MAPI property, TEL TYPE list (vCard 3.0 spelling; lower case in 4.0)
    (T.PidTagBusinessTelephoneNumber, "WORK,VOICE"),
    (T.PidTagBusiness2TelephoneNumber, "WORK,VOICE"),
    (T.PidTagHomeTelephoneNumber, "HOME,VOICE"),
    (T.PidTagHome2TelephoneNumber, "HOME,VOICE"),
    (T.PidTagMobileTelephoneNumber, "CELL,VOICE"),
    (T.PidTagPrimaryTelephoneNumber, "MAIN"),
    (T.PidTagCarTelephoneNumber, "CAR,VOICE"),
    (T.PidTagPagerTelephoneNumber, "PAGER"),
    (T.PidTagIsdnNumber, "ISDN"),
    (T.PidTagBusinessFaxNumber, "WORK,FAX"),
    (T.PidTagHomeFaxNumber, "HOME,FAX"),
    (T.PidTagPrimaryFaxNumber, "FAX"),
    (T.PidTagOtherTelephoneNumber, "VOICE"),
]
MS_PHONES = [  # X-MS-TEL (MS-OXVCARD 2.1.3.9.5)
    (T.PidTagAssistantTelephoneNumber, "ASSISTANT"),
    (T.PidTagCallbackTelephoneNumber, "CALLBACK"),
    (T.PidTagCompanyMainTelephoneNumber, "COMPANY"),
    (T.PidTagRadioTelephoneNumber, "RADIO"),
    (T.PidTagTelecommunicationsDeviceForDeafTelephoneNumber, "TTYTDD"),
]

NAMED_PROPS: tuple[NamedProp, ...] = tuple(dict.fromkeys(
    key for key in (
        *(k for slot in ADDRESSES.values() for k in slot), *(k for row in EMAILS for k in row),
        T.PidLidBirthdayLocal, T.PidLidWeddingAnniversaryLocal, T.PidLidFreeBusyLocation,
        T.PidLidHtml, T.PidLidInstantMessagingAddress, T.PidLidPostalAddressId,
        T.PidLidYomiFirstName, T.PidLidYomiLastName, T.PidNameKeywords, UID_PROP,
        T.PidLidDistributionListName, T.PidLidDistributionListMembers,
        T.PidLidDistributionListOneOffMembers, T.PidLidDistributionListChecksum,
        contact_groups.MEMBERS_PROP, contact_groups.MEMBERS_CHECKSUM_PROP)
    if isinstance(key, NamedProp)))
"""Every named property :func:`render_vcard` reads, for callers that fetch by key."""


def render_vcard(message: NewMessage, version: str = "3.0") -> bytes:
    """``message`` as one vCard; a message that cannot be written gives a minimal card."""
    v4 = str(version).startswith("4")
    try:
        return b"".join(_Writer(message, v4).card())
    except Exception:
        log.exception("vcard: message could not be written in full")
        name = str(message.props.get(T.PidTagDisplayName) or "")
        lines = [content_line("FN", escape(name))]
        if not v4:
            lines.append(content_line("N", ";;;;"))
        return b"".join([b"BEGIN:VCARD\r\n", content_line("VERSION", "4.0" if v4 else "3.0"),
                         *lines, b"END:VCARD\r\n"])


def _str(props: Mapping[PropKey, Any], key: PropKey) -> str:
    value = props.get(key)
    return value.replace("\x00", "").strip() if isinstance(value, str) else ""


def _uri(value: str) -> str:
    return value.replace("\r", "").replace("\n", "")


def escape(text: str) -> str:
    """A text value escaped for vCard 3.0 and 4.0 (newlines as ``\\n``)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return (text.replace("\\", "\\\\").replace("\n", "\\n").replace(",", "\\,")
            .replace(";", "\\;"))


def fold(line: str) -> bytes:
    """``line`` as UTF-8 folded at 75 octets without splitting a character, CRLF-ended."""
    data = line.encode("utf-8", "replace")
    if len(data) <= LINE_OCTETS:
        return data + b"\r\n"
    out, start, width = [], 0, LINE_OCTETS
    while start < len(data):
        end = min(start + width, len(data))
        while end < len(data) and end > start + 1 and data[end] & 0xC0 == 0x80:
            end -= 1
        out.append(data[start:end])
        start, width = end, LINE_OCTETS - 1
    return b"\r\n ".join(out) + b"\r\n"


def content_line(name: str, value: str, params: list[tuple[str, str]] | None = None) -> bytes:
    """``NAME;P=V:value`` folded; ``value`` must already be escaped as its type needs."""
    head = name + "".join(f";{key}={val}" for key, val in params or ())
    return fold(f"{head}:{value}")


def from_mapi(local: object, utc: object) -> date | None:
    """The date of a contact date pair: the local value's date, else the UTC one's.

    A UTC value written by a client east or west of UTC is the local midnight
    moved by the offset; rounding to the nearest midnight recovers the date.
    """
    if isinstance(local, datetime):
        return local.date()
    if isinstance(utc, datetime):
        stamp = utc if utc.tzinfo is None else utc.astimezone(UTC)
        return (stamp + timedelta(hours=12)).date()
    return None


class _Writer:
    def __init__(self, message: NewMessage, v4: bool) -> None:
        self.message = message
        self.props = message.props
        self.v4 = v4
        self.out: list[bytes] = []

    def get(self, key: PropKey) -> str:
        return _str(self.props, key)

    def add(self, name: str, value: str, params: list[tuple[str, str]] | None = None) -> None:
        self.out.append(content_line(name, value, params))

    def text(self, name: str, key: PropKey) -> None:
        if self.get(key):
            self.add(name, escape(self.get(key)))

    def types(self, spelled: str) -> list[tuple[str, str]]:
        return [("TYPE", spelled.lower() if self.v4 else spelled)]

    def card(self) -> list[bytes]:
        self.out = [b"BEGIN:VCARD\r\n"]
        self.add("VERSION", "4.0" if self.v4 else "3.0")
        self.add("PRODID", escape(PRODID))
        if self.get(UID_PROP):
            self.add("UID", _uri(self.get(UID_PROP)))
        message_class = self.get(T.PidTagMessageClass).lower()
        if message_class.startswith("ipm.distlist"):
            self.group()
        else:
            self.contact()
        keywords = [k for k in self.props.get(T.PidNameKeywords) or [] if isinstance(k, str)]
        if keywords:
            self.add("CATEGORIES", ",".join(escape(k) for k in keywords))
        self.text("NOTE", T.PidTagBody)
        rev = self.props.get(T.PidTagLastModificationTime)
        if isinstance(rev, datetime):
            rev = rev.replace(tzinfo=UTC) if rev.tzinfo is None else rev.astimezone(UTC)
            self.add("REV", rev.strftime("%Y%m%dT%H%M%SZ"))
        self.out.append(b"END:VCARD\r\n")
        return self.out

    def group(self) -> None:
        name = self.get(T.PidLidDistributionListName) or self.get(T.PidTagDisplayName)
        if self.v4:
            self.add("KIND", "group")
        else:
            self.add("X-ADDRESSBOOKSERVER-KIND", "group")
        self.add("FN", escape(name))
        if not self.v4:
            self.add("N", escape(name) + ";;;;")
        member = "MEMBER" if self.v4 else "X-ADDRESSBOOKSERVER-MEMBER"
        for uri in contact_groups.member_uris(self.props):
            self.add(member, _uri(uri))

    def contact(self) -> None:
        parts = [self.get(k) for k in (T.PidTagSurname, T.PidTagGivenName, T.PidTagMiddleName,
                                       T.PidTagDisplayNamePrefix, T.PidTagGeneration)]
        name = (self.get(T.PidTagDisplayName)
                or " ".join(p for p in (parts[3], parts[1], parts[2], parts[0], parts[4]) if p)
                or self.get(T.PidTagCompanyName) or self.get(T.PidLidEmail1EmailAddress))
        self.add("FN", escape(name))
        if any(parts) or not self.v4:
            self.add("N", ";".join(escape(p) for p in parts))
        self.text("NICKNAME", T.PidTagNickname)
        self.text("X-PHONETIC-FIRST-NAME", T.PidLidYomiFirstName)
        self.text("X-PHONETIC-LAST-NAME", T.PidLidYomiLastName)
        company, department = self.get(T.PidTagCompanyName), self.get(T.PidTagDepartmentName)
        if company or department:
            self.add("ORG", escape(company) + (";" + escape(department) if department else ""))
        self.text("TITLE", T.PidTagTitle)
        self.text("ROLE", T.PidTagProfession)
        self.emails()
        for key, spelled in PHONES:
            if self.get(key):
                self.add("TEL", _uri(self.get(key)), self.types(spelled))
        for key, spelled in MS_PHONES:
            if self.get(key):
                self.add("X-MS-TEL", _uri(self.get(key)), self.types(spelled))
        self.addresses()
        self.urls()
        self.im()
        self.dates()
        gender = self.props.get(T.PidTagGender)
        if gender in (1, 2):
            if self.v4:
                self.add("GENDER", "F" if gender == 1 else "M")
            else:
                self.add("X-GENDER", "Female" if gender == 1 else "Male")
        if self.v4 and self.get(T.PidTagSpouseName):
            self.add("RELATED", escape(self.get(T.PidTagSpouseName)),
                     [("TYPE", "spouse"), ("VALUE", "text")])
        elif self.get(T.PidTagSpouseName):
            self.text("X-MS-SPOUSE", T.PidTagSpouseName)
        self.text("X-MS-MANAGER", T.PidTagManagerName)
        self.text("X-MS-ASSISTANT", T.PidTagAssistant)
        if self.get(T.PidLidFreeBusyLocation):
            self.add("FBURL", _uri(self.get(T.PidLidFreeBusyLocation)))
        self.photo()

    def emails(self) -> None:
        first = True
        for address_key, *_ in EMAILS:
            address = self.get(address_key)
            if not address:
                continue
            if self.v4:
                params = [("PREF", "1")] if first else []
            else:
                params = self.types("INTERNET,PREF" if first else "INTERNET")
            self.add("EMAIL", escape(address), params)
            first = False

    def addresses(self) -> None:
        postal = self.props.get(T.PidLidPostalAddressId)
        for slot in ("work", "home", "other"):
            street, city, region, code, country, pobox, _ = (self.get(k) for k in ADDRESSES[slot])
            if not any((street, city, region, code, country, pobox)):
                continue
            params = self.types(slot.upper())
            if postal == POSTAL_ID[slot]:
                params = [*params, ("PREF", "1")] if self.v4 else self.types(
                    f"{slot.upper()},PREF")
            value = ";".join(escape(p) for p in (pobox, "", street, city, region, code, country))
            self.add("ADR", value, params)

    def urls(self) -> None:
        business = self.get(T.PidTagBusinessHomePage) or self.get(T.PidLidHtml)
        if business:
            self.add("URL", _uri(business), self.types("WORK"))
        if self.get(T.PidTagPersonalHomePage):
            self.add("URL", _uri(self.get(T.PidTagPersonalHomePage)), self.types("HOME"))

    def im(self) -> None:
        address = self.get(T.PidLidInstantMessagingAddress)
        if not address:
            return
        if ":" in address and address.split(":", 1)[0].replace("-", "").isalnum():
            self.add("IMPP", _uri(address))
        else:
            self.add("X-MS-IMADDRESS", escape(address))

    def dates(self) -> None:
        pairs = (("BDAY", T.PidLidBirthdayLocal, T.PidTagBirthday),
                 ("ANNIVERSARY" if self.v4 else "X-ANNIVERSARY",
                  T.PidLidWeddingAnniversaryLocal, T.PidTagWeddingAnniversary))
        for name, local, utc in pairs:
            day = from_mapi(self.props.get(local), self.props.get(utc))
            if day is not None:
                self.add(name, *self.date_value(day))

    def date_value(self, day: date) -> tuple[str, list[tuple[str, str]]]:
        if day.year == NO_YEAR:
            if self.v4:
                return day.strftime("--%m%d"), []
            return day.strftime("%Y-%m-%d"), [("X-APPLE-OMIT-YEAR", str(NO_YEAR))]
        return (f"{day.year:04d}{day.month:02d}{day.day:02d}" if self.v4
                else f"{day.year:04d}-{day.month:02d}-{day.day:02d}"), []

    def photo(self) -> None:
        for attachment in self.message.attachments:
            if not attachment.props.get(T.PidTagAttachmentContactPhoto):
                continue
            if attachment.data is not None:
                data = b"".join(attachment.data)
            else:
                data = attachment.props.get(T.PidTagAttachDataBinary) or b""
            if not data or len(data) > MAX_PHOTO:
                log.warning("vcard: contact photo of %d bytes not written", len(data))
                return
            mime = sniff_image(data) or "image/jpeg"
            encoded = base64.b64encode(data).decode("ascii")
            if self.v4:
                self.add("PHOTO", f"data:{mime};base64,{encoded}")
            else:
                self.add("PHOTO", encoded,
                         [("ENCODING", "b"), ("TYPE", mime.split("/")[1].upper())])
            return
