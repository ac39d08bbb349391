"""IMAP's view of the store: UIDs, UIDVALIDITY, MODSEQ, flags on MAPI properties, expunge."""

from __future__ import annotations

import pytest

from gateway.store import InvalidArgument, Mailbox, NewMessage, Private, Store, imap
from gateway.store import tags as T
from gateway.store.objects import MSGFLAG_UNSENT

INBOX = int(Private.INBOX)


async def add(mbox: Mailbox, n: int) -> list[int]:
    return await mbox.create_messages(INBOX, [NewMessage({T.PidTagSubject: str(i)})
                                              for i in range(n)])


async def flags_of(mbox: Mailbox, mid: int) -> frozenset[str]:
    return {i.message_id: i.flags for i in await mbox.read(imap.listing, INBOX)}[mid]


async def test_uids_grow_and_uidvalidity_differs_per_folder(mbox: Mailbox) -> None:
    first = await mbox.read(imap.status, INBOX)
    ids = await add(mbox, 3)
    listing = await mbox.read(imap.listing, INBOX)
    assert [i.uid for i in listing] == [first.uidnext, first.uidnext + 1, first.uidnext + 2]
    await mbox.delete_messages([ids[2]], hard=True)
    await add(mbox, 1)
    assert (await mbox.read(imap.listing, INBOX))[-1].uid == first.uidnext + 3
    a = await mbox.create_folder(INBOX, "A")
    await mbox.delete_folder(a, hard=True)
    b = await mbox.create_folder(INBOX, "A")
    va = first.uidvalidity
    vb = (await mbox.read(imap.status, b)).uidvalidity
    assert vb != va and vb > 0


@pytest.mark.parametrize(("flag", "tag", "value"), [
    ("\\Flagged", T.PidTagFlagStatus, 2),
    ("\\Answered", T.PidTagLastVerbExecuted, 102),
    ("$Forwarded", T.PidTagLastVerbExecuted, 104),
])
async def test_flags_are_mapi_properties(mbox: Mailbox, flag: str, tag: int,
                                         value: int) -> None:
    (mid,) = await add(mbox, 1)
    changed, _ = await mbox.write(imap.store_flags, INBOX, [mid], [flag], "add")
    assert changed == [mid]
    assert (await mbox.message(mid, [tag]))[tag] == value
    assert flag in await flags_of(mbox, mid)
    await mbox.write(imap.store_flags, INBOX, [mid], [flag], "remove")
    assert tag not in await mbox.message(mid, [tag])


async def test_seen_draft_keywords_deleted(mbox: Mailbox) -> None:
    (mid,) = await add(mbox, 1)
    await mbox.write(imap.store_flags, INBOX, [mid],
                     ["\\Seen", "\\Draft", "$Label1", "Work", "\\Answered", "$Forwarded"], "set")
    props = await mbox.message(mid, [T.PidTagMessageFlags, T.PidNameKeywords])
    assert props[T.PidTagMessageFlags] & 1 and props[T.PidTagMessageFlags] & MSGFLAG_UNSENT
    assert props[T.PidNameKeywords] == ["$Label1", "Work"]
    assert await flags_of(mbox, mid) == {"\\Seen", "\\Draft", "$Label1", "Work", "\\Answered",
                                         "$Forwarded"}
    key = (await mbox.message(mid))[T.PidTagChangeKey]
    await mbox.write(imap.store_flags, INBOX, [mid], ["\\Deleted"], "add")
    assert (await mbox.message(mid))[T.PidTagChangeKey] == key  # no MAPI change
    assert "\\Deleted" in await flags_of(mbox, mid)


async def test_outlook_categories_with_spaces_stay_but_are_not_shown(mbox: Mailbox) -> None:
    (mid,) = await add(mbox, 1)
    await mbox.set_message_props(mid, {T.PidNameKeywords: ["Red Category", "Blue"]})
    assert await flags_of(mbox, mid) == {"Blue"}
    await mbox.write(imap.store_flags, INBOX, [mid], ["Green"], "add")
    kept = (await mbox.message(mid, [T.PidNameKeywords]))[T.PidNameKeywords]
    assert sorted(kept) == ["Blue", "Green", "Red Category"]


