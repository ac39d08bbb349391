"""An in-process gateway for the DAV plugin's tests: a real host (SQLite directory, stores),
its ASGI app driven by httpx, and users with and without shared calendars; and what the DAV
tests share: namespaces and paths, iCalendar and vCard builders, request and answer helpers."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from gateway.directory import admin
from gateway.directory.passwords import hash_password
from gateway.host import Host
from tests.harness.asgi import in_process

USERS = {"alice@example.org": "Alice Liddell", "bob@example.org": "Bob Builder",
         "carol@example.org": "Carol"}
NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav", "R": "urn:ietf:params:xml:ns:carddav",
      "CS": "http://calendarserver.org/ns/", "A": "http://apple.com/ns/ical/"}
D, C, R, CS, A = (f"{{{NS[p]}}}" for p in ("D", "C", "R", "CS", "A"))
"""Clark-name prefixes: ``D + "href"`` is ``{DAV:}href``."""
XMLNS = (f'xmlns:D="DAV:" xmlns:C="{NS["C"]}" xmlns:R="{NS["R"]}" '
         f'xmlns:CS="{NS["CS"]}"')
"""The prefixes of request bodies."""
ALICE, BOB, CAROL = USERS
HOME = f"/dav/calendars/{ALICE}/"
CAL = HOME + "calendar/"
TASKS = HOME + "tasks/"
BOOKS = f"/dav/addressbooks/{ALICE}/"
BOOK = BOOKS + "contacts/"


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


@asynccontextmanager
async def running(tmp_path: Path, extra: str = "") -> AsyncIterator[Dav]:
    """A started, populated gateway configured with ``extra`` (TOML), as Alice's client."""
    async with in_process(write_config(tmp_path, extra), populate) as (host, client):
        yield Dav(host, client)


@pytest.fixture
async def dav(tmp_path: Path) -> AsyncIterator[Dav]:
    async with running(tmp_path) as client:
        yield client


# -- data (after RFC 4791 Appendix B) ----------------------------------------------------------

EASTERN = """BEGIN:VTIMEZONE
LAST-MODIFIED:20040110T032845Z
TZID:US/Eastern
BEGIN:DAYLIGHT
DTSTART:20000404T020000
RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=4
TZNAME:EDT
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
END:DAYLIGHT
BEGIN:STANDARD
DTSTART:20001026T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
TZNAME:EST
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
END:VTIMEZONE"""


def ics(*components: str, head: str = "") -> str:
    """A VCALENDAR (CRLF) holding ``components``, with the lines ``head`` before them."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Example Corp.//CalDAV Client//EN"]
    lines.extend(head.splitlines())
    for comp in components:
        lines.extend(comp.strip().splitlines())
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def event(uid: str, summary: str = "Event #1", start: str = "20060102T150000Z",
          extra: str = "") -> str:
    """A VCALENDAR with one one-hour VEVENT from ``start`` (UTC), ``extra`` lines at its end."""
    return ics(f"""BEGIN:VEVENT
UID:{uid}
DTSTAMP:20060206T001102Z
DTSTART:{start}
DURATION:PT1H
SUMMARY:{summary}
{extra}END:VEVENT""")


def vcard(uid: str, name: str = "Cyrus Daboo", email: str = "cyrus@example.com") -> str:
    first, last = name.split()
    return (f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{last};{first};;;\r\n"
            f"EMAIL;TYPE=INTERNET:{email}\r\nTEL;TYPE=WORK:+1-555-0100\r\nEND:VCARD\r\n")


# -- requests and answers ----------------------------------------------------------------------

async def put(dav: Dav, path: str, data: str, status: int = 201, **headers: str) -> str:
    """PUT ``data`` as an event or a vCard (by the name's ending); its ETag."""
    media = "text/vcard" if path.endswith(".vcf") else "text/calendar"
    answer = await dav.request("PUT", path, data, Content_Type=media, **headers)
    assert answer.status_code == status, answer.text
    return answer.headers.get("etag", "")


def propfind(*props: str) -> str:
    """A PROPFIND body asking for ``props`` (prefixed names such as ``D:displayname``)."""
    return f'<D:propfind {XMLNS}><D:prop>{"".join(f"<{p}/>" for p in props)}</D:prop>' \
           '</D:propfind>'


def responses(root: etree._Element) -> dict[str, dict[str, tuple[int, Any]]]:
    """``{href: {property: (status, element)}}``; a status-only response as ``{"": ...}``."""
    out: dict[str, dict[str, tuple[int, Any]]] = {}
    for resp in root.findall(f"{D}response"):
        href = resp.findtext(f"{D}href")
        entry = out.setdefault(href, {})
        status = resp.findtext(f"{D}status")
        if status:
            entry[""] = (int(status.split()[1]), resp)
        for stat in resp.findall(f"{D}propstat"):
            code = int(stat.findtext(f"{D}status").split()[1])
            for prop in stat.find(f"{D}prop"):
                entry[prop.tag] = (code, prop)
    return out
