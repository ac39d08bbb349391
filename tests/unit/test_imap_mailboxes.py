"""The IMAP mailbox list over the store: names, attributes, namespaces, CREATE/DELETE/RENAME,
subscriptions and STATUS.

A real :class:`~gateway.host.Host` (built from a config directory, with its
directory on SQLite) holds the ``store`` fixture's stores; the directory
knows the domain's users, which is how shares of other users are found.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.directory import Directory, admin
from gateway.host import Host, build_host
from gateway.store import Mailbox, NewMessage, Private, Public, Store, folders, imap
from gateway.store import tags as T
from gateway.store.permissions import DEFAULT, EDITOR, REVIEWER, Grant, Permissions
from gateway.store.rights import Rights
from plugins.imap import mailboxes
from plugins.imap.mailboxes import MailboxError, MailboxTree

USER = "user@example.org"
BOB = "bob@example.org"
INBOX = int(Private.INBOX)


@pytest.fixture
async def host(tmp_path: Path, store: Store, mbox: Mailbox) -> AsyncIterator[Host]:
    """A host with the test's store and a directory holding user@ and bob@example.org."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "50-test.toml").write_text(
        f'[gateway]\ndata_dir = "{store.data_dir}"\n'
        # Other protocol plugins stay out.
        '[plugins]\ndisabled = ["imap", "smtp", "autodiscover"]\n')
    built = build_host([conf], environ={})
    built.directory = await Directory.open("", store.data_dir)
    await admin.add_domain(built.directory.engine, "example.org")
    for address in (USER, BOB, "carol@example.org"):
        await admin.add_user(built.directory.engine, address)
    built.store = store
    mailboxes.forget_sharers()
    try:
        yield built
    finally:
        mailboxes.forget_sharers()
        await built.directory.close()


async def add(mbox: Mailbox, folder: int, n: int) -> list[int]:
    return await mbox.create_messages(folder, [NewMessage({T.PidTagSubject: f"m{i}"})
                                               for i in range(n)])


def names(tree: MailboxTree, pattern: str = "*", **options: bool) -> dict[str, tuple[str, ...]]:
    return {entry.name: attrs for entry, attrs in tree.list("", [pattern], **options)}


async def test_personal_namespace_mail_folders_and_special_use(host: Host, mbox: Mailbox
                                                               ) -> None:
    tree = await MailboxTree.load(host, USER)
    listed = names(tree)
    assert "INBOX" in listed and "Inbox" not in listed
    assert "\\Sent" in listed["Sent Items"] and "\\Drafts" in listed["Drafts"]
    assert "\\Trash" in listed["Deleted Items"] and "\\Junk" in listed["Junk Email"]
    assert "\\Archive" in listed["Archive"]
    for hidden in ("Calendar", "Contacts", "Tasks", "Notes", "Journal", "Yammer Root"):
        assert hidden not in listed
    assert "\\HasNoChildren" in listed["INBOX"]
    assert "\\HasChildren" in listed["Sync Issues"] and "Sync Issues/Conflicts" in listed
    assert {e.name for e, _ in tree.list("", ["*"], special_use=True)} == {
        "Sent Items", "Drafts", "Deleted Items", "Junk Email", "Archive"}
    inbox = tree.find("inbox")
    assert inbox is not None and inbox.name == "INBOX" and inbox.folder_id == INBOX
    assert tree.find("sent items") == tree.find("Sent Items")
    everything = names(await MailboxTree.load(host, USER, show_all=True))
    assert "Calendar" in everything and "Contacts" in everything
    assert "Yammer Root" not in everything  # hidden folders stay hidden
    # A mail folder below a calendar shows the calendar as \Noselect.
    await mbox.create_folder(int(Private.CALENDAR), "Invites", "IPF.Note")
    listed = names(await MailboxTree.load(host, USER))
    assert listed["Calendar"][0] == "\\Noselect" and "Calendar/Invites" in listed
    assert not tree.namespaces()[0][0][0]


