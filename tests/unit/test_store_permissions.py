"""Folder ACLs, store grants and the one permission check (MS-OXCPERM)."""

from __future__ import annotations

import pytest

from gateway.events import StoreEvent
from gateway.store import (
    AccessDenied,
    InvalidArgument,
    Mailbox,
    NewMessage,
    NotFound,
    Private,
    Store,
)
from gateway.store import permissions as perm
from gateway.store import tags as T
from gateway.store.permissions import Grant, Permissions, Rights
from gateway.store.txn import Txn

OWNER = "user@example.org"
BOB = "bob@example.org"
CAROL = "carol@example.org"
INBOX = int(Private.INBOX)
TASKS = int(Private.TASKS)


def test_rights_bits_are_those_of_ms_oxcperm() -> None:
    assert [(flag.name, int(flag)) for flag in Rights if flag] == [
        ("READ_ANY", 0x1), ("CREATE", 0x2), ("EDIT_OWNED", 0x8), ("DELETE_OWNED", 0x10),
        ("EDIT_ANY", 0x20), ("DELETE_ANY", 0x40), ("CREATE_SUBFOLDER", 0x80),
        ("FOLDER_OWNER", 0x100), ("FOLDER_CONTACT", 0x200), ("FOLDER_VISIBLE", 0x400),
        ("FREE_BUSY_SIMPLE", 0x800), ("FREE_BUSY_DETAILED", 0x1000)]
    assert perm.VALID == 0x1FFB


def test_roles_have_outlook_values() -> None:
    R = Rights
    assert perm.OWNER == (R.READ_ANY | R.CREATE | R.EDIT_OWNED | R.DELETE_OWNED | R.EDIT_ANY
                          | R.DELETE_ANY | R.CREATE_SUBFOLDER | R.FOLDER_OWNER
                          | R.FOLDER_CONTACT | R.FOLDER_VISIBLE) == 0x7FB
    assert perm.PUBLISHING_EDITOR == perm.OWNER & ~(R.FOLDER_OWNER | R.FOLDER_CONTACT) == 0x4FB
    assert perm.EDITOR == perm.PUBLISHING_EDITOR & ~R.CREATE_SUBFOLDER == 0x47B
    assert perm.PUBLISHING_AUTHOR == 0x49B and perm.AUTHOR == 0x41B
    assert perm.NONEDITING_AUTHOR == R.READ_ANY | R.CREATE | R.DELETE_OWNED | R.FOLDER_VISIBLE
    assert perm.REVIEWER == R.READ_ANY | R.FOLDER_VISIBLE == 0x401
    assert perm.CONTRIBUTOR == R.CREATE | R.FOLDER_VISIBLE == 0x402
    assert perm.NONE == 0
    for name, rights in perm.ROLES.items():
        assert perm.role_of(rights) == name
    assert perm.role_of(perm.REVIEWER | R.FREE_BUSY_DETAILED | R.FREE_BUSY_SIMPLE) == "Reviewer"
    assert perm.role_of(R.FOLDER_VISIBLE) == "None"
    assert perm.role_of(perm.OWNER & ~R.FOLDER_CONTACT) == "Owner"
    assert perm.role_of(R.READ_ANY | R.CREATE) == "Custom"


def test_what_each_role_allows() -> None:
    own, other = True, False
    assert perm.may_edit(perm.EDITOR, other) and perm.may_delete(perm.EDITOR, other)
    assert perm.may_edit(perm.AUTHOR, own) and not perm.may_edit(perm.AUTHOR, other)
    assert perm.may_delete(perm.AUTHOR, own) and not perm.may_delete(perm.AUTHOR, other)
    assert not perm.may_edit(perm.NONEDITING_AUTHOR, own)
    assert perm.may_delete(perm.NONEDITING_AUTHOR, own)
    assert not perm.may_edit(perm.REVIEWER, own) and not perm.may_delete(perm.REVIEWER, own)
    assert perm.folder_access(perm.OWNER) == perm.ACCESS_ALL
    assert perm.folder_access(perm.REVIEWER) == perm.ACCESS_READ
    assert perm.folder_access(perm.CONTRIBUTOR) == (
        perm.ACCESS_READ | perm.ACCESS_CREATE_CONTENTS | perm.ACCESS_CREATE_ASSOCIATED)
    assert perm.folder_access(perm.PUBLISHING_AUTHOR) & perm.ACCESS_CREATE_HIERARCHY
    assert perm.folder_access(perm.NONE) == 0
    assert perm.message_access(perm.REVIEWER) == perm.ACCESS_READ
    assert perm.message_access(perm.AUTHOR, own=True) == (
        perm.ACCESS_READ | perm.ACCESS_MODIFY | perm.ACCESS_DELETE)
    assert perm.message_access(perm.AUTHOR, own=False) == perm.ACCESS_READ


