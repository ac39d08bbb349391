"""Contact groups: vCard group members ⇄ personal distribution lists (MS-OXOCNTC 2.2.2).

A vCard group (4.0 ``KIND:group`` with ``MEMBER``, or Apple's
``X-ADDRESSBOOKSERVER-KIND:group`` with ``X-ADDRESSBOOKSERVER-MEMBER``) lists
its members as URIs: ``mailto:`` addresses or ``urn:uuid:`` UIDs of other cards.
An ``IPM.DistList`` lists them as entry ids in ``PidLidDistributionListMembers``
with a one-off entry id (MS-OXCDATA 2.2.5.1) for each in
``PidLidDistributionListOneOffMembers`` and a CRC of the first in
``PidLidDistributionListChecksum`` (MS-OXOCNTC 3.1.5.11).

- A ``mailto:`` member becomes a one-off entry id in both lists.
- A member naming another card by UID cannot become an entry id until the
  contact it names is found in a store; :func:`link_members` does that when a
  caller can look the UID up, wrapping the contact's entry id
  (WrappedEntryId, MS-OXOCNTC 2.2.2.2.4.1.1, type 0xC3: a contact's Email1).
- Every member URI is kept, in order, in the gateway property ``VCardMembers``,
  with ``VCardMembersChecksum`` recording the MAPI checksum that list matches.
  :func:`member_uris` returns that list while the MAPI members are unchanged;
  once a MAPI client has edited them (the checksum differs) it derives the
  URIs from the MAPI members instead (``mailto:`` of each one-off address).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from gateway.store import NamedProp
from gateway.store import tags as T
from gateway.store.named import PSETID_GATEWAY
from gateway.store.proptypes import PT_LONG, PT_MV_UNICODE
from gateway.store.txn import PropKey

log = logging.getLogger(__name__)

MEMBERS_PROP = NamedProp(PSETID_GATEWAY, "VCardMembers", PT_MV_UNICODE)
"""Every vCard member URI of a group, in order (gateway property set)."""
MEMBERS_CHECKSUM_PROP = NamedProp(PSETID_GATEWAY, "VCardMembersChecksum", PT_LONG)
"""The ``PidLidDistributionListChecksum`` that ``VCardMembers`` was written with."""

ONE_OFF_PROVIDER = bytes.fromhex("812B1FA4BEA310199D6E00DD010F5402")
WRAPPED_PROVIDER = bytes.fromhex("C091ADD3519DCF11A4A900AA0047FAA4")
ONE_OFF_FLAGS = b"\x01\x80"
"""MAPI_SEND_NO_RICH_INFO and Unicode strings, as Outlook writes them."""
WRAPPED_CONTACT = 3
WRAPPED_DISTLIST = 4
MAX_MEMBERS = 5_000
"""Most members kept in one group; the rest are dropped with a warning."""


@dataclass(frozen=True, slots=True)
class OneOff:
    """A one-off recipient: display name, address type and address."""

    name: str
    addrtype: str
    address: str


@dataclass(frozen=True, slots=True)
class ContactRef:
    """A stored contact a UID member refers to, as :func:`link_members` needs it."""

    entry_id: bytes
    name: str
    email: str
    is_group: bool = False


def one_off_entry_id(name: str, address: str, addrtype: str = "SMTP") -> bytes:
    """A Unicode one-off entry id (MS-OXCDATA 2.2.5.1)."""
    strings = b"".join((s.replace("\x00", "") + "\x00").encode("utf-16-le")
                       for s in (name, addrtype, address))
    return bytes(4) + ONE_OFF_PROVIDER + b"\x00\x00" + ONE_OFF_FLAGS + strings


def parse_one_off(blob: bytes) -> OneOff | None:
    """The strings of a one-off entry id, or None when ``blob`` is not one."""
    if len(blob) < 24 or blob[4:20] != ONE_OFF_PROVIDER:
        return None
    body = blob[24:]
    if blob[23] & 0x80:  # Unicode: UTF-16LE strings, each ending in a NUL character
        units = [body[i:i + 2] for i in range(0, len(body) - 1, 2)]
        text = b"".join(units).decode("utf-16-le", "replace")
    else:
        text = body.decode("cp1252", "replace")
    parts = text.split("\x00")
    if len(parts) < 3:
        return None
    return OneOff(parts[0], parts[1], parts[2])


def wrapped_entry_id(entry_id: bytes, kind: int = WRAPPED_CONTACT, email_index: int = 0) -> bytes:
    """A WrappedEntryId around a contact's (Email1..3 by index) or a list's message entry id."""
    bits = (4 + email_index if kind == WRAPPED_CONTACT else 3) << 4
    return bytes(4) + WRAPPED_PROVIDER + bytes([0x80 | bits | kind]) + entry_id


def parse_wrapped(blob: bytes) -> tuple[int, bytes] | None:
    """``(type byte, embedded entry id)`` of a WrappedEntryId, or None."""
    if len(blob) < 21 or blob[4:20] != WRAPPED_PROVIDER:
        return None
    return blob[20], blob[21:]


def checksum(members: list[bytes]) -> int:
    """PidLidDistributionListChecksum: CRC-32 (IEEE 802.3) with seed 0 over every member.

    MS-OXOCNTC 3.1.5.11 runs the plain table CRC from 0 with no final inversion;
    ``zlib.crc32`` inverts before and after, so it is started at ``~0`` and its
    result inverted back. Returned as a signed 32-bit value (PT_LONG).
    """
    crc = 0xFFFFFFFF
    for member in members:
        crc = zlib.crc32(member, crc)
    value = crc ^ 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def mailto_address(uri: str) -> str | None:
    """The address of a ``mailto:`` URI (None for any other URI)."""
    if uri[:7].lower() != "mailto:":
        return None
    address = unquote(uri[7:].split("?", 1)[0]).strip()
    return address or None


def group_props(name: str, uris: list[str]) -> dict[PropKey, Any]:
    """The distribution-list properties of a group with these member URIs."""
    uris = [uri.strip() for uri in uris if uri.strip()]
    if len(uris) > MAX_MEMBERS:
        log.warning("vcard: group %r has %d members; only %d kept", name, len(uris), MAX_MEMBERS)
        uris = uris[:MAX_MEMBERS]
    members = []
    for uri in uris:
        address = mailto_address(uri)
        if address:
            members.append(one_off_entry_id(address, address))
    crc = checksum(members)
    props: dict[PropKey, Any] = {T.PidLidDistributionListName: name,
                                 T.PidLidDistributionListChecksum: crc,
                                 MEMBERS_CHECKSUM_PROP: crc}
    if members:
        props[T.PidLidDistributionListMembers] = members
        props[T.PidLidDistributionListOneOffMembers] = list(members)
    if uris:
        props[MEMBERS_PROP] = uris
    return props


def link_members(props: dict[PropKey, Any], contacts: Mapping[str, ContactRef]) -> int:
    """Add a wrapped entry id for each UID member found in ``contacts``; the count added.

    ``contacts`` maps a UID (as the card gives it, without ``urn:uuid:``) to the
    stored contact. ``VCardMembers`` keeps every URI, so the vCard form is unchanged.
    """
    uris = list(props.get(MEMBERS_PROP) or [])
    members, one_offs = [], []
    added = 0
    for uri in uris:
        address = mailto_address(uri)
        if address:
            entry = one_off_entry_id(address, address)
            members.append(entry)
            one_offs.append(entry)
            continue
        ref = contacts.get(uid_of(uri))
        if ref is None:
            continue
        kind = WRAPPED_DISTLIST if ref.is_group else WRAPPED_CONTACT
        members.append(wrapped_entry_id(ref.entry_id, kind))
        one_offs.append(one_off_entry_id(ref.name or ref.email, ref.email))
        added += 1
    crc = checksum(members)
    props.update({T.PidLidDistributionListChecksum: crc, MEMBERS_CHECKSUM_PROP: crc})
    for key, value in ((T.PidLidDistributionListMembers, members),
                       (T.PidLidDistributionListOneOffMembers, one_offs)):
        if value:
            props[key] = value
        else:
            props.pop(key, None)
    return added


def uid_of(uri: str) -> str:
    """The UID a member URI names: ``urn:uuid:X`` → ``X``; any other URI as it is."""
    return uri[9:] if uri[:9].lower() == "urn:uuid:" else uri


def member_uris(props: Mapping[PropKey, Any]) -> list[str]:
    """The group's members as vCard URIs (see the module docstring for which source wins)."""
    members = [m for m in props.get(T.PidLidDistributionListMembers) or [] if isinstance(m, bytes)]
    if props.get(MEMBERS_CHECKSUM_PROP) == checksum(members):
        return [str(uri) for uri in props.get(MEMBERS_PROP) or []]
    one_offs = list(props.get(T.PidLidDistributionListOneOffMembers) or [])
    uris = []
    for i, member in enumerate(members):
        found = parse_one_off(member)
        if found is None and i < len(one_offs) and isinstance(one_offs[i], bytes):
            found = parse_one_off(one_offs[i])
        if found is None:
            wrapped = parse_wrapped(member)
            found = parse_one_off(wrapped[1]) if wrapped and wrapped[0] & 0x0F == 0 else None
        if found is not None and found.address and found.addrtype.upper() in ("SMTP", ""):
            uris.append("mailto:" + quote(found.address, safe="@!$&'()*+,;=:~-._"))
    return uris
