"""Folder rights (MS-OXCPERM ``PidTagMemberRights``) and the standard roles built of them.

:class:`Rights` holds the bits; :data:`OWNER`, :data:`EDITOR`, :data:`REVIEWER`
... are the roles Outlook and EWS offer, :data:`ROLES` maps EWS role names to
them and :func:`role_of` goes back. :func:`normal_rights` checks and completes
rights before they are stored. Pure values, no store access: the ACLs that
hold them and the check that reads them are :mod:`gateway.store.permissions`.
"""

from __future__ import annotations

from enum import IntFlag

from gateway.store.errors import InvalidArgument


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

FREE_BUSY = Rights.FREE_BUSY_SIMPLE | Rights.FREE_BUSY_DETAILED
"""Both free/busy bits; they only matter on Calendar folders."""
_ROLE_VARIANTS: dict[Rights, str] = {
    # Outlook shows these as the role too (EWS Managed API: LevelVariants).
    Rights.FOLDER_VISIBLE: "None",
    Rights.FOLDER_CONTACT: "None",
    Rights.FOLDER_CONTACT | Rights.FOLDER_VISIBLE: "None",
    OWNER & ~Rights.FOLDER_CONTACT: "Owner",
}


def role_of(rights: int) -> str:
    """The role whose rights these are (EWS ``PermissionLevel``), else ``"Custom"``.

    The free/busy bits only matter on Calendar folders; a role matches with or
    without them (Outlook keeps them apart from the role).
    """
    value = Rights(rights)
    for candidate in (value, value & ~FREE_BUSY):
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