async def _cn(mbox: Mailbox, folder_id: int) -> int:
    """The folder's change number (hierarchy sync sees a folder change by it)."""
    def run(txn: Txn) -> int:
        return int(txn.conn.execute("SELECT change_number FROM folders WHERE folder_id = ?",
                                    (folder_id,)).fetchone()[0])
    return await mbox.read(run)


async def test_acl_entries_round_trip_and_bump_the_change_number(mbox: Mailbox) -> None:
    acl = Permissions(mbox)
    assert await acl.acl(INBOX) == []
    before = await _cn(mbox, INBOX)
    cn = await acl.set_acl(INBOX, "Bob@Example.ORG", perm.EDITOR)
    assert cn > before and await _cn(mbox, INBOX) > before
    await acl.set_acl(INBOX, "default", perm.REVIEWER)
    await acl.set_acl(INBOX, "ANONYMOUS", perm.NONE)
    await acl.set_acl(INBOX, CAROL, Rights.READ_ANY | Rights.EDIT_ANY)
    assert await acl.acl(INBOX) == [
        ("default", perm.REVIEWER), ("anonymous", perm.NONE), (BOB, perm.EDITOR),
        # EditAny brings EditOwned with it
        (CAROL, Rights.READ_ANY | Rights.EDIT_ANY | Rights.EDIT_OWNED)]
    after_set = await _cn(mbox, INBOX)
    await acl.remove_member(INBOX, CAROL)
    assert await _cn(mbox, INBOX) > after_set
    assert [member for member, _ in await acl.acl(INBOX)] == ["default", "anonymous", BOB]
    after_remove = await _cn(mbox, INBOX)
    await acl.replace_acl(INBOX, {CAROL: perm.AUTHOR, "default": perm.NONE})
    assert await _cn(mbox, INBOX) > after_remove
    assert await acl.acl(INBOX) == [("default", perm.NONE), (CAROL, perm.AUTHOR)]
    # Other folders are untouched: each folder has its own ACL.
    assert await acl.acl(TASKS) == []


async def test_acl_changes_are_hierarchy_changes(mbox: Mailbox,
                                                 store_events: list[StoreEvent]) -> None:
    store_events.clear()
    cn = await Permissions(mbox).set_acl(INBOX, BOB, perm.REVIEWER)
    modified = [e for e in store_events if e.kind == "folder_modified"]
    assert len(modified) == 1
    assert modified[0].object_id == INBOX and modified[0].change_number == cn


async def test_bad_members_and_rights_are_refused_and_nothing_is_written(mbox: Mailbox) -> None:
    acl = Permissions(mbox)
    await acl.set_acl(INBOX, BOB, perm.REVIEWER)
    before = await _cn(mbox, INBOX)
    for member in ("", "bob", "@example.org", "bob@", "two words@example.org", "x\n@y.z"):
        with pytest.raises(InvalidArgument):
            await acl.set_acl(INBOX, member, perm.REVIEWER)
    for rights in (0x4, 0x2000, -1, 0x1_0000_0000):
        with pytest.raises(InvalidArgument):
            await acl.set_acl(INBOX, CAROL, rights)
    with pytest.raises(InvalidArgument):
        await acl.replace_acl(INBOX, [(CAROL, perm.AUTHOR), ("Carol@example.org", perm.NONE)])
    with pytest.raises(InvalidArgument):
        await acl.replace_acl(INBOX, [(CAROL, perm.AUTHOR), ("nobody", perm.NONE)])
    assert await acl.acl(INBOX) == [(BOB, perm.REVIEWER)]
    assert await _cn(mbox, INBOX) == before
    with pytest.raises(InvalidArgument):
        await acl.set_grant("default", Grant(full_access=True))
    with pytest.raises(NotFound):
        await acl.set_acl(0xDEAD, BOB, perm.REVIEWER)
    with pytest.raises(NotFound):
        await acl.rights(BOB, 0xDEAD)


