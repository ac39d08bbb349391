"""The selected mailbox of one IMAP session: sequence numbers, flags, and what changed.

The messages of a folder are read once per worker, not once per session: a
:class:`FolderVersion` is the folder's listing (every UID with its flags and
MODSEQ, :func:`gateway.store.imap.listing`) as of one change number of the
store, never changed once made and shared by every session that has caught up
with it. The worker keeps the newest version of recently selected folders
(bounded by :data:`VERSION_MESSAGES`); a SELECT, or a poll that finds changes,
makes the next version from the last one plus what changed since
(:func:`gateway.store.imap.changes`). A session itself holds a reference to its
version and only what is its own: UIDs whose EXPUNGE it still holds back, the
flags its own STORE set until a version includes them, and its \\Recent floor.
So a thousand sessions idling on a 10,000-message INBOX share one listing.

:meth:`SelectedMailbox.poll` runs before every tagged OK, so it is cheap: when
nothing in the store changed since the session's version, it costs one read
of the store's change counter. Otherwise one read transaction gives the
messages whose MODSEQ passed it and the UIDs that vanished. New UIDs become
``EXISTS``, vanished ones ``EXPUNGE`` (highest sequence number first, so no
number shifts under the client) or ``VANISHED`` with QRESYNC, and flag changes
``FETCH``. Changes this session made itself (STORE) were answered already and
are recognised by their MODSEQ, so they are not reported twice. While
``expunges=False`` (during FETCH, STORE, SEARCH; RFC 3501 7.4.1) expunged
messages keep their sequence numbers until a later poll may report them.

``\\Recent`` (IMAP4rev1 only) is claimed at SELECT through the folder's recent
floor (:func:`gateway.store.imap.claim_recent`): messages at or above it are
recent for this session, and sessions selecting later do not see them as recent.
Messages that arrive while several sessions have the folder selected are
recent in each of them (the floor moves at SELECT, not at every poll).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from gateway.store import NotFound, StoreError, imap, messages, permissions, transfer
from gateway.store.imap import MessageFlags
from gateway.store.rights import Rights
from gateway.store.txn import Txn
from plugins.imap.mailboxes import (
    MailboxEntry,
    MailboxError,
    MailboxTree,
    not_selectable,
    store_error,
)
from plugins.imap.seqset import SequenceSet, format_ranges, format_set

if TYPE_CHECKING:
    from gateway.store import Mailbox

BASE_FLAGS = tuple(flag for flag in imap.PERMANENT_FLAGS if flag != "\\*")
PERMANENT = "(" + " ".join(imap.PERMANENT_FLAGS) + ")"
"""PERMANENTFLAGS: what the store keeps (:data:`gateway.store.imap.PERMANENT_FLAGS`)."""
Mode = Literal["set", "add", "remove"]


class MailboxGone(MailboxError):
    """The selected mailbox was deleted (or renamed away) by someone else; the session
    should end with ``* BYE`` (or deselect)."""

    def __init__(self, name: str) -> None:
        super().__init__("NONEXISTENT", f"{name} was deleted")


def flag_list(flags: Iterable[str]) -> str:
    """``(\\Seen $Label1)``: system flags first, then keywords, as clients show them."""
    ordered = sorted(flags, key=lambda f: (not f.startswith("\\"), f))
    return "(" + " ".join(ordered) + ")"


def _known_ranges(known: Any, largest: int) -> list[tuple[int, int]] | None:
    """A QRESYNC known-uids argument (SequenceSet, its text or ints) as sorted ranges."""
    if known is None:
        return None
    if isinstance(known, str):
        known = SequenceSet.parse(known)
    if isinstance(known, SequenceSet):
        return known.resolve(largest) if largest else []
    return [(uid, uid) for uid in sorted({int(uid) for uid in known})]


def _in_ranges(ranges: list[tuple[int, int]], uid: int) -> bool:
    index = bisect_left(ranges, (uid + 1,)) - 1
    return index >= 0 and ranges[index][0] <= uid <= ranges[index][1]


def _gaps(uids: Sequence[int], largest: int) -> list[tuple[int, int]]:
    """The UIDs from 1 to ``largest`` that are not in ``uids`` (sorted), as ranges."""
    out, previous = [], 0
    for uid in uids:
        if uid > previous + 1:
            out.append((previous + 1, min(uid - 1, largest)))
        previous = uid
    if largest > previous:
        out.append((previous + 1, largest))
    return [(low, high) for low, high in out if low <= high]


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if low <= high:
            out.append((low, high))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


class SelectedMailbox:
    """One session's view of the mailbox it selected (SELECT or EXAMINE)."""

    def __init__(self, tree: MailboxTree, entry: MailboxEntry, mbox: Mailbox,
                 version: FolderVersion, *, readonly: bool, rights: Rights, uidvalidity: int,
                 rev2: bool) -> None:
        self.tree = tree
        self.entry = entry
        self.mbox = mbox
        self.readonly = readonly
        self.rights = rights
        self.uidvalidity = uidvalidity
        self.rev2 = rev2
        self._version = version
        self.uids: list[int] = version.uids
        """Sorted; sequence number n is ``uids[n-1]``. The version's own list (shared,
        never changed in place) unless expunges are held back."""
        self.uidnext = version.uidnext
        self.highest_modseq = max(version.top_modseq, 1)
        self._key = (str(mbox.path), entry.folder_id)
        self._pending: dict[int, MessageFlags] = {}
        """UIDs gone from the store whose EXPUNGE is held back, with their last flags."""
        self._own: dict[int, MessageFlags] = {}
        """Flags this session's STORE set, until a version has them (then not reported)."""
        self._recent_floor: int | None = None
        self._keywords_sent: frozenset[str] = version.keywords
        self._closed = False

    @property
    def folder_id(self) -> int:
        return self.entry.folder_id

    # -- opening ---------------------------------------------------------------------------------
    @classmethod
    async def open(cls, tree: MailboxTree, entry: MailboxEntry, *, readonly: bool,
                   condstore: bool, qresync: tuple[Any, ...] | None = None,
                   rev2: bool = False) -> tuple[SelectedMailbox, list[bytes]]:
        """SELECT (``readonly=False``) or EXAMINE: the view and its untagged lines.

        A mailbox the user may read but not change opens read-only even for
        SELECT (``selected.readonly``; the caller answers ``[READ-ONLY]``).
        ``qresync`` is ``(uidvalidity, modseq, known_uids | None,
        (known_seqs, known_uids) | None)``; known UIDs may be a SequenceSet, its
        text or ints. ``rev2``: an IMAP4rev2 session (no RECENT, no UNSEEN code).
        """
        del condstore  # HIGHESTMODSEQ is always sent (RFC 7162 3.1.2.1)
        if not entry.selectable:
            raise not_selectable(entry)
        rights = await tree.rights(entry)
        if not rights & Rights.READ_ANY:
            raise MailboxError("NOPERM", f"you may not read {entry.name}")
        mbox = await tree.open_store(entry)
        writable = not readonly and bool(rights & Rights.EDIT_ANY)
        fid = entry.folder_id
        try:
            floor = None
            if writable and not rev2:
                floor = await mbox.write(imap.claim_recent, fid)
            version, header = await _current(mbox, fid)
        except StoreError as exc:
            raise store_error(exc) from exc
        view = cls(tree, entry, mbox, version, readonly=not writable, rights=rights,
                   uidvalidity=header.uidvalidity, rev2=rev2)
        view.uidnext = max(header.uidnext, version.uidnext)
        view.highest_modseq = max(version.top_modseq, header.gone_modseq, 1)
        if not rev2:
            view._recent_floor = header.recent_floor if floor is None else floor
        lines = [view._flags_line(), b"* %d EXISTS\r\n" % len(view.uids)]
        if not rev2:
            lines.append(b"* %d RECENT\r\n" % view.recent)
            flags = version.flags
            unseen = next((n for n, uid in enumerate(view.uids, 1)
                           if "\\Seen" not in flags[uid].flags), None)
            if unseen is not None:
                lines.append(b"* OK [UNSEEN %d] first unseen message\r\n" % unseen)
        permanent = "()" if view.readonly else PERMANENT
        lines.append(f"* OK [PERMANENTFLAGS {permanent}] flags kept\r\n".encode())
        lines.append(b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % view.uidvalidity)
        lines.append(b"* OK [UIDNEXT %d] next UID\r\n" % view.uidnext)
        lines.append(b"* OK [HIGHESTMODSEQ %d] highest modseq\r\n" % view.highest_modseq)
        if qresync is not None:
            lines.extend(await view._qresync(qresync))
        return view, lines

    async def _qresync(self, qresync: tuple[Any, ...]) -> list[bytes]:
        uidvalidity, modseq = int(qresync[0]), int(qresync[1])
        if uidvalidity != self.uidvalidity:
            return []
        largest = max(self.uidnext - 1, 0)
        known = _known_ranges(qresync[2] if len(qresync) > 2 else None, largest)
        fid = self.folder_id

        def read(txn: Txn) -> tuple[list[int], int]:
            return imap.vanished(txn, fid, modseq), imap.pruned_cn(txn)

        gone, pruned = await self.mbox.read(read)
        if modseq < pruned:
            # Tombstones older than the horizon are forgotten: tell every UID not present.
            missing = _gaps(self.uids, largest)
            ranges = missing if known is None else _intersect(missing, known)
            text = format_ranges(ranges)
        else:
            present = self._version.flags
            text = format_set(uid for uid in gone if uid not in present
                              and (known is None or _in_ranges(known, uid)))
        lines = []
        if text:
            lines.append(f"* VANISHED (EARLIER) {text}\r\n".encode())
        for seq, uid in enumerate(self.uids, 1):
            item = self.flags_of(uid)
            if item.modseq > modseq and (known is None or _in_ranges(known, uid)):
                lines.append(self._fetch_line(seq, item, condstore=True))
        return lines

    # -- numbers and flags ---------------------------------------------------------------------
    def uid_of(self, seq: int) -> int:
        return self.uids[seq - 1]

    def seq_of(self, uid: int) -> int | None:
        index = bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None

    def flags_of(self, uid: int) -> MessageFlags:
        """Flags as of the last poll (or this session's own STORE); KeyError for a UID
        that is not in the view."""
        own = self._own.get(uid)
        if own is not None:
            return own
        found = self._version.flags.get(uid)
        if found is not None:
            return found
        return self._pending[uid]

    def message_id(self, uid: int) -> int:
        return self.flags_of(uid).message_id

    def is_recent(self, uid: int) -> bool:
        return self._recent_floor is not None and uid >= self._recent_floor

    @property
    def recent(self) -> int:
        """How many messages are ``\\Recent`` for this session (0 under IMAP4rev2)."""
        if self._recent_floor is None:
            return 0
        return len(self.uids) - bisect_left(self.uids, self._recent_floor)

    def recent_uids(self) -> Sequence[int]:
        """The UIDs that are ``\\Recent`` for this session (none under IMAP4rev2)."""
        if self._recent_floor is None:
            return ()
        return self.uids[bisect_left(self.uids, self._recent_floor):]

    def known_flags(self) -> Mapping[int, MessageFlags]:
        """Flags, MODSEQ and size as this session last reported them, by UID, without
        held-back expunges: what SEARCH answers flag keys from (as Dovecot does from
        its index) instead of asking the store."""
        return _KnownFlags(self)

    def is_expunged(self, uid: int) -> bool:
        """Gone from the store, its EXPUNGE held back (FETCH of it answers NO or nothing)."""
        return uid in self._pending

    def flags_text(self, uid: int) -> str:
        """The FLAGS list of a message as FETCH shows it, ``\\Recent`` included (rev1)."""
        flags = self.flags_of(uid).flags
        if self.is_recent(uid):
            flags = flags | {"\\Recent"}
        return flag_list(flags)

    @property
    def exists(self) -> int:
        return len(self.uids)

    def view_uids(self) -> Sequence[int]:
        """The UIDs of live messages (not held-back expunges), for SEARCH."""
        if not self._pending:
            return self.uids
        return [uid for uid in self.uids if uid not in self._pending]

    def _flags_line(self) -> bytes:
        extra = sorted(self._keywords_sent.difference(BASE_FLAGS))
        return f"* FLAGS {flag_list([*BASE_FLAGS, *extra])}\r\n".encode()

    def _fetch_line(self, seq: int, item: MessageFlags, *, condstore: bool,
                    with_flags: bool = True) -> bytes:
        parts = [f"UID {item.uid}"]
        if with_flags:
            parts.append(f"FLAGS {self.flags_text(item.uid)}")
        if condstore:
            parts.append(f"MODSEQ ({item.modseq})")
        return f"* {seq} FETCH ({' '.join(parts)})\r\n".encode()

    def _new_keywords(self, keywords: Iterable[str]) -> bool:
        """Whether ``keywords`` hold one the client was not told of (FLAGS is due)."""
        more = frozenset(keywords) - self._keywords_sent
        if not more:
            return False
        self._keywords_sent = self._keywords_sent | more
        return True

    # -- changes from elsewhere --------------------------------------------------------------------
    async def poll(self, *, expunges: bool, qresync: bool, condstore: bool) -> list[bytes]:
        """Untagged updates since the last poll, formatted; see the module docstring."""
        if self._closed:
            return []
        old = self._version
        try:
            found = await _changes(self.mbox, self.folder_id, old.cn)
        except StoreError as exc:
            raise store_error(exc) from exc
        added: list[int] = []
        changed: list[MessageFlags] = []
        if found is not None:
            if not found.exists:
                _versions.pop(self._key, None)
                raise MailboxGone(self.entry.name)
            new = _next_version(self._key, old, found)
            whole = new is None
            if new is None:
                new = await self._reload()
            gone = [uid for uid in found.vanished if uid in old.flags]
            fresh = [item for item in found.changed
                     if item.uid not in old.flags and item.uid in new.flags]
            updates = [item for item in found.changed
                       if item.uid in old.flags and item.uid in new.flags]
            if whole or len(old.flags) - len(gone) + len(fresh) != len(new.uids):
                # Tombstones were pruned (the store forgot some removals): compare whole.
                gone = [uid for uid in old.uids if uid not in new.flags]
                fresh = [new.flags[uid] for uid in new.uids if uid not in old.flags]
                updates = [item for uid, item in new.flags.items()
                           if uid in old.flags and old.flags[uid] != item]
            gone = [uid for uid in gone if self.seq_of(uid) is not None]
            for uid in gone:
                if uid not in self._pending:
                    self._pending[uid] = self.flags_of(uid)
            top = old.uids[-1] if old.uids else 0
            added = [item.uid for item in fresh if item.uid > top]
            for item in updates:
                if item.uid in self._pending:
                    continue
                before = self.flags_of(item.uid)
                own = self._own.pop(item.uid, None)
                if own is not None and own.modseq >= item.modseq:
                    if own.modseq > item.modseq:
                        self._own[item.uid] = own  # not yet in the store's snapshot read
                    continue  # answered by this session's STORE already
                if before.flags != item.flags or (condstore and before.modseq != item.modseq):
                    changed.append(item)
            for uid, own in list(self._own.items()):
                now = new.flags.get(uid)
                if now is None or now.modseq >= own.modseq:
                    del self._own[uid]
            self._version = new
            self.uidnext = max(self.uidnext, new.uidnext)
            self.highest_modseq = max(self.highest_modseq, found.last_cn)
            self._sync_uids()
        lines: list[bytes] = []
        if expunges and self._pending:
            lines.extend(self._expunge_lines(set(self._pending), qresync))
        if added:
            if self._new_keywords(self._version.keywords):
                lines.append(self._flags_line())
            lines.append(b"* %d EXISTS\r\n" % len(self.uids))
            if self._recent_floor is not None:
                lines.append(b"* %d RECENT\r\n" % self.recent)
        elif changed and self._new_keywords(self._version.keywords):
            lines.append(self._flags_line())
        for item in changed:
            seq = self.seq_of(item.uid)
            if seq is not None:
                lines.append(self._fetch_line(seq, item, condstore=condstore))
        return lines

    async def _reload(self) -> FolderVersion:
        """Tombstones were pruned (or a count disagrees): read the folder whole."""
        status, items, last_cn = await self.mbox.read(imap.select, self.folder_id)
        _versions.pop(self._key, None)
        return _keep(self._key, FolderVersion.whole(last_cn, items, status.uidnext))

    def _sync_uids(self) -> None:
        """The session's UIDs: the version's, plus held-back expunges still numbered."""
        if not self._pending:
            self.uids = self._version.uids
        else:
            self.uids = sorted({*self._version.uids, *self._pending})

    def _expunge_lines(self, gone: set[int], qresync: bool) -> list[bytes]:
        """Drop ``gone`` from the view: EXPUNGE lines, highest sequence number first
        (so each number is valid as the client applies them), or one VANISHED."""
        gone = {uid for uid in gone if self.seq_of(uid) is not None}
        for uid in gone:
            self._pending.setdefault(uid, self.flags_of(uid))
        if not gone:
            return []
        seqs = sorted((self.seq_of(uid) or 0 for uid in gone), reverse=True)
        self.uids = [uid for uid in self.uids if uid not in gone]
        for uid in gone:
            self._pending.pop(uid, None)
            self._own.pop(uid, None)
        if not self._pending and len(self.uids) == len(self._version.uids):
            self.uids = self._version.uids
        if qresync:
            return [f"* VANISHED {format_set(sorted(gone))}\r\n".encode()]
        return [b"* %d EXPUNGE\r\n" % seq for seq in seqs]

    # -- this session's own changes ------------------------------------------------------------
    def _writable(self) -> None:
        if self._closed:
            raise MailboxError("", "no mailbox is selected")
        if self.readonly:
            raise MailboxError("", f"{self.entry.name} is open read-only (EXAMINE, or you "
                                   "may not change it)")

    def _live(self, uids: Iterable[int]) -> list[int]:
        """The given UIDs that are messages of this view (not held-back expunges)."""
        return sorted({uid for uid in uids if uid not in self._pending
                       and self.seq_of(uid) is not None})

    async def store(self, uids: list[int], mode: Mode, flags: list[str], *,
                    unchangedsince: int | None = None, silent: bool = False,
                    condstore: bool = False) -> tuple[list[bytes], list[int]]:
        """STORE: ``(untagged FETCH lines, UIDs that failed UNCHANGEDSINCE)``.

        UIDs not in the mailbox are skipped (RFC 3501 UID STORE). Not silent:
        a FETCH with the current flags for every message stored. Silent with
        CONDSTORE: a FETCH with UID and MODSEQ for each message that changed
        (RFC 7162 3.1.3). ``\\Recent`` or an invalid flag: MailboxError with ``bad``.
        """
        self._writable()
        if "\\recent" in {f.lower() for f in flags}:
            raise MailboxError("", "\\Recent cannot be stored", bad=True)
        try:
            wanted = imap.check_flags(_canonical(flags))
        except ValueError as exc:
            raise MailboxError("", str(exc), bad=True) from None
        targets = self._live(uids)
        if not targets:
            return [], []
        by_mid = {self.flags_of(uid).message_id: uid for uid in targets}
        fid = self.folder_id

        def run(txn: Txn) -> tuple[list[int], list[int], list[MessageFlags]]:
            if self.entry.store != self.tree.user:
                permissions.require(txn, self.tree.user, fid, Rights.EDIT_ANY)
            changed, failed = imap.store_flags(txn, fid, list(by_mid), wanted, mode,
                                               unchangedsince)
            return changed, failed, imap.listing(txn, fid, 0, list(by_mid))

        try:
            changed_ids, failed_ids, fresh = await self.mbox.write(run)
        except StoreError as exc:
            raise store_error(exc) from exc
        changed = {by_mid[mid] for mid in changed_ids}
        failed = sorted(by_mid[mid] for mid in failed_ids)
        lines: list[bytes] = []
        report: list[MessageFlags] = []
        for item in fresh:
            if item.uid in failed or item.uid in self._pending:
                continue
            before = self.flags_of(item.uid)
            if silent:
                if item.flags == _apply(before.flags, wanted, mode):
                    if item != before:
                        self._own[item.uid] = item  # nothing else changed: answered already
                    if condstore and item.uid in changed:
                        report.append(item)
                # else someone else changed it too: the next poll tells the whole state
            else:
                if item != before:
                    self._own[item.uid] = item
                report.append(item)
        if self._new_keywords(f for item in fresh for f in item.flags
                              if not f.startswith("\\")):
            lines.append(self._flags_line())
        for item in report:
            seq = self.seq_of(item.uid)
            if seq is not None:
                lines.append(self._fetch_line(seq, item, condstore=condstore,
                                              with_flags=not silent))
        if fresh:
            self.highest_modseq = max(self.highest_modseq, *(i.modseq for i in fresh))
        return lines, failed

    async def expunge(self, uids: list[int] | None = None, *, qresync: bool = False
                      ) -> list[bytes]:
        """EXPUNGE / UID EXPUNGE: remove messages marked ``\\Deleted`` (only among ``uids``
        when given); the lines report them and any expunge held back so far."""
        self._writable()
        fid = self.folder_id

        def run(txn: Txn) -> list[int]:
            if self.entry.store != self.tree.user:
                permissions.require(txn, self.tree.user, fid, Rights.DELETE_ANY)
            return imap.expunge(txn, fid, uids)

        try:
            gone = await self.mbox.write(run)
        except StoreError as exc:
            raise store_error(exc) from exc
        return self._expunge_lines({*gone, *self._pending}, qresync)

    async def copy(self, uids: list[int], target: MailboxEntry
                   ) -> tuple[int, list[int], list[int]]:
        """COPY / UID COPY: ``(target UIDVALIDITY, source UIDs, target UIDs)`` for COPYUID,
        in matching order. Flags (``\\Deleted`` too) and internal dates go along."""
        if self._closed:
            raise MailboxError("", "no mailbox is selected")
        validity, pairs = await self._transfer(uids, target, move=False)
        return validity, [s for s, _ in pairs], [d for _, d in pairs]

    async def move(self, uids: list[int], target: MailboxEntry, *, qresync: bool = False
                   ) -> tuple[int, list[int], list[int], list[bytes]]:
        """MOVE / UID MOVE (RFC 6851): COPYUID data and the EXPUNGE (or VANISHED) lines of
        the moved messages, plus expunges held back so far."""
        self._writable()
        validity, pairs = await self._transfer(uids, target, move=True)
        moved = {source for source, _ in pairs}
        if target.store == self.entry.store and target.folder_id == self.folder_id:
            moved = set()  # moving into the same mailbox leaves the messages in place
        lines = self._expunge_lines({*moved, *self._pending}, qresync)
        return validity, [s for s, _ in pairs], [d for _, d in pairs], lines

    async def _transfer(self, uids: list[int], target: MailboxEntry, *, move: bool
                        ) -> tuple[int, list[tuple[int, int]]]:
        if not target.selectable:
            raise not_selectable(target, "TRYCREATE")
        sources = self._live(uids)
        target_rights = await self.tree.rights(target)
        if not target_rights & Rights.CREATE:
            raise MailboxError("NOPERM", f"you may not add messages to {target.name}")
        if move and not self.rights & Rights.DELETE_ANY:
            raise MailboxError("NOPERM", f"you may not remove messages from {self.entry.name}")
        tmbox = await self.tree.open_store(target)
        tfid = target.folder_id
        if not sources:
            try:
                return await tmbox.read(imap.uidvalidity, tfid), []
            except StoreError as exc:
                raise store_error(exc) from exc
        mids = [self.flags_of(uid).message_id for uid in sources]
        deleted = [self.flags_of(uid).message_id for uid in sources
                   if "\\Deleted" in self.flags_of(uid).flags]
        try:
            if tmbox.path == self.mbox.path:
                def run(txn: Txn) -> tuple[int, dict[int, int], dict[int, tuple[int, int]]]:
                    op = messages.move if move else messages.copy
                    mapping = op(txn, mids, tfid)
                    _keep_deleted(txn, [mapping[m] for m in deleted if m in mapping])
                    return (imap.uidvalidity(txn, tfid), mapping,
                            imap.uids_of_ids(txn, mapping.values()))

                validity, mapping, placed = await self.mbox.write(run)
            else:
                mapping = await transfer.copy_messages(self.mbox, mids, tmbox, tfid, move=move)

                def finish(txn: Txn) -> tuple[int, dict[int, tuple[int, int]]]:
                    _keep_deleted(txn, [mapping[m] for m in deleted if m in mapping])
                    return imap.uidvalidity(txn, tfid), imap.uids_of_ids(txn, mapping.values())

                validity, placed = await tmbox.write(finish)
        except StoreError as exc:
            raise store_error(exc) from exc
        pairs = []
        for uid, mid in zip(sources, mids, strict=True):
            new = mapping.get(mid)
            if new is not None and new in placed:
                pairs.append((uid, placed[new][1]))
        return validity, pairs

    def close(self) -> None:
        """Deselect (CLOSE, UNSELECT, another SELECT); the shared store stays open."""
        self._closed = True
        self.uids = []
        self._pending.clear()
        self._own.clear()


