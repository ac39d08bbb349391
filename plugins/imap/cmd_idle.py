"""IDLE (RFC 2177): report changes of the selected mailbox as they happen, until DONE.

The session subscribes to the host notifier for the selected mailbox's store
(events cross processes through Redis when configured), answers ``+ idling``,
and on each relevant event polls the selected mailbox and writes what changed.
The client's silence is bounded by ``[imap] idle_timeout`` (30 minutes by
default, as RFC 2177 expects clients to re-issue IDLE every 29).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from gateway.net import LineTooLong
from plugins.imap import responses as R
from plugins.imap.args import Args
from plugins.imap.errors import Bad

if TYPE_CHECKING:
    from gateway.events import StoreEvent
    from plugins.imap.commands import Result
    from plugins.imap.session import Session

SETTLE = 0.02
"""Seconds to gather a burst of events (a delivery publishes several) into one poll."""


def _relevant(session: Session, event: StoreEvent) -> bool:
    selected = session.selected
    if selected is None:
        return False
    return event.folder_id is None or event.folder_id == selected.entry.folder_id


async def idle(session: Session, tag: str, args: Args) -> Result:
    args.end()
    selected = session.selected
    store_key = selected.entry.store if selected is not None else session.mailbox_owner
    async with session.host.notifier.subscribe(store_key) as queue:
        session.send(R.continuation("idling"))
        await session.poll(expunges=True)
        await session.flush()
        reading = asyncio.ensure_future(session.conn.readline())
        waiting: asyncio.Future[StoreEvent] | None = None
        try:
            while True:
                waiting = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({reading, waiting},
                                             return_when=asyncio.FIRST_COMPLETED)
                if reading in done:
                    break
                relevant = _relevant(session, waiting.result())
                await asyncio.sleep(SETTLE)
                while not queue.empty():
                    relevant = _relevant(session, queue.get_nowait()) or relevant
                if relevant:
                    await session.poll(expunges=True)
                    await session.flush()
        finally:
            if waiting is not None and not waiting.done():
                waiting.cancel()
            if not reading.done():
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reading
    try:
        line = reading.result()
    except LineTooLong:
        raise Bad("IDLE: expected DONE, got an over-long line") from None
    if line.strip().upper() != b"DONE":
        raise Bad("IDLE: expected DONE")
    return None
