"""vCard → MAPI: each card as an ``IPM.Contact`` or ``IPM.DistList`` (MS-OXVCARD, MS-OXOCNTC).

The mapping, property by property, is the one :mod:`gateway.convert.vcard_out`
writes back; where several vCard dialects say the same thing (Apple's
``itemN.X-ABLabel`` groups, Outlook's ``X-MS-*``, Evolution's ``X-EVOLUTION-*``,
vCard 4.0 ``RELATED`` and ``ANNIVERSARY``) each is read. What MAPI has no place
for (a fourth e-mail address, a second photo, a URL photo) is dropped with a
warning in the log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC
from typing import Any

from dateutil import parser as dateparser

from gateway.convert import contact_groups
from gateway.convert.vcard import (
    ABLABELS,
    ADDRESSES,
    ANNIVERSARIES,
    EMAILS,
    FAXES,
    IM_SCHEMES,
    MAILING,
    MAX_PHOTO,
    MAX_TEXT,
    PHONE_FALLBACK,
    PHONE_KINDS,
    POSTAL_ID,
    RELATED,
    RELATED_X,
    UID_PROP,
    Line,
    crlf,
    decode_base64,
    format_address,
    parse_date,
    read_cards,
    sniff_image,
    split_escaped,
    to_mapi,
    unescape,
)
from gateway.store import NewAttachment, NewMessage
from gateway.store import tags as T
from gateway.store.objects import ATTACH_BY_VALUE
from gateway.store.txn import PropKey

log = logging.getLogger(__name__)

PICTURE = "ContactPicture.jpg"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def parse_vcards(data: bytes | str) -> list[NewMessage]:
    """Every card in ``data`` as a message; a card that cannot be read is logged and skipped."""
    try:
        cards = read_cards(data)
    except Exception:  # the reader is tolerant; this guards the caller all the same
        log.exception("vcard: the stream could not be read")
        return []
    messages = []
    for lines in cards:
        try:
            messages.append(_Card(lines).message())
        except Exception:
            log.exception("vcard: a card could not be converted")
    return messages


def _text(line: Line) -> str:
    value = unescape(line.text()).strip()
    if len(value) > MAX_TEXT:
        log.warning("vcard: %s value cut to %d characters", line.name, MAX_TEXT)
        value = value[:MAX_TEXT]
    return value


def _pref(line: Line) -> int:
    try:
        return int(line.param("PREF") or "")
    except ValueError:
        return 1 if "pref" in line.types else 101


class _Card:
    """One card's lines, read into properties."""

    def __init__(self, lines: list[Line]) -> None:
        self.lines = lines
        self.labels = {line.group: re.sub(r"^_\$!<|>!\$_$", "", _text(line)).lower()
                       for line in lines if line.name == "X-ABLABEL" and line.group}
        self.props: dict[PropKey, Any] = {}
        self.first: dict[str, str] = {}
        self.emails: list[tuple[int, str]] = []
        self.phones: list[tuple[set[str], str]] = []
        self.addresses: list[tuple[set[str], list[str], bool]] = []
        self.urls: list[tuple[set[str], str]] = []
        self.ims: list[tuple[int, str]] = []
        self.notes: list[str] = []
        self.categories: list[str] = []
        self.members: list[str] = []
        self.photo: bytes | None = None
        self.postal_id = 0

    def types(self, line: Line) -> set[str]:
        return line.types | ABLABELS.get(self.labels.get(line.group, ""), set())

    def message(self) -> NewMessage:
        for line in self.lines:
            handler = HANDLERS.get(line.name)
            if handler is not None:
                handler(self, line)
            elif line.name in RELATED_X:
                self.set_once(RELATED[RELATED_X[line.name]], _text(line))
            elif line.name in IM_SCHEMES and _text(line):
                value = _text(line)
                self.ims.append((_pref(line), value if _SCHEME.match(value)
                                 else f"{IM_SCHEMES[line.name]}:{value}"))
            elif line.name in ANNIVERSARIES:
                self.date(T.PidTagWeddingAnniversary, T.PidLidWeddingAnniversaryLocal, line)
        kind = self.first.get("KIND", "").lower()
        if kind == "group" or self.first.get("X-ADDRESSBOOKSERVER-KIND", "").lower() == "group":
            return self.group()
        return self.contact()

    def set_once(self, key: PropKey, value: Any) -> None:
        if value not in (None, "") and key not in self.props:
            self.props[key] = value

    def date(self, key: PropKey, local: PropKey, line: Line) -> None:
        parsed = parse_date(_text(line), line.param("X-APPLE-OMIT-YEAR"))
        if parsed is not None and key not in self.props:
            self.props[key] = self.props[local] = to_mapi(parsed)

    # -- the common tail ------------------------------------------------------------

    def finish(self, message_class: str, name: str) -> NewMessage:
        props = self.props
        props[T.PidTagMessageClass] = message_class
        props[T.PidTagDisplayName] = props[T.PidTagSubject] = name
        if self.notes:
            props[T.PidTagBody] = crlf("\n".join(self.notes))
        if self.categories:
            props[T.PidNameKeywords] = list(dict.fromkeys(self.categories))
        self.set_once(UID_PROP, self.first.get("UID"))
        rev = self.first.get("REV")
        if rev:
            try:
                stamp = dateparser.isoparse(rev)
                stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp
                props[T.PidTagLastModificationTime] = stamp.astimezone(UTC)
            except (ValueError, OverflowError):
                log.warning("vcard: REV %r is not a timestamp", rev[:40])
        return NewMessage(props=props)

    def group(self) -> NewMessage:
        name = self.first.get("FN") or self.first.get("N", "").strip(";") or "Group"
        self.props.update(contact_groups.group_props(name, self.members))
        self.props[T.PidLidFileUnder] = name
        return self.finish("IPM.DistList", name)

    def contact(self) -> NewMessage:
        props = self.props
        n = (split_escaped(self.first["N"], ";") if "N" in self.first else []) + [""] * 5
        surname, given, middle, prefix, suffix = (part.strip() for part in n[:5])
        for key, value in ((T.PidTagSurname, surname), (T.PidTagGivenName, given),
                           (T.PidTagMiddleName, middle), (T.PidTagDisplayNamePrefix, prefix),
                           (T.PidTagGeneration, suffix)):
            self.set_once(key, value)
        self.emails.sort(key=lambda item: item[0])
        name = (self.first.get("FN")
                or " ".join(p for p in (prefix, given, middle, surname, suffix) if p)
                or props.get(T.PidTagCompanyName) or (self.emails[0][1] if self.emails else ""))
        self.file_under(surname, given, middle, name)
        self.put_emails(name)
        self.put_phones()
        self.put_addresses()
        self.put_urls()
        if self.ims:
            props[T.PidLidInstantMessagingAddress] = min(self.ims, key=lambda i: i[0])[1]
        message = self.finish("IPM.Contact", name)
        if self.photo is not None:
            props[T.PidLidHasPicture] = True
            message.attachments.append(NewAttachment(props={
                T.PidTagAttachMethod: ATTACH_BY_VALUE, T.PidTagAttachmentContactPhoto: True,
                T.PidTagAttachFilename: PICTURE, T.PidTagAttachLongFilename: PICTURE,
                T.PidTagDisplayName: PICTURE, T.PidTagAttachExtension: ".jpg",
                T.PidTagAttachMimeTag: sniff_image(self.photo) or "image/jpeg",
                T.PidTagAttachmentHidden: True,
            }, data=[self.photo]))
        return message

    def file_under(self, surname: str, given: str, middle: str, name: str) -> None:
        first = " ".join(p for p in (given, middle) if p)
        if surname and first:
            self.props[T.PidLidFileUnder], self.props[T.PidLidFileUnderId] = (
                f"{surname}, {first}", 0x8017)
        elif surname or first:
            self.props[T.PidLidFileUnder], self.props[T.PidLidFileUnderId] = (
                surname or first, 0x8017)
        elif self.props.get(T.PidTagCompanyName):
            self.props[T.PidLidFileUnder] = self.props[T.PidTagCompanyName]
            self.props[T.PidLidFileUnderId] = 0x3A16
        elif name:
            self.props[T.PidLidFileUnder], self.props[T.PidLidFileUnderId] = name, 0x3001

    def put_emails(self, name: str) -> None:
        seen: list[str] = []
        folded: set[str] = set()
        for _, address in self.emails:
            if address.lower() not in folded:
                folded.add(address.lower())
                seen.append(address)
        if len(seen) > 3:
            log.warning("vcard: %d e-mail addresses; MAPI keeps three", len(seen))
        for i, address in enumerate(seen[:3]):
            addr, display, kind, original, entry = EMAILS[i]
            shown = f"{name} ({address})" if name else address
            self.props.update({addr: address, display: shown, kind: "SMTP", original: address,
                               entry: contact_groups.one_off_entry_id(shown, address)})
        if seen:
            count = min(len(seen), 3)
            self.props[T.PidLidAddressBookProviderEmailList] = list(range(count))
            self.props[T.PidLidAddressBookProviderArrayType] = (1 << count) - 1

    def put_phones(self) -> None:
        for types, number in self.phones:
            slots = self.phone_slots(types)
            free = next((slot for slot in slots if slot not in self.props), None)
            if free is None:
                log.warning("vcard: no free MAPI phone field for TYPE=%s", ",".join(sorted(types)))
            else:
                self.props[free] = number

    @staticmethod
    def phone_slots(types: set[str]) -> list[int]:
        if "fax" in types:
            return FAXES["work" if "work" in types else "home" if "home" in types else ""]
        for names, slots in PHONE_KINDS:
            if types.intersection(names):
                return slots + PHONE_FALLBACK
        if "pref" in types and not types - {"pref", "voice"}:
            return [T.PidTagPrimaryTelephoneNumber, *PHONE_FALLBACK]
        return PHONE_FALLBACK

    def put_addresses(self) -> None:
        taken: set[str] = set()
        for types, parts, pref in self.addresses:
            want = "work" if "work" in types else "home" if "home" in types else "other"
            slot = want if want not in taken else "other" if "other" not in taken else None
            if slot is None:
                log.warning("vcard: no free MAPI address for TYPE=%s", ",".join(sorted(types)))
                continue
            taken.add(slot)
            pobox, ext, street, city, region, code, country = (p.strip() for p in parts[:7])
            street = crlf("\n".join(p for p in (ext, street) if p))
            values = (street, city, region, code, country, pobox, format_address(
                street, city, region, code, country, pobox))
            for key, value in zip(ADDRESSES[slot], values, strict=True):
                self.set_once(key, value)
            if pref and not self.postal_id:
                self.postal_id = POSTAL_ID[slot]
        if self.postal_id and self.postal_id in POSTAL_ID.values():
            slot = next(k for k, v in POSTAL_ID.items() if v == self.postal_id)
            self.props[T.PidLidPostalAddressId] = self.postal_id
            for key, source in zip(MAILING, ADDRESSES[slot], strict=True):
                self.set_once(key, self.props.get(source))

    def put_urls(self) -> None:
        for types, url in self.urls:
            if "home" in types:
                order = [T.PidTagPersonalHomePage, T.PidTagBusinessHomePage]
            else:
                order = [T.PidTagBusinessHomePage, T.PidTagPersonalHomePage]
            free = next((slot for slot in order if slot not in self.props), None)
            if free is not None:
                self.props[free] = url
        self.set_once(T.PidLidHtml, self.props.get(T.PidTagBusinessHomePage))


