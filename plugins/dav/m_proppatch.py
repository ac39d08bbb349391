"""PROPPATCH (RFC 4918 9.2) of a collection's settings, kept on its folder.

``displayname`` renames the folder, ``calendar-description`` and
``addressbook-description`` are its comment; colour, order, time zone and any
other property are kept as dead properties. Protected properties (resourcetype,
getetag, supported-calendar-component-set of an existing calendar, ...) fail
with 403 ``cannot-modify-protected-property`` and, as RFC 4918 requires, the
whole PROPPATCH then changes nothing (the others answer 424).
"""

from __future__ import annotations

from typing import Any

from icalendar import Calendar
from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

from gateway.store import folders
from gateway.store import tags as T
from gateway.store.dav import DAV_PROPERTIES
from gateway.store.rights import Rights
from gateway.store.txn import Txn
from plugins.dav import body, collections, resources
from plugins.dav.errors import DavError
from plugins.dav.resources import Collection, Context
from plugins.dav.xmlns import CALDAV, CARDDAV, CS, DAV, tag
from plugins.dav.xmlout import Element, multistatus, response, xml_response

PROTECTED = {tag(DAV, n) for n in ("resourcetype", "getetag", "getcontenttype",
                                   "getcontentlength", "getlastmodified", "sync-token",
                                   "current-user-privilege-set", "owner", "supported-report-set",
                                   "current-user-principal", "acl", "lockdiscovery",
                                   "supportedlock")} | {
    tag(CALDAV, "supported-calendar-data"), tag(CALDAV, "max-resource-size"),
    tag(CARDDAV, "supported-address-data"), tag(CARDDAV, "max-resource-size"),
    tag(CS, "getctag")}
COMPONENT_SET = tag(CALDAV, "supported-calendar-component-set")


TIMEZONE = tag(CALDAV, "calendar-timezone")


def valid_timezone(data: str) -> bool:
    """A calendar-timezone value: a VCALENDAR with exactly one VTIMEZONE (RFC 4791 5.2.2)."""
    try:
        cal = Calendar.from_ical(data)
    except Exception:  # icalendar raises several kinds on garbage
        return False
    zones = [c for c in cal.subcomponents if c.name == "VTIMEZONE"]
    return cal.name == "VCALENDAR" and len(zones) == 1


def operations(root: Element) -> list[tuple[str, Element]]:
    """``[("set" | "remove", property element)]`` in document order."""
    if root.tag != tag(DAV, "propertyupdate"):
        raise DavError(400, message="the body is not a DAV:propertyupdate")
    ops = []
    for child in root:
        if child.tag not in (tag(DAV, "set"), tag(DAV, "remove")):
            continue
        op = "set" if child.tag == tag(DAV, "set") else "remove"
        for prop in child:
            if prop.tag != tag(DAV, "prop"):
                continue
            ops.extend((op, p) for p in prop if isinstance(p.tag, str))
    return ops


def text(element: Element) -> str:
    return "".join(element.itertext()).strip()


def changes(coll: Collection, ops: list[tuple[str, Element]]
            ) -> tuple[dict[Any, Any], dict[str, str | None], list[str]]:
    """The folder properties to write, the dead properties to set (None: remove), and the
    names refused."""
    folder_props: dict[Any, Any] = {}
    dead: dict[str, str | None] = {}
    refused = []
    for op, prop in ops:
        name = prop.tag
        if name == tag(DAV, "displayname"):
            value = text(prop) if op == "set" else ""
            if value:
                folder_props[T.PidTagDisplayName] = value
            continue
        if name in (tag(CALDAV, "calendar-description"), tag(CARDDAV, "addressbook-description")):
            folder_props[T.PidTagComment] = (text(prop) or None) if op == "set" else None
            continue
        if name == COMPONENT_SET:
            wanted = {c.get("name", "").upper() for c in prop}
            if op == "set" and wanted == set(coll.folder.components):
                continue
            refused.append(name)
            continue
        if name in PROTECTED:
            refused.append(name)
            continue
        if name == TIMEZONE and op == "set" and not valid_timezone(text(prop)):
            refused.append(name)
            continue
        dead[name] = etree.tostring(prop, encoding="unicode") if op == "set" else None
    return folder_props, dead, refused


async def handle(ctx: Context, request: Request) -> Response:
    root = await body.xml(ctx, request)
    assert root is not None
    res = await resources.resolve(ctx, body.path_of(request))
    ops = operations(root)
    names = [p.tag for _, p in ops]
    ms = multistatus()
    if not isinstance(res, Collection):
        response(ms, res.href, [], {403: names})
        return xml_response(ms)
    resources.require(res.rights, Rights.FOLDER_OWNER, "change this collection's settings")
    folder_props, changed, refused = changes(res, ops)
    if refused:
        response(ms, res.href, [], {403: refused,
                                    424: [n for n in names if n not in refused]})
        return xml_response(ms)
    display = folder_props.pop(T.PidTagDisplayName, None)

    def write(txn: Txn) -> None:
        # merged into what the folder has now, so concurrent PROPPATCHes keep each other's
        dead = collections.dead_properties(txn, res.folder.id)
        for name, value in changed.items():
            if value is None:
                dead.pop(name, None)
            else:
                dead[name] = value
        if display is not None:
            collections.set_display_name(txn, res.folder.id, display, folder_props, dead)
        folder_props[DAV_PROPERTIES] = collections.dump_dead(dead) if dead else None
        folders.set_props(txn, res.folder.id, folder_props)

    await res.mbox.write(write)
    response(ms, res.href, [], {200: names})
    return xml_response(ms)
