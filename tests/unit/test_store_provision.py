"""Provisioning: the default folders of new stores, their names and special entry ids."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from gateway.store import Mailbox, Store, ids
from gateway.store import tags as T
from gateway.store.folder_names import LANGUAGES, folder_name, normal_language
from gateway.store.objects import FOLDER_GENERIC, FOLDER_ROOT, FOLDER_SEARCH
from gateway.store.provision import (
    ADDITIONAL_REN,
    PERSIST_FOLDERS,
    PRIVATE_TREE,
    PUBLIC_TREE,
    default_folder_ids,
)
from gateway.store.special import Private, Public
from gateway.store.txn import Txn


def _tree(txn: Txn) -> dict[int, tuple[Any, ...]]:
    return {row[0]: row[1:] for row in txn.conn.execute(
        "SELECT folder_id, parent_id, folder_type, name FROM folders")}


async def test_every_default_folder_exists_with_its_id_parent_and_class(mbox: Mailbox) -> None:
    tree = await mbox.read(_tree)
    assert set(tree) == {int(spec.folder) for spec in PRIVATE_TREE}
    for spec in PRIVATE_TREE:
        parent, folder_type, name = tree[int(spec.folder)]
        assert parent == (None if spec.parent is None else int(spec.parent)), spec
        assert folder_type == spec.folder_type
        assert name == folder_name(spec.folder, "en")
        props = await mbox.folder(int(spec.folder))
        assert props.get(T.PidTagContainerClass) == spec.container_class, spec
        assert props.get(T.PidTagAttributeHidden, False) == spec.hidden, spec
        assert props[T.PidTagFolderId] == ids.make_eid(int(spec.folder))


async def test_what_outlook_and_eas_look_for(mbox: Mailbox) -> None:
    expected = {
        Private.INBOX: ("Inbox", Private.IPM_SUBTREE, "IPF.Note"),
        Private.OUTBOX: ("Outbox", Private.IPM_SUBTREE, "IPF.Note"),
        Private.SENT_ITEMS: ("Sent Items", Private.IPM_SUBTREE, "IPF.Note"),
        Private.DELETED_ITEMS: ("Deleted Items", Private.IPM_SUBTREE, "IPF.Note"),
        Private.DRAFTS: ("Drafts", Private.IPM_SUBTREE, "IPF.Note"),
        Private.CALENDAR: ("Calendar", Private.IPM_SUBTREE, "IPF.Appointment"),
        Private.CONTACTS: ("Contacts", Private.IPM_SUBTREE, "IPF.Contact"),
        Private.TASKS: ("Tasks", Private.IPM_SUBTREE, "IPF.Task"),
        Private.NOTES: ("Notes", Private.IPM_SUBTREE, "IPF.StickyNote"),
        Private.JOURNAL: ("Journal", Private.IPM_SUBTREE, "IPF.Journal"),
        Private.JUNK: ("Junk Email", Private.IPM_SUBTREE, "IPF.Note"),
        Private.SYNC_ISSUES: ("Sync Issues", Private.IPM_SUBTREE, "IPF.Note"),
        Private.CONFLICTS: ("Conflicts", Private.SYNC_ISSUES, "IPF.Note"),
        Private.LOCAL_FAILURES: ("Local Failures", Private.SYNC_ISSUES, "IPF.Note"),
        Private.SERVER_FAILURES: ("Server Failures", Private.SYNC_ISSUES, "IPF.Note"),
        Private.CONVERSATION_ACTION_SETTINGS: ("Conversation Action Settings",
                                               Private.IPM_SUBTREE, "IPF.Configuration"),
        Private.QUICK_STEP_SETTINGS: ("Quick Step Settings", Private.IPM_SUBTREE,
                                      "IPF.Configuration"),
        Private.SUGGESTED_CONTACTS: ("Suggested Contacts", Private.IPM_SUBTREE, "IPF.Contact"),
        Private.RSS_FEEDS: ("RSS Feeds", Private.IPM_SUBTREE, "IPF.Note.OutlookHomepage"),
        Private.REMINDERS: ("Reminders", Private.ROOT, "Outlook.Reminder"),
        Private.COMMON_VIEWS: ("Common Views", Private.ROOT, None),
        Private.FINDER: ("Finder", Private.ROOT, None),
        Private.LOCAL_FREEBUSY: ("Freebusy Data", Private.ROOT, None),
        Private.IPM_SUBTREE: ("Top of Information Store", Private.ROOT, None),
    }
    for folder, (name, parent, container_class) in expected.items():
        props = await mbox.folder(int(folder))
        assert props[T.PidTagDisplayName] == name
        assert props[T.PidTagParentFolderId] == ids.make_eid(int(parent))
        assert props.get(T.PidTagContainerClass) == container_class
    root = await mbox.folder(int(Private.ROOT))
    assert root[T.PidTagFolderType] == FOLDER_ROOT
    assert (await mbox.folder(int(Private.REMINDERS)))[T.PidTagFolderType] == FOLDER_SEARCH
    assert (await mbox.folder(int(Private.INBOX)))[T.PidTagFolderType] == FOLDER_GENERIC
    for hidden in (Private.CONVERSATION_ACTION_SETTINGS, Private.QUICK_STEP_SETTINGS,
                   Private.QUICK_CONTACTS, Private.IM_CONTACT_LIST, Private.GAL_CONTACTS):
        assert (await mbox.folder(int(hidden)))[T.PidTagAttributeHidden] is True
    assert T.PidTagAttributeHidden not in await mbox.folder(int(Private.INBOX))


def _points_at(mbox: Mailbox, entry_id: bytes) -> int:
    kind, provider, folder_gc, message_gc = ids.parse_entry_id(entry_id)
    assert kind == "folder" and message_gc is None
    assert provider == mbox.info.provider
    assert entry_id[22:38] == mbox.info.replica.bytes_le
    return folder_gc


def _persist_blocks(raw: bytes) -> dict[int, bytes]:
    blocks: dict[int, bytes] = {}
    offset = 0
    while True:
        persist_id, size = struct.unpack_from("<HH", raw, offset)
        offset += 4
        if persist_id == 0:
            assert size == 0 and offset == len(raw)
            return blocks
        element_id, element_size = struct.unpack_from("<HH", raw, offset)
        assert element_id == 1 and size == 4 + element_size
        blocks[persist_id] = raw[offset + 4:offset + 4 + element_size]
        offset += size


async def test_special_entry_ids_on_root_and_inbox(mbox: Mailbox) -> None:
    singles = {
        T.PidTagIpmAppointmentEntryId: Private.CALENDAR,
        T.PidTagIpmContactEntryId: Private.CONTACTS,
        T.PidTagIpmJournalEntryId: Private.JOURNAL,
        T.PidTagIpmNoteEntryId: Private.NOTES,
        T.PidTagIpmTaskEntryId: Private.TASKS,
        T.PidTagIpmDraftsEntryId: Private.DRAFTS,
        T.PidTagIpmArchiveEntryId: Private.ARCHIVE,
        T.PidTagRemindersOnlineEntryId: Private.REMINDERS,
    }
    values = []
    for holder in (Private.ROOT, Private.INBOX):
        props = await mbox.folder(int(holder))
        for tag, folder in singles.items():
            assert _points_at(mbox, props[tag]) == folder, hex(tag)
        ren = props[T.PidTagAdditionalRenEntryIds]
        assert [_points_at(mbox, e) for e in ren] == [
            Private.CONFLICTS, Private.SYNC_ISSUES, Private.LOCAL_FAILURES,
            Private.SERVER_FAILURES, Private.JUNK] == list(ADDITIONAL_REN)
        blocks = _persist_blocks(props[T.PidTagAdditionalRenEntryIdsEx])
        assert {pid: _points_at(mbox, e) for pid, e in blocks.items()} == {
            pid: int(folder) for pid, folder in PERSIST_FOLDERS}
        assert blocks.keys() >= {0x8006, 0x8007, 0x8008, 0x800A, 0x800B}
        freebusy = props[T.PidTagFreeBusyEntryIds]
        assert freebusy[:3] == [b"", b"", b""]
        assert _points_at(mbox, freebusy[3]) == Private.LOCAL_FREEBUSY
        values.append({tag: props[tag] for tag in (*singles, T.PidTagAdditionalRenEntryIds,
                                                   T.PidTagFreeBusyEntryIds)})
    assert values[0] == values[1]  # MS-OXOSFLD: the same on both
    sent = await mbox.folder(int(Private.SENT_ITEMS))
    assert T.PidTagIpmAppointmentEntryId not in sent


@pytest.mark.parametrize(("language", "names"), [
    ("de", {Private.INBOX: "Posteingang", Private.SENT_ITEMS: "Gesendete Elemente",
            Private.DELETED_ITEMS: "Gelöschte Elemente", Private.DRAFTS: "Entwürfe",
            Private.OUTBOX: "Postausgang", Private.JUNK: "Junk-E-Mail",
            Private.SYNC_ISSUES: "Synchronisierungsprobleme", Private.CONFLICTS: "Konflikte",
            Private.LOCAL_FAILURES: "Lokale Fehler", Private.SERVER_FAILURES: "Serverfehler",
            Private.VIEWS: "Views"}),
    ("fr", {Private.INBOX: "Boîte de réception", Private.SENT_ITEMS: "Éléments envoyés",
            Private.DELETED_ITEMS: "Éléments supprimés", Private.CALENDAR: "Calendrier",
            Private.TASKS: "Tâches", Private.JUNK: "Courrier indésirable",
            Private.OUTBOX: "Boîte d'envoi"}),
])
async def test_folder_names_in_the_store_language(store: Store, language: str,
                                                  names: dict[Private, str]) -> None:
    mbox = await store.create(f"{language}@example.org", language)
    assert mbox.info.language == language
    tree = await mbox.read(_tree)
    for folder, name in names.items():
        assert tree[int(folder)][2] == name


def test_language_codes_and_fallbacks() -> None:
    assert {"en", "de", "fr", "es", "it"} <= LANGUAGES
    assert normal_language("de_DE") == normal_language("de-AT") == "de"
    assert normal_language("FR_ca.UTF-8") == "fr"
    assert normal_language("pt_BR") == normal_language("") == normal_language(None) == "en"
    assert folder_name(Private.INBOX, "es_ES") == "Bandeja de entrada"
    assert folder_name(Private.JOURNAL, "it") == "Diario"
    assert folder_name(Private.INBOX, "it") == "Posta in arrivo"
    assert folder_name(Private.FINDER, "de") == "Finder"  # internal folders stay English
    assert folder_name(Private.INBOX, "xx") == "Inbox"
    assert folder_name(Public.IPM_SUBTREE, "de") == "IPM_SUBTREE"
    for language in LANGUAGES:
        visible = [folder_name(spec.folder, language) for spec in PRIVATE_TREE
                   if spec.parent == Private.IPM_SUBTREE]
        assert len({n.casefold() for n in visible}) == len(visible), language


async def test_a_public_store(store: Store) -> None:
    public = await store.create("public:example.org")
    tree = await public.read(_tree)
    assert tree == {
        int(Public.ROOT): (None, FOLDER_ROOT, "Root Container"),
        int(Public.IPM_SUBTREE): (int(Public.ROOT), FOLDER_GENERIC, "IPM_SUBTREE"),
        int(Public.NON_IPM_SUBTREE): (int(Public.ROOT), FOLDER_GENERIC, "NON_IPM_SUBTREE"),
        int(Public.EFORMS_REGISTRY): (int(Public.NON_IPM_SUBTREE), FOLDER_GENERIC,
                                      "EFORMS REGISTRY"),
    }
    assert len(PUBLIC_TREE) == 4
    root = await public.folder(int(Public.ROOT))
    assert T.PidTagIpmAppointmentEntryId not in root
    assert default_folder_ids("public")["non_ipm_subtree"] == int(Public.NON_IPM_SUBTREE)


async def test_default_folder_ids_name_existing_folders(mbox: Mailbox) -> None:
    roles = default_folder_ids()
    assert roles["inbox"] == int(Private.INBOX) and roles["trash"] == int(Private.DELETED_ITEMS)
    assert {"inbox", "sent", "trash", "drafts", "junk", "outbox", "calendar", "contacts",
            "tasks", "notes", "journal", "archive"} <= roles.keys()
    tree = await mbox.read(_tree)
    assert set(roles.values()) <= set(tree)
