"""Text matching of CalDAV and CardDAV filters: the collations of RFC 4790 and the match types.

A filter's ``text-match`` names a collation (how text is compared) and, in CardDAV, a match
type (RFC 6352 section 10.5.4). :func:`compile_match` folds the needle once and returns a
predicate to run on many values, so a REPORT over thousands of objects folds each value once
and the needle never again; :func:`match` is the one-shot form.

Collations: ``i;octet`` (exact), ``i;ascii-casemap`` (a-z folded to A-Z, nothing else) and
``i;unicode-casemap`` (RFC 5051: titlecase mapping, then canonical decomposition). Any
other name raises :class:`UnsupportedCollation`, which callers turn into their protocol's
``supported-collation`` precondition.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

OCTET = "i;octet"
ASCII_CASEMAP = "i;ascii-casemap"
UNICODE_CASEMAP = "i;unicode-casemap"
COLLATIONS = (OCTET, ASCII_CASEMAP, UNICODE_CASEMAP)
MATCH_TYPES = ("equals", "contains", "starts-with", "ends-with")


class UnsupportedCollation(ValueError):
    """A collation this server does not implement."""


class UnsupportedMatchType(ValueError):
    """A match type other than equals, contains, starts-with and ends-with."""


_ASCII_UPPER = {code: code - 32 for code in range(ord("a"), ord("z") + 1)}


def _octet(text: str) -> str:
    return text


def _ascii_casemap(text: str) -> str:
    return text.upper() if text.isascii() else text.translate(_ASCII_UPPER)


@lru_cache(maxsize=4096)
def _title(char: str) -> str:
    return char.title()


def _unicode_casemap(text: str) -> str:
    if text.isascii():  # the titlecase of an ASCII letter is its capital; NFD changes nothing
        return text.upper()
    return unicodedata.normalize("NFD", "".join(map(_title, text)))


_FOLDS: dict[str, Callable[[str], str]] = {
    OCTET: _octet, ASCII_CASEMAP: _ascii_casemap, UNICODE_CASEMAP: _unicode_casemap}


def fold(text: str, collation: str) -> str:
    """``text`` as ``collation`` compares it; raises :class:`UnsupportedCollation`."""
    try:
        return _FOLDS[collation](text)
    except KeyError:
        raise UnsupportedCollation(collation) from None


def check(collation: str, match_type: str = "contains") -> None:
    """Raise :class:`UnsupportedCollation` / :class:`UnsupportedMatchType` for unknown names."""
    if collation not in _FOLDS:
        raise UnsupportedCollation(collation)
    if match_type not in MATCH_TYPES:
        raise UnsupportedMatchType(match_type)


def compile_match(needle: str, collation: str, match_type: str = "contains"
                  ) -> Callable[[str], bool]:
    """A predicate telling whether a value matches ``needle`` (folded here, once)."""
    check(collation, match_type)
    folder = _FOLDS[collation]
    folded = folder(needle)
    if match_type == "equals":
        return lambda value: folder(value) == folded
    if match_type == "starts-with":
        return lambda value: folder(value).startswith(folded)
    if match_type == "ends-with":
        return lambda value: folder(value).endswith(folded)
    return lambda value: folded in folder(value)


def match(value: str, needle: str, collation: str, match_type: str = "contains") -> bool:
    """Whether ``value`` matches ``needle`` under ``collation`` and ``match_type``."""
    return compile_match(needle, collation, match_type)(value)


@dataclass(frozen=True)
class TextMatch:
    """A parsed ``text-match`` element: the compiled predicate, and whether it is negated."""

    test: Callable[[str], bool]
    negate: bool = False

    def __call__(self, value: str) -> bool:
        return self.test(value) != self.negate
