"""The mailboxes one IMAP user sees: names, attributes, namespaces, CREATE/DELETE/RENAME.

Names are built from the store's folder tree, read once per refresh
(:func:`gateway.store.imap.folder_tree`), never folder by folder:

- personal namespace ``""``: the mail folders (container class ``IPF.Note``,
  ``IPF.Note.*`` or none) under the IPM subtree; the store's Inbox is
  ``INBOX`` whatever its display name, its subfolders ``INBOX/...``. Calendar,
  contacts, tasks, notes and journal folders are left out unless ``show_all``;
  folders hidden from users (``PidTagAttributeHidden``) and search folders
  always. A left-out folder holding mail folders appears as ``\\Noselect``.
- other users ``Other Users/<address>/...``: folders of other stores of the
  user's domain on which the user holds FolderVisible or ReadAny (selectable
  with ReadAny), or all of them with a full-access grant.
- shared ``Shared Folders/...``: the domain's public store (``public:<domain>``).

Special-use attributes come from the store's default folder ids (Sent Items
``\\Sent``, Drafts ``\\Drafts``, Deleted Items ``\\Trash``, Junk ``\\Junk``,
Archive ``\\Archive``), in the personal namespace only.

The separator is ``/``. A ``/`` inside a folder's display name is shown as
U+2215 DIVISION SLASH (and a U+2215 in a name given to CREATE or RENAME
is stored as ``/``), so such a folder neither splits into two levels nor
becomes unreachable. Control characters in display names are shown as
U+FFFD. Names are compared NFC-normalised and, like the store's sibling
names, case-insensitively.

A top-level personal folder named ``INBOX`` (beside a localised Inbox), ``Other
Users`` or ``Shared Folders`` is shown with ``~`` appended (``Shared Folders~``).

DELETE of a folder with subfolders follows RFC 3501 6.3.4: its messages go and
the name stays as ``\\Noselect`` (a folder property the store keeps);
CREATE of that name makes it a mailbox again. Subscriptions live in the
store, so every session and every client sees the same: a folder property
on the user's own folders (absent means subscribed, so folders made by
Outlook or a phone show up in clients that list only subscribed folders),
and a list on the user's IPM subtree for any other name (other users',
public and non-existent names, the latter listed ``\\NonExistent``).

Finding the other users who shared something: there is no index of "who
granted me rights", so the domain's users are read from the directory and
each existing store is asked once (:func:`gateway.sharing.sharers`, cached per user
for a minute per worker).
"""

from __future__ import annotations

import builtins
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.sharing import forget_sharers as forget_sharers  # re-exported for tests
from gateway.sharing import sharers
from gateway.store import (
    AccessDenied,
    Collision,
    FolderCycle,
    InvalidArgument,
    InvalidValue,
    NotFound,
    Private,
    Public,
    QuotaExceeded,
    StoreError,
    TooBig,
    folders,
    imap,
    messages,
    permissions,
)
from gateway.store.objects import FOLDER_GENERIC
from gateway.store.rights import Rights
from gateway.store.txn import Txn

if TYPE_CHECKING:
    from gateway.host import Host
    from gateway.store import Mailbox

SEPARATOR = "/"
SLASH_STANDIN = "\u2215"
OTHER_USERS = "Other Users"
SHARED_FOLDERS = "Shared Folders"
MAX_LEVEL = 255
MAX_DEPTH = 60

SPECIAL_USE: dict[int, str] = {
    int(Private.SENT_ITEMS): "\\Sent",
    int(Private.DRAFTS): "\\Drafts",
    int(Private.DELETED_ITEMS): "\\Trash",
    int(Private.JUNK): "\\Junk",
    int(Private.ARCHIVE): "\\Archive",
}
VISIBLE = Rights.FOLDER_VISIBLE | Rights.READ_ANY
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f*%]")


class MailboxError(Exception):
    """A mailbox operation that fails: the session answers ``NO [code] text``
    (``BAD text`` when ``bad``: the command itself was wrong, e.g. STORE \\Recent)."""

    def __init__(self, code: str, text: str, *, bad: bool = False) -> None:
        super().__init__(f"[{code}] {text}" if code else text)
        self.code = code
        self.text = text
        self.bad = bad


