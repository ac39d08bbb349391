"""What IMAP needs from the store: UIDs, MODSEQ, flags mapped onto MAPI, expunge.

Each folder has a UIDVALIDITY (unique in the store and across re-creations,
taken from the clock) and a UIDNEXT; a message gets the folder's next UID when
it is created, copied or moved in. MODSEQ is the last change number that
touched a message (content, read state or ``\\Deleted``), so it never goes
back and CONDSTORE/QRESYNC fall out of the change numbers.

Flags live where the other protocols see them:

- ``\\Seen`` is the read state (its own change number, like MAPI read changes);
- ``\\Flagged`` is ``PidTagFlagStatus`` = followupFlagged (2);
- ``\\Answered`` / ``$Forwarded`` are ``PidTagLastVerbExecuted`` (102/103, 104).
  Only one verb fits there; when a message is both answered and forwarded the
  verb is 104 and a gateway property remembers the answer;
- ``\\Draft`` is ``MSGFLAG_UNSENT``;
- keywords are the categories (``PidNameKeywords``), which Outlook shows;
  categories that are no IMAP atom (spaces, brackets ...) are not shown;
- ``\\Deleted`` is IMAP's own (kept until EXPUNGE) and is no MAPI change.

For the IMAP mailbox model there is more: the folder tree in one pass with the
asking user's rights (:func:`folder_tree`), subscriptions and the ``\\Noselect``
mark as folder properties of the gateway's own property set (no MAPI change),
the ``\\Recent`` floor (:func:`claim_recent`), SELECT and poll batches
(:func:`select`, :func:`reselect`, :func:`changes`: nothing changed costs one
counter read) and APPEND with flags set from the start (:func:`append`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, NamedTuple

from gateway.store import folders, messages
from gateway.store import proptypes as pt
from gateway.store import tags as T
from gateway.store.errors import InvalidArgument
from gateway.store.named import PSETID_GATEWAY, NamedProp
from gateway.store.objects import MSGFLAG_READ, MSGFLAG_UNSENT, NewMessage
from gateway.store.txn import Txn
from gateway.store.values import unpack_multi

ImapAnswered = NamedProp(PSETID_GATEWAY, "ImapAnswered", pt.PT_BOOLEAN)

VERB_REPLY_TO_SENDER = 102
VERB_REPLY_TO_ALL = 103
VERB_FORWARD = 104
FLAG_STATUS_FLAGGED = 2

SYSTEM_FLAGS = ("\\Seen", "\\Flagged", "\\Answered", "\\Draft", "\\Deleted")
PERMANENT_FLAGS = (*SYSTEM_FLAGS, "$Forwarded", "\\*")
_ATOM = re.compile(r"^[!#-'*+\-.0-9:;<=>?@A-Z^-z|~]+$")
MAX_KEYWORD = 100
"""Longest keyword accepted (categories are short names)."""

Mode = Literal["set", "add", "remove"]


@dataclass(frozen=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int
    messages: int
    unseen: int
    highest_modseq: int
    size: int
    recent_floor: int
    """UIDs at or above this arrived after the last SELECT that claimed \\Recent."""
    deleted: int = 0
    """Messages marked ``\\Deleted`` (STATUS DELETED, RFC 9051)."""
    recent: int = 0
    """Messages at or above ``recent_floor`` (STATUS RECENT)."""


class MessageFlags(NamedTuple):
    """One message as IMAP lists it (a named tuple: a SELECT makes one per message)."""

    uid: int
    message_id: int
    modseq: int
    flags: frozenset[str]
    size: int


def is_keyword(flag: str) -> bool:
    return (not flag.startswith("\\") and len(flag) <= MAX_KEYWORD
            and _ATOM.match(flag) is not None)


def status(txn: Txn, folder_id: int) -> FolderStatus:
    folders.require(txn, folder_id)
    uidvalidity, uidnext = txn.conn.execute(
        "SELECT uidvalidity, uidnext FROM folders WHERE folder_id = ?", (folder_id,)).fetchone()
    floor = recent_floor(txn, folder_id)
    count, unseen, top, size, deleted, recent = txn.conn.execute(
        "SELECT count(*), total(is_read = 0), max(modseq), total(coalesce(mime_size, size)), "
        "total(imap_deleted), total(uid >= ?) "
        "FROM messages WHERE folder_id = ? AND associated = 0", (floor, folder_id)).fetchone()
    gone = txn.conn.execute("SELECT max(change_number) FROM tombstones WHERE folder_id = ? "
                            "AND is_folder = 0", (folder_id,)).fetchone()[0]
    highest = max(top or 0, gone or 0, 1)
    return FolderStatus(uidvalidity, uidnext, count, int(unseen), highest, int(size), floor,
                        int(deleted), int(recent))


@dataclass(frozen=True)
class FolderHeader:
    """What a SELECT needs besides the messages, read without touching them."""

    uidvalidity: int
    uidnext: int
    recent_floor: int
    gone_modseq: int
    """The highest change number of a message removed from the folder (0: none)."""
    last_cn: int


def header(txn: Txn, folder_id: int) -> FolderHeader:
    folders.require(txn, folder_id)
    uidvalidity, uidnext = txn.conn.execute(
        "SELECT uidvalidity, uidnext FROM folders WHERE folder_id = ?", (folder_id,)).fetchone()
    gone = txn.conn.execute("SELECT max(change_number) FROM tombstones WHERE folder_id = ? "
                            "AND is_folder = 0", (folder_id,)).fetchone()[0]
    return FolderHeader(uidvalidity, uidnext, recent_floor(txn, folder_id), gone or 0,
                        txn.last_cn())


def select(txn: Txn, folder_id: int) -> tuple[FolderStatus, list[MessageFlags], int]:
    """SELECT in one snapshot: the folder's status, its :func:`listing` and the store's
    last change number (the watermark for :func:`changes`); the counts come from the
    listing rather than a second pass over the folder."""
    head = header(txn, folder_id)
    items = listing(txn, folder_id)
    top = max((item.modseq for item in items), default=0)
    floor = head.recent_floor
    unseen = deleted = recent = size = 0
    for item in items:
        flags = item.flags
        if "\\Seen" not in flags:
            unseen += 1
        if "\\Deleted" in flags:
            deleted += 1
        if item.uid >= floor:
            recent += 1
        size += item.size
    status = FolderStatus(head.uidvalidity, head.uidnext, len(items), unseen,
                          max(top, head.gone_modseq, 1), size, floor, deleted, recent)
    return status, items, head.last_cn


def reselect(txn: Txn, folder_id: int, since: int) -> tuple[FolderHeader, Changes | None]:
    """SELECT of a folder whose listing at change number ``since`` is known: its header
    and what changed since (:func:`changes`), in one snapshot."""
    found = changes(txn, folder_id, since)
    if found is not None and not found.exists:
        return FolderHeader(0, 0, 1, 0, found.last_cn), found
    return header(txn, folder_id), found


def _keywords_tag(txn: Txn, create: bool = False) -> int | None:
    return txn.resolve(T.PidNameKeywords, create=create)


def listing(txn: Txn, folder_id: int, changed_since: int = 0,
            message_ids: list[int] | None = None) -> list[MessageFlags]:
    """Every (or every changed, or the given) message of a folder by UID, with its flags
    and MODSEQ.

    Two queries rather than one row of joins per message: the message rows, then
    only the flag properties that are set (most messages have none), so a SELECT of
    a large folder reads little more than its index.
    """
    folders.require(txn, folder_id)
    only = "" if message_ids is None else \
        " AND m.message_id IN (SELECT value FROM json_each(?))"
    where = f"m.folder_id = ? AND m.associated = 0 AND m.modseq > ?{only}"
    args: tuple[object, ...] = (folder_id, changed_since,
                                *([] if message_ids is None else [_json(message_ids)]))
    # After ANALYZE, SQLite prefers walking the folder's UID index in order over the
    # MODSEQ range and sorting: every poll after a change then read all the folder's
    # rows (2 ms at 10,000 messages) to return one.
    index = " INDEXED BY messages_folder_modseq" if changed_since else ""
    rows = txn.conn.execute(
        "SELECT m.uid, m.message_id, m.modseq, m.is_read, m.imap_deleted, "
        f"coalesce(m.mime_size, m.size) FROM messages m{index} WHERE {where} ORDER BY m.uid",
        args).fetchall()
    keywords = _keywords_tag(txn) or -1
    answered = txn.resolve(ImapAnswered) or -1
    source_args: tuple[object, ...] = ()
    if changed_since or message_ids is not None:
        # Few messages: look their properties up by id instead of walking the folder again.
        source = "(SELECT value AS message_id FROM json_each(?)) m"
        source_args, where, args = (_json([row[1] for row in rows]),), "1", ()
    else:
        source = "messages m"
    extra: dict[int, set[str]] = {}
    for mid, tag, value, blob in txn.conn.execute(
            f"SELECT p.message_id, p.tag, p.value, p.blob FROM {source} JOIN message_props p "
            "ON p.message_id = m.message_id AND p.tag IN (?, ?, ?, ?) "
            f"WHERE {where} UNION ALL "
            f"SELECT p.message_id, p.tag, p.value, NULL FROM {source} JOIN message_props p "
            "ON p.message_id = m.message_id AND p.tag = ? AND p.value & ? != 0 "
            f"WHERE {where}",
            (*source_args, T.PidTagFlagStatus, T.PidTagLastVerbExecuted, keywords, answered,
             *args, *source_args, T.PidTagMessageFlags, MSGFLAG_UNSENT, *args)):
        found = extra.setdefault(mid, set())
        if tag == T.PidTagFlagStatus:
            if value == FLAG_STATUS_FLAGGED:
                found.add("\\Flagged")
        elif tag == T.PidTagLastVerbExecuted:
            if value in (VERB_REPLY_TO_SENDER, VERB_REPLY_TO_ALL):
                found.add("\\Answered")
            elif value == VERB_FORWARD:
                found.add("$Forwarded")
        elif tag == answered:
            if value:
                found.add("\\Answered")
        elif tag == T.PidTagMessageFlags:
            found.add("\\Draft")
        elif tag == keywords:
            raw = value if blob is None else txn.blobs.get(txn.conn, blob)
            found.update(k for k in unpack_multi(pt.PT_UNICODE, raw) if is_keyword(k))
    seen, deleted, both = frozenset(["\\Seen"]), frozenset(["\\Deleted"]), \
        frozenset(["\\Seen", "\\Deleted"])
    plain: tuple[frozenset[str], ...] = (frozenset(), seen, deleted, both)
    out = []
    for uid, mid, modseq, is_read, is_deleted, size in rows:
        more = extra.get(mid)
        if more is None:
            flags = plain[(1 if is_read else 0) + (2 if is_deleted else 0)]
        else:
            if is_read:
                more.add("\\Seen")
            if is_deleted:
                more.add("\\Deleted")
            flags = frozenset(more)
        out.append(MessageFlags(uid, mid, modseq, flags, int(size)))
    return out


def store_flags(txn: Txn, folder_id: int, message_ids: Iterable[int], flags: Iterable[str],
                mode: Mode, unchanged_since: int | None = None
                ) -> tuple[list[int], list[int]]:
    """STORE: change flags of messages; ``(changed ids, ids failing UNCHANGEDSINCE)``.

    Messages whose MODSEQ is above ``unchanged_since`` are left alone
    (RFC 7162). Only messages whose flags really change take a new MODSEQ.
    """
    wanted = check_flags(flags)
    ids = list(dict.fromkeys(message_ids))
    messages.in_folder(txn, folder_id, ids)
    current = {item.message_id: item for item in _flags_of(txn, folder_id, ids)}
    changed, failed = [], []
    for mid in ids:
        item = current[mid]
        if unchanged_since is not None and item.modseq > unchanged_since:
            failed.append(mid)
            continue
        if mode == "set":
            target = set(wanted)
        elif mode == "add":
            target = set(item.flags) | wanted
        else:
            target = set(item.flags) - wanted
        if _apply(txn, mid, set(item.flags), target):
            changed.append(mid)
    return changed, failed


def _flags_of(txn: Txn, folder_id: int, ids: list[int]) -> list[MessageFlags]:
    return listing(txn, folder_id, 0, ids)


def _apply(txn: Txn, mid: int, before: set[str], after: set[str]) -> bool:
    if before == after:
        return False
    props: dict[object, object] = {}
    if ("\\Flagged" in before) != ("\\Flagged" in after):
        props[T.PidTagFlagStatus] = FLAG_STATUS_FLAGGED if "\\Flagged" in after else None
    answered, forwarded = "\\Answered" in after, "$Forwarded" in after
    if (("\\Answered" in before) != answered) or (("$Forwarded" in before) != forwarded):
        props[T.PidTagLastVerbExecuted] = (VERB_FORWARD if forwarded else
                                           VERB_REPLY_TO_SENDER if answered else None)
        props[ImapAnswered] = True if answered and forwarded else None
        if answered or forwarded:
            props[T.PidTagLastVerbExecutionTime] = datetime.now(UTC)
        else:
            props[T.PidTagLastVerbExecutionTime] = None
    if ("\\Draft" in before) != ("\\Draft" in after):
        stored = txn.read_props("message_props", mid, [T.PidTagMessageFlags]).get(
            T.PidTagMessageFlags, 0)
        props[T.PidTagMessageFlags] = (stored | MSGFLAG_UNSENT if "\\Draft" in after
                                       else stored & ~MSGFLAG_UNSENT)
    old_kw = {f for f in before if not f.startswith("\\") and f != "$Forwarded"}
    new_kw = {f for f in after if not f.startswith("\\") and f != "$Forwarded"}
    if old_kw != new_kw:
        tag = _keywords_tag(txn)
        existing = txn.read_props("message_props", mid, [tag]).get(tag, []) if tag else []
        hidden = [k for k in existing if not is_keyword(k)]
        props[T.PidNameKeywords] = sorted(new_kw) + hidden or None
    if props:
        messages.set_props(txn, mid, props)  # type: ignore[arg-type]
    if ("\\Seen" in before) != ("\\Seen" in after):
        messages.set_read(txn, [mid], "\\Seen" in after)
    if ("\\Deleted" in before) != ("\\Deleted" in after):
        cn = txn.next_cn()
        row = txn.conn.execute(
            "UPDATE messages SET imap_deleted = ?, modseq = ? WHERE message_id = ? "
            "RETURNING folder_id, uid", (int("\\Deleted" in after), cn, mid)).fetchone()
        txn.event("object_modified", row[0], mid, cn, uid=row[1], imap_deleted=True)
    return True


def expunge(txn: Txn, folder_id: int, uids: Iterable[int] | None = None) -> list[int]:
    """Remove the messages marked ``\\Deleted`` (only those among ``uids`` if given)."""
    folders.require(txn, folder_id)
    rows = txn.conn.execute("SELECT uid, message_id FROM messages WHERE folder_id = ? "
                            "AND imap_deleted = 1 ORDER BY uid", (folder_id,)).fetchall()
    if uids is not None:
        allowed = set(uids)
        rows = [row for row in rows if row[0] in allowed]
    messages.delete(txn, [mid for _, mid in rows], hard=True)
    return [uid for uid, _ in rows]


def vanished(txn: Txn, folder_id: int, since_modseq: int) -> list[int]:
    """UIDs expunged or moved away after ``since_modseq`` (QRESYNC VANISHED)."""
    rows = txn.conn.execute(
        "SELECT uid FROM tombstones WHERE folder_id = ? AND is_folder = 0 AND associated = 0 "
        "AND change_number > ? AND uid IS NOT NULL ORDER BY uid", (folder_id, since_modseq))
    return [row[0] for row in rows]


def uid_to_id(txn: Txn, folder_id: int, uids: Iterable[int]) -> dict[int, int]:
    """``{uid: message id}`` for the UIDs that exist in the folder."""
    wanted = list(uids)
    rows = txn.conn.execute(
        "SELECT uid, message_id FROM messages WHERE folder_id = ? AND associated = 0 "
        "AND uid IN (SELECT value FROM json_each(?))", (folder_id, _json(wanted))).fetchall()
    return dict(rows)


def _json(items: list[int]) -> str:
    import json
    return json.dumps(items)


# -- mailbox model: the folder tree, subscriptions, \Recent, batches for poll and APPEND ----

ImapSubscribed = NamedProp(PSETID_GATEWAY, "ImapSubscribed", pt.PT_BOOLEAN)
"""False on a folder the owner unsubscribed from; absent means subscribed (so folders
made by Outlook, EAS or EWS show in clients that list only subscribed folders)."""
ImapNoselect = NamedProp(PSETID_GATEWAY, "ImapNoselect", pt.PT_BOOLEAN)
"""True on a folder IMAP DELETE emptied but kept because it has subfolders (RFC 3501
6.3.4: the name stays, with ``\\Noselect``)."""
ImapRecentFloor = NamedProp(PSETID_GATEWAY, "ImapRecentFloor", pt.PT_I8)
"""The folder's UIDNEXT when a session last claimed ``\\Recent``; absent: 1."""
ImapSubscriptions = NamedProp(PSETID_GATEWAY, "ImapSubscriptions", pt.PT_MV_UNICODE)
"""On the owner's IPM subtree: subscribed names that are no folder of this store
(other users' folders, public folders, names that do not exist)."""
MAX_SUBSCRIPTIONS = 1000


