"""LIST (with LIST-EXTENDED, LIST-STATUS, SPECIAL-USE and CHILDREN) and LSUB."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.imap import responses as R
from plugins.imap.args import Args, describe, mailbox_of
from plugins.imap.cmd_mailbox import status_items, status_line, tree_call
from plugins.imap.errors import Bad
from plugins.imap.parser import Token

if TYPE_CHECKING:
    from plugins.imap.commands import Result
    from plugins.imap.session import Session

SELECTION = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
RETURNS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})
SEPARATOR = b'"/"'


def _pattern(session: Session, token: Token) -> str:
    if isinstance(token, list) or (token is None):
        raise Bad(f"LIST: expected a mailbox pattern, got {describe(token)}")
    return mailbox_of(token, utf8=session.utf8) if token != "" else ""


def _options(tokens: list, allowed: frozenset[str], what: str) -> list[str]:
    found = []
    for token in tokens:
        if not isinstance(token, str) or token.upper() not in allowed:
            raise Bad(f"LIST: unknown {what} option {describe(token)}")
        found.append(token.upper())
    return found


def _list_line(session: Session, verb: bytes, attributes: tuple[str, ...], name: str,
               extra: bytes = b"") -> bytes:
    attrs = b"(" + " ".join(attributes).encode() + b")"
    return R.untagged(verb + b" " + attrs + b" " + SEPARATOR + b" " +
                      R.mailbox_name(name, utf8=session.utf8) + extra)


async def list_(session: Session, tag: str, args: Args) -> Result:
    selection: list[str] = []
    extended = False
    first = args.optional_list()
    if first is not None:
        selection = _options(first, SELECTION, "selection")
        extended = True
    reference = _pattern(session, args.next("a reference name"))
    patterns_token = args.next("a mailbox pattern")
    if isinstance(patterns_token, list):
        if not patterns_token:
            raise Bad("LIST: empty pattern list")
        patterns = [_pattern(session, t) for t in patterns_token]
        extended = True
    else:
        patterns = [_pattern(session, patterns_token)]
    returns: list[str] = []
    status: list[str] = []
    if args:
        word = args.atom("RETURN")
        if word.upper() != "RETURN":
            raise Bad(f"LIST: expected RETURN, got {word!r}")
        options = args.group("return options")
        i = 0
        while i < len(options):
            option = options[i]
            if isinstance(option, str) and option.upper() == "STATUS":
                following = options[i + 1] if i + 1 < len(options) else None
                if not isinstance(following, list):
                    raise Bad("LIST: RETURN STATUS needs a list of status items")
                status = status_items(following)
                i += 2
                returns.append("STATUS")
                continue
            returns += _options([option], RETURNS - {"STATUS"}, "return")
            i += 1
        extended = True
    args.end()
    if "RECURSIVEMATCH" in selection and not ({"SUBSCRIBED"} & set(selection)):
        raise Bad("LIST: RECURSIVEMATCH needs another selection option")
    if not extended and patterns == [""]:
        session.send(_list_line(session, b"LIST", ("\\Noselect",), ""))
        return None
    await tree_call(session.tree.refresh())
    found = session.tree.list(
        reference, patterns, subscribed="SUBSCRIBED" in selection,
        special_use="SPECIAL-USE" in selection,
        recursive_match="RECURSIVEMATCH" in selection, remote="REMOTE" in selection,
        return_subscribed="SUBSCRIBED" in returns)
    if "HIGHESTMODSEQ" in status:
        session.condstore_seen = True
    for entry, attributes in found:
        extra = b""
        if "RECURSIVEMATCH" in selection and "\\Subscribed" not in attributes:
            extra = b' ("CHILDINFO" ("SUBSCRIBED"))'
        session.send(_list_line(session, b"LIST", attributes, entry.name, extra))
        if status and entry.selectable and "\\NonExistent" not in attributes:
            pairs = await tree_call(session.tree.status(entry, status))
            session.send(status_line(session, entry.name, pairs))
        await session.maybe_flush()
    return None


async def lsub(session: Session, tag: str, args: Args) -> Result:
    reference = _pattern(session, args.next("a reference name"))
    pattern = _pattern(session, args.next("a mailbox pattern"))
    args.end()
    await tree_call(session.tree.refresh())
    for entry, attributes in session.tree.list(reference, [pattern], subscribed=True):
        shown = tuple(a for a in attributes if a not in ("\\Subscribed", "\\NonExistent"))
        if "\\NonExistent" in attributes:
            shown = (*shown, "\\Noselect")
        session.send(_list_line(session, b"LSUB", shown, entry.name))
    return None