# -- one handler per property -------------------------------------------------------

def _first(card: _Card, line: Line) -> None:
    card.first.setdefault(line.name, line.text().strip() if line.name == "N" else _text(line))


def _simple(key: PropKey) -> Callable[[_Card, Line], None]:
    return lambda card, line: card.set_once(key, _text(line))


def _email(card: _Card, line: Line) -> None:
    address = _text(line)
    address = address[7:] if address[:7].lower() == "mailto:" else address
    if address:
        card.emails.append((_pref(line), address.strip()))


def _tel(card: _Card, line: Line) -> None:
    number = _text(line)
    number = number[4:] if number[:4].lower() == "tel:" else number
    if number:
        card.phones.append((card.types(line), number.replace("\n", " ")))


def _adr(card: _Card, line: Line) -> None:
    parts = [*split_escaped(line.text(), ";"), *[""] * 7]
    if any(p.strip() for p in parts):
        card.addresses.append((card.types(line), parts,
                               line.param("PREF") == "1" or "pref" in line.types))


def _org(card: _Card, line: Line) -> None:
    parts = [p.strip() for p in split_escaped(line.text(), ";")]
    card.set_once(T.PidTagCompanyName, parts[0])
    card.set_once(T.PidTagDepartmentName, ", ".join(p for p in parts[1:] if p))


