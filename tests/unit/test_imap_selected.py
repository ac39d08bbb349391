"""The selected mailbox: SELECT/EXAMINE lines, poll (EXISTS, EXPUNGE, VANISHED, FETCH),
STORE, EXPUNGE, COPY and MOVE against a real store, with a second "session" writing
through the store API as delivery, EAS or another IMAP session would."""

from __future__ import annotations

import re

import pytest

from gateway.host import Host
from gateway.store import Mailbox, NewMessage, Private, Store, imap
from gateway.store import tags as T
from gateway.store.permissions import EDITOR, REVIEWER, Permissions
from plugins.imap.mailboxes import MailboxEntry, MailboxError, MailboxTree
from plugins.imap.selected import MailboxGone, SelectedMailbox
from tests.unit.test_imap_mailboxes import BOB, USER, add
from tests.unit.test_imap_mailboxes import host as host

INBOX = int(Private.INBOX)


async def select(host: Host, name: str = "INBOX", *, readonly: bool = False, rev2: bool = False,
                 qresync: tuple | None = None) -> tuple[SelectedMailbox, list[bytes]]:
    tree = await MailboxTree.load(host, USER)
    entry = tree.find(name)
    assert entry is not None
    return await SelectedMailbox.open(tree, entry, readonly=readonly, condstore=True,
                                      qresync=qresync, rev2=rev2)


def text(lines: list[bytes]) -> str:
    return b"".join(lines).decode()


async def test_select_lines_recent_and_examine(host: Host, mbox: Mailbox) -> None:
    ids = await add(mbox, INBOX, 3)
    await mbox.write(imap.store_flags, INBOX, ids[:1], ["\\Seen", "$Label1"], "add")
    view, lines = await select(host)
    out = text(lines)
    assert "* 3 EXISTS\r\n" in out and "* 3 RECENT\r\n" in out
    assert "* OK [UNSEEN 2]" in out
    assert "$Label1" in out.split("\r\n")[0] and out.startswith("* FLAGS (")
    assert "[PERMANENTFLAGS (\\Seen \\Flagged \\Answered \\Draft \\Deleted $Forwarded \\*)]" in out
    status = await mbox.read(imap.status, INBOX)
    assert f"[UIDVALIDITY {status.uidvalidity}]" in out and f"[UIDNEXT {status.uidnext}]" in out
    assert f"[HIGHESTMODSEQ {status.highest_modseq}]" in out
    assert not view.readonly and view.uids == sorted(view.uids) and len(view.uids) == 3
    assert view.uid_of(1) == view.uids[0] and view.seq_of(view.uids[2]) == 3
    assert view.seq_of(10**6) is None and view.message_id(view.uids[0]) == ids[0]
    assert "\\Recent" in view.flags_text(view.uids[0])
    # \Recent went to the first session: the next SELECT sees none.
    again, lines = await select(host)
    assert "* 0 RECENT\r\n" in text(lines) and "\\Recent" not in again.flags_text(again.uids[0])
    examined, lines = await select(host, readonly=True)
    assert examined.readonly and "[PERMANENTFLAGS ()]" in text(lines)
    with pytest.raises(MailboxError):
        await examined.store(examined.uids[:1], "add", ["\\Seen"])
    _, lines = await select(host, rev2=True)
    assert "RECENT" not in text(lines) and "UNSEEN" not in text(lines)


async def test_poll_reports_new_flag_changes_and_expunges(host: Host, mbox: Mailbox) -> None:
    ids = await add(mbox, INBOX, 5)
    view, _ = await select(host)
    assert await view.poll(expunges=True, qresync=False, condstore=False) == []
    new = await add(mbox, INBOX, 2)
    out = text(await view.poll(expunges=True, qresync=False, condstore=False))
    assert out == "* 7 EXISTS\r\n* 7 RECENT\r\n"  # the first 5 were recent at SELECT
    assert view.message_id(view.uid_of(7)) == new[1]
    await mbox.write(imap.store_flags, INBOX, [ids[1]], ["\\Flagged"], "add")
    await mbox.set_read([ids[2]])
    out = text(await view.poll(expunges=True, qresync=False, condstore=True))
    uid2, uid3 = view.uid_of(2), view.uid_of(3)
    assert re.search(rf"\* 2 FETCH \(UID {uid2} FLAGS \(\\Flagged \\Recent\) MODSEQ \(\d+\)\)",
                     out)
    assert f"* 3 FETCH (UID {uid3} FLAGS (\\Recent \\Seen) MODSEQ (" in out
    assert await view.poll(expunges=True, qresync=False, condstore=True) == []
    # Another session expunges 2 and 4: reported highest first.
    await mbox.delete_messages([ids[1], ids[3]], hard=True)
    held = await view.poll(expunges=False, qresync=False, condstore=False)
    assert held == [] and view.exists == 7 and view.is_expunged(uid2)
    assert "\\Flagged" in view.flags_of(uid2).flags and view.seq_of(uid2) == 2
    assert await view.store([uid2], "add", ["\\Seen"]) == ([], [])  # gone: skipped
    assert uid2 not in view.view_uids()
    out = text(await view.poll(expunges=True, qresync=False, condstore=False))
    assert out == "* 4 EXPUNGE\r\n* 2 EXPUNGE\r\n"
    assert view.exists == 5 and view.seq_of(uid3) == 2
    # Under QRESYNC, one VANISHED line.
    await mbox.delete_messages([ids[0], new[0]], hard=True)
    out = text(await view.poll(expunges=True, qresync=True, condstore=True))
    assert out.startswith("* VANISHED ") and view.exists == 3
    # A move out of the mailbox is an expunge too, a move in is new mail.
    other = await mbox.create_folder(int(Private.IPM_SUBTREE), "Other", "IPF.Note")
    await mbox.move_messages([ids[4]], other)
    (there,) = await add(mbox, other, 1)
    await mbox.move_messages([there], INBOX)
    out = text(await view.poll(expunges=True, qresync=False, condstore=False))
    assert "EXPUNGE" in out and "* 3 EXISTS\r\n" in out