# -- folder versions shared by the sessions of a worker -------------------------------------------

VERSION_MESSAGES = 200_000
"""Messages of folder versions the worker keeps for later SELECTs (least recently used
folders go first; versions sessions still hold stay until they let go)."""


@dataclass(frozen=True, eq=False)
class FolderVersion:
    """A folder's messages as of the store's change number ``cn``; never changed."""

    cn: int
    uids: list[int]
    flags: dict[int, MessageFlags]
    keywords: frozenset[str]
    top_modseq: int
    """At least the highest MODSEQ of the messages (removals never lower it: the
    tombstone of a removed message is higher still)."""
    uidnext: int

    @classmethod
    def whole(cls, cn: int, items: list[MessageFlags], uidnext: int) -> FolderVersion:
        keywords: set[str] = set()
        for flags in {item.flags for item in items}:
            keywords.update(f for f in flags if not f.startswith("\\"))
        return cls(cn, [item.uid for item in items], {item.uid: item for item in items},
                   frozenset(keywords), max((i.modseq for i in items), default=0), uidnext)

    def advanced(self, found: imap.Changes) -> FolderVersion | None:
        """The next version: this one plus ``found`` (what changed after a change number
        at or below ``cn``); None when the result cannot be trusted (the count differs,
        e.g. tombstones were pruned), then the folder must be read whole."""
        flags = dict(self.flags)
        uids = self.uids
        gone = {uid for uid in found.vanished if uid in flags}
        if gone:
            for uid in gone:
                del flags[uid]
            uids = [uid for uid in uids if uid not in gone]
        top = uids[-1] if uids else 0
        added: list[int] = []
        keywords = set(self.keywords)
        highest = self.top_modseq
        for item in found.changed:
            if item.uid in flags:
                flags[item.uid] = item
            elif item.uid > top:
                flags[item.uid] = item
                added.append(item.uid)
                top = item.uid
            else:
                continue
            highest = max(highest, item.modseq)
            keywords.update(f for f in item.flags if not f.startswith("\\"))
        if added:
            uids = [*uids, *added]
        if found.count != len(uids):
            return None
        return FolderVersion(found.last_cn, uids, flags, frozenset(keywords), highest,
                             max(self.uidnext, top + 1))


