"""A plain DAV client for the benchmark: keep-alive ``http.client`` connections, request
bodies, concurrent PUTs, and the counting of a multistatus answer.

Kept thin on purpose (no parsing while a request is timed, no client library)
so the figures are the server's.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote, urlsplit

from lxml import etree

from tests.harness.dav_peers import DavPeer

D = "{DAV:}"
C = "{urn:ietf:params:xml:ns:caldav}"
CR = "{urn:ietf:params:xml:ns:carddav}"
XML = {"Content-Type": "application/xml; charset=utf-8"}


class DavBenchError(RuntimeError):
    """A server answered a request with an unexpected status."""


class Connection:
    """One keep-alive HTTP connection with Basic auth; reconnects once if the server closed."""

    def __init__(self, peer: DavPeer, timeout: float = 300.0) -> None:
        target = urlsplit(peer.base_url)
        self.host, self.port = target.hostname or "127.0.0.1", target.port or 80
        self.https = target.scheme == "https"
        self.context = peer.ssl_context()
        self.timeout = timeout
        self.auth = peer.authorization
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=self.context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(self, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        sent = {"Authorization": self.auth, **(headers or {})}
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body or None, headers=sent)
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.conn.close()
                    self.conn = self._connect()
                return response.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                self.conn = self._connect()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


# -- request bodies and answers --------------------------------------------------------------


def propfind_body(*props: str) -> bytes:
    inner = "".join(f"<{p}/>" for p in props)
    return (f'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:">'
            f"<D:prop>{inner}</D:prop></D:propfind>").encode()


PROPFIND_ITEMS = propfind_body("D:getetag", "D:getcontenttype", "D:resourcetype")
PROPFIND_TOKEN = propfind_body("D:sync-token")


def multiget_body(kind: str, hrefs: Sequence[str]) -> bytes:
    if kind == "calendar":
        head = ('<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
                "<D:prop><D:getetag/><C:calendar-data/></D:prop>")
        tail = "</C:calendar-multiget>"
    else:
        head = ('<CR:addressbook-multiget xmlns:D="DAV:" '
                'xmlns:CR="urn:ietf:params:xml:ns:carddav">'
                "<D:prop><D:getetag/><CR:address-data/></D:prop>")
        tail = "</CR:addressbook-multiget>"
    refs = "".join(f"<D:href>{href}</D:href>" for href in hrefs)
    return f'<?xml version="1.0" encoding="utf-8"?>{head}{refs}{tail}'.encode()


def query_body(start: str, end: str) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
            '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            f'<C:time-range start="{start}" end="{end}"/>'
            "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>").encode()


def sync_body(token: str) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
            f"<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
            "<D:prop><D:getetag/></D:prop></D:sync-collection>").encode()


def found(body: bytes, collection: str, data_tag: str | None = None) -> dict[str, bool]:
    """Member names in a multistatus (the collection itself left out) -> whether the answer
    has a 200 propstat with a getetag (and ``data_tag`` holding a BEGIN: line)."""
    root = etree.fromstring(body)
    base = unquote(urlsplit(collection).path).rstrip("/")
    names: dict[str, bool] = {}
    for response in root.iter(f"{D}response"):
        href = unquote(urlsplit(response.findtext(f"{D}href", "").strip()).path)
        if href.rstrip("/") == base:
            continue
        ok = False
        for propstat in response.iter(f"{D}propstat"):
            if " 200 " not in (propstat.findtext(f"{D}status") or ""):
                continue
            etag = propstat.find(f"{D}prop/{D}getetag")
            data = propstat.find(f"{D}prop/{data_tag}") if data_tag else None
            ok = etag is not None and bool(etag.text) and (
                data_tag is None or (data is not None and "BEGIN:" in (data.text or "")))
        names[href.rsplit("/", 1)[-1]] = ok
    return names


# -- timing and loading ------------------------------------------------------------------


def timed(conn: Connection, method: str, path: str, body: bytes, headers: dict[str, str],
          expect: int = 207) -> tuple[float, bytes]:
    started = time.perf_counter()
    status, data = conn.request(method, path, body, headers)
    elapsed = time.perf_counter() - started
    if status != expect:
        raise DavBenchError(f"{method} {path}: {status} (expected {expect}): {data[:300]!r}")
    return elapsed, data


def put_all(peer: DavPeer, collection: str, items: Sequence[tuple[str, str]], content_type: str,
            connections: int, deadline: float) -> float:
    """PUT every (name, text) into ``collection`` over ``connections`` keep-alive connections;
    the seconds it took. Stops (DavBenchError) on a refused PUT or past ``deadline``."""
    local = threading.local()
    opened: list[Connection] = []
    lock = threading.Lock()
    path = urlsplit(collection).path

    def put(item: tuple[str, str]) -> None:
        if time.monotonic() > deadline:
            raise DavBenchError("time limit reached while loading")
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = Connection(peer)
            with lock:
                opened.append(conn)
        name, text = item
        status, data = conn.request("PUT", path + name, text.encode(),
                                    {"Content-Type": content_type})
        if status not in (201, 204):
            raise DavBenchError(f"PUT {name}: {status} {data[:300]!r}")

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(connections) as pool:
            for _ in pool.map(put, items):
                pass
    finally:
        for conn in opened:
            conn.close()
    return time.perf_counter() - started
