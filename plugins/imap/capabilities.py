"""The CAPABILITY list, which depends on the session's state and transport."""

from __future__ import annotations

import importlib.util
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plugins.imap.session import Session

BASE = ("IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE")
AFTER_LOGIN = (
    "NAMESPACE", "UIDPLUS", "MOVE", "UNSELECT", "CHILDREN", "SPECIAL-USE", "LIST-EXTENDED",
    "LIST-STATUS", "CONDSTORE", "QRESYNC", "ESEARCH", "SEARCHRES", "UTF8=ACCEPT", "STATUS=SIZE",
    "BINARY",
)
ENABLE_ABLE = frozenset({"CONDSTORE", "QRESYNC", "IMAP4REV2", "UTF8=ACCEPT"})


@cache
def sort_available() -> bool:
    """SORT is offered when the sort module (``plugins/imap/sort.py``) is installed."""
    return importlib.util.find_spec("plugins.imap.sort") is not None


def capabilities(session: Session) -> list[str]:
    caps = list(BASE)
    from plugins.imap.session import NOT_AUTHENTICATED

    if session.state == NOT_AUTHENTICATED:
        if session.conn.can_starttls:
            caps.append("STARTTLS")
        if session.plaintext_refused:
            caps.append("LOGINDISABLED")
        else:
            caps += ["AUTH=PLAIN", "AUTH=LOGIN"]
        return caps
    caps += AFTER_LOGIN
    if sort_available():
        caps.append("SORT")
    caps.append(f"APPENDLIMIT={session.config.max_literal_bytes}")
    return caps
