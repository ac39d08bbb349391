"""Restrictions (MS-OXCDATA 2.12): the filter of a table, as a tree of frozen dataclasses.

A restriction is a tree of small frozen dataclasses: :class:`And`, :class:`Or`,
:class:`Not`, :class:`Content`, :class:`Property`, :class:`CompareProps`,
:class:`Bitmask`, :class:`Size`, :class:`Exists` and :class:`SubRestriction`.
Tags are property tags or :class:`~gateway.store.named.NamedProp` values; a
named property the store has never seen exists on no object.

This module holds the tree and the checks of its parts (:func:`relop`,
:func:`resolve`); :mod:`gateway.store.restriction_sql` compiles a tree to SQL.

Semantics follow MS-OXCDATA: a comparison on a property an object lacks is
false (so ``Not`` of it is true); string comparisons ignore case (Unicode
canonical caseless matching); :class:`Content` is case-sensitive unless asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.store import proptypes as pt
from gateway.store.errors import InvalidArgument
from gateway.store.named import NamedProp
from gateway.store.txn import PropKey, Txn

RELOPS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "=", "ne": "!="}
RELOP_CODES = {0: "lt", 1: "le", 2: "gt", 3: "ge", 4: "eq", 5: "ne", 6: "re"}
"""RELOP_LT .. RELOP_RE of MS-OXCDATA 2.12.5, for callers holding wire values."""

# FuzzyLevelLow and FuzzyLevelHigh of a ContentRestriction (MS-OXCDATA 2.12.4).
FL_FULLSTRING = 0x0000
FL_SUBSTRING = 0x0001
FL_PREFIXED = 0x0002
FL_IGNORECASE = 0x0001_0000
FL_IGNORENONSPACE = 0x0002_0000
FL_LOOSE = 0x0004_0000
FUZZY = {FL_FULLSTRING: "full", FL_SUBSTRING: "substring", FL_PREFIXED: "prefix"}


class Restriction:
    """Base of the restriction nodes."""

    __slots__ = ()


@dataclass(frozen=True, init=False)
class And(Restriction):
    """True when every child is; ``And()`` is always true."""

    children: tuple[Restriction, ...]

    def __init__(self, *children: Restriction) -> None:
        object.__setattr__(self, "children", children)


@dataclass(frozen=True, init=False)
class Or(Restriction):
    """True when any child is; ``Or()`` is never true."""

    children: tuple[Restriction, ...]

    def __init__(self, *children: Restriction) -> None:
        object.__setattr__(self, "children", children)


@dataclass(frozen=True)
class Not(Restriction):
    child: Restriction


@dataclass(frozen=True)
class Content(Restriction):
    """A string (or binary) property holds ``value``: whole, as a substring or as a prefix.

    ``ignore_case`` is FL_IGNORECASE; ``loose`` (FL_LOOSE, FL_IGNORENONSPACE) also
    ignores case, and accents and other non-spacing marks.
    """

    tag: PropKey
    value: str | bytes
    fuzzy: str = "substring"
    """``"full"``, ``"substring"`` or ``"prefix"``."""
    ignore_case: bool = False
    loose: bool = False

    @classmethod
    def from_fuzzy_level(cls, tag: PropKey, value: str | bytes, level: int) -> Content:
        """From the wire form: FL_* bits of a ContentRestriction's FuzzyLevel."""
        fuzzy = FUZZY.get(level & 0xFFFF)
        if fuzzy is None:
            raise InvalidArgument(f"fuzzy level 0x{level:08X} is not full, substring or prefix")
        return cls(tag, value, fuzzy, bool(level & FL_IGNORECASE),
                   bool(level & (FL_LOOSE | FL_IGNORENONSPACE)))


@dataclass(frozen=True)
class Property(Restriction):
    """``tag op value``; ``op`` one of lt le gt ge eq ne (or a RELOP_* number).

    On a multi-valued property ``value`` is one element and the restriction is
    true when any element compares so; a list compares the whole value (eq, ne).
    """

    op: str | int
    tag: PropKey
    value: Any


@dataclass(frozen=True)
class CompareProps(Restriction):
    """``tag1 op tag2`` on the same object; both of one type."""

    op: str | int
    tag1: PropKey
    tag2: PropKey


@dataclass(frozen=True)
class Bitmask(Restriction):
    """``tag & mask`` is non-zero (``any_set``, BMR_NEZ) or zero (BMR_EQZ)."""

    tag: PropKey
    mask: int
    any_set: bool = True


@dataclass(frozen=True)
class Size(Restriction):
    """The stored size in bytes of the property's value compared with ``size``."""

    op: str | int
    tag: PropKey
    size: int


@dataclass(frozen=True)
class Exists(Restriction):
    """The object has the property (a ``PT_UNSPECIFIED`` tag: of any type)."""

    tag: PropKey


@dataclass(frozen=True)
class SubRestriction(Restriction):
    """Some recipient (``"recipients"``) or attachment (``"attachments"``) matches."""

    kind: str
    restriction: Restriction


# -- checks of a restriction's parts ------------------------------------------------------------
def relop(op: Any) -> str:
    """The relop name of ``op`` (a name or a RELOP_* number); ``re`` is refused."""
    name = RELOP_CODES.get(op) if isinstance(op, int) and not isinstance(op, bool) else op
    if name == "re":
        raise InvalidArgument("regular-expression comparisons (RELOP_RE) are not supported")
    if not isinstance(name, str) or name not in RELOPS:
        raise InvalidArgument(f"unknown comparison {op!r}; use one of {', '.join(RELOPS)}")
    return name


def resolve(txn: Txn, key: Any) -> tuple[int | None, int]:
    """``(stored tag or None for an unknown named property, its type)`` of a restriction tag."""
    if isinstance(key, NamedProp):
        kind, tag = key.type, txn.resolve(key)
    elif isinstance(key, int) and not isinstance(key, bool):
        kind, tag = pt.prop_type(key), txn.resolve(key)
    else:
        raise InvalidArgument(f"{key!r} is not a property tag")
    kind = pt.prop_type(pt.normal_tag(kind & ~pt.MV_INSTANCE))
    if tag is not None:
        tag = pt.change_type(tag, kind)
    return tag, kind