_versions: OrderedDict[tuple[str, int], FolderVersion] = OrderedDict()


def _keep(key: tuple[str, int], version: FolderVersion) -> FolderVersion:
    """Make ``version`` the worker's newest of its folder (unless a newer one is kept
    already, which is returned instead when it is the same change number)."""
    kept = _versions.get(key)
    if kept is not None and kept.cn >= version.cn:
        _versions.move_to_end(key)
        return kept if kept.cn == version.cn else version
    _versions[key] = version
    _versions.move_to_end(key)
    total = sum(len(v.uids) for v in _versions.values())
    while total > VERSION_MESSAGES and len(_versions) > 1:
        _, dropped = _versions.popitem(last=False)
        total -= len(dropped.uids)
    return version


def _next_version(key: tuple[str, int], base: FolderVersion, found: imap.Changes
                  ) -> FolderVersion | None:
    """The version at ``found.last_cn`` from a session's ``base`` (which ``found`` is
    relative to), reusing the worker's when another session made it already."""
    kept = _versions.get(key)
    if kept is not None and kept.cn == found.last_cn:
        return kept
    start = kept if kept is not None and base.cn <= kept.cn < found.last_cn else base
    made = start.advanced(found)
    return None if made is None else _keep(key, made)


async def _current(mbox: Mailbox, folder_id: int) -> tuple[FolderVersion, imap.FolderHeader]:
    """SELECT: the folder's version now, and its header (UIDVALIDITY, \\Recent floor ...)."""
    key = (str(mbox.path), folder_id)
    kept = _versions.get(key)
    if kept is not None:
        header, found = await mbox.read(imap.reselect, folder_id, kept.cn)
        if found is not None and not found.exists:
            _versions.pop(key, None)
            raise NotFound(f"folder {folder_id} no longer exists")
        version = kept if found is None else _next_version(key, kept, found)
        if version is not None:
            return version, header
        _versions.pop(key, None)
    status, items, last_cn = await mbox.read(imap.select, folder_id)
    version = _keep(key, FolderVersion.whole(last_cn, items, status.uidnext))
    header = imap.FolderHeader(status.uidvalidity, status.uidnext, status.recent_floor,
                               status.highest_modseq, last_cn)
    return version, header