async def test_rights_for_owner_members_default_and_anonymous(mbox: Mailbox) -> None:
    acl = Permissions(mbox)
    # The owner holds everything, with or without entries, in any spelling.
    assert await acl.rights(OWNER, INBOX) == perm.ALL
    assert await acl.rights("User@Example.Org", TASKS) == perm.ALL
    # Nobody else holds anything until the ACL says so.
    assert await acl.rights(BOB, INBOX) == perm.NONE
    assert await acl.rights(None, INBOX) == perm.NONE
    await acl.replace_acl(INBOX, {"default": perm.REVIEWER, "anonymous": perm.CONTRIBUTOR,
                                  BOB: perm.EDITOR, CAROL: perm.NONE})
    assert await acl.rights(BOB, INBOX) == perm.EDITOR
    assert await acl.rights("BOB@example.org", INBOX) == perm.EDITOR
    # An explicit NONE entry overrides default.
    assert await acl.rights(CAROL, INBOX) == perm.NONE
    # Anyone else authenticated gets default; unauthenticated gets anonymous.
    assert await acl.rights("dave@example.org", INBOX) == perm.REVIEWER
    assert await acl.rights(None, INBOX) == perm.CONTRIBUTOR
    # The owner is not limited by entries naming them.
    await acl.set_acl(INBOX, OWNER, perm.NONE)
    assert await acl.rights(OWNER, INBOX) == perm.ALL
    # Each folder its own ACL: nothing reaches the Calendar.
    assert await acl.rights(BOB, TASKS) == perm.NONE


async def test_full_access_is_owner_equivalent(mbox: Mailbox) -> None:
    acl = Permissions(mbox)
    await acl.set_acl(INBOX, BOB, perm.NONE)
    await acl.set_grant("Bob@example.org", Grant(full_access=True))
    assert await acl.grants() == {BOB: Grant(full_access=True)}
    for folder in (INBOX, TASKS, int(Private.ROOT)):
        assert await acl.rights(BOB, folder) == perm.ALL
    await perm.check(mbox, BOB, INBOX, Rights.FOLDER_OWNER | Rights.DELETE_ANY)
    # Full access does not let one send as the owner.
    assert not await acl.can_send_as(BOB)
    await acl.set_grant(BOB, Grant())
    assert await acl.grants() == {}
    assert await acl.rights(BOB, INBOX) == perm.NONE


async def test_check_raises_access_denied_naming_what_is_missing(mbox: Mailbox) -> None:
    acl = Permissions(mbox)
    await acl.set_acl(INBOX, BOB, perm.REVIEWER)
    await perm.check(mbox, BOB, INBOX, Rights.READ_ANY)
    await perm.check(mbox, BOB, INBOX, Rights.READ_ANY | Rights.FOLDER_VISIBLE)
    await perm.check(mbox, OWNER, INBOX, perm.ALL)
    await perm.check(mbox, BOB, INBOX, Rights.NONE)
    with pytest.raises(AccessDenied) as denied:
        await perm.check(mbox, BOB, INBOX, Rights.READ_ANY | Rights.CREATE | Rights.EDIT_ANY)
    message = str(denied.value)
    assert BOB in message and "CREATE" in message and "EDIT_ANY" in message
    assert "READ_ANY" not in message
    assert denied.value.code == 0x80070005
    with pytest.raises(AccessDenied, match="anonymous"):
        await acl.check(None, INBOX, Rights.READ_ANY)
    with pytest.raises(AccessDenied):
        await perm.check(mbox, CAROL, TASKS, Rights.FREE_BUSY_SIMPLE)
    await acl.set_acl(TASKS, "default", perm.FREE_BUSY_TIME_ONLY)
    await perm.check(mbox, CAROL, TASKS, Rights.FREE_BUSY_SIMPLE)
    with pytest.raises(AccessDenied):
        await perm.check(mbox, CAROL, TASKS, Rights.FREE_BUSY_DETAILED)


