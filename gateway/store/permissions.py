"""Who may do what in a store: folder ACLs (MS-OXCPERM), store grants, and the one check.

Each folder has its own ACL, rows of ``permissions(folder_id, member, rights)``;
``member`` is a lowercase address or one of the special members
:data:`DEFAULT` (any authenticated user without an entry of their own) and
:data:`ANONYMOUS` (unauthenticated access). As in Exchange nothing is
inherited at check time: a new folder starts with a copy of its parent's ACL
(:func:`inherit_acl`), and changes to a parent later do not reach it.

Store-wide grants live in ``store_grants(member, send_as, send_on_behalf,
full_access)``: a delegate is a member with ``send_on_behalf``; ``full_access``
makes the member owner-equivalent on every folder.

:func:`rights_for` (inside a transaction) and :func:`check` (async, raising
:class:`~gateway.store.errors.AccessDenied`) are what every protocol plugin
calls. The owner of a private store has every right; a public store has no
owner, its ``default`` entries apply. :func:`folder_access_props` and
:func:`message_access_props` give ``PidTagRights``, ``PidTagAccess`` and
``PidTagAccessLevel`` as seen by one user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntFlag
from typing import TYPE_CHECKING

from gateway.store import folders, messages
from gateway.store import tags as T
from gateway.store.errors import AccessDenied, InvalidArgument
from gateway.store.txn import Txn

if TYPE_CHECKING:
    from gateway.store.mailbox import Mailbox


class Rights(IntFlag):
    """``PidTagMemberRights`` bits (MS-OXCPERM 2.2.7)."""

    NONE = 0
    READ_ANY = 0x0000_0001
    """ReadAny: read any message in the folder."""
    CREATE = 0x0000_0002
    """Create: create messages."""
    EDIT_OWNED = 0x0000_0008
    """EditOwned: change messages the member created."""
    DELETE_OWNED = 0x0000_0010
    """DeleteOwned: delete messages the member created."""
    EDIT_ANY = 0x0000_0020
    """EditAny: change any message (implies EditOwned)."""
    DELETE_ANY = 0x0000_0040
    """DeleteAny: delete any message (implies DeleteOwned)."""
    CREATE_SUBFOLDER = 0x0000_0080
    """CreateSubFolder: create folders below this one."""
    FOLDER_OWNER = 0x0000_0100
    """FolderOwner: change the folder's properties and its ACL."""
    FOLDER_CONTACT = 0x0000_0200
    """FolderContact: receives the folder's notifications (public folders)."""
    FOLDER_VISIBLE = 0x0000_0400
    """FolderVisible: see the folder in the hierarchy."""
    FREE_BUSY_SIMPLE = 0x0000_0800
    """FreeBusySimple: see free/busy times (Calendar)."""
    FREE_BUSY_DETAILED = 0x0000_1000
    """FreeBusyDetailed: see free/busy with subject and location (Calendar)."""


VALID = Rights(0x1FFB)
"""Every bit MS-OXCPERM defines; a server MUST NOT set any other."""
ALL = VALID
"""What the store owner (and a member with full access) holds."""

# The standard roles, as Outlook and EWS (PermissionLevel) define them.
OWNER = Rights(0x7FB)
PUBLISHING_EDITOR = Rights(0x4FB)
EDITOR = Rights(0x47B)
PUBLISHING_AUTHOR = Rights(0x49B)
AUTHOR = Rights(0x41B)
NONEDITING_AUTHOR = Rights(0x413)
REVIEWER = Rights(0x401)
CONTRIBUTOR = Rights(0x402)
NONE = Rights(0)
FREE_BUSY_TIME_ONLY = Rights.FREE_BUSY_SIMPLE
"""Calendar folders only: "Free/Busy time"."""
FREE_BUSY_TIME_SUBJECT_LOCATION = Rights.FREE_BUSY_SIMPLE | Rights.FREE_BUSY_DETAILED
"""Calendar folders only: "Free/Busy time, subject, location"."""

