"""Real CalDAV/CardDAV clients against the gateway's DAV plugin, each first against Radicale.

Every scenario runs twice, first against a private Radicale (so the scenario
itself is known to be right) and then against ``gateway serve`` on the URL
layout of ``plugins/dav`` (``/dav/principals/users/<address>/``,
``/dav/calendars/<address>/calendar/`` ...). Radicale gets the same layout of
collections below its user's home (``calendar/``, ``tasks/``, ``contacts/``),
so one scenario fits both.

Clients, all unmodified:

- the ``caldav`` library (3.x, over niquests): discovery from the DAV root and
  ``/.well-known/caldav``, MKCALENDAR with a display name, a weekly event with
  a moved and a cancelled occurrence found by an expanded time-range search
  (client-side and server-side expansion), update and delete, sync tokens
  (with the library's silent fall-back switched off), a task list with a task
  completed. The library has no CardDAV, so contacts are covered by vdirsyncer
  and curl below.
- ``vdirsyncer``: a caldav and a carddav pair with a local filesystem storage;
  changes made on either side arrive on the other, deletions too.
- ``caldav-server-tester``: its feature findings for Radicale and for the
  gateway; a feature Radicale supports fully must be supported fully by the
  gateway unless ``NOT_PLANNED`` says why not. Both lists are printed
  (``-s`` shows them).
- ``curl`` with exact PROPFIND and REPORT bodies (calendar-multiget,
  addressbook-multiget, sync-collection, calendar-query with expand), the
  207 answers checked with lxml.

A failure names the test's last requests and the server's answers, and the
warnings and errors the server logged meanwhile. The whole module takes 20-30 s
(the gateway's start with its three users about 5 s, caldav-server-tester 3-5 s
per server, vdirsyncer 2-4 s per server); the servers listen on 127.0.0.1 only
and are stopped at the end.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from lxml import etree

from tests.bench.dav_data import VTIMEZONES
from tests.harness.dav_peers import DavPeer, start_radicale
from tests.harness.gateway import GatewayFactory, RunningGateway, gateway_env

BIN = Path(sys.executable).parent
DAV, CALDAV, CARDDAV = "DAV:", "urn:ietf:params:xml:ns:caldav", "urn:ietf:params:xml:ns:carddav"
CS = "http://calendarserver.org/ns/"
NS = {"d": DAV, "c": CALDAV, "a": CARDDAV, "cs": CS}
ALICE, BOB, CAROL = "alice@example.org", "bob@example.org", "carol@example.org"
PASSWORDS = {ALICE: "alice-dav-secret", BOB: "bob-dav-secret", CAROL: "carol-dav-secret"}
TIMEOUT = 15


# -- the two servers -----------------------------------------------------------------------


@dataclass
class DavTarget:
    """One DAV server and where a user's collections are on it (paths, unquoted)."""

    name: str
    base: str
    """scheme://host:port"""
    root: str
    """The path a client is given to start from."""
    homes: Callable[[str], tuple[str, str, str]]
    """address -> (principal, calendar home, address book home)"""
    log: Callable[[], str] = lambda: ""
    tls_base: str = ""
    ca_file: Path | None = None
    user: str = ALICE

    @property
    def password(self) -> str:
        return PASSWORDS[self.user]

    @property
    def principal(self) -> str:
        return self.homes(self.user)[0]

    @property
    def calendar_home(self) -> str:
        return self.homes(self.user)[1]

    @property
    def addressbook_home(self) -> str:
        return self.homes(self.user)[2]

    @property
    def calendar(self) -> str:
        return self.calendar_home + "calendar/"

    @property
    def tasks(self) -> str:
        return self.calendar_home + "tasks/"

    @property
    def contacts(self) -> str:
        return self.addressbook_home + "contacts/"

    def url(self, path: str) -> str:
        return self.base + path

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, auth=(self.user, self.password),
                            timeout=TIMEOUT)

    def as_user(self, user: str) -> DavTarget:
        return dataclasses.replace(self, user=user)


def path_of(url: Any) -> str:
    """The unquoted path of a URL or href (``%40`` and ``@`` spell the same path)."""
    return unquote(urlsplit(str(url)).path)


def radicale_homes(address: str) -> tuple[str, str, str]:
    home = f"/{address}/"
    return home, home, home


def gateway_homes(address: str) -> tuple[str, str, str]:
    return (f"/dav/principals/users/{address}/", f"/dav/calendars/{address}/",
            f"/dav/addressbooks/{address}/")


MKCALENDAR_BODY = """<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>
<D:displayname>{name}</D:displayname>
<C:supported-calendar-component-set><C:comp name="{comp}"/></C:supported-calendar-component-set>
</D:prop></D:set></C:mkcalendar>"""


def add_task_list(target: DavTarget) -> None:
    """Radicale gets the task list the gateway has (``tasks/``, VTODO only)."""
    with target.http() as http:
        answer = http.request("MKCALENDAR", target.tasks,
                              content=MKCALENDAR_BODY.format(name="Tasks", comp="VTODO"))
    assert answer.status_code == 201, (target.tasks, answer.status_code, answer.text)


def radicale_target_for(peer: DavPeer) -> DavTarget:
    target = DavTarget("radicale", peer.base_url, "/", radicale_homes, peer.log,
                       user=peer.user)
    add_task_list(target)
    return target


@pytest.fixture(scope="module")
def radicale_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavTarget]:
    """A Radicale (tests/harness/dav_peers.py) for alice, with calendar/, contacts/ and tasks/."""
    peer = start_radicale(tmp_path_factory.mktemp("radicale"), user=ALICE,
                          password=PASSWORDS[ALICE])
    try:
        yield radicale_target_for(peer)
    finally:
        peer.stop()


def start_dav_gateway(factory: GatewayFactory) -> RunningGateway:
    """A gateway with the DAV plugin on its defaults, IMAP off, and alice, bob and carol."""
    gw = factory('[plugins]\ndisabled = ["imap"]\n[auth]\nfailure_delay = 0.0\n')

    def cli(*args: str, stdin: str | None = None) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "--config-dir", str(gw.config_dir), *args],
            input=stdin, capture_output=True, text=True, timeout=60, env=gateway_env(),
            cwd=gw.config_dir)
        assert done.returncode == 0, f"gateway {' '.join(args)}: {done.stderr}"

    cli("domain", "add", "example.org")
    for address, password in PASSWORDS.items():
        cli("user", "add", address, "--password-stdin", stdin=password + "\n")
    return gw