def _photo(card: _Card, line: Line) -> None:
    if card.photo is not None:
        return
    data: bytes | None = None
    if line.is_base64():
        data = line.binary(MAX_PHOTO)
    else:
        value = line.raw.strip()
        if value[:5].lower() == b"data:" and b"," in value:
            head, _, body = value[5:].partition(b",")
            data = decode_base64(body, MAX_PHOTO) if b"base64" in head.lower() else None
        else:
            log.warning("vcard: PHOTO by URL is not fetched; dropped")
            return
    if not data:
        log.warning("vcard: PHOTO dropped (broken or larger than %d bytes)", MAX_PHOTO)
    elif sniff_image(data) is None:
        log.warning("vcard: PHOTO dropped (not an image)")
    else:
        card.photo = data


def _url(card: _Card, line: Line) -> None:
    if _text(line):
        card.urls.append((card.types(line), _text(line)))


def _impp(card: _Card, line: Line) -> None:
    if _text(line):
        card.ims.append((_pref(line), _text(line)))


def _categories(card: _Card, line: Line) -> None:
    card.categories.extend(c.strip() for c in split_escaped(line.text(), ",") if c.strip())


def _nickname(card: _Card, line: Line) -> None:
    names = [n.strip() for n in split_escaped(line.text(), ",") if n.strip()]
    card.set_once(T.PidTagNickname, ", ".join(names))