async def test_localized_inbox_is_inbox_and_special_use_follows_ids(host: Host,
                                                                    store: Store) -> None:
    await store.create("anna@example.org", language="de")
    tree = await MailboxTree.load(host, "anna@example.org")
    listed = names(tree)
    assert "INBOX" in listed and "Posteingang" not in listed
    assert "\\Sent" in listed["Gesendete Elemente"] and "\\Trash" in listed["Gelöschte Elemente"]


async def test_list_wildcards_reference_and_inbox_case(host: Host, mbox: Mailbox) -> None:
    a = await mbox.create_folder(INBOX, "Lists", "IPF.Note")
    await mbox.create_folder(a, "python", "IPF.Note")
    tree = await MailboxTree.load(host, USER)
    assert set(names(tree, "inbox/%")) == {"INBOX/Lists"}
    assert set(names(tree, "inBox*")) == {"INBOX", "INBOX/Lists", "INBOX/Lists/python"}
    assert set(names(tree, "Sent*")) == {"Sent Items"} and names(tree, "sent*") == {}
    assert set(names(tree, "INBOX/*")) == {"INBOX/Lists", "INBOX/Lists/python"}
    assert {e.name for e, _ in tree.list("INBOX/", ["%"])} == {"INBOX/Lists"}
    assert "INBOX/Lists" not in names(tree, "%")
    assert names(tree, "INBOX")["INBOX"] == ("\\HasChildren",)
    assert tree.list("", [""]) == []


async def test_slash_in_a_folder_name_is_shown_as_division_slash(host: Host, mbox: Mailbox
                                                                 ) -> None:
    folder = await mbox.create_folder(int(Private.IPM_SUBTREE), "Q1/Q2 reports", "IPF.Note")
    tree = await MailboxTree.load(host, USER)
    entry = tree.find("Q1\u2215Q2 reports")
    assert entry is not None and entry.folder_id == folder and entry.selectable
    assert "Q1" not in names(tree)
    created = await tree.create("A\u2215B/C")
    parent = await mbox.find_folder(int(Private.IPM_SUBTREE), "A/B")
    assert parent is not None and await mbox.find_folder(parent, "C") == created.folder_id
    assert created.name == "A\u2215B/C"


async def test_create_makes_parents_and_refuses_existing_and_bad_names(host: Host,
                                                                        mbox: Mailbox) -> None:
    tree = await MailboxTree.load(host, USER)
    entry = await tree.create("Projects/2026/Q1/")
    assert entry.name == "Projects/2026/Q1" and entry.selectable
    assert tree.find("Projects") is not None and tree.find("Projects/2026") is not None
    props = await mbox.folder(entry.folder_id, [T.PidTagContainerClass])
    assert props[T.PidTagContainerClass] == "IPF.Note"
    sub = await tree.create("INBOX/Receipts")
    rows = await mbox.read(imap.folder_tree)
    assert {r.folder_id: r.parent_id for r in rows}[sub.folder_id] == INBOX
    for existing in ("Projects", "projects/2026", "INBOX", "inbox", "Sent Items"):
        with pytest.raises(MailboxError) as exc:
            await tree.create(existing)
        assert exc.value.code == "ALREADYEXISTS", existing
    with pytest.raises(MailboxError) as exc:
        await tree.create("Calendar")  # a hidden folder holds the name
    assert exc.value.code == "ALREADYEXISTS"
    for bad in ("a*", "b%", "x//y", "", "/", "tab\there", "z" * 256, "/lead"):
        with pytest.raises(MailboxError) as exc:
            await tree.create(bad)
        assert exc.value.code == "CANNOT", repr(bad)
    with pytest.raises(MailboxError) as exc:
        await tree.create("Mine", special_use="\\Sent")
    assert exc.value.code == "USEATTR"