@pytest.fixture(scope="module")
def gateway_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavTarget]:
    factory = GatewayFactory(tmp_path_factory.mktemp("dav-gateway"))
    try:
        gw = start_dav_gateway(factory)
        target = DavTarget("gateway", gw.http_url, "/dav/", gateway_homes, gw.log,
                           gw.https_url, gw.certificate)
        with target.http() as http:
            answer = http.request("PROPFIND", "/dav/", headers={"Depth": "0"})
        if answer.status_code != 207:
            pytest.fail(f"the gateway does not serve DAV at /dav/: PROPFIND answered "
                        f"{answer.status_code} {answer.text[:300]!r}")
        yield target
    finally:
        factory.stop_all()


@pytest.fixture(params=["radicale", "gateway"])
def target(request: pytest.FixtureRequest) -> DavTarget:
    """Each scenario against Radicale first, then against the gateway."""
    return request.getfixturevalue(f"{request.param}_target")


# -- failure messages ------------------------------------------------------------------------


@dataclass
class Exchange:
    method: str
    url: str
    status: int | str
    body: bytes = b""

    def __str__(self) -> str:
        text = self.body[:600].decode(errors="replace").replace("\n", " ")
        return f"{self.method} {path_of(self.url)} -> {self.status} {text}"


@dataclass
class Trace:
    """The HTTP requests of a test and their answers, for the failure message."""

    target: DavTarget
    exchanges: list[Exchange] = field(default_factory=list)
    clients: list[Any] = field(default_factory=list)
    """The caldav clients made for the test, closed at its end."""
    log_start: int = -1
    """Where the server's log stood when the trace began (only newer lines are shown)."""

    def __post_init__(self) -> None:
        if self.log_start < 0:
            self.log_start = len(self.target.log())

    def add(self, method: str, url: str, status: int | str, body: bytes = b"") -> None:
        self.exchanges.append(Exchange(method, url, status, body))

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()

    def explain(self, last: int = 6) -> str:
        lines = [f"--- last requests to {self.target.name} ---"]
        lines += [str(e) for e in self.exchanges[-last:]]
        log = [line for line in self.target.log()[self.log_start:].splitlines()
               if " DEBUG " not in line
               and not any(w in line for w in ("creating now", "Logging level"))]
        if log:
            lines += [f"--- {self.target.name} log meanwhile (no DEBUG) ---", *log[-30:]]
        return "\n".join(lines)


@pytest.fixture
def trace(target: DavTarget, request: pytest.FixtureRequest) -> Iterator[Trace]:
    """Records the test's requests; printed at teardown when the test failed (pytest shows
    a failed test's teardown output)."""
    recorded = Trace(target)
    failed_before = request.session.testsfailed
    yield recorded
    recorded.close_clients()
    if request.session.testsfailed > failed_before:
        print(recorded.explain())


# -- the caldav library ----------------------------------------------------------------------


def caldav_client(target: DavTarget, trace: Trace, start: str | None = None,
                  *, tls: bool = False) -> Any:
    """A ``caldav.DAVClient`` for the target's user that records its requests in ``trace``."""
    import caldav

    base, verify = target.base, True
    if tls:
        assert target.tls_base and target.ca_file, f"{target.name} has no TLS listener"
        base, verify = target.tls_base, str(target.ca_file)
    client = caldav.DAVClient(url=base + (start or target.root), username=target.user,
                              password=target.password, timeout=TIMEOUT,
                              ssl_verify_cert=verify, enable_rfc6764=False)
    original = client.request

    def request(url: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
        try:
            response = original(url, method, *args, **kwargs)
        except Exception as exc:
            trace.add(method, str(url), type(exc).__name__, str(exc).encode())
            raise
        raw = getattr(response, "_raw", b"")
        trace.add(method, str(url), response.status,
                  raw.encode() if isinstance(raw, str) else bytes(raw or b""))
        return response

    client.request = request
    trace.clients.append(client)
    return client


def calendar_at(principal: Any, target: DavTarget, path: str) -> Any:
    import caldav

    return caldav.Calendar(client=principal.client, url=target.url(path))


WEEKLY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//groupware-gateway tests//EN
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20260201T120000Z
DTSTART:20260302T090000Z
DTEND:20260302T100000Z
RRULE:FREQ=WEEKLY;COUNT=6
EXDATE:20260316T090000Z
SUMMARY:Weekly sync
END:VEVENT
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20260201T120000Z
RECURRENCE-ID:20260309T090000Z
DTSTART:20260310T140000Z
DTEND:20260310T150000Z
SUMMARY:Weekly sync (moved)
END:VEVENT
END:VCALENDAR
"""
# Between 5 and 28 March: the 9th moved to the 10th, the 16th cancelled, the 23rd as usual.
WEEKLY_IN_RANGE = [
    (datetime(2026, 3, 10, 14, tzinfo=UTC), "Weekly sync (moved)"),
    (datetime(2026, 3, 23, 9, tzinfo=UTC), "Weekly sync"),
]
SINGLE = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//groupware-gateway tests//EN
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20260201T120000Z
DTSTART:20260405T080000Z
DTEND:20260405T083000Z
SUMMARY:{summary}
END:VEVENT
END:VCALENDAR
"""
TODO = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//groupware-gateway tests//EN
BEGIN:VTODO
UID:{uid}
DTSTAMP:20260201T120000Z
DUE:20260410T170000Z
SUMMARY:{summary}
STATUS:NEEDS-ACTION
END:VTODO
END:VCALENDAR
"""
VCARD = """BEGIN:VCARD
VERSION:3.0
UID:{uid}
FN:{name}
N:{name};;;;
EMAIL;TYPE=INTERNET:{uid}@example.net
END:VCARD
"""


def new_uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def occurrences(found: list[Any]) -> list[tuple[datetime, str]]:
    """(start, summary) of each occurrence the library returned, in time order."""
    seen = []
    for obj in found:
        component = obj.icalendar_component
        seen.append((component["DTSTART"].dt.astimezone(UTC), str(component["SUMMARY"])))
    return sorted(seen)


def test_caldav_discovers_principal_and_collections(target: DavTarget, trace: Trace) -> None:
    """From the DAV root the library finds the user's principal, the calendar home and
    the default calendar (VEVENT) and task list (VTODO)."""
    principal = caldav_client(target, trace).principal()
    assert path_of(principal.url) == target.principal
    assert path_of(principal.calendar_home_set.url) == target.calendar_home
    calendars = {path_of(c.url): c for c in principal.calendars()}
    assert {target.calendar, target.tasks} <= set(calendars), sorted(calendars)
    assert "VEVENT" in calendars[target.calendar].get_supported_components()
    assert "VTODO" in calendars[target.tasks].get_supported_components()


def test_well_known_redirects_propfind(target: DavTarget, trace: Trace) -> None:
    """RFC 6764 section 5: /.well-known/caldav and /carddav redirect, for PROPFIND too
    (clients start there with a PROPFIND); the library finds the principal from there."""
    with target.http() as http:
        for service in ("caldav", "carddav"):
            answer = http.request("PROPFIND", f"/.well-known/{service}",
                                  headers={"Depth": "0"}, content=PROPFIND_PRINCIPAL)
            trace.add("PROPFIND", f"/.well-known/{service}", answer.status_code,
                      answer.content)
            assert answer.status_code in (301, 302, 303, 307, 308), answer.status_code
            assert path_of(answer.headers["Location"]) == target.root
    principal = caldav_client(target, trace, "/.well-known/caldav").principal()
    assert path_of(principal.url) == target.principal


def test_caldav_and_curl_over_tls(gateway_target: DavTarget) -> None:
    """Over HTTPS (HTTP/2 where the client offers it), trusting only the certificate the
    gateway made, the library's discovery works on fresh connections, again and again
    (each begins with a PROPFIND answered 401), and curl's PROPFIND gets its 207."""
    trace = Trace(gateway_target)
    try:
        for _ in range(8):
            principal = caldav_client(gateway_target, trace, tls=True).principal()
            assert path_of(principal.url) == gateway_target.principal
            assert gateway_target.calendar in {path_of(c.url) for c in principal.calendars()}
            trace.close_clients()
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc}\n{trace.explain()}") from exc
    finally:
        trace.close_clients()
    done = subprocess.run(
        ["curl", "-sS", "--max-time", str(TIMEOUT), "--cacert", str(gateway_target.ca_file),
         "-u", f"{gateway_target.user}:{gateway_target.password}", "-X", "PROPFIND",
         "-H", "Depth: 0", "-o", "/dev/null", "-w", "%{http_code}",
         gateway_target.tls_base + gateway_target.principal],
        capture_output=True, text=True, timeout=TIMEOUT + 5,
        env={**os.environ, "CURL_CA_BUNDLE": str(gateway_target.ca_file)})
    assert (done.returncode, done.stdout) == (0, "207"), done.stderr