ROLES: dict[str, Rights] = {
    "Owner": OWNER,
    "PublishingEditor": PUBLISHING_EDITOR,
    "Editor": EDITOR,
    "PublishingAuthor": PUBLISHING_AUTHOR,
    "Author": AUTHOR,
    "NoneditingAuthor": NONEDITING_AUTHOR,
    "Reviewer": REVIEWER,
    "Contributor": CONTRIBUTOR,
    "FreeBusyTimeOnly": FREE_BUSY_TIME_ONLY,
    "FreeBusyTimeAndSubjectAndLocation": FREE_BUSY_TIME_SUBJECT_LOCATION,
    "None": NONE,
}
"""Role names as EWS spells them (``PermissionLevel``), each with its rights."""

_FREE_BUSY = Rights.FREE_BUSY_SIMPLE | Rights.FREE_BUSY_DETAILED
_ROLE_VARIANTS: dict[Rights, str] = {
    # Outlook shows these as the role too (EWS Managed API: LevelVariants).
    Rights.FOLDER_VISIBLE: "None",
    Rights.FOLDER_CONTACT: "None",
    Rights.FOLDER_CONTACT | Rights.FOLDER_VISIBLE: "None",
    OWNER & ~Rights.FOLDER_CONTACT: "Owner",
}

DEFAULT = "default"
"""The member standing for every authenticated user without an entry of their own."""
ANONYMOUS = "anonymous"
"""The member standing for unauthenticated access."""
SPECIAL_MEMBERS = (DEFAULT, ANONYMOUS)

# PidTagAccess bits (PR_ACCESS, mapidefs.h MAPI_ACCESS_*); create bits only on folders.
ACCESS_MODIFY = 0x01
ACCESS_READ = 0x02
ACCESS_DELETE = 0x04
ACCESS_CREATE_HIERARCHY = 0x08
ACCESS_CREATE_CONTENTS = 0x10
ACCESS_CREATE_ASSOCIATED = 0x20
ACCESS_ALL = 0x3F
# PidTagAccessLevel
ACCESS_LEVEL_READ_ONLY = 0
ACCESS_LEVEL_MODIFY = 1


def role_of(rights: int) -> str:
    """The role whose rights these are (EWS ``PermissionLevel``), else ``"Custom"``.

    The free/busy bits only matter on Calendar folders; a role matches with or
    without them (Outlook keeps them apart from the role).
    """
    value = Rights(rights)
    for candidate in (value, value & ~_FREE_BUSY):
        for name, role in ROLES.items():
            if role == candidate:
                return name
        if candidate in _ROLE_VARIANTS:
            return _ROLE_VARIANTS[candidate]
    return "Custom"


def normal_rights(rights: int) -> Rights:
    """Rights as stored: only MS-OXCPERM bits; EditAny brings EditOwned, DeleteAny
    DeleteOwned (the spec has clients set both)."""
    if not isinstance(rights, int) or isinstance(rights, bool):
        raise InvalidArgument(f"rights are an integer, not {type(rights).__name__}")
    if rights < 0 or rights & ~int(VALID):
        raise InvalidArgument(f"rights 0x{rights:X} hold bits MS-OXCPERM does not define "
                              f"(valid: 0x{int(VALID):X})")
    value = Rights(rights)
    if value & Rights.EDIT_ANY:
        value |= Rights.EDIT_OWNED
    if value & Rights.DELETE_ANY:
        value |= Rights.DELETE_OWNED
    return value


def normal_member(member: str, *, special: bool = True) -> str:
    """A member as stored: a lowercase address, or ``default`` / ``anonymous``."""
    if not isinstance(member, str):
        raise InvalidArgument(f"a member is a string, not {type(member).__name__}")
    name = member.strip().lower()
    if name in SPECIAL_MEMBERS:
        if not special:
            raise InvalidArgument(f"{name!r} cannot be given store-wide rights")
        return name
    local, at, domain = name.rpartition("@")
    if not at or not local or not domain or len(name) > 320 or any(
            ch.isspace() or ord(ch) < 0x20 for ch in name):
        raise InvalidArgument(f"{member!r} is not an address, 'default' or 'anonymous'")
    return name


# -- folder ACLs (in a transaction) ---------------------------------------------------------
def get_acl(txn: Txn, folder_id: int) -> list[tuple[str, Rights]]:
    """The folder's entries: ``default`` and ``anonymous`` first (when set), then by member."""
    folders.require(txn, folder_id)
    rows = txn.conn.execute(
        "SELECT member, rights FROM permissions WHERE folder_id = ? "
        "ORDER BY member NOT IN ('default', 'anonymous'), member = 'anonymous', member",
        (folder_id,)).fetchall()
    return [(member, Rights(rights & VALID)) for member, rights in rows]


