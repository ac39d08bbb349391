"""Building AutoDiscover XML answers.

POX answers are written as text by :class:`XmlWriter` (a few dozen elements
per answer, on the hot path of every Outlook start: several times faster than
building an lxml tree); SOAP answers use lxml through :func:`sub`. Both escape
every value and drop characters XML 1.0 cannot carry, so a display name with
a control character cannot break the document.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

from lxml import etree
from starlette.responses import Response

XML_TYPE = "text/xml; charset=utf-8"
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
"""Characters XML 1.0 documents cannot contain."""
_SPECIAL = re.compile('[&<>"\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]')


def clean(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry."""
    return NOT_XML.sub("", text) if NOT_XML.search(text) else text


def escape(text: str) -> str:
    """``text`` for element content or a double-quoted attribute value."""
    if _SPECIAL.search(text) is None:  # the usual case: nothing to do
        return text
    return (clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


class XmlWriter:
    """An XML document written element by element (names are trusted, values escaped)."""

    def __init__(self) -> None:
        self.parts: list[str] = ['<?xml version="1.0" encoding="utf-8"?>\n']

    def open(self, tag: str, **attributes: str) -> None:
        if attributes:
            attrs = "".join(f' {k}="{escape(v)}"' for k, v in attributes.items())
            self.parts.append(f"<{tag}{attrs}>")
        else:
            self.parts.append(f"<{tag}>")

    def close(self, tag: str) -> None:
        self.parts.append(f"</{tag}>")

    def leaf(self, tag: str, text: str, **attributes: str) -> None:
        if attributes:
            self.open(tag, **attributes)
            self.parts.append(f"{escape(text)}</{tag}>")
        else:
            self.parts.append(f"<{tag}>{escape(text)}</{tag}>")

    def data(self) -> bytes:
        return "".join(self.parts).encode("utf-8")


def sub(parent: etree._Element, tag: str, text: str | None = None,
        attrib: dict[str, str] | None = None) -> etree._Element:
    """Append ``tag`` (Clark notation or the parent's namespace) with optional text."""
    if tag[0] != "{":
        parent_tag = parent.tag
        if isinstance(parent_tag, str) and parent_tag[0] == "{":
            tag = parent_tag[:parent_tag.index("}") + 1] + tag
    child = etree.SubElement(parent, tag, {k: clean(v) for k, v in (attrib or {}).items()})
    if text is not None:
        child.text = clean(text)
    return child


def serialize(root: etree._Element) -> bytes:
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="utf-8")
    return data


def bytes_response(data: bytes, status: int = 200,
                   headers: dict[str, str] | None = None) -> Response:
    return Response(data, status_code=status, media_type=XML_TYPE,
                    headers={"cache-control": "no-store", **(headers or {})})


def xml_response(root: etree._Element, status: int = 200,
                 headers: dict[str, str] | None = None) -> Response:
    return bytes_response(serialize(root), status, headers)


def error_time() -> str:
    """The Time attribute of a POX Error: ``HH:MM:SS.fffffff`` (UTC)."""
    now = datetime.now(UTC)
    return now.strftime("%H:%M:%S.") + f"{now.microsecond:06d}0"


def error_id() -> str:
    return str(random.randint(1, 2**31 - 1))