@dataclass(frozen=True)
class FolderRow:
    """One folder as the IMAP mailbox list needs it."""

    folder_id: int
    parent_id: int | None
    name: str
    folder_type: int
    container_class: str | None
    hidden: bool
    subscribed: bool
    noselect: bool
    rights: int
    """What the user asking holds on it (``Rights`` bits)."""


def folder_tree(txn: Txn, user: str | None = None) -> list[FolderRow]:
    """Every folder of the store with what a mailbox list needs, in one pass.

    ``rights`` are those of ``user`` (None: the owner) per folder, read from
    the ACL table once rather than folder by folder.
    """
    from gateway.store import permissions

    tags = [T.PidTagContainerClass, T.PidTagAttributeHidden,
            txn.resolve(ImapSubscribed) or -1, txn.resolve(ImapNoselect) or -1]
    rows = txn.conn.execute(
        "SELECT f.folder_id, f.parent_id, f.name, f.folder_type, cc.value, hid.value, "
        "sub.value, nos.value FROM folders f "
        "LEFT JOIN folder_props cc ON cc.folder_id = f.folder_id AND cc.tag = ? "
        "LEFT JOIN folder_props hid ON hid.folder_id = f.folder_id AND hid.tag = ? "
        "LEFT JOIN folder_props sub ON sub.folder_id = f.folder_id AND sub.tag = ? "
        "LEFT JOIN folder_props nos ON nos.folder_id = f.folder_id AND nos.tag = ?",
        tags).fetchall()
    everything = int(permissions.ALL)
    held: dict[int, int] | None = None
    if user is not None and not permissions._owner_equivalent(txn, user.strip().lower()):
        name = user.strip().lower()
        own: dict[int, int] = {}
        default: dict[int, int] = {}
        for folder_id, member, value in txn.conn.execute(
                "SELECT folder_id, member, rights FROM permissions WHERE member IN (?, ?)",
                (name, permissions.DEFAULT)):
            (own if member == name else default)[folder_id] = value & int(permissions.VALID)
        held = {**default, **own}
    return [FolderRow(fid, parent, name, ftype, cls if isinstance(cls, str) else None,
                      bool(hidden), sub is None or bool(sub), bool(nos),
                      everything if held is None else held.get(fid, 0))
            for fid, parent, name, ftype, cls, hidden, sub, nos in rows]