def set_acl(txn: Txn, folder_id: int, member: str, rights: int) -> int:
    """Give ``member`` exactly ``rights`` on the folder (``NONE`` is an entry too: it
    overrides ``default``). Returns the folder's new change number."""
    folders.require(txn, folder_id)
    name, value = normal_member(member), normal_rights(rights)
    txn.conn.execute("INSERT OR REPLACE INTO permissions (folder_id, member, rights) "
                     "VALUES (?, ?, ?)", (folder_id, name, int(value)))
    return _changed(txn, folder_id)


def remove_member(txn: Txn, folder_id: int, member: str) -> int:
    """Drop ``member``'s entry (they fall back to ``default``); the new change number."""
    folders.require(txn, folder_id)
    txn.conn.execute("DELETE FROM permissions WHERE folder_id = ? AND member = ?",
                     (folder_id, normal_member(member)))
    return _changed(txn, folder_id)


def replace_acl(txn: Txn, folder_id: int,
                entries: Mapping[str, int] | Iterable[tuple[str, int]]) -> int:
    """Make the folder's ACL exactly ``entries``; the new change number."""
    folders.require(txn, folder_id)
    pairs = entries.items() if isinstance(entries, Mapping) else entries
    rows: dict[str, Rights] = {}
    for member, rights in pairs:
        name = normal_member(member)
        if name in rows:
            raise InvalidArgument(f"{name} is listed twice")
        rows[name] = normal_rights(rights)
    txn.conn.execute("DELETE FROM permissions WHERE folder_id = ?", (folder_id,))
    txn.conn.executemany("INSERT INTO permissions (folder_id, member, rights) VALUES (?, ?, ?)",
                         [(folder_id, name, int(value)) for name, value in rows.items()])
    return _changed(txn, folder_id)


def inherit_acl(txn: Txn, parent_id: int | None, child_id: int) -> None:
    """Give a new folder a copy of its parent's ACL (``folders.create`` calls this).

    No change number is taken: the folder's creation already took one.
    """
    if parent_id is None:
        return
    txn.conn.execute(
        "INSERT OR REPLACE INTO permissions (folder_id, member, rights) "
        "SELECT ?, member, rights FROM permissions WHERE folder_id = ?", (child_id, parent_id))


def _changed(txn: Txn, folder_id: int) -> int:
    """An ACL change is a change of the folder: new change number, change key, event."""
    parent_id = folders.require(txn, folder_id)[0]
    cn = folders.stamp(txn, folder_id)
    txn.event("folder_modified", parent_id, folder_id, cn, acl=True)
    return cn


# -- store grants (in a transaction) ---------------------------------------------------------
@dataclass(frozen=True)
class Grant:
    """What one member may do with the whole store."""

    send_as: bool = False
    send_on_behalf: bool = False
    """A delegate: sends "on behalf of" the owner."""
    full_access: bool = False
    """Owner-equivalent on every folder."""

    def __bool__(self) -> bool:
        return self.send_as or self.send_on_behalf or self.full_access


def get_grants(txn: Txn) -> dict[str, Grant]:
    """Every member with a store-wide grant."""
    rows = txn.conn.execute("SELECT member, send_as, send_on_behalf, full_access "
                            "FROM store_grants ORDER BY member").fetchall()
    return {member: Grant(bool(a), bool(b), bool(c)) for member, a, b, c in rows}


def grant_of(txn: Txn, member: str) -> Grant:
    row = txn.conn.execute("SELECT send_as, send_on_behalf, full_access FROM store_grants "
                           "WHERE member = ?", (member.strip().lower(),)).fetchone()
    return Grant() if row is None else Grant(bool(row[0]), bool(row[1]), bool(row[2]))


