"""HttpAuth (Basic/Negotiate middleware) and the SPNEGO acceptor's pure parts, in-process.

The real Kerberos exchanges run in tests/integration/test_auth_spnego.py.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.auth import AuthRegistry, AuthResult, Credentials, Principal
from gateway.auth import spnego as spnego_module
from gateway.auth.http import MAX_NEGOTIATE, PRINCIPAL, HttpAuth, Malformed, parse_basic
from gateway.auth.spnego import (
    SpnegoAcceptor,
    SpnegoMechanism,
    SpnegoOutcome,
    SpnegoSection,
    explain,
    map_principal,
)
from gateway.config import ConfigError, build_config, read_layers
from gateway.directory.types import LoginLookup, User

# --------------------------------------------------------------------------
# A host that is just enough for HttpAuth
# --------------------------------------------------------------------------


class Passwords:
    """A password mechanism: alice@example.org / "pässword", and "jörg" / "s3cret"."""

    name = "test-passwords"
    kinds = frozenset({"password"})
    USERS = {"alice@example.org": "pässword".encode(), "jörg": b"s3cret"}

    def __init__(self) -> None:
        self.calls: list[Credentials] = []

    async def authenticate(self, credentials: Credentials) -> AuthResult:
        self.calls.append(credentials)
        if self.USERS.get(credentials.username) == credentials.secret:
            return AuthResult(Principal(credentials.username, self.name))
        return AuthResult(reason="no such user" if credentials.username not in self.USERS
                          else "wrong password")


@dataclass
class FakeConfig:
    spnego: SpnegoSection = field(default_factory=SpnegoSection)


class FakeHost:
    def __init__(self, **spnego: Any) -> None:
        self.config = FakeConfig(SpnegoSection(**spnego))
        self.auth = AuthRegistry()
        self.passwords = Passwords()
        self.auth.add([self.passwords], "test")
        self.directory: Any = None


async def whoami(scope: dict, receive: Any, send: Any) -> None:
    principal = scope.get(PRINCIPAL)
    body = f"user={principal.username if principal else '-'}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    messages: list[dict]

    def header_values(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k == name]


async def call(app: Any, headers: list[tuple[bytes, bytes]] = (), *,  # type: ignore[assignment]
               type_: str = "http", client: tuple[str, int] = ("192.0.2.7", 40000),
               **extra: Any) -> Answer:
    scope = {"type": type_, "method": "GET", "path": "/", "raw_path": b"/",
             "headers": list(headers), "client": client, "server": ("127.0.0.1", 8080),
             "scheme": "http", "http_version": "1.1", **extra}
    messages: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    if start is None:
        return Answer(0, [], body, messages)
    return Answer(start["status"], list(start["headers"]), body, messages)


def basic(user: str | bytes, password: str | bytes) -> tuple[bytes, bytes]:
    raw = (user if isinstance(user, bytes) else user.encode()) + b":" + (
        password if isinstance(password, bytes) else password.encode())
    return (b"authorization", b"Basic " + base64.b64encode(raw))


# --------------------------------------------------------------------------
# Challenges and Basic
# --------------------------------------------------------------------------


async def test_no_credentials_gets_a_basic_challenge_when_spnego_is_off() -> None:
    answer = await call(HttpAuth(whoami, FakeHost(), "ews"))
    assert answer.status == 401
    assert answer.header_values(b"www-authenticate") == [
        b'Basic realm="Groupware gateway", charset="UTF-8"']


async def test_negotiate_is_offered_first_when_spnego_is_on() -> None:
    app = HttpAuth(whoami, FakeHost(enabled=True), "ews", realm='My "mail"')
    answer = await call(app)
    assert answer.status == 401
    assert answer.header_values(b"www-authenticate") == [
        b"Negotiate", b'Basic realm="My \\"mail\\"", charset="UTF-8"']


async def test_schemes_select_the_challenges() -> None:
    host = FakeHost(enabled=True)
    only_negotiate = await call(HttpAuth(whoami, host, "ews", schemes=["negotiate"]))
    assert only_negotiate.header_values(b"www-authenticate") == [b"Negotiate"]
    only_basic = await call(HttpAuth(whoami, host, "ews", schemes=["Basic"]))
    assert [v[:5] for v in only_basic.header_values(b"www-authenticate")] == [b"Basic"]
    with pytest.raises(ValueError, match="schemes"):
        HttpAuth(whoami, host, "ews", schemes=["digest"])
    with pytest.raises(ValueError, match="schemes"):
        HttpAuth(whoami, host, "ews", schemes=[])


async def test_basic_success_sets_the_principal_and_passes_protocol_and_client() -> None:
    host = FakeHost()
    answer = await call(HttpAuth(whoami, host, "dav"), [basic("alice@example.org", "pässword")])
    assert answer.status == 200 and answer.body == b"user=alice@example.org"
    (credentials,) = host.passwords.calls
    assert credentials.kind == "password" and credentials.protocol == "dav"
    assert credentials.client == "192.0.2.7" and credentials.secret == "pässword".encode()


async def test_basic_scheme_is_case_insensitive_and_utf8() -> None:
    header = basic("jörg", "s3cret")
    answer = await call(HttpAuth(whoami, FakeHost(), "ews"),
                        [(b"authorization", b"bAsIc   " + header[1][6:] + b"  ")])
    assert answer.status == 200 and answer.body == "user=jörg".encode()


async def test_password_with_colons_is_kept_whole() -> None:
    host = FakeHost()
    await call(HttpAuth(whoami, host, "ews"), [basic("bob", "a:b:c")])
    assert host.passwords.calls[0].secret == b"a:b:c"


async def test_wrong_password_and_unknown_user_answer_alike() -> None:
    app = HttpAuth(whoami, FakeHost(enabled=True), "ews")
    wrong = await call(app, [basic("alice@example.org", "nope")])
    unknown = await call(app, [basic("nobody@example.org", "nope")])
    assert wrong.status == unknown.status == 401
    assert wrong.headers == unknown.headers and wrong.body == unknown.body


async def test_empty_user_name_is_refused_without_a_lookup() -> None:
    host = FakeHost()
    answer = await call(HttpAuth(whoami, host, "ews"), [basic("", "x")])
    assert answer.status == 401 and host.passwords.calls == []


# --------------------------------------------------------------------------
# Hostile headers
# --------------------------------------------------------------------------

B64 = base64.b64encode

HOSTILE_400 = {
    "basic without credentials": b"Basic",
    "basic with blanks only": b"Basic    ",
    "invalid base64": b"Basic %%%%",
    "base64 with a space inside": b"Basic YWxp Y2U6eA==",
    "bad padding": b"Basic YWxpY2U6eA",
    "no colon": b"Basic " + B64(b"alice"),
    "invalid utf-8": b"Basic " + B64(b"\xff\xfe:\xff"),
    "nul in user name": b"Basic " + B64(b"alice\x00@example.org:x"),
    "nul in password": b"Basic " + B64(b"alice@example.org:pa\x00ss"),
    "newline in user name": b"Basic " + B64(b"ali\nce:x"),
    "nul in the header": b"Basic \x00" + B64(b"a:b"),
    "control character in the header": b"Basic \x1b" + B64(b"a:b"),
    "huge basic": b"Basic " + B64(b"a:" + b"x" * 10000),
    "huge header": b"Negotiate " + b"A" * (MAX_NEGOTIATE + 100),
}


@pytest.mark.parametrize("value", HOSTILE_400.values(), ids=HOSTILE_400.keys())
async def test_malformed_authorization_is_400_without_lookup(value: bytes) -> None:
    host = FakeHost(enabled=True)
    answer = await call(HttpAuth(whoami, host, "ews"), [(b"authorization", value)])
    assert answer.status == 400 and host.passwords.calls == []
    assert b"alice" not in answer.body and b"Traceback" not in answer.body


HOSTILE_401 = {
    "unknown scheme": b"Bearer abc.def",
    "digest": b'Digest username="alice", realm="x"',
    "scheme only": b"Bearer",
    "empty": b"",
    "negotiate while spnego is off": b"Negotiate " + B64(b"\x60\x00"),
    "unicode look-alike user": b"Basic " + B64("\u0430lice@example.org:pässword".encode()),
}


@pytest.mark.parametrize("value", HOSTILE_401.values(), ids=HOSTILE_401.keys())
async def test_unusable_credentials_are_401_with_challenges(value: bytes) -> None:
    answer = await call(HttpAuth(whoami, FakeHost(), "ews"), [(b"authorization", value)])
    assert answer.status == 401
    assert answer.header_values(b"www-authenticate")


async def test_several_authorization_headers_are_400() -> None:
    answer = await call(HttpAuth(whoami, FakeHost(), "ews"),
                        [basic("alice@example.org", "pässword"), basic("jörg", "s3cret")])
    assert answer.status == 400


def test_parse_basic() -> None:
    assert parse_basic(B64(b"a:b:c").decode()) == ("a", b"b:c")
    assert parse_basic(B64(b"a:").decode()) == ("a", b"")
    with pytest.raises(Malformed):
        parse_basic("")


async def test_websocket_without_credentials_is_closed() -> None:
    answer = await call(HttpAuth(whoami, FakeHost(), "ews"), type_="websocket")
    assert answer.messages == [{"type": "websocket.close", "code": 1008}]


async def test_lifespan_passes_through() -> None:
    seen = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await HttpAuth(app, FakeHost(), "ews")({"type": "lifespan"}, None, None)
    assert seen == ["lifespan"]


# --------------------------------------------------------------------------
# Negotiate through the middleware (acceptor outcomes stubbed)
# --------------------------------------------------------------------------


class StubAcceptor:
    def __init__(self, outcome: SpnegoOutcome) -> None:
        self.outcome = outcome
        self.enabled = True
        self.calls: list[dict] = []

    async def accept(self, token: bytes, **kwargs: Any) -> SpnegoOutcome:
        self.calls.append({"token": token, **kwargs})
        return self.outcome


def negotiate(token: bytes) -> tuple[bytes, bytes]:
    return (b"authorization", b"Negotiate " + B64(token))


async def test_negotiate_success_returns_the_mutual_token() -> None:
    app = HttpAuth(whoami, FakeHost(enabled=True), "ews")
    stub = StubAcceptor(SpnegoOutcome("ok", Principal("alice@example.org", "spnego"), b"xyz"))
    app.spnego = stub  # type: ignore[assignment]
    answer = await call(app, [negotiate(b"\x60token")])
    assert answer.status == 200 and answer.body == b"user=alice@example.org"
    assert answer.header_values(b"www-authenticate") == [b"Negotiate " + B64(b"xyz")]
    assert stub.calls[0]["token"] == b"\x60token"
    assert stub.calls[0]["connection"] == (("127.0.0.1", 8080), "192.0.2.7", 40000)
    assert stub.calls[0]["protocol"] == "ews" and stub.calls[0]["client"] == "192.0.2.7"


async def test_negotiate_continuation_is_401_with_the_token_alone() -> None:
    app = HttpAuth(whoami, FakeHost(enabled=True), "ews")
    app.spnego = StubAcceptor(SpnegoOutcome("continue", token=b"more"))  # type: ignore[assignment]
    answer = await call(app, [negotiate(b"\x60token")])
    assert answer.status == 401
    assert answer.header_values(b"www-authenticate") == [b"Negotiate " + B64(b"more")]


async def test_negotiate_failure_is_401_with_all_challenges() -> None:
    app = HttpAuth(whoami, FakeHost(enabled=True), "ews")
    app.spnego = StubAcceptor(SpnegoOutcome("failed", reason="x"))  # type: ignore[assignment]
    answer = await call(app, [negotiate(b"\x60token")])
    assert answer.status == 401
    assert answer.header_values(b"www-authenticate")[0] == b"Negotiate"
    assert len(answer.header_values(b"www-authenticate")) == 2


async def test_behind_a_proxy_there_is_no_connection_key() -> None:
    app = HttpAuth(whoami, FakeHost(enabled=True), "ews")
    stub = StubAcceptor(SpnegoOutcome("failed", reason="x"))
    app.spnego = stub  # type: ignore[assignment]
    await call(app, [negotiate(b"\x60t")], client=("198.51.100.1", 0))
    await call(app, [negotiate(b"\x60t")], **{"gateway.trusted_proxy": True})
    assert [c["connection"] for c in stub.calls] == [None, None]


async def test_negotiate_with_invalid_base64_is_400() -> None:
    answer = await call(HttpAuth(whoami, FakeHost(enabled=True), "ews"),
                        [(b"authorization", b"Negotiate not*base64")])
    assert answer.status == 400


# --------------------------------------------------------------------------
# The acceptor without a KDC: tokens refused before GSSAPI, bookkeeping
# --------------------------------------------------------------------------


async def test_ntlm_is_refused_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    app = HttpAuth(whoami, FakeHost(enabled=True, keytab="/nonexistent"), "ews")
    with caplog.at_level(logging.WARNING, "gateway.auth.spnego"):
        answer = await call(app, [negotiate(b"NTLMSSP\x00\x01\x00\x00\x00" + b"\x00" * 24)])
    assert answer.status == 401
    assert "NTLM" in caplog.text and "only Kerberos" in caplog.text


async def test_continuation_without_a_pending_exchange(caplog: pytest.LogCaptureFixture) -> None:
    app = HttpAuth(whoami, FakeHost(enabled=True, keytab="/nonexistent"), "ews")
    with caplog.at_level(logging.WARNING, "gateway.auth.spnego"):
        answer = await call(app, [negotiate(b"\xa1\x03\x30\x01\x00")])
    assert answer.status == 401 and "without a pending exchange" in caplog.text


async def test_unreadable_keytab_is_logged_once(caplog: pytest.LogCaptureFixture,
                                               tmp_path: Path) -> None:
    pytest.importorskip("gssapi")
    app = HttpAuth(whoami, FakeHost(enabled=True, keytab=str(tmp_path / "none.keytab")), "ews")
    with caplog.at_level(logging.ERROR, "gateway.auth.spnego"):
        for _ in range(3):
            answer = await call(app, [negotiate(b"\x60\x05\x06\x03\x2b\x06\x01")])
            assert answer.status == 401
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "none.keytab" in errors[0].getMessage()


async def test_unexpected_gssapi_errors_are_refused_not_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("gssapi")
    acceptor = SpnegoAcceptor(FakeHost(enabled=True))  # type: ignore[arg-type]

    async def not_credentials() -> object:
        return object()  # gssapi raises TypeError on it

    acceptor._credentials = not_credentials  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, "gateway.auth.spnego"):
        outcome = await acceptor.accept(b"\x60garbage", connection=None, protocol="ews",
                                        client="192.0.2.1")
    assert outcome.status == "failed" and "could not read the token" in caplog.text


def test_pending_exchanges_expire_and_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    acceptor = SpnegoAcceptor(FakeHost(enabled=True))  # type: ignore[arg-type]
    now = [1000.0]
    monkeypatch.setattr(spnego_module.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(spnego_module, "MAX_PENDING", 3)
    for i in range(5):
        acceptor._keep_pending(("c", i), f"ctx{i}")
    assert acceptor.pending_count == 3
    assert acceptor._take_pending(("c", 0)) is None
    assert acceptor._take_pending(("c", 4)) == "ctx4"
    assert acceptor._take_pending(("c", 4)) is None  # taken once
    now[0] += spnego_module.PENDING_TTL + 1
    assert acceptor._take_pending(("c", 3)) is None  # expired
    acceptor._keep_pending(("c", 9), "ctx9")
    assert acceptor.pending_count == 1


EXPLAINED = {
    "Clock skew too great": "more than 5 minutes",
    "Request ticket server HTTP/x@R kvno 2 not found in keytab; keytab is likely out of date":
        "keytab is out of date",
    "Request ticket server HTTP/x@R not found in keytab (ticket kvno 1)":
        "unknown server principal",
    "No key table entry found for HTTP/other@R": "unknown server principal",
    "Keytab FILE:/x is nonexistent or empty": "cannot use keytab /k",
    "Decrypt integrity check failed": "does not match the KDC",
    "Ticket expired": "has expired",
    "Request is a replay": "replays",
    "An unsupported mechanism was requested": "NTLM",
    "Invalid token was supplied": "malformed",
    "Something new": "GSSAPI refused",
}


@pytest.mark.parametrize(("message", "phrase"), EXPLAINED.items())
def test_gssapi_errors_are_explained(message: str, phrase: str) -> None:
    assert phrase in explain(message, "/k")


# --------------------------------------------------------------------------
# Principal to user
# --------------------------------------------------------------------------


def user(username: str, **changes: Any) -> User:
    values: dict[str, Any] = dict(
        id=7, username=username, domain_id=1, password="", maildir="", lang="",
        timezone="", privilege_bits=0xF, address_status=0, externid=None, homeserver=0,
        display_type=0, display_name="", org_id=0)
    values.update(changes)
    return User(**values)


class FakeDirectory:
    def __init__(self, users: list[User], altnames: dict[str, str] | None = None,
                 denied: frozenset[str] = frozenset()):
        self.users = {u.username.lower(): u for u in users}
        self.altnames = altnames or {}
        self.denied = denied

    async def realm_user(self, principal: str) -> User | None:
        name = self.altnames.get(principal)
        return self.users.get(name) if name else None

    async def resolve_login(self, name: str) -> LoginLookup:
        found = self.users.get(name.lower())
        return LoginLookup(found, "" if found else LoginLookup.NO_SUCH_USER)

    async def denied_protocols(self, u: User) -> frozenset[str]:
        return self.denied


@pytest.mark.parametrize(("principal", "directory", "expected"), [
    ("alice@EXAMPLE.ORG", None, "alice@example.org"),
    ("alice@OTHER.ORG", None, None),
    ("HTTP/host@EXAMPLE.ORG", None, None),
    ("@EXAMPLE.ORG", None, None),
    ("alice@EXAMPLE.ORG", FakeDirectory([user("Alice@example.org")]), "Alice@example.org"),
    ("bob@EXAMPLE.ORG", FakeDirectory([user("alice@example.org")]), None),
    ("carol@CORP.TEST", FakeDirectory([user("alice@example.org")],
                                      {"carol@CORP.TEST": "alice@example.org"}),
     "alice@example.org"),
    ("alice@EXAMPLE.ORG", FakeDirectory([user("alice@example.org", address_status=1)]), None),
    ("alice@EXAMPLE.ORG", FakeDirectory([user("alice@example.org", display_type=None)]), None),
    ("alice@EXAMPLE.ORG", FakeDirectory([user("alice@example.org")], denied=frozenset({"ews"})),
     None),
])
async def test_map_principal(principal: str, directory: Any, expected: str | None) -> None:
    host = FakeHost(realm_domains={"EXAMPLE.ORG": "example.org"})
    host.directory = directory
    username, reason = await map_principal(host, principal, "ews")  # type: ignore[arg-type]
    assert username == expected
    assert bool(reason) == (expected is None)
    if expected is None:
        assert principal in reason


async def test_spnego_mechanism_in_the_registry() -> None:
    host = FakeHost(enabled=False)
    mechanism = SpnegoMechanism(host)  # type: ignore[arg-type]
    registry = AuthRegistry()
    registry.add([mechanism], "test")
    creds = Credentials(kind="gssapi", protocol="imap", client="192.0.2.1", secret=b"\x60x")
    assert "not enabled" in (await registry.authenticate(creds)).reason
    host.config.spnego.enabled = True
    mechanism.acceptor = StubAcceptor(  # type: ignore[assignment]
        SpnegoOutcome("ok", Principal("alice@example.org", "spnego", {"krb5_principal": "a@R"}),
                      b"mutual"))
    result = await registry.authenticate(creds)
    assert result.principal is not None and result.principal.mechanism == "spnego"
    assert result.principal.attributes == {"krb5_principal": "a@R",
                                           "gssapi_token": B64(b"mutual").decode()}


# --------------------------------------------------------------------------
# [spnego] configuration
# --------------------------------------------------------------------------


def test_spnego_section_reads_realm_domains_as_a_table(tmp_path: Path) -> None:
    (tmp_path / "k.toml").write_text(
        '[spnego]\nrealm_domains = { "EXAMPLE.ORG" = "example.org", "B.TEST" = "b.test" }\n')
    config = build_config(read_layers([tmp_path], {}), {"spnego": SpnegoSection}, [tmp_path])
    assert config.spnego.realm_domains == {"EXAMPLE.ORG": "example.org", "B.TEST": "b.test"}
    assert config.spnego.enabled is False and config.spnego.keytab == ""


@pytest.mark.parametrize("value", [
    '{ "EXAMPLE.ORG" = 5 }', '{ "EXAMPLE.ORG" = "a@b" }', '{ "EXAMPLE.ORG" = "" }',
    '"EXAMPLE.ORG=example.org"'])
def test_spnego_section_refuses_bad_realm_domains(tmp_path: Path, value: str) -> None:
    (tmp_path / "k.toml").write_text(f"[spnego]\nrealm_domains = {value}\n")
    with pytest.raises(ConfigError, match="realm_domains"):
        build_config(read_layers([tmp_path], {}), {"spnego": SpnegoSection}, [tmp_path])
