"""HTTP authentication for plugin routes: Basic and Negotiate (Kerberos/SPNEGO).

A plugin wraps its application (plain ASGI, never ``BaseHTTPMiddleware``)::

    Mount("/EWS", app=HttpAuth(router, host, "ews"))
    Mount("/dav", app=router, middleware=[Middleware(HttpAuth, host=host, protocol="dav")])

and finds the authenticated user in ``scope["gateway.principal"]``
(:class:`gateway.auth.Principal`; ``request.scope`` in Starlette).

* No credentials, an unknown scheme or failed credentials: **401** with one
  ``WWW-Authenticate`` header per enabled scheme: ``Negotiate`` (only while
  ``[spnego] enabled``) and ``Basic realm="...", charset="UTF-8"``. The
  answer is the same whether the account exists or not.
* A malformed ``Authorization`` header (several of them, control characters
  or NUL, invalid base64, a Basic value without ``:`` or not UTF-8, a token
  over the size limit): **400**, nothing looked up.
* ``Basic`` (RFC 7617): user name and password, UTF-8, go to
  ``host.auth.authenticate`` as ``Credentials(kind="password", ...)`` with
  the plugin's protocol and the client address (after trusted proxies).
* ``Negotiate`` (RFC 4559): :class:`gateway.auth.spnego.SpnegoAcceptor`; a
  continuation leg is answered 401 with ``WWW-Authenticate: Negotiate
  <token>`` alone, success with the mutual-authentication token on the
  application's own response.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth.registry import Credentials, Principal
from gateway.auth.spnego import MAX_TOKEN, SpnegoAcceptor

if TYPE_CHECKING:
    from gateway.host import Host

log = logging.getLogger("gateway.auth.http")

SCHEMES = ("basic", "negotiate")
MAX_BASIC = 4096
"""Longest Basic credentials accepted (base64 characters)."""
MAX_NEGOTIATE = 4 * ((MAX_TOKEN + 2) // 3)
"""Longest Negotiate token accepted (base64 characters)."""
PRINCIPAL = "gateway.principal"
"""The scope key holding the authenticated :class:`~gateway.auth.Principal`."""

_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
"""Control characters, refused in a Basic user name."""


def check_schemes(value: list[str]) -> None:
    """Config check of a plugin's ``auth_schemes``: some of :data:`SCHEMES`."""
    wrong = [s for s in value if s.lower() not in SCHEMES]
    if not value or wrong:
        raise ValueError(f"must be some of {list(SCHEMES)}")


class Malformed(Exception):
    """An Authorization header that is not even well-formed (answered 400)."""


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _b64(text: str, limit: int) -> bytes:
    if not text or len(text) > limit:
        raise Malformed("empty or oversized credentials")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Malformed("invalid base64") from None


def parse_basic(param: str) -> tuple[str, bytes]:
    """``(username, password)`` from the token68 of a Basic header; raises :class:`Malformed`."""
    decoded = _b64(param, MAX_BASIC)
    user_bytes, colon, password = decoded.partition(b":")
    if not colon:
        raise Malformed("Basic credentials without ':'")
    try:
        username = user_bytes.decode("utf-8")
        password.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("Basic credentials are not UTF-8") from None
    if CONTROL.search(username) or b"\x00" in password:
        raise Malformed("control characters in Basic credentials")
    return username, password


