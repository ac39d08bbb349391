"""CardDAV ``addressbook-query`` filters and ``address-data`` (RFC 6352 sections 10.4, 10.5).

:func:`parse_filter` turns a ``{CARDDAV}filter`` element into an :class:`AddressbookFilter`
(``test="anyof"``/``"allof"`` on the filter and on each prop-filter, param-filter,
is-not-defined, text-match with collation, ``match-type`` and ``negate-condition``); its
:meth:`AddressbookFilter.matches` runs on a stored vCard, read with the tolerant reader of
:mod:`gateway.convert.vcard`. A filter naming ``item1.EMAIL`` matches that group only; plain
``EMAIL`` matches grouped and ungrouped lines. Values are compared unescaped; structured
values (N, ADR) keep their ``;`` separators.

:func:`parse_address_data` reads the ``{CARDDAV}address-data`` of a request; its
:meth:`AddressDataSpec.render` keeps the properties asked for (with ``novalue``) and always
BEGIN, END, VERSION and UID, plus the lines sharing a group with a kept line (an Apple label
belongs to its ``item1.EMAIL``), and folds the lines again at 75 octets with CRLF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from gateway.convert.vcard import Line, parse_line, read_cards, unescape
from plugins.dav import filter_parsing, text_match
from plugins.dav.errors import DavError
from plugins.dav.filter_parsing import FilterParser, FilterRules
from plugins.dav.xmlns import CARDDAV, tag

SUPPORTED = tag(CARDDAV, "supported-filter")
COLLATION = tag(CARDDAV, "supported-collation")
SUPPORTED_DATA = tag(CARDDAV, "supported-address-data")
VERSIONS = ("3.0", "4.0")
ALWAYS = frozenset({"BEGIN", "END", "VERSION", "UID"})


class ParamFilter(filter_parsing.ParamFilter):
    """A ``param-filter`` on a vCard line."""

    def values(self, prop: Line) -> list[str]:
        return prop.params.get(self.name, [])


@dataclass(frozen=True)
class PropFilter:
    """A ``prop-filter``: absent, or one line passes its tests (anyof or allof)."""

    name: str
    group: str | None = None
    defined: bool = True
    texts: tuple[text_match.TextMatch, ...] = ()
    params: tuple[filter_parsing.ParamFilter, ...] = ()
    all_of: bool = False

    def selects(self, line: Line) -> bool:
        return line.name == self.name and (self.group is None or line.group == self.group)

    def matches(self, card: list[Line]) -> bool:
        lines = [line for line in card if self.selects(line)]
        if not self.defined:
            return not lines
        return any(self._matches_one(line) for line in lines)

    def _matches_one(self, line: Line) -> bool:
        if not self.texts and not self.params:
            return True
        value = unescape(line.text()) if self.texts else ""
        results = (*(t(value) for t in self.texts), *(p.matches(line) for p in self.params))
        return all(results) if self.all_of else any(results)


@dataclass(frozen=True)
class AddressbookFilter:
    """A parsed ``{CARDDAV}filter``; an empty filter matches every card."""

    props: tuple[PropFilter, ...] = ()
    all_of: bool = False

    def matches(self, vcard: bytes) -> bool:
        """Whether the first card in ``vcard`` matches."""
        if not self.props:
            return True
        cards = read_cards(vcard)
        if not cards:
            return False
        card = cards[0]
        results = (p.matches(card) for p in self.props)
        return all(results) if self.all_of else any(results)


# -- parsing the filter ----------------------------------------------------------------

class _Parser(FilterParser):
    rules = FilterRules(CARDDAV, invalid=SUPPORTED, supported=SUPPORTED, collation=COLLATION,
                        default_collation=text_match.UNICODE_CASEMAP, default_test="anyof",
                        name_pattern=re.compile(r"(?:[A-Z0-9-]+\.)?[A-Z0-9-]+"))
    param_filter = ParamFilter

    def prop(self, elem: etree._Element, depth: int) -> PropFilter:
        group, _, name = self.name(elem).rpartition(".")
        kids = self.children(elem, depth)
        group_or_none = group.lower() or None
        if self.not_defined(kids):
            return PropFilter(name, group_or_none, defined=False)
        texts, params = [], []
        for kid in kids:
            if kid.tag == tag(CARDDAV, "text-match"):
                texts.append(self.text_match(kid))
            elif kid.tag == tag(CARDDAV, "param-filter"):
                params.append(self.param(kid, depth + 1))
            else:
                raise DavError(403, SUPPORTED, f"unexpected {kid.tag} in prop-filter")
        return PropFilter(name, group_or_none, True, tuple(texts), tuple(params),
                          not self.any_of(elem))


def parse_filter(elem: etree._Element) -> AddressbookFilter:
    """The ``{CARDDAV}filter`` ``elem`` as an :class:`AddressbookFilter`."""
    if elem is None or elem.tag != tag(CARDDAV, "filter"):
        raise DavError(403, SUPPORTED, "no CARDDAV:filter")
    parser = _Parser()
    props = []
    for kid in parser.children(elem, 1):
        if kid.tag != tag(CARDDAV, "prop-filter"):
            raise DavError(403, SUPPORTED, f"unexpected {kid.tag} in filter")
        props.append(parser.prop(kid, 2))
    return AddressbookFilter(tuple(props), not parser.any_of(elem))


# -- address-data ----------------------------------------------------------------------

@dataclass
class AddressDataSpec:
    """What address data to return: the media type, and all properties or some."""

    content_type: str = "text/vcard"
    version: str = "3.0"
    props: dict[str, bool] | None = field(default=None)  # name -> novalue; None: all

    @property
    def is_identity(self) -> bool:
        """True when the card is returned as stored (no property selection)."""
        return self.props is None

    def render(self, vcard: bytes) -> bytes:
        if self.props is None:
            return vcard
        wanted = self.props
        lines = [(raw, parse_line(raw)) for raw in unfold(vcard)]
        groups = {line.group for _, line in lines
                  if line is not None and line.group and line.name in wanted}
        out = []
        for raw, line in lines:
            if line is None:
                continue
            if line.name in wanted and line.name not in ALWAYS:
                out.append(raw[:len(raw) - len(line.raw)] if wanted[line.name] else raw)
            elif line.name in ALWAYS or (line.group and line.group in groups):
                out.append(raw)
        return b"".join(fold(raw) for raw in out)


def unfold(data: bytes) -> list[bytes]:
    """The logical lines of ``data`` (folding undone, blank lines dropped)."""
    lines: list[list[bytes]] = []
    for physical in re.split(rb"\r\n|\n|\r", data):
        if physical[:1] in (b" ", b"\t") and lines:
            lines[-1].append(physical[1:])
        elif physical.strip():
            lines.append([physical])
    return [b"".join(parts) for parts in lines]


def fold(line: bytes, width: int = 75) -> bytes:
    """One logical line folded at ``width`` octets, never inside a UTF-8 sequence, with CRLF."""
    parts: list[bytes] = []
    start = 0
    while len(line) - start > (room := width if not parts else width - 1):
        cut = start + room
        while cut > start + 1 and (line[cut] & 0xC0) == 0x80:
            cut -= 1
        parts.append(line[start:cut])
        start = cut
    parts.append(line[start:])
    return b"\r\n ".join(parts) + b"\r\n"


def parse_address_data(elem: etree._Element) -> AddressDataSpec:
    """The ``{CARDDAV}address-data`` of a request as an :class:`AddressDataSpec`."""
    content_type = (elem.get("content-type") or "text/vcard").strip().lower()
    version = (elem.get("version") or "3.0").strip()
    if content_type != "text/vcard" or version not in VERSIONS:
        raise DavError(403, SUPPORTED_DATA, f"cannot return {content_type} {version}")
    spec = AddressDataSpec(content_type, version)
    for kid in elem:
        if not isinstance(kid.tag, str):
            continue
        if kid.tag == tag(CARDDAV, "allprop"):
            spec.props = None
            return spec
        if kid.tag == tag(CARDDAV, "prop"):
            name = (kid.get("name") or "").strip().upper()
            if not name:
                raise DavError(400, None, "prop without a name")
            spec.props = spec.props or {}
            spec.props[name] = (kid.get("novalue") or "no").strip().lower() == "yes"
        else:
            raise DavError(400, None, f"unexpected {kid.tag} in address-data")
    return spec
