"""The store event bus: in-process, or across processes and nodes through Redis.

``publish`` hands an event to every ``gateway_store_event`` implementation
and to local subscribers (an IMAP session in IDLE, an EAS Ping). With
``[redis] url`` set, events go through a Redis channel instead, so every
worker of every node — this one included — receives each event exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from gateway.events import StoreEvent

if TYPE_CHECKING:
    from gateway.host import Host

CHANNEL = "gateway:store-events"
QUEUE_LIMIT = 1000
SUBSCRIBE_TIMEOUT = 10.0
log = logging.getLogger("gateway.notify")


class Notifier:
    """One per host; started and stopped with the worker."""

    def __init__(self, host: Host) -> None:
        self._host = host
        self._subscribers: dict[str, set[asyncio.Queue[StoreEvent]]] = {}
        self._redis: Any = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def distributed(self) -> bool:
        return self._redis is not None

    async def start(self) -> None:
        url = self._host.config.redis.url
        if not url:
            return
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(url)
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        # SUBSCRIBE is sent, not yet in force: wait for Redis to confirm it, so an
        # event published once start-up is over reaches this process too.
        await self._confirmed(pubsub)
        self._reader = asyncio.create_task(self._read(pubsub), name="notify-redis")
        log.info("store events go through Redis channel %s", CHANNEL)

    @staticmethod
    async def _confirmed(pubsub: Any) -> None:
        deadline = asyncio.get_running_loop().time() + SUBSCRIBE_TIMEOUT
        while asyncio.get_running_loop().time() < deadline:
            message = await pubsub.get_message(timeout=0.5)
            if message is not None and message.get("type") == "subscribe":
                return
        raise ConnectionError(f"Redis did not confirm the subscription to {CHANNEL} "
                              f"within {SUBSCRIBE_TIMEOUT:.0f} s")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def publish(self, event: StoreEvent) -> None:
        if self._redis is not None:
            await self._redis.publish(CHANNEL, event.to_json())
        else:
            await self.dispatch(event)

    async def dispatch(self, event: StoreEvent) -> None:
        """Deliver one event to the hooks and to this process's subscribers."""
        for queue in self._subscribers.get(event.mailbox, ()):
            if queue.full():
                # A session that stopped reading loses old events, not the process's memory.
                queue.get_nowait()
            queue.put_nowait(event)
        await self._host.acall_each(
            "gateway_store_event", stop_on_error=False, host=self._host, event=event
        )

    @contextlib.asynccontextmanager
    async def subscribe(self, mailbox: str) -> AsyncIterator[asyncio.Queue[StoreEvent]]:
        """A queue receiving the events of ``mailbox`` while the block runs."""
        queue: asyncio.Queue[StoreEvent] = asyncio.Queue(QUEUE_LIMIT)
        self._subscribers.setdefault(mailbox, set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._subscribers.get(mailbox)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._subscribers[mailbox]

    async def _read(self, pubsub: Any) -> None:
        while True:
            try:
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue  # (re)subscription confirmations
                    try:
                        event = StoreEvent.from_json(message["data"])
                    except (ValueError, TypeError) as exc:
                        log.warning("ignoring a malformed store event from Redis: %s", exc)
                        continue
                    await self.dispatch(event)
            except asyncio.CancelledError:
                await pubsub.aclose()
                raise
            except Exception as exc:  # connection lost: say so and resubscribe
                log.error("Redis notification channel failed (%s); retrying in 1 s", exc)
                await asyncio.sleep(1)
                with contextlib.suppress(Exception):
                    await pubsub.subscribe(CHANNEL)