async def test_require_inside_a_write_checks_and_changes_atomically(mbox: Mailbox) -> None:
    await Permissions(mbox).set_acl(INBOX, BOB, perm.REVIEWER)

    def deliver_as(txn: Txn, user: str) -> int:
        from gateway.store import messages
        perm.require(txn, user, INBOX, Rights.CREATE)
        return messages.create(txn, INBOX, NewMessage(props={T.PidTagSubject: "x"}))

    with pytest.raises(AccessDenied):
        await mbox.write(deliver_as, BOB)
    assert (await mbox.folder(INBOX, [T.PidTagContentCount]))[T.PidTagContentCount] == 0
    await Permissions(mbox).set_acl(INBOX, BOB, perm.AUTHOR)
    await mbox.write(deliver_as, BOB)
    assert (await mbox.folder(INBOX, [T.PidTagContentCount]))[T.PidTagContentCount] == 1


async def test_send_as_and_on_behalf(mbox: Mailbox) -> None:
    acl = Permissions(mbox)
    assert await acl.can_send_as(OWNER) and await acl.can_send_on_behalf(OWNER)
    assert not await acl.can_send_as(BOB) and not await acl.can_send_on_behalf(BOB)
    assert not await acl.can_send_as(None)
    await acl.set_grant(BOB, Grant(send_on_behalf=True))
    await acl.set_grant(CAROL, Grant(send_as=True))
    assert await acl.can_send_on_behalf(BOB) and not await acl.can_send_as(BOB)
    assert await acl.can_send_as("CAROL@example.org") and not await acl.can_send_on_behalf(CAROL)
    assert await acl.delegates() == [BOB]
    assert await acl.grant_of(CAROL) == Grant(send_as=True)
    assert await acl.grant_of("nobody@example.org") == Grant()
    # Grants are store-wide, they give no folder rights.
    assert await acl.rights(BOB, INBOX) == perm.NONE


async def test_new_folders_copy_the_parent_acl(mbox: Mailbox) -> None:
    acl = Permissions(mbox)
    await acl.replace_acl(INBOX, {BOB: perm.EDITOR, "default": perm.REVIEWER})
    child = await mbox.create_folder(INBOX, "Projects")

    def inherit(txn: Txn) -> None:
        # Until folders.create calls it, give the new folder what it would get.
        if not perm.get_acl(txn, child):
            perm.inherit_acl(txn, INBOX, child)

    await mbox.write(inherit)
    assert await acl.acl(child) == await acl.acl(INBOX)
    # Later changes to the parent do not reach the child.
    await acl.set_acl(INBOX, BOB, perm.NONE)
    assert await acl.rights(BOB, child) == perm.EDITOR
    await mbox.write(perm.inherit_acl, None, child)  # the root has no parent: nothing happens
    assert await acl.rights(BOB, child) == perm.EDITOR
    # A deleted folder takes its ACL with it.
    await mbox.delete_folder(child, hard=True)

    def rows(txn: Txn) -> int:
        return int(txn.conn.execute("SELECT count(*) FROM permissions WHERE folder_id = ?",
                                    (child,)).fetchone()[0])

    assert await mbox.read(rows) == 0


