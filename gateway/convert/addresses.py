"""Internet addresses as MAPI recipients and sender properties, and back.

- one-off entry ids (MS-OXCDATA 2.2.5.1) and flat entry lists (2.3.3) for
  ``PidTagEntryId``, ``PidTagSentRepresentingEntryId``,
  ``PidTagReplyRecipientEntries``;
- search keys (``SMTP:ADDRESS`` upper-cased, NUL-terminated);
- address header fields read into ``(name, address)`` pairs (RFC 2047 names,
  8-bit UTF-8 headers) and written back (:func:`format_mailbox`).
"""

from __future__ import annotations

import re
import struct
from email.utils import getaddresses
from typing import Any

from gateway.convert.charsets import decode_words, encode_words, header_bytes
from gateway.store import tags as T
from gateway.store.txn import PropKey

ONE_OFF_UID = bytes.fromhex("812B1FA4BEA310199D6E00DD010F5402")
ONE_OFF_UNICODE = 0x8000
ONE_OFF_NO_RICH_INFO = 0x0001
ONE_OFF_FLAGS = ONE_OFF_UNICODE | 0x1000 | ONE_OFF_NO_RICH_INFO  # what Outlook writes
RECIP_SENDABLE = 0x0001
MAPI_TO, MAPI_CC, MAPI_BCC = 1, 2, 3
MAX_ADDRESS = 512
MAX_NAME = 1024
MAX_ENTRIES = 1000

Mailbox = tuple[str, str]
"""A display name (may be empty) and an address."""

_ATOM_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ .]*")


# -- entry ids ----------------------------------------------------------------------------------


def one_off_entry_id(name: str, address: str, addrtype: str = "SMTP") -> bytes:
    """A one-off entry id (MS-OXCDATA 2.2.5.1), Unicode strings."""
    def utf16z(text: str) -> bytes:
        return text.encode("utf-16-le", "surrogatepass") + b"\0\0"
    return (b"\0\0\0\0" + ONE_OFF_UID + struct.pack("<HH", 0, ONE_OFF_FLAGS)
            + utf16z(name or address) + utf16z(addrtype) + utf16z(address))


def parse_one_off(entry_id: bytes) -> tuple[str, str, str] | None:
    """``(name, addrtype, address)`` of a one-off entry id, None for anything else."""
    if len(entry_id) < 24 or entry_id[4:20] != ONE_OFF_UID:
        return None
    flags = struct.unpack_from("<H", entry_id, 22)[0]
    body = entry_id[24:]
    if flags & ONE_OFF_UNICODE:
        parts, pos = [], 0
        for _ in range(3):
            end = pos
            while end + 1 < len(body) and body[end:end + 2] != b"\0\0":
                end += 2
            parts.append(body[pos:end].decode("utf-16-le", "replace"))
            pos = end + 2
    else:
        parts = [p.decode("cp1252", "replace") for p in body.split(b"\0")[:3]]
    if len(parts) < 3:
        return None
    return parts[0], parts[1], parts[2]


def flat_entry_list(entry_ids: list[bytes]) -> bytes:
    """A FlatEntryList (MS-OXCDATA 2.3.3): count, size, then each entry padded to 4 bytes."""
    body = b"".join(struct.pack("<I", len(e)) + e + b"\0" * (-len(e) % 4) for e in entry_ids)
    return struct.pack("<II", len(entry_ids), len(body)) + body


def parse_flat_entry_list(data: bytes) -> list[bytes]:
    """The entry ids of a FlatEntryList (bounded; a truncated list yields what is whole)."""
    if len(data) < 8:
        return []
    count = min(struct.unpack_from("<I", data, 0)[0], MAX_ENTRIES)
    out, pos = [], 8
    for _ in range(count):
        if pos + 4 > len(data):
            break
        size = struct.unpack_from("<I", data, pos)[0]
        if pos + 4 + size > len(data):
            break
        out.append(data[pos + 4:pos + 4 + size])
        pos += 4 + size + (-size % 4)
    return out


def search_key(address: str, addrtype: str = "SMTP") -> bytes:
    return f"{addrtype}:{address}".upper().encode("utf-8") + b"\0"


# -- header fields to properties ----------------------------------------------------------------


def mailboxes(raw: bytes, fallback: str | None = None, limit: int = 10_000) -> list[Mailbox]:
    """The addresses of an address header field (groups flattened, invalid ones dropped),
    at most ``limit``; a long field is read a few kilobytes at a time so that reading
    stops once the limit is reached."""
    text = header_bytes(raw, fallback).replace("\r", " ").replace("\n", " ")
    out: list[Mailbox] = []
    for chunk in _chunks(text):
        for name, address in getaddresses([chunk]):
            address = address.strip()
            local, at, domain = address.rpartition("@")
            if not (at and local and domain) or len(address) > MAX_ADDRESS:
                continue
            out.append((decode_words(name).strip()[:MAX_NAME], address))
            if len(out) >= limit:
                return out
    return out