def test_caldav_mkcalendar_and_expanded_search(target: DavTarget, trace: Trace) -> None:
    """MKCALENDAR with a display name; a weekly event with a moved and a cancelled
    occurrence; a time-range search finds exactly the right occurrences, expanded by
    the library and by the server; the calendar can be deleted again."""
    principal = caldav_client(target, trace).principal()
    cal_id = new_uid("team")
    display = f"Team {cal_id[-6:]} - Übersicht"
    calendar = principal.make_calendar(name=display, cal_id=cal_id)
    assert path_of(calendar.url) == f"{target.calendar_home}{cal_id}/"
    names = {path_of(c.url): c.get_display_name() for c in principal.calendars()}
    assert names.get(f"{target.calendar_home}{cal_id}/") == display, names

    uid = new_uid("weekly")
    calendar.add_event(crlf(WEEKLY.format(uid=uid)))
    start, end = datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 3, 28, tzinfo=UTC)
    unexpanded = calendar.search(start=start, end=end, event=True)
    assert [str(e.icalendar_component["UID"]) for e in unexpanded] == [uid]
    by_library = calendar.search(start=start, end=end, event=True, expand=True)
    assert occurrences(by_library) == WEEKLY_IN_RANGE
    by_server = calendar.search(start=start, end=end, event=True, expand=True,
                                server_expand=True)
    assert occurrences(by_server) == WEEKLY_IN_RANGE
    outside = calendar.search(start=datetime(2026, 5, 1, tzinfo=UTC),
                              end=datetime(2026, 6, 1, tzinfo=UTC), event=True)
    assert outside == []

    calendar.delete()
    assert f"{target.calendar_home}{cal_id}/" not in {path_of(c.url)
                                                       for c in principal.calendars()}


