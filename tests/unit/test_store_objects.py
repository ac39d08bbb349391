"""Folders, messages, recipients, attachments and blobs: the store's object model."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

import pytest

from gateway.store import (
    AccessDenied,
    Collision,
    FolderCycle,
    InvalidValue,
    Mailbox,
    NamedProp,
    NewAttachment,
    NewMessage,
    NotFound,
    Private,
    Store,
    TooBig,
)
from gateway.store import tags as T
from gateway.store.objects import MSGFLAG_HASATTACH, MSGFLAG_READ
from gateway.store.proptypes import PT_LONG, PT_UNICODE

INBOX = int(Private.INBOX)
TRASH = int(Private.DELETED_ITEMS)
ROOM = NamedProp(T.PSETID_Appointment, 0x8208, PT_UNICODE)  # PidLidLocation


def note(subject: str, body: str = "hello", extra: dict | None = None) -> NewMessage:
    return NewMessage(props={T.PidTagMessageClass: "IPM.Note", T.PidTagSubject: subject,
                             T.PidTagBody: body, **(extra or {})})


async def test_folder_tree_names_and_counts(mbox: Mailbox) -> None:
    work = await mbox.create_folder(INBOX, "Work", "IPF.Note")
    sub = await mbox.create_folder(work, "Sub")
    props = await mbox.folder(work)
    assert props[T.PidTagDisplayName] == "Work"
    assert props[T.PidTagContainerClass] == "IPF.Note"
    assert props[T.PidTagSubfolders] is True and props[T.PidTagFolderChildCount] == 1
    assert props[T.PidTagParentEntryId] == (await mbox.folder(INBOX))[T.PidTagEntryId]
    assert await mbox.find_folder(INBOX, "WORK") == work
    assert await mbox.subfolders(work) == [sub]
    with pytest.raises(Collision):
        await mbox.create_folder(INBOX, "work")
    assert await mbox.create_folder(INBOX, "work", open_existing=True) == work


async def test_folder_moves_refuse_cycles_and_protect_default_folders(mbox: Mailbox) -> None:
    a = await mbox.create_folder(INBOX, "A")
    b = await mbox.create_folder(a, "B")
    with pytest.raises(FolderCycle):
        await mbox.move_folder(a, b)
    with pytest.raises(FolderCycle):
        await mbox.move_folder(a, a)
    with pytest.raises(AccessDenied):
        await mbox.move_folder(INBOX, a)
    with pytest.raises(AccessDenied):
        await mbox.delete_folder(INBOX, hard=True)
    await mbox.create_folder(int(Private.IPM_SUBTREE), "B")
    with pytest.raises(Collision):
        await mbox.move_folder(b, int(Private.IPM_SUBTREE))
    await mbox.move_folder(b, int(Private.IPM_SUBTREE), "B2")
    assert await mbox.subfolders(a) == []


async def test_soft_delete_moves_to_deleted_items_and_hard_delete_removes(mbox: Mailbox) -> None:
    folder = await mbox.create_folder(INBOX, "Old")
    mid = await mbox.create_message(folder, note("x"))
    await mbox.delete_folder(folder)
    assert await mbox.find_folder(TRASH, "Old") == folder
    await mbox.delete_folder(folder, hard=True)
    with pytest.raises(NotFound):
        await mbox.folder(folder)
    with pytest.raises(NotFound):
        await mbox.message(mid)


async def test_copy_folder_copies_messages_and_subfolders(mbox: Mailbox) -> None:
    src = await mbox.create_folder(INBOX, "Src")
    await mbox.create_message(src, note("one"))
    await mbox.create_folder(src, "Child")
    copy = await mbox.copy_folder(src, int(Private.IPM_SUBTREE), "Copy")
    props = await mbox.folder(copy)
    assert props[T.PidTagContentCount] == 1 and props[T.PidTagFolderChildCount] == 1


async def test_message_properties_computed_and_named(mbox: Mailbox) -> None:
    mid = await mbox.create_message(INBOX, note("Hi", extra={ROOM: "Room 1"}))
    props = await mbox.message(mid)
    assert props[T.PidTagSubject] == "Hi"
    assert props[T.PidTagMessageFlags] & MSGFLAG_READ == 0
    assert len(props[T.PidTagEntryId]) == 70 and len(props[T.PidTagSourceKey]) == 22
    assert props[T.PidTagMessageSize] > 0
    assert (await mbox.message(mid, [ROOM, T.PidTagSubject])) == {ROOM: "Room 1",
                                                                  T.PidTagSubject: "Hi"}
    before = props[T.PidTagChangeKey]
    await mbox.set_message_props(mid, {T.PidTagSubject: "Hi again", ROOM: None})
    after = await mbox.message(mid)
    assert after[T.PidTagSubject] == "Hi again" and ROOM not in await mbox.message(mid, [ROOM])
    assert after[T.PidTagChangeKey] != before
    assert before in after[T.PidTagPredecessorChangeList] or len(
        after[T.PidTagPredecessorChangeList]) == 23


async def test_read_state_is_its_own_change(mbox: Mailbox) -> None:
    mid = await mbox.create_message(INBOX, note("r"))
    key = (await mbox.message(mid))[T.PidTagChangeKey]
    assert await mbox.set_read([mid]) == [mid]
    assert await mbox.set_read([mid]) == []
    props = await mbox.message(mid)
    assert props[T.PidTagMessageFlags] & MSGFLAG_READ
    assert props[T.PidTagChangeKey] == key
    counts = await mbox.folder(INBOX, [T.PidTagContentCount, T.PidTagContentUnreadCount])
    assert counts == {T.PidTagContentCount: 1, T.PidTagContentUnreadCount: 0}


async def test_recipients_and_attachments_with_embedded_message(mbox: Mailbox) -> None:
    inner = note("inner", body="x" * 50_000)
    inner.attachments.append(NewAttachment({T.PidTagAttachLongFilename: "deep.txt",
                                            T.PidTagAttachDataBinary: b"deep"}))
    message = note("outer")
    message.recipients = [{T.PidTagDisplayName: "Bob", T.PidTagSmtpAddress: "bob@x.org",
                           T.PidTagRecipientType: 1}]
    message.attachments = [
        NewAttachment({T.PidTagAttachLongFilename: "a.bin"}, data=iter([b"ab", b"cd"])),
        NewAttachment({T.PidTagDisplayName: "fwd"}, embedded=inner),
    ]
    mid = await mbox.create_message(INBOX, message)
    props = await mbox.message(mid)
    assert props[T.PidTagHasAttachments] and props[T.PidTagMessageFlags] & MSGFLAG_HASATTACH
    assert props[T.PidTagMessageSize] > 50_000
    recipients = await mbox.recipients(mid)
    assert recipients[0][T.PidTagSmtpAddress] == "bob@x.org" and recipients[0][T.PidTagRowid] == 0
    listed = await mbox.attachments(mid)
    assert [a[T.PidTagAttachNumber] for a in listed] == [0, 1]
    assert b"".join([c async for c in mbox.attachment_data(mid, 0)]) == b"abcd"
    embedded = await mbox.embedded_message(mid, 1)
    assert (await mbox.message(embedded))[T.PidTagBody] == "x" * 50_000
    deep = await mbox.attachment(embedded, 0)
    assert deep[T.PidTagAttachDataBinary] == b"deep"
    await mbox.delete_attachment(mid, 1)
    assert [a[T.PidTagAttachNumber] for a in await mbox.attachments(mid)] == [0]
    with pytest.raises(NotFound):
        await mbox.message(embedded)


async def test_large_values_go_to_deduplicated_blob_files(mbox: Mailbox) -> None:
    body = os.urandom(200_000).hex()  # incompressible, larger than the inline limit
    first = await mbox.create_message(INBOX, note("a", body=body))
    second = await mbox.create_message(INBOX, note("b", body=body))
    files = list((mbox.path / "blobs").glob("*/*.zst"))
    assert len(files) == 1
    assert (await mbox.message(second, [T.PidTagBody]))[T.PidTagBody] == body
    await mbox.delete_messages([first], hard=True)
    assert files[0].exists()
    await mbox.delete_messages([second], hard=True)
    assert not files[0].exists()


async def test_streamed_attachment_is_never_joined_in_memory(mbox: Mailbox) -> None:
    chunk = os.urandom(1 << 20)
    produced = 0

    def chunks():
        nonlocal produced
        for _ in range(8):
            produced += 1
            yield chunk

    mid = await mbox.create_message(INBOX, NewMessage(
        props={T.PidTagSubject: "big"},
        attachments=[NewAttachment({T.PidTagAttachLongFilename: "big.bin"}, data=chunks())]))
    sizes = [len(c) async for c in mbox.attachment_data(mid, 0)]
    assert produced == 8 and sum(sizes) == 8 << 20 and max(sizes) <= 64 * 1024
    assert (await mbox.attachment(mid, 0, [T.PidTagAttachSize]))[T.PidTagAttachSize] >= 8 << 20


async def test_original_internet_message_comes_back_exactly(mbox: Mailbox) -> None:
    raw = b"From: a@b\r\nSubject: x\r\n\r\nbody\r\n.\r\n\x00\xff"
    mid = await mbox.create_message(INBOX, NewMessage(props={T.PidTagSubject: "x"}, mime=raw))
    assert b"".join([c async for c in mbox.original_message(mid)]) == raw


async def test_move_gives_new_ids_and_copy_duplicates(mbox: Mailbox) -> None:
    folder = await mbox.create_folder(INBOX, "Dest")
    mid = await mbox.create_message(INBOX, note("m"))
    moved = await mbox.move_messages([mid], folder)
    assert moved[mid] != mid
    with pytest.raises(NotFound):
        await mbox.message(mid)
    copies = await mbox.copy_messages([moved[mid]], INBOX)
    assert (await mbox.message(copies[moved[mid]]))[T.PidTagSubject] == "m"
    await mbox.delete_messages([copies[moved[mid]]])
    trash = await mbox.folder(TRASH, [T.PidTagContentCount])
    assert trash[T.PidTagContentCount] == 1


async def test_bad_input_is_refused_and_nothing_is_written(mbox: Mailbox) -> None:
    before = await mbox.last_change_number()
    bad_type = note("x")
    bad_type.props[T.PidTagSubject] = 5
    with pytest.raises(InvalidValue):
        await mbox.create_message(INBOX, bad_type)
    with pytest.raises(NotFound):
        await mbox.create_message(0xDEAD, note("x"))
    with pytest.raises(NotFound):
        await mbox.set_message_props(0xBEEF, {T.PidTagSubject: "x"})
    too_many = note("x")
    too_many.props.update({(0x6000 + i) << 16 | PT_LONG: i for i in range(5000)})
    with pytest.raises(TooBig):
        await mbox.create_message(INBOX, too_many)
    with pytest.raises(InvalidValue):
        await mbox.create_folder(INBOX, "")
    half = note("attachment breaks")
    half.attachments.append(NewAttachment({T.PidTagAttachLongFilename: 7}))
    with pytest.raises(InvalidValue):
        await mbox.create_message(INBOX, half)
    assert await mbox.last_change_number() == before
    assert (await mbox.folder(INBOX))[T.PidTagContentCount] == 0


async def test_oversized_values_hit_the_configured_limit(store: Store) -> None:
    from dataclasses import replace

    mbox = await store.create("small@example.org")
    mbox.limits = replace(mbox.limits, max_value_bytes=1000)
    with pytest.raises(InvalidValue, match="limit"):
        await mbox.create_message(INBOX, note("x", body="y" * 1001))


async def test_writes_of_different_stores_do_not_wait_for_each_other(store: Store) -> None:
    a = await store.create("a@example.org")
    b = await store.create("b@example.org")
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow(txn: object) -> None:
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=5)

    stuck = asyncio.create_task(a.write(slow))
    await asyncio.wait_for(b.create_message(INBOX, note("quick")), timeout=2)
    release.set()
    await stuck


async def test_events_follow_commits(mbox: Mailbox, store_events: list) -> None:
    store_events.clear()
    mid = await mbox.create_message(INBOX, note("e"), new_mail=True)
    kinds = [(e.kind, e.object_id) for e in store_events]
    assert ("new_mail", mid) in kinds
    counts = [e for e in store_events if e.kind == "folder_counts"]
    assert counts[-1].data["content_count"] == 1 and counts[-1].folder_id == INBOX


async def test_delivery_time_defaults_to_now(mbox: Mailbox) -> None:
    mid = await mbox.create_message(INBOX, note("t"))
    stamp = (await mbox.message(mid, [T.PidTagMessageDeliveryTime]))[
        T.PidTagMessageDeliveryTime]
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60


async def test_folder_counts_kept_by_triggers_match_the_messages(mbox: Mailbox) -> None:
    from gateway.store.check import check_store

    work = await mbox.create_folder(INBOX, "Counted")
    ids = [await mbox.create_message(work, note(f"m{i}")) for i in range(6)]
    await mbox.create_message(work, NewMessage(props={T.PidTagMessageClass: "IPM.Rule"},
                                               associated=True))
    await mbox.set_read(ids[:2])
    await mbox.set_read(ids[:1], False)
    moved = await mbox.move_messages(ids[2:4], INBOX)
    await mbox.copy_messages(list(moved.values()), work)
    await mbox.delete_messages([ids[4]])
    await mbox.delete_messages([ids[5]], hard=True)
    await mbox.set_message_props(ids[1], {T.PidTagMessageFlags: 0})  # unread through flags
    copy = await mbox.copy_folder(work, int(Private.IPM_SUBTREE), "Counted copy")
    props = await mbox.folder(work)
    assert (props[T.PidTagContentCount], props[T.PidTagContentUnreadCount],
            props[T.PidTagAssociatedContentCount]) == (4, 4, 1)
    assert (await mbox.folder(copy))[T.PidTagContentCount] == 4
    await mbox.empty_folder(work, associated=True)
    await mbox.delete_folder(copy, hard=True)
    problems, _ = await mbox.read(check_store)
    assert problems == []
