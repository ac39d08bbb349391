"""``AUTH PLAIN`` and ``AUTH LOGIN`` on submission (RFC 4954).

The exchange is spoken here; decoding is :mod:`gateway.auth.sasl` and the
check is ``host.auth.authenticate`` with protocol ``smtp`` (which also checks
the user's SMTP privilege). Replies: 235 2.7.0 success; 535 5.7.8 bad
credentials (after the registry's anti-guessing delay); 501 5.5.2 malformed
base64 or SASL message; 501 5.0.0 cancelled with ``*``; 504 5.5.4 unknown
mechanism; 538 5.7.11 when TLS is required first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.auth import Credentials
from gateway.auth.sasl import (
    LOGIN_PASSWORD_PROMPT,
    LOGIN_USER_PROMPT,
    SaslCancelled,
    SaslError,
    decode_login_field,
    decode_plain,
    login_credentials,
)
from gateway.net import LineTooLong
from plugins.smtp.grammar import SyntaxProblem
from plugins.smtp.replies import Reply

if TYPE_CHECKING:
    from gateway.host import Host
    from plugins.smtp.session import Session

MECHANISMS = ("PLAIN", "LOGIN")
PROTOCOL = "smtp"


async def _challenge(session: Session, prompt: str) -> bytes:
    await session.send_raw(f"334 {prompt}\r\n".encode("ascii"))
    return await session.read_auth_line()


async def _credentials(session: Session, mechanism: str, initial: str | None) -> Credentials:
    client = session.peer_ip
    if mechanism == "PLAIN":
        line = initial.encode("ascii") if initial is not None else await _challenge(session, "")
        return decode_plain(line).credentials(PROTOCOL, client)
    if initial is not None:
        username = decode_login_field(initial)
    else:
        username = decode_login_field(await _challenge(session, LOGIN_USER_PROMPT))
    password = decode_login_field(await _challenge(session, LOGIN_PASSWORD_PROMPT),
                                  password=True)
    return login_credentials(username, password, PROTOCOL, client)


async def authenticate(host: Host, session: Session, args: str, *,
                       allow_plaintext: bool) -> Reply:
    """Run one AUTH command; on success ``session.user`` is the canonical address."""
    if not session.conn.tls and not allow_plaintext:
        return Reply(538, "5.7.11", "encryption required: use STARTTLS first")
    parts = args.split(" ")
    mechanism = parts[0].upper()
    if not mechanism or len(parts) > 2:
        return Reply(501, "5.5.4", "syntax: AUTH mechanism [initial-response]")
    if mechanism not in MECHANISMS:
        return Reply(504, "5.5.4", f"mechanism not supported; use one of {' '.join(MECHANISMS)}")
    initial = parts[1] if len(parts) == 2 else None
    if initial == "=":
        initial = ""
    try:
        credentials = await _credentials(session, mechanism, initial)
    except SaslCancelled:
        return Reply(501, "5.0.0", "authentication cancelled")
    except SaslError:
        return Reply(501, "5.5.2", "malformed authentication data")
    except SyntaxProblem as problem:
        return problem.reply
    except (UnicodeEncodeError, LineTooLong):
        return Reply(501, "5.5.2", "malformed authentication data")
    result = await host.auth.authenticate(credentials)
    if not result.ok or result.principal is None:
        return Reply(535, "5.7.8", "authentication credentials invalid")
    session.user = result.principal.username
    return Reply(235, "2.7.0", "authentication successful")
