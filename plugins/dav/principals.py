"""Principals beyond a user's own properties: the people of a domain, Apple's calendar
proxy groups, and who shares a calendar with whom.

Apple's clients (and others copying them, e.g. DAVx⁵) model calendar delegation
with two group principals below each user principal (calendarserver.org
``calendar-proxy.txt``)::

    <base>/principals/users/<owner>/calendar-proxy-read/
    <base>/principals/users/<owner>/calendar-proxy-write/

Their ``DAV:group-member-set`` is read from the owner's store: the members of
the Calendar folder's ACL holding ReadAny (read group) or EditAny as well (write
group), and the members with full access to the store (write group). The
``default`` entry (everyone) is no one's delegation and is left out. A user's
own principal answers the other direction: ``CS:calendar-proxy-read-for`` /
``-write-for`` list the owners whose Calendar the user may read or write, and
``DAV:group-membership`` those owners' proxy groups. The owners are found with
:func:`gateway.sharing.sharers` (cached a minute per worker). Who delegates to
whom is told only to the owner and to the delegate: others see empty sets. Rights
given to everyone (``default``) make no one a delegate, in either direction.

The people of a domain (for the principal search and the global address list)
are read from the directory in two queries and cached like its other look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from gateway import sharing
from gateway.directory.models import Domains, UserProperties, Users
from gateway.directory.types import PR_DISPLAY_NAME, PR_DISPLAY_TYPE_EX
from gateway.store import Private, StoreError, permissions
from gateway.store.rights import Rights
from gateway.store.txn import Txn
from plugins.dav import paths
from plugins.dav.errors import DavError
from plugins.dav.resources import Context, Principal, Resource
from plugins.dav.xmlns import CALDAV, CS, DAV, tag
from plugins.dav.xmlout import Element, element, href_element, sub

if TYPE_CHECKING:
    from gateway.host import Host

D = lambda name: tag(DAV, name)  # noqa: E731

PROXY_READ = "calendar-proxy-read"
PROXY_WRITE = "calendar-proxy-write"
GROUPS = (PROXY_READ, PROXY_WRITE)
READ_FOR = tag(CS, "calendar-proxy-read-for")
WRITE_FOR = tag(CS, "calendar-proxy-write-for")
CALENDAR = int(Private.CALENDAR)
REPORTS = (D("expand-property"), D("principal-property-search"),
           D("principal-search-property-set"))
"""The reports principals (and the principal collections) answer."""
PRINCIPAL_NAMES = frozenset({D("group-membership"), READ_FOR, WRITE_FOR, D("owner"),
                             D("supported-report-set"), D("group-member-set")})
"""What :func:`principal_prop` answers for a user's principal."""


# -- the people of a domain ---------------------------------------------------------------------
# user_properties tags (PT_UNICODE unless said otherwise) the directory may hold.
PR_GIVEN_NAME = 0x3A06001F
PR_SURNAME = 0x3A11001F
PR_NICKNAME = 0x3A4F001F
PR_TITLE = 0x3A17001F
PR_COMPANY_NAME = 0x3A16001F
PR_DEPARTMENT_NAME = 0x3A18001F
PR_OFFICE_LOCATION = 0x3A19001F
PR_BUSINESS_TELEPHONE_NUMBER = 0x3A08001F
PR_HOME_TELEPHONE_NUMBER = 0x3A09001F
PR_MOBILE_TELEPHONE_NUMBER = 0x3A1C001F
PR_PRIMARY_FAX_NUMBER = 0x3A23001F
PR_STREET_ADDRESS = 0x3A29001F
PR_LOCALITY = 0x3A27001F
PR_STATE_OR_PROVINCE = 0x3A28001F
PR_POSTAL_CODE = 0x3A2A001F
PR_COUNTRY = 0x3A26001F
PR_ATTR_HIDDEN = 0x10F4000B
"""PT_BOOLEAN: hidden from address lists (grommunio reads it as the default hide bits)."""
PR_ATTR_HIDDEN_GROMOX = 0x10F40003
"""PT_LONG: grommunio's hide bits; :data:`AB_HIDE_FROM_GAL` is 0x01."""
AB_HIDE_FROM_GAL = 0x01
AB_HIDE_DEFAULT = 0x03
PEOPLE_TAGS = (PR_DISPLAY_NAME, PR_DISPLAY_TYPE_EX, PR_GIVEN_NAME, PR_SURNAME, PR_NICKNAME,
               PR_TITLE, PR_COMPANY_NAME, PR_DEPARTMENT_NAME, PR_OFFICE_LOCATION,
               PR_BUSINESS_TELEPHONE_NUMBER, PR_HOME_TELEPHONE_NUMBER,
               PR_MOBILE_TELEPHONE_NUMBER, PR_PRIMARY_FAX_NUMBER, PR_STREET_ADDRESS,
               PR_LOCALITY, PR_STATE_OR_PROVINCE, PR_POSTAL_CODE, PR_COUNTRY, PR_ATTR_HIDDEN,
               PR_ATTR_HIDDEN_GROMOX)
