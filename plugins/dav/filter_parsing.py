"""What CalDAV and CardDAV filter parsing share (RFC 4791 section 9.7, RFC 6352 section 10.5).

Both filters nest ``prop-filter``, ``param-filter``, ``is-not-defined`` and ``text-match``
the same way. They differ in their namespace, in the precondition a malformed filter fails
(CalDAV ``valid-filter``, CardDAV ``supported-filter``), in the default collation and in the
default ``test`` (CalDAV ``allof``, CardDAV ``anyof``): :class:`FilterRules` names those
differences. :class:`FilterParser` counts elements and depth and reads ``name``, ``test``,
``is-not-defined``, ``text-match`` and ``param-filter``; each protocol's parser builds the
rest of its tree on it. :class:`ParamFilter` is the parsed ``param-filter``; each protocol
says where a property's parameter values are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

from plugins.dav import text_match
from plugins.dav.errors import DavError
from plugins.dav.xmlns import tag

MAX_DEPTH = 16
"""Deepest nesting of filter elements (the ``filter`` element is depth 1)."""
MAX_ELEMENTS = 1000
"""Most elements in one filter."""
MAX_TEXT = 65536
"""Longest text-match (characters)."""
TESTS = ("allof", "anyof")


@dataclass(frozen=True)
class FilterRules:
    """How one protocol's filters differ from the other's."""

    namespace: str
    invalid: str
    """The precondition a malformed filter fails."""
    supported: str
    """The ``supported-filter`` precondition."""
    collation: str
    """The ``supported-collation`` precondition."""
    default_collation: str
    default_test: str
    """``allof`` or ``anyof``: the ``test`` of an element without one."""
    own_namespace_only: bool = False
    """Every filter element must be in :attr:`namespace` (else ``supported-filter``)."""
    name_pattern: re.Pattern[str] | None = None
    """What a ``name`` attribute (upper-cased) must look like, if anything beyond not empty."""

    def tag(self, name: str) -> str:
        """The Clark name of the filter element ``name`` in this protocol's namespace."""
        return tag(self.namespace, name)


@dataclass(frozen=True)
class ParamFilter:
    """A ``param-filter``: the parameter is absent, or present (and one value matches)."""

    name: str
    defined: bool = True
    text: text_match.TextMatch | None = None

    def values(self, prop: Any) -> list[str]:
        """The values of the parameter :attr:`name` on ``prop`` (a protocol's property)."""
        raise NotImplementedError

    def matches(self, prop: Any) -> bool:
        values = self.values(prop)
        if not self.defined:
            return not values
        return bool(values) and (self.text is None or any(map(self.text, values)))


class FilterParser:
    """Reads the parts of a filter both protocols have, counting elements and depth."""

    rules: FilterRules
    param_filter: type[ParamFilter] = ParamFilter

    def __init__(self) -> None:
        self.elements = 0

    def children(self, elem: etree._Element, depth: int) -> list[etree._Element]:
        """The child elements of ``elem`` at ``depth``, within the limits."""
        if depth > MAX_DEPTH:
            raise DavError(403, self.rules.invalid, f"filter nested deeper than {MAX_DEPTH}")
        found = [child for child in elem if isinstance(child.tag, str)]
        self.elements += len(found)
        if self.elements > MAX_ELEMENTS:
            raise DavError(403, self.rules.invalid,
                           f"filter has more than {MAX_ELEMENTS} elements")
        if self.rules.own_namespace_only:
            for child in found:
                if not child.tag.startswith("{" + self.rules.namespace + "}"):
                    raise DavError(403, self.rules.supported,
                                   f"unknown filter element {child.tag}")
        return found

    def name(self, elem: etree._Element) -> str:
        """The ``name`` attribute of a comp-, prop- or param-filter, upper-cased."""
        name = (elem.get("name") or "").strip().upper()
        pattern = self.rules.name_pattern
        if pattern is not None and (not name or not pattern.fullmatch(name)):
            raise DavError(403, self.rules.invalid,
                           f"{etree.QName(elem).localname} without a valid name")
        if not name:
            raise DavError(403, self.rules.invalid,
                           f"{etree.QName(elem).localname} without a name")
        return name

    def not_defined(self, kids: list[etree._Element]) -> bool:
        """Whether ``kids`` is a lone ``is-not-defined``."""
        if not any(k.tag == self.rules.tag("is-not-defined") for k in kids):
            return False
        if len(kids) > 1:
            raise DavError(403, self.rules.invalid, "is-not-defined stands alone")
        return True

    def any_of(self, elem: etree._Element) -> bool:
        """Whether the ``test`` attribute of ``elem`` (or the default) is ``anyof``."""
        default = self.rules.default_test
        test = (elem.get("test") or default).strip().lower()
        if test not in TESTS:
            other = next(t for t in TESTS if t != default)
            raise DavError(403, self.rules.invalid,
                           f"test is {default} or {other}, not {test[:20]!r}")
        return test == "anyof"

    def param(self, elem: etree._Element, depth: int) -> ParamFilter:
        """A ``param-filter``: ``is-not-defined``, or at most one ``text-match``."""
        name = self.name(elem)
        kids = self.children(elem, depth)
        if self.not_defined(kids):
            return self.param_filter(name, defined=False)
        if len(kids) > 1 or (kids and kids[0].tag != self.rules.tag("text-match")):
            raise DavError(403, self.rules.invalid, "param-filter takes one text-match")
        return self.param_filter(name, True, self.text_match(kids[0]) if kids else None)

    def text_match(self, elem: etree._Element) -> text_match.TextMatch:
        """A ``text-match``: its needle compiled for its collation and match type."""
        needle = elem.text or ""
        if len(needle) > MAX_TEXT:
            raise DavError(403, self.rules.invalid,
                           f"text-match longer than {MAX_TEXT} characters")
        negate = (elem.get("negate-condition") or "no").strip().lower()
        if negate not in ("yes", "no"):
            raise DavError(403, self.rules.invalid, "negate-condition is yes or no")
        collation = elem.get("collation") or self.rules.default_collation
        try:  # RFC 4791 matches substrings; Apple clients may name a CardDAV match-type
            test = text_match.compile_match(needle, collation,
                                            elem.get("match-type") or "contains")
        except text_match.UnsupportedCollation:
            raise DavError(403, self.rules.collation,
                           f"unsupported collation {collation[:40]!r}") from None
        except text_match.UnsupportedMatchType:
            raise DavError(403, self.rules.supported, "match-type is equals, contains, "
                                                      "starts-with or ends-with") from None
        return text_match.TextMatch(test, negate == "yes")