async def test_delete_rules(host: Host, mbox: Mailbox) -> None:
    tree = await MailboxTree.load(host, USER)
    for refused in ("INBOX", "Sent Items"):
        with pytest.raises(MailboxError) as exc:
            await tree.delete(refused)
        assert exc.value.code in ("CANNOT", "NOPERM"), refused
    with pytest.raises(MailboxError) as exc:
        await tree.delete("Nothing")
    assert exc.value.code == "NONEXISTENT"
    leaf = await tree.create("Old")
    await tree.delete("Old")
    assert tree.find("Old") is None
    assert await mbox.read(folders.exists, leaf.folder_id) is False
    parent = await tree.create("Parent/Child")
    parent_entry = tree.find("Parent")
    assert parent_entry is not None and parent.name == "Parent/Child"
    await add(mbox, parent_entry.folder_id, 3)
    await tree.delete("Parent")
    kept = tree.find("Parent")
    assert kept is not None and not kept.selectable and "\\Noselect" in kept.attributes
    assert (await mbox.read(imap.status, kept.folder_id)).messages == 0
    assert tree.find("Parent/Child") is not None
    with pytest.raises(MailboxError) as exc:
        await tree.delete("Parent")  # \Noselect with children: RFC 3501 error
    assert exc.value.code == "CANNOT"
    again = await tree.create("Parent")
    assert again.selectable and again.folder_id == kept.folder_id
    await tree.delete("Parent/Child")
    await tree.delete("Parent")
    assert tree.find("Parent") is None


async def test_rename_moves_subfolders_and_inbox_rename_moves_messages(host: Host,
                                                                       mbox: Mailbox) -> None:
    tree = await MailboxTree.load(host, USER)
    top = await tree.create("Work/Clients/Acme")
    await tree.rename("Work", "Archive/Work 2025")
    assert tree.find("Work") is None
    moved = tree.find("Archive/Work 2025/Clients/Acme")
    assert moved is not None and moved.folder_id == top.folder_id
    await tree.rename("Archive/Work 2025", "Work")  # back to the top level
    assert tree.find("Work/Clients/Acme") is not None
    await tree.rename("Work", "work")  # a change of case in place
    assert tree.find("work") is not None and tree.find("work").name == "work"  # type: ignore
    with pytest.raises(MailboxError) as exc:
        await tree.rename("work", "Drafts")
    assert exc.value.code == "ALREADYEXISTS"
    with pytest.raises(MailboxError) as exc:
        await tree.rename("work", "work/Clients/inside")
    assert exc.value.code == "CANNOT"
    with pytest.raises(MailboxError) as exc:
        await tree.rename("Sent Items", "work/Sent")
    assert exc.value.code in ("CANNOT", "NOPERM")
    await tree.rename("Sent Items", "Sent")  # a default folder may change its name in place
    assert "\\Sent" in names(tree)["Sent"]
    await tree.create("INBOX/Keep")
    ids = await add(mbox, INBOX, 4)
    await tree.rename("INBOX", "Old Mail/2025")
    target = tree.find("Old Mail/2025")
    assert target is not None
    assert (await mbox.read(imap.status, INBOX)).messages == 0
    assert (await mbox.read(imap.status, target.folder_id)).messages == len(ids)
    assert tree.find("INBOX/Keep") is not None and tree.find("INBOX") is not None


