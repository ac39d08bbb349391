"""CalDAV/CardDAV beside Radicale and Xandikos, same machine, same data
(``python -m tests.bench.dav_peers``).

Loads the same N events (default 5,000, from ``tests.bench.dav_data``:
recurring ones, overrides, all-day, VTIMEZONEs, attendees) and M contacts
(default 5,000, vCard 3.0) into our gateway, a throwaway Radicale and a
throwaway Xandikos (``tests.harness.dav_peers``), one server at a time. The
first 1,000 events go in by PUT (timed, below) everywhere; the rest by PUT
into our gateway, and straight into Radicale's and Xandikos's own storage
(``store_items``: their files as a PUT leaves them, for their PUTs slow down
as a collection grows; ``--put-rest`` PUTs everything instead). Then an
untimed warm-up reads each collection (PROPFIND Depth 1 listing exactly the
loaded items, and its sync token), and each server is timed with the same
plain ``http.client`` keep-alive client (so the client is not what is
measured; a request is timed from sending to the last byte of the answer,
parsing is not timed):

- PUT of the first 1,000 events, over 4 connections at once (``--puts``);
- PROPFIND Depth 1 on the calendar (getetag, getcontenttype, resourcetype);
- calendar-multiget of 500 hrefs (calendar-data, getetag);
- calendar-query, VEVENT in a one-month time-range (calendar-data, getetag);
- sync-collection after 10 changes (token taken, 10 events PUT again, REPORT timed);
- PROPFIND Depth 1 on the address book; addressbook-multiget of 500.

Each row is repeated (``--repeat``, median kept). Every answer is checked:
the number of resources in each PROPFIND, multiget and sync answer, and the
calendar-query's matches against the number the generator knows; a server
whose answer is wrong gets a WARNING line, so an error is never timed as a
result. Prints a table: row, ours, Radicale, Xandikos, and the ratios
peer time / our time (> 1: we are faster). ``--json`` prints the figures.

    .venv/bin/python -m tests.bench.dav_peers [--events 5000] [--contacts 5000]
        [--repeat 5] [--puts 1000] [--put-rest] [--peers-only] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from tests.bench.common import (
    REPO,
    env_with_path,
    free_port,
    gateway_command,
    start,
    stop,
    wait_port,
    write_gateway_config,
)
from tests.bench.dav_client import (
    CR,
    PROPFIND_ITEMS,
    PROPFIND_TOKEN,
    XML,
    C,
    Connection,
    D,
    DavBenchError,
    found,
    multiget_body,
    put_all,
    query_body,
    sync_body,
    timed,
)
from tests.bench.dav_data import Event, changed, make_contacts, make_events, month_range
from tests.harness.dav_peers import (
    DavPeer,
    dav_request,
    ensure_collection,
    start_peer,
    store_items,
)

USER = "alice@example.org"
PASSWORD = "alice-bench-secret"
SERVERS = ("gateway", "radicale", "xandikos")
LABELS = {"gateway": "ours", "radicale": "Radicale", "xandikos": "Xandikos"}
PUTS = 1000                                   # events PUT (and timed) before the rest is loaded
DIRECT_STORAGE = ("radicale", "xandikos")     # the rest is written into their storage
ICAL = "text/calendar; charset=utf-8"
VCARD = "text/vcard; charset=utf-8"


class DavNotServed(RuntimeError):
    """The gateway runs but answers 404 on /dav/: the DAV plugin is not there (yet)."""


# -- servers ---------------------------------------------------------------------------------


def gateway_cli(config_dir: Path, *args: str, stdin: str | None = None) -> None:
    command = [sys.executable, "-m", "gateway", "--config-dir", str(config_dir), *args]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=600,
                          env=env_with_path(), cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"gateway {' '.join(args)} failed: {done.stderr}")


def start_ours(work: Path) -> DavPeer:
    """``gateway serve`` with one user; its calendar and contacts folder over /dav/."""
    http_port = free_port()
    config = work / "conf"
    write_gateway_config(config, http_port, "")
    gateway_cli(config, "domain", "add", "example.org")
    gateway_cli(config, "user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
    log = work / "gateway.log"
    proc = start(gateway_command(config), log, env_with_path(), REPO)
    base = f"http://127.0.0.1:{http_port}"
    peer = DavPeer("gateway", proc, work, log, base, USER, PASSWORD,
                   calendar_url=f"{base}/dav/calendars/{USER}/calendar/",
                   addressbook_url=f"{base}/dav/addressbooks/{USER}/contacts/",
                   principal_url=f"{base}/dav/principals/users/{USER}/")
    try:
        wait_port(http_port, proc)
        status, _ = dav_request(base, "PROPFIND", "/dav/", PROPFIND_TOKEN,
                                headers={"Depth": "0"}, authorization=peer.authorization)
        if status == 404:
            raise DavNotServed("the gateway answers 404 on /dav/")
        ensure_collection(peer, peer.calendar_url, "calendar")
        ensure_collection(peer, peer.addressbook_url, "addressbook")
    except DavNotServed:
        stop(proc)
        raise
    except Exception as exc:
        stop(proc)
        raise RuntimeError(f"gateway DAV not usable: {exc}\n{log.read_text()[-2000:]}") from exc
    return peer


# -- measurements ----------------------------------------------------------------------------


def median_of(repeat: int, once: Callable[[], float]) -> float:
    return statistics.median(once() for _ in range(repeat)) * 1000


def measure(peer: DavPeer, events: Sequence[Event], contacts: Sequence[tuple[str, str]],
            repeat: int, connections: int, seconds: float, puts: int = PUTS,
            put_rest: bool = False) -> dict[str, Any]:
    """Load the data (the first ``puts`` events by PUT, timed; the rest as ``load_rest``
    does), warm the collections up, then time the read rows."""
    deadline = time.monotonic() + seconds
    figures: dict[str, Any] = {}
    cal, book = urlsplit(peer.calendar_url).path, urlsplit(peer.addressbook_url).path
    items = [(e.name, e.text) for e in events]
    first = min(puts, len(items))
    figures["put_1000_ms"] = put_all(peer, cal, items[:first], ICAL, connections,
                                     deadline) * 1000
    figures["put_per_s"] = first / figures["put_1000_ms"] * 1000 if first else 0.0
    figures["load_rest_how"], figures["load_rest_s"] = load_rest(
        peer, items[first:], contacts, connections, deadline, put_rest)
    conn = Connection(peer)
    try:
        figures["warm_up_s"] = warm_up(conn, cal, book, [name for name, _ in items],
                                       [name for name, _ in contacts])
        figures.update(read_rows(conn, cal, book, events, contacts, repeat))
    finally:
        conn.close()
    return figures


def load_rest(peer: DavPeer, events: Sequence[tuple[str, str]],
              contacts: Sequence[tuple[str, str]], connections: int, deadline: float,
              put_rest: bool) -> tuple[str, float]:
    """Load the events after the timed PUTs and all contacts; (how, seconds).

    Our gateway (and every server with ``put_rest``) takes them by PUT over
    ``connections`` connections; Radicale and Xandikos get them written straight
    into their own storage (``store_items``), since their PUTs slow down as a
    collection grows and would make a full run last most of an hour.
    """
    started = time.perf_counter()
    if put_rest or peer.name not in DIRECT_STORAGE:
        put_all(peer, urlsplit(peer.calendar_url).path, events, ICAL, connections, deadline)
        put_all(peer, urlsplit(peer.addressbook_url).path, contacts, VCARD, connections,
                deadline)
        return "PUT", time.perf_counter() - started
    try:
        store_items(peer, peer.calendar_url, events)
        store_items(peer, peer.addressbook_url, contacts)
    except Exception as exc:      # the peer's own storage code refused: report, go on
        raise DavBenchError(f"writing into {peer.name}'s storage: "
                            f"{type(exc).__name__}: {exc}") from exc
    return "storage", time.perf_counter() - started


def warm_up(conn: Connection, cal: str, book: str, events: Sequence[str],
            contacts: Sequence[str]) -> float:
    """Untimed first reads after the load, so no row pays for a server's first look at its
    data (Radicale reads and caches items written to its storage on first access): a
    PROPFIND Depth 1 and the sync token of each collection. Each must list exactly the
    names loaded, each with an etag (DavBenchError otherwise); the seconds it all took."""
    started = time.perf_counter()
    for collection, names in ((cal, events), (book, contacts)):
        _, body = timed(conn, "PROPFIND", collection, PROPFIND_ITEMS, {**XML, "Depth": "1"})
        listed = found(body, collection)
        if set(listed) != set(names) or not all(listed.values()):
            raise DavBenchError(f"after loading, PROPFIND {collection} lists {len(listed)} "
                                f"items ({sum(listed.values())} with an etag, "
                                f"{len(set(listed) - set(names))} unknown), "
                                f"expected the {len(names)} loaded")
        timed(conn, "PROPFIND", collection, PROPFIND_TOKEN, {**XML, "Depth": "0"})
    return time.perf_counter() - started


def read_rows(conn: Connection, cal: str, book: str, events: Sequence[Event],
              contacts: Sequence[tuple[str, str]], repeat: int) -> dict[str, Any]:
    """The timed read rows; a row the server gets wrong is noted in ``errors``, the others
    are still measured."""
    figures: dict[str, Any] = {"errors": {}}
    depth1 = {**XML, "Depth": "1"}

    def row(key: str, path: str, method: str, body: bytes, collection: str,
            data_tag: str | None = None) -> None:
        answer = b""

        def once() -> float:
            nonlocal answer
            elapsed, answer = timed(conn, method, path, body, depth1)
            return elapsed
        try:
            once()                             # warm-up: caches and indexes built once
            figures[key] = median_of(repeat, once)
            figures[key.replace("_ms", "_n")] = sum(found(answer, collection,
                                                          data_tag).values())
        except (DavBenchError, etree.XMLSyntaxError) as exc:
            figures["errors"][key] = f"{type(exc).__name__}: {exc}"[:500]

    step = max(1, len(events) // 500)
    cal_hrefs = [cal + e.name for e in events[::step][:500]]
    book_hrefs = [book + name for name, _ in contacts[::max(1, len(contacts) // 500)][:500]]
    start, end = (t.strftime("%Y%m%dT%H%M%SZ") for t in month_range())
    row("propfind_cal_ms", cal, "PROPFIND", PROPFIND_ITEMS, cal)
    row("multiget_cal_ms", cal, "REPORT", multiget_body("calendar", cal_hrefs), cal,
        f"{C}calendar-data")
    row("query_month_ms", cal, "REPORT", query_body(start, end), cal, f"{C}calendar-data")
    row("propfind_card_ms", book, "PROPFIND", PROPFIND_ITEMS, book)
    row("multiget_card_ms", book, "REPORT", multiget_body("addressbook", book_hrefs), book,
        f"{CR}address-data")
    try:
        figures.update(sync_row(conn, cal, events, repeat))
    except (DavBenchError, etree.XMLSyntaxError) as exc:
        figures["errors"]["sync_10_ms"] = f"{type(exc).__name__}: {exc}"[:500]
    return figures


def sync_row(conn: Connection, cal: str, events: Sequence[Event],
             repeat: int) -> dict[str, float]:
    """Take a token, PUT 10 events again (changed), time sync-collection with the token."""
    times, counts, wrong = [], [], 0
    depth0 = {**XML, "Depth": "0"}
    for round_ in range(repeat + 1):           # round 0 is a warm-up
        _, body = timed(conn, "PROPFIND", cal, PROPFIND_TOKEN, depth0)
        token = etree.fromstring(body).findtext(f".//{D}sync-token")
        if not token:
            raise DavBenchError(f"no DAV:sync-token on {cal}: {body[:300]!r}")
        chosen = events[round_ * 10 % max(1, len(events)):][:10]
        for event in chosen:
            status, data = conn.request("PUT", cal + event.name,
                                        changed(event, round_).encode(),
                                        {"Content-Type": "text/calendar; charset=utf-8"})
            if status not in (201, 204):
                raise DavBenchError(f"PUT {event.name}: {status} {data[:300]!r}")
        elapsed, body = timed(conn, "REPORT", cal, sync_body(token), depth0)
        names = found(body, cal)
        if round_:
            times.append(elapsed)
            counts.append(sum(names.values()))
            wrong += set(names) != {e.name for e in chosen}
    return {"sync_10_ms": statistics.median(times) * 1000, "sync_10_n": min(counts),
            "sync_10_wrong": wrong}


# -- the run and its report ------------------------------------------------------------------


def start_server(name: str, work: Path) -> DavPeer:
    if name == "gateway":
        return start_ours(work)
    return start_peer(name, work)


def run(events: int = 5000, contacts: int = 5000, repeat: int = 5, connections: int = 4,
        servers: Sequence[str] = SERVERS, seconds: float = 3600.0,
        work: str | None = None, puts: int = PUTS,
        put_rest: bool = False) -> dict[str, dict[str, Any]]:
    """Figures per server; a server that fails gets ``{"error": ...}`` instead (reported).
    ``seconds`` bounds each server's load; ``puts`` events are PUT and timed, the rest
    loaded as ``load_rest`` does (all by PUT with ``put_rest``)."""
    data = make_events(events)
    cards = make_contacts(contacts)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="dav-bench-", dir=work) as tmp:
        for name in servers:
            directory = Path(tmp) / name
            directory.mkdir()
            try:
                peer = start_server(name, directory)
            except DavNotServed as exc:
                results[name] = {"error": f"DAV not served: {exc}"}
                continue
            except Exception as exc:
                results[name] = {"error": f"did not start: {exc}"}
                continue
            try:
                results[name] = measure(peer, data, cards, repeat, connections, seconds,
                                        puts, put_rest)
            except (OSError, DavBenchError, etree.XMLSyntaxError, ValueError) as exc:
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            finally:
                peer.stop()
    start, end = month_range()
    expected = {"propfind_cal_n": events, "multiget_cal_n": min(500, events),
                "query_month_n": sum(e.overlaps(start, end) for e in data),
                "sync_10_n": min(10, events), "propfind_card_n": contacts,
                "multiget_card_n": min(500, contacts)}
    results["expected"] = {key: float(value) for key, value in expected.items()}
    return results


ROWS = (
    # key, label, count checked
    ("propfind_cal_ms", "PROPFIND Depth 1, calendar of {events}", "propfind_cal_n"),
    ("multiget_cal_ms", "calendar-multiget of {mget_cal}", "multiget_cal_n"),
    ("query_month_ms", "calendar-query VEVENT, one month", "query_month_n"),
    ("sync_10_ms", "sync-collection after 10 changes", "sync_10_n"),
    ("put_1000_ms", "PUT of {puts} events, {connections} connections", None),
    ("propfind_card_ms", "PROPFIND Depth 1, address book of {contacts}", "propfind_card_n"),
    ("multiget_card_ms", "addressbook-multiget of {mget_card}", "multiget_card_n"),
)


def wrong_count(results: dict[str, dict[str, Any]], name: str, key: str) -> bool:
    """True when ``name``'s answer in row ``key`` did not have the expected resources."""
    count = dict((k, c) for k, _label, c in ROWS).get(key)
    figures = results.get(name, {})
    if count is None or key not in figures:
        return False
    return figures.get(count) != results.get("expected", {}).get(count)


