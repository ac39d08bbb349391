"""A gateway in process for tests that drive its ASGI app: a real host (directory, stores,
plugins from a config directory) started, populated, and reached through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from gateway.app import build_app
from gateway.host import Host, build_host


@asynccontextmanager
async def in_process(config: Path, populate: Callable[[Host], Awaitable[None]],
                     base_url: str = "https://mail.example.org"
                     ) -> AsyncIterator[tuple[Host, httpx.AsyncClient]]:
    """The host of ``config`` started and given its data by ``populate``, with a client on
    its app; shut down afterwards."""
    host = build_host([config], environ={})
    await host.startup()
    try:
        await populate(host)
        transport = httpx.ASGITransport(app=build_app(host))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield host, client
    finally:
        await host.shutdown()
