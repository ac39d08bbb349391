"""Login names as clients type them: plain names and the shared-mailbox forms.

A login name is the user's primary address, an alias or an altname; the
directory resolves it (case-insensitively) to exactly one user. Two forms
add a *target*, a mailbox the user wants to act on (a shared mailbox, say);
whether the user may do so is the store's decision (owner rights on the
target), never this module's:

``login!target``
    grommunio's form ("logs in as *login* and acts on the target").
``target!login``
    The issue asks for this order as well. Read literally both orders are
    the same string shape, so the password mechanism tries the grommunio
    reading first and falls back to the reversed one only when the left-hand
    side cannot log in at all (unknown, or an account that may not log in
    such as a shared mailbox, which is exactly what a target usually is).
    The password is checked once, for the first side that may log in; the
    principal is always the user whose password was checked, so neither
    reading lets anyone act as someone else.

``!`` is a legal character in the local part of an address, so a name
containing ``!`` is first tried whole (see :func:`candidates`).

Validation is the same for every part: 1 to 320 characters of printable
ASCII without spaces (grommunio's name columns are ``ascii``, varchar(320)).
Anything else (empty, NUL bytes, control characters, over-long, non-ASCII
such as a Cyrillic a (U+0430) standing in for a Latin one) names nobody and
fails like an unknown user; it never reaches the directory. Names are not
normalised (no NFKC, no case folding beyond the directory's own
case-insensitive match), so a look-alike can never match an ASCII account.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.directory.directory import PRINTABLE_ASCII, plausible_name

MAX_NAME = 320  # the same limit as the directory's (varchar(320) columns)
"""Longest name grommunio stores (users.username, aliases.aliasname, altnames.altname)."""
MAX_LOGIN = 2 * MAX_NAME + 1
"""Longest ``login!target`` string looked at; anything longer is refused unread."""
SEPARATOR = "!"
MAX_SEPARATORS = 3
"""More ``!`` than this in one login string: refused (bounds the lookups one attempt costs)."""


@dataclass(frozen=True)
class LoginName:
    """One reading of a login string: who logs in and, optionally, on which mailbox."""

    login: str
    target: str = ""


valid_name = plausible_name
"""Whether a name could be a grommunio login name at all."""


def candidates(raw: object) -> list[LoginName]:
    """The readings of ``raw`` to try, most likely first; ``[]`` when it names nobody.

    1. the whole string as a plain name (also when it contains ``!``);
    2. every split at a ``!`` as ``login!target`` (grommunio), left to right;
    3. every split at a ``!`` as ``target!login``.

    Every part is validated with :func:`valid_name`; readings with an invalid
    part are dropped, and a string that is not printable ASCII is refused whole.
    """
    if not isinstance(raw, str) or not 0 < len(raw) <= MAX_LOGIN:
        return []
    if PRINTABLE_ASCII.fullmatch(raw) is None:
        return []
    found: list[LoginName] = []
    if valid_name(raw):
        found.append(LoginName(raw))
    count = raw.count(SEPARATOR)
    if count == 0 or count > MAX_SEPARATORS:
        return found
    splits: list[tuple[str, str]] = []
    start = 0
    while (index := raw.find(SEPARATOR, start)) >= 0:
        left, right = raw[:index], raw[index + 1:]
        if valid_name(left) and valid_name(right):
            splits.append((left, right))
        start = index + 1
    found += [LoginName(left, right) for left, right in splits]
    found += [LoginName(right, left) for left, right in splits]
    return found


def display_name(raw: object, limit: int = 96) -> str:
    """``raw`` made safe for one log field: no spaces, controls or non-ASCII, bounded.

    Used in the ``auth failure`` line, so that a hostile name can neither
    break the line nor inject a fake ``client=`` field for fail2ban.
    """
    if not isinstance(raw, str):
        return "-"
    if not raw:
        return '""'
    text = raw[:limit].encode("unicode_escape").decode("ascii")
    text = text.replace(" ", "\\x20").replace("=", "\\x3d")
    if len(raw) > limit:
        text += f"...[{len(raw)}]"
    return text