async def test_modseq_rises_on_every_change_and_unchangedsince_guards(mbox: Mailbox) -> None:
    a, b = await add(mbox, 2)
    before = {i.message_id: i.modseq for i in await mbox.read(imap.listing, INBOX)}
    await mbox.write(imap.store_flags, INBOX, [a], ["\\Seen"], "add")
    after = {i.message_id: i.modseq for i in await mbox.read(imap.listing, INBOX)}
    assert after[a] > before[a] and after[b] == before[b]
    changed = await mbox.read(imap.listing, INBOX, before[b])
    assert [i.message_id for i in changed] == [a]
    ok, failed = await mbox.write(imap.store_flags, INBOX, [a, b], ["\\Flagged"], "add",
                                  before[b])
    assert ok == [b] and failed == [a]
    status = await mbox.read(imap.status, INBOX)
    assert status.highest_modseq >= max(i.modseq for i in await mbox.read(imap.listing, INBOX))


async def test_expunge_removes_only_deleted_and_reports_vanished(mbox: Mailbox) -> None:
    a, b, c = await add(mbox, 3)
    status = await mbox.read(imap.status, INBOX)
    await mbox.write(imap.store_flags, INBOX, [a, c], ["\\Deleted"], "add")
    uids = {i.message_id: i.uid for i in await mbox.read(imap.listing, INBOX)}
    assert await mbox.write(imap.expunge, INBOX, [uids[c]]) == [uids[c]]
    assert await mbox.write(imap.expunge, INBOX) == [uids[a]]
    assert await mbox.read(imap.vanished, INBOX, status.highest_modseq) == sorted(
        [uids[a], uids[c]])
    assert list(await mbox.read(imap.uid_to_id, INBOX, [uids[b], 999])) == [uids[b]]


async def test_bad_flags_and_foreign_ids_are_refused(store: Store, mbox: Mailbox) -> None:
    (mid,) = await add(mbox, 1)
    for bad in (["\\Recent"], ["\\Bogus"], ["bad keyword"], ["a(b"]):
        with pytest.raises(InvalidArgument):
            await mbox.write(imap.store_flags, INBOX, [mid], bad, "add")
    other = await store.create("other@example.org")
    (foreign,) = await other.create_messages(INBOX, [NewMessage({T.PidTagSubject: "x"})])
    from gateway.store import NotFound
    with pytest.raises(NotFound):
        await mbox.write(imap.store_flags, INBOX, [foreign + 1000], ["\\Seen"], "add")


# -- the mailbox model's additions: folder tree, subscriptions, \Recent, poll, APPEND ----------

async def test_folder_tree_carries_class_hidden_subscription_and_rights(store: Store,
                                                                        mbox: Mailbox) -> None:
    from gateway.store.permissions import DEFAULT, REVIEWER, Grant, Permissions
    from gateway.store.rights import ALL, FREE_BUSY_TIME_ONLY

    rows = {row.folder_id: row for row in await mbox.read(imap.folder_tree)}
    assert rows[INBOX].container_class == "IPF.Note" and rows[INBOX].subscribed
    assert rows[int(Private.YAMMER_ROOT)].hidden and rows[INBOX].rights == int(ALL)
    assert rows[INBOX].parent_id == int(Private.IPM_SUBTREE) and rows[INBOX].name == "Inbox"
    await mbox.write(imap.set_subscribed, INBOX, False)
    key = (await mbox.folder(INBOX))[T.PidTagChangeKey]
    assert not {r.folder_id: r for r in await mbox.read(imap.folder_tree)}[INBOX].subscribed
    assert (await mbox.folder(INBOX))[T.PidTagChangeKey] == key  # no MAPI change
    await mbox.write(imap.set_subscribed, INBOX, True)
    assert {r.folder_id: r for r in await mbox.read(imap.folder_tree)}[INBOX].subscribed
    await Permissions(mbox).set_acl(INBOX, "bob@example.org", REVIEWER)
    seen = {r.folder_id: r.rights for r in await mbox.read(imap.folder_tree, "bob@example.org")}
    assert seen[INBOX] == int(REVIEWER)
    assert seen[int(Private.CALENDAR)] == int(FREE_BUSY_TIME_ONLY)  # the default entry
    assert seen[int(Private.SENT_ITEMS)] == 0
    await Permissions(mbox).set_acl(int(Private.SENT_ITEMS), DEFAULT, REVIEWER)
    seen = {r.folder_id: r.rights for r in await mbox.read(imap.folder_tree, "carol@x.org")}
    assert seen[int(Private.SENT_ITEMS)] == int(REVIEWER) and seen[INBOX] == 0
    await Permissions(mbox).set_grant("carol@x.org", Grant(full_access=True))
    seen = {r.folder_id: r.rights for r in await mbox.read(imap.folder_tree, "carol@x.org")}
    assert seen[INBOX] == int(ALL)


