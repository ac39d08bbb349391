"""The store's DAV support: item names, look-ups, kept renderings, replace, named tombstones."""

from __future__ import annotations

import sqlite3

from gateway.store import Mailbox, NewAttachment, NewMessage, Private, Store, dav, sync
from gateway.store import tags as T
from gateway.store.database import DB_NAME

CALENDAR = int(Private.CALENDAR)


async def put(mbox: Mailbox, name: str, subject: str, mid: int | None = None) -> tuple[int, int]:
    new = NewMessage({T.PidTagSubject: subject, T.PidTagMessageClass: "IPM.Appointment"})
    return await mbox.write(dav.save_item, CALENDAR, mid, new, name, "ical",
                            f"BEGIN:VCALENDAR\r\nX-S:{subject}\r\nEND:VCALENDAR\r\n".encode())


async def test_items_carry_their_names_and_change_numbers(mbox: Mailbox) -> None:
    a, cn_a = await put(mbox, "a.ics", "A")
    other = await mbox.create_message(CALENDAR, NewMessage({T.PidTagSubject: "from EWS"}))
    items = await mbox.read(dav.items, CALENDAR)
    assert [(i.id, i.name) for i in items] == [(a, "a.ics"), (other, None)]
    assert items[0].change_number == cn_a
    assert await mbox.read(dav.by_name, CALENDAR, "a.ics") == a
    assert await mbox.read(dav.by_name, CALENDAR, "A.ICS") is None
    assert await mbox.read(dav.by_names, CALENDAR, ["a.ics", "zz.ics"]) == {"a.ics": a}
    assert await mbox.read(dav.items, CALENDAR, [other, 999999]) == [items[1]]


async def test_a_rendering_is_used_only_while_the_change_number_holds(mbox: Mailbox) -> None:
    a, _cn = await put(mbox, "a.ics", "A")
    assert (await mbox.read(dav.renders, [a], "ical"))[a].startswith(b"BEGIN:VCALENDAR")
    assert await mbox.read(dav.renders, [a], "vcard") == {}
    await mbox.set_message_props(a, {T.PidTagSubject: "changed in Outlook"})
    assert await mbox.read(dav.renders, [a], "ical") == {}
    new_cn = await mbox.read(dav.change_number, a)
    await mbox.write(dav.keep_renders, "ical", {a: (new_cn, b"again")})
    assert await mbox.read(dav.renders, [a], "ical") == {a: b"again"}


async def test_replace_keeps_id_name_and_creation_time_and_drops_the_rest(mbox: Mailbox) -> None:
    a, cn = await put(mbox, "a.ics", "A")
    await mbox.add_attachment(a, NewAttachment({T.PidTagAttachLongFilename: "x.txt"},
                                               data=[b"x"]))
    await mbox.set_recipients(a, [{T.PidTagDisplayName: "Bob", T.PidTagRecipientType: 1}])
    created = (await mbox.message(a, [T.PidTagCreationTime]))[T.PidTagCreationTime]
    same, cn2 = await put(mbox, "a.ics", "B", mid=a)
    assert same == a and cn2 > cn
    props = await mbox.message(a, [T.PidTagSubject, T.PidTagCreationTime, dav.DAV_NAME])
    assert props == {T.PidTagSubject: "B", T.PidTagCreationTime: created, dav.DAV_NAME: "a.ics"}
    assert await mbox.attachments(a) == [] and await mbox.recipients(a) == []
    assert (await mbox.read(dav.renders, [a], "ical"))[a].find(b"X-S:B") > 0


async def test_tombstones_remember_the_dav_name_for_sync(mbox: Mailbox) -> None:
    a, _ = await put(mbox, "a.ics", "A")
    b, _ = await put(mbox, "b.ics", "B")
    state = (await sync.sync_contents(mbox, CALENDAR, None)).state
    await mbox.delete_messages([a], hard=True)
    await mbox.move_messages([b], int(Private.TASKS))
    result = await sync.sync_contents(mbox, CALENDAR, state)
    assert sorted(i.id for i in result.deleted) == [a, b]
    names = await mbox.read(lambda txn: dict(txn.conn.execute(
        "SELECT object_id, name FROM tombstones WHERE folder_id = ?", (CALENDAR,))))
    assert names == {a: "a.ics", b: "b.ics"}
    assert await mbox.read(dav.renders, [a, b], "ical") == {}


async def test_a_version_4_store_gains_renders_and_tombstone_names(store: Store) -> None:
    mbox = await store.create("old@example.test")
    path = mbox.path
    await store.close()
    with sqlite3.connect(path / DB_NAME) as conn:
        conn.execute("DROP TRIGGER renders_gc")
        conn.execute("DROP TRIGGER renders_moved")
        conn.execute("DROP TABLE renders")
        conn.execute("ALTER TABLE tombstones DROP COLUMN name")
        conn.execute("PRAGMA user_version = 4")
    reopened = Store(store.data_dir, store.section)
    try:
        mbox = await reopened.open("old@example.test")
        a, _ = await put(mbox, "a.ics", "A")
        assert a in await mbox.read(dav.renders, [a], "ical")
        await mbox.delete_messages([a], hard=True)
    finally:
        await reopened.close()
