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