def store_error(exc: StoreError) -> MailboxError:
    """The IMAP answer to a store refusal."""
    if isinstance(exc, AccessDenied):
        return MailboxError("NOPERM", str(exc))
    if isinstance(exc, NotFound):
        return MailboxError("NONEXISTENT", str(exc))
    if isinstance(exc, Collision):
        return MailboxError("ALREADYEXISTS", str(exc))
    if isinstance(exc, QuotaExceeded):
        return MailboxError("OVERQUOTA", str(exc))
    if isinstance(exc, TooBig):
        return MailboxError("TOOBIG", str(exc))
    if isinstance(exc, FolderCycle | InvalidArgument | InvalidValue):
        return MailboxError("CANNOT", str(exc))
    return MailboxError("SERVERBUG", f"the store failed: {exc}")


@dataclass(frozen=True)
class MailboxEntry:
    name: str
    """Full IMAP name (Unicode, ``/`` separator; ``INBOX`` for the inbox)."""
    store: str
    """Store key: owner address or ``public:<domain>``; "" for a name with no folder."""
    folder_id: int
    selectable: bool
    attributes: tuple[str, ...]
    special_use: str | None


def not_selectable(entry: MailboxEntry, missing: str = "NONEXISTENT") -> MailboxError:
    """The refusal for a name that holds no messages: ``missing`` (NONEXISTENT, or
    TRYCREATE for APPEND/COPY/MOVE) for a name with no folder, else CANNOT."""
    if "\\NonExistent" in entry.attributes:
        return MailboxError(missing, f"{entry.name} does not exist")
    return MailboxError("CANNOT", f"{entry.name} is not a mailbox that holds messages")


def level_name(stored: str) -> str:
    """How a folder's display name appears as one level of an IMAP name."""
    shown = unicodedata.normalize("NFC", stored).replace(SEPARATOR, SLASH_STANDIN)
    return _CONTROL.sub("\ufffd", shown)


def stored_name(level: str) -> str:
    """The display name a level of an IMAP name given by a client is stored as."""
    return unicodedata.normalize("NFC", level).replace(SLASH_STANDIN, SEPARATOR)


def split_name(name: str) -> list[str]:
    """A client's mailbox name as levels; :class:`MailboxError` ``CANNOT`` when it is
    no valid name (wildcards, control characters, empty or over-long levels)."""
    if name.endswith(SEPARATOR) and len(name) > 1:
        name = name[:-1]  # RFC 3501 CREATE: a trailing separator announces children
    if not name:
        raise MailboxError("CANNOT", "a mailbox name cannot be empty")
    if _BAD_NAME.search(name):
        raise MailboxError("CANNOT", "a mailbox name cannot contain *, % or control characters")
    levels = name.split(SEPARATOR)
    for level in levels:
        if not level.strip():
            raise MailboxError("CANNOT", "a mailbox name cannot have empty levels")
        if len(level) > MAX_LEVEL:
            raise MailboxError("CANNOT", f"a level of a mailbox name is at most {MAX_LEVEL} "
                                         "characters")
    if len(levels) > MAX_DEPTH:
        raise MailboxError("CANNOT", f"mailboxes nest at most {MAX_DEPTH} deep")
    return [unicodedata.normalize("NFC", level) for level in levels]


def is_mail_class(container_class: str | None) -> bool:
    return not container_class or container_class == "IPF.Note" \
        or container_class.startswith("IPF.Note.")


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _is_inbox(name: str) -> bool:
    return name.upper() == "INBOX"


RESERVED_MARK = "~"


def _reserved(level: str) -> bool:
    """A top-level personal folder whose name IMAP has taken: ``INBOX`` (next to a
    localised Inbox) and the namespace prefixes. Such a folder is shown with ``~``
    appended, and a first level ending in ``~`` after such a name leads back to it."""
    return _is_inbox(level) or level.casefold() in (OTHER_USERS.casefold(),
                                                    SHARED_FOLDERS.casefold())


def _normal(name: str) -> str:
    """``INBOX`` in any case, and its children, with the canonical spelling."""
    if _is_inbox(name[:5]) and (len(name) == 5 or name[5] == SEPARATOR):
        return "INBOX" + name[5:]
    return unicodedata.normalize("NFC", name)


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """RFC 3501 LIST wildcards: ``*`` matches anything, ``%`` anything but ``/``;
    ``INBOX`` at the start in any case."""
    if _is_inbox(pattern[:5]):
        pattern = "INBOX" + pattern[5:]
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


