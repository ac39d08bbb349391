"""Resources: what a request path names, found in the directory and the stores, with access.

:func:`resolve` turns a :class:`~plugins.dav.paths.DavPath` into one of the
resource classes below, or raises 404. Another user's home, collection or item
is found only when the requesting user may see the folder (ACL rights, or full
access to the store); otherwise it is a 404 exactly as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.auth.http import PRINCIPAL
from gateway.store import Mailbox, NotFound, StoreError
from gateway.store.rights import Rights
from plugins.dav import collections, items, paths
from plugins.dav.collections import FolderInfo
from plugins.dav.errors import DavError
from plugins.dav.items import ItemRef
from plugins.dav.parsed import ParsedCalendars

NOT_FOUND = "no such resource"
"""The one 404 text: the same whether a user, home or collection is missing or hidden."""

if TYPE_CHECKING:
    from gateway.host import Host
    from plugins.dav.settings import DavSection


@dataclass
class Context:
    """One request's view: who asks, where the tree is, and the stores opened for it."""

    host: Host
    settings: DavSection
    user: str
    base: str
    parsed: ParsedCalendars = field(default_factory=lambda: ParsedCalendars(0))
    """The app's cache of parsed calendar objects (:mod:`plugins.dav.parsed`)."""
    stores: dict[str, Mailbox] = field(default_factory=dict)

    @classmethod
    def of(cls, host: Host, scope: dict[str, Any], parsed: ParsedCalendars) -> Context:
        principal = scope[PRINCIPAL]
        section: DavSection = host.config.dav
        return cls(host, section, principal.username.lower(), section.context_path, parsed)

    async def store(self, owner: str) -> Mailbox:
        """The owner's store; 404 when there is none."""
        if owner not in self.stores:
            if not self.host.store.exists(owner):
                raise DavError(404, message=NOT_FOUND)
            try:
                self.stores[owner] = await self.host.store.open(owner)
            except NotFound:
                raise DavError(404, message=NOT_FOUND) from None
        return self.stores[owner]

    async def user_exists(self, address: str) -> bool:
        if address == self.user:
            return True
        found = await self.host.directory.get_user(address)
        return found is not None and found.username.lower() == address


class Resource:
    """Base of all resources: an href and whether it is a collection."""

    href: str
    is_collection = True


@dataclass
class Root(Resource):
    href: str


@dataclass
class PrincipalCollection(Resource):
    href: str


@dataclass
class Principal(Resource):
    href: str
    address: str
    display_name: str = ""


@dataclass
class Home(Resource):
    href: str
    owner: str
    home: str
    """``"calendars"`` or ``"addressbooks"``."""
    mbox: Mailbox | None


@dataclass
class Collection(Resource):
    href: str
    owner: str
    home: str
    mbox: Mailbox
    folder: FolderInfo

    @property
    def kind(self) -> str:
        return self.folder.kind

    @property
    def rights(self) -> Rights:
        return self.folder.rights


@dataclass
class Item(Resource):
    href: str
    collection: Collection
    name: str
    ref: ItemRef | None
    """None: the name is free (a PUT would create it)."""
    is_collection = False


async def resolve(ctx: Context, path: str) -> Resource:
    """The resource at ``path``; 404 when it does not exist or is not visible."""
    where = paths.parse(path, ctx.base)
    base = ctx.base
    if where.kind == "root":
        return Root(paths.href(base))
    if where.kind == "principals":
        return PrincipalCollection(paths.href(base, "principals"))
    if where.kind == "users":
        return PrincipalCollection(paths.href(base, "principals", "users"))
    if not await ctx.user_exists(where.owner):
        raise DavError(404, message=NOT_FOUND)
    if where.kind == "principal":
        return await principal(ctx, where.owner)
    if where.kind == "proxy":
        from plugins.dav import principals  # it builds on this module

        return await principals.proxy_group(ctx, where.owner, where.collection)
    if where.kind == "home":
        return await home(ctx, where.owner, where.home)
    if where.home == "calendars":
        from plugins.dav import schedule_boxes  # it builds on this module

        box = await schedule_boxes.resolve_box(ctx, where.owner, where.collection)
        if box is not None:
            if where.kind == "item":
                raise DavError(404, message="the schedule inbox keeps no items")
            return box
    coll = await collection(ctx, where.owner, where.home, where.collection)
    if where.kind == "collection":
        return coll
    return await item(ctx, coll, where.item)


async def principal(ctx: Context, address: str) -> Principal:
    user = await ctx.host.directory.get_user(address)
    name = user.display_name if user is not None else ""
    return Principal(paths.principal_href(ctx.base, address), address, name or address)


async def home(ctx: Context, owner: str, kind: str) -> Home:
    mbox = await ctx.store(owner) if ctx.host.store.exists(owner) or owner == ctx.user else None
    if owner != ctx.user:
        if mbox is None or not await visible(ctx, mbox, kind):
            raise DavError(404, message=NOT_FOUND)
    return Home(paths.href(ctx.base, kind, owner), owner, kind, mbox)


async def visible(ctx: Context, mbox: Mailbox, kind: str) -> list[FolderInfo]:
    try:
        return await mbox.read(collections.listing, kind, ctx.user)
    except StoreError:
        return []


async def children(ctx: Context, where: Home) -> list[Collection]:
    if where.mbox is None:
        return []
    found = await visible(ctx, where.mbox, where.home)
    out = [Collection(paths.href(ctx.base, where.home, where.owner, info.segment), where.owner,
                      where.home, where.mbox, info) for info in found]
    if where.home == "addressbooks" and where.owner == ctx.user and ctx.settings.gal:
        from plugins.dav import gal  # it builds on this module

        out.append(await gal.gal_collection(ctx, where.owner))
    return out


async def collection(ctx: Context, owner: str, kind: str, segment: str) -> Collection:
    if kind == "addressbooks" and segment.lower() == "gal" and ctx.settings.gal:
        from plugins.dav import gal  # it builds on this module

        return await gal.gal_collection(ctx, owner)
    mbox = await ctx.store(owner)
    info = await mbox.read(collections.find, kind, segment, ctx.user)
    if info is None:
        raise DavError(404, message=NOT_FOUND)
    return Collection(paths.href(ctx.base, kind, owner, info.segment), owner, kind, mbox, info)


async def item(ctx: Context, coll: Collection, name: str) -> Item:
    found = await items.lookup(coll.mbox, coll.folder.id, [name], coll.kind)
    return Item(coll.href + paths.href("", name, collection=False).lstrip("/"), coll, name,
                found.get(name))


def item_href(coll: Collection, name: str) -> str:
    return coll.href + paths.href("", name, collection=False).lstrip("/")


def require(rights: Rights, needed: Rights, what: str) -> None:
    """403 unless ``rights`` hold all of ``needed``."""
    if needed & ~rights:
        raise DavError(403, "{DAV:}need-privileges", f"not allowed to {what}")
