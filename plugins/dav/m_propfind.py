"""PROPFIND (RFC 4918 9.1): properties of a resource and, with Depth 1, of its members.

Depth infinity is refused (403 ``propfind-finite-depth``), as most servers do.
A Depth 1 on a collection lists its items from one query; their properties
come from that listing, so a calendar of thousands answers in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response

from gateway.store.rights import Rights
from plugins.dav import body, items, paths, principals, props, resources
from plugins.dav.errors import DavError
from plugins.dav.resources import (
    Collection,
    Context,
    Home,
    Item,
    Principal,
    PrincipalCollection,
    Resource,
    Root,
)
from plugins.dav.xmlns import DAV, tag
from plugins.dav.xmlout import (
    Element,
    element,
    multistatus,
    response,
    status_response,
    xml_response,
)

MAX_NAMES = 500
"""Most distinct properties one request may name (every one costs each resource answered)."""


def unique_names(names: Iterable[str]) -> list[str]:
    """The names once each, in order; 400 beyond :data:`MAX_NAMES`."""
    found = list(dict.fromkeys(names))
    if len(found) > MAX_NAMES:
        raise DavError(400, message=f"more than {MAX_NAMES} properties asked for")
    return found


def requested(root: Element | None) -> tuple[str, list[str] | None]:
    """``("prop", names)``, ``("allprop", None)`` or ``("propname", None)``."""
    if root is None:
        return "allprop", None
    if root.tag != tag(DAV, "propfind"):
        raise DavError(400, message="the body is not a DAV:propfind")
    for child in root:
        if child.tag == tag(DAV, "prop"):
            return "prop", unique_names(p.tag for p in child if isinstance(p.tag, str))
        if child.tag == tag(DAV, "allprop"):
            return "allprop", None
        if child.tag == tag(DAV, "propname"):
            return "propname", None
    raise DavError(400, message="DAV:propfind needs prop, allprop or propname")


async def members(ctx: Context, res: Resource) -> list[Resource]:
    """The resources one level below ``res``."""
    base = ctx.base
    if isinstance(res, Root):
        return [PrincipalCollection(paths.href(base, "principals")),
                await resources.home(ctx, ctx.user, "calendars"),
                await resources.home(ctx, ctx.user, "addressbooks")]
    if isinstance(res, PrincipalCollection):
        if res.href.rstrip("/").endswith("/principals"):
                return [PrincipalCollection(paths.href(base, "principals", "users"))]
        return [await resources.principal(ctx, ctx.user)]
    if isinstance(res, Principal) and res.address == ctx.user:
        return [await principals.proxy_group(ctx, res.address, which)
                for which in principals.GROUPS]
    if isinstance(res, Home):
        return list(await resources.children(ctx, res))
    if isinstance(res, Collection):
        if not res.rights & Rights.READ_ANY:  # a folder visible, its items not readable
            return []
        listing = await items.listing(res.mbox, res.folder.id, res.kind)
        if len(listing) > ctx.settings.max_results:
            raise DavError(507, tag(DAV, "number-of-matches-within-limits"),
                           f"more than {ctx.settings.max_results} items")
        return [Item(resources.item_href(res, ref.name), res, ref.name, ref) for ref in listing]
    return []


async def handle(ctx: Context, request: Request) -> Response:
    depth = body.depth(request)
    if depth == "infinity":
        raise DavError(403, tag(DAV, "propfind-finite-depth"), "Depth infinity is not supported")
    mode, names = requested(await body.xml(ctx, request, required=False))
    res = await resources.resolve(ctx, body.path_of(request))
    if isinstance(res, Item) and res.ref is None:
        raise DavError(404, message="no such item")
    targets = [res]
    if depth == "1":
        targets.extend(await members(ctx, res))
    ms = multistatus()
    if mode == "propname":
        for target, found, _ in await props.collect(ctx, targets, None):
            response(ms, target.href, [_empty(e) for e in found])
        return xml_response(ms)
    minimal = body.prefers_minimal(request)
    for target, found, missing in await props.collect(ctx, targets, names):
        response(ms, target.href, found, {} if minimal else {404: missing})
    if not targets:
        status_response(ms, res.href, 404)
    return xml_response(ms, headers={"Preference-Applied": "return=minimal"} if minimal
                        else None)


def _empty(found: Element) -> Element:
    return element(found.tag)