async def test_subscriptions_are_kept_in_the_store(host: Host, mbox: Mailbox) -> None:
    tree = await MailboxTree.load(host, USER)
    assert "INBOX" in names(tree, "*", subscribed=True)  # folders start subscribed
    await tree.subscribe("Junk Email", False)
    await tree.subscribe("Gone/Away", True)
    await tree.subscribe("Other Users/bob@example.org/INBOX", True)
    other = await MailboxTree.load(host, USER)  # another session
    subscribed = names(other, "*", subscribed=True)
    assert "Junk Email" not in subscribed and "\\Subscribed" in subscribed["INBOX"]
    assert subscribed["Gone/Away"] == ("\\NonExistent", "\\Subscribed")
    assert "Other Users/bob@example.org/INBOX" in subscribed
    assert "\\Subscribed" in names(other, "INBOX", return_subscribed=True)["INBOX"]
    assert "\\Subscribed" not in names(other, "Junk Email", return_subscribed=True)["Junk Email"]
    assert names(other, "%", subscribed=True).get("Gone") is None
    parents = names(other, "%", subscribed=True, recursive_match=True)
    assert parents["Gone"] == ("\\NonExistent",)
    await other.subscribe("Gone/Away", False)
    await other.subscribe("Junk Email", True)
    final = names(await MailboxTree.load(host, USER), "*", subscribed=True)
    assert "Gone/Away" not in final and "Junk Email" in final
    # A folder created by another protocol is subscribed too.
    await mbox.create_folder(int(Private.IPM_SUBTREE), "From Outlook", "IPF.Note")
    await other.refresh()
    assert "From Outlook" in names(other, "*", subscribed=True)


async def test_other_users_folders_by_their_rights(host: Host, store: Store,
                                                   mbox: Mailbox) -> None:
    bob = await store.create(BOB)
    carol = await store.create("carol@example.org")
    tree = await MailboxTree.load(host, USER)
    assert not [n for n in names(tree) if n.startswith("Other Users")]
    project = await bob.create_folder(INBOX, "Project", "IPF.Note")
    await Permissions(bob).set_acl(INBOX, USER, REVIEWER)
    await Permissions(bob).set_acl(project, USER, EDITOR)
    await bob.create_folder(int(Private.IPM_SUBTREE), "Private", "IPF.Note")
    await Permissions(carol).set_grant(USER, Grant(full_access=True))
    mailboxes.forget_sharers()
    await tree.refresh()
    listed = names(tree)
    assert listed["Other Users"] == ("\\Noselect", "\\HasChildren")
    assert "\\Noselect" in listed[f"Other Users/{BOB}"]
    inbox = tree.find(f"Other Users/{BOB}/INBOX")
    assert inbox is not None and inbox.selectable and inbox.store == BOB
    assert inbox.special_use is None
    assert f"Other Users/{BOB}/INBOX/Project" in listed
    assert f"Other Users/{BOB}/Private" not in listed
    assert f"Other Users/{BOB}/Sent Items" not in listed
    assert "Other Users/carol@example.org/Sent Items" in listed  # full access
    assert "\\Sent" not in listed["Other Users/carol@example.org/Sent Items"]
    assert await tree.rights(inbox) == REVIEWER
    status = dict(await tree.status(inbox, ["MESSAGES"]))
    assert status == {"MESSAGES": 0}
    # Creating below a folder needs CreateSubfolder there.
    with pytest.raises(MailboxError) as exc:
        await tree.create(f"Other Users/{BOB}/INBOX/Mine")
    assert exc.value.code == "NOPERM"
    await Permissions(bob).set_acl(project, USER, int(EDITOR | Rights.CREATE_SUBFOLDER))
    made = await tree.create(f"Other Users/{BOB}/INBOX/Project/Mine")
    assert made.store == BOB and await bob.find_folder(project, "Mine") == made.folder_id
    with pytest.raises(MailboxError) as exc:
        await tree.rename(f"Other Users/{BOB}/INBOX/Project/Mine", "Mine")
    assert exc.value.code == "CANNOT"


async def test_shared_folders_are_the_domains_public_store(host: Host, store: Store) -> None:
    public = await store.create("public:example.org")
    team = await public.create_folder(int(Public.IPM_SUBTREE), "Team", "IPF.Note")
    await public.create_folder(int(Public.IPM_SUBTREE), "Board", "IPF.Note")
    await Permissions(public).set_acl(team, DEFAULT, REVIEWER)
    tree = await MailboxTree.load(host, USER)
    listed = names(tree)
    assert "Shared Folders" in listed and "Shared Folders/Team" in listed
    assert "Shared Folders/Board" not in listed
    entry = tree.find("Shared Folders/Team")
    assert entry is not None and entry.store == "public:example.org" and entry.selectable
    assert tree.namespaces()[2] == [("Shared Folders/", "/")]


