"""What SQL knows of each kind of object a restriction or a table runs over.

A :class:`Domain` names an object's table, its id column and its property
rows, and maps the computed properties that have an SQL form to a
:class:`SqlProp` (``m.size``, the flags with the read bit from
``m.is_read``, ...); the others are read in Python with its reader. Here are
:data:`MESSAGES` (with their recipients and attachments as sub-objects) and
:data:`FOLDERS`, used by :mod:`gateway.store.restriction_sql` and
:mod:`gateway.store.tables`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.store import computed, ids
from gateway.store import proptypes as pt
from gateway.store import tags as T
from gateway.store.objects import MSGFLAG_ASSOCIATED, MSGFLAG_HASATTACH, MSGFLAG_READ
from gateway.store.txn import PropKey, Txn


@dataclass(frozen=True)
class SqlProp:
    """A computed property's SQL expression over its object's row (``{a}``: the alias)."""

    expr: str
    to_sql: Callable[[Any], Any] | None = None
    """A restriction value in the expression's terms (an entry id's global counter)."""
    from_sql: Callable[[Any], Any] | None = None
    """The expression's value as the property's (``None``: by the tag's type)."""


Reader = Callable[[Txn, int, list[PropKey]], dict[PropKey, Any]]


@dataclass(frozen=True, eq=False)
class Domain:
    """One kind of object a restriction (or a table) runs over."""

    name: str
    table: str
    id_column: str
    props: str
    """Its property rows (``message_props``, ...), keyed by ``id_column``."""
    sql: dict[int, SqlProp]
    python: frozenset[int] = frozenset()
    """Computed properties without an SQL form: read with ``reader``, tested in Python."""
    reader: Reader | None = None
    parent: str = ""
    """In a sub-object's table, the column naming the object it belongs to."""
    subs: dict[str, Domain] = field(default_factory=dict)

    def computed_tag(self, tag: int) -> int | None:
        """The computed tag ``tag`` names (any type for ``PT_UNSPECIFIED``), or ``None``."""
        if pt.prop_type(tag) != pt.PT_UNSPECIFIED:
            return tag if tag in self.sql or tag in self.python else None
        for known in itertools.chain(self.sql, self.python):
            if pt.prop_id(known) == pt.prop_id(tag):
                return known
        return None


def gc_of(eid: int) -> int:
    """The global counter in a 64-bit id (0 stays 0)."""
    return ids.split_eid(eid)[1] if eid else 0


def eid_of(gc: int | None) -> int:
    """``ids.make_eid(gc)``, the short way (tables convert a column of them)."""
    if not gc:
        return 0
    return int.from_bytes(gc.to_bytes(6, "big"), "little") << 16 | ids.PRIVATE_REPLID


def _eid_prop(column: str) -> SqlProp:
    return SqlProp(f"coalesce({column}, 0)", gc_of, eid_of)


# Columns of a message row IMAP searches and sorts on that have no MAPI property: tags in the
# provider-defined, non-transmittable range (MS-OXPROPS 1.3.3) that no MAPI property uses. They
# exist only here, for restrictions, sort keys and table columns; reading a message does not
# return them, and a client's own value under such a tag is shadowed in tables.
PidTagGatewayImapDeleted = 0x60F0000B
"""IMAP ``\\Deleted`` (``messages.imap_deleted``), PT_BOOLEAN."""
PidTagGatewayModseq = 0x60F10014
"""IMAP MODSEQ (``messages.modseq``, RFC 7162), PT_I8."""
PidTagGatewayRfc822Size = 0x60F20014
"""IMAP RFC822.SIZE: the Internet message's size, else the MAPI size, PT_I8."""
PidTagGatewayRead = 0x60F3000B
"""The read state (``messages.is_read``, IMAP ``\\Seen``) without the rest of the flags."""

_HAS_ATTACH = "EXISTS (SELECT 1 FROM attachments WHERE message_id = {a}.message_id)"
MESSAGE_SQL = {
    T.PidTagMid: _eid_prop("{a}.message_id"),
    T.PidTagFolderId: _eid_prop("{a}.folder_id"),
    T.PidTagChangeNumber: _eid_prop("{a}.change_number"),
    T.PidTagInternetArticleNumber: SqlProp("coalesce({a}.uid, 0)"),
    T.PidTagMessageSize: SqlProp("min({a}.size, 2147483647)"),
    T.PidTagMessageSizeExtended: SqlProp("{a}.size"),
    T.PidTagAssociated: SqlProp("{a}.associated"),
    T.PidTagHasAttachments: SqlProp(_HAS_ATTACH),
    T.PidTagMessageFlags: SqlProp(
        f"(coalesce((SELECT value FROM message_props WHERE message_id = {{a}}.message_id "
        f"AND tag = {T.PidTagMessageFlags}), 0) | ({{a}}.is_read * {MSGFLAG_READ}) | "
        f"({{a}}.associated * {MSGFLAG_ASSOCIATED}) | ({_HAS_ATTACH} * {MSGFLAG_HASATTACH}))"),
    T.PidTagAccess: SqlProp(str(computed.ACCESS_ALL)),
    T.PidTagAccessLevel: SqlProp("1"),
    PidTagGatewayImapDeleted: SqlProp("{a}.imap_deleted"),
    PidTagGatewayModseq: SqlProp("{a}.modseq"),
    PidTagGatewayRfc822Size: SqlProp("coalesce({a}.mime_size, {a}.size)"),
    PidTagGatewayRead: SqlProp("{a}.is_read"),
}
_COUNT = "(SELECT count(*) FROM messages WHERE folder_id = {a}.folder_id"
FOLDER_SQL = {
    T.PidTagFolderId: _eid_prop("{a}.folder_id"),
    T.PidTagParentFolderId: _eid_prop("{a}.parent_id"),
    T.PidTagChangeNumber: _eid_prop("{a}.change_number"),
    T.PidTagHierarchyChangeNumber: SqlProp("({a}.change_number & 4294967295)"),
    T.PidTagDisplayName: SqlProp("{a}.name"),
    T.PidTagFolderType: SqlProp("CASE WHEN {a}.parent_id IS NULL THEN 0 ELSE {a}.folder_type END"),
    T.PidTagContentCount: SqlProp(_COUNT + " AND associated = 0)"),
    T.PidTagContentUnreadCount: SqlProp(_COUNT + " AND associated = 0 AND is_read = 0)"),
    T.PidTagAssociatedContentCount: SqlProp(_COUNT + " AND associated = 1)"),
    T.PidTagMessageSizeExtended: SqlProp(
        "(SELECT coalesce(sum(size), 0) FROM messages WHERE folder_id = {a}.folder_id)"),
    T.PidTagFolderChildCount: SqlProp(
        "(SELECT count(*) FROM folders WHERE parent_id = {a}.folder_id)"),
    T.PidTagSubfolders: SqlProp("EXISTS (SELECT 1 FROM folders WHERE parent_id = {a}.folder_id)"),
    T.PidTagAccess: SqlProp(str(computed.ACCESS_ALL)),
    T.PidTagRights: SqlProp(str(computed.RIGHTS_OWNER)),
}

RECIPIENTS = Domain("recipient", "recipients", "recipient_id", "recipient_props",
                    {T.PidTagRowid: SqlProp("{a}.row_id")}, parent="message_id")
ATTACHMENTS = Domain("attachment", "attachments", "attach_id", "attachment_props",
                     {T.PidTagAttachNumber: SqlProp("{a}.num")}, parent="message_id")
MESSAGES = Domain("message", "messages", "message_id", "message_props", MESSAGE_SQL,
                  frozenset(computed.MESSAGE_COMPUTED) - set(MESSAGE_SQL),
                  computed.message_props,
                  subs={"recipients": RECIPIENTS, "attachments": ATTACHMENTS})
FOLDERS = Domain("folder", "folders", "folder_id", "folder_props", FOLDER_SQL,
                 frozenset(computed.FOLDER_COMPUTED) - set(FOLDER_SQL), computed.folder_props)
