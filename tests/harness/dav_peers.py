"""Throwaway Radicale and Xandikos servers: the CalDAV/CardDAV peers we compare against.

``start_radicale(workdir)`` runs ``radicale`` from the venv with its own
config file (no system or user config read): HTTP on a free 127.0.0.1 port,
htpasswd authentication with a plaintext password, filesystem storage in
``workdir``, ``owner_only`` rights, no web interface. Its calendar
``/<user>/calendar/`` and address book ``/<user>/contacts/`` are made with
MKCALENDAR and an extended MKCOL (RFC 5689).

``start_xandikos(workdir)`` runs ``xandikos serve --defaults`` (which makes
``/user/calendars/calendar/`` and ``/user/contacts/addressbook/``) on a
free 127.0.0.1 port. Xandikos accepts Basic authentication only over TLS
(``--htpasswd`` requires ``--autocert``), so by default it runs over plain
HTTP without authentication: the user and password a ``DavPeer`` carries are
then sent and ignored. ``start_xandikos(workdir, tls_auth=True)`` serves
HTTPS with a self-signed certificate (``DavPeer.ca_file``) and checks the
password against an htpasswd file (``{SHA}`` entry).

``store_items(peer, collection_url, items)`` writes items straight into a
peer's own storage, as its PUT would leave them (for loading thousands fast):
Radicale's filesystem storage gets one file per item, serialized by
Radicale's item code, in the collection's folder (under its storage lock, its
item cache for those names dropped); Xandikos's collection repository gets the
items normalized by its file handlers and committed in one git commit. The
running server serves them from its next request on (the first request reads
and caches them: it is the caller's to make that request before timing).

Both are stopped with SIGTERM (SIGKILL after a timeout) by ``DavPeer.stop()``.
The fixtures ``radicale_server``, ``xandikos_server`` and ``dav_peer``
(parametrized over both) start one for a test and stop it afterwards; a test
is skipped only when the server's executable is missing.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.harness.daemons import start_daemon, start_with_port_retry, stop_daemon
from tests.harness.ports import LOCALHOST, free_port

START_TIMEOUT = 30.0
USER = "alice@example.org"
PASSWORD = "alice-dav-secret"
XANDIKOS_USER = "user"           # the principal ``xandikos serve`` makes: /user/
RADICALE_MAX_RRULE_OCCURRENCES = 10000   # Radicale's default [server] max_vevent_rrule_occurrence

MKCALENDAR_BODY = b"""<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop>
    <D:displayname>Calendar</D:displayname>
    <C:supported-calendar-component-set><C:comp name="VEVENT"/><C:comp name="VTODO"/>
    </C:supported-calendar-component-set>
  </D:prop></D:set>
</C:mkcalendar>"""

MKCOL_ADDRESSBOOK_BODY = b"""<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">
  <D:set><D:prop>
    <D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>
    <D:displayname>Contacts</D:displayname>
  </D:prop></D:set>
</D:mkcol>"""

PROPFIND_RESOURCETYPE = b"""<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/></D:prop></D:propfind>"""


class DavPeerMissing(RuntimeError):
    """The server's executable is not installed in the venv."""


