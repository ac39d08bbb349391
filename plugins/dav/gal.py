"""The global address list of a user's domain as a read-only address book,
``<base>/addressbooks/<user>/gal/`` (``[dav] gal``).

The list is an ordinary contacts folder, so listing, GET, multiget, query and
sync-collection work on it as on any other address book: the folder "Global
Address List" (DAV segment ``gal``) in the non-IPM part of the domain's public
store (``public:<domain>``, made on first use), holding one vCard per directory
entry of the domain that address lists show (not deleted, not hidden by
grommunio's hide bits). Each card carries what the directory has: display name,
given name and surname, e-mail address, company, department, title, office,
phone and fax numbers, postal address.

The folder is brought up to date from the directory when a request reaches it,
at most every :data:`REFRESH_SECONDS` per domain and worker. Each entry's card
has a stable name (``gal-<directory id>.vcf``) and UID, and is written only when
its bytes change, so a sync token reports exactly the entries added, changed or
removed. The cards are kept as written, so GET returns those bytes. Everyone
sees the folder with ReadAny and FolderVisible only: PUT, DELETE, PROPPATCH and
MOVE in it are refused with 403 by the usual rights checks.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from gateway.convert.vcard_out import content_line, escape
from gateway.store import (
    Mailbox,
    NewMessage,
    NotFound,
    Public,
    dav,
    folders,
    messages,
    permissions,
)
from gateway.store import tags as T
from gateway.store.dav import DAV_SEGMENT
from gateway.store.rights import Rights
from gateway.store.store import PUBLIC_PREFIX
from gateway.store.txn import Txn
from plugins.dav import items, paths
from plugins.dav import principals as P
from plugins.dav.collections import FolderInfo
from plugins.dav.errors import DavError
from plugins.dav.resources import NOT_FOUND, Collection, Context

SEGMENT = "gal"
FOLDER_NAME = "Global Address List"
CONTACT_CLASS = "IPF.Contact"
RIGHTS = Rights.READ_ANY | Rights.FOLDER_VISIBLE
"""What every user holds on the folder."""
REFRESH_SECONDS = 60.0
PRODID = "-//Groupware Gateway//Global Address List//EN"
UID_NAMESPACE = uuid.UUID("6d1c1e2a-5b1f-4a53-9d36-1f0f3c2a6a47")
"""Namespace of the cards' UIDs (UUIDv5 of ``<domain>/<directory id>``)."""


@dataclass
class _Refresh:
    when: float
    folder_id: int


_refreshed: dict[tuple[int, str], _Refresh] = {}
_locks: dict[tuple[int, str], asyncio.Lock] = {}


def forget(domain: str | None = None) -> None:
    """Make the next request refresh the list (of one domain, or all)."""
    for key in [k for k in _refreshed if domain is None or k[1] == domain.lower()]:
        del _refreshed[key]


# -- the cards ----------------------------------------------------------------------------------
def card_name(person: P.Person) -> str:
    return f"gal-{person.id}.vcf"


def card_uid(domain: str, person: P.Person) -> str:
    return str(uuid.uuid5(UID_NAMESPACE, f"{domain}/{person.id}"))


def render_card(domain: str, person: P.Person) -> bytes:
    """The vCard 3.0 of a directory entry (deterministic: same entry, same bytes)."""
    get = person.props.get

    def text(tag: int) -> str:
        return (get(tag) or "").replace("\x00", "").strip()

    lines = [b"BEGIN:VCARD\r\n", content_line("VERSION", "3.0"), content_line("PRODID", PRODID),
             content_line("UID", card_uid(domain, person)),
             content_line("FN", escape(person.display_name))]
    surname, given = text(P.PR_SURNAME), text(P.PR_GIVEN_NAME)
    lines.append(content_line("N", f"{escape(surname)};{escape(given)};;;"))
    if text(P.PR_NICKNAME):
        lines.append(content_line("NICKNAME", escape(text(P.PR_NICKNAME))))
    lines.append(content_line("EMAIL", person.address, [("TYPE", "INTERNET,WORK,PREF")]))
    company, department = text(P.PR_COMPANY_NAME), text(P.PR_DEPARTMENT_NAME)
    if company or department:
        lines.append(content_line("ORG", f"{escape(company)};{escape(department)}"))
    if text(P.PR_TITLE):
        lines.append(content_line("TITLE", escape(text(P.PR_TITLE))))
    for tag, types in ((P.PR_BUSINESS_TELEPHONE_NUMBER, "WORK,VOICE"),
                       (P.PR_MOBILE_TELEPHONE_NUMBER, "CELL,VOICE"),
                       (P.PR_HOME_TELEPHONE_NUMBER, "HOME,VOICE"),
                       (P.PR_PRIMARY_FAX_NUMBER, "WORK,FAX")):
        if text(tag):
            lines.append(content_line("TEL", escape(text(tag)), [("TYPE", types)]))
    address = [text(t) for t in (P.PR_STREET_ADDRESS, P.PR_LOCALITY, P.PR_STATE_OR_PROVINCE,
                                 P.PR_POSTAL_CODE, P.PR_COUNTRY)]
    office = text(P.PR_OFFICE_LOCATION)
    if any(address) or office:
        lines.append(content_line("ADR", ";".join(escape(v) for v in ["", office, *address]),
                                  [("TYPE", "WORK")]))
    if person.display_type in (P.DT_ROOM, P.DT_EQUIPMENT):
        kind = "location" if person.display_type == P.DT_ROOM else "device"
        lines.append(content_line("X-ADDRESSBOOKSERVER-KIND", kind))
    lines.append(b"END:VCARD\r\n")
    return b"".join(lines)


