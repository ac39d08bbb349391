"""APPEND (UIDPLUS's APPENDUID, APPENDLIMIT, literal8 for BINARY content).

The message literal has been read completely before this runs (a connection
dropped inside it ends the session in the parser, so nothing is stored); the
store write is durable before the tagged OK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.imap import append as appending
from plugins.imap.args import Args, describe, parse_date_time
from plugins.imap.cmd_mailbox import find, tree_call
from plugins.imap.cmd_store import parse_flags
from plugins.imap.errors import Bad, No
from plugins.imap.parser import Literal8

if TYPE_CHECKING:
    from plugins.imap.commands import Result
    from plugins.imap.session import Session


async def append(session: Session, tag: str, args: Args) -> Result:
    name = args.mailbox(utf8=session.utf8)
    flags: list[str] = []
    internal_date = None
    tokens = args.rest()
    first = tokens[0] if tokens else None
    if isinstance(first, list):
        flags = parse_flags(first, "APPEND")
        tokens.pop(0)
    if len(tokens) == 2 and isinstance(tokens[0], bytes):
        internal_date = parse_date_time(tokens.pop(0))
    if not tokens:
        raise Bad("APPEND: missing the message literal")
    if len(tokens) == 2 and isinstance(tokens[0], str) and tokens[0].upper() == "UTF8":
        # RFC 6855 section 4: APPEND ... UTF8 (~{n}) after ENABLE UTF8=ACCEPT
        wrapped = tokens[1]
        if not session.utf8:
            raise Bad("APPEND: UTF8 needs ENABLE UTF8=ACCEPT first")
        if not isinstance(wrapped, list) or len(wrapped) != 1 or not isinstance(
                wrapped[0], Literal8):
            raise Bad("APPEND: UTF8 takes one literal8 in parentheses: UTF8 (~{n})")
        tokens = wrapped
    if len(tokens) > 1:
        raise Bad(f"APPEND: unexpected {describe(tokens[0])} (one message per APPEND)")
    message = tokens[0]
    if not isinstance(message, bytes):
        raise Bad(f"APPEND: expected the message as a literal, got {describe(message)}")
    if not message:
        raise No("an empty message cannot be stored")
    entry = await find(session, name, "TRYCREATE")
    if not entry.selectable:
        raise No(f"{name} cannot hold messages", "CANNOT")
    validity, uid = await tree_call(appending.append(
        session.tree, entry, bytes(message), flags=flags, internal_date=internal_date))
    return "completed", f"APPENDUID {validity} {uid}"