class _Read:
    """A read of :func:`gateway.store.imap.changes` other polls may still join."""

    def __init__(self) -> None:
        self.future: asyncio.Future[imap.Changes | None] = \
            asyncio.get_running_loop().create_future()
        self.started = False
        self.task: asyncio.Future[None] | None = None


_reads: dict[tuple[str, int, int], _Read] = {}


async def _changes(mbox: Mailbox, folder_id: int, since: int) -> imap.Changes | None:
    """:func:`gateway.store.imap.changes`, shared by the polls of sessions at the same
    version (a thousand sessions idling on one folder wake for one delivery). A poll
    joins a read only while that read has not begun its snapshot, so the result
    covers every change committed before the poll began. The read runs as a task of
    its own: a session that goes away does not take the others' answer with it."""
    key = (str(mbox.path), folder_id, since)
    read = _reads.get(key)
    if read is None or read.started:
        read = _Read()
        _reads[key] = read
        read.task = asyncio.ensure_future(_read_changes(mbox, folder_id, since, key, read))
    return await asyncio.shield(read.future)


async def _read_changes(mbox: Mailbox, folder_id: int, since: int,
                        key: tuple[str, int, int], read: _Read) -> None:
    def run(txn: Txn) -> imap.Changes | None:
        read.started = True  # before the first statement: the snapshot begins after this
        return imap.changes(txn, folder_id, since)

    try:
        read.future.set_result(await mbox.read(run))
    except asyncio.CancelledError:
        read.future.cancel()
        raise
    except Exception as exc:
        read.future.set_exception(exc)
        read.future.exception()  # retrieved: the waiters get it, nobody else is told
    finally:
        read.started = True
        if _reads.get(key) is read:
            del _reads[key]