def _chunks(text: str, size: int = 4096) -> list[str]:
    """``text`` cut at commas outside quotes, comments and angle brackets into pieces
    of about ``size`` characters."""
    if len(text) <= size:
        return [text]
    pieces, start, depth, quoted, escaped = [], 0, 0, False, False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char in "(<":
            depth += 1
        elif not quoted and char in ")>" and depth:
            depth -= 1
        elif char == "," and not quoted and not depth and index - start >= size:
            pieces.append(text[start:index])
            start = index + 1
    pieces.append(text[start:])
    return pieces


def recipient(box: Mailbox, rtype: int) -> dict[PropKey, Any]:
    """A recipient row of an SMTP address (``PidTagRecipientType`` 1 To, 2 Cc, 3 Bcc)."""
    name, address = box
    entry = one_off_entry_id(name or address, address)
    return {
        T.PidTagRecipientType: rtype, T.PidTagDisplayName: name or address,
        T.PidTagTransmittableDisplayName: name or address, T.PidTagAddressType: "SMTP",
        T.PidTagEmailAddress: address, T.PidTagSmtpAddress: address,
        T.PidTagEntryId: entry, T.PidTagRecipientEntryId: entry,
        T.PidTagSearchKey: search_key(address), T.PidTagRecipientFlags: RECIP_SENDABLE,
        T.PidTagObjectType: 6, T.PidTagDisplayType: 0,  # MAPI_MAILUSER, DT_MAILUSER
    }


SENDER = (T.PidTagSenderName, T.PidTagSenderEmailAddress, T.PidTagSenderAddressType,
          T.PidTagSenderSmtpAddress, T.PidTagSenderEntryId, T.PidTagSenderSearchKey)
SENT_REPRESENTING = (T.PidTagSentRepresentingName, T.PidTagSentRepresentingEmailAddress,
                     T.PidTagSentRepresentingAddressType, T.PidTagSentRepresentingSmtpAddress,
                     T.PidTagSentRepresentingEntryId, T.PidTagSentRepresentingSearchKey)


def person_props(box: Mailbox, keys: tuple[int, ...]) -> dict[PropKey, Any]:
    """Name, address, type, SMTP address, entry id and search key under ``keys``
    (:data:`SENDER` or :data:`SENT_REPRESENTING`)."""
    name, address = box
    values = (name or address, address, "SMTP", address,
              one_off_entry_id(name or address, address), search_key(address))
    return dict(zip(keys, values, strict=True))


def person_of(props: dict[PropKey, Any], keys: tuple[int, ...]) -> Mailbox | None:
    """The ``(name, SMTP address)`` a message's sender or representing props hold."""
    name = props.get(keys[0]) or ""
    address = smtp_address(props.get(keys[3]), props.get(keys[2]), props.get(keys[1]),
                           props.get(keys[4]))
    if not address and not name:
        return None
    return name, address


def smtp_address(smtp: Any, addrtype: Any, email: Any, entry_id: Any) -> str:
    """The best SMTP address among a recipient's or sender's properties ('' if none)."""
    if isinstance(smtp, str) and "@" in smtp:
        return smtp
    if isinstance(email, str) and "@" in email and str(addrtype or "SMTP").upper() == "SMTP":
        return email
    if isinstance(entry_id, bytes):
        parsed = parse_one_off(entry_id)
        if parsed and parsed[1].upper() == "SMTP" and "@" in parsed[2]:
            return parsed[2]
    return ""


def reply_to_props(boxes: list[Mailbox]) -> dict[PropKey, Any]:
    names = ";".join((name or address).replace(";", " ") for name, address in boxes)
    entries = [one_off_entry_id(name or address, address) for name, address in boxes]
    return {T.PidTagReplyRecipientNames: names,
            T.PidTagReplyRecipientEntries: flat_entry_list(entries)}


def reply_to_of(props: dict[PropKey, Any]) -> list[Mailbox]:
    entries = props.get(T.PidTagReplyRecipientEntries)
    out: list[Mailbox] = []
    if isinstance(entries, bytes):
        for entry in parse_flat_entry_list(entries):
            parsed = parse_one_off(entry)
            if parsed and parsed[1].upper() == "SMTP" and "@" in parsed[2]:
                out.append((parsed[0], parsed[2]))
    return out


# -- writing ------------------------------------------------------------------------------------


def format_mailbox(box: Mailbox) -> list[str]:
    """A mailbox as header tokens (joined by single spaces, folded between tokens).

    A name equal to the address is left out; an address-less name becomes an empty
    group (``Name:;``) so that the field stays well-formed."""
    name, address = box
    name = " ".join(name.split())
    if not address:
        return [*_phrase(name or "undisclosed-recipients")[:-1],
                _phrase(name or "undisclosed-recipients")[-1] + ":;"]
    if not name or name == address:
        return [address]
    return [*_phrase(name), f"<{address}>"]


def _phrase(name: str) -> list[str]:
    if not (name.isascii() and name.isprintable()) or "=?" in name:
        return encode_words(name)
    if _ATOM_NAME.fullmatch(name) and "." not in name:
        return name.split(" ")
    return ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
