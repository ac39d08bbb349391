"""MKCALENDAR (RFC 4791 5.3.1) and extended MKCOL (RFC 5689) in a user's home.

A calendar holding only VTODO becomes a task folder (``IPF.Task``), one holding only
VJOURNAL a journal folder (``IPF.Journal``), any other calendar an appointment folder
(``IPF.Appointment``) that takes every kind it was made for (all three when the client
named none, as Thunderbird does); an extended MKCOL with ``CARDDAV:addressbook`` in its
resourcetype a contacts folder. The properties in the body are set as PROPPATCH sets
them. The new collection keeps the URL segment it was created at.
"""

from __future__ import annotations

import json
from typing import Any

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

from gateway.store import Collision, Private, permissions
from gateway.store import tags as T
from gateway.store.rights import Rights
from plugins.dav import body, collections, paths, resources
from plugins.dav.errors import DavError
from plugins.dav.m_proppatch import PROTECTED, TIMEZONE, text, valid_timezone
from plugins.dav.resources import Context
from plugins.dav.xmlns import CALDAV, CARDDAV, DAV, tag
from plugins.dav.xmlout import Element, multistatus, response, xml_response


def _props(root: Element | None, outer: str) -> list[Element]:
    if root is None:
        return []
    if root.tag != outer:
        raise DavError(400, message=f"the body is not a {outer}")
    found: list[Element] = []
    for set_ in root:
        if set_.tag != tag(DAV, "set"):
            continue
        for prop in set_:
            if prop.tag == tag(DAV, "prop"):
                found.extend(p for p in prop if isinstance(p.tag, str))
    return found


async def handle(ctx: Context, request: Request) -> Response:
    where = paths.parse(body.path_of(request), ctx.base)
    calendar = request.method == "MKCALENDAR"
    root = await body.xml(ctx, request, required=False)
    given = _props(root, tag(CALDAV, "mkcalendar") if calendar else tag(DAV, "mkcol"))
    if where.kind != "collection":
        raise DavError(403 if where.kind == "item" else 405,
                       tag(CALDAV, "calendar-collection-location-ok") if calendar else None,
                       "collections are made directly in a calendar or address book home")
    if where.owner != ctx.user:
        # the home first: one the user cannot see is a 404 like a user who does not exist
        if not await ctx.user_exists(where.owner):
            raise DavError(404, message=resources.NOT_FOUND)
        await resources.home(ctx, where.owner, where.home)
        mbox = await ctx.store(where.owner)
        rights = Rights(await mbox.read(_subtree_rights, ctx.user))
        resources.require(rights, Rights.CREATE_SUBFOLDER, "create collections here")
    mbox = await ctx.store(where.owner)
    if await mbox.read(collections.find, where.home, where.collection, ctx.user) is not None:
        raise DavError(405, tag(DAV, "resource-must-be-null"), "that collection exists")
    if collections.RESERVED.match(where.collection):
        raise DavError(403, message="that name is reserved")
    kind = "calendar"
    # No component set named: any of them, as RFC 4791 5.3.1 leaves it to the server.
    wanted = set(collections.CALENDAR_CLASSES.values())
    folder_props: dict[Any, Any] = {}
    dead: dict[str, str] = {}
    name = ""
    bad: list[str] = []
    for prop in given:
        if prop.tag == tag(DAV, "resourcetype"):
            types = {t.tag for t in prop}
            if tag(CARDDAV, "addressbook") in types:
                kind = "addressbook"
            elif tag(CALDAV, "calendar") in types or calendar:
                kind = "calendar"
            else:
                bad.append(prop.tag)
        elif prop.tag == tag(DAV, "displayname"):
            name = text(prop)
        elif prop.tag in (tag(CALDAV, "calendar-description"),
                          tag(CARDDAV, "addressbook-description")):
            folder_props[T.PidTagComment] = text(prop) or None
        elif prop.tag == tag(CALDAV, "supported-calendar-component-set"):
            # A store folder holds appointments, tasks or journal entries, one kind: a
            # calendar for VEVENT and VTODO together cannot be made (RFC 4791 5.3.1 fails
            # it whole).
            comps = {c.get("name", "").upper() for c in prop} - {"VTIMEZONE"}
            if comps and comps <= set(collections.CALENDAR_CLASSES.values()):
                wanted = comps
            else:
                bad.append(prop.tag)
        elif prop.tag in PROTECTED or (prop.tag == TIMEZONE and not valid_timezone(text(prop))):
            bad.append(prop.tag)
        else:
            dead[prop.tag] = etree.tostring(prop, encoding="unicode")
    if not calendar and not any(p.tag == tag(DAV, "resourcetype") for p in given):
        raise DavError(403, message="plain MKCOL is not supported; use MKCALENDAR or an "
                                    "extended MKCOL with a resourcetype")
    expected_home = "addressbooks" if kind == "addressbook" else "calendars"
    if where.home != expected_home:
        raise DavError(403, tag(CALDAV, "calendar-collection-location-ok") if calendar else None,
                       f"a {kind} is made in the {expected_home} home")
    if bad:
        ms = multistatus()
        response(ms, body.path_of(request), [], {403: bad,
                                            424: [p.tag for p in given if p.tag not in bad]})
        return xml_response(ms, 403)
    # The folder's class is its first kind (events, else tasks, else journal); a calendar
    # for several kinds keeps the list (collections.COMPONENTS).
    component = next(c for c in collections.CALENDAR_CLASSES.values() if c in wanted)
    container = "IPF.Contact" if kind == "addressbook" else next(
        cls for cls, held in collections.CALENDAR_CLASSES.items() if held == component)
    if kind == "calendar" and len(wanted) > 1:
        dead[collections.COMPONENTS] = json.dumps(sorted(wanted))
    try:
        await mbox.write(collections.create, where.home, where.collection, name, container,
                         folder_props, dead)
    except Collision:  # made by a concurrent request since the check above
        raise DavError(405, tag(DAV, "resource-must-be-null"), "that collection exists") \
            from None
    return Response(status_code=201, headers={"Cache-Control": "no-cache"})


def _subtree_rights(txn: Any, user: str) -> int:
    return int(permissions.rights_for(txn, user, int(Private.IPM_SUBTREE)))