def set_grant(txn: Txn, member: str, grant: Grant) -> None:
    """Set ``member``'s store-wide grant; an empty :class:`Grant` removes it."""
    txn._require_write()
    name = normal_member(member, special=False)
    if not grant:
        txn.conn.execute("DELETE FROM store_grants WHERE member = ?", (name,))
        return
    txn.conn.execute(
        "INSERT OR REPLACE INTO store_grants (member, send_as, send_on_behalf, full_access) "
        "VALUES (?, ?, ?, ?)",
        (name, int(grant.send_as), int(grant.send_on_behalf), int(grant.full_access)))


def delegates(txn: Txn) -> list[str]:
    """Members who may send on behalf of the owner."""
    return [row[0] for row in txn.conn.execute(
        "SELECT member FROM store_grants WHERE send_on_behalf ORDER BY member")]


# -- the check ----------------------------------------------------------------------------------
def is_owner(txn: Txn, user: str | None) -> bool:
    """Whether ``user`` (a primary address) owns this store; a public store has no owner."""
    return (user is not None and not txn.info.public
            and user.strip().lower() == txn.info.key)


def _owner_equivalent(txn: Txn, name: str | None) -> bool:
    return name is not None and (is_owner(txn, name) or grant_of(txn, name).full_access)


def rights_for(txn: Txn, user: str | None, folder_id: int) -> Rights:
    """What ``user`` (a primary address; ``None`` = anonymous) may do in a folder.

    The owner and members with full access hold :data:`ALL`; anyone else their
    own entry, else ``default``; an anonymous user the ``anonymous`` entry. No
    entry: no rights.
    """
    folders.require(txn, folder_id)
    name = None if user is None else user.strip().lower()
    if _owner_equivalent(txn, name):
        return ALL
    members = (ANONYMOUS,) if name is None else (name, DEFAULT)
    for member in members:
        row = txn.conn.execute("SELECT rights FROM permissions WHERE folder_id = ? "
                               "AND member = ?", (folder_id, member)).fetchone()
        if row is not None:
            return Rights(row[0] & VALID)
    return NONE


def require(txn: Txn, user: str | None, folder_id: int, needed: Rights) -> Rights:
    """:func:`rights_for`, raising :class:`AccessDenied` unless all of ``needed`` is held
    (use inside a write to check and change in one transaction)."""
    held = rights_for(txn, user, folder_id)
    missing = Rights(needed) & ~held
    if missing:
        who = user or ANONYMOUS
        raise AccessDenied(f"{who} lacks {_names(missing)} on folder {folder_id} "
                           f"of {txn.info.key}")
    return held


def _names(rights: Rights) -> str:
    return ", ".join(flag.name or hex(flag) for flag in Rights if flag and flag & rights)


def may_edit(rights: Rights, own: bool) -> bool:
    """Whether a message may be changed: any message, or one's own."""
    return bool(rights & Rights.EDIT_ANY or (own and rights & Rights.EDIT_OWNED))


def may_delete(rights: Rights, own: bool) -> bool:
    return bool(rights & Rights.DELETE_ANY or (own and rights & Rights.DELETE_OWNED))


def can_send_as(txn: Txn, user: str | None) -> bool:
    """Whether ``user`` may send as the store's owner (the From address is theirs)."""
    if user is None or txn.info.public:
        return False
    return is_owner(txn, user) or grant_of(txn, user).send_as


def can_send_on_behalf(txn: Txn, user: str | None) -> bool:
    """Whether ``user`` may send on behalf of the owner (From: owner, Sender: user)."""
    if user is None or txn.info.public:
        return False
    return is_owner(txn, user) or grant_of(txn, user).send_on_behalf


# -- computed properties -------------------------------------------------------------------------
def folder_access(rights: Rights) -> int:
    """``PidTagAccess`` of a folder for someone holding ``rights``."""
    if rights & Rights.FOLDER_OWNER:
        return ACCESS_ALL
    access = 0
    if rights & (Rights.READ_ANY | Rights.FOLDER_VISIBLE):
        access |= ACCESS_READ
    if rights & Rights.CREATE:
        access |= ACCESS_CREATE_CONTENTS | ACCESS_CREATE_ASSOCIATED
    if rights & Rights.CREATE_SUBFOLDER:
        access |= ACCESS_CREATE_HIERARCHY
    return access


