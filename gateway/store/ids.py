"""Object identity in MS-OXCDATA forms: ids, XIDs, source and change keys, entry ids.

Inside a store every folder and message has a *global counter* (GC), a 48-bit
number taken from one per-store counter; that is the integer primary key in
SQLite. On the wire an id is 8 bytes: the 2-byte replica id, then the GC in
big-endian order — as a little-endian 64-bit integer that is what
:func:`make_eid` returns. Change numbers come from a second counter and name
every write; a change key is the store's replica GUID followed by the change
number, a source key the same GUID followed by the object's GC.
"""

from __future__ import annotations

import struct
import uuid
from typing import Final

from gateway.store.errors import InvalidArgument

PRIVATE_REPLID: Final = 1
GC_MAX: Final = (1 << 48) - 1

FOLDER_TYPE_PRIVATE: Final = 0x0001
FOLDER_TYPE_PUBLIC: Final = 0x0003
MESSAGE_TYPE_PRIVATE: Final = 0x0007
MESSAGE_TYPE_PUBLIC: Final = 0x0009

STORE_WRAP_UID: Final = bytes.fromhex("38A1BB1005E5101AA1BB08002B2A56C2")
"""muidStoreWrap, the provider UID of a store entry id."""
PRIVATE_PROVIDER_UID: Final = bytes.fromhex("5494A1C0297F101BA58708002B2A2517")
PUBLIC_PROVIDER_UID: Final = bytes.fromhex("78B2FA70AFF711CD9BC800AA002FC45A")


def gc_bytes(gc: int) -> bytes:
    if not 0 <= gc <= GC_MAX:
        raise InvalidArgument(f"global counter {gc} out of range")
    return gc.to_bytes(6, "big")


def make_eid(gc: int, replid: int = PRIVATE_REPLID) -> int:
    """The 64-bit FID/MID of a global counter, as a little-endian integer."""
    return int.from_bytes(struct.pack("<H", replid) + gc_bytes(gc), "little")


def split_eid(eid: int) -> tuple[int, int]:
    """``(replid, gc)`` of a 64-bit FID/MID."""
    raw = eid.to_bytes(8, "little")
    return struct.unpack("<H", raw[:2])[0], int.from_bytes(raw[2:], "big")


def xid(guid: uuid.UUID, local_id: int) -> bytes:
    """An XID with a 6-byte local id (the GUID in its wire, little-endian form)."""
    return guid.bytes_le + gc_bytes(local_id)


def parse_xid(raw: bytes) -> tuple[uuid.UUID, int]:
    if not 17 <= len(raw) <= 24:
        raise InvalidArgument(f"an XID is 17 to 24 bytes, not {len(raw)}")
    return uuid.UUID(bytes_le=raw[:16]), int.from_bytes(raw[16:], "big")


def pcl_pack(xids: list[bytes]) -> bytes:
    """A predecessor change list: each XID prefixed by its size."""
    return b"".join(bytes([len(x)]) + x for x in xids)


def pcl_unpack(raw: bytes) -> list[bytes]:
    out, offset = [], 0
    while offset < len(raw):
        size = raw[offset]
        if size < 17 or offset + 1 + size > len(raw):
            raise InvalidArgument("malformed predecessor change list")
        out.append(raw[offset + 1:offset + 1 + size])
        offset += 1 + size
    return out


def pcl_merge(old: bytes | None, change_key: bytes) -> bytes:
    """The PCL after a change: one entry per namespace, the newest local id kept."""
    latest: dict[bytes, bytes] = {}
    for entry in [*pcl_unpack(old or b""), change_key]:
        ns, counter = entry[:16], int.from_bytes(entry[16:], "big")
        kept = latest.get(ns)
        if kept is None or int.from_bytes(kept[16:], "big") < counter:
            latest[ns] = entry
    return pcl_pack(sorted(latest.values()))


def folder_entry_id(provider: uuid.UUID, replica: uuid.UUID, gc: int,
                    public: bool = False) -> bytes:
    """MS-OXCDATA 2.2.4.1 Folder EntryID (46 bytes)."""
    kind = FOLDER_TYPE_PUBLIC if public else FOLDER_TYPE_PRIVATE
    return (b"\0\0\0\0" + provider.bytes_le + struct.pack("<H", kind) + replica.bytes_le
            + gc_bytes(gc) + b"\0\0")


def message_entry_id(provider: uuid.UUID, replica: uuid.UUID, folder_gc: int, message_gc: int,
                     public: bool = False) -> bytes:
    """MS-OXCDATA 2.2.4.2 Message EntryID (70 bytes)."""
    kind = MESSAGE_TYPE_PUBLIC if public else MESSAGE_TYPE_PRIVATE
    return (b"\0\0\0\0" + provider.bytes_le + struct.pack("<H", kind) + replica.bytes_le
            + gc_bytes(folder_gc) + b"\0\0" + replica.bytes_le + gc_bytes(message_gc) + b"\0\0")


def parse_entry_id(raw: bytes) -> tuple[str, uuid.UUID, int, int | None]:
    """``("folder"|"message", provider, folder_gc, message_gc or None)``.

    Raises :class:`InvalidArgument` for anything that is not one of the two forms.
    """
    if len(raw) == 46:
        kind = struct.unpack_from("<H", raw, 20)[0]
        if kind not in (FOLDER_TYPE_PRIVATE, FOLDER_TYPE_PUBLIC):
            raise InvalidArgument(f"not a folder entry id (type 0x{kind:04X})")
        return "folder", uuid.UUID(bytes_le=raw[4:20]), int.from_bytes(raw[38:44], "big"), None
    if len(raw) == 70:
        kind = struct.unpack_from("<H", raw, 20)[0]
        if kind not in (MESSAGE_TYPE_PRIVATE, MESSAGE_TYPE_PUBLIC):
            raise InvalidArgument(f"not a message entry id (type 0x{kind:04X})")
        return ("message", uuid.UUID(bytes_le=raw[4:20]), int.from_bytes(raw[38:44], "big"),
                int.from_bytes(raw[62:68], "big"))
    raise InvalidArgument(f"an entry id of {len(raw)} bytes is neither a folder's nor a message's")


def store_entry_id(server: str, mailbox_dn: str, public: bool = False) -> bytes:
    """MS-OXCDATA 2.2.4.3 Store Object EntryID, wrapped for emsmdb.dll."""
    provider = PUBLIC_PROVIDER_UID if public else PRIVATE_PROVIDER_UID
    wrapped_type = 0x06 if public else 0x0C
    return (b"\0\0\0\0" + STORE_WRAP_UID + b"\0\0" + b"emsmdb.dll\0" + b"\0\0\0\0" + provider
            + struct.pack("<I", wrapped_type) + server.encode("ascii") + b"\0"
            + mailbox_dn.encode("ascii") + b"\0")
