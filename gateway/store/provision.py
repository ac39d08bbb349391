"""A new store's default folders, created once in its first write transaction.

A private store gets the tree Outlook and Exchange ActiveSync expect: the
root with the non-IPM folders (views, search root, schedule, free/busy data,
reminders ...) and the IPM subtree ("Top of Information Store") with Inbox,
Sent Items, Calendar, Contacts and the rest, each with its container class
and its fixed id from :mod:`gateway.store.special` (grommunio's numbering).
The root folder and the Inbox carry the entry ids by which MAPI clients find
the special folders (MS-OXOSFLD 2.2). A public store gets its root, the IPM
and non-IPM subtrees and the EFORMS REGISTRY.

Folder names are in the store's language (:mod:`gateway.store.folder_names`).
Permissions of the default folders (free/busy for Calendar) are set by the
permissions module, not here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from gateway.store import folders, ids
from gateway.store import tags as T
from gateway.store.folder_names import folder_name
from gateway.store.objects import FOLDER_GENERIC, FOLDER_ROOT, FOLDER_SEARCH
from gateway.store.rights import Rights
from gateway.store.special import Private, Public
from gateway.store.txn import PropKey, Txn


@dataclass(frozen=True)
class DefaultFolder:
    folder: Private | Public
    parent: Private | Public | None
    container_class: str | None = None
    hidden: bool = False
    folder_type: int = FOLDER_GENERIC


_P = Private
PRIVATE_TREE: tuple[DefaultFolder, ...] = (
    DefaultFolder(_P.ROOT, None, folder_type=FOLDER_ROOT),
    # The non-IPM part: client state and server bookkeeping, never shown as mail folders.
    DefaultFolder(_P.DEFERRED_ACTION, _P.ROOT),
    DefaultFolder(_P.SPOOLER_QUEUE, _P.ROOT, folder_type=FOLDER_SEARCH),
    DefaultFolder(_P.SHORTCUTS, _P.ROOT),
    DefaultFolder(_P.FINDER, _P.ROOT),
    DefaultFolder(_P.VIEWS, _P.ROOT),
    DefaultFolder(_P.COMMON_VIEWS, _P.ROOT),
    DefaultFolder(_P.SCHEDULE, _P.ROOT),
    DefaultFolder(_P.LOCAL_FREEBUSY, _P.ROOT),
    DefaultFolder(_P.REMINDERS, _P.ROOT, "Outlook.Reminder", folder_type=FOLDER_SEARCH),
    DefaultFolder(_P.CONTACTS_SEARCH, _P.FINDER, "IPF.Contact", folder_type=FOLDER_SEARCH),
    DefaultFolder(_P.IPM_SUBTREE, _P.ROOT),
    # The IPM subtree: what users see.
    DefaultFolder(_P.INBOX, _P.IPM_SUBTREE, "IPF.Note"),
    DefaultFolder(_P.OUTBOX, _P.IPM_SUBTREE, "IPF.Note"),
    DefaultFolder(_P.SENT_ITEMS, _P.IPM_SUBTREE, "IPF.Note"),
    DefaultFolder(_P.DELETED_ITEMS, _P.IPM_SUBTREE, "IPF.Note"),
    DefaultFolder(_P.DRAFTS, _P.IPM_SUBTREE, "IPF.Note"),
    DefaultFolder(_P.CALENDAR, _P.IPM_SUBTREE, "IPF.Appointment"),
    DefaultFolder(_P.CONTACTS, _P.IPM_SUBTREE, "IPF.Contact"),
    DefaultFolder(_P.QUICK_CONTACTS, _P.CONTACTS, "IPF.Contact.MOC.QuickContacts", True),
    DefaultFolder(_P.IM_CONTACT_LIST, _P.CONTACTS, "IPF.Contact.MOC.ImContactList", True),
    DefaultFolder(_P.GAL_CONTACTS, _P.CONTACTS, "IPF.Contact.GalContacts", True),
    DefaultFolder(_P.TASKS, _P.IPM_SUBTREE, "IPF.Task"),
    DefaultFolder(_P.NOTES, _P.IPM_SUBTREE, "IPF.StickyNote"),
    DefaultFolder(_P.JOURNAL, _P.IPM_SUBTREE, "IPF.Journal"),
    DefaultFolder(_P.JUNK, _P.IPM_SUBTREE, "IPF.Note"),
    DefaultFolder(_P.SYNC_ISSUES, _P.IPM_SUBTREE, "IPF.Note"),
    DefaultFolder(_P.CONFLICTS, _P.SYNC_ISSUES, "IPF.Note"),
    DefaultFolder(_P.LOCAL_FAILURES, _P.SYNC_ISSUES, "IPF.Note"),
    DefaultFolder(_P.SERVER_FAILURES, _P.SYNC_ISSUES, "IPF.Note"),
    DefaultFolder(_P.CONVERSATION_ACTION_SETTINGS, _P.IPM_SUBTREE, "IPF.Configuration", True),
    DefaultFolder(_P.QUICK_STEP_SETTINGS, _P.IPM_SUBTREE, "IPF.Configuration", True),
    DefaultFolder(_P.SUGGESTED_CONTACTS, _P.IPM_SUBTREE, "IPF.Contact"),
    DefaultFolder(_P.RSS_FEEDS, _P.IPM_SUBTREE, "IPF.Note.OutlookHomepage"),
    DefaultFolder(_P.ARCHIVE, _P.IPM_SUBTREE, "IPF.Note"),
    DefaultFolder(_P.YAMMER_ROOT, _P.IPM_SUBTREE, "IPF.Note", True),
    DefaultFolder(_P.FILES, _P.IPM_SUBTREE, "IPF.Files", True),
)
"""Parents before children; "Freebusy Data" is ``LOCAL_FREEBUSY`` (0x18), as in grommunio."""

PUBLIC_TREE: tuple[DefaultFolder, ...] = (
    DefaultFolder(Public.ROOT, None, folder_type=FOLDER_ROOT),
    DefaultFolder(Public.IPM_SUBTREE, Public.ROOT),
    DefaultFolder(Public.NON_IPM_SUBTREE, Public.ROOT),
    DefaultFolder(Public.EFORMS_REGISTRY, Public.NON_IPM_SUBTREE),
)

ROLES: dict[str, Private] = {
    "root": _P.ROOT,
    "ipm_subtree": _P.IPM_SUBTREE,
    "inbox": _P.INBOX,
    "sent": _P.SENT_ITEMS,
    "trash": _P.DELETED_ITEMS,
    "drafts": _P.DRAFTS,
    "junk": _P.JUNK,
    "outbox": _P.OUTBOX,
    "calendar": _P.CALENDAR,
    "contacts": _P.CONTACTS,
    "tasks": _P.TASKS,
    "notes": _P.NOTES,
    "journal": _P.JOURNAL,
    "archive": _P.ARCHIVE,
    "sync_issues": _P.SYNC_ISSUES,
    "conflicts": _P.CONFLICTS,
    "local_failures": _P.LOCAL_FAILURES,
    "server_failures": _P.SERVER_FAILURES,
    "reminders": _P.REMINDERS,
}
PUBLIC_ROLES: dict[str, Public] = {
    "root": Public.ROOT,
    "ipm_subtree": Public.IPM_SUBTREE,
    "non_ipm_subtree": Public.NON_IPM_SUBTREE,
    "eforms_registry": Public.EFORMS_REGISTRY,
}


def default_folder_ids(kind: str = "private") -> dict[str, int]:
    """Role name → folder id of a store's default folders (IMAP SPECIAL-USE, EAS FolderSync).

    Private roles: root, ipm_subtree, inbox, sent, trash, drafts, junk, outbox,
    calendar, contacts, tasks, notes, journal, archive, sync_issues, conflicts,
    local_failures, server_failures, reminders. Public: root, ipm_subtree,
    non_ipm_subtree, eforms_registry.
    """
    roles: dict[str, Any] = PUBLIC_ROLES if kind == "public" else ROLES
    return {role: int(folder) for role, folder in roles.items()}


# MS-OXOSFLD 2.2.5: PersistData blocks of PidTagAdditionalRenEntryIdsEx.
PERSIST_SENTINEL = 0x0000
RSF_PID_RSS_SUBSCRIPTION = 0x8001
RSF_PID_CONV_ACTIONS = 0x8006
RSF_PID_COMBINED_ACTIONS = 0x8007
RSF_PID_SUGGESTED_CONTACTS = 0x8008
RSF_PID_CONTACT_SEARCH = 0x8009
RSF_PID_BUDDYLIST_PDLS = 0x800A
RSF_PID_BUDDYLIST_CONTACTS = 0x800B
RSF_ELID_ENTRYID = 0x0001

PERSIST_FOLDERS: tuple[tuple[int, Private], ...] = (
    (RSF_PID_RSS_SUBSCRIPTION, _P.RSS_FEEDS),
    (RSF_PID_CONV_ACTIONS, _P.CONVERSATION_ACTION_SETTINGS),
    (RSF_PID_COMBINED_ACTIONS, _P.QUICK_STEP_SETTINGS),
    (RSF_PID_SUGGESTED_CONTACTS, _P.SUGGESTED_CONTACTS),
    (RSF_PID_CONTACT_SEARCH, _P.CONTACTS_SEARCH),
    (RSF_PID_BUDDYLIST_PDLS, _P.IM_CONTACT_LIST),
    (RSF_PID_BUDDYLIST_CONTACTS, _P.QUICK_CONTACTS),
)

ADDITIONAL_REN: tuple[Private, ...] = (
    _P.CONFLICTS, _P.SYNC_ISSUES, _P.LOCAL_FAILURES, _P.SERVER_FAILURES, _P.JUNK)
"""PidTagAdditionalRenEntryIds in the order of MS-OXOSFLD 2.2.4 (index 0 to 4)."""


def persist_data(blocks: list[tuple[int, bytes]]) -> bytes:
    """PidTagAdditionalRenEntryIdsEx: one PersistData block per folder, then the sentinel.

    Each block is PersistID, DataElementsSize and one RSF_ELID_ENTRYID element
    (ElementID, ElementDataSize, the entry id); all little-endian WORDs.
    """
    out = bytearray()
    for persist_id, entry_id in blocks:
        element = struct.pack("<HH", RSF_ELID_ENTRYID, len(entry_id)) + entry_id
        out += struct.pack("<HH", persist_id, len(element)) + element
    out += struct.pack("<HH", PERSIST_SENTINEL, 0)
    return bytes(out)


def special_entry_ids(txn: Txn) -> dict[PropKey, Any]:
    """The special-folder entry ids Outlook reads from the root folder and the Inbox."""
    def eid(folder: Private) -> bytes:
        return ids.folder_entry_id(txn.info.provider, txn.info.replica, int(folder))

    return {
        T.PidTagIpmAppointmentEntryId: eid(_P.CALENDAR),
        T.PidTagIpmContactEntryId: eid(_P.CONTACTS),
        T.PidTagIpmJournalEntryId: eid(_P.JOURNAL),
        T.PidTagIpmNoteEntryId: eid(_P.NOTES),
        T.PidTagIpmTaskEntryId: eid(_P.TASKS),
        T.PidTagIpmDraftsEntryId: eid(_P.DRAFTS),
        T.PidTagIpmArchiveEntryId: eid(_P.ARCHIVE),
        T.PidTagRemindersOnlineEntryId: eid(_P.REMINDERS),
        T.PidTagAdditionalRenEntryIds: [eid(folder) for folder in ADDITIONAL_REN],
        T.PidTagAdditionalRenEntryIdsEx: persist_data(
            [(persist_id, eid(folder)) for persist_id, folder in PERSIST_FOLDERS]),
        # MS-OXOSFLD 2.2.6: null, the Delegate Information object (none yet), the
        # free/busy message (none), the Freebusy Data folder.
        T.PidTagFreeBusyEntryIds: [b"", b"", b"", eid(_P.LOCAL_FREEBUSY)],
    }


def provision(txn: Txn) -> None:
    """Create the default folders of the new store ``txn`` writes to."""
    public = txn.info.public
    tree = PUBLIC_TREE if public else PRIVATE_TREE
    entry_ids = {} if public else special_entry_ids(txn)
    for spec in tree:
        props: dict[PropKey, Any] = {}
        if spec.hidden:
            props[T.PidTagAttributeHidden] = True
        if spec.folder in (_P.ROOT, _P.INBOX) and not public:
            props.update(entry_ids)
        folders.create(txn, None if spec.parent is None else int(spec.parent),
                       folder_name(spec.folder, txn.info.language), spec.container_class,
                       props, spec.folder_type, folder_id=int(spec.folder))
    if not public:
        # As in grommunio: everyone may see the owner's free/busy times.
        for folder in (_P.CALENDAR, _P.LOCAL_FREEBUSY):
            txn.conn.execute("INSERT OR REPLACE INTO permissions (folder_id, member, rights) "
                             "VALUES (?, 'default', ?)",
                             (int(folder), int(Rights.FREE_BUSY_SIMPLE)))
