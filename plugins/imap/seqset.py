"""IMAP sequence sets: parse "1:3,5,7:*" (RFC 3501 sequence-set, RFC 5182 "$") and format them.

A set is kept as its ranges with "*" unresolved; `resolve` turns it into sorted,
merged, inclusive ranges once the caller knows the largest number in use, and
`iter_values` walks it against the sorted UIDs (or sequence numbers) that exist.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

MAX_ELEMENTS = 10_000
MAX_NUMBER = 2**32 - 1
STAR = 0  # stands for "*" inside a range until resolved (0 is never a valid number)

_NUMBER = re.compile(r"[0-9]{1,10}")


def _number(text: str, element: str) -> int:
    if text == "*":
        return STAR
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"invalid number {text[:20]!r} in sequence set element "
                         f"{element[:40]!r}")
    value = int(text)
    if value < 1 or value > MAX_NUMBER:
        raise ValueError(f"number {text} out of range 1..{MAX_NUMBER}")
    return value


class SequenceSet:
    """A parsed sequence set; "*" is resolved later against the largest number in use."""

    __slots__ = ("_ranges", "_saved")

    def __init__(self, ranges: Sequence[tuple[int, int]] = (), *, saved: bool = False) -> None:
        self._ranges = tuple(ranges)
        self._saved = saved

    @classmethod
    def parse(cls, text: str) -> SequenceSet:
        """Parse a sequence set; ValueError with a reason when malformed or over the limits."""
        if not isinstance(text, str) or not text:
            raise ValueError("empty sequence set")
        if text == "$":
            return cls(saved=True)
        if text.count(",") >= MAX_ELEMENTS:
            raise ValueError(f"sequence set has more than {MAX_ELEMENTS} elements")
        ranges: list[tuple[int, int]] = []
        for element in text.split(","):
            if not element:
                raise ValueError(f"empty element in sequence set {text[:40]!r}")
            parts = element.split(":")
            if len(parts) == 1:
                value = _number(parts[0], element)
                ranges.append((value, value))
            elif len(parts) == 2:
                ranges.append((_number(parts[0], element), _number(parts[1], element)))
            else:
                raise ValueError(f"invalid range {element[:40]!r} in sequence set")
        return cls(ranges)

    @classmethod
    def from_values(cls, values: Iterable[int]) -> SequenceSet:
        """A set holding exactly these numbers (used for a resolved "$")."""
        return cls([(v, v) for v in values])

    @property
    def is_saved(self) -> bool:
        """True for "$" (RFC 5182 SEARCHRES): the caller substitutes the saved result."""
        return self._saved

    @property
    def uses_star(self) -> bool:
        return any(STAR in pair for pair in self._ranges)

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """Inclusive (low, high) ranges, sorted and merged; "*" is `largest`.

        n:m equals m:n. Numbers above `largest` are kept (the caller intersects
        with the UIDs in use, or refuses sequence numbers out of range). With an
        empty mailbox (largest 0) "*" matches nothing.
        """
        if self._saved:
            raise ValueError("'$' must be replaced by the saved search result")
        resolved: list[tuple[int, int]] = []
        for low, high in self._ranges:
            low = largest if low == STAR else low
            high = largest if high == STAR else high
            if low > high:
                low, high = high, low
            if high < 1:
                continue
            resolved.append((max(low, 1), high))
        resolved.sort()
        merged: list[tuple[int, int]] = []
        for low, high in resolved:
            if merged and low <= merged[-1][1] + 1:
                if high > merged[-1][1]:
                    merged[-1] = (merged[-1][0], high)
            else:
                merged.append((low, high))
        return merged

    def highest(self, largest: int) -> int:
        """The highest number the set names (0 when none): for checking sequence numbers."""
        ranges = self.resolve(largest)
        return ranges[-1][1] if ranges else 0

    def iter_values(self, largest: int, existing: Sequence[int] | None = None) -> Iterator[int]:
        """Yield the set's numbers in ascending order.

        With `existing` (sorted), yield only its members: a binary search per
        range, so the cost is the ranges plus the output, whatever the ranges span.
        """
        ranges = self.resolve(largest)
        if existing is None:
            for low, high in ranges:
                yield from range(low, high + 1)
            return
        start = 0
        count = len(existing)
        for low, high in ranges:
            index = bisect_left(existing, low, start)
            while index < count and existing[index] <= high:
                yield existing[index]
                index += 1
            start = index
            if start >= count:
                return

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SequenceSet):
            return NotImplemented
        return self._saved == other._saved and self._ranges == other._ranges

    def __hash__(self) -> int:
        return hash((self._saved, self._ranges))

    def __repr__(self) -> str:
        if self._saved:
            return "SequenceSet('$')"
        return f"SequenceSet({format_ranges(self._ranges)!r})"


def format_ranges(ranges: Iterable[tuple[int, int]]) -> str:
    """Ranges (with STAR for "*") → "1:3,5,7:*" without merging."""

    def one(value: int) -> str:
        return "*" if value == STAR else str(value)

    return ",".join(one(lo) if lo == hi else f"{one(lo)}:{one(hi)}" for lo, hi in ranges)


def format_set(values: Iterable[int]) -> str:
    """Numbers → the shortest sequence set: [1, 2, 3, 5, 7, 8, 9] → "1:3,5,7:9" ("" if none)."""
    parts: list[str] = []
    ordered = sorted(set(values))
    index = 0
    while index < len(ordered):
        low = high = ordered[index]
        index += 1
        while index < len(ordered) and ordered[index] == high + 1:
            high = ordered[index]
            index += 1
        parts.append(str(low) if low == high else f"{low}:{high}")
    return ",".join(parts)
