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
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from gateway.store import folders, messages
from gateway.store import proptypes as pt
from gateway.store import tags as T
from gateway.store.errors import InvalidArgument
from gateway.store.named import PSETID_GATEWAY, NamedProp
from gateway.store.objects import MSGFLAG_UNSENT
from gateway.store.txn import Txn

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


@dataclass(frozen=True)
class MessageFlags:
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
    count, unseen, top, size = txn.conn.execute(
        "SELECT count(*), total(is_read = 0), max(modseq), total(coalesce(mime_size, size)) "
        "FROM messages WHERE folder_id = ? AND associated = 0", (folder_id,)).fetchone()
    gone = txn.conn.execute("SELECT max(change_number) FROM tombstones WHERE folder_id = ? "
                            "AND is_folder = 0", (folder_id,)).fetchone()[0]
    highest = max(top or 0, gone or 0, 1)
    return FolderStatus(uidvalidity, uidnext, count, int(unseen), highest, int(size), uidnext)


def _keywords_tag(txn: Txn, create: bool = False) -> int | None:
    return txn.resolve(T.PidNameKeywords, create=create)


def listing(txn: Txn, folder_id: int, changed_since: int = 0,
            message_ids: list[int] | None = None) -> list[MessageFlags]:
    """Every (or every changed, or the given) message of a folder by UID, with its flags
    and MODSEQ."""
    folders.require(txn, folder_id)
    only = "" if message_ids is None else \
        " AND m.message_id IN (SELECT value FROM json_each(?))"
    keywords = _keywords_tag(txn)
    answered = txn.resolve(ImapAnswered)
    rows = txn.conn.execute(
        "SELECT m.uid, m.message_id, m.modseq, m.is_read, m.imap_deleted, "
        "coalesce(m.mime_size, m.size), fs.value, lv.value, mf.value, kw.value, kw.blob, "
        "an.value FROM messages m "
        "LEFT JOIN message_props fs ON fs.message_id = m.message_id AND fs.tag = ? "
        "LEFT JOIN message_props lv ON lv.message_id = m.message_id AND lv.tag = ? "
        "LEFT JOIN message_props mf ON mf.message_id = m.message_id AND mf.tag = ? "
        "LEFT JOIN message_props kw ON kw.message_id = m.message_id AND kw.tag = ? "
        "LEFT JOIN message_props an ON an.message_id = m.message_id AND an.tag = ? "
        f"WHERE m.folder_id = ? AND m.associated = 0 AND m.modseq > ?{only} ORDER BY m.uid",
        (T.PidTagFlagStatus, T.PidTagLastVerbExecuted, T.PidTagMessageFlags, keywords or -1,
         answered or -1, folder_id, changed_since,
         *([] if message_ids is None else [_json(message_ids)]))).fetchall()
    out = []
    for (uid, mid, modseq, is_read, deleted, size, flag_status, verb, msg_flags, kw_value,
         kw_blob, answered_too) in rows:
        flags: set[str] = set()
        if is_read:
            flags.add("\\Seen")
        if deleted:
            flags.add("\\Deleted")
        if flag_status == FLAG_STATUS_FLAGGED:
            flags.add("\\Flagged")
        if verb in (VERB_REPLY_TO_SENDER, VERB_REPLY_TO_ALL) or answered_too:
            flags.add("\\Answered")
        if verb == VERB_FORWARD:
            flags.add("$Forwarded")
        if msg_flags and msg_flags & MSGFLAG_UNSENT:
            flags.add("\\Draft")
        if kw_value is not None or kw_blob is not None:
            raw = kw_value if kw_blob is None else txn.blobs.get(txn.conn, kw_blob)
            from gateway.store.values import unpack_multi
            flags.update(k for k in unpack_multi(pt.PT_UNICODE, raw) if is_keyword(k))
        out.append(MessageFlags(uid, mid, modseq, frozenset(flags), int(size)))
    return out


def store_flags(txn: Txn, folder_id: int, message_ids: Iterable[int], flags: Iterable[str],
                mode: Mode, unchanged_since: int | None = None
                ) -> tuple[list[int], list[int]]:
    """STORE: change flags of messages; ``(changed ids, ids failing UNCHANGEDSINCE)``.

    Messages whose MODSEQ is above ``unchanged_since`` are left alone
    (RFC 7162). Only messages whose flags really change take a new MODSEQ.
    """
    wanted = set(flags)
    for flag in wanted:
        if flag.startswith("\\") and flag not in SYSTEM_FLAGS:
            raise InvalidArgument(f"{flag} is not a flag that can be stored")
        if not flag.startswith("\\") and not is_keyword(flag):
            raise InvalidArgument(f"{flag!r} is not a valid keyword")
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
