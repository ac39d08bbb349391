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

The rights bits and the standard roles live in :mod:`gateway.store.rights`;
they are re-exported here (``permissions.Rights``, ``permissions.REVIEWER``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.store import folders, messages
from gateway.store import tags as T
from gateway.store.errors import AccessDenied, InvalidArgument
from gateway.store.rights import (
    ALL,
    AUTHOR,
    CONTRIBUTOR,
    EDITOR,
    FREE_BUSY,
    FREE_BUSY_TIME_ONLY,
    FREE_BUSY_TIME_SUBJECT_LOCATION,
    NONE,
    NONEDITING_AUTHOR,
    OWNER,
    PUBLISHING_AUTHOR,
    PUBLISHING_EDITOR,
    REVIEWER,
    ROLES,
    VALID,
    Rights,
    normal_rights,
    role_of,
)
from gateway.store.txn import Txn

if TYPE_CHECKING:
    from gateway.store.mailbox import Mailbox

__all__ = [
    "ACCESS_ALL", "ACCESS_CREATE_ASSOCIATED", "ACCESS_CREATE_CONTENTS",
    "ACCESS_CREATE_HIERARCHY", "ACCESS_DELETE", "ACCESS_LEVEL_MODIFY",
    "ACCESS_LEVEL_READ_ONLY", "ACCESS_MODIFY", "ACCESS_READ", "ALL", "ANONYMOUS", "AUTHOR",
    "CONTRIBUTOR", "DEFAULT", "EDITOR", "FREE_BUSY_TIME_ONLY",
    "FREE_BUSY_TIME_SUBJECT_LOCATION", "NONE", "NONEDITING_AUTHOR", "OWNER",
    "PUBLISHING_AUTHOR", "PUBLISHING_EDITOR", "REVIEWER", "ROLES", "SPECIAL_MEMBERS", "VALID",
    "Grant", "Permissions", "Rights", "can_send_as", "can_send_on_behalf", "check",
    "delegates", "folder_access", "folder_access_props", "get_acl", "get_grants", "grant_of",
    "inherit_acl", "is_owner", "may_delete", "may_edit", "message_access",
    "message_access_props", "normal_member", "normal_rights", "remove_member", "replace_acl",
    "require", "rights_for", "role_of", "set_acl", "set_grant",
]


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
        T.PidTagRights: int(held & ~FREE_BUSY),
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