DT_MAILUSER, DT_ROOM, DT_EQUIPMENT = 0, 7, 8
STATUS_DELETED = 3
MAX_PEOPLE = 50_000
"""Most directory entries of one domain read; a larger domain is cut (and the GAL with it)."""


@dataclass(frozen=True)
class Person:
    """A directory entry of a domain as address lists show it."""

    id: int
    address: str
    """The primary address, lower case."""
    props: dict[int, str] = field(default_factory=dict)
    """First value of each :data:`PEOPLE_TAGS` tag the directory holds."""
    status: int = 0

    @property
    def display_name(self) -> str:
        return self.props.get(PR_DISPLAY_NAME, "").strip() or self.address

    @property
    def display_type(self) -> int:
        try:
            return int(self.props.get(PR_DISPLAY_TYPE_EX, "0"))
        except ValueError:
            return DT_MAILUSER

    @property
    def hidden(self) -> bool:
        """Hidden from the global address list (grommunio's hide bits)."""
        raw = self.props.get(PR_ATTR_HIDDEN_GROMOX)
        if raw is None:
            raw = str(AB_HIDE_DEFAULT) if self.props.get(PR_ATTR_HIDDEN, "0") not in (
                "0", "", "false") else "0"
        try:
            return bool(int(raw, 0) & AB_HIDE_FROM_GAL)
        except ValueError:
            return False

    @property
    def listed(self) -> bool:
        """Shown in address lists: not deleted (nor its domain), not hidden."""
        return (self.status & 0x0F) != STATUS_DELETED and (self.status & 0x30) != 0x30 \
            and not self.hidden

    @property
    def is_principal(self) -> bool:
        """A calendar user: a mailbox, room or equipment (not a list or a contact)."""
        return self.listed and self.display_type in (DT_MAILUSER, DT_ROOM, DT_EQUIPMENT)


async def domain_people(host: Host, domain: str) -> list[Person]:
    """The directory entries of ``domain`` (by address), with their address-list
    properties; cached for the directory's ``cache_ttl``."""
    directory = host.directory
    if directory is None or not domain:
        return []
    domain = domain.lower()

    async def compute() -> list[Person]:
        async with directory.engine.connect() as conn:
            rows = (await conn.execute(
                select(Users.id, Users.username, Users.address_status)
                .join(Domains, Domains.id == Users.domain_id)
                .where(func.lower(Domains.domainname) == domain)
                .order_by(Users.username).limit(MAX_PEOPLE))).all()
            ids = [row[0] for row in rows]
            props: dict[int, dict[int, str]] = {uid: {} for uid in ids}
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for uid, proptag, value in await conn.execute(
                        select(UserProperties.user_id, UserProperties.proptag,
                               UserProperties.propval_str)
                        .where(UserProperties.user_id.in_(chunk),
                               UserProperties.proptag.in_(PEOPLE_TAGS))
                        .order_by(UserProperties.order_id)):
                    if value is not None:
                        props[uid].setdefault(int(proptag), str(value))
        return [Person(uid, str(name).lower(), props[uid], int(status or 0))
                for uid, name, status in rows]

    result: list[Person] = await directory.cached(("dav-people", domain), compute)
    return result


# -- calendar proxies ---------------------------------------------------------------------------
@dataclass
class ProxyGroup(Resource):
    """``calendar-proxy-read`` or ``calendar-proxy-write`` of ``owner``."""

    href: str
    owner: str
    which: str
    """:data:`PROXY_READ` or :data:`PROXY_WRITE`."""


def proxy_href(base: str, owner: str, which: str) -> str:
    return paths.href(base, "principals", "users", owner, which)


async def proxy_group(ctx: Context, owner: str, which: str) -> ProxyGroup:
    """The proxy group at ``<owner's principal>/<which>/``; 404 for any other name (the
    owner's existence is checked by the caller, as for the principal)."""
    which = which.lower()
    if which not in GROUPS:
        raise DavError(404, message="no such principal")
    return ProxyGroup(proxy_href(ctx.base, owner, which), owner, which)