def set_subscribed(txn: Txn, folder_id: int, subscribed: bool) -> None:
    """Subscribe to or unsubscribe from a folder of this store (no MAPI change)."""
    folders.require(txn, folder_id)
    txn.write_props("folder_props", folder_id, {ImapSubscribed: None if subscribed else False})


def subscriptions(txn: Txn) -> list[str]:
    """Subscribed names kept on the IPM subtree (see :data:`ImapSubscriptions`)."""
    from gateway.store.special import Private
    tag = txn.resolve(ImapSubscriptions)
    if tag is None or txn.info.public:
        return []
    return list(txn.read_props("folder_props", int(Private.IPM_SUBTREE), [tag]).get(tag, []))


def set_subscription(txn: Txn, name: str, subscribed: bool) -> None:
    """Add or drop one name of :func:`subscriptions`."""
    from gateway.store.special import Private
    current = subscriptions(txn)
    names = [n for n in current if n != name]
    if subscribed:
        if len(names) >= MAX_SUBSCRIPTIONS:
            raise InvalidArgument(f"at most {MAX_SUBSCRIPTIONS} subscriptions outside "
                                  "the own mailbox")
        names.append(name)
    txn.write_props("folder_props", int(Private.IPM_SUBTREE),
                    {ImapSubscriptions: sorted(names) or None})


