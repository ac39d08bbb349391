"""SASL PLAIN and LOGIN decoding, with hostile input."""

from __future__ import annotations

import base64

import pytest

from gateway.auth.sasl import (
    LOGIN_PASSWORD_PROMPT,
    LOGIN_USER_PROMPT,
    MAX_PASSWORD,
    MAX_RESPONSE,
    SaslCancelled,
    SaslError,
    decode_login_field,
    decode_plain,
    decode_response,
    login_credentials,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_plain_without_authzid() -> None:
    plain = decode_plain(b64(b"\0alice@example.test\0s3cret pass"))
    assert (plain.authzid, plain.authcid, plain.password) == (
        "", "alice@example.test", "s3cret pass")
    assert plain.login == "alice@example.test"
    assert "s3cret" not in repr(plain)
    creds = plain.credentials("imap", "192.0.2.1")
    assert creds.kind == "password" and creds.username == "alice@example.test"
    assert creds.secret == b"s3cret pass" and creds.protocol == "imap"


def test_plain_authzid_is_the_target_mailbox() -> None:
    plain = decode_plain(b64(b"shared@example.test\0alice@example.test\0pw").encode())
    assert plain.login == "alice@example.test!shared@example.test"
    same = decode_plain(b64(b"ALICE@example.test\0alice@example.test\0pw"))
    assert same.login == "alice@example.test"


def test_plain_utf8_password() -> None:
    plain = decode_plain(b64("\0alice\0p\u00e4ss\u20ac".encode()))
    assert plain.password == "p\u00e4ss\u20ac"


@pytest.mark.parametrize("message", [
    b"", b"alice", b"alice\0pw", b"\0\0pw", b"\0alice\0", b"a\0b\0c\0d",
    b"\0alice\0\xff\xfe", b"\0\xc0\x80\0pw", b"\0alice\0" + b"p" * (MAX_PASSWORD + 1),
    b"\0" + b"a" * 700 + b"\0pw", b"z" * 400 + b"\0alice\0pw",
])
def test_plain_refuses_malformed_messages(message: bytes) -> None:
    with pytest.raises(SaslError):
        decode_plain(b64(message))


@pytest.mark.parametrize("line", [
    "!!!!", "YWxpY2U", "YW xpY2U=", "YWxpY2U=\n", "YWxp\0Y2U=", "====", "YQ==YQ==",
    "\u00e9t\u00e9", "A" * (MAX_RESPONSE + 4), b"\xff\xfe",
])
def test_bad_base64_is_refused(line: str | bytes) -> None:
    with pytest.raises(SaslError):
        decode_response(line)


def test_cancel_and_empty_responses() -> None:
    with pytest.raises(SaslCancelled):
        decode_plain("*")
    with pytest.raises(SaslError):
        decode_response("=")
    assert decode_response("=", allow_empty=True) == b""
    assert decode_response(b"", allow_empty=True) == b""


def test_login_exchange() -> None:
    assert base64.b64decode(LOGIN_USER_PROMPT) == b"Username:"
    assert base64.b64decode(LOGIN_PASSWORD_PROMPT) == b"Password:"
    user = decode_login_field(b64(b"alice@example.test"))
    password = decode_login_field(b64(b"s3cret"), password=True)
    creds = login_credentials(user, password, "smtp", "::1")
    assert creds.username == "alice@example.test" and creds.secret == b"s3cret"


@pytest.mark.parametrize(("data", "password"), [
    (b"al\0ice", False), (b"pw\0", True), (b"\xff", False), (b"x" * 700, False),
    (b"p" * (MAX_PASSWORD + 1), True),
])
def test_login_fields_refuse_hostile_values(data: bytes, password: bool) -> None:
    with pytest.raises(SaslError):
        decode_login_field(b64(data), password=password)
    with pytest.raises(SaslError):
        decode_login_field("=", password=password)
