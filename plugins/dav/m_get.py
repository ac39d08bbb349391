"""GET and HEAD of an item: its iCalendar or vCard, with its ETag.

A GET of a collection answers the whole calendar as one iCalendar stream (or the
address book as concatenated vCards), as Radicale does, for export and for
subscribing clients; other collections answer a short text.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.store.rights import Rights
from plugins.dav import body, items, resources
from plugins.dav.errors import DavError
from plugins.dav.export import whole_collection
from plugins.dav.resources import Collection, Context, Item


async def handle(ctx: Context, request: Request) -> Response:
    res = await resources.resolve(ctx, body.path_of(request))
    if isinstance(res, Collection):
        resources.require(res.rights, Rights.READ_ANY, "read this collection")
        data, media = await whole_collection(res)
        return _answer(request, data, media, {})
    if not isinstance(res, Item):
        return Response("CalDAV/CardDAV collection; use a DAV client\n",
                        media_type="text/plain; charset=utf-8")
    if res.ref is None:
        raise DavError(404, message="no such item")
    resources.require(res.collection.rights, Rights.READ_ANY, "read this item")
    try:
        body.check_preconditions(request, res.ref.etag)
    except DavError as exc:
        if exc.status == 304:
            return Response(status_code=304, headers={"ETag": res.ref.etag})
        raise
    data = (await items.bodies(res.collection.mbox, [res.ref], res.collection.kind)).get(
        res.ref.id)
    if data is None:
        raise DavError(404, message="no such item")
    return _answer(request, data, items.CONTENT_TYPES[res.collection.kind],
                   {"ETag": res.ref.etag})


def _answer(request: Request, data: bytes, media: str, headers: dict[str, str]) -> Response:
    if request.method == "HEAD":
        return Response(status_code=200, media_type=media,
                        headers={**headers, "Content-Length": str(len(data))})
    return Response(data, media_type=media, headers=headers)
