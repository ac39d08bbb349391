"""Property values: checking them against their type and packing them for SQLite.

Python forms: integers for the integer types (``PT_CURRENCY`` as its scaled
64-bit integer, ``PT_ERROR`` as the error code), ``float``, ``bool``, ``str``,
``bytes`` (binary, server ids, serialised restrictions and rule actions),
``uuid.UUID`` for ``PT_CLSID``, ``datetime`` for ``PT_SYSTIME`` (an integer
FILETIME is accepted too), and a ``list`` of these for the multi-valued types.

In SQLite a single value is kept in its natural column type; ``PT_SYSTIME``
as the FILETIME integer (so it sorts and compares in SQL), ``PT_CLSID`` as the
16 bytes of its wire form. A multi-valued property is one blob: a count, then
each element length-prefixed.
"""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.store import proptypes as pt
from gateway.store.errors import InvalidValue

FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_INT_RANGES = {
    pt.PT_SHORT: (-(1 << 15), (1 << 16) - 1),
    pt.PT_LONG: (-(1 << 31), (1 << 32) - 1),
    pt.PT_ERROR: (-(1 << 31), (1 << 32) - 1),
    pt.PT_I8: (-(1 << 63), (1 << 64) - 1),
    pt.PT_CURRENCY: (-(1 << 63), (1 << 63) - 1),
    pt.PT_SYSTIME: (0, (1 << 63) - 1),
}
_BYTES_TYPES = {pt.PT_BINARY, pt.PT_SVREID, pt.PT_SRESTRICTION, pt.PT_ACTIONS}


def to_filetime(value: datetime | int) -> int:
    """100-nanosecond intervals since 1601-01-01 UTC; naive datetimes are taken as UTC."""
    if isinstance(value, int):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def from_filetime(value: int) -> datetime:
    return FILETIME_EPOCH + timedelta(microseconds=value // 10)


def check(tag: int, value: Any) -> Any:
    """``value`` in its canonical Python form for ``tag``'s type, or :class:`InvalidValue`."""
    kind = pt.prop_type(tag)
    if kind & pt.MV_FLAG:
        if not isinstance(value, list | tuple):
            raise InvalidValue(tag, f"a list for a multi-valued type, not {type(value).__name__}")
        return [_check_single(tag, kind & ~pt.MV_FLAG, item) for item in value]
    if kind not in pt.SINGLE_TYPES:
        raise InvalidValue(tag, f"type 0x{kind:04X} cannot be stored")
    return _check_single(tag, kind, value)


def _check_single(tag: int, kind: int, value: Any) -> Any:
    if kind == pt.PT_BOOLEAN:
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        raise InvalidValue(tag, "a boolean")
    if kind in _INT_RANGES:
        if kind == pt.PT_SYSTIME and isinstance(value, datetime):
            value = to_filetime(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidValue(tag, f"an integer, not {type(value).__name__}")
        low, high = _INT_RANGES[kind]
        if not low <= value <= high:
            raise InvalidValue(tag, f"{value} out of range")
        if kind == pt.PT_SYSTIME:
            return from_filetime(value)
        return value
    if kind in (pt.PT_FLOAT, pt.PT_DOUBLE, pt.PT_APPTIME):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise InvalidValue(tag, "a number")
    if kind in (pt.PT_UNICODE, pt.PT_STRING8):
        if isinstance(value, str):
            if "\x00" in value:
                raise InvalidValue(tag, "NUL inside a string")
            return value
        raise InvalidValue(tag, f"a string, not {type(value).__name__}")
    if kind in _BYTES_TYPES:
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        raise InvalidValue(tag, f"bytes, not {type(value).__name__}")
    if kind == pt.PT_CLSID:
        if isinstance(value, uuid.UUID):
            return value
        if isinstance(value, bytes) and len(value) == 16:
            return uuid.UUID(bytes_le=value)
        raise InvalidValue(tag, "a UUID")
    raise InvalidValue(tag, f"type 0x{kind:04X} cannot be stored")


def to_sql(tag: int, value: Any) -> Any:
    """The SQLite form of a checked value."""
    kind = pt.prop_type(tag)
    if kind & pt.MV_FLAG:
        return pack_multi(kind & ~pt.MV_FLAG, value)
    return _single_to_sql(kind, value)


def _single_to_sql(kind: int, value: Any) -> Any:
    if kind == pt.PT_SYSTIME:
        return to_filetime(value)
    if kind == pt.PT_CLSID:
        return value.bytes_le
    if kind == pt.PT_BOOLEAN:
        return int(value)
    return value


def from_sql(tag: int, value: Any) -> Any:
    kind = pt.prop_type(tag)
    if kind & pt.MV_FLAG:
        return unpack_multi(kind & ~pt.MV_FLAG, value)
    return _single_from_sql(kind, value)


def _single_from_sql(kind: int, value: Any) -> Any:
    if kind == pt.PT_SYSTIME:
        return from_filetime(value)
    if kind == pt.PT_CLSID:
        return uuid.UUID(bytes_le=value)
    if kind == pt.PT_BOOLEAN:
        return bool(value)
    return value


def pack_multi(kind: int, values: list[Any]) -> bytes:
    parts = [struct.pack("<I", len(values))]
    for value in values:
        raw = _element_bytes(kind, _single_to_sql(kind, value))
        parts.append(struct.pack("<I", len(raw)))
        parts.append(raw)
    return b"".join(parts)


def unpack_multi(kind: int, packed: bytes) -> list[Any]:
    (count,) = struct.unpack_from("<I", packed)
    offset, values = 4, []
    for _ in range(count):
        (size,) = struct.unpack_from("<I", packed, offset)
        offset += 4
        raw = packed[offset:offset + size]
        offset += size
        values.append(_single_from_sql(kind, _element_value(kind, raw)))
    return values


def _element_bytes(kind: int, value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, float):
        return struct.pack("<d", value)
    if isinstance(value, int):
        return struct.pack("<q", value) if value < (1 << 63) else struct.pack("<Q", value)
    return bytes(value)


def _element_value(kind: int, raw: bytes) -> Any:
    if kind in (pt.PT_UNICODE, pt.PT_STRING8):
        return raw.decode("utf-8")
    if kind in (pt.PT_FLOAT, pt.PT_DOUBLE, pt.PT_APPTIME):
        return struct.unpack("<d", raw)[0]
    if kind in _INT_RANGES:
        return struct.unpack("<q", raw)[0] if kind != pt.PT_I8 else int.from_bytes(
            raw, "little", signed=True)
    return raw


def stored_size(value: Any) -> int:
    """Bytes a SQLite form accounts for (message size, quotas)."""
    if isinstance(value, bytes | str):
        return len(value)
    if isinstance(value, float):
        return 8
    if isinstance(value, int):
        return 8 if value > 0xFFFFFFFF or value < -(1 << 31) else 4
    return 0