def make_noselect(txn: Txn, folder_id: int) -> int:
    """IMAP DELETE of a folder with subfolders: remove its messages, keep it as
    ``\\Noselect``; returns how many messages went."""
    gone = folders.empty(txn, folder_id, associated=False, subfolders=False, hard=True)
    txn.write_props("folder_props", folder_id, {ImapNoselect: True})
    return gone


def clear_noselect(txn: Txn, folder_id: int) -> None:
    """CREATE of a ``\\Noselect`` name makes it a mailbox again."""
    txn.write_props("folder_props", folder_id, {ImapNoselect: None})


def recent_floor(txn: Txn, folder_id: int) -> int:
    tag = txn.resolve(ImapRecentFloor)
    if tag is None:
        return 1
    return int(txn.read_props("folder_props", folder_id, [tag]).get(tag, 1))


def claim_recent(txn: Txn, folder_id: int) -> int:
    """SELECT (read-write): the messages at or above the returned UID are ``\\Recent``
    for the caller and for nobody after it. Writes only when something arrived."""
    floor = recent_floor(txn, folder_id)
    uidnext = txn.conn.execute("SELECT uidnext FROM folders WHERE folder_id = ?",
                               (folder_id,)).fetchone()[0]
    if uidnext > floor:
        txn.write_props("folder_props", folder_id, {ImapRecentFloor: int(uidnext)})
    return floor


