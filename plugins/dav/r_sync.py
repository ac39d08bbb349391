"""sync-collection (RFC 6578): what changed in a collection since a sync token.

Tokens are the store's own sync states (:mod:`gateway.store.sync`) behind the
prefix ``urn:x-gateway:sync:``; after a complete sync a state is just a change
number, so tokens stay short. A client's ``DAV:limit`` (and ``[dav]
max_sync_items``) cuts the answer: it then carries a 507 response for the
collection and a token that resumes exactly there. A token from another
collection, a garbled one or one older than the deletions the store still
remembers answers 403 ``valid-sync-token`` — the client then syncs from scratch.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.store import InvalidArgument, dav, sync
from gateway.store.rights import Rights
from gateway.store.sync import StateExpired
from gateway.store.txn import Txn
from plugins.dav import body, collections, items, reporting, resources
from plugins.dav.errors import DavError
from plugins.dav.resources import Collection, Context, Item
from plugins.dav.xmlns import DAV, tag
from plugins.dav.xmlout import Element, multistatus, status_response, sub, xml_response

PREFIX = collections.SYNC_PREFIX


def _limit(root: Element) -> int | None:
    for child in root:
        if child.tag == tag(DAV, "limit"):
            for n in child:
                if n.tag == tag(DAV, "nresults"):
                    try:
                        value = int((n.text or "").strip())
                    except ValueError:
                        raise DavError(400, message="nresults is not a number") from None
                    if value <= 0:
                        raise DavError(403, tag(DAV, "number-of-matches-within-limits"))
                    return value
    return None


def _token(root: Element) -> str:
    for child in root:
        if child.tag == tag(DAV, "sync-token"):
            return (child.text or "").strip()
    return ""


def _names_of_gone(txn: Txn, folder_id: int, ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for oid, name in txn.conn.execute(
                f"SELECT object_id, name FROM tombstones WHERE folder_id = ? AND is_folder = 0 "
                f"AND object_id IN ({marks})", (folder_id, *chunk)):
            if name:
                out[oid] = name
    return out


async def handle(ctx: Context, request: Request, root: Element) -> Response:
    res = await resources.resolve(ctx, body.path_of(request))
    if not isinstance(res, Collection):
        raise DavError(403, tag(DAV, "supported-report"), "sync-collection needs a collection")
    resources.require(res.rights, Rights.READ_ANY, "read this collection")
    token = _token(root)
    if token and not token.startswith(PREFIX):
        raise DavError(403, tag(DAV, "valid-sync-token"), "not one of our sync tokens")
    state = token[len(PREFIX):] or None
    limit = min(_limit(root) or ctx.settings.max_sync_items, ctx.settings.max_sync_items)
    wanted = reporting.Request(root)
    folder = res.folder.id
    try:
        result = await res.mbox.read(_sync, folder, state, limit)
    except (InvalidArgument, StateExpired) as exc:
        raise DavError(403, tag(DAV, "valid-sync-token"), str(exc)) from None
    changed = [i.id for i in (*result.added, *result.changed)]
    rows = await res.mbox.read(_rows, folder, changed)
    refs = items.refs(rows, res.kind)
    hits = [Item(resources.item_href(res, r.name), res, r.name, r) for r in refs]
    ms = multistatus()
    await reporting.write_items(ctx, ms, wanted, hits)
    gone = [i.id for i in result.deleted]
    names = await res.mbox.read(_names_of_gone, folder, gone)
    ext = items.EXTENSIONS[res.kind]
    for oid in gone:
        status_response(ms, resources.item_href(res, names.get(oid) or f"gw-{oid}.{ext}"), 404)
    if result.more:
        status_response(ms, res.href, 507)
    sub(ms, tag(DAV, "sync-token"), PREFIX + result.state)
    return xml_response(ms)


def _sync(txn: Txn, folder_id: int, state: str | None, limit: int) -> sync.SyncResult:
    """The changes since ``state``; when complete, with the token the collection's
    DAV:sync-token property shows (its own latest change, read in the same snapshot), so
    a client comparing the two sees nothing new until something in it changes."""
    result = sync.contents(txn, folder_id, state, limit)
    if not result.more:
        result.state = collections.tag_and_state(txn, folder_id)[1]
    return result


def _rows(txn: Txn, folder_id: int, ids: list[int]):  # type: ignore[no-untyped-def]
    return dav.items(txn, folder_id, ids)