async def test_own_store_is_not_reported_twice(host: Host, mbox: Mailbox) -> None:
    await add(mbox, INBOX, 3)
    view, _ = await select(host)
    uids = view.uids[:2]
    lines, failed = await view.store(uids, "add", ["\\Seen", "Work"], condstore=True)
    out = text(lines)
    assert failed == [] and f"* 1 FETCH (UID {uids[0]} FLAGS (\\Recent \\Seen Work) MODSEQ (" \
        in out
    assert out.startswith("* FLAGS (") and "Work" in out.split("\r\n")[0]
    assert await view.poll(expunges=True, qresync=False, condstore=True) == []
    assert "\\Seen" in view.flags_of(uids[0]).flags
    lines, _ = await view.store(uids, "remove", ["\\Seen"], silent=True)
    assert lines == [] and await view.poll(expunges=True, qresync=False, condstore=False) == []
    lines, _ = await view.store(uids[:1], "add", ["\\Flagged"], silent=True, condstore=True)
    assert text(lines) == f"* 1 FETCH (UID {uids[0]} MODSEQ ({view.flags_of(uids[0]).modseq}))\r\n"
    # Somebody else changes a message between our poll and our silent STORE: poll tells.
    await mbox.write(imap.store_flags, INBOX, [view.message_id(uids[1])], ["\\Answered"], "add")
    await view.store(uids[1:2], "add", ["\\Draft"], silent=True)
    out = text(await view.poll(expunges=True, qresync=False, condstore=False))
    assert f"UID {uids[1]} FLAGS (\\Answered \\Draft \\Recent Work)" in out


async def test_store_errors_unchangedsince_and_unknown_uids(host: Host, mbox: Mailbox) -> None:
    await add(mbox, INBOX, 3)
    view, _ = await select(host)
    for bad in (["\\Recent"], ["\\Bogus"], ["a(b"]):
        with pytest.raises(MailboxError) as exc:
            await view.store(view.uids, "add", bad)
        assert exc.value.bad, bad
    lines, _ = await view.store(view.uids[:1], "add", ["\\SEEN"])
    assert "\\Seen" in text(lines)
    first = view.flags_of(view.uids[0]).modseq
    second = view.flags_of(view.uids[1]).modseq
    lines, failed = await view.store(view.uids[:2], "add", ["\\Flagged"],
                                     unchangedsince=second, condstore=True)
    assert failed == [view.uids[0]] and first > second
    assert f"FETCH (UID {view.uids[1]}" in text(lines)
    assert f"FETCH (UID {view.uids[0]}" not in text(lines)
    assert await view.store([10**6], "add", ["\\Seen"]) == ([], [])


async def test_expunge_copy_and_move(host: Host, mbox: Mailbox) -> None:
    ids = await add(mbox, INBOX, 4)
    tree = await MailboxTree.load(host, USER)
    target = await tree.create("Archive/2026")
    view, _ = await select(host)
    uids = list(view.uids)
    await view.store([uids[0], uids[2]], "add", ["\\Deleted"])
    validity, sources, copies = await view.copy(uids[:2], target)
    status = await mbox.read(imap.status, target.folder_id)
    assert validity == status.uidvalidity and sources == uids[:2] and len(copies) == 2
    listed = {i.uid: i for i in await mbox.read(imap.listing, target.folder_id)}
    assert "\\Deleted" in listed[copies[0]].flags and "\\Deleted" not in listed[copies[1]].flags
    out = text(await view.expunge([uids[2]]))
    assert out == "* 3 EXPUNGE\r\n"
    out = text(await view.expunge(qresync=True))
    assert out == f"* VANISHED {uids[0]}\r\n" and view.uids == [uids[1], uids[3]]
    validity, sources, moved, lines = await view.move([uids[3]], target)
    assert sources == [uids[3]] and len(moved) == 1 and text(lines) == "* 2 EXPUNGE\r\n"
    assert (await mbox.read(imap.status, INBOX)).messages == 1
    assert await view.poll(expunges=True, qresync=False, condstore=False) == []
    assert ids  # the store kept the copies under new ids
    with pytest.raises(MailboxError) as exc:
        await view.copy(view.uids, MailboxEntry("Nowhere", "", 0, False, ("\\NonExistent",), None))
    assert exc.value.code == "TRYCREATE"


