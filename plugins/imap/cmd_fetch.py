"""FETCH and UID FETCH, with CONDSTORE's CHANGEDSINCE and QRESYNC's VANISHED modifiers.

Messages are fetched in batches: one ``fetch_info`` round trip per batch for
what comes from the cached MIME structure (the next batch is read while the
current one is written out), flags and MODSEQ from the selected mailbox's
state, and body sections streamed as literals (small messages' bytes come with
the batch). Body fetches without ``.PEEK`` set ``\\Seen`` (one store call per
batch) and then report FLAGS. Each response line is built in one piece and the
output is drained every few hundred kilobytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from gateway.net import ConnectionClosed, NetError
from plugins.imap import fetch_data
from plugins.imap.args import MAX_NUMBER64, Args, describe, format_date_time, number_of
from plugins.imap.attributes import NEEDS_INFO, Item, parse_items
from plugins.imap.cmd_mailbox import tree_call
from plugins.imap.errors import Bad, No
from plugins.imap.seqset import SequenceSet, format_set
from plugins.imap.sets import selected_uids, seq_of

if TYPE_CHECKING:
    from plugins.imap.commands import Result
    from plugins.imap.session import Session

BATCH = 500
FLUSH_AT = 256 * 1024
SEEN = "\\Seen"


def _modifiers(session: Session, tokens: list, uid: bool) -> tuple[int | None, bool]:
    changedsince: int | None = None
    vanished = False
    i = 0
    while i < len(tokens):
        word = tokens[i].upper() if isinstance(tokens[i], str) else ""
        if word == "CHANGEDSINCE" and i + 1 < len(tokens):
            changedsince = number_of(tokens[i + 1], "CHANGEDSINCE mod-sequence", MAX_NUMBER64)
            i += 2
        elif word == "VANISHED":
            vanished = True
            i += 1
        else:
            raise Bad(f"FETCH: unknown modifier {describe(tokens[i])}")
    if vanished:
        if not uid:
            raise Bad("FETCH: VANISHED is only allowed with UID FETCH")
        if not session.qresync:
            raise Bad("FETCH: VANISHED needs ENABLE QRESYNC")
        if changedsince is None:
            raise Bad("FETCH: VANISHED needs CHANGEDSINCE")
    return changedsince, vanished


class _FlagsText:
    """``FLAGS (...)`` bytes per distinct flag set (most messages share a few)."""

    def __init__(self) -> None:
        self.cache: dict[tuple[frozenset[str], bool], bytes] = {}

    def __call__(self, flags: frozenset[str], recent: bool) -> bytes:
        key = (flags, recent)
        text = self.cache.get(key)
        if text is None:
            names = sorted(flags | {"\\Recent"} if recent else flags)
            text = b"FLAGS (" + " ".join(names).encode("utf-8") + b")"
            self.cache[key] = text
        return text


async def _send_vanished(session: Session, requested_text: str, since: int) -> None:
    from gateway.store import imap as store_imap

    sel = session.selected
    gone = await sel.mbox.read(store_imap.vanished, sel.entry.folder_id, since)
    if not gone:
        return
    gone = sorted(gone)
    wanted = SequenceSet.parse(requested_text)
    if wanted.is_saved:
        return
    largest = max(gone[-1], sel.uids[-1] if sel.uids else 0)
    shown = list(wanted.iter_values(largest, existing=gone))
    if shown:
        session.untagged(b"VANISHED (EARLIER) " + format_set(shown).encode("ascii"))


async def _run(session: Session, args: Args, uid: bool) -> Result:
    text = args.atom("a sequence set")
    items = parse_items(args.next("fetch attributes"))
    modifiers = args.optional_list()
    args.end()
    changedsince, vanished = _modifiers(session, modifiers or [], uid)
    sel = session.selected
    uids = selected_uids(session, text, uid=uid)
    names = {item.name for item in items}
    if uid and "UID" not in names:
        items.insert(0, Item("UID"))
    if "MODSEQ" not in names and (changedsince is not None
                                  or (session.condstore and "FLAGS" in names)):
        items.append(Item("MODSEQ"))  # RFC 7162: MODSEQ goes with FLAGS once CONDSTORE is on
    if changedsince is not None or "MODSEQ" in names:
        session.condstore_seen = True
    if vanished and changedsince is not None:
        await _send_vanished(session, text, changedsince)
    if changedsince is not None:
        uids = [u for u in uids if sel.flags_of(u).modseq > changedsince]
    if not uids:
        return None
    await _fetch(session, uids, items)
    return None


async def _fetch(session: Session, uids: list[int], items: list[Item]) -> None:
    sel = session.selected
    needs_info = any(item.name in NEEDS_INFO or item.is_section for item in items)
    streams = any(item.is_section or item.name == "BINARY.SIZE" for item in items)
    marks_seen = not sel.readonly and any(item.sets_seen for item in items)
    wants_flags = any(item.name == "FLAGS" for item in items)
    sections = any(item.is_section for item in items)

    def read_infos(batch: list[int]) -> asyncio.Future[dict[int, Any]]:
        ids = [sel.message_id(u) for u in batch]
        if sections:  # small messages' bytes come along in the same store read
            return asyncio.ensure_future(fetch_data.fetch_info(sel.mbox, ids, bodies=True))
        return asyncio.ensure_future(fetch_data.fetch_info(sel.mbox, ids))

    flags_text = _FlagsText()
    all_uids = sel.uids
    position = {u: i for i, u in enumerate(all_uids, 1)} if len(uids) > 64 else None
    batches = [uids[start:start + BATCH] for start in range(0, len(uids), BATCH)]
    ahead = read_infos(batches[0]) if needs_info else None
    try:
        for index, batch in enumerate(batches):
            newly_seen = await _mark_seen(session, batch) if marks_seen else set()
            infos: dict[int, Any] = {}
            if ahead is not None:
                infos = await ahead
                # the next batch's structures are read while this one is written out
                ahead = read_infos(batches[index + 1]) if index + 1 < len(batches) else None
            for u in batch:
                seq = position[u] if position is not None else seq_of(all_uids, u)
                flags = sel.flags_of(u)
                info = infos.get(flags.message_id) if needs_info else None
                if needs_info and info is None:
                    continue  # expunged by someone else meanwhile: omitted (RFC 2180)
                marked = u in newly_seen
                flag_bytes = flags_text(flags.flags | {SEEN} if marked else flags.flags,
                                        sel.is_recent(u))
                pieces = _pieces(u, flags, info, items, flag_bytes)
                if marked and not wants_flags:
                    pieces.append(flag_bytes)
                if streams:
                    await _stream(session, seq, info, items, pieces)
                else:
                    session.send(b"* %d FETCH (%s)\r\n" % (seq, b" ".join(pieces)))
            await session.maybe_flush()
    finally:
        if ahead is not None and not ahead.done():
            ahead.cancel()


async def _mark_seen(session: Session, batch: list[int]) -> set[int]:
    """Set \\Seen on the batch's unseen messages (a body fetched without .PEEK)."""
    sel = session.selected
    unseen = [u for u in batch if SEEN not in sel.flags_of(u).flags]
    if unseen:
        await tree_call(sel.store(unseen, "add", [SEEN], silent=True,
                                  condstore=session.condstore))
    return set(unseen)


