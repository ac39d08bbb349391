"""An in-process gateway for the DAV plugin's tests: a real host (SQLite directory, stores),
its ASGI app driven by httpx, and users with and without shared calendars."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from lxml import etree

from gateway.app import build_app
from gateway.directory import admin
from gateway.directory.passwords import hash_password
from gateway.host import Host, build_host

USERS = {"alice@example.org": "Alice Liddell", "bob@example.org": "Bob Builder",
         "carol@example.org": "Carol"}
NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav", "R": "urn:ietf:params:xml:ns:carddav",
      "CS": "http://calendarserver.org/ns/", "A": "http://apple.com/ns/ical/"}


def basic(user: str) -> dict[str, str]:
    secret = f"pw-{user.split('@')[0]}"
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


@dataclass
class Dav:
    host: Host
    client: httpx.AsyncClient
    user: str = "alice@example.org"

    async def request(self, method: str, path: str, body: bytes | str | None = None,
                      user: str | None = None, **headers: str) -> httpx.Response:
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        hdrs.update(basic(user or self.user))
        if isinstance(body, str):
            body = body.encode()
        return await self.client.request(method, path, content=body, headers=hdrs)

    async def xml(self, method: str, path: str, body: bytes | str | None = None,
                  status: int = 207, user: str | None = None, **headers: str) -> etree._Element:
        answer = await self.request(method, path, body, user, **headers)
        assert answer.status_code == status, answer.text
        return etree.fromstring(answer.content)


def write_config(tmp_path: Path, extra: str = "") -> Path:
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "50-test.toml").write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n'
        '[plugins]\ndisabled = ["imap"]\n'
        '[auth]\nfailure_delay = 0.0\n[directory]\ncache_ttl = 0.0\n'
        '[smtp]\ndelivery_listen = []\nsubmission_listen = []\nsubmission_listen_tls = []\n'
        + extra)
    return conf


async def populate(host: Host) -> None:
    engine = host.directory.engine
    await admin.add_domain(engine, "example.org")
    for address, name in USERS.items():
        await admin.add_user(engine, address, hash_password(f"pw-{address.split('@')[0]}"),
                             name)
        mbox = await host.store.create(address)
        await admin.set_maildir(engine, address, str(mbox.path))


@pytest.fixture
async def dav(tmp_path: Path) -> AsyncIterator[Dav]:
    host = build_host([write_config(tmp_path)], environ={})
    await host.startup()
    try:
        await populate(host)
        transport = httpx.ASGITransport(app=build_app(host))
        async with httpx.AsyncClient(transport=transport,
                                     base_url="https://mail.example.org") as client:
            yield Dav(host, client)
    finally:
        await host.shutdown()