async def test_copy_and_move_to_another_users_folder(host: Host, store: Store,
                                                     mbox: Mailbox) -> None:
    bob = await store.create(BOB)
    shared = await bob.create_folder(INBOX, "Shared", "IPF.Note")
    await Permissions(bob).set_acl(INBOX, USER, REVIEWER)
    await Permissions(bob).set_acl(shared, USER, EDITOR)
    await add(mbox, INBOX, 2)
    view, _ = await select(host)
    tree = view.tree
    from plugins.imap import mailboxes
    mailboxes.forget_sharers()
    await tree.refresh()
    target = tree.find(f"Other Users/{BOB}/INBOX/Shared")
    assert target is not None
    validity, _, copies = await view.copy(view.uids[:1], target)
    assert validity == (await bob.read(imap.status, shared)).uidvalidity and len(copies) == 1
    _, _, moved, lines = await view.move(view.uids[1:], target)
    assert len(moved) == 1 and text(lines) == "* 2 EXPUNGE\r\n"
    assert (await bob.read(imap.status, shared)).messages == 2
    # Bob's Inbox is read-only for the user: SELECT opens it read-only.
    inbox = tree.find(f"Other Users/{BOB}/INBOX")
    assert inbox is not None
    theirs, lines = await SelectedMailbox.open(tree, inbox, readonly=False, condstore=False)
    assert theirs.readonly and "[PERMANENTFLAGS ()]" in text(lines)
    with pytest.raises(MailboxError) as exc:
        await theirs.move([], target)
    assert exc.value.code == ""
    mine = tree.find("INBOX")
    assert mine is not None
    with pytest.raises(MailboxError) as exc:
        await theirs.copy(theirs.uids, inbox)
    assert exc.value.code == "NOPERM"


async def test_qresync_select_reports_vanished_and_changes(host: Host, mbox: Mailbox) -> None:
    ids = await add(mbox, INBOX, 6)
    view, _ = await select(host)
    uids = list(view.uids)
    modseq = view.highest_modseq
    await mbox.delete_messages([ids[1], ids[4]], hard=True)
    await mbox.write(imap.store_flags, INBOX, [ids[2]], ["\\Seen"], "add")
    _, lines = await select(host, qresync=(view.uidvalidity, modseq, None, None))
    out = text(lines)
    assert f"* VANISHED (EARLIER) {uids[1]},{uids[4]}\r\n" in out
    assert re.search(rf"\* 2 FETCH \(UID {uids[2]} FLAGS \([^)]*\\Seen[^)]*\) MODSEQ", out)
    _, lines = await select(host, qresync=(view.uidvalidity, modseq, f"{uids[4]}:*", None))
    out = text(lines)
    assert f"* VANISHED (EARLIER) {uids[4]}\r\n" in out and "FETCH" not in out
    _, lines = await select(host, qresync=(view.uidvalidity + 1, modseq, None, None))
    assert "VANISHED" not in text(lines)


async def test_deleted_mailbox_ends_the_selection(host: Host, mbox: Mailbox) -> None:
    tree = await MailboxTree.load(host, USER)
    entry = await tree.create("Temp")
    view, _ = await SelectedMailbox.open(tree, entry, readonly=False, condstore=False)
    await mbox.delete_folder(entry.folder_id, hard=True)
    with pytest.raises(MailboxGone):
        await view.poll(expunges=True, qresync=False, condstore=False)
    view.close()
    assert await view.poll(expunges=True, qresync=False, condstore=False) == []


async def test_new_message_text_is_kept(host: Host, mbox: Mailbox) -> None:
    await mbox.create_message(INBOX, NewMessage({T.PidTagSubject: "x"}))
    view, _ = await select(host)
    assert view.exists == 1


