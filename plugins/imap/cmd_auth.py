"""STARTTLS, LOGIN and AUTHENTICATE (PLAIN and LOGIN, with SASL-IR) in the not-authenticated state.

Passwords are checked by ``host.auth.authenticate`` with protocol ``imap``
(which also checks the ``imap`` privilege and waits its failure delay). Before
TLS they are refused with ``[PRIVACYREQUIRED]`` unless
``[imap] allow_plaintext_auth`` is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.auth.registry import Credentials
from gateway.auth.sasl import (
    LOGIN_PASSWORD_PROMPT,
    LOGIN_USER_PROMPT,
    SaslCancelled,
    SaslError,
    decode_login_field,
    decode_plain,
    login_credentials,
)
from gateway.net import LineTooLong, TlsUnavailable
from plugins.imap import responses as R
from plugins.imap.args import Args
from plugins.imap.capabilities import capabilities
from plugins.imap.errors import Answered, Bad, No

if TYPE_CHECKING:
    from plugins.imap.commands import Result
    from plugins.imap.session import Session

PROTOCOL = "imap"


def _refuse_plaintext(session: Session) -> None:
    if session.plaintext_refused:
        raise No("plaintext authentication is refused before STARTTLS", "PRIVACYREQUIRED")


async def starttls(session: Session, tag: str, args: Args) -> Result:
    args.end()
    if session.conn.tls:
        raise Bad("STARTTLS: the connection is already TLS")
    if not session.conn.can_starttls:
        raise No("STARTTLS is not available here")
    session.send(R.status(tag, "OK", "begin TLS negotiation now"))
    await session.flush()
    try:
        await session.conn.starttls()
    except TlsUnavailable as exc:  # checked above; kept for safety
        raise No(f"STARTTLS failed: {exc}") from None
    session.enabled.clear()
    raise Answered()


async def _finish(session: Session, credentials: Credentials) -> Result:
    result = await session.host.auth.authenticate(credentials)
    if not result.ok:
        session.service.log.info("imap login failed user=%s client=%s", credentials.username,
                                 session.conn.peer[0])
        raise No("authentication failed", "AUTHENTICATIONFAILED")
    await session.logged_in(result.principal)
    return "done", "CAPABILITY " + " ".join(capabilities(session))


async def login(session: Session, tag: str, args: Args) -> Result:
    user = args.astring("a user name")
    password = args.secret("a password")
    args.end()
    _refuse_plaintext(session)
    if not user or not password:
        raise No("authentication failed", "AUTHENTICATIONFAILED")
    if len(user) > 320 or len(password) > 1024:
        raise Bad("LOGIN: user name or password too long")
    try:
        secret = password.decode("utf-8")
    except UnicodeDecodeError:
        raise Bad("LOGIN: the password is not UTF-8") from None
    return await _finish(session, login_credentials(user, secret, PROTOCOL,
                                                    session.conn.peer[0]))


async def _challenge(session: Session, prompt: str) -> bytes:
    session.send(R.continuation(prompt) if prompt else b"+ \r\n")
    await session.flush()
    try:
        line = await session.conn.readline()
    except LineTooLong:
        raise Bad("AUTHENTICATE: response line too long") from None
    return line.rstrip(b"\r\n")


async def authenticate(session: Session, tag: str, args: Args) -> Result:
    mechanism = args.atom("a SASL mechanism").upper()
    initial = args.next("initial response") if args else None
    args.end()
    if initial is not None and not isinstance(initial, str):
        raise Bad("AUTHENTICATE: the initial response must be base64 or =")
    if mechanism not in ("PLAIN", "LOGIN"):
        raise No(f"unsupported authentication mechanism {mechanism}", "CANNOT")
    _refuse_plaintext(session)
    client = session.conn.peer[0]
    try:
        if mechanism == "PLAIN":
            response = initial.encode() if initial is not None else await _challenge(session, "")
            credentials = decode_plain(response).credentials(PROTOCOL, client)
        else:
            if initial is not None and initial != "=":
                user = decode_login_field(initial)
            else:
                user = decode_login_field(await _challenge(session, LOGIN_USER_PROMPT))
            password = decode_login_field(await _challenge(session, LOGIN_PASSWORD_PROMPT),
                                          password=True)
            credentials = login_credentials(user, password, PROTOCOL, client)
    except SaslCancelled:
        raise Bad("AUTHENTICATE cancelled") from None
    except SaslError as exc:
        raise Bad(f"AUTHENTICATE: {exc}") from None
    return await _finish(session, credentials)