@dataclass(frozen=True)
class Changes:
    """What changed in a folder after a change number (an IMAP poll)."""

    last_cn: int
    """The store's last change number in the snapshot read: the next watermark."""
    exists: bool
    changed: list[MessageFlags]
    """Messages (new or changed) whose MODSEQ is above the watermark, by UID."""
    vanished: list[int]
    """UIDs expunged or moved away after the watermark."""
    count: int
    """Messages in the folder now (to notice what tombstones no longer tell)."""


def changes(txn: Txn, folder_id: int, since: int) -> Changes | None:
    """Everything an IMAP session must report since change number ``since``, or None when
    nothing at all changed in the store (one read of a counter)."""
    last = txn.last_cn()
    if last <= since:
        return None
    if not folders.exists(txn, folder_id):
        return Changes(last, False, [], [], 0)
    count = txn.conn.execute("SELECT content_count FROM folders WHERE folder_id = ?",
                             (folder_id,)).fetchone()[0]
    return Changes(last, True, listing(txn, folder_id, since), vanished(txn, folder_id, since),
                   int(count))


def uids_of(txn: Txn, folder_id: int) -> list[int]:
    """Every UID of the folder (a resync when tombstones were pruned)."""
    return [row[0] for row in txn.conn.execute(
        "SELECT uid FROM messages WHERE folder_id = ? AND associated = 0 ORDER BY uid",
        (folder_id,))]


