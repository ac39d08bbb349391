"""MAPI property types and tags (MS-OXCDATA 2.11.1): the vocabulary of every property bag.

A property tag is a 32-bit integer: the property id in the high 16 bits, the
type in the low 16. Ids from 0x8000 are named properties, mapped per store.
"""

from __future__ import annotations

from typing import Final

PT_UNSPECIFIED: Final = 0x0000
PT_NULL: Final = 0x0001
PT_SHORT: Final = 0x0002
PT_LONG: Final = 0x0003
PT_FLOAT: Final = 0x0004
PT_DOUBLE: Final = 0x0005
PT_CURRENCY: Final = 0x0006
PT_APPTIME: Final = 0x0007
PT_ERROR: Final = 0x000A
PT_BOOLEAN: Final = 0x000B
PT_OBJECT: Final = 0x000D
PT_I8: Final = 0x0014
PT_STRING8: Final = 0x001E
PT_UNICODE: Final = 0x001F
PT_SYSTIME: Final = 0x0040
PT_CLSID: Final = 0x0048
PT_SVREID: Final = 0x00FB
PT_SRESTRICTION: Final = 0x00FD
PT_ACTIONS: Final = 0x00FE
PT_BINARY: Final = 0x0102
MV_FLAG: Final = 0x1000
"""Multi-valued: ``PT_MV_x = PT_x | MV_FLAG``."""
MV_INSTANCE: Final = 0x2000
"""Table columns only: one row per value of a multi-valued property."""

PT_MV_SHORT: Final = PT_SHORT | MV_FLAG
PT_MV_LONG: Final = PT_LONG | MV_FLAG
PT_MV_FLOAT: Final = PT_FLOAT | MV_FLAG
PT_MV_DOUBLE: Final = PT_DOUBLE | MV_FLAG
PT_MV_CURRENCY: Final = PT_CURRENCY | MV_FLAG
PT_MV_APPTIME: Final = PT_APPTIME | MV_FLAG
PT_MV_I8: Final = PT_I8 | MV_FLAG
PT_MV_STRING8: Final = PT_STRING8 | MV_FLAG
PT_MV_UNICODE: Final = PT_UNICODE | MV_FLAG
PT_MV_SYSTIME: Final = PT_SYSTIME | MV_FLAG
PT_MV_CLSID: Final = PT_CLSID | MV_FLAG
PT_MV_BINARY: Final = PT_BINARY | MV_FLAG

TYPE_NAMES: Final[dict[int, str]] = {
    value: name
    for name, value in dict(globals()).items()
    if name.startswith("PT_") and isinstance(value, int)
}
"""``PT_UNICODE`` for 0x001F, ...; the names MS-OXCDATA uses."""

SINGLE_TYPES: Final = frozenset({
    PT_SHORT, PT_LONG, PT_FLOAT, PT_DOUBLE, PT_CURRENCY, PT_APPTIME, PT_ERROR, PT_BOOLEAN,
    PT_I8, PT_STRING8, PT_UNICODE, PT_SYSTIME, PT_CLSID, PT_SVREID, PT_SRESTRICTION,
    PT_ACTIONS, PT_BINARY,
})
"""The types a property bag stores as one value."""
MULTI_TYPES: Final = frozenset({
    PT_MV_SHORT, PT_MV_LONG, PT_MV_FLOAT, PT_MV_DOUBLE, PT_MV_CURRENCY, PT_MV_APPTIME,
    PT_MV_I8, PT_MV_STRING8, PT_MV_UNICODE, PT_MV_SYSTIME, PT_MV_CLSID, PT_MV_BINARY,
})
STORABLE_TYPES: Final = SINGLE_TYPES | MULTI_TYPES

NAMED_MIN: Final = 0x8000
"""Property ids from here up are named properties (per-store mapping)."""
NAMED_MAX: Final = 0xFFFE


def prop_tag(prop_id: int, prop_type: int) -> int:
    return (prop_id & 0xFFFF) << 16 | (prop_type & 0xFFFF)


def prop_id(tag: int) -> int:
    return (tag >> 16) & 0xFFFF


def prop_type(tag: int) -> int:
    return tag & 0xFFFF


def change_type(tag: int, new_type: int) -> int:
    return (tag & 0xFFFF0000) | (new_type & 0xFFFF)


def is_multi(tag: int) -> bool:
    return bool(tag & MV_FLAG)


def is_named(tag: int) -> bool:
    return prop_id(tag) >= NAMED_MIN


def normal_tag(tag: int) -> int:
    """The tag as stored: 8-bit strings are kept as Unicode (``PT_STRING8`` → ``PT_UNICODE``)."""
    kind = prop_type(tag)
    if kind == PT_STRING8:
        return change_type(tag, PT_UNICODE)
    if kind == PT_MV_STRING8:
        return change_type(tag, PT_MV_UNICODE)
    return tag
