"""Building DAV answers: multistatus documents, property elements and error bodies."""

from __future__ import annotations

import re
from collections.abc import Iterable

from lxml import etree
from starlette.responses import Response

from plugins.dav.xmlns import DAV, PREFIXES, tag

NSMAP = {prefix.lower() if prefix != "D" else "D": ns for prefix, ns in PREFIXES.items()}
STATUS_TEXT = {200: "OK", 201: "Created", 204: "No Content", 403: "Forbidden",
               404: "Not Found", 409: "Conflict", 424: "Failed Dependency",
               507: "Insufficient Storage", 400: "Bad Request", 412: "Precondition Failed"}
XML_TYPE = "application/xml; charset=utf-8"

Element = etree._Element
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (control characters a folder
    name from another protocol may hold, lone surrogates): they are dropped, so one odd
    value never turns a whole answer into an error."""
    return _NOT_XML.sub("", text) if _NOT_XML.search(text) else text


def status_line(code: int) -> str:
    return f"HTTP/1.1 {code} {STATUS_TEXT.get(code, '')}".rstrip()


def multistatus() -> Element:
    return etree.Element(tag(DAV, "multistatus"), nsmap=NSMAP)


def sub(parent: Element, clark: str, text: str | None = None) -> Element:
    element = etree.SubElement(parent, clark)
    if text is not None:
        element.text = clean(text)
    return element


def element(clark: str, text: str | None = None) -> Element:
    found = etree.Element(clark)
    if text is not None:
        found.text = clean(text)
    return found


def href_element(clark: str, *hrefs: str) -> Element:
    """``<clark><D:href>h</D:href>...</clark>``."""
    out = etree.Element(clark)
    for href in hrefs:
        sub(out, tag(DAV, "href"), href)
    return out


def response(parent: Element, href: str, found: Iterable[Element],
             failed: dict[int, list[str]] | None = None) -> Element:
    """A ``<D:response>`` with a 200 propstat for ``found`` and one per failing status."""
    resp = sub(parent, tag(DAV, "response"))
    sub(resp, tag(DAV, "href"), href)
    found = list(found)
    if found:
        stat = sub(resp, tag(DAV, "propstat"))
        prop = sub(stat, tag(DAV, "prop"))
        prop.extend(found)
        sub(stat, tag(DAV, "status"), status_line(200))
    for code, names in sorted((failed or {}).items()):
        if not names:
            continue
        stat = sub(resp, tag(DAV, "propstat"))
        prop = sub(stat, tag(DAV, "prop"))
        for name in names:
            sub(prop, name)
        sub(stat, tag(DAV, "status"), status_line(code))
    if not found and not any((failed or {}).values()):
        stat = sub(resp, tag(DAV, "propstat"))
        sub(stat, tag(DAV, "prop"))
        sub(stat, tag(DAV, "status"), status_line(200))
    return resp


def status_response(parent: Element, href: str, code: int) -> Element:
    resp = sub(parent, tag(DAV, "response"))
    sub(resp, tag(DAV, "href"), href)
    sub(resp, tag(DAV, "status"), status_line(code))
    return resp


def serialize(root: Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def xml_response(root: Element, status: int = 207, headers: dict[str, str] | None = None
                 ) -> Response:
    return Response(serialize(root), status_code=status, media_type=XML_TYPE, headers=headers)


def error_response(status: int, condition: str | None, message: str = "") -> Response:
    """``<D:error><condition/></D:error>`` (RFC 4918 16), or plain text without one."""
    if condition is None:
        return Response(clean(message or STATUS_TEXT.get(status, "")) + "\n", status_code=status,
                        media_type="text/plain; charset=utf-8")
    root = etree.Element(tag(DAV, "error"), nsmap=NSMAP)
    root.append(condition_element(condition))
    if message:
        sub(root, tag(DAV, "responsedescription"), message)
    return xml_response(root, status)


def condition_element(condition: str) -> Element:
    if condition.startswith("<"):
        return etree.fromstring(condition.encode())
    return etree.Element(condition)