@dataclass
class _Node:
    entry: MailboxEntry
    subscribed: bool
    noselect_marked: bool
    rights: int
    virtual: bool = False
    """A namespace level (``Other Users``, ``Other Users/<address>``, ``Shared Folders``)."""


class _Builder:
    """Turns the folder rows of one store into entries below a name prefix."""

    def __init__(self, rows: list[imap.FolderRow], *, prefix: str, store: str, own: bool,
                 show_all: bool, personal: bool, private: bool = True):
        self.by_parent: dict[int | None, list[imap.FolderRow]] = {}
        for row in rows:
            self.by_parent.setdefault(row.parent_id, []).append(row)
        for children in self.by_parent.values():
            children.sort(key=lambda r: r.name.casefold())
        self.prefix = prefix
        self.store = store
        self.own = own
        self.show_all = show_all
        self.personal = personal
        self.private = private
        self.nodes: list[_Node] = []

    def shown(self, row: imap.FolderRow) -> bool:
        if row.hidden or row.folder_type != FOLDER_GENERIC:
            return False
        return self.show_all or is_mail_class(row.container_class)

    def build(self, root_id: int) -> bool:
        return self._walk(root_id, self.prefix, 0, top=True)

    def _walk(self, parent_id: int, prefix: str, depth: int, top: bool = False) -> bool:
        if depth > MAX_DEPTH:
            return False
        found = False
        for row in self.by_parent.get(parent_id, []):
            if row.hidden:
                continue
            inbox = self.private and top and row.folder_id == int(Private.INBOX)
            level = "INBOX" if inbox else level_name(row.name)
            if top and self.personal and not inbox and _reserved(level):
                level += RESERVED_MARK
            name = f"{prefix}{level}"
            index = len(self.nodes)
            self.nodes.append(None)  # type: ignore[arg-type]  # placeholder keeps parents first
            has_children = self._walk(row.folder_id, name + SEPARATOR, depth + 1)
            visible = self.own or bool(row.rights & VISIBLE)
            readable = self.own or bool(row.rights & Rights.READ_ANY)
            selectable = self.shown(row) and visible and readable and not row.noselect
            listed = (self.shown(row) and visible) or has_children
            if not listed:
                del self.nodes[index]
                continue
            found = True
            special = SPECIAL_USE.get(row.folder_id) if self.personal else None
            attributes = ["\\HasChildren" if has_children else "\\HasNoChildren"]
            if not selectable:
                attributes.insert(0, "\\Noselect")
            if special:
                attributes.append(special)
            entry = MailboxEntry(name, self.store, row.folder_id, selectable, tuple(attributes),
                                 special)
            self.nodes[index] = _Node(entry, row.subscribed and self.own, row.noselect,
                                      row.rights)
        return found


