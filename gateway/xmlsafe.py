"""Reading request bodies and parsing them as XML, treating them as hostile.

The body is read up to ``max_body_bytes`` (a longer ``Content-Length`` or
stream is refused before anything is parsed). The parser resolves no
entities, loads no DTD, touches no network and refuses huge trees; a
document with a DOCTYPE at all is refused, so entity bombs and external
entities never reach libxml2's expansion.
"""

from __future__ import annotations

from lxml import etree
from starlette.requests import Request


class BodyTooLarge(Exception):
    """The request body is over the limit (answered 413)."""


class BadXml(ValueError):
    """Not a well-formed, DTD-free XML document; the message says why."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_comments=True,
                           remove_pis=True)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes; raises :class:`BodyTooLarge`."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge(f"Content-Length {declared} over {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse(data: bytes) -> etree._Element:
    """The root element of ``data``; raises :class:`BadXml`."""
    if not data.strip():
        raise BadXml("empty body")
    head = data[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in data.lower():
        raise BadXml("DOCTYPE and entity declarations are not accepted")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise BadXml(f"not well-formed XML: {exc.msg}") from None
    if root is None:
        raise BadXml("no document element")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise BadXml("DOCTYPE and entity declarations are not accepted")
    return root


def child(parent: etree._Element, tag: str) -> etree._Element | None:
    """The first child named ``tag`` (Clark notation), or None."""
    for element in parent:
        if element.tag == tag:
            return element
    return None


def text_of(parent: etree._Element, *tags: str) -> str:
    """Stripped text of the element reached through child ``tags``; empty when absent."""
    found: etree._Element | None = parent
    for tag in tags:
        found = child(found, tag) if found is not None else None
    return (found.text or "").strip() if found is not None else ""
