"""Global object ids: iCalendar UIDs ⇄ PidLidGlobalObjectId / PidLidCleanGlobalObjectId.

MS-OXOCAL 2.2.1.27 defines the blob: a fixed 16-byte array id, the original
instance date of an exception (year big-endian, month, day; zero on a series
or single appointment), a FILETIME creation time, 8 reserved bytes, a
little-endian size and the data. MS-OXCICAL 2.1.3.1.1.20.26 maps UIDs onto it:

- a UID that is the hex form of such a blob (Outlook's
  ``040000008200E00074C5B7101A82E008...``) is decoded to its bytes;
- any other UID is embedded after the marker ``vCal-Uid`` and the version
  ``01 00 00 00``, as UTF-8 with a terminating NUL.

The clean id is the same blob with the instance date zeroed; it is the same for
the series and every exception of it.
"""

from __future__ import annotations

import re
import struct
from datetime import date

BYTE_ARRAY_ID = bytes.fromhex("040000008200E00074C5B7101A82E008")
VCAL_MARKER = b"vCal-Uid"
VCAL_VERSION = b"\x01\x00\x00\x00"
HEADER_SIZE = 40
MAX_UID = 4096
"""Longest UID (in bytes) embedded; longer ones are cut, as no client sends them."""

_HEX = re.compile(r"[0-9A-Fa-f]+")


def is_outlook_uid(uid: str) -> bool:
    """A UID of type EncodedGlobalId (MS-OXCICAL): the hex form of a global object id."""
    return (len(uid) >= 82 and len(uid) % 2 == 0 and _HEX.fullmatch(uid) is not None
            and uid[:32].upper() == BYTE_ARRAY_ID.hex().upper())


def _with_instance(blob: bytes, instance: date | None) -> bytes:
    head = (struct.pack(">HBB", instance.year, instance.month, instance.day)
            if instance else b"\0\0\0\0")
    return blob[:16] + head + blob[20:]


def uid_to_goid(uid: str, instance: date | None = None) -> bytes:
    """The PidLidGlobalObjectId for ``uid``; ``instance`` is an exception's original date."""
    if is_outlook_uid(uid):
        blob = bytes.fromhex(uid)
        size = struct.unpack_from("<I", blob, 36)[0]
        if HEADER_SIZE + size == len(blob):
            return _with_instance(blob, instance)
    data = uid.encode("utf-8", "surrogatepass")[:MAX_UID]
    payload = VCAL_MARKER + VCAL_VERSION + data + b"\0"
    blob = BYTE_ARRAY_ID + b"\0" * 4 + b"\0" * 16 + struct.pack("<I", len(payload)) + payload
    return _with_instance(blob, instance)


def clean_goid(goid: bytes) -> bytes:
    """PidLidCleanGlobalObjectId: the id with the instance date zeroed."""
    return _with_instance(goid, None) if len(goid) >= HEADER_SIZE else goid


def goid_instance_date(goid: bytes) -> date | None:
    """The exception's original date carried in the id, if any."""
    if len(goid) < HEADER_SIZE:
        return None
    year, month, day = struct.unpack_from(">HBB", goid, 16)
    try:
        return date(year, month, day) if year else None
    except ValueError:
        return None


def goid_to_uid(goid: bytes) -> str | None:
    """The iCalendar UID for a global object id (None when it is not one).

    A ``vCal-Uid`` id gives back the embedded UID; an Outlook id gives the hex
    form of its clean id (instance date zeroed), upper case as Outlook writes it.
    """
    if len(goid) < HEADER_SIZE or goid[:16] != BYTE_ARRAY_ID:
        return goid.hex().upper() if goid else None
    size = struct.unpack_from("<I", goid, 36)[0]
    data = goid[HEADER_SIZE:HEADER_SIZE + size]
    if data.startswith(VCAL_MARKER) and len(data) >= 12:
        text = data[12:]
        end = text.find(b"\0")
        return text[: end if end >= 0 else len(text)].decode("utf-8", "replace")
    return clean_goid(goid).hex().upper()
