"""FETCH attribute parsing: macros, sections, partials, RFC822 forms and malformed items."""

from __future__ import annotations

import pytest

from plugins.imap.attributes import parse_items
from plugins.imap.errors import Bad
from plugins.imap.parser import tokenize


def items(text: str) -> list:
    return parse_items(tokenize(text.encode())[0])


def test_macros() -> None:
    assert [i.name for i in items("ALL")] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"]
    assert [i.name for i in items("fast")] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]
    assert [i.name for i in items("FULL")][-1] == "BODY"


def test_simple_items_in_order() -> None:
    assert [i.name for i in items("(uid Flags MODSEQ BODYSTRUCTURE body)")] == [
        "UID", "FLAGS", "MODSEQ", "BODYSTRUCTURE", "BODY"]


def test_sections_and_partials() -> None:
    peek, body = items("(BODY.PEEK[HEADER.FIELDS (From \"Subject\")]<0.100> BODY[1.2.MIME])")
    assert peek.peek and not peek.sets_seen and peek.partial == (0, 100)
    assert peek.label == b"BODY[HEADER.FIELDS (FROM SUBJECT)]"
    assert body.sets_seen and body.label == b"BODY[1.2.MIME]" and body.partial is None


def test_rfc822_forms() -> None:
    whole, header, text = items("(RFC822 RFC822.HEADER RFC822.TEXT)")
    assert (whole.label, whole.sets_seen) == (b"RFC822", True)
    assert (header.label, header.sets_seen) == (b"RFC822.HEADER", False)
    assert (text.label, text.sets_seen) == (b"RFC822.TEXT", True)


def test_binary_items() -> None:
    binary, size = items("(BINARY.PEEK[1]<10.20> BINARY.SIZE[1])")
    assert binary.name == "BINARY" and binary.label == b"BINARY[1]" and binary.partial == (10, 20)
    assert size.name == "BINARY.SIZE" and size.label == b"BINARY.SIZE[1]"


@pytest.mark.parametrize("text", [
    "NONSENSE", "(FLAGS ALL)", "()", "BODY[NOPE]", "BODY[1.0]", "BODY[]<5>", "BODY[]<a.b>",
    "BINARY[HEADER]", "BINARY.SIZE[1]<0.5>", "BODY[HEADER.FIELDS ()]", "BODY.PEAK[]",
    "(" + "FLAGS " * 200 + ")",
])
def test_malformed_items(text: str) -> None:
    with pytest.raises(Bad):
        items(text)