async def test_computed_access_properties_for_a_user(mbox: Mailbox) -> None:
    acl = Permissions(mbox)
    owner = await acl.folder_access_props(OWNER, INBOX)
    assert owner == {T.PidTagRights: 0x7FB, T.PidTagAccess: perm.ACCESS_ALL,
                     T.PidTagAccessLevel: perm.ACCESS_LEVEL_MODIFY}
    await acl.set_acl(INBOX, BOB, perm.REVIEWER | perm.FREE_BUSY_TIME_SUBJECT_LOCATION)
    bob = await acl.folder_access_props(BOB, INBOX)
    assert bob == {T.PidTagRights: int(perm.REVIEWER), T.PidTagAccess: perm.ACCESS_READ,
                   T.PidTagAccessLevel: perm.ACCESS_LEVEL_READ_ONLY}
    assert (await acl.folder_access_props(None, INBOX))[T.PidTagAccess] == 0
    mid = await mbox.create_message(INBOX, NewMessage(props={T.PidTagSubject: "hi"}))
    assert await acl.message_access_props(BOB, mid) == {
        T.PidTagAccess: perm.ACCESS_READ, T.PidTagAccessLevel: perm.ACCESS_LEVEL_READ_ONLY}
    assert await acl.message_access_props(OWNER, mid) == {
        T.PidTagAccess: perm.ACCESS_READ | perm.ACCESS_MODIFY | perm.ACCESS_DELETE,
        T.PidTagAccessLevel: perm.ACCESS_LEVEL_MODIFY}
    await acl.set_acl(INBOX, BOB, perm.AUTHOR)
    assert (await acl.message_access_props(BOB, mid, own=True))[T.PidTagAccessLevel] == 1
    assert (await acl.message_access_props(BOB, mid, own=False))[T.PidTagAccessLevel] == 0


async def test_public_store_has_no_owner_and_default_applies(store: Store) -> None:
    public = await store.create("public:example.org")
    acl = Permissions(public)

    def some_folder(txn: Txn) -> int:
        return int(txn.conn.execute("SELECT min(folder_id) FROM folders").fetchone()[0])

    folder = await public.read(some_folder)
    assert await acl.rights(OWNER, folder) == perm.NONE
    assert not await acl.can_send_as(OWNER)
    await acl.set_acl(folder, "default", perm.AUTHOR)
    assert await acl.rights(OWNER, folder) == perm.AUTHOR
    assert await acl.rights(None, folder) == perm.NONE
    await acl.set_grant(BOB, Grant(full_access=True))
    assert await acl.rights(BOB, folder) == perm.ALL


async def test_new_stores_show_free_busy_times_to_everyone(mbox: Mailbox) -> None:
    for folder in (Private.CALENDAR, Private.LOCAL_FREEBUSY):
        assert await perm.Permissions(mbox).acl(int(folder)) == [
            ("default", Rights.FREE_BUSY_SIMPLE)]
    await perm.check(mbox, "someone@example.org", int(Private.CALENDAR),
                     Rights.FREE_BUSY_SIMPLE)
    with pytest.raises(AccessDenied):
        await perm.check(mbox, "someone@example.org", int(Private.CALENDAR), Rights.READ_ANY)


async def test_access_properties_follow_the_reader(mbox: Mailbox) -> None:
    await Permissions(mbox).set_acl(INBOX, BOB, perm.REVIEWER)
    owner = await mbox.folder(INBOX, [T.PidTagRights, T.PidTagAccessLevel])
    bob = await mbox.folder(INBOX, [T.PidTagRights, T.PidTagAccessLevel], user=BOB)
    nobody = await mbox.folder(INBOX, [T.PidTagRights], user=None)
    assert owner[T.PidTagRights] & Rights.EDIT_ANY and owner[T.PidTagAccessLevel] == 1
    assert bob == {T.PidTagRights: int(Rights.READ_ANY | Rights.FOLDER_VISIBLE),
                   T.PidTagAccessLevel: 0}
    assert nobody == {T.PidTagRights: 0}
    mid = await mbox.create_message(INBOX, NewMessage({T.PidTagSubject: "x"}))
    assert (await mbox.message(mid, [T.PidTagAccess]))[T.PidTagAccess] == 0x7
    assert (await mbox.message(mid, [T.PidTagAccess], user=BOB))[T.PidTagAccess] == 0x2