BERLIN_WEEKLY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//groupware-gateway tests//EN
""" + VTIMEZONES["Europe/Berlin"] + """
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20260201T120000Z
DTSTART;TZID=Europe/Berlin:20260316T090000
DTEND;TZID=Europe/Berlin:20260316T093000
RRULE:FREQ=WEEKLY;UNTIL=20260427T070000Z
SUMMARY:Standup Berlin
END:VEVENT
END:VCALENDAR
"""


def test_caldav_timezone_recurrence_across_dst(target: DavTarget, trace: Trace) -> None:
    """A weekly 09:00 Europe/Berlin event keeps 09:00 local across the switch to summer
    time (29 March 2026): 08:00Z before it, 07:00Z after, in both expansions."""
    principal = caldav_client(target, trace).principal()
    calendar = calendar_at(principal, target, target.calendar)
    uid = new_uid("berlin")
    event = calendar.add_event(crlf(BERLIN_WEEKLY.format(uid=uid)))
    start, end = datetime(2026, 3, 20, tzinfo=UTC), datetime(2026, 4, 4, tzinfo=UTC)
    expected = [(datetime(2026, 3, 23, 8, tzinfo=UTC), "Standup Berlin"),
                (datetime(2026, 3, 30, 7, tzinfo=UTC), "Standup Berlin")]
    for server_expand in (False, True):
        found = [o for o in calendar.search(start=start, end=end, event=True, expand=True,
                                            server_expand=server_expand)
                 if str(o.icalendar_component["UID"]) == uid]
        assert occurrences(found) == expected, f"server_expand={server_expand}"
    event.delete()


def test_caldav_update_and_delete_event(target: DavTarget, trace: Trace) -> None:
    """An event saved, found by UID, changed (new ETag, new summary), then deleted."""
    import caldav

    principal = caldav_client(target, trace).principal()
    calendar = calendar_at(principal, target, target.calendar)
    uid = new_uid("single")
    event = calendar.add_event(crlf(SINGLE.format(uid=uid, summary="Dentist")))
    first_etag = calendar.get_event_by_uid(uid).props.get("{DAV:}getetag")
    event.icalendar_component["SUMMARY"] = "Dentist (moved to 9:00)"
    event.save()
    again = calendar.get_event_by_uid(uid)
    assert str(again.icalendar_component["SUMMARY"]) == "Dentist (moved to 9:00)"
    assert path_of(again.url) == path_of(event.url)
    if first_etag is not None:
        assert again.props.get("{DAV:}getetag") != first_etag
    event.delete()
    with pytest.raises(caldav.lib.error.NotFoundError):
        calendar.get_event_by_uid(uid)


def test_caldav_sync_token(target: DavTarget, trace: Trace) -> None:
    """sync-collection through the library (no fall-back to a full listing): after a
    change only that change comes back, a deletion is reported as one."""
    principal = caldav_client(target, trace).principal()
    calendar = calendar_at(principal, target, target.calendar)
    initial = calendar.get_objects_by_sync_token(disable_fallback=True)
    token = initial.sync_token
    assert token and not str(token).startswith("fake-"), token

    uid = new_uid("sync")
    event = calendar.add_event(crlf(SINGLE.format(uid=uid, summary="Sync me")))
    added = calendar.get_objects_by_sync_token(token, disable_fallback=True)
    assert [path_of(o.url) for o in added] == [path_of(event.url)]
    assert not added.deleted_urls
    nothing = calendar.get_objects_by_sync_token(added.sync_token, disable_fallback=True)
    assert list(nothing) == [], [path_of(o.url) for o in nothing]

    event.icalendar_component["SUMMARY"] = "Sync me (changed)"
    event.save()
    changed = calendar.get_objects_by_sync_token(added.sync_token, disable_fallback=True,
                                                 load_objects=True)
    assert [path_of(o.url) for o in changed] == [path_of(event.url)]
    assert "Sync me (changed)" in changed.objects[0].data

    event.delete()
    removed = calendar.get_objects_by_sync_token(changed.sync_token, disable_fallback=True)
    assert {path_of(u) for u in removed.deleted_urls} == {path_of(event.url)}

    # The library's own follow-up from the first token: an event made and deleted since
    # is neither new nor a deletion of something it held.
    assert initial.sync() == ([], [])


def test_caldav_tasks(target: DavTarget, trace: Trace) -> None:
    """A task saved in the task list is pending; once completed it is listed only with
    completed tasks, with STATUS:COMPLETED and a COMPLETED time."""
    principal = caldav_client(target, trace).principal()
    tasks = calendar_at(principal, target, target.tasks)
    uid = new_uid("todo")
    todo = tasks.add_todo(crlf(TODO.format(uid=uid, summary="File the report")))
    pending = {str(t.icalendar_component["UID"]) for t in tasks.todos()}
    assert uid in pending
    todo.complete()
    assert uid not in {str(t.icalendar_component["UID"]) for t in tasks.todos()}
    everything = {str(t.icalendar_component["UID"]): t
                  for t in tasks.todos(include_completed=True)}
    assert uid in everything
    stored = tasks.get_todo_by_uid(uid).icalendar_component
    assert str(stored["STATUS"]) == "COMPLETED"
    assert "COMPLETED" in stored
    todo.delete()
    assert uid not in {str(t.icalendar_component["UID"])
                       for t in tasks.todos(include_completed=True)}


# -- vdirsyncer ------------------------------------------------------------------------------


def vdirsyncer_config(target: DavTarget, workdir: Path) -> Path:
    remote = target.url(target.root)
    config = workdir / "config"
    config.write_text(textwrap.dedent(f"""\
        [general]
        status_path = "{workdir / "status"}/"

        [pair cal]
        a = "cal_local"
        b = "cal_remote"
        collections = ["calendar"]
        conflict_resolution = "b wins"

        [storage cal_local]
        type = "filesystem"
        path = "{workdir / "cal"}/"
        fileext = ".ics"

        [storage cal_remote]
        type = "caldav"
        url = "{remote}"
        username = "{target.user}"
        password = "{target.password}"

        [pair card]
        a = "card_local"
        b = "card_remote"
        collections = ["contacts"]
        conflict_resolution = "b wins"

        [storage card_local]
        type = "filesystem"
        path = "{workdir / "card"}/"
        fileext = ".vcf"

        [storage card_remote]
        type = "carddav"
        url = "{remote}"
        username = "{target.user}"
        password = "{target.password}"
        """))
    return config


def vdirsyncer(config: Path, *args: str, trace: Trace) -> None:
    """Run vdirsyncer to completion (answering its questions with yes), within 60 s."""
    started = time.monotonic()
    done = subprocess.run(
        [str(BIN / "vdirsyncer"), "-c", str(config), "-v", "WARNING", *args],
        input="y\n" * 10, capture_output=True, text=True, timeout=60,
        env={**os.environ, "HOME": str(config.parent)})
    trace.add("vdirsyncer", " ".join(args), done.returncode,
              (done.stdout + done.stderr).encode())
    assert done.returncode == 0, (
        f"vdirsyncer {' '.join(args)} exited {done.returncode} after "
        f"{time.monotonic() - started:.1f} s:\n{done.stdout}\n{done.stderr}")


def test_vdirsyncer_both_ways(target: DavTarget, trace: Trace, tmp_path: Path) -> None:
    """discover + sync; a local .ics and .vcf reach the server; changes made on the server
    (PUT) reach the local files; deletions travel both ways."""
    config = vdirsyncer_config(target, tmp_path)
    vdirsyncer(config, "discover", trace=trace)
    vdirsyncer(config, "sync", trace=trace)
    local_cal, local_card = tmp_path / "cal" / "calendar", tmp_path / "card" / "contacts"
    assert local_cal.is_dir() and local_card.is_dir()

    event_uid, card_uid = new_uid("vdir-event"), new_uid("vdir-card")
    # A second item on each side, or vdirsyncer refuses to sync a storage made empty.
    keep_event, keep_card = new_uid("vdir-keep"), new_uid("vdir-keep")
    (local_cal / f"{keep_event}.ics").write_text(
        crlf(SINGLE.format(uid=keep_event, summary="Kept")))
    (local_card / f"{keep_card}.vcf").write_text(crlf(VCARD.format(uid=keep_card,
                                                                   name="Kim Kept")))
    (local_cal / f"{event_uid}.ics").write_text(
        crlf(SINGLE.format(uid=event_uid, summary="From vdirsyncer")))
    (local_card / f"{card_uid}.vcf").write_text(crlf(VCARD.format(uid=card_uid,
                                                                  name="Vera Vdir")))
    vdirsyncer(config, "sync", trace=trace)

    event_path = f"{target.calendar}{event_uid}.ics"
    card_path = f"{target.contacts}{card_uid}.vcf"
    with target.http() as http:
        listed = propfind_hrefs(http, target.calendar, trace)
        assert event_path in listed, sorted(listed)
        assert card_path in propfind_hrefs(http, target.contacts, trace)
        event = http.get(event_path)
        trace.add("GET", event_path, event.status_code, event.content)
        assert event.status_code == 200 and "From vdirsyncer" in event.text
        card = http.get(card_path)
        trace.add("GET", card_path, card.status_code, card.content)
        assert card.status_code == 200 and "Vera Vdir" in card.text

        changed = http.put(
            event_path, content=crlf(SINGLE.format(uid=event_uid, summary="Changed on server")),
            headers={"Content-Type": "text/calendar; charset=utf-8",
                     **if_match(event.headers.get("ETag"))})
        trace.add("PUT", event_path, changed.status_code, changed.content)
        assert changed.status_code in (200, 204), changed.text
        changed = http.put(
            card_path, content=crlf(VCARD.format(uid=card_uid, name="Vera Renamed")),
            headers={"Content-Type": "text/vcard; charset=utf-8",
                     **if_match(card.headers.get("ETag"))})
        trace.add("PUT", card_path, changed.status_code, changed.content)
        assert changed.status_code in (200, 204), changed.text
    vdirsyncer(config, "sync", trace=trace)
    assert "Changed on server" in (local_cal / f"{event_uid}.ics").read_text()
    assert "Vera Renamed" in (local_card / f"{card_uid}.vcf").read_text()

    (local_cal / f"{event_uid}.ics").unlink()
    with target.http() as http:
        gone = http.delete(card_path)
        trace.add("DELETE", card_path, gone.status_code, gone.content)
        assert gone.status_code in (200, 204)
    vdirsyncer(config, "sync", trace=trace)
    assert not (local_card / f"{card_uid}.vcf").exists()
    with target.http() as http:
        answer = http.get(event_path)
        trace.add("GET", event_path, answer.status_code, answer.content)
        assert answer.status_code == 404
        assert event_path not in propfind_hrefs(http, target.calendar, trace)


def if_match(etag: str | None) -> dict[str, str]:
    return {"If-Match": etag} if etag else {}


def propfind_hrefs(http: httpx.Client, path: str, trace: Trace) -> set[str]:
    """The (unquoted) hrefs a Depth: 1 PROPFIND of ``path`` lists."""
    answer = http.request("PROPFIND", path, headers={"Depth": "1"}, content=PROPFIND_ETAG)
    trace.add("PROPFIND", path, answer.status_code, answer.content)
    assert answer.status_code == 207, answer.text
    return {path_of(h) for h in multistatus(answer.content).xpath("d:response/d:href/text()",
                                                                   namespaces=NS)}


# -- caldav-server-tester -------------------------------------------------------------------

# Features Radicale supports fully that the gateway is not going to: feature -> reason.
# Each entry is a design decision, not a bug waiting for a fix; keep the reason short and
# true, and remove the entry when the gateway gains the feature.
NOT_PLANNED: dict[str, str] = {
    # (empty: every feature Radicale has fully, the gateway has too; a feature left out on
    # purpose goes here with the reason)
}


def server_tester_findings(target: DavTarget, workdir: Path, attendee: DavTarget | None = None
                           ) -> tuple[dict[str, dict[str, Any]], float]:
    """caldav-server-tester's findings for ``target`` (feature -> info), and its run time.

    With ``attendee`` (another account on the same server) it also checks scheduling
    between the two users."""
    config = workdir / "caldav-accounts.json"
    accounts = {}
    extra: list[str] = []
    if attendee is not None:
        accounts["attendee"] = {"caldav_url": attendee.url(attendee.root),
                                "caldav_username": attendee.user,
                                "caldav_password": attendee.password}
        extra = ["--config-section", "attendee"]
    config.write_text(json.dumps(accounts))
    started = time.monotonic()
    done = subprocess.run(
        [str(BIN / "caldav-server-tester"), "--caldav-url", target.url(target.root),
         "--caldav-username", target.user, "--caldav-password", target.password,
         "--format", "hints", *extra],
        capture_output=True, text=True, timeout=90, cwd=workdir,
        env={**os.environ, "HOME": str(workdir), "CALDAV_CONFIG_FILE": str(config)})
    elapsed = time.monotonic() - started
    assert done.returncode == 0, (
        f"caldav-server-tester against {target.name} exited {done.returncode}:\n"
        f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    report = done.stdout[done.stdout.index("{"):]
    findings = ast.literal_eval(report)
    assert isinstance(findings, dict) and findings, done.stdout
    return findings, elapsed


def describe(findings: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for feature, info in sorted(findings.items()):
        level = info.get("support", f"value={info.get('value')!r}")
        extra = info.get("behaviour") or info.get("description") or ""
        lines.append(f"  {feature}: {level}" + (f"  ({extra[:140]})" if extra else ""))
    return lines


def test_caldav_server_tester_finds_what_radicale_has(request: pytest.FixtureRequest,
                                                      tmp_path: Path) -> None:
    """Every feature caldav-server-tester finds fully supported on Radicale is fully
    supported on the gateway too, except the ones NOT_PLANNED explains. Both run as bob
    (on a Radicale of his own), so the other tests' data is not in the way."""
    peer = start_radicale(tmp_path, user=BOB, password=PASSWORDS[BOB])
    try:
        theirs, their_time = server_tester_findings(radicale_target_for(peer), tmp_path)
    finally:
        peer.stop()
    print(f"\n=== caldav-server-tester: Radicale ({their_time:.1f} s) ===")
    print("\n".join(describe(theirs)))
    gateway: DavTarget = request.getfixturevalue("gateway_target")
    ours, our_time = server_tester_findings(gateway.as_user(BOB), tmp_path,
                                            attendee=gateway.as_user(CAROL))
    print(f"=== caldav-server-tester: gateway ({our_time:.1f} s) ===")
    print("\n".join(describe(ours)))
    missing = {
        feature: ours.get(feature, {}).get("support", "not checked")
        for feature, info in theirs.items()
        if info.get("support") == "full" and ours.get(feature, {}).get("support") != "full"
        and feature not in NOT_PLANNED
    }
    worse = sorted(f for f, info in ours.items() if info.get("support") == "ungraceful"
                   and theirs.get(f, {}).get("support") != "ungraceful")
    print("=== ungraceful on the gateway (an error where a clean refusal would do) ===")
    print("\n".join(f"  {f}" for f in worse) or "  (none)")
    print("=== supported fully by Radicale, not by the gateway ===")
    print("\n".join(f"  {f}: {level}" for f, level in sorted(missing.items())) or "  (none)")
    assert not missing, f"features Radicale has and the gateway lacks: {missing}"