async def test_subscription_names_noselect_and_recent_floor(mbox: Mailbox) -> None:
    assert await mbox.read(imap.subscriptions) == []
    await mbox.write(imap.set_subscription, "Other Users/b@x.org/INBOX", True)
    await mbox.write(imap.set_subscription, "Gone", True)
    await mbox.write(imap.set_subscription, "Gone", True)
    assert await mbox.read(imap.subscriptions) == ["Gone", "Other Users/b@x.org/INBOX"]
    await mbox.write(imap.set_subscription, "Gone", False)
    assert await mbox.read(imap.subscriptions) == ["Other Users/b@x.org/INBOX"]
    folder = await mbox.create_folder(INBOX, "P", "IPF.Note")
    child = await mbox.create_folder(folder, "C", "IPF.Note")
    await mbox.create_messages(folder, [NewMessage({T.PidTagSubject: "x"})] * 2)
    assert await mbox.write(imap.make_noselect, folder) == 2
    rows = {r.folder_id: r for r in await mbox.read(imap.folder_tree)}
    assert rows[folder].noselect and not rows[child].noselect
    await mbox.write(imap.clear_noselect, folder)
    assert not {r.folder_id: r for r in await mbox.read(imap.folder_tree)}[folder].noselect
    # \Recent: the first claim gets everything, the next only what arrived since.
    await add(mbox, 3)
    status = await mbox.read(imap.status, INBOX)
    assert status.recent == 3 and status.recent_floor == 1
    assert await mbox.write(imap.claim_recent, INBOX) == 1
    assert (await mbox.read(imap.status, INBOX)).recent == 0
    await add(mbox, 1)
    assert await mbox.write(imap.claim_recent, INBOX) == status.uidnext
    assert await mbox.write(imap.claim_recent, INBOX) == status.uidnext + 1


async def test_changes_is_one_counter_read_when_nothing_changed(mbox: Mailbox) -> None:
    a, b, c = await add(mbox, 3)
    status, items, last = await mbox.read(imap.select, INBOX)
    assert [i.message_id for i in items] == [a, b, c] and status.messages == 3
    assert status.unseen == 3 and status.highest_modseq == max(i.modseq for i in items)
    assert await mbox.read(imap.changes, INBOX, last) is None
    await mbox.set_read([b])
    await mbox.delete_messages([c], hard=True)
    (d,) = await add(mbox, 1)
    found = await mbox.read(imap.changes, INBOX, last)
    assert found is not None and found.exists and found.count == 3
    assert [i.message_id for i in found.changed] == [b, d]
    assert found.vanished == [items[2].uid] and found.last_cn > last
    assert await mbox.read(imap.changes, INBOX, found.last_cn) is None
    assert await mbox.read(imap.uids_of, INBOX) == [items[0].uid, items[1].uid,
                                                     found.changed[1].uid]
    await mbox.delete_folder(await mbox.create_folder(INBOX, "T"), hard=True)
    other = await mbox.create_folder(INBOX, "Gone")
    mark = await mbox.last_change_number()
    await mbox.delete_folder(other, hard=True)
    gone = await mbox.read(imap.changes, other, mark)
    assert gone is not None and not gone.exists
    assert await mbox.read(imap.pruned_cn) == 0


async def test_append_sets_flags_in_one_change(mbox: Mailbox, store_events: list) -> None:
    message = NewMessage({T.PidTagSubject: "hello", T.PidNameKeywords: ["FromHeader"]},
                         mime=b"Subject: hello\r\n\r\nbody\r\n")
    store_events.clear()
    uid, mid = await mbox.write(imap.append, INBOX, message,
                                ["\\Seen", "\\Answered", "$Forwarded", "\\Draft", "\\Flagged",
                                 "\\Deleted", "Work"])
    assert [e.kind for e in store_events if e.object_id == mid] == ["object_created"]
    (item,) = await mbox.read(imap.listing, INBOX)
    assert item.uid == uid and item.message_id == mid
    assert item.flags == {"\\Seen", "\\Answered", "$Forwarded", "\\Draft", "\\Flagged",
                          "\\Deleted", "Work", "FromHeader"}
    assert (await mbox.read(imap.status, INBOX)).deleted == 1
    assert await mbox.read(imap.uids_of_ids, [mid]) == {mid: (INBOX, uid)}
    assert await mbox.read(imap.uidvalidity, INBOX) == (await mbox.read(
        imap.status, INBOX)).uidvalidity
    with pytest.raises(InvalidArgument):
        await mbox.write(imap.append, INBOX, NewMessage({}), ["\\Recent"])
