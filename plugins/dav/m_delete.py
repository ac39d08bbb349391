"""DELETE of an item or of a collection a user made.

Both go to Deleted Items, as deleting in Outlook does, so other protocols see
the same; the default folders (Calendar, Tasks, Contacts) cannot be deleted.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.store import Private, dav, messages
from gateway.store.rights import Rights
from gateway.store.txn import Txn
from plugins.dav import body, collections, resources, scheduling
from plugins.dav.errors import DavError
from plugins.dav.resources import Collection, Context, Item


async def handle(ctx: Context, request: Request) -> Response:
    res = await resources.resolve(ctx, body.path_of(request))
    if isinstance(res, Item):
        if res.ref is None:
            raise DavError(404, message="no such item")
        body.check_preconditions(request, res.ref.etag)
        resources.require(res.collection.rights, Rights.DELETE_ANY, "delete this item")
        await scheduling.before_delete(ctx, res.collection, res.ref, request.headers)
        expected = res.ref.change_number if request.headers.get("if-match") else None
        mid = res.ref.id

        def delete(txn: Txn) -> None:
            dav.check_unchanged(txn, mid, expected)
            messages.delete(txn, [mid], hard=False)

        try:
            await res.collection.mbox.write(delete)
        except dav.Changed:
            raise DavError(412, message="If-Match failed: the item changed meanwhile") \
                from None
        return Response(status_code=204)
    if isinstance(res, Collection):
        if res.folder.id in collections.FIXED or res.folder.id == int(Private.IPM_SUBTREE):
            raise DavError(403, message="a default folder cannot be deleted")
        # Rights, not the URL's owner: the owner holds them all in their own store, and a
        # collection in their home may live elsewhere (the GAL, in the public store).
        resources.require(res.rights, Rights.FOLDER_OWNER, "delete this collection")
        await res.mbox.delete_folder(res.folder.id, hard=False)
        return Response(status_code=204)
    raise DavError(403, message="this resource cannot be deleted")
