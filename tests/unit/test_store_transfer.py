"""Copies and moves between two stores: everything arrives, named ids are re-mapped."""

from __future__ import annotations

import os

from gateway.store import NamedProp, NewAttachment, NewMessage, NotFound, Private, Store, transfer
from gateway.store import tags as T
from gateway.store.proptypes import PT_UNICODE

INBOX = int(Private.INBOX)
LABEL = NamedProp(T.PS_PUBLIC_STRINGS, "x-label", PT_UNICODE)


async def test_message_with_attachments_and_named_props_crosses_stores(store: Store) -> None:
    a = await store.create("a@example.org")
    b = await store.create("b@example.org")
    await b.create_message(INBOX, NewMessage({NamedProp(T.PS_PUBLIC_STRINGS, "other",
                                                        PT_UNICODE): "shift ids"}))
    big = os.urandom(300_000)
    inner = NewMessage({T.PidTagSubject: "inner"})
    message = NewMessage(
        {T.PidTagSubject: "hello", LABEL: "red", T.PidTagMessageFlags: 1},
        recipients=[{T.PidTagDisplayName: "Bob"}],
        attachments=[NewAttachment({T.PidTagAttachLongFilename: "big"}, data=iter([big])),
                     NewAttachment({}, embedded=inner)],
        mime=b"Subject: hello\r\n\r\nbody\r\n")
    source_id = await a.create_message(INBOX, message)
    mapping = await transfer.copy_messages(a, [source_id], b, INBOX, move=True)
    copy = mapping[source_id]
    props = await b.message(copy, [T.PidTagSubject, LABEL, T.PidTagMessageFlags])
    assert props[T.PidTagSubject] == "hello" and props[LABEL] == "red"
    assert props[T.PidTagMessageFlags] & 1
    assert (await b.recipients(copy))[0][T.PidTagDisplayName] == "Bob"
    assert b"".join([c async for c in b.attachment_data(copy, 0)]) == big
    inner_id = await b.embedded_message(copy, 1)
    assert (await b.message(inner_id, [T.PidTagSubject]))[T.PidTagSubject] == "inner"
    assert b"".join([c async for c in b.original_message(copy)]).startswith(b"Subject: hello")
    try:
        await a.message(source_id)
        raise AssertionError("the source should be gone after a move")
    except NotFound:
        pass
    assert await b.total_size() == await b.read(lambda txn: int(txn.conn.execute(
        "SELECT total(size) FROM messages WHERE folder_id IS NOT NULL").fetchone()[0]))


async def test_folder_tree_copies_to_another_store(store: Store) -> None:
    a = await store.create("a@example.org")
    b = await store.create("b@example.org")
    top = await a.create_folder(INBOX, "Project", "IPF.Note")
    sub = await a.create_folder(top, "Sub")
    await a.create_message(sub, NewMessage({T.PidTagSubject: "deep"}))
    copied = await transfer.copy_folder(a, top, b, INBOX)
    assert (await b.folder(copied))[T.PidTagContainerClass] == "IPF.Note"
    (child,) = await b.subfolders(copied)
    assert (await b.folder(child))[T.PidTagContentCount] == 1
