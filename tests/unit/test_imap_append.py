"""APPEND into the store: original bytes kept, flags as MAPI properties, internal date,
rights, limits, and the new message showing up in a selected mailbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.host import Host
from gateway.store import Mailbox, Private, Store, imap
from gateway.store import tags as T
from gateway.store.permissions import REVIEWER, Permissions
from plugins.imap import mailboxes
from plugins.imap.append import append
from plugins.imap.mailboxes import MailboxEntry, MailboxError, MailboxTree
from plugins.imap.selected import SelectedMailbox
from tests.unit.test_imap_mailboxes import BOB, USER
from tests.unit.test_imap_mailboxes import host as host

INBOX = int(Private.INBOX)
RAW = (b"From: Alice <alice@example.net>\r\nTo: user@example.org\r\n"
       b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nDate: Tue, 3 Mar 2026 10:00:00 +0100\r\n"
       b"Message-ID: <a1@example.net>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
       b"Hallo Welt\r\n")


async def inbox(host: Host) -> tuple[MailboxTree, MailboxEntry]:
    tree = await MailboxTree.load(host, USER)
    entry = tree.find("INBOX")
    assert entry is not None
    return tree, entry


async def original(mbox: Mailbox, message_id: int) -> bytes:
    return b"".join([chunk async for chunk in mbox.original_message(message_id)])


async def test_append_keeps_bytes_sets_flags_and_date(host: Host, mbox: Mailbox) -> None:
    tree, entry = await inbox(host)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    validity, uid = await append(tree, entry, RAW, internal_date=when,
                                 flags=["\\Seen", "\\FLAGGED", "\\Answered", "$Forwarded",
                                        "Work", "\\Recent"])
    status = await mbox.read(imap.status, INBOX)
    assert validity == status.uidvalidity and uid == status.uidnext - 1
    (item,) = await mbox.read(imap.listing, INBOX)
    assert item.uid == uid
    assert item.flags == {"\\Seen", "\\Flagged", "\\Answered", "$Forwarded", "Work"}
    assert await original(mbox, item.message_id) == RAW
    props = await mbox.message(item.message_id, [T.PidTagSubject, T.PidTagMessageDeliveryTime,
                                                 T.PidTagFlagStatus, T.PidNameKeywords])
    assert props[T.PidTagSubject] == "Grüße"
    assert props[T.PidTagMessageDeliveryTime] == when.astimezone(UTC)
    assert props[T.PidNameKeywords] == ["Work"]
    assert item.size == len(RAW)


async def test_append_draft_deleted_and_default_date(host: Host, mbox: Mailbox) -> None:
    tree, entry = await inbox(host)
    before = datetime.now(UTC) - timedelta(seconds=2)
    await append(tree, entry, RAW, flags=["\\Draft", "\\Deleted"], internal_date=None)
    (item,) = await mbox.read(imap.listing, INBOX)
    assert item.flags == {"\\Draft", "\\Deleted"}
    props = await mbox.message(item.message_id, [T.PidTagMessageDeliveryTime])
    assert props[T.PidTagMessageDeliveryTime] >= before
    assert await mbox.write(imap.expunge, INBOX) == [item.uid]


async def test_append_accepts_what_dovecot_accepts_and_refuses_empty(host: Host,
                                                                      mbox: Mailbox) -> None:
    tree, entry = await inbox(host)
    for raw in (b"no header separator at all", b"Subject: only a header\r\n",
                b"Subject: bare LF\n\nbody\n", b"Subject: x\r\n\r\n\x00binary\xff"):
        _, uid = await append(tree, entry, raw, flags=[], internal_date=None)
        (item,) = [i for i in await mbox.read(imap.listing, INBOX) if i.uid == uid]
        assert await original(mbox, item.message_id) == raw
    with pytest.raises(MailboxError) as exc:
        await append(tree, entry, b"", flags=[], internal_date=None)
    assert exc.value.code == ""
    for bad in (["\\Bogus"], ["a b"]):
        with pytest.raises(MailboxError) as exc:
            await append(tree, entry, RAW, flags=bad, internal_date=None)
        assert exc.value.bad


async def test_append_limits_and_rights(host: Host, store: Store, mbox: Mailbox) -> None:
    tree, entry = await inbox(host)
    limit = mbox.limits.max_message_bytes
    with pytest.raises(MailboxError) as exc:
        await append(tree, entry, b"x" * (limit + 1), flags=[], internal_date=None)
    assert exc.value.code == "TOOBIG"
    mbox.storage_limit = 10
    with pytest.raises(MailboxError) as exc:
        await append(tree, entry, RAW, flags=[], internal_date=None)
    assert exc.value.code == "OVERQUOTA"
    mbox.storage_limit = None
    assert (await mbox.read(imap.status, INBOX)).messages == 0
    bob = await store.create(BOB)
    await Permissions(bob).set_acl(INBOX, USER, REVIEWER)
    mailboxes.forget_sharers()
    await tree.refresh()
    theirs = tree.find(f"Other Users/{BOB}/INBOX")
    assert theirs is not None
    with pytest.raises(MailboxError) as exc:
        await append(tree, theirs, RAW, flags=[], internal_date=None)
    assert exc.value.code == "NOPERM"
    parent = tree.find("Other Users")
    assert parent is not None
    with pytest.raises(MailboxError) as exc:
        await append(tree, parent, RAW, flags=[], internal_date=None)
    assert exc.value.code == "CANNOT"


async def test_appended_message_reaches_a_selected_session(host: Host, mbox: Mailbox) -> None:
    tree, entry = await inbox(host)
    view, _ = await SelectedMailbox.open(tree, entry, readonly=False, condstore=False)
    _, uid = await append(tree, entry, RAW, flags=["\\Seen"], internal_date=None)
    lines = await view.poll(expunges=True, qresync=False, condstore=False)
    assert b"* 1 EXISTS\r\n" in lines and view.uids == [uid]
    assert "\\Seen" in view.flags_of(uid).flags