# -- curl with exact bodies ------------------------------------------------------------------

PROPFIND_ETAG = b"""<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><D:resourcetype/></D:prop></D:propfind>"""
PROPFIND_PRINCIPAL = b"""<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:current-user-principal/></D:prop></D:propfind>"""
PROPFIND_HOME = b"""<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"
            xmlns:CS="http://calendarserver.org/ns/">
  <D:prop>
    <D:resourcetype/>
    <D:displayname/>
    <D:sync-token/>
    <CS:getctag/>
    <C:supported-calendar-component-set/>
    <D:current-user-privilege-set/>
  </D:prop>
</D:propfind>"""
CALENDAR_MULTIGET = """<?xml version="1.0" encoding="utf-8"?>
<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/><C:calendar-data/></D:prop>
  {hrefs}
</C:calendar-multiget>"""
ADDRESSBOOK_MULTIGET = """<?xml version="1.0" encoding="utf-8"?>
<A:addressbook-multiget xmlns:D="DAV:" xmlns:A="urn:ietf:params:xml:ns:carddav">
  <D:prop><D:getetag/><A:address-data/></D:prop>
  {hrefs}
</A:addressbook-multiget>"""
SYNC_COLLECTION = """<?xml version="1.0" encoding="utf-8"?>
<D:sync-collection xmlns:D="DAV:">
  <D:sync-token>{token}</D:sync-token>
  <D:sync-level>1</D:sync-level>
  <D:prop><D:getetag/></D:prop>
</D:sync-collection>"""
CALENDAR_QUERY_EXPAND = """<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop>
    <D:getetag/>
    <C:calendar-data><C:expand start="20260305T000000Z" end="20260328T000000Z"/></C:calendar-data>
  </D:prop>
  <C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">
    <C:time-range start="20260305T000000Z" end="20260328T000000Z"/>
  </C:comp-filter></C:comp-filter></C:filter>
</C:calendar-query>"""


