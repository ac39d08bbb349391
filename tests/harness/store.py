"""Store fixtures: a :class:`Store` in a temporary data dir and a provisioned mailbox.

``mbox`` is ``user@example.org``'s freshly provisioned store; ``store_events``
collects what its writes published.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.events import StoreEvent
from gateway.store import Mailbox, Store
from gateway.store.settings import StoreSection

OWNER = "user@example.org"


@pytest.fixture
def store_events() -> list[StoreEvent]:
    return []


@pytest.fixture
async def store(tmp_path: Path, store_events: list[StoreEvent]) -> AsyncIterator[Store]:
    async def publish(events: list[StoreEvent]) -> None:
        store_events.extend(events)

    opened = Store(tmp_path / "data", StoreSection(reader_threads=2), publish)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def mbox(store: Store) -> Mailbox:
    return await store.create(OWNER)