async def test_qresync_after_tombstones_were_pruned_reports_every_gap(host: Host,
                                                                       mbox: Mailbox) -> None:
    ids = await add(mbox, INBOX, 6)
    view, _ = await select(host)
    uids = list(view.uids)
    modseq = view.highest_modseq
    await mbox.delete_messages([ids[0], ids[3], ids[4]], hard=True)

    def forget(txn: object) -> None:
        from gateway.store import sync
        sync.prune_tombstones(txn, -10)  # type: ignore[arg-type]

    await mbox.write(forget)
    assert await mbox.read(imap.vanished, INBOX, modseq) == []
    _, lines = await select(host, qresync=(view.uidvalidity, modseq, None, None))
    assert f"* VANISHED (EARLIER) {uids[0]},{uids[3]}:{uids[4]}\r\n" in text(lines)
    _, lines = await select(host, qresync=(view.uidvalidity, modseq, f"{uids[1]}:{uids[3]}",
                                           None))
    assert f"* VANISHED (EARLIER) {uids[3]}\r\n" in text(lines)
    # The first session never saw those tombstones: poll notices by the count and resyncs.
    out = text(await view.poll(expunges=True, qresync=False, condstore=False))
    assert out == "* 5 EXPUNGE\r\n* 4 EXPUNGE\r\n* 1 EXPUNGE\r\n" and view.exists == 3


async def test_a_later_select_builds_on_the_shared_version(host: Host, mbox: Mailbox) -> None:
    import asyncio

    from plugins.imap import selected as selected_module

    ids = await add(mbox, INBOX, 5)
    first, _ = await select(host)
    await mbox.write(imap.store_flags, INBOX, [ids[1]], ["\\Flagged", "Later"], "add")
    await mbox.delete_messages([ids[2]], hard=True)
    (new,) = await add(mbox, INBOX, 1)
    (second, lines), (third, _) = await asyncio.gather(select(host), select(host))
    truth = await mbox.read(imap.listing, INBOX)
    for view in (second, third):
        assert view.uids == [i.uid for i in truth]
        assert [view.flags_of(u) for u in view.uids] == truth
    assert "* 5 EXISTS\r\n" in text(lines) and "Later" in text(lines).split("\r\n")[0]
    assert second.message_id(second.uids[-1]) == new
    status = await mbox.read(imap.status, INBOX)
    assert second.uidnext == status.uidnext and second.highest_modseq == status.highest_modseq
    # The first session still reports those changes itself.
    out = text(await first.poll(expunges=True, qresync=False, condstore=False))
    assert "* 3 EXPUNGE\r\n" in out and "* 5 EXISTS\r\n" in out and "Later" in out
    # Without a shared version the folder is read whole, with the same result.
    selected_module.forget_versions()
    fresh, _ = await select(host)
    assert fresh.uids == second.uids


async def test_sessions_share_one_listing(host: Host, mbox: Mailbox) -> None:
    import tracemalloc

    await add(mbox, INBOX, 2000)
    first, _ = await select(host)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    views = [(await select(host, readonly=True))[0] for _ in range(50)]
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert all(view.uids is first.uids for view in views)
    assert grown / len(views) < 30 * 1024, grown / len(views)  # not a copy of 2,000 entries
    # A change moves every session to one new shared version, each reporting it once.
    ids = [first.message_id(uid) for uid in first.uids[:3]]
    await mbox.write(imap.store_flags, INBOX, ids[:1], ["\\Flagged"], "add")
    await mbox.delete_messages(ids[1:2], hard=True)
    for view in (first, *views[:5]):
        out = text(await view.poll(expunges=True, qresync=False, condstore=False))
        assert out == f"* 2 EXPUNGE\r\n* 1 FETCH (UID {first.uids[0]} FLAGS (\\Flagged" + \
            ("" if view.readonly else " \\Recent") + "))\r\n", out
    assert all(view.uids is first.uids for view in views[:5])
    # This session's own EXPUNGE is reported once, not again when the others' poll runs.
    await first.store([first.uids[0]], "add", ["\\Deleted"])
    assert text(await first.expunge()) == "* 1 EXPUNGE\r\n"
    assert await first.poll(expunges=True, qresync=False, condstore=False) == []
    assert text(await views[0].poll(expunges=True, qresync=False, condstore=False)) == \
        "* 1 EXPUNGE\r\n"
    assert views[0].uids is first.uids


async def test_concurrent_polls_share_one_read(host: Host, mbox: Mailbox,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    await add(mbox, INBOX, 10)
    views = [(await select(host))[0] for _ in range(20)]
    calls = []
    real = imap.changes

    def counting(txn: object, folder_id: int, since: int) -> object:
        calls.append(since)
        return real(txn, folder_id, since)  # type: ignore[arg-type]

    monkeypatch.setattr(imap, "changes", counting)
    await add(mbox, INBOX, 1)
    outs = await asyncio.gather(*(v.poll(expunges=True, qresync=False, condstore=False)
                                  for v in views))
    assert all(b"* 11 EXISTS\r\n" in out for out in outs)
    assert len(calls) < len(views)
    assert all(v.uids is views[0].uids for v in views)
