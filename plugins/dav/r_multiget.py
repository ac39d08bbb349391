"""calendar-multiget (RFC 4791 7.9) and addressbook-multiget (RFC 6352 8.7).

The hrefs must name items of the collection the REPORT is sent to; the others
answer 404 each. All names are looked up in one query and the data of the
found items read in one batch.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from gateway.store.rights import Rights
from plugins.dav import body, items, reporting, resources
from plugins.dav.errors import DavError
from plugins.dav.resources import Collection, Context, Item
from plugins.dav.xmlns import CALDAV, CARDDAV, DAV, tag
from plugins.dav.xmlout import Element, multistatus, status_response, xml_response

KINDS = {tag(CALDAV, "calendar-multiget"): "calendar",
         tag(CARDDAV, "addressbook-multiget"): "addressbook"}


async def handle(ctx: Context, request: Request, root: Element) -> Response:
    res = await resources.resolve(ctx, body.path_of(request))
    hrefs = [(h.text or "").strip() for h in root if h.tag == tag(DAV, "href")]
    if len(hrefs) > ctx.settings.max_results:
        raise DavError(403, tag(DAV, "number-of-matches-within-limits"),
                       f"more than {ctx.settings.max_results} hrefs")
    wanted = reporting.Request(root)
    ms = multistatus()
    if isinstance(res, Item):
        coll: Collection = res.collection
    elif isinstance(res, Collection):
        coll = res
    else:
        for href in hrefs:
            status_response(ms, href, 404)
        return xml_response(ms)
    if KINDS[root.tag] != coll.kind:
        raise DavError(403, tag(DAV, "supported-report"), f"not an {KINDS[root.tag]}")
    resources.require(coll.rights, Rights.READ_ANY, "read this collection")
    prefix = unquote(coll.href)
    names: dict[str, str] = {}
    for href in hrefs:
        path = unquote(urlsplit(href).path)
        if path.startswith(prefix) and "/" not in path[len(prefix):] and path != prefix:
            names[href] = path[len(prefix):]
    found = await items.lookup(coll.mbox, coll.folder.id, list(set(names.values())), coll.kind)
    hits: list[Item] = []
    for href in hrefs:
        ref = found.get(names.get(href, ""))
        if ref is None:
            status_response(ms, href, 404)
        else:
            hits.append(Item(href, coll, ref.name, ref))
    await reporting.write_items(ctx, ms, wanted, hits)
    return xml_response(ms)