class MailboxTree:
    """What one user sees; one per session. Call :meth:`refresh` after folder events."""

    def __init__(self, host: Host, user: str, show_all: bool = False):
        self.host = host
        self.user = user.strip().lower()
        self.domain = self.user.rpartition("@")[2]
        self.show_all = show_all
        self._nodes: dict[str, _Node] = {}
        self._folded: dict[str, str] = {}
        self._order: list[str] = []
        self._foreign_subscriptions: list[str] = []

    @classmethod
    async def load(cls, host: Host, user: str, *, show_all: bool = False) -> MailboxTree:
        tree = cls(host, user, show_all)
        await tree.refresh()
        return tree

    # -- reading the stores ----------------------------------------------------------------
    async def refresh(self) -> None:
        """Read the folder trees again (after folder events, before LIST)."""
        try:
            own = await self.host.store.open(self.user)
        except NotFound:
            raise MailboxError("UNAVAILABLE", f"{self.user} has no mailbox store") from None

        def personal(txn: Txn) -> tuple[list[imap.FolderRow], list[str]]:
            return imap.folder_tree(txn), imap.subscriptions(txn)

        rows, subscribed = await own.read(personal)
        nodes: list[_Node] = []
        builder = _Builder(rows, prefix="", store=own.key, own=True, show_all=self.show_all,
                           personal=True)
        builder.build(int(Private.IPM_SUBTREE))
        nodes.extend(builder.nodes)
        nodes.extend(await self._other_users())
        nodes.extend(await self._public())
        self._nodes = {node.entry.name: node for node in nodes}
        self._order = [node.entry.name for node in nodes]
        self._folded = {_fold(name): name for name in reversed(self._order)}
        self._foreign_subscriptions = subscribed

    async def _other_users(self) -> list[_Node]:
        out: list[_Node] = []
        for owner in await sharers(self.host, self.user):
            try:
                mbox = await self.host.store.open(owner)
                rows = await mbox.read(imap.folder_tree, self.user)
            except StoreError:
                continue
            prefix = f"{OTHER_USERS}{SEPARATOR}{owner}{SEPARATOR}"
            builder = _Builder(rows, prefix=prefix, store=owner, own=False,
                               show_all=self.show_all, personal=False)
            if builder.build(int(Private.IPM_SUBTREE)):
                if not out:
                    out.append(_virtual(OTHER_USERS, ""))
                out.append(_virtual(prefix[:-1], owner, int(Private.IPM_SUBTREE)))
                out.extend(builder.nodes)
        return out

    async def _public(self) -> list[_Node]:
        key = f"public:{self.domain}"
        if not self.domain or not self.host.store.exists(key):
            return []
        try:
            mbox = await self.host.store.open(key)
            rows = await mbox.read(imap.folder_tree, self.user)
        except StoreError:
            return []
        builder = _Builder(rows, prefix=SHARED_FOLDERS + SEPARATOR, store=key, own=False,
                           show_all=self.show_all, personal=False, private=False)
        if not builder.build(int(Public.IPM_SUBTREE)):
            return []
        return [_virtual(SHARED_FOLDERS, key, int(Public.IPM_SUBTREE)), *builder.nodes]

    # -- names --------------------------------------------------------------------------------
    def namespaces(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]],
                                  list[tuple[str, str]]]:
        return ([("", SEPARATOR)], [(OTHER_USERS + SEPARATOR, SEPARATOR)],
                [(SHARED_FOLDERS + SEPARATOR, SEPARATOR)])

    def find(self, name: str) -> MailboxEntry | None:
        """The mailbox named ``name`` (INBOX in any case; other names NFC and, as the
        store's names, case-insensitively), or None."""
        name = _normal(name)
        node = self._nodes.get(name)
        if node is None:
            exact = self._folded.get(_fold(name))
            node = self._nodes.get(exact) if exact is not None else None
        return None if node is None else node.entry

    async def lookup(self, name: str) -> MailboxEntry | None:
        """:meth:`find`, reading the trees again first when the name is unknown (a folder
        another session or protocol made since the last refresh)."""
        found = self.find(name)
        if found is None:
            await self.refresh()
            found = self.find(name)
        return found

    def entries(self) -> list[MailboxEntry]:
        """Every mailbox, parents before children."""
        return [self._nodes[name].entry for name in self._order]

    def is_subscribed(self, name: str) -> bool:
        node = self._nodes.get(_normal(name))
        if node is not None and node.entry.store == self.user:
            return node.subscribed
        return _normal(name) in self._foreign_subscriptions

    def list(self, reference: str, patterns: list[str], *, subscribed: bool = False,
             special_use: bool = False, recursive_match: bool = False, remote: bool = False,
             return_subscribed: bool = False) -> list[tuple[MailboxEntry, tuple[str, ...]]]:
        """LIST/LSUB: the entries matching any pattern (prefixed by ``reference``), with
        the attributes to show.

        ``subscribed``: only subscribed names (with ``\\Subscribed``), including
        subscribed names that are no mailbox (``\\NonExistent``). With
        ``recursive_match`` too, a name that is not subscribed itself but has a
        subscribed name below it is returned without ``\\Subscribed`` (the caller
        adds ``CHILDINFO ("SUBSCRIBED")``, or for LSUB shows it ``\\Noselect``).
        ``special_use``: only mailboxes with a special use. ``return_subscribed``
        adds ``\\Subscribed`` where it applies. An empty pattern is the caller's
        (``* LIST (\\Noselect) "/" ""``). ``remote`` changes nothing (no remote
        mailboxes here).
        """
        del remote
        regexes = [pattern_regex(_normal(reference + pattern)) for pattern in patterns
                   if pattern != ""]
        if not regexes:
            return []
        sub_names = self._subscribed_names()
        candidates: list[MailboxEntry] = self.entries()
        if subscribed:
            known = set(self._order)
            candidates = [e for e in candidates if e.name in sub_names] + [
                MailboxEntry(name, "", 0, False, ("\\NonExistent",), None)
                for name in sorted(sub_names) if name not in known]
        out: list[tuple[MailboxEntry, tuple[str, ...]]] = []
        listed: set[str] = set()
        for entry in candidates:
            if special_use and entry.special_use is None:
                continue
            if not any(r.fullmatch(entry.name) for r in regexes):
                continue
            attributes = list(entry.attributes)
            if (subscribed or return_subscribed) and entry.name in sub_names:
                attributes.append("\\Subscribed")
            out.append((entry, tuple(attributes)))
            listed.add(entry.name)
        if subscribed and recursive_match:
            for name in sorted(self._parents_of(sub_names) - listed):
                if not any(r.fullmatch(name) for r in regexes):
                    continue
                found = self.find(name)
                entry = found if found is not None and found.name == name else MailboxEntry(
                    name, "", 0, False, ("\\NonExistent",), None)
                out.append((entry, entry.attributes))
        return out

    def _subscribed_names(self) -> set[str]:
        names = {name for name, node in self._nodes.items() if node.subscribed}
        names.update(self._foreign_subscriptions)
        return names

    @staticmethod
    def _parents_of(names: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for name in names:
            levels = name.split(SEPARATOR)
            for n in range(1, len(levels)):
                out.add(SEPARATOR.join(levels[:n]))
        return out

    # -- where a new name goes ----------------------------------------------------------------
    def _place(self, name: str) -> tuple[str, int, builtins.list[str]]:
        """``(store key, root folder, stored levels below it)`` for a client's name."""
        levels = split_name(name)
        first = levels[0]
        if first == OTHER_USERS:
            if len(levels) < 3:
                raise MailboxError("CANNOT", "name a folder below Other Users/<address>/")
            owner = levels[1].lower()
            if owner == self.user:
                raise MailboxError("CANNOT", "your own folders are in the personal namespace")
            if _is_inbox(levels[2]):
                return owner, int(Private.INBOX), [stored_name(x) for x in levels[3:]]
            return owner, int(Private.IPM_SUBTREE), [stored_name(x) for x in levels[2:]]
        if first == SHARED_FOLDERS:
            if len(levels) < 2:
                raise MailboxError("CANNOT", "name a folder below Shared Folders/")
            return f"public:{self.domain}", int(Public.IPM_SUBTREE), \
                [stored_name(x) for x in levels[1:]]
        if _is_inbox(first):
            return self.user, int(Private.INBOX), [stored_name(x) for x in levels[1:]]
        if first.endswith(RESERVED_MARK) and _reserved(first[:-1]):
            levels = [first[:-1], *levels[1:]]
        return self.user, int(Private.IPM_SUBTREE), [stored_name(x) for x in levels]

    async def _store(self, key: str) -> Mailbox:
        try:
            mbox: Mailbox = await self.host.store.open(key)
        except NotFound:
            raise MailboxError("NONEXISTENT", f"there is no mailbox store {key}") from None
        return mbox

    async def _write(self, key: str, fn: Any, *args: Any) -> Any:
        mbox = await self._store(key)
        try:
            return await mbox.write(fn, *args)
        except StoreError as exc:
            raise store_error(exc) from exc

    def _node(self, name: str) -> _Node:
        entry = self.find(name)
        if entry is None:
            raise MailboxError("NONEXISTENT", f"no mailbox named {name!r}")
        return self._nodes[entry.name]

    # -- CREATE, DELETE, RENAME, SUBSCRIBE -------------------------------------------------------
    async def create(self, name: str, special_use: str | None = None) -> MailboxEntry:
        """CREATE, with any missing parent levels (RFC 3501). A ``\\Noselect`` name left
        by DELETE becomes a mailbox again; any other existing name is ALREADYEXISTS."""
        key, root, levels = self._place(name)
        existing = self.find(name.rstrip(SEPARATOR) if len(name) > 1 else name)
        if existing is not None:
            node = self._nodes[existing.name]
            if node.noselect_marked and existing.store == key:
                await self._write(key, _clear_noselect, existing.folder_id, self.user)
                await self.refresh()
                return self.find(existing.name) or existing
            raise MailboxError("ALREADYEXISTS", f"{existing.name} already exists")
        if not levels:
            raise MailboxError("ALREADYEXISTS", "INBOX always exists")
        if special_use is not None:
            raise MailboxError("USEATTR", "special-use mailboxes are the store's default "
                                          "folders; they cannot be created")
        await self._write(key, _create_path, root, levels, self.user)
        await self.refresh()
        created = self.find(name.rstrip(SEPARATOR) if len(name) > 1 else name)
        if created is None:  # e.g. created below a folder this user cannot see
            raise MailboxError("CANNOT", f"{name} was created but is not visible to you")
        return created

    async def delete(self, name: str) -> None:
        """DELETE. INBOX and the store's default folders cannot be deleted; a folder with
        subfolders loses its messages and stays as ``\\Noselect`` (RFC 3501 6.3.4)."""
        node = self._node(name)
        entry = node.entry
        if entry.name == "INBOX":
            raise MailboxError("CANNOT", "INBOX cannot be deleted")
        if node.virtual:
            raise MailboxError("CANNOT", f"{entry.name} is a namespace, not a mailbox")
        await self._write(entry.store, _delete_folder, entry.folder_id, self.user)
        await self.refresh()

    async def rename(self, old: str, new: str) -> None:
        """RENAME, with missing parents of the new name created; subfolders move along.
        Renaming INBOX moves its messages into a new mailbox and leaves INBOX empty (and
        its subfolders where they are)."""
        node = self._node(old)
        entry = node.entry
        if node.virtual:
            raise MailboxError("CANNOT", f"{entry.name} is a namespace, not a mailbox")
        key, root, levels = self._place(new)
        existing = self.find(new)
        if existing is not None and (existing.store, existing.folder_id) != (
                entry.store, entry.folder_id):
            raise MailboxError("ALREADYEXISTS", f"{existing.name} already exists")
        if key != entry.store:
            raise MailboxError("CANNOT", "a mailbox cannot be renamed into another store")
        if not levels:
            raise MailboxError("ALREADYEXISTS", "INBOX always exists")
        if entry.name == "INBOX":
            await self._write(key, _rename_inbox, root, levels, self.user)
        else:
            await self._write(key, _move_folder, entry.folder_id, root, levels, self.user)
        await self.refresh()

    async def subscribe(self, name: str, subscribed: bool) -> None:
        """SUBSCRIBE / UNSUBSCRIBE, kept in the store. Names that are no folder of the
        user's own store (other users', public, non-existent) are kept by name."""
        if not name or _CONTROL.search(name):
            raise MailboxError("CANNOT", "not a mailbox name")
        entry = self.find(name)
        if entry is not None and entry.store == self.user and entry.folder_id:
            await self._write(self.user, imap.set_subscribed, entry.folder_id, subscribed)
        else:
            canonical = entry.name if entry is not None else _normal(name)
            await self._write(self.user, imap.set_subscription, canonical, subscribed)
        await self.refresh()

    # -- per mailbox -------------------------------------------------------------------------------
    async def open_store(self, entry: MailboxEntry) -> Mailbox:
        return await self._store(entry.store)

    async def rights(self, entry: MailboxEntry) -> Rights:
        """What this user may do in the mailbox (``gateway.store.permissions``)."""
        if not entry.store or not entry.folder_id:
            return Rights.NONE
        if entry.store == self.user:
            return permissions.ALL
        mbox = await self._store(entry.store)
        try:
            return Rights(await mbox.read(permissions.rights_for, self.user, entry.folder_id))
        except NotFound:
            raise MailboxError("NONEXISTENT", f"{entry.name} no longer exists") from None

    async def status(self, entry: MailboxEntry, items: builtins.list[str]
                     ) -> builtins.list[tuple[str, int]]:
        """STATUS items MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT DELETED SIZE
        HIGHESTMODSEQ APPENDLIMIT, in the order asked; one read of the store."""
        if not entry.selectable:
            raise not_selectable(entry)
        if not (await self.rights(entry)) & Rights.READ_ANY:
            raise MailboxError("NOPERM", f"you may not read {entry.name}")
        mbox = await self._store(entry.store)
        try:
            status = await mbox.read(imap.status, entry.folder_id)
        except NotFound:
            raise MailboxError("NONEXISTENT", f"{entry.name} no longer exists") from None
        values = {
            "MESSAGES": status.messages, "UIDNEXT": status.uidnext,
            "UIDVALIDITY": status.uidvalidity, "UNSEEN": status.unseen,
            "RECENT": status.recent, "DELETED": status.deleted, "SIZE": status.size,
            "HIGHESTMODSEQ": status.highest_modseq,
            "APPENDLIMIT": mbox.limits.max_message_bytes,
        }
        out = []
        for item in items:
            key = item.upper()
            if key not in values:
                raise MailboxError("", f"unknown STATUS item {item}", bad=True)
            out.append((key, int(values[key])))
        return out


def _virtual(name: str, store: str, folder_id: int = 0) -> _Node:
    entry = MailboxEntry(name, store, folder_id, False, ("\\Noselect", "\\HasChildren"), None)
    return _Node(entry, False, False, 0, virtual=True)


# -- writes (each one transaction on the store's writer thread) -------------------------------
def _require(txn: Txn, user: str, folder_id: int, needed: Rights) -> None:
    permissions.require(txn, user, folder_id, needed)


def _create_path(txn: Txn, root: int, levels: list[str], user: str,
                 parents_only: bool = False) -> int:
    """Create ``levels`` below ``root``, opening the ones that exist; the last must be
    new unless ``parents_only`` (the parents of a RENAME target)."""
    parent = root
    for n, level in enumerate(levels):
        last = n == len(levels) - 1 and not parents_only
        existing = folders.find_child(txn, parent, level)
        if existing is not None and not last:
            parent = existing
            continue
        if existing is not None:
            raise Collision(f"a folder named {level!r} already exists there")
        _require(txn, user, parent, Rights.CREATE_SUBFOLDER)
        parent = folders.create(txn, parent, level, "IPF.Note")
    return parent


def _clear_noselect(txn: Txn, folder_id: int, user: str) -> None:
    _require(txn, user, folder_id, Rights.FOLDER_OWNER)
    imap.clear_noselect(txn, folder_id)


def _delete_folder(txn: Txn, folder_id: int, user: str) -> None:
    _require(txn, user, folder_id, Rights.FOLDER_OWNER)
    if folders.is_protected(txn, folder_id):
        raise AccessDenied("a default folder of the store cannot be deleted")
    if folders.children(txn, folder_id):
        tag = txn.resolve(imap.ImapNoselect)
        if tag is not None and txn.read_props("folder_props", folder_id, [tag]).get(tag):
            raise InvalidArgument("the mailbox has subfolders and holds no messages "
                                  "(\\Noselect); delete the subfolders first")
        imap.make_noselect(txn, folder_id)
        return
    folders.delete(txn, folder_id, True)


def _rename_inbox(txn: Txn, root: int, levels: list[str], user: str) -> None:
    target = _create_path(txn, root, levels, user)
    mids = [row[0] for row in txn.conn.execute(
        "SELECT message_id FROM messages WHERE folder_id = ? AND associated = 0 ORDER BY uid",
        (int(Private.INBOX),))]
    messages.move(txn, mids, target)


def _move_folder(txn: Txn, folder_id: int, root: int, levels: list[str], user: str) -> None:
    _require(txn, user, folder_id, Rights.FOLDER_OWNER)
    parent = _create_path(txn, root, levels[:-1], user, True) if len(levels) > 1 else root
    new_name = levels[-1]
    current_parent = folders.require(txn, folder_id)[0]
    if parent == current_parent:
        from gateway.store import tags as T
        folders.set_props(txn, folder_id, {T.PidTagDisplayName: new_name})
        return
    _require(txn, user, parent, Rights.CREATE_SUBFOLDER)
    folders.move(txn, folder_id, parent, new_name)