def _gender(card: _Card, line: Line) -> None:
    value = _text(line).split(";")[0].strip().lower()
    gender = {"f": 1, "female": 1, "m": 2, "male": 2}.get(value)
    card.set_once(T.PidTagGender, gender)


def _related(card: _Card, line: Line) -> None:
    value = _text(line)
    for kind in card.types(line) & set(RELATED):
        if value and not (_SCHEME.match(value) and (line.param("VALUE") or "").lower() != "text"):
            card.set_once(RELATED[kind], value)


def _abdate(card: _Card, line: Line) -> None:
    if "anniversary" in card.types(line):
        card.date(T.PidTagWeddingAnniversary, T.PidLidWeddingAnniversaryLocal, line)


def _postal_default(card: _Card, line: Line) -> None:
    value = _text(line)
    card.postal_id = int(value) if value in ("1", "2", "3") else card.postal_id


HANDLERS: dict[str, Callable[[_Card, Line], None]] = {
    **{name: _first for name in ("FN", "N", "UID", "REV", "KIND", "X-ADDRESSBOOKSERVER-KIND")},
    "EMAIL": _email, "TEL": _tel, "X-MS-TEL": _tel, "ADR": _adr, "ORG": _org,
    "TITLE": _simple(T.PidTagTitle), "ROLE": _simple(T.PidTagProfession),
    "NICKNAME": _nickname, "PHOTO": _photo, "URL": _url, "IMPP": _impp,
    "X-MS-IMADDRESS": _impp,
    "CATEGORIES": _categories, "GENDER": _gender, "X-GENDER": _gender,
    "NOTE": lambda card, line: card.notes.append(_text(line)) if _text(line) else None,
    "BDAY": lambda card, line: card.date(T.PidTagBirthday, T.PidLidBirthdayLocal, line),
    "RELATED": _related, "X-ABRELATEDNAMES": _related, "X-ABDATE": _abdate,
    "X-PHONETIC-FIRST-NAME": _simple(T.PidLidYomiFirstName),
    "X-PHONETIC-LAST-NAME": _simple(T.PidLidYomiLastName),
    "FBURL": _simple(T.PidLidFreeBusyLocation),
    "X-MS-OL-DEFAULT-POSTAL-ADDRESS": _postal_default,
    "MEMBER": lambda card, line: card.members.append(_text(line)),
    "X-ADDRESSBOOKSERVER-MEMBER": lambda card, line: card.members.append(_text(line)),
}