def _pieces(uid: int, flags: Any, info: Any, items: list[Item], flag_bytes: bytes
            ) -> list[bytes]:
    """The response items that need no store access; sections are left as ``b""``."""
    pieces = []
    for item in items:
        name = item.name
        if name == "UID":
            pieces.append(b"UID %d" % uid)
        elif name == "FLAGS":
            pieces.append(flag_bytes)
        elif name == "MODSEQ":
            pieces.append(b"MODSEQ (%d)" % flags.modseq)
        elif name == "RFC822.SIZE":
            pieces.append(b"RFC822.SIZE %d" % info.size)
        elif name == "INTERNALDATE":
            pieces.append(b"INTERNALDATE " + format_date_time(info.internal_date))
        elif name == "ENVELOPE":
            pieces.append(b"ENVELOPE " + info.envelope)
        elif name == "BODYSTRUCTURE":
            pieces.append(b"BODYSTRUCTURE " + info.bodystructure)
        elif name == "BODY" and not item.is_section:
            pieces.append(b"BODY " + info.body)
        else:
            pieces.append(b"")
    return pieces


async def _stream(session: Session, seq: int, info: Any, items: list[Item],
                  pieces: list[bytes]) -> None:
    """One FETCH response with sections: their lengths first (so a failure leaves nothing
    written), then the line with each section's bytes streamed as a literal."""
    mbox = session.selected.mbox
    streams: dict[int, tuple[int, AsyncIterator[bytes]]] = {}
    for index, item in enumerate(items):
        if item.name == "BINARY.SIZE":
            size = await _guarded(fetch_data.binary_size(mbox, info, item.spec))
            pieces[index] = item.label + b" %d" % size
        elif item.is_section:
            binary = item.name == "BINARY"
            length, chunks = await _guarded(fetch_data.section(
                mbox, info, item.spec, partial=item.partial, binary=binary))
            origin = b"<%d>" % item.partial[0] if item.partial else b""
            pieces[index] = item.label + origin + (
                b" ~{%d}\r\n" if binary else b" {%d}\r\n") % length
            streams[index] = (length, chunks)
    send = session.send
    pending = [b"* %d FETCH (" % seq]
    for index, piece in enumerate(pieces):
        if index:
            pending.append(b" ")
        pending.append(piece)
        stream = streams.get(index)
        if stream is not None:
            send(b"".join(pending))
            pending = []
            await _literal(session, *stream)
    pending.append(b")\r\n")
    send(b"".join(pending))


async def _literal(session: Session, length: int, chunks: AsyncIterator[bytes]) -> None:
    """Stream a literal whose length was announced. A read failing half-way, or bytes
    that do not add up to the length, cannot be answered any more (the client counts
    bytes), so they end the connection."""
    send = session.send
    sent = 0
    try:
        async for chunk in chunks:
            send(chunk)
            sent += len(chunk)
            if session.out_size >= FLUSH_AT:
                await session.flush()
        if sent != length:
            raise ValueError(f"announced {length} bytes, the message gave {sent}")
    except (NetError, asyncio.CancelledError):
        raise
    except Exception:
        session.service.log.exception("imap: reading a message failed inside a literal; "
                                      "closing the connection of %s", session.user)
        session.conn.abort()
        raise ConnectionClosed("message read failed inside a literal") from None


async def _guarded(call: Any) -> Any:
    try:
        return await call
    except fetch_data.BinaryUndecodable as exc:
        raise No(f"cannot decode this part: {exc}", "UNKNOWN-CTE") from None


async def fetch(session: Session, tag: str, args: Args) -> Result:
    return await _run(session, args, uid=False)


async def uid_fetch(session: Session, tag: str, args: Args) -> Result:
    return await _run(session, args, uid=True)
