"""Commands valid in any state: CAPABILITY, NOOP, LOGOUT, ID; and ENABLE (RFC 5161)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.imap import responses as R
from plugins.imap.args import Args, text_of
from plugins.imap.capabilities import ENABLE_ABLE, capabilities
from plugins.imap.errors import Bad

if TYPE_CHECKING:
    from plugins.imap.commands import Result
    from plugins.imap.session import Session

SERVER_ID = (("name", "groupware-gateway"), ("vendor", "groupware-gateway"))
MAX_ID_PAIRS = 30
MAX_ID_FIELD = 1024


async def capability(session: Session, tag: str, args: Args) -> Result:
    args.end()
    session.untagged("CAPABILITY " + " ".join(capabilities(session)))
    return None


async def noop(session: Session, tag: str, args: Args) -> Result:
    args.end()
    return None


async def logout(session: Session, tag: str, args: Args) -> Result:
    from plugins.imap.session import LOGOUT

    args.end()
    session.untagged(b"BYE logging out")
    session.deselect()
    session.state = LOGOUT
    return None


async def id_(session: Session, tag: str, args: Args) -> Result:
    """RFC 2971: the client's identification (checked, logged at debug) and ours."""
    token = args.next("a parameter list or NIL")
    args.end()
    if token is not None:
        if not isinstance(token, list):
            raise Bad("ID: expected a parenthesised list of field/value pairs or NIL")
        if len(token) % 2 or len(token) > 2 * MAX_ID_PAIRS:
            raise Bad(f"ID: expected up to {MAX_ID_PAIRS} field/value pairs")
        fields = {}
        for i in range(0, len(token), 2):
            key, value = token[i], token[i + 1]
            if not isinstance(key, bytes) or not (value is None or isinstance(value, bytes)):
                raise Bad("ID: fields and values must be strings (or NIL values)")
            if len(key) > 30 or (value is not None and len(value) > MAX_ID_FIELD):
                raise Bad("ID: field or value too long")
            fields[text_of(key, "an ID field")] = None if value is None else text_of(
                value, "an ID value")
        session.service.log.debug("imap client id %s: %s", session.conn.peer[0], fields)
    pairs = b" ".join(R.quoted(k) + b" " + R.quoted(v) for k, v in SERVER_ID)
    session.untagged(b"ID (" + pairs + b")")
    return None


async def enable(session: Session, tag: str, args: Args) -> Result:
    names = []
    if not args:
        raise Bad("ENABLE: missing capability names")
    while args:
        names.append(args.atom("a capability name").upper())
    newly = []
    for name in names:
        if name in ENABLE_ABLE and name not in session.enabled:
            session.enabled.add(name)
            newly.append(name)
            if name == "QRESYNC" and "CONDSTORE" not in session.enabled:
                session.enabled.add("CONDSTORE")
    shown = {"IMAP4REV2": "IMAP4rev2"}
    session.untagged("ENABLED" + "".join(" " + shown.get(n, n) for n in newly))
    return None