# -- the folder ---------------------------------------------------------------------------------
def find_folder(txn: Txn) -> int | None:
    for fid in folders.children(txn, int(Public.NON_IPM_SUBTREE)):
        if txn.read_props("folder_props", fid, [DAV_SEGMENT]).get(DAV_SEGMENT) == SEGMENT:
            return fid
    return None


def make_folder(txn: Txn, domain: str) -> int:
    """The GAL folder of the public store, created (readable by everyone) if missing."""
    found = find_folder(txn)
    if found is not None:
        return found
    parent, name, n = int(Public.NON_IPM_SUBTREE), FOLDER_NAME, 1
    while folders.find_child(txn, parent, name) is not None:
        n += 1
        name = f"{FOLDER_NAME} ({n})"
    fid = folders.create(txn, parent, name, CONTACT_CLASS, {
        DAV_SEGMENT: SEGMENT, T.PidTagComment: f"Everyone at {domain}"})
    permissions.replace_acl(txn, fid, {permissions.DEFAULT: int(RIGHTS)})
    return fid


def _stored(txn: Txn, folder_id: int) -> dict[str, tuple[int, bytes | None]]:
    """``{name: (message id, kept card bytes or None)}`` of the folder's cards."""
    rows = dav.items(txn, folder_id)
    kept = dav.renders(txn, [r.id for r in rows], items.FORMATS["addressbook"])
    return {r.name or f"gw-{r.id}": (r.id, kept.get(r.id)) for r in rows}


def _apply(txn: Txn, folder_id: int, changed: dict[str, tuple[bytes, NewMessage]],
           gone: list[str]) -> None:
    """Write the changed cards and drop the gone ones (checked again: another worker may
    have done it meanwhile)."""
    fmt = items.FORMATS["addressbook"]
    for name, (data, message) in changed.items():
        mid = dav.by_name(txn, folder_id, name)
        if mid is not None and dav.renders(txn, [mid], fmt).get(mid) == data:
            continue
        dav.save_item(txn, folder_id, mid, message, name, fmt, data)
    stale = [mid for name in gone
             if (mid := dav.by_name(txn, folder_id, name)) is not None]
    if stale:
        messages.delete(txn, stale, hard=True)


async def refresh(ctx: Context, domain: str, mbox: Mailbox) -> int:
    """Bring the domain's list up to date if it was not in the last
    :data:`REFRESH_SECONDS`; the folder's id."""
    key = (id(ctx.host), domain)
    lock = _locks.setdefault(key, asyncio.Lock())
    async with lock:
        done = _refreshed.get(key)
        if done is not None and time.monotonic() - done.when < REFRESH_SECONDS:
            return done.folder_id
        folder_id = await mbox.read(find_folder)
        if folder_id is None:
            folder_id = await mbox.write(make_folder, domain)
        people = [p for p in await P.domain_people(ctx.host, domain) if p.listed]
        wanted = {card_name(p): render_card(domain, p) for p in people}
        stored = await mbox.read(_stored, folder_id)
        changed = {name: (data, items.parse_vcard_object(data).message)
                   for name, data in wanted.items()
                   if name not in stored or stored[name][1] != data}
        gone = [name for name in stored if name not in wanted]
        if changed or gone:
            await mbox.write(_apply, folder_id, changed, gone)
        _refreshed[key] = _Refresh(time.monotonic(), folder_id)
        return folder_id


def _info(txn: Txn, folder_id: int) -> FolderInfo:
    _, _, name, cn = folders.require(txn, folder_id)
    comment = txn.read_props("folder_props", folder_id, [T.PidTagComment]).get(T.PidTagComment)
    return FolderInfo(folder_id, SEGMENT, str(name), CONTACT_CLASS, str(comment or ""), int(cn),
                      {}, RIGHTS)


async def gal_collection(ctx: Context, owner: str) -> Collection:
    """The GAL address book in ``owner``'s address book home (the requesting user's only;
    404 for anyone else's, or with ``[dav] gal`` off)."""
    if not ctx.settings.gal or owner != ctx.user:
        raise DavError(404, message=NOT_FOUND)
    domain = owner.rpartition("@")[2].lower()
    mbox = await ctx.host.store.open_or_create(PUBLIC_PREFIX + domain)
    try:
        info = await mbox.read(_info, await refresh(ctx, domain, mbox))
    except NotFound:  # the folder went away (an administrator): make it again
        forget(domain)
        info = await mbox.read(_info, await refresh(ctx, domain, mbox))
    return Collection(paths.href(ctx.base, "addressbooks", owner, SEGMENT), owner,
                      "addressbooks", mbox, info)