def pruned_cn(txn: Txn) -> int:
    """Deletions at or below this change number are forgotten (QRESYNC must not trust
    VANISHED below it)."""
    row = txn.conn.execute("SELECT value FROM meta WHERE key = 'pruned_cn'").fetchone()
    return 0 if row is None else int(row[0])


def check_flags(flags: Iterable[str]) -> set[str]:
    """The flags as a set; :class:`InvalidArgument` for one that cannot be stored."""
    wanted = set(flags)
    for flag in wanted:
        if flag.startswith("\\") and flag not in SYSTEM_FLAGS:
            raise InvalidArgument(f"{flag} is not a flag that can be stored")
        if not flag.startswith("\\") and not is_keyword(flag):
            raise InvalidArgument(f"{flag!r} is not a valid keyword")
    return wanted


def append(txn: Txn, folder_id: int, message: NewMessage, flags: Iterable[str]) -> tuple[int, int]:
    """APPEND: store a message with IMAP flags set as MAPI properties from the start
    (one change, one ``object_created`` event); returns ``(uid, message id)``."""
    wanted = check_flags(flags)
    props = message.props
    msg_flags = int(props.get(T.PidTagMessageFlags) or 0)
    if "\\Seen" in wanted:
        msg_flags |= MSGFLAG_READ
    if "\\Draft" in wanted:
        msg_flags |= MSGFLAG_UNSENT
    props[T.PidTagMessageFlags] = msg_flags
    if "\\Flagged" in wanted:
        props[T.PidTagFlagStatus] = FLAG_STATUS_FLAGGED
    answered, forwarded = "\\Answered" in wanted, "$Forwarded" in wanted
    if answered or forwarded:
        props[T.PidTagLastVerbExecuted] = VERB_FORWARD if forwarded else VERB_REPLY_TO_SENDER
        props[T.PidTagLastVerbExecutionTime] = datetime.now(UTC)
        if answered and forwarded:
            props[ImapAnswered] = True
    keywords = sorted(f for f in wanted if not f.startswith("\\") and f != "$Forwarded")
    if keywords:
        parsed = props.get(T.PidNameKeywords) or []
        props[T.PidNameKeywords] = list(dict.fromkeys([*parsed, *keywords]))
    message_id = messages.create(txn, folder_id, message)
    if "\\Deleted" in wanted:
        txn.conn.execute("UPDATE messages SET imap_deleted = 1 WHERE message_id = ?",
                         (message_id,))
    uid = txn.conn.execute("SELECT uid FROM messages WHERE message_id = ?",
                           (message_id,)).fetchone()[0]
    return int(uid), message_id


def uids_of_ids(txn: Txn, message_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """``{message id: (folder id, uid)}`` (the UIDs copies and moves were given)."""
    rows = txn.conn.execute(
        "SELECT message_id, folder_id, uid FROM messages "
        "WHERE message_id IN (SELECT value FROM json_each(?))", (_json(list(message_ids)),))
    return {mid: (fid, uid) for mid, fid, uid in rows}


def uidvalidity(txn: Txn, folder_id: int) -> int:
    return int(txn.require("SELECT uidvalidity FROM folders WHERE folder_id = ?",
                           (folder_id,), f"folder {folder_id}")[0])