@dataclass
class CurlAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def xml(self) -> Any:
        return multistatus(self.body)


def curl(target: DavTarget, trace: Trace, method: str, path: str, body: bytes | str = b"",
         headers: dict[str, str] | None = None) -> CurlAnswer:
    """Run curl once (body from a file with --data-binary @file) and return its answer."""
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"dav-curl-{os.getpid()}"
    workdir.mkdir(exist_ok=True)
    body_file, out_file, head_file = (workdir / n for n in ("request", "response", "headers"))
    body_file.write_bytes(body.encode() if isinstance(body, str) else body)
    command = [shutil.which("curl") or "curl", "-sS", "--max-time", str(TIMEOUT),
               "-u", f"{target.user}:{target.password}", "-X", method,
               "-o", str(out_file), "-D", str(head_file), "-w", "%{http_code}"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if body:
        command += ["--data-binary", f"@{body_file}"]
    done = subprocess.run([*command, target.url(path)], capture_output=True, text=True,
                          timeout=TIMEOUT + 5)
    assert done.returncode == 0, f"curl {method} {path}: {done.stderr}"
    answer_headers: dict[str, str] = {}
    for line in head_file.read_text(errors="replace").splitlines()[1:]:
        name, _, value = line.partition(":")
        if value:
            answer_headers[name.strip().lower()] = value.strip()
    answer = CurlAnswer(int(done.stdout), answer_headers, out_file.read_bytes())
    trace.add(method, path, answer.status, answer.body)
    return answer


def multistatus(body: bytes) -> Any:
    root = etree.fromstring(body)
    assert root.tag == f"{{{DAV}}}multistatus", body[:300]
    return root


def responses(root: Any) -> dict[str, Any]:
    """href (unquoted path) -> its <D:response> element."""
    return {path_of(r.findtext(f"{{{DAV}}}href")): r for r in root.findall(f"{{{DAV}}}response")}


def prop_ok(response: Any, name: str) -> Any:
    """The element of property ``name`` (Clark notation) in the 200 propstat, or None."""
    for propstat in response.findall(f"{{{DAV}}}propstat"):
        if " 200 " in (propstat.findtext(f"{{{DAV}}}status") or ""):
            found = propstat.find(f"{{{DAV}}}prop/{name}")
            if found is not None:
                return found
    return None


def put(target: DavTarget, trace: Trace, path: str, data: str, content_type: str) -> str:
    """PUT a new resource (If-None-Match: *), return its ETag ("" when none given)."""
    answer = curl(target, trace, "PUT", path, crlf(data),
                  {"Content-Type": f"{content_type}; charset=utf-8", "If-None-Match": "*"})
    assert answer.status == 201, (answer.status, answer.body)
    return answer.headers.get("etag", "")


def test_curl_propfind_calendar_home(target: DavTarget, trace: Trace) -> None:
    """PROPFIND Depth 1 on the calendar home lists the calendar (VEVENT) and the task
    list (VTODO) as calendar collections with a sync-token and a getctag."""
    answer = curl(target, trace, "PROPFIND", target.calendar_home, PROPFIND_HOME,
                  {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
    assert answer.status == 207
    assert "xml" in answer.headers.get("content-type", "")
    found = responses(answer.xml())
    for path, component in ((target.calendar, "VEVENT"), (target.tasks, "VTODO")):
        assert path in found, sorted(found)
        kinds = prop_ok(found[path], f"{{{DAV}}}resourcetype")
        assert kinds is not None and kinds.find(f"{{{CALDAV}}}calendar") is not None
        assert kinds.find(f"{{{DAV}}}collection") is not None
        comps = prop_ok(found[path], f"{{{CALDAV}}}supported-calendar-component-set")
        assert comps is not None
        assert component in [c.get("name") for c in comps], etree.tostring(comps)
        assert (prop_ok(found[path], f"{{{DAV}}}sync-token").text or "").strip()
        assert (prop_ok(found[path], f"{{{CS}}}getctag").text or "").strip()


def test_curl_calendar_multiget(target: DavTarget, trace: Trace) -> None:
    """calendar-multiget of two stored events and one missing href: the two with their
    ETags and data, the missing one as 404."""
    uids = [new_uid("multiget"), new_uid("multiget")]
    etags = {}
    for uid in uids:
        etags[f"{target.calendar}{uid}.ics"] = put(
            target, trace, f"{target.calendar}{uid}.ics", SINGLE.format(uid=uid, summary=uid),
            "text/calendar")
    missing = f"{target.calendar}{new_uid('missing')}.ics"
    hrefs = "".join(f"<D:href>{p}</D:href>" for p in [*etags, missing])
    answer = curl(target, trace, "REPORT", target.calendar, CALENDAR_MULTIGET.format(hrefs=hrefs),
                  {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
    assert answer.status == 207
    found = responses(answer.xml())
    assert set(found) == {*etags, missing}, sorted(found)
    for path, uid in zip(etags, uids, strict=True):
        data = prop_ok(found[path], f"{{{CALDAV}}}calendar-data")
        assert data is not None and f"UID:{uid}" in data.text
        etag = prop_ok(found[path], f"{{{DAV}}}getetag")
        assert etag is not None and (not etags[path] or etag.text == etags[path])
    status = found[missing].findtext(f"{{{DAV}}}status") or found[missing].findtext(
        f"{{{DAV}}}propstat/{{{DAV}}}status")
    assert " 404 " in (status or ""), etree.tostring(found[missing])


def test_curl_addressbook_multiget(target: DavTarget, trace: Trace) -> None:
    """A vCard PUT into the address book comes back from addressbook-multiget."""
    uid = new_uid("card")
    path = f"{target.contacts}{uid}.vcf"
    etag = put(target, trace, path, VCARD.format(uid=uid, name="Carla Curl"), "text/vcard")
    answer = curl(target, trace, "REPORT", target.contacts,
                  ADDRESSBOOK_MULTIGET.format(hrefs=f"<D:href>{path}</D:href>"),
                  {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
    assert answer.status == 207
    found = responses(answer.xml())
    assert set(found) == {path}, sorted(found)
    data = prop_ok(found[path], f"{{{CARDDAV}}}address-data")
    assert data is not None and "FN:Carla Curl" in data.text and f"UID:{uid}" in data.text
    assert not etag or prop_ok(found[path], f"{{{DAV}}}getetag").text == etag


ADDRESSBOOK_QUERY = """<?xml version="1.0" encoding="utf-8"?>
<A:addressbook-query xmlns:D="DAV:" xmlns:A="urn:ietf:params:xml:ns:carddav">
  <D:prop><D:getetag/><A:address-data/></D:prop>
  <A:filter test="anyof">
    <A:prop-filter name="FN">
      <A:text-match collation="i;unicode-casemap" match-type="contains">{needle}</A:text-match>
    </A:prop-filter>
  </A:filter>
</A:addressbook-query>"""
PROPFIND_ADDRESSBOOK_HOME = b"""<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:A="urn:ietf:params:xml:ns:carddav">
  <D:prop><D:resourcetype/><D:displayname/><D:sync-token/>
    <A:supported-address-data/></D:prop>
</D:propfind>"""


def test_curl_addressbook_home_and_query(target: DavTarget, trace: Trace) -> None:
    """The address book home lists contacts/ as an address book; addressbook-query with a
    case-insensitive FN match finds exactly the matching card."""
    answer = curl(target, trace, "PROPFIND", target.addressbook_home, PROPFIND_ADDRESSBOOK_HOME,
                  {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
    assert answer.status == 207
    found = responses(answer.xml())
    assert target.contacts in found, sorted(found)
    kinds = prop_ok(found[target.contacts], f"{{{DAV}}}resourcetype")
    assert kinds is not None and kinds.find(f"{{{CARDDAV}}}addressbook") is not None
    token = prop_ok(found[target.contacts], f"{{{DAV}}}sync-token")
    assert token is not None and (token.text or "").strip()

    marker = uuid.uuid4().hex[:8]
    wanted, other = new_uid("query-card"), new_uid("query-card")
    put(target, trace, f"{target.contacts}{wanted}.vcf",
        VCARD.format(uid=wanted, name=f"Quentin Q{marker}uery"), "text/vcard")
    put(target, trace, f"{target.contacts}{other}.vcf",
        VCARD.format(uid=other, name="Olga Other"), "text/vcard")
    answer = curl(target, trace, "REPORT", target.contacts,
                  ADDRESSBOOK_QUERY.format(needle=f"q{marker.upper()}UERY"),
                  {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
    assert answer.status == 207
    found = responses(answer.xml())
    assert set(found) == {f"{target.contacts}{wanted}.vcf"}, sorted(found)
    data = prop_ok(found[f"{target.contacts}{wanted}.vcf"], f"{{{CARDDAV}}}address-data")
    assert data is not None and f"UID:{wanted}" in data.text


def test_curl_gal_is_a_read_only_address_book(gateway_target: DavTarget) -> None:
    """The gateway's gal/ address book lists the domain's users (bob and carol among them
    for alice) and refuses a PUT, writing nothing."""
    target = gateway_target
    trace = Trace(target)
    gal = f"{target.addressbook_home}gal/"
    try:
        listing = curl(target, trace, "PROPFIND", target.addressbook_home, PROPFIND_ETAG,
                       {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
        assert listing.status == 207
        listed = sorted(responses(listing.xml()))
        assert gal in listed, f"gal/ is not listed in the address book home: {listed}"
        members = curl(target, trace, "PROPFIND", gal, PROPFIND_ETAG,
                       {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
        assert members.status == 207
        hrefs = [h for h in responses(members.xml()) if h != gal]
        cards = curl(target, trace, "REPORT", gal, ADDRESSBOOK_MULTIGET.format(
            hrefs="".join(f"<D:href>{h}</D:href>" for h in hrefs)),
            {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
        assert cards.status == 207
        text = "".join(data.text or "" for data in cards.xml().iter(f"{{{CARDDAV}}}address-data"))
        assert BOB in text and CAROL in text, text[:500]
        uid = new_uid("gal-card")
        refused = curl(target, trace, "PUT", f"{gal}{uid}.vcf",
                       crlf(VCARD.format(uid=uid, name="Not Allowed")),
                       {"Content-Type": "text/vcard; charset=utf-8"})
        assert refused.status in (403, 405), refused.status
        assert curl(target, trace, "GET", f"{gal}{uid}.vcf").status == 404
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{trace.explain()}") from exc


PROPFIND_SCHEDULING = b"""<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>
  <C:schedule-inbox-URL/><C:schedule-outbox-URL/><C:calendar-user-address-set/>
</D:prop></D:propfind>"""


def test_curl_schedule_inbox_and_outbox_exist(gateway_target: DavTarget) -> None:
    """The gateway announces calendar-schedule (RFC 6638): the principal's
    schedule-inbox-URL and schedule-outbox-URL answer PROPFIND as schedule collections."""
    target = gateway_target
    trace = Trace(target)
    try:
        answer = curl(target, trace, "PROPFIND", target.principal, PROPFIND_SCHEDULING,
                      {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"})
        assert answer.status == 207
        principal = responses(answer.xml())[target.principal]
        for prop, kind in (("schedule-inbox-URL", "schedule-inbox"),
                           ("schedule-outbox-URL", "schedule-outbox")):
            found = prop_ok(principal, f"{{{CALDAV}}}{prop}")
            assert found is not None, f"no {prop} on the principal"
            path = path_of(found.findtext(f"{{{DAV}}}href"))
            box = curl(target, trace, "PROPFIND", path, PROPFIND_ETAG,
                       {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"})
            assert box.status == 207, f"{prop} {path}: {box.status} {box.body[:200]!r}"
            kinds = prop_ok(responses(box.xml())[path], f"{{{DAV}}}resourcetype")
            assert kinds is not None and kinds.find(f"{{{CALDAV}}}{kind}") is not None
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{trace.explain()}") from exc


def sync_collection(target: DavTarget, trace: Trace, path: str, token: str
                    ) -> tuple[str, dict[str, Any]]:
    answer = curl(target, trace, "REPORT", path, SYNC_COLLECTION.format(token=token),
                  {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"})
    assert answer.status == 207
    root = answer.xml()
    new_token = (root.findtext(f"{{{DAV}}}sync-token") or "").strip()
    assert new_token, "no sync-token in the multistatus"
    return new_token, responses(root)


def test_curl_sync_collection(target: DavTarget, trace: Trace) -> None:
    """sync-collection from scratch lists members with ETags; after a PUT only that member
    comes back; after its DELETE it comes back as 404."""
    token, members = sync_collection(target, trace, target.tasks, "")
    for response in members.values():
        # Radicale lists members deleted before (404) even in an initial sync.
        if " 404 " not in (response.findtext(f"{{{DAV}}}status") or ""):
            assert prop_ok(response, f"{{{DAV}}}getetag") is not None, etree.tostring(response)
    uid = new_uid("sync-todo")
    path = f"{target.tasks}{uid}.ics"
    etag = put(target, trace, path, TODO.format(uid=uid, summary="Sync"), "text/calendar")
    token, members = sync_collection(target, trace, target.tasks, token)
    assert set(members) == {path}, sorted(members)
    got = prop_ok(members[path], f"{{{DAV}}}getetag")
    assert got is not None and (not etag or got.text == etag)
    gone = curl(target, trace, "DELETE", path)
    assert gone.status in (200, 204)
    token, members = sync_collection(target, trace, target.tasks, token)
    assert set(members) == {path}, sorted(members)
    assert " 404 " in (members[path].findtext(f"{{{DAV}}}status") or "")
    _, members = sync_collection(target, trace, target.tasks, token)
    assert members == {}


def test_curl_calendar_query_expanded_by_the_server(target: DavTarget, trace: Trace) -> None:
    """calendar-query with a time-range and <C:expand>: the server returns the weekly
    event's two occurrences in range as instances with RECURRENCE-ID and no RRULE, and
    leaves out an event outside the range (no client filters behind it here)."""
    uid, outside_uid = new_uid("expand"), new_uid("outside")
    path, outside = f"{target.calendar}{uid}.ics", f"{target.calendar}{outside_uid}.ics"
    put(target, trace, path, WEEKLY.format(uid=uid), "text/calendar")
    put(target, trace, outside, SINGLE.format(uid=outside_uid, summary="April"), "text/calendar")
    answer = curl(target, trace, "REPORT", target.calendar, CALENDAR_QUERY_EXPAND,
                  {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
    assert answer.status == 207
    found = responses(answer.xml())
    assert path in found and outside not in found, sorted(found)
    data = prop_ok(found[path], f"{{{CALDAV}}}calendar-data").text
    import icalendar

    events = icalendar.Calendar.from_ical(data).walk("VEVENT")
    assert all("RRULE" not in e and "RECURRENCE-ID" in e for e in events), data
    assert sorted((e["DTSTART"].dt.astimezone(UTC), str(e["SUMMARY"])) for e in events) \
        == WEEKLY_IN_RANGE, data
    for resource in (path, outside):
        assert curl(target, trace, "DELETE", resource).status in (200, 204)