class HttpAuth:
    """ASGI middleware letting only authenticated requests through to ``app``."""

    def __init__(
        self, app: ASGIApp, host: Host, protocol: str,
        schemes: Sequence[str] = SCHEMES, realm: str = "Groupware gateway",
    ):
        wanted = [s.lower() for s in schemes]
        unknown = set(wanted) - set(SCHEMES)
        if not wanted or unknown:
            raise ValueError(f"HttpAuth schemes must be some of {SCHEMES}, got {list(schemes)}")
        self.app = app
        self.host = host
        self.protocol = protocol
        self.schemes = tuple(wanted)
        self.realm = realm
        self.spnego = SpnegoAcceptor(host) if "negotiate" in wanted else None
        self._basic_challenge = f"Basic realm={_quote(realm)}, charset=\"UTF-8\"".encode()

    # -- what is offered ------------------------------------------------------

    def _negotiate_on(self) -> bool:
        return self.spnego is not None and self.spnego.enabled

    def challenges(self) -> list[tuple[bytes, bytes]]:
        """One ``WWW-Authenticate`` header per scheme enabled now."""
        headers = []
        if self._negotiate_on():
            headers.append((b"www-authenticate", b"Negotiate"))
        if "basic" in self.schemes:
            headers.append((b"www-authenticate", self._basic_challenge))
        return headers

    # -- the middleware -------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope["headers"] if k == b"authorization"]
        if not values:
            await self._deny(scope, send, 401, self.challenges())
            return
        client = scope.get("client")
        address = client[0] if client else "-"
        try:
            if len(values) > 1:
                raise Malformed("several Authorization headers")
            scheme, param = self._split(values[0])
            if scheme == "basic" and "basic" in self.schemes:
                username, password = parse_basic(param)
                await self._basic(scope, receive, send, address, username, password)
                return
            if scheme == "negotiate" and self._negotiate_on():
                token = _b64(param, MAX_NEGOTIATE)
                await self._negotiate(scope, receive, send, address, token)
                return
        except Malformed as exc:
            log.info("bad Authorization header from %s (%s): %s", address, self.protocol, exc)
            await self._deny(scope, send, 400, [])
            return
        log.debug("Authorization scheme %r not offered here (%s)", scheme, self.protocol)
        await self._deny(scope, send, 401, self.challenges())

    @staticmethod
    def _split(raw: bytes) -> tuple[str, str]:
        if len(raw) > MAX_NEGOTIATE + 64:
            raise Malformed(f"Authorization header of {len(raw)} bytes")
        if _CONTROL.search(raw):
            raise Malformed("control characters in the Authorization header")
        text = raw.decode("latin-1").strip(" \t")
        scheme, _, param = text.partition(" ")
        return scheme.lower(), param.strip(" \t")

    async def _basic(self, scope: Scope, receive: Receive, send: Send, address: str,
                     username: str, password: bytes) -> None:
        if not username:
            await self._deny(scope, send, 401, self.challenges())
            return
        result = await self.host.auth.authenticate(Credentials(
            kind="password", protocol=self.protocol, client=address,
            username=username, secret=password))
        if result.principal is None:
            await self._deny(scope, send, 401, self.challenges())
            return
        await self._pass(scope, receive, send, result.principal, None)

    async def _negotiate(self, scope: Scope, receive: Receive, send: Send, address: str,
                         token: bytes) -> None:
        assert self.spnego is not None
        outcome = await self.spnego.accept(
            token, connection=self._connection(scope), protocol=self.protocol, client=address)
        if outcome.status == "continue" and outcome.token and scope["type"] == "http":
            header = b"Negotiate " + base64.b64encode(outcome.token)
            await self._deny(scope, send, 401, [(b"www-authenticate", header)])
            return
        if outcome.status != "ok" or outcome.principal is None:
            await self._deny(scope, send, 401, self.challenges())
            return
        mutual = None
        if outcome.token:
            mutual = (b"www-authenticate", b"Negotiate " + base64.b64encode(outcome.token))
        await self._pass(scope, receive, send, outcome.principal, mutual)

    @staticmethod
    def _connection(scope: Scope) -> Hashable | None:
        """What identifies the client connection; ``None`` behind a proxy (port unknown)."""
        client = scope.get("client")
        if scope.get("gateway.trusted_proxy") or not client or not client[1]:
            return None
        server = scope.get("server")
        return (tuple(server) if server else None, client[0], client[1])

    async def _pass(self, scope: Scope, receive: Receive, send: Send, principal: Principal,
                    header: tuple[bytes, bytes] | None) -> None:
        scope[PRINCIPAL] = principal
        if header is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_token(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_token)

    @staticmethod
    async def _deny(scope: Scope, send: Send, status: int,
                    headers: list[tuple[bytes, bytes]]) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = b"Unauthorized\n" if status == 401 else b"Bad Request: malformed Authorization\n"
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ]})
        await send({"type": "http.response.body", "body": body})
