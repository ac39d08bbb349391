"""The command table: name, handler, the states it is valid in, and expunge reporting.

``lookup`` turns a parsed command into its ``CommandSpec`` and ``Args``, or
raises ``Bad`` for an unknown command or one used in the wrong state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plugins.imap import (
    cmd_any,
    cmd_append,
    cmd_auth,
    cmd_fetch,
    cmd_idle,
    cmd_list,
    cmd_mailbox,
    cmd_search,
    cmd_select,
    cmd_store,
)
from plugins.imap.args import Args
from plugins.imap.errors import Bad
from plugins.imap.parser import Command

if TYPE_CHECKING:
    from plugins.imap.session import Session

Result = tuple[str, str | None] | None
Handler = Callable[["Session", str, Args], Awaitable[Result]]

ANY = frozenset({"not authenticated", "authenticated", "selected"})
NOT_AUTH = frozenset({"not authenticated"})
AUTH = frozenset({"authenticated", "selected"})
SELECTED = frozenset({"selected"})


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: Handler
    states: frozenset[str]
    expunges: bool = True
    """Whether EXPUNGE responses may be sent with this command's answer."""


def _specs(*specs: CommandSpec) -> dict[str, CommandSpec]:
    return {spec.name: spec for spec in specs}


TABLE = _specs(
    CommandSpec("CAPABILITY", cmd_any.capability, ANY),
    CommandSpec("NOOP", cmd_any.noop, ANY),
    CommandSpec("LOGOUT", cmd_any.logout, ANY),
    CommandSpec("ID", cmd_any.id_, ANY),
    CommandSpec("ENABLE", cmd_any.enable, AUTH),
    CommandSpec("STARTTLS", cmd_auth.starttls, NOT_AUTH),
    CommandSpec("LOGIN", cmd_auth.login, NOT_AUTH),
    CommandSpec("AUTHENTICATE", cmd_auth.authenticate, NOT_AUTH),
    CommandSpec("NAMESPACE", cmd_mailbox.namespace, AUTH),
    CommandSpec("CREATE", cmd_mailbox.create, AUTH),
    CommandSpec("DELETE", cmd_mailbox.delete, AUTH),
    CommandSpec("RENAME", cmd_mailbox.rename, AUTH),
    CommandSpec("SUBSCRIBE", cmd_mailbox.subscribe, AUTH),
    CommandSpec("UNSUBSCRIBE", cmd_mailbox.unsubscribe, AUTH),
    CommandSpec("STATUS", cmd_mailbox.status, AUTH),
    CommandSpec("LIST", cmd_list.list_, AUTH),
    CommandSpec("LSUB", cmd_list.lsub, AUTH),
    CommandSpec("SELECT", cmd_select.select, AUTH),
    CommandSpec("EXAMINE", cmd_select.examine, AUTH),
    CommandSpec("APPEND", cmd_append.append, AUTH),
    CommandSpec("IDLE", cmd_idle.idle, AUTH),
    CommandSpec("CLOSE", cmd_select.close, SELECTED),
    CommandSpec("UNSELECT", cmd_select.unselect, SELECTED),
    CommandSpec("CHECK", cmd_select.check, SELECTED),
    CommandSpec("EXPUNGE", cmd_select.expunge, SELECTED),
    CommandSpec("UID EXPUNGE", cmd_select.uid_expunge, SELECTED),
    CommandSpec("FETCH", cmd_fetch.fetch, SELECTED, expunges=False),
    CommandSpec("UID FETCH", cmd_fetch.uid_fetch, SELECTED),
    CommandSpec("STORE", cmd_store.store, SELECTED, expunges=False),
    CommandSpec("UID STORE", cmd_store.uid_store, SELECTED),
    CommandSpec("COPY", cmd_store.copy, SELECTED),
    CommandSpec("UID COPY", cmd_store.uid_copy, SELECTED),
    CommandSpec("MOVE", cmd_store.move, SELECTED),
    CommandSpec("UID MOVE", cmd_store.uid_move, SELECTED),
    CommandSpec("SEARCH", cmd_search.search, SELECTED, expunges=False),
    CommandSpec("UID SEARCH", cmd_search.uid_search, SELECTED),
    CommandSpec("SORT", cmd_search.sort, SELECTED, expunges=False),
    CommandSpec("UID SORT", cmd_search.uid_sort, SELECTED),
)

def lookup(session: Session, command: Command) -> tuple[CommandSpec, Args]:
    name, tokens = command.name, command.args
    if name == "UID":
        if not tokens or not isinstance(tokens[0], str):
            raise Bad("UID: missing command (FETCH, STORE, COPY, MOVE, SEARCH, SORT, EXPUNGE)")
        name = "UID " + tokens[0].upper()
        tokens = tokens[1:]
    spec = TABLE.get(name)
    if spec is None or (spec.name in ("SORT", "UID SORT") and not _sort()):
        raise Bad(f"unknown command {name}")
    if session.state not in spec.states:
        if session.state == "not authenticated":
            raise Bad(f"{name}: log in first")
        if spec.states == NOT_AUTH:
            raise Bad(f"{name}: already authenticated")
        raise Bad(f"{name}: no mailbox selected")
    return spec, Args(name, tokens)


def _sort() -> bool:
    from plugins.imap.capabilities import sort_available

    return sort_available()