@dataclass
class DavPeer:
    """One running DAV server and where to reach it.

    ``base_url`` ends without a slash; ``calendar_url`` and ``addressbook_url``
    are absolute URLs of existing collections, ending with a slash.
    """

    name: str
    proc: subprocess.Popen[bytes]
    root: Path
    log_path: Path
    base_url: str
    user: str
    password: str
    calendar_url: str
    addressbook_url: str
    principal_url: str
    ca_file: Path | None = None      # the self-signed certificate when served over TLS
    checks_password: bool = True     # False: Xandikos over plain HTTP ignores the credentials

    @property
    def auth(self) -> tuple[str, str]:
        """``(user, password)`` for httpx/requests/caldav clients."""
        return self.user, self.password

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value (Basic)."""
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """A context trusting this server's self-signed certificate (None over plain HTTP).

        Xandikos writes the certificate for the name ``127.0.0.1`` as a DNS name, which
        does not match an IP address, so the host name is not checked; the certificate is.
        """
        if self.ca_file is None:
            return None
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.check_hostname = False
        return context

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_daemon(self.proc)


# -- plain HTTP requests (no client library in the way) -------------------------------------


def dav_request(peer_url: str, method: str, url: str, body: bytes = b"", *,
                headers: dict[str, str] | None = None, authorization: str | None = None,
                context: ssl.SSLContext | None = None,
                timeout: float = 30.0) -> tuple[int, bytes]:
    """Send one request to ``url`` (absolute, or a path on ``peer_url``); (status, body)."""
    target = urlsplit(url if "://" in url else peer_url + url)
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = http.client.HTTPSConnection(target.hostname or LOCALHOST, target.port,
                                                 timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(target.hostname or LOCALHOST, target.port,
                                                timeout=timeout)
    sent = {"Content-Type": "application/xml; charset=utf-8"} if body else {}
    if authorization:
        sent["Authorization"] = authorization
    sent.update(headers or {})
    try:
        connection.request(method, target.path or "/", body=body, headers=sent)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def ensure_collection(peer: DavPeer, url: str, kind: str) -> None:
    """Make the calendar (``kind="calendar"``) or address book at ``url`` unless it exists."""
    context = peer.ssl_context()
    status, _ = dav_request(peer.base_url, "PROPFIND", url, PROPFIND_RESOURCETYPE,
                            headers={"Depth": "0"}, authorization=peer.authorization,
                            context=context)
    if status == 207:
        return
    if kind == "calendar":
        status, body = dav_request(peer.base_url, "MKCALENDAR", url, MKCALENDAR_BODY,
                                   authorization=peer.authorization, context=context)
    else:
        status, body = dav_request(peer.base_url, "MKCOL", url, MKCOL_ADDRESSBOOK_BODY,
                                   authorization=peer.authorization, context=context)
    if status not in (201, 405):   # 405: it was made meanwhile
        raise RuntimeError(f"{peer.name}: could not create {kind} {url}: {status} "
                           f"{body[:500]!r}")


def answers_http(base_url: str, context: ssl.SSLContext | None = None) -> bool:
    """True when anything answers an HTTP OPTIONS on ``base_url`` (any status)."""
    status, _ = dav_request(base_url, "OPTIONS", "/", context=context, timeout=2.0)
    return status > 0


# -- Radicale --------------------------------------------------------------------------------


def venv_binary(name: str) -> str:
    """The executable ``name`` beside this Python (the project's venv), or on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise DavPeerMissing(f"{name} not found: it is a test dependency in pyproject.toml")
    return found


def peer_env() -> dict[str, str]:
    """The environment for a peer: no RADICALE_CONFIG, no proxy, no user data dirs."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("RADICALE") and "proxy" not in key.lower()}
    return env


def write_radicale_config(root: Path, port: int, user: str, password: str) -> Path:
    (root / "collections").mkdir(parents=True, exist_ok=True)
    users = root / "users"
    users.write_text(f"{user}:{password}\n")
    users.chmod(0o600)
    config = root / "radicale.conf"
    config.write_text(f"""# Written by tests/harness/dav_peers.py
[server]
hosts = {LOCALHOST}:{port}
max_connections = 64

[auth]
type = htpasswd
htpasswd_filename = {users}
htpasswd_encryption = plain
delay = 0

[rights]
type = owner_only

[storage]
filesystem_folder = {root / "collections"}

[web]
type = none

[logging]
level = warning
mask_passwords = True
""")
    return config


def start_radicale(workdir: Path, *, user: str = USER, password: str = PASSWORD,
                   timeout: float = START_TIMEOUT) -> DavPeer:
    """Start a private Radicale in ``workdir/radicale`` with a calendar and an address book."""
    binary = venv_binary("radicale")
    root = workdir / "radicale"
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "radicale.log"

    def launch(port: int) -> subprocess.Popen[bytes]:
        config = write_radicale_config(root, port, user, password)
        return start_daemon([binary, "--config", str(config)], name="radicale",
                            log_path=log_path, timeout=timeout, env=peer_env(), cwd=root,
                            ready=lambda: answers_http(f"http://{LOCALHOST}:{port}"))

    proc, port = start_with_port_retry(launch, free_port)
    base = f"http://{LOCALHOST}:{port}"
    peer = DavPeer("radicale", proc, root, log_path, base, user, password,
                   calendar_url=f"{base}/{user}/calendar/",
                   addressbook_url=f"{base}/{user}/contacts/",
                   principal_url=f"{base}/{user}/")
    try:
        ensure_collection(peer, peer.calendar_url, "calendar")
        ensure_collection(peer, peer.addressbook_url, "addressbook")
    except BaseException:
        peer.stop()
        raise
    return peer


# -- Xandikos --------------------------------------------------------------------------------


def start_xandikos(workdir: Path, *, tls_auth: bool = False, password: str = PASSWORD,
                   timeout: float = START_TIMEOUT) -> DavPeer:
    """Start a private Xandikos in ``workdir/xandikos`` (``--defaults``: one calendar and one
    address book); with ``tls_auth`` over HTTPS with Basic authentication."""
    binary = venv_binary("xandikos")
    root = workdir / "xandikos"
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "state").mkdir(parents=True, exist_ok=True)
    log_path = root / "xandikos.log"
    scheme = "https" if tls_auth else "http"
    extra: list[str] = []
    if tls_auth:
        digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
        users = root / "htpasswd"
        users.write_text(f"{XANDIKOS_USER}:{{SHA}}{digest}\n")
        users.chmod(0o600)
        extra = ["--autocert", "--htpasswd", str(users)]
    ca_file = root / "state" / "certs" / "selfsigned.crt"

    def ready(port: int) -> bool:
        context = None
        if tls_auth:
            if not ca_file.exists():
                return False
            context = ssl.create_default_context(cafile=str(ca_file))
            context.check_hostname = False
        return answers_http(f"{scheme}://{LOCALHOST}:{port}", context)

    def launch(port: int) -> subprocess.Popen[bytes]:
        args = [binary, "serve", "--directory", str(root / "data"), "--defaults",
                "--listen-address", LOCALHOST, "--port", str(port),
                "--state-dir", str(root / "state"), "--no-detect-systemd", *extra]
        env = peer_env()
        env["XDG_DATA_HOME"] = str(root / "state")
        return start_daemon(args, name="xandikos", log_path=log_path, timeout=timeout,
                            env=env, cwd=root, ready=lambda: ready(port))

    proc, port = start_with_port_retry(launch, free_port)
    base = f"{scheme}://{LOCALHOST}:{port}"
    peer = DavPeer("xandikos", proc, root, log_path, base, XANDIKOS_USER, password,
                   calendar_url=f"{base}/{XANDIKOS_USER}/calendars/calendar/",
                   addressbook_url=f"{base}/{XANDIKOS_USER}/contacts/addressbook/",
                   principal_url=f"{base}/{XANDIKOS_USER}/",
                   ca_file=ca_file if tls_auth else None, checks_password=tls_auth)
    try:
        ensure_collection(peer, peer.calendar_url, "calendar")
        ensure_collection(peer, peer.addressbook_url, "addressbook")
    except BaseException:
        peer.stop()
        raise
    return peer


# -- loading items straight into a peer's storage --------------------------------------------
#
# A PUT makes Radicale and Xandikos slower the fuller a collection is (Radicale reads every
# item to look for a UID clash, Xandikos writes the whole git index and a commit per item), so a
# large data set is written into their storage in one go instead, in the very form a PUT
# leaves behind, while the server runs: it serves the items from its next request on.


def collection_directory(peer: DavPeer, collection_url: str) -> Path:
    """Where the peer keeps the collection at ``collection_url`` on disk."""
    parts = [unquote(part) for part in urlsplit(collection_url).path.split("/") if part]
    if any(part in (".", "..") or part.startswith(".") for part in parts):
        raise ValueError(f"not a collection path: {collection_url}")
    if peer.name == "radicale":
        # [storage] filesystem_folder, then Radicale's "collection-root" for the URL space
        return peer.root.joinpath("collections", "collection-root", *parts)
    if peer.name == "xandikos":
        return peer.root.joinpath("data", *parts)     # serve --directory
    raise ValueError(f"no storage layout known for {peer.name}")


def radicale_item_text(text: str, tag: str) -> str:
    """What Radicale writes for ``text`` on a PUT: read, checked and serialized by its own
    item code (a broken item raises here, as its PUT would refuse it)."""
    from radicale import item as radicale_item

    components = radicale_item.read_components(text)
    radicale_item.check_and_sanitize_items(
        components, max_vevent_rrule_occurrence=RADICALE_MAX_RRULE_OCCURRENCES, tag=tag)
    component, = components
    return radicale_item.Item(collection_path="bulk", vobject_item=component).serialize()


def store_radicale(peer: DavPeer, collection_url: str,
                   items: Sequence[tuple[str, str]]) -> None:
    """One file per item, named as its URL, in the collection's folder (filesystem storage),
    under Radicale's exclusive storage lock; any item cache entry of those names is dropped
    (Radicale rebuilds its cache, and the sync history, on the next request)."""
    folder = collection_directory(peer, collection_url)
    props = json.loads((folder / ".Radicale.props").read_text(encoding="utf-8"))
    tag = props.get("tag")
    if tag not in ("VCALENDAR", "VADDRESSBOOK"):
        raise ValueError(f"{collection_url} is not a Radicale calendar or address book: {props}")
    texts = [(checked_name(name), radicale_item_text(text, tag)) for name, text in items]
    item_cache = folder / ".Radicale.cache" / "item"
    with open(peer.root / "collections" / ".Radicale.lock", "w+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)       # what Radicale takes for a write
        for name, text in texts:
            partial = folder / f".Radicale.tmp-bulk-{name}"
            partial.write_bytes(text.encode("utf-8"))
            os.replace(partial, folder / name)
            (item_cache / name).unlink(missing_ok=True)


def store_xandikos(peer: DavPeer, collection_url: str,
                   items: Sequence[tuple[str, str]]) -> None:
    """The items in the collection's git repository as Xandikos stores a PUT (its own file
    handlers check and normalize them), staged and committed together in one commit."""
    from xandikos.icalendar import ICalendarFile
    from xandikos.store import open_by_extension
    from xandikos.store.git import GitStore
    from xandikos.vcard import VCardFile

    folder = collection_directory(peer, collection_url)
    store = GitStore.open_from_path(str(folder))
    try:
        store.load_extra_file_handler(ICalendarFile)
        store.load_extra_file_handler(VCardFile)
        names = []
        for name, text in items:
            name = checked_name(name)
            handled = open_by_extension([text.encode("utf-8")], name, store.extra_file_handlers)
            handled.validate()
            (folder / name).write_bytes(b"".join(handled.normalized()))
            names.append(name)
        if names:
            worktree = store.repo.get_worktree()
            worktree.stage(names)
            worktree.commit(message=f"Benchmark load: {len(names)} items".encode())
    finally:
        store.repo.close()


def checked_name(name: str) -> str:
    """``name`` when it is a plain file name (no folder, not hidden), else ValueError."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"not an item name: {name!r}")
    return name


