"""Live properties of every resource type, computed for many resources at once.

:func:`collect` answers "these properties of these resources" with one element
per found property and the names that are missing, so PROPFIND, the multiget
and query REPORTs and sync-collection share it. Items are answered from their
listing row (ETag, type); only ``getcontentlength`` and the data properties need
their bytes, fetched in one batch. Unknown properties of a collection come from
its dead properties; everything else unknown is a 404 in the propstat.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from gateway.store.rights import Rights
from plugins.dav import acl, collections, items, paths, principals, privileges, schedule_boxes
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
from plugins.dav.xmlns import CALDAV, CARDDAV, CS, DAV, ICAL, tag
from plugins.dav.xmlout import Element, element, href_element, sub

D = lambda name: tag(DAV, name)  # noqa: E731
C = lambda name: tag(CALDAV, name)  # noqa: E731
R = lambda name: tag(CARDDAV, name)  # noqa: E731

ALLPROP = {D("resourcetype"), D("displayname"), D("getetag"), D("getcontenttype"),
           D("getcontentlength"), D("getlastmodified"), D("owner"), D("current-user-principal"),
           D("principal-URL"), C("calendar-description"), R("addressbook-description"),
           C("supported-calendar-component-set"), tag(CS, "getctag"), tag(ICAL, "calendar-color")}
"""What ``<D:allprop/>`` returns (RFC 4918 says allprop need not include everything; the
CalDAV and CardDAV data and the expensive reports' properties are left out)."""

BODY_PROPS = {D("getcontentlength"), C("calendar-data"), R("address-data")}

REPORTS = {
    "calendar": [C("calendar-multiget"), C("calendar-query"), C("free-busy-query"),
                 D("sync-collection"), D("expand-property")],
    "addressbook": [R("addressbook-multiget"), R("addressbook-query"), D("sync-collection"),
                    D("expand-property")],
    "other": [D("expand-property"), D("principal-property-search"),
              D("principal-search-property-set")],
}


def _resourcetype(res: Resource) -> Element:
    out = element(D("resourcetype"))
    if isinstance(res, Collection):
        sub(out, D("collection"))
        sub(out, C("calendar") if res.kind == "calendar" else R("addressbook"))
    elif isinstance(res, Principal):
        sub(out, D("collection"))
        sub(out, D("principal"))
    elif res.is_collection:
        sub(out, D("collection"))
    return out


def _supported_reports(kind: str) -> Element:
    out = element(D("supported-report-set"))
    for report in REPORTS[kind]:
        sup = sub(out, D("supported-report"))
        sub(sub(sup, D("report")), report)
    return out


def _user_props(ctx: Context, name: str) -> Element | None:
    """Properties every resource (schedule boxes and proxy groups too) answers about the
    requesting user."""
    base = ctx.base
    if name == D("current-user-principal"):
        return href_element(name, paths.principal_href(base, ctx.user))
    if name == D("principal-collection-set"):
        return href_element(name, paths.href(base, "principals", "users"))
    return None


def _owner_of(res: Resource) -> str | None:
    if isinstance(res, Collection | Home):
        return res.owner
    if isinstance(res, Item):
        return res.collection.owner
    if isinstance(res, Principal):
        return res.address
    return None


def _principal_props(ctx: Context, res: Principal, name: str) -> Element | None:
    base, address = ctx.base, res.address
    if name == D("displayname"):
        return element(name, res.display_name)
    if name == D("principal-URL"):
        return href_element(name, res.href)
    if name == D("alternate-URI-set"):
        return href_element(name, f"mailto:{address}")
    if name == D("group-membership"):
        return href_element(name)
    if name == C("calendar-home-set"):
        return href_element(name, paths.href(base, "calendars", address))
    if name == R("addressbook-home-set"):
        return href_element(name, paths.href(base, "addressbooks", address))
    if name == C("calendar-user-address-set"):
        return href_element(name, f"mailto:{address}", res.href)
    if name == C("schedule-inbox-URL"):
        return href_element(name, paths.href(base, "calendars", address, "inbox"))
    if name == C("schedule-outbox-URL"):
        return href_element(name, paths.href(base, "calendars", address, "outbox"))
    if name == C("calendar-user-type"):
        return element(name, "INDIVIDUAL")
    if name == tag(CS, "email-address-set"):
        out = element(name)
        sub(out, tag(CS, "email-address"), address)
        return out
    if name == R("principal-address"):
        return None
    return None


def _collection_props(ctx: Context, res: Collection, name: str, ctag: int) -> Element | None:
    folder = res.folder
    if name == D("displayname"):
        return element(name, folder.name)
    if name == D("owner"):
        return href_element(name, paths.principal_href(ctx.base, res.owner))
    if name in (tag(CS, "getctag"), D("getetag")):
        return element(name, f'"{ctag:x}"' if name == D("getetag") else f"{ctag:x}")
    if name == D("sync-token"):
        return element(name, sync_token(res))
    if name == D("supported-report-set"):
        return _supported_reports(res.kind)
    if name == D("quota-used-bytes") or name == D("quota-available-bytes"):
        return None
    if res.kind == "calendar":
        if name == C("calendar-description"):
            return element(name, folder.comment) if folder.comment else None
        if name == C("supported-calendar-component-set"):
            out = element(name)
            for component in folder.components:
                sub(out, C("comp")).set("name", component)
            return out
        if name == C("supported-calendar-data"):
            out = element(name)
            typ = sub(out, C("calendar-data"))
            typ.set("content-type", "text/calendar")
            typ.set("version", "2.0")
            return out
        if name == C("max-resource-size"):
            return element(name, str(ctx.settings.max_resource_bytes))
        if name == C("schedule-calendar-transp"):
            out = element(name)
            sub(out, C("opaque"))
            return out
        if name == C("supported-collation-set"):
            out = element(name)
            for collation in ("i;ascii-casemap", "i;octet", "i;unicode-casemap"):
                sub(out, C("supported-collation"), collation)
            return out
    else:
        if name == R("addressbook-description"):
            return element(name, folder.comment) if folder.comment else None
        if name == R("supported-address-data"):
            out = element(name)
            for version in ("3.0", "4.0"):
                typ = sub(out, R("address-data-type"))
                typ.set("content-type", "text/vcard")
                typ.set("version", version)
            return out
        if name == R("max-resource-size"):
            return element(name, str(ctx.settings.max_resource_bytes))
    stored = folder.dead.get(name)
    if stored is not None:
        try:
            return etree.fromstring(stored)
        except etree.XMLSyntaxError:
            return None
    return None


def sync_token(res: Collection) -> str:
    """The token of a complete sync at the collection's latest change: the store's state."""
    return collections.SYNC_PREFIX + res.folder.sync_state


def _item_props(ctx: Context, res: Item, name: str, body: bytes | None) -> Element | None:
    ref = res.ref
    if ref is None:
        return None
    if name == D("getetag"):
        return element(name, ref.etag)
    if name == D("getcontenttype"):
        return element(name, items.CONTENT_TYPES[res.collection.kind])
    if name == D("getcontentlength"):
        return element(name, str(len(body))) if body is not None else None
    if name == D("owner"):
        return href_element(name, paths.principal_href(ctx.base, res.collection.owner))
    return None


def _home_props(ctx: Context, res: Home, name: str) -> Element | None:
    if name == D("owner"):
        return href_element(name, paths.principal_href(ctx.base, res.owner))
    if name == D("displayname"):
        return element(name, res.owner)
    return None


async def collect(ctx: Context, resources: Sequence[Resource], names: Sequence[str] | None,
                  bodies: dict[int, bytes] | None = None
                  ) -> list[tuple[Resource, list[Element], list[str]]]:
    """For each resource: the elements of the properties found and the names missing.
    ``names`` None: allprop (what each resource has of :data:`ALLPROP`)."""
    wanted = list(names) if names is not None else sorted(ALLPROP)
    if bodies is None and any(n in BODY_PROPS for n in wanted):
        bodies = await item_bodies(resources)
    ctags: dict[int, int] = {}
    out = []
    for res in resources:
        found: list[Element] = []
        missing: list[str] = []
        ctag = 0
        if isinstance(res, Collection) and any(
                n in (tag(CS, "getctag"), D("getetag"), D("sync-token")) for n in wanted):
            if res.folder.id not in ctags:
                ctags[res.folder.id], res.folder.sync_state = await res.mbox.read(
                    collections.tag_and_state, res.folder.id)
            ctag = ctags[res.folder.id]
        for name in wanted:
            value = await _one(ctx, res, name, ctag, bodies)
            if value is not None:
                found.append(value)
            elif names is not None:
                missing.append(name)
        out.append((res, found, missing))
    return out


async def item_bodies(resources: Sequence[Resource]) -> dict[int, bytes]:
    """The bytes of the items among ``resources``, fetched per collection in batches."""
    by_coll: dict[int, tuple[Collection, list[items.ItemRef]]] = {}
    for res in resources:
        if isinstance(res, Item) and res.ref is not None:
            entry = by_coll.setdefault(res.collection.folder.id, (res.collection, []))
            entry[1].append(res.ref)
    found: dict[int, bytes] = {}
    for coll, refs in by_coll.values():
        found.update(await items.bodies(coll.mbox, refs, coll.kind))
    return found


async def _one(ctx: Context, res: Resource, name: str, ctag: int,
               bodies: dict[int, bytes] | None) -> Element | None:
    common = _user_props(ctx, name)
    if common is not None:
        return common
    if isinstance(res, schedule_boxes.ScheduleBox):
        return schedule_boxes.prop(ctx, res, name)
    if isinstance(res, principals.ProxyGroup):
        return await principals.proxy_prop(ctx, res, name)
    if name == D("resourcetype"):
        return _resourcetype(res)
    if name == D("current-user-privilege-set"):
        return privileges.current_user_privilege_set(_rights_of(ctx, res))
    if name == D("supported-privilege-set"):
        return privileges.supported_privilege_set()
    if name in acl.NAMES:
        return await acl.acl_prop(ctx, res, name)
    if isinstance(res, Item):
        return _item_props(ctx, res, name, (bodies or {}).get(res.ref.id) if res.ref else None)
    if isinstance(res, Collection):
        return _collection_props(ctx, res, name, ctag)
    if isinstance(res, Principal):
        if name in principals.PRINCIPAL_NAMES:
            return await principals.principal_prop(ctx, res, name)
        return _principal_props(ctx, res, name)
    if isinstance(res, Home):
        return _home_props(ctx, res, name)
    if isinstance(res, Root | PrincipalCollection):
        if name == D("supported-report-set"):
            return _supported_reports("other")
        if name == D("displayname"):
            return None
    return None


def _rights_of(ctx: Context, res: Resource) -> Rights:
    if isinstance(res, Collection):
        return res.rights
    if isinstance(res, Item):
        return res.collection.rights
    owner = _owner_of(res)
    if owner == ctx.user:
        return Rights(0x7FB)
    return Rights.READ_ANY
