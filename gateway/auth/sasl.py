"""SASL PLAIN (RFC 4616) and LOGIN decoding for the TCP protocol plugins.

The plugins speak the protocol (``AUTHENTICATE`` in IMAP, ``AUTH`` in SMTP and
POP3) and hand each base64 line they receive to these helpers, which turn it
into :class:`~gateway.auth.Credentials` for ``host.auth.authenticate`` or raise
:class:`SaslError` (answer with the protocol's "malformed" error) or
:class:`SaslCancelled` (the client sent ``*``).

Hostile input is refused before any work: lines longer than
:data:`MAX_RESPONSE` characters, anything that is not strict base64 (no
whitespace, no stray characters, correct padding), decoded data that is not
UTF-8, PLAIN messages without exactly two NUL separators, empty
authentication identities or passwords, and fields longer than the login name
and password limits.

PLAIN's authorization identity (authzid) names the mailbox to act on: when it
is present and differs from the authentication identity the credentials carry
``authcid!authzid``, grommunio's ``login!target`` form (see
:mod:`gateway.auth.login`); the store decides whether the user may act there.

LOGIN is the obsolete but ubiquitous two-step mechanism: the server sends the
prompts :data:`LOGIN_USER_PROMPT` and :data:`LOGIN_PASSWORD_PROMPT` (base64 of
``Username:`` and ``Password:``), the client answers each with one base64
line; :func:`decode_login_field` decodes one answer.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from gateway.auth.login import MAX_LOGIN, MAX_NAME
from gateway.auth.registry import Credentials

MAX_PASSWORD = 1024
"""Longest password accepted, in UTF-8 bytes (crypt's cost grows with the length)."""
MAX_RESPONSE = 4 * ((2 * MAX_LOGIN + MAX_PASSWORD + 2 + 2) // 3)
"""Longest base64 line looked at (a PLAIN message of the longest fields)."""
LOGIN_USER_PROMPT = base64.b64encode(b"Username:").decode("ascii")
LOGIN_PASSWORD_PROMPT = base64.b64encode(b"Password:").decode("ascii")

_BASE64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")


class SaslError(ValueError):
    """A malformed SASL response; the message is for logs, not for the client."""


class SaslCancelled(SaslError):
    """The client cancelled the exchange with ``*`` (RFC 4422 section 3.5)."""


@dataclass(frozen=True)
class PlainResponse:
    """A decoded PLAIN message."""

    authzid: str
    authcid: str
    password: str = field(repr=False)

    @property
    def login(self) -> str:
        """The login name for :class:`Credentials`: ``authcid``, or ``authcid!authzid``
        when an authorization identity other than the authentication identity is asked."""
        if self.authzid and self.authzid.lower() != self.authcid.lower():
            return f"{self.authcid}!{self.authzid}"
        return self.authcid

    def credentials(self, protocol: str, client: str) -> Credentials:
        return Credentials("password", protocol, client, self.login,
                           self.password.encode("utf-8"))


def decode_response(line: bytes | str, *, allow_empty: bool = False) -> bytes:
    """One client response line (without CRLF) from base64.

    ``*`` raises :class:`SaslCancelled`; ``=`` is the empty response (RFC 4954,
    RFC 4959) and, like an empty line, is only allowed with ``allow_empty``.
    """
    if isinstance(line, str):
        try:
            line = line.encode("ascii")
        except UnicodeEncodeError:
            raise SaslError("response is not ASCII") from None
    if len(line) > MAX_RESPONSE:
        raise SaslError(f"response longer than {MAX_RESPONSE} characters")
    if line == b"*":
        raise SaslCancelled("client cancelled the authentication")
    if line in (b"", b"="):
        if allow_empty:
            return b""
        raise SaslError("empty response")
    if not _BASE64.match(line):
        raise SaslError("response is not valid base64")
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise SaslError("response is not valid base64") from None


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError(f"{what} is not UTF-8") from None


def parse_plain(message: bytes) -> PlainResponse:
    """A decoded PLAIN message ``[authzid] NUL authcid NUL passwd`` (RFC 4616)."""
    parts = message.split(b"\0")
    if len(parts) != 3:
        raise SaslError(f"PLAIN message has {len(parts) - 1} NUL separators, not 2")
    authzid, authcid, password = parts
    if not authcid:
        raise SaslError("PLAIN message without an authentication identity")
    if not password:
        raise SaslError("PLAIN message with an empty password")
    if len(authcid) > MAX_LOGIN or len(authzid) > MAX_NAME:
        raise SaslError("PLAIN identity too long")
    if len(password) > MAX_PASSWORD:
        raise SaslError("PLAIN password too long")
    return PlainResponse(_text(authzid, "authorization identity"),
                         _text(authcid, "authentication identity"),
                         _text(password, "password"))


def decode_plain(line: bytes | str) -> PlainResponse:
    """A PLAIN response line (base64, initial response or after ``+``) decoded and checked."""
    return parse_plain(decode_response(line))


def decode_login_field(line: bytes | str, *, password: bool = False) -> str:
    """One answer to a LOGIN prompt: the user name, or with ``password`` the password.

    Both must be non-empty UTF-8 without NUL bytes and within the length limits.
    """
    data = decode_response(line)
    limit = MAX_PASSWORD if password else MAX_LOGIN
    what = "password" if password else "user name"
    if len(data) > limit:
        raise SaslError(f"LOGIN {what} too long")
    if b"\0" in data:
        raise SaslError(f"LOGIN {what} contains a NUL byte")
    return _text(data, what)


def login_credentials(username: str, password: str, protocol: str,
                      client: str) -> Credentials:
    """:class:`Credentials` from the two decoded LOGIN answers."""
    return Credentials("password", protocol, client, username, password.encode("utf-8"))