def store_items(peer: DavPeer, collection_url: str, items: Sequence[tuple[str, str]]) -> None:
    """Put (name, text) items into the collection at ``collection_url`` through the peer's
    own storage rather than HTTP (Radicale or Xandikos, running or not)."""
    storers = {"radicale": store_radicale, "xandikos": store_xandikos}
    if peer.name not in storers:
        raise ValueError(f"no direct storage for {peer.name}")
    storers[peer.name](peer, collection_url, items)


STARTERS = {"radicale": start_radicale, "xandikos": start_xandikos}


def start_peer(name: str, workdir: Path) -> DavPeer:
    """Start the peer called ``name`` ("radicale" or "xandikos") with its defaults."""
    return STARTERS[name](workdir)


# -- fixtures --------------------------------------------------------------------------------


def _running(name: str, workdir: Path) -> Iterator[DavPeer]:
    try:
        peer = start_peer(name, workdir)
    except DavPeerMissing as exc:
        pytest.skip(str(exc))
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def radicale_server(tmp_path: Path) -> Iterator[DavPeer]:
    """A throwaway Radicale with a calendar and an address book (Basic auth, HTTP)."""
    yield from _running("radicale", tmp_path)


@pytest.fixture
def xandikos_server(tmp_path: Path) -> Iterator[DavPeer]:
    """A throwaway Xandikos with a calendar and an address book (HTTP, no auth)."""
    yield from _running("xandikos", tmp_path)


@pytest.fixture(params=sorted(STARTERS))
def dav_peer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DavPeer]:
    """Each peer in turn (the test runs once against Radicale, once against Xandikos)."""
    yield from _running(request.param, tmp_path)
