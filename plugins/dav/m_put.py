"""PUT of a calendar object or vCard into a collection (RFC 4791 5.3.2, RFC 6352 6.3.2).

The body is checked before anything is written: its media type, its size
(``max-resource-size``), that it is one valid object of a component the
collection holds, and that no other item of the collection has its UID
(``no-uid-conflict``). If-Match / If-None-Match guard against lost updates.
The item is then created or replaced in one transaction, with the client's
bytes kept, so the ETag returned is the one a later GET gives with those bytes.
"""

from __future__ import annotations

import asyncio

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

from gateway.store import Collision, dav
from gateway.store.rights import Rights
from gateway.xmlsafe import BodyTooLarge, read_body
from plugins.dav import body, items, paths, resources, scheduling
from plugins.dav.errors import DavError
from plugins.dav.items import ItemRef
from plugins.dav.resources import Collection, Context, Item
from plugins.dav.xmlns import CALDAV, CARDDAV, tag
from plugins.dav.xmlout import href_element

MEDIA = {"calendar": ("text/calendar",), "addressbook": ("text/vcard", "text/x-vcard")}


async def handle(ctx: Context, request: Request) -> Response:
    path = body.path_of(request)
    try:
        res = await resources.resolve(ctx, path)
    except DavError as exc:
        where = paths.parse(path, ctx.base)
        if exc.status == 404 and where.kind == "item" and where.owner == ctx.user:
            raise DavError(409, message="no such collection: create it first") from None
        raise
    if not isinstance(res, Item):
        raise DavError(405, message="PUT goes to an item inside a calendar or address book")
    coll, kind = res.collection, res.collection.kind
    ns = CALDAV if kind == "calendar" else CARDDAV
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media not in MEDIA[kind]:
        condition = "supported-calendar-data" if kind == "calendar" else "supported-address-data"
        raise DavError(415 if media.startswith("application/") else 403, tag(ns, condition),
                       f"{media} is not accepted here")
    body.check_preconditions(request, res.ref.etag if res.ref else None)
    if res.ref is None:
        resources.require(coll.rights, Rights.CREATE, "add items here")
    else:
        resources.require(coll.rights, Rights.EDIT_ANY, "change this item")
    try:
        data = await read_body(request, ctx.settings.max_resource_bytes)
    except BodyTooLarge:
        raise DavError(403, tag(ns, "max-resource-size"),
                       f"larger than {ctx.settings.max_resource_bytes} bytes") from None
    if len(res.name) > items.MAX_NAME:
        raise DavError(400, message="name too long")
    if res.ref is None and items.FALLBACK.match(res.name):
        raise DavError(403, message="names gw-<number> are kept for items other protocols "
                                    "make; choose another name")
    data = _utf8(data, request.headers.get("content-type", ""), ns, kind)
    if kind == "calendar":
        parsed = await asyncio.to_thread(items.parse_calendar_object, data)
        if parsed.component not in coll.folder.components:
            raise DavError(403, tag(CALDAV, "supported-calendar-component"),
                           f"this collection holds {', '.join(coll.folder.components)}")
    else:
        parsed = await asyncio.to_thread(items.parse_vcard_object, data)
    if res.ref is not None and not await items.same_uid(coll.mbox, res.ref.id, parsed):
        # Overwriting an item with another UID is refused (RFC 4791 5.3.2.1, RFC 6352
        # 6.3.2.1): the holder named is the item itself. Other items with the UID are
        # found inside the write (dav.put_item), where concurrent PUTs cannot race it.
        raise await _uid_conflict(coll, res.ref.id, ns)
    plan = await scheduling.before_put(ctx, coll, res.ref, parsed.calendar or data,
                                       request.headers)
    create_only = request.headers.get("if-none-match", "").strip() == "*"
    try:
        message_id, cn, created = await coll.mbox.write(
            dav.put_item, coll.folder.id, res.ref.id if res.ref else None, parsed.message,
            res.name, items.FORMATS[kind], data, items.uid_key(parsed), create_only,
            expected_cn(request, res.ref))
    except Collision:
        raise DavError(412, message="If-None-Match failed: the name was taken meanwhile") \
            from None
    except dav.Changed:
        raise DavError(412, message="If-Match failed: the item changed meanwhile") from None
    except dav.UidConflict as exc:
        raise await _uid_conflict(coll, exc.holder, ns) from None
    rewritten = await scheduling.after_put(ctx, coll, parsed, message_id, created, plan)
    # An organizer's copy rewritten with SCHEDULE-STATUS has another ETag than these bytes
    # had: then none is sent, and the client reads the item again (RFC 4791 5.3.4).
    etag = ItemRef(message_id, res.name, cn).etag
    headers = {} if rewritten else {"ETag": etag}
    return Response(status_code=201 if created else 204, headers=headers)


def expected_cn(request: Request, ref: ItemRef | None) -> int | None:
    """With If-Match, the change number the item must still have when written (checked
    inside the write, so of concurrent conditional writes exactly one wins)."""
    if ref is None or request.headers.get("if-match") is None:
        return None
    return ref.change_number


def _utf8(data: bytes, content_type: str, ns: str, kind: str) -> bytes:
    """The body as UTF-8: transcoded from a declared charset, refused when it is not
    text in any (RFC 5545 3.1.4 and RFC 6350 3.1 make UTF-8 the default)."""
    charset = ""
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    condition = tag(ns, "valid-calendar-data" if kind == "calendar" else "valid-address-data")
    try:
        if charset and charset not in ("utf-8", "utf8", "us-ascii"):
            return data.decode(charset).encode("utf-8")
        data.decode("utf-8")
    except (LookupError, UnicodeDecodeError):
        raise DavError(403, condition, f"the body is not text in {charset or 'UTF-8'}") \
            from None
    return data


async def _uid_conflict(coll: Collection, holder: int, ns: str) -> DavError:
    """403 no-uid-conflict naming the item that has the UID (RFC 4791 5.3.2.1)."""
    taken = await coll.mbox.read(dav.items, coll.folder.id, [holder])
    href = resources.item_href(coll, items.refs(taken, coll.kind)[0].name) if taken else \
        coll.href
    cond = href_element(tag(ns, "no-uid-conflict"), href)
    return DavError(403, etree.tostring(cond, encoding="unicode"),
                    "the UID is already used in this collection")
