"""Plain ASGI middleware of the host.

Deliberately not ``BaseHTTPMiddleware``: that one buffers and re-wraps the
response stream, which breaks long polls (EAS Ping, MAPI NotificationWait)
and streamed bodies. Each class here passes messages straight through.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import time
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.net.proxy import is_trusted

if TYPE_CHECKING:
    from gateway.accesslog import AccessLog
    from gateway.metrics import Metrics

error_log = logging.getLogger("gateway.http")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def _send_plain(send: Send, status: int, text: str, extra: list | None = None) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"),
               (b"content-length", str(len(body)).encode())] + (extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ProxyHeadersMiddleware:
    """Believe X-Forwarded-For/-Proto only when the peer is a trusted proxy.

    The client is the right-most X-Forwarded-For entry that is not itself a
    trusted proxy (left-most entries are whatever the client claimed).
    """

    def __init__(self, app: ASGIApp, trusted: list[str]):
        self.app = app
        self.trusted = list(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted:
            client = scope.get("client")
            if client and is_trusted(client[0], self.trusted):
                scope["gateway.trusted_proxy"] = True
                self._rewrite(scope)
        await self.app(scope, receive, send)

    def _rewrite(self, scope: Scope) -> None:
        forwarded = _header(scope, b"x-forwarded-for")
        if forwarded:
            hops = [h.strip() for h in forwarded.decode("latin-1").split(",") if h.strip()]
            if hops:
                untrusted = (h for h in reversed(hops) if not is_trusted(h, self.trusted))
                scope["client"] = (next(untrusted, hops[0]), 0)
        proto = _header(scope, b"x-forwarded-proto")
        if proto:
            proto_text = proto.decode("latin-1").strip().lower()
            if proto_text in ("http", "https"):
                if scope["type"] == "websocket":
                    proto_text = "wss" if proto_text == "https" else "ws"
                scope["scheme"] = proto_text


class RequestMiddleware:
    """Request id, access log, metrics, and a clean 500 when a plugin crashes."""

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: AccessLog | None):
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = _header(scope, b"x-request-id") if scope.get("gateway.trusted_proxy") else None
        if incoming and REQUEST_ID.match(incoming.decode("latin-1")):
            request_id = incoming.decode("latin-1")
        else:
            # An identifier for logs, not a secret: no system call per request.
            request_id = f"{random.getrandbits(64):016x}"
        scope["gateway.request_id"] = request_id
        rid_header = (b"x-request-id", request_id.encode())
        state = {"status": 0, "bytes": 0}
        in_flight = self.metrics.in_flight(_listener(scope))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        except ClientDisconnect:
            error_log.info("client went away during %s %s (request id %s)",
                           scope["method"], scope["path"], request_id)
        except Exception:
            error_log.exception("request %s %s failed (request id %s)",
                                scope["method"], scope["path"], request_id)
            if not state["status"]:
                state["status"] = 500
                await _send_plain(send, 500, f"Internal Server Error (request id {request_id})\n",
                                  [rid_header])
        finally:
            in_flight.dec()
            elapsed = time.perf_counter() - started
            plugin = scope.get("gateway.plugin", "-")
            status = state["status"] or 499  # the client went away before an answer
            self.metrics.observe_request(plugin, scope["method"], status, elapsed)
            if self.access_log is not None:
                client = scope.get("client") or ("-", 0)
                self.access_log.write(
                    f'{client[0]} "{scope["method"]} {scope["path"]} '
                    f'HTTP/{scope.get("http_version", "1.1")}" {status} {state["bytes"]} '
                    f"{elapsed * 1000:.1f}ms plugin={plugin} rid={request_id}"
                )


def _listener(scope: Scope) -> str:
    server = scope.get("server")
    port = server[1] if server else 0
    return f"{scope.get('scheme', 'http')}:{port}"


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a streamed body passes the limit."""


DRAIN_LIMIT = 1024 * 1024
"""Most request-body bytes read and dropped to answer a request early (see below)."""


class LimitsMiddleware:
    """Refuse request heads over ``max_header_bytes`` (431) and bodies over ``limit`` (413).

    hypercorn bounds only a head that arrives in pieces (h11 checks its
    buffer while an event is incomplete); a head that arrives in one read
    passes whatever its size, so the total is checked here as well.
    """

    def __init__(self, app: ASGIApp, limit: int, max_header_bytes: int):
        self.app = app
        self.limit = limit
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = len(scope["raw_path"] if scope.get("raw_path") else scope["path"])
        head += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if head > self.max_header_bytes:
            await _send_plain(send, 431, "Request Header Fields Too Large\n",
                              [(b"connection", b"close")])
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _send_plain(send, 400, "Bad Request: invalid Content-Length\n")
                return
            if length > self.limit:
                await _send_plain(send, 413, f"Request body larger than {self.limit} bytes\n",
                                  [(b"connection", b"close")])
                return
        received = 0
        started = False
        # An answer given before the body was read (a 401, 405 or 403 from a plugin) first
        # reads the rest of a small body: hypercorn 0.18 drops the whole HTTP/2 connection
        # when a stream is answered while its data still arrives (KeyError in h2.py), and
        # over TLS closing with unread data logs an ssl error as a failed request. A client
        # waiting for "100 Continue" has sent nothing, so nothing is read for it.
        body_done = declared is not None and declared.strip() == b"0"
        may_drain = _header(scope, b"expect") is None

        async def counting_receive() -> Message:
            nonlocal received, body_done
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if not message.get("more_body", False):
                    body_done = True
                if received > self.limit:
                    raise BodyTooLarge()
            elif message["type"] == "http.disconnect":
                body_done = True
            return message

        async def drain() -> None:
            while not body_done and received <= DRAIN_LIMIT:
                await counting_receive()

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if may_drain and not body_done:
                    with contextlib.suppress(BodyTooLarge, ClientDisconnect, OSError):
                        await drain()
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_plain(send, 413, f"Request body larger than {self.limit} bytes\n",
                                  [(b"connection", b"close")])