def message_access(rights: Rights, own: bool = False) -> int:
    """``PidTagAccess`` of a message for someone holding ``rights`` on its folder."""
    access = 0
    if rights & Rights.READ_ANY or own:
        access |= ACCESS_READ
    if may_edit(rights, own):
        access |= ACCESS_MODIFY
    if may_delete(rights, own):
        access |= ACCESS_DELETE
    return access


def folder_access_props(txn: Txn, user: str | None, folder_id: int) -> dict[int, int]:
    """``PidTagRights``, ``PidTagAccess`` and ``PidTagAccessLevel`` of a folder for ``user``
    (to lay over :func:`gateway.store.computed.folder_props`, which gives the owner's)."""
    held = rights_for(txn, user, folder_id)
    access = folder_access(held)
    return {
        # MS-OXCFOLD 2.2.2.2.2.8: the free/busy bits do not apply to PidTagRights.
        T.PidTagRights: int(held & ~_FREE_BUSY),
        T.PidTagAccess: access,
        T.PidTagAccessLevel: ACCESS_LEVEL_MODIFY if access & ACCESS_MODIFY
        else ACCESS_LEVEL_READ_ONLY,
    }


def message_access_props(txn: Txn, user: str | None, message_id: int,
                         own: bool = False) -> dict[int, int]:
    """``PidTagAccess`` and ``PidTagAccessLevel`` of a message for ``user``; ``own``: the
    user created it. An embedded message counts as part of the message carrying it."""
    top = messages.top_message(txn, message_id)
    folder_id = messages.require(txn, top)[0]
    access = message_access(rights_for(txn, user, folder_id), own)
    return {
        T.PidTagAccess: access,
        T.PidTagAccessLevel: ACCESS_LEVEL_MODIFY if access & ACCESS_MODIFY
        else ACCESS_LEVEL_READ_ONLY,
    }


# -- async face ---------------------------------------------------------------------------------
async def check(mbox: Mailbox, user: str | None, folder_id: int, needed: Rights) -> None:
    """Raise :class:`AccessDenied` unless ``user`` holds all of ``needed`` on the folder.

    The one check every protocol plugin calls before acting on a folder it
    reached in someone's store (``user`` None: an anonymous request).
    """
    await mbox.read(require, user, folder_id, needed)


class Permissions:
    """This module's functions for one open mailbox, as coroutines:
    ``await Permissions(mbox).set_acl(folder_id, "bob@example.org", EDITOR)``."""

    def __init__(self, mbox: Mailbox):
        self.mbox = mbox

    async def acl(self, folder_id: int) -> list[tuple[str, Rights]]:
        return await self.mbox.read(get_acl, folder_id)

    async def set_acl(self, folder_id: int, member: str, rights: int) -> int:
        return await self.mbox.write(set_acl, folder_id, member, rights)

    async def remove_member(self, folder_id: int, member: str) -> int:
        return await self.mbox.write(remove_member, folder_id, member)

    async def replace_acl(self, folder_id: int,
                          entries: Mapping[str, int] | Iterable[tuple[str, int]]) -> int:
        return await self.mbox.write(replace_acl, folder_id, list(
            entries.items() if isinstance(entries, Mapping) else entries))

    async def grants(self) -> dict[str, Grant]:
        return await self.mbox.read(get_grants)

    async def grant_of(self, member: str) -> Grant:
        return await self.mbox.read(grant_of, member)

    async def set_grant(self, member: str, grant: Grant) -> None:
        await self.mbox.write(set_grant, member, grant)

    async def delegates(self) -> list[str]:
        return await self.mbox.read(delegates)

    async def rights(self, user: str | None, folder_id: int) -> Rights:
        return await self.mbox.read(rights_for, user, folder_id)

    async def check(self, user: str | None, folder_id: int, needed: Rights) -> None:
        await check(self.mbox, user, folder_id, needed)

    async def can_send_as(self, user: str | None) -> bool:
        return await self.mbox.read(can_send_as, user)

    async def can_send_on_behalf(self, user: str | None) -> bool:
        return await self.mbox.read(can_send_on_behalf, user)

    async def folder_access_props(self, user: str | None, folder_id: int) -> dict[int, int]:
        return await self.mbox.read(folder_access_props, user, folder_id)

    async def message_access_props(self, user: str | None, message_id: int,
                                   own: bool = False) -> dict[int, int]:
        return await self.mbox.read(message_access_props, user, message_id, own)
