"""FETCH attributes: parsing ``FLAGS``, ``BODY.PEEK[1.2.HEADER.FIELDS (TO)]<0.100>``, macros ...

``parse_items`` turns the FETCH argument (one atom or a parenthesised list)
into ``Item``s in the order asked; the section inside ``[...]`` is handed to
``fetch_data.SectionSpec.parse`` (owned by the fetch module).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from plugins.imap.errors import Bad
from plugins.imap.fetch_data import SectionSpec
from plugins.imap.parser import Token, tokenize

SIMPLE = frozenset({"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY",
                    "BODYSTRUCTURE", "MODSEQ"})
MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
NEEDS_INFO = frozenset({"INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE"})
_SECTION = re.compile(
    r"(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)\[([^\]]*)\](?:<([0-9]{1,10})\.([0-9]{1,10})>)?",
    re.IGNORECASE)
MAX_ITEMS = 100


@dataclass(frozen=True)
class Item:
    """One attribute to fetch.

    ``name`` is the simple attribute (``"FLAGS"``) or, for a section, one of
    ``BODY``/``BINARY``/``BINARY.SIZE``/``RFC822``/``RFC822.HEADER``/``RFC822.TEXT``.
    """

    name: str
    spec: Any = None
    """``fetch_data.SectionSpec`` for sections."""
    partial: tuple[int, int] | None = None
    peek: bool = True
    label: bytes = b""
    """The response's name for a section, without the partial's origin."""

    @property
    def is_section(self) -> bool:
        return self.spec is not None

    @property
    def sets_seen(self) -> bool:
        return self.is_section and not self.peek


def _section_spec(section: str) -> Any:
    fields: list[str] | None = None
    text = section
    if "(" in section:
        text, _, rest = section.partition("(")
        text = text.rstrip(" ")
        try:
            tokens = tokenize(b"(" + rest.encode("utf-8"))
        except ValueError as exc:
            raise Bad(f"FETCH: invalid header field list: {exc}") from None
        if len(tokens) != 1 or not isinstance(tokens[0], list) or not tokens[0]:
            raise Bad("FETCH: invalid header field list")
        fields = []
        for token in tokens[0]:
            if isinstance(token, bytes):
                token = token.decode("utf-8", "replace")
            if not isinstance(token, str) or not token:
                raise Bad("FETCH: header field names must be atoms or strings")
            fields.append(token)
    try:
        return SectionSpec.parse(text, fields)
    except ValueError as exc:
        raise Bad(f"FETCH: invalid section [{section}]: {exc}") from None


def _section_item(text: str) -> Item:
    match = _SECTION.fullmatch(text)
    if match is None:
        raise Bad(f"FETCH: invalid attribute {text[:60]!r}")
    kind, section, origin, count = match.groups()
    kind = kind.upper()
    spec = _section_spec(section)
    partial = (int(origin), int(count)) if origin is not None else None
    if kind == "BINARY.SIZE":
        if partial is not None:
            raise Bad("FETCH: BINARY.SIZE takes no partial")
        return Item("BINARY.SIZE", spec, None, True,
                    b"BINARY.SIZE[" + spec.imap().encode() + b"]")
    binary = kind.startswith("BINARY")
    if binary and spec.text not in ("",):
        raise Bad("FETCH: BINARY takes a part number only")
    label = (b"BINARY[" if binary else b"BODY[") + spec.imap().encode() + b"]"
    return Item("BINARY" if binary else "BODY", spec, partial, kind.endswith(".PEEK"), label)


def _item(token: Token) -> list[Item]:
    if not isinstance(token, str):
        raise Bad("FETCH: expected fetch attributes")
    upper = token.upper()
    if upper in SIMPLE:
        return [Item(upper)]
    if upper == "RFC822":
        return [Item("RFC822", _section_spec(""), None, False, b"RFC822")]
    if upper == "RFC822.HEADER":
        return [Item("RFC822.HEADER", _section_spec("HEADER"), None, True, b"RFC822.HEADER")]
    if upper == "RFC822.TEXT":
        return [Item("RFC822.TEXT", _section_spec("TEXT"), None, False, b"RFC822.TEXT")]
    if "[" in token:
        return [_section_item(token)]
    raise Bad(f"FETCH: unknown attribute {token[:60]!r}")


def parse_items(token: Token) -> list[Item]:
    """The attributes of a FETCH command; ``Bad`` for anything unknown or malformed."""
    if isinstance(token, str) and token.upper() in MACROS:
        return [Item(name) for name in MACROS[token.upper()]]
    tokens = token if isinstance(token, list) else [token]
    if not tokens:
        raise Bad("FETCH: empty attribute list")
    if len(tokens) > MAX_ITEMS:
        raise Bad(f"FETCH: more than {MAX_ITEMS} attributes")
    items: list[Item] = []
    for t in tokens:
        if isinstance(t, str) and t.upper() in MACROS:
            raise Bad("FETCH: ALL, FAST and FULL cannot be combined with other attributes")
        items += _item(t)
    return items