async def test_status_items(host: Host, mbox: Mailbox) -> None:
    ids = await add(mbox, INBOX, 3)
    await mbox.write(imap.store_flags, INBOX, ids[:1], ["\\Seen"], "add")
    await mbox.write(imap.store_flags, INBOX, ids[1:2], ["\\Deleted"], "add")
    tree = await MailboxTree.load(host, USER)
    inbox = tree.find("INBOX")
    assert inbox is not None
    items = ["MESSAGES", "UNSEEN", "RECENT", "DELETED", "UIDNEXT", "UIDVALIDITY", "SIZE",
             "HIGHESTMODSEQ", "APPENDLIMIT"]
    status = dict(await tree.status(inbox, items))
    assert status["MESSAGES"] == 3 and status["UNSEEN"] == 2 and status["DELETED"] == 1
    assert status["RECENT"] == 3 and status["SIZE"] > 0
    assert status["APPENDLIMIT"] == mbox.limits.max_message_bytes
    assert [k for k, _ in await tree.status(inbox, ["uidnext", "messages"])] == [
        "UIDNEXT", "MESSAGES"]
    with pytest.raises(MailboxError) as exc:
        await tree.status(inbox, ["BOGUS"])
    assert exc.value.bad


async def test_names_imap_reserves_get_a_mark(host: Host, store: Store) -> None:
    anna = await store.create("anna@example.org", language="de")
    top = int(Private.IPM_SUBTREE)
    inbox_named = await anna.create_folder(top, "INBOX", "IPF.Note")
    shared_named = await anna.create_folder(top, "Shared Folders", "IPF.Note")
    tree = await MailboxTree.load(host, "anna@example.org")
    entry = tree.find("INBOX~")
    assert entry is not None and entry.folder_id == inbox_named
    assert tree.find("INBOX") is not None and tree.find("INBOX").folder_id == INBOX  # type: ignore
    marked = tree.find("Shared Folders~")
    assert marked is not None and marked.folder_id == shared_named
    child = await tree.create("Shared Folders~/Notes")
    assert await anna.find_folder(shared_named, "Notes") == child.folder_id


async def test_lookup_sees_folders_made_elsewhere_and_namespaces_stay(host: Host, store: Store,
                                                                      mbox: Mailbox) -> None:
    tree = await MailboxTree.load(host, USER)
    await mbox.create_folder(int(Private.IPM_SUBTREE), "Made by EAS", "IPF.Note")
    assert tree.find("Made by EAS") is None
    found = await tree.lookup("Made by EAS")
    assert found is not None and found.selectable
    assert await tree.lookup("Never made") is None
    bob = await store.create(BOB)
    await Permissions(bob).set_acl(INBOX, USER, REVIEWER)
    mailboxes.forget_sharers()
    await tree.refresh()
    for virtual in ("Other Users", f"Other Users/{BOB}"):
        with pytest.raises(MailboxError) as exc:
            await tree.delete(virtual)
        assert exc.value.code == "CANNOT"
        with pytest.raises(MailboxError) as exc:
            await tree.rename(virtual, "Elsewhere")
        assert exc.value.code == "CANNOT"
    with pytest.raises(MailboxError) as exc:
        await tree.status(tree.find("Other Users"), ["MESSAGES"])  # type: ignore[arg-type]
    assert exc.value.code == "CANNOT"


async def test_a_user_without_a_store_is_told_so(host: Host) -> None:
    with pytest.raises(MailboxError) as exc:
        await MailboxTree.load(host, "carol@example.org")
    assert exc.value.code == "UNAVAILABLE"