def forget_versions() -> None:
    """Drop the worker's folder versions (tests; a store restored from a backup)."""
    _versions.clear()


def _keep_deleted(txn: Txn, message_ids: list[int]) -> None:
    """``\\Deleted`` travels with a copy (RFC 3501 COPY keeps flags); the copy's MODSEQ
    was just taken, so this is no further change."""
    if message_ids:
        txn.conn.execute("UPDATE messages SET imap_deleted = 1 WHERE message_id IN "
                         f"({','.join('?' * len(message_ids))})", message_ids)


_SYSTEM = {flag.lower(): flag for flag in imap.SYSTEM_FLAGS}


def _canonical(flags: Iterable[str]) -> list[str]:
    """System flags are case-insensitive (``\\SEEN`` is ``\\Seen``); keywords are kept."""
    return [_SYSTEM.get(flag.lower(), flag) if flag.startswith("\\") else flag
            for flag in flags]


def _apply(current: frozenset[str], wanted: set[str], mode: Mode) -> frozenset[str]:
    if mode == "set":
        return frozenset(wanted)
    if mode == "add":
        return current | wanted
    return current - wanted


class _KnownFlags(Mapping[int, MessageFlags]):
    """A read-only view of :meth:`SelectedMailbox.flags_of` over the live messages."""

    __slots__ = ("_view",)

    def __init__(self, view: SelectedMailbox) -> None:
        self._view = view

    def __getitem__(self, uid: int) -> MessageFlags:
        if self._view.is_expunged(uid):
            raise KeyError(uid)
        return self._view.flags_of(uid)

    def __iter__(self) -> Iterator[int]:
        return iter(self._view.view_uids())

    def __len__(self) -> int:
        return len(self._view.view_uids())