def _delegates(txn: Txn) -> tuple[list[str], list[str]]:
    """``(read members, write members)`` of the store's Calendar folder."""
    readers: set[str] = set()
    writers: set[str] = set()
    for member, rights in permissions.get_acl(txn, CALENDAR):
        if member in permissions.SPECIAL_MEMBERS or not rights & Rights.READ_ANY:
            continue
        (writers if rights & Rights.EDIT_ANY else readers).add(member)
    for member, grant in permissions.get_grants(txn).items():
        if grant.full_access:
            writers.add(member)
    writers.discard(txn.info.key)
    return sorted(readers - writers), sorted(writers)


async def members(ctx: Context, owner: str) -> tuple[list[str], list[str]]:
    """``(read, write)`` proxies of ``owner``: who may read / also write their Calendar."""
    if not ctx.host.store.exists(owner):
        return [], []
    try:
        mbox = await ctx.store(owner)
        return await mbox.read(_delegates)
    except (StoreError, DavError):
        return [], []


def _calendar_rights(txn: Txn, user: str) -> int:
    """``user``'s own rights on the Calendar (as :func:`_delegates` counts them: their ACL
    entry or full access; ``default`` makes no one a delegate)."""
    if permissions.grant_of(txn, user).full_access:
        return int(permissions.ALL)
    try:
        return next((int(rights) for member, rights in permissions.get_acl(txn, CALENDAR)
                     if member == user), 0)
    except StoreError:
        return 0


async def proxy_for(ctx: Context, user: str) -> tuple[list[str], list[str]]:
    """``(read, write)``: the owners whose Calendar ``user`` may read / also write."""
    readers: list[str] = []
    writers: list[str] = []
    for owner in await sharing.sharers(ctx.host, user):
        try:
            mbox = await ctx.host.store.open(owner)
            rights = Rights(await mbox.read(_calendar_rights, user))
        except StoreError:
            continue
        if rights & Rights.EDIT_ANY and rights & Rights.READ_ANY:
            writers.append(owner)
        elif rights & Rights.READ_ANY:
            readers.append(owner)
    return readers, writers


# -- properties ---------------------------------------------------------------------------------
def supported_reports() -> Element:
    out = element(D("supported-report-set"))
    for report in REPORTS:
        sub(sub(sub(out, D("supported-report")), D("report")), report)
    return out


async def principal_prop(ctx: Context, res: Principal, name: str) -> Element | None:
    """The delegation properties of a user's principal (None: not one of these)."""
    base = ctx.base
    if name == D("owner"):
        return href_element(name, res.href)
    if name == D("supported-report-set"):
        return supported_reports()
    if name == D("group-member-set"):
        return href_element(name)
    if name not in (D("group-membership"), READ_FOR, WRITE_FOR):
        return None
    if res.address != ctx.user:
        return href_element(name)
    readers, writers = await proxy_for(ctx, res.address)
    if name == READ_FOR:
        return href_element(name, *(paths.principal_href(base, o) for o in readers))
    if name == WRITE_FOR:
        return href_element(name, *(paths.principal_href(base, o) for o in writers))
    return href_element(name, *[proxy_href(base, o, PROXY_READ) for o in readers],
                        *[proxy_href(base, o, PROXY_WRITE) for o in writers])


async def proxy_prop(ctx: Context, res: ProxyGroup, name: str) -> Element | None:
    """The properties of a proxy group principal (what every resource answers about the
    requesting user comes from :mod:`plugins.dav.props`)."""
    base = ctx.base
    if name == D("resourcetype"):
        out = element(name)
        sub(out, D("principal"))
        return out
    if name == D("displayname"):
        kind = "write" if res.which == PROXY_WRITE else "read"
        return element(name, f"Calendar {kind} proxies of {res.owner}")
    if name == D("principal-URL"):
        return href_element(name, res.href)
    if name in (D("alternate-URI-set"), D("group-membership")):
        return href_element(name)
    if name == D("group-member-set"):
        readers, writers = await members(ctx, res.owner)
        found = writers if res.which == PROXY_WRITE else readers
        if ctx.user != res.owner and ctx.user not in found:
            return href_element(name)
        return href_element(name, *(paths.principal_href(base, m) for m in found))
    if name == D("owner"):
        return href_element(name, paths.principal_href(base, res.owner))
    if name == D("supported-report-set"):
        return supported_reports()
    if name == D("current-user-privilege-set"):
        out = element(name)
        for privilege in (D("read"), D("read-current-user-privilege-set")):
            sub(sub(out, D("privilege")), privilege)
        return out
    if name == tag(CALDAV, "calendar-user-type"):
        return None
    from plugins.dav import acl

    return await acl.acl_prop(ctx, res, name)