def problems(results: dict[str, dict[str, Any]]) -> list[str]:
    """WARNING lines: every row a server failed, every answer with a wrong count."""
    expected = results.get("expected", {})
    lines = []
    for name in SERVERS:
        figures = results.get(name)
        if not figures or "error" in figures:
            continue
        for key, message in figures.get("errors", {}).items():
            lines.append(f"  WARNING {LABELS[name]}: {key} not measured: {message}")
        for key, _label, count in ROWS:
            if count and wrong_count(results, name, key):
                lines.append(f"  WARNING {LABELS[name]}: {key}: {figures.get(count, 0):.0f} "
                             f"right answers, expected {expected.get(count, 0):.0f}")
        if figures.get("sync_10_wrong"):
            lines.append(f"  WARNING {LABELS[name]}: sync-collection named other resources "
                         f"than the 10 changed in {figures['sync_10_wrong']:.0f} rounds")
    return lines


def report(results: dict[str, dict[str, Any]], events: int, contacts: int,
           connections: int = 4, puts: int = PUTS) -> str:
    """The table (a ``!`` marks a time whose answer was wrong), then warnings and notes."""
    sizes = {"events": events, "contacts": contacts, "mget_cal": min(500, events),
             "mget_card": min(500, contacts), "puts": min(puts, events),
             "connections": connections}
    ours = results.get("gateway", {})
    out = [f"CalDAV/CardDAV, {events} events and {contacts} contacts: median ms "
           "(ratio = peer's time / ours: > 1 means we are faster)",
           f"  {'row':48}" + "".join(f" {LABELS[n]:>10}" for n in SERVERS)
           + "".join(f" {LABELS[n] + '/ours':>14}" for n in SERVERS[1:])]
    for key, label, _count in ROWS:
        cells = []
        for name in SERVERS:
            figures = results.get(name, {})
            value = figures.get(key)
            if isinstance(value, float):
                mark = "!" if wrong_count(results, name, key) else " "
                cells.append(f" {value:9.1f}{mark}")
            else:
                cells.append(f" {'error' if key in figures.get('errors', {}) else '-':>9} ")
        for name in SERVERS[1:]:
            mine, theirs = ours.get(key), results.get(name, {}).get(key)
            both = isinstance(mine, float) and isinstance(theirs, float) and mine > 0
            cells.append(f" {theirs / mine:14.2f}" if both else f" {'-':>14}")
        out.append(f"  {label.format(**sizes):48}" + "".join(cells))
    out += problems(results)
    for name in SERVERS:
        figures = results.get(name)
        if figures is None:
            continue
        if "error" in figures:
            out.append(f"  {LABELS[name]}: not measured: {str(figures['error'])[:2000]}")
            continue
        how = "by PUT" if figures.get("load_rest_how") == "PUT" else "written to its storage"
        out.append(f"  {LABELS[name]}: PUT {figures['put_per_s']:.0f}/s (first "
                   f"{sizes['puts']}), rest of the load {figures['load_rest_s']:.1f} s "
                   f"({how}), warm-up {figures.get('warm_up_s', 0):.1f} s; "
                   f"calendar-query matched {figures.get('query_month_n', -1):.0f} (expected "
                   f"{results['expected']['query_month_n']:.0f})")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per row (median)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent PUTs")
    parser.add_argument("--puts", type=int, default=PUTS,
                        help="events PUT and timed before the rest is loaded")
    parser.add_argument("--put-rest", action="store_true",
                        help="load the rest by PUT into Radicale and Xandikos too (slow)")
    parser.add_argument("--peers-only", action="store_true",
                        help="Radicale and Xandikos only (not the gateway)")
    parser.add_argument("--only", choices=SERVERS, action="append", help="measure these")
    parser.add_argument("--seconds", type=float, default=3600.0,
                        help="time allowed for each server's load")
    parser.add_argument("--dir", help="work directory (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    servers = args.only or [n for n in SERVERS if not (args.peers_only and n == "gateway")]
    results = run(args.events, args.contacts, args.repeat, args.connections, servers,
                  args.seconds, args.dir, args.puts, args.put_rest)
    if args.json:
        params = {"events": args.events, "contacts": args.contacts, "repeat": args.repeat,
                  "connections": args.connections, "puts": args.puts,
                  "put_rest": args.put_rest}
        print(json.dumps({"params": params, **results}, indent=2, sort_keys=True))
    else:
        print(report(results, args.events, args.contacts, args.connections, args.puts))


if __name__ == "__main__":
    main()
