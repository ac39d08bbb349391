"""WebDAV ACL properties (RFC 3744 5): ``DAV:acl``, ``acl-restrictions`` and
``inherited-acl-set``, read from the store's folder permissions.

The ACL of a collection is its folder's: one ACE per member holding rights that
map to a DAV privilege (:mod:`plugins.dav.privileges`), its principal's href,
``DAV:authenticated`` for ``default`` and ``DAV:unauthenticated`` for
``anonymous``; the store's owner and every member with full access to the store
get a protected ACE granting ``DAV:all``. An item's ACL is its collection's, each
ACE marked inherited from it; a home's is just the owner's and full-access ACEs;
a principal grants itself ``all`` and everyone ``read``. As RFC 3744 asks,
``DAV:acl`` is answered only to whom holds ``read-acl`` (FolderOwner on the
folder, or the owner); to everyone else it is missing (404 in the propstat).

The ACL cannot be changed over DAV: the ACL method (:func:`handle`) answers 403
after the usual checks (404 for what the user cannot see, 400 for a body that is
not a ``DAV:acl``); permissions are set through Outlook, EWS or the admin tools.
``acl-restrictions`` says what such an ACL would be: grant-only, without inversion.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.store import StoreError, permissions
from gateway.store.rights import ALL, Rights
from gateway.store.txn import Txn
from plugins.dav import body, paths, privileges, resources
from plugins.dav.errors import DavError
from plugins.dav.principals import ProxyGroup
from plugins.dav.resources import Collection, Context, Home, Item, Principal, Resource
from plugins.dav.xmlns import CALDAV, DAV, tag
from plugins.dav.xmlout import Element, element, href_element, sub

D = lambda name: tag(DAV, name)  # noqa: E731

NAMES = frozenset({D("acl"), D("acl-restrictions"), D("inherited-acl-set")})
"""What :func:`acl_prop` answers."""
FREE_BUSY = tag(CALDAV, "read-free-busy")
WRITE_PARTS = (D("write-content"), D("bind"), D("unbind"), D("write-properties"))

Entry = tuple[str, Rights, bool]
"""``(member, rights, protected)`` of one ACE."""


def compact(held: list[str]) -> list[str]:
    """The privileges to grant in an ACE: an aggregate instead of what it contains."""
    if D("all") in held:
        return [D("all")]
    out = [p for p in held if p not in WRITE_PARTS] if D("write") in held else held
    if D("read") in out:  # CALDAV:read-free-busy is aggregated in DAV:read (RFC 4791 6.1.1)
        out = [p for p in out if p != FREE_BUSY]
    return out


def add_principal(ctx: Context, ace: Element, member: str) -> None:
    out = sub(ace, D("principal"))
    if member == permissions.DEFAULT:
        sub(out, D("authenticated"))
    elif member == permissions.ANONYMOUS:
        sub(out, D("unauthenticated"))
    else:
        sub(out, D("href"), paths.principal_href(ctx.base, member))


def acl_element(ctx: Context, entries: list[Entry], inherited: str | None = None) -> Element:
    out = element(D("acl"))
    for member, rights, protected in entries:
        granted = compact(privileges.held(rights))
        # read-current-user-privilege-set is everyone's; alone it is no grant worth an ACE.
        granted = [p for p in granted if p != D("read-current-user-privilege-set")]
        if not granted:
            continue
        ace = sub(out, D("ace"))
        add_principal(ctx, ace, member)
        grant = sub(ace, D("grant"))
        for name in granted:
            sub(sub(grant, D("privilege")), name)
        if protected:
            sub(ace, D("protected"))
        if inherited is not None:
            sub(sub(ace, D("inherited")), D("href"), inherited)
    return out


def _owners(txn: Txn) -> list[Entry]:
    owners: list[Entry] = [] if txn.info.public else [(txn.info.key, ALL, True)]
    for member, grant in permissions.get_grants(txn).items():
        if grant.full_access and member != txn.info.key:
            owners.append((member, ALL, True))
    return owners


def _folder_entries(txn: Txn, folder_id: int) -> list[Entry]:
    """The ACEs of a folder: owner-equivalents first, then its ACL."""
    owners = _owners(txn)
    seen = {member for member, _, _ in owners}
    return owners + [(member, rights, False) for member, rights in
                     permissions.get_acl(txn, folder_id) if member not in seen]


async def acl_prop(ctx: Context, res: Resource, name: str) -> Element | None:
    """``DAV:acl``, ``acl-restrictions`` or ``inherited-acl-set`` of any resource (None:
    another property, or one the user may not read)."""
    if name == D("acl-restrictions"):
        out = element(name)
        sub(out, D("grant-only"))
        sub(out, D("no-invert"))
        return out
    if name == D("inherited-acl-set"):
        if isinstance(res, Item):
            return href_element(name, res.collection.href)
        return href_element(name)
    if name != D("acl"):
        return None
    try:
        return await _acl(ctx, res)
    except StoreError:
        return None


async def _acl(ctx: Context, res: Resource) -> Element | None:
    if isinstance(res, Collection | Item):
        coll = res.collection if isinstance(res, Item) else res
        if not coll.rights & Rights.FOLDER_OWNER:
            return None
        entries = await coll.mbox.read(_folder_entries, coll.folder.id)
        return acl_element(ctx, entries, coll.href if isinstance(res, Item) else None)
    if isinstance(res, Home):
        if res.mbox is None or res.owner != ctx.user:
            return None
        return acl_element(ctx, await res.mbox.read(_owners))
    if isinstance(res, Principal | ProxyGroup):
        owner = res.address if isinstance(res, Principal) else res.owner
        if owner != ctx.user:
            return None
        return acl_element(ctx, [(owner, ALL, True),
                                 (permissions.DEFAULT, Rights.READ_ANY, True)])
    return None


async def handle(ctx: Context, request: Request) -> Response:
    """The ACL method (RFC 3744 8.1): not supported, 403 once the request is known valid."""
    res = await resources.resolve(ctx, body.path_of(request))
    if isinstance(res, Item) and res.ref is None:
        raise DavError(404, message=resources.NOT_FOUND)
    root = await body.xml(ctx, request)
    if root is None or root.tag != D("acl"):
        raise DavError(400, message="the body is not a DAV:acl")
    raise DavError(403, message="access control lists cannot be changed over WebDAV; "
                                "use Outlook, EWS or the administration tools")
