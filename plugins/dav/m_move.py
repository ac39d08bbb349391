"""MOVE of an item to another collection of the same kind in the same store (RFC 4918 9.9).

The message moves (a deletion in the source, an addition in the target for every
protocol) and keeps the name given by the Destination header. Moving
collections, or across stores, is refused with 403 / 502.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

from gateway.store import dav, messages
from gateway.store.rights import Rights
from gateway.store.txn import Txn
from plugins.dav import body, items, paths, resources
from plugins.dav.errors import DavError
from plugins.dav.resources import Context, Item
from plugins.dav.xmlns import CALDAV, CARDDAV, tag
from plugins.dav.xmlout import href_element


async def handle(ctx: Context, request: Request) -> Response:
    res = await resources.resolve(ctx, body.path_of(request))
    if not isinstance(res, Item) or res.ref is None:
        raise DavError(403 if not isinstance(res, Item) else 404,
                       message="only items can be moved")
    destination = request.headers.get("destination", "")
    if not destination:
        raise DavError(400, message="MOVE needs a Destination header")
    try:
        parts = urlsplit(destination)
    except ValueError:
        raise DavError(400, message="the Destination header is not a URL") from None
    host = request.headers.get("host", "")
    if parts.netloc and host and parts.netloc.lower() != host.lower():
        raise DavError(502, message="the Destination is on another server")
    target_path = parts.path
    where = paths.parse(target_path, ctx.base)
    if where.kind != "item" or where.home != res.collection.home:
        raise DavError(403, message="the destination is not an item of the same kind")
    if where.owner != res.collection.owner:
        raise DavError(502, message="moving between users' stores is not supported")
    target = await resources.resolve(ctx, target_path)
    assert isinstance(target, Item)
    body.check_preconditions(request, res.ref.etag)
    overwrite = request.headers.get("overwrite", "T").upper() != "F"
    if target.ref is not None and not overwrite:
        raise DavError(412, message="the destination exists and Overwrite is F")
    if target.ref is not None and target.ref.id == res.ref.id:
        raise DavError(403, message="source and destination are the same")
    resources.require(res.collection.rights, Rights.DELETE_ANY, "move this item away")
    resources.require(target.collection.rights, Rights.CREATE, "add items there")
    source_folder, dest = res.collection.folder, target.collection.folder
    if res.collection.kind == "calendar":
        component = await items.component_of(res.collection.mbox, res.ref.id,
                                             source_folder.component)
        if component not in dest.components:
            raise DavError(403, tag(CALDAV, "supported-calendar-component"),
                           f"the destination holds {', '.join(dest.components)}")
    mid, dest_folder = res.ref.id, dest.id
    replaced = target.ref.id if target.ref is not None else None
    key = items.UID_KEYS[res.collection.kind]
    mbox = res.collection.mbox
    uid_value = (await mbox.message(mid, [key])).get(key)
    if uid_value is not None:
        holders = [m for m in await mbox.read(dav.by_prop, dest_folder, key, uid_value)
                   if m not in (mid, replaced)]
        if holders:
            ns = CALDAV if res.collection.kind == "calendar" else CARDDAV
            taken = items.refs(await mbox.read(dav.items, dest_folder, holders[:1]),
                               res.collection.kind)
            href = resources.item_href(target.collection, taken[0].name) if taken else ""
            cond = href_element(tag(ns, "no-uid-conflict"), href)
            raise DavError(403, etree.tostring(cond, encoding="unicode"),
                           "the destination has an item with this UID")

    fmt = items.FORMATS[res.collection.kind]

    expected = res.ref.change_number if request.headers.get("if-match") else None

    def move(txn: Txn) -> None:
        dav.check_unchanged(txn, mid, expected)
        kept = dav.renders(txn, [mid], fmt).get(mid)
        if replaced is not None:
            messages.delete(txn, [replaced], hard=True)
        new_id = messages.move(txn, [mid], dest_folder, renumber=True)[mid]
        txn.write_props("message_props", new_id, {dav.DAV_NAME: target.name})
        cn = dav.change_number(txn, new_id)
        if kept is not None and cn is not None:  # the same bytes answer at the new place
            dav.keep_renders(txn, fmt, {new_id: (cn, kept)})

    try:
        await res.collection.mbox.write(move)
    except dav.Changed:
        raise DavError(412, message="If-Match failed: the item changed meanwhile") from None
    return Response(status_code=204 if replaced is not None else 201)
