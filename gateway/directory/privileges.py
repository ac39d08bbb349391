"""Per-user protocol privileges: grommunio's ``users.privilege_bits`` plus EWS/MAPI denials.

grommunio's bits (gromox ``mysql_adaptor.hpp``, admin-api ``orm/users.py``)::

    0x1 IMAP/POP3   0x2 SMTP    0x4 CHGPASSWD  0x8 PUBADDR
    0x10 CHAT       0x20 VIDEO  0x40 FILES     0x80 ARCHIVE
    0x100 DETAIL1   0x200 WEB   0x400 EAS      0x800 DAV

DETAIL1: while it is *not* set, WEB, EAS and DAV count as granted whatever
their bits say (databases from before those bits existed). Setting any of
the three through grommunio's admin API also sets DETAIL1; :func:`apply_changes`
does the same, and when it first sets DETAIL1 it also sets the WEB, EAS and
DAV bits so that the two not being changed keep the access they had.

grommunio has no bit for EWS, MAPI/HTTP (and RPC/HTTP) or AutoDiscover: an
HTTP login for them needs none. To let an administrator still deny EWS or
MAPI without changing what grommunio's own services see, the gateway keeps
denials in a table of its own, ``gateway_denied_protocols`` (user_id,
protocol; one row per denied protocol, deleted with the user). It is not a
user_properties row because grommunio's admin API and the store sync read
every user property as a MAPI property. No row: allowed, as in grommunio.
``Directory.denied_protocols(user)`` reads it; ``gateway user set --deny ews``
writes it. AutoDiscover and OAB are never denied here (they only describe
endpoints; the protocols behind them are checked when used).
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.directory.types import DT_MAILUSER, User

IMAP = 0x1
"""IMAP and POP3."""
SMTP = 0x2
CHGPASSWD = 0x4
PUBADDR = 0x8
CHAT = 0x10
VIDEO = 0x20
FILES = 0x40
ARCHIVE = 0x80
DETAIL1 = 0x100
WEB = 0x200
EAS = 0x400
DAV = 0x800

DETAILED = WEB | EAS | DAV
"""The bits that DETAIL1 switches on."""

DEFAULT_NEW_USER = IMAP | SMTP | CHGPASSWD | PUBADDR
"""privilege_bits of a new user: IMAP/POP3, SMTP, password change, public address.
DETAIL1 stays unset, so WEB, EAS and DAV count as granted (grommunio's rule).
grommunio's admin API itself writes 0 unless its configurable create-defaults
say otherwise; 0xF is the usual grommunio set-up for a mailbox user."""

BITS: dict[str, int] = {
    "imap": IMAP, "smtp": SMTP, "chgpasswd": CHGPASSWD, "pubaddr": PUBADDR,
    "chat": CHAT, "video": VIDEO, "files": FILES, "archive": ARCHIVE,
    "web": WEB, "eas": EAS, "dav": DAV,
}
"""Names for ``--allow``/``--deny`` that are grommunio bits."""

EXTRA = frozenset({"ews", "mapi"})
"""Names for ``--allow``/``--deny`` without a grommunio bit (stored as denials)."""

NAMES = frozenset(BITS) | EXTRA

PROTOCOLS: dict[str, tuple[str, int | str | None]] = {
    "imap": ("bit", IMAP),
    "pop3": ("bit", IMAP),
    "smtp": ("bit", SMTP),
    "chgpasswd": ("bit", CHGPASSWD),
    "web": ("detail", WEB),
    "eas": ("detail", EAS),
    "dav": ("detail", DAV),
    "caldav": ("detail", DAV),
    "carddav": ("detail", DAV),
    "ews": ("extra", "ews"),
    "mapi": ("extra", "mapi"),
    "rpc": ("extra", "mapi"),
    "autodiscover": ("none", None),
    "oab": ("none", None),
}
"""Protocol names :func:`protocol_allowed` knows, and the rule for each."""


class PrivilegeError(ValueError):
    """An unknown or contradictory privilege name."""


def parse_names(text: str | Iterable[str] | None) -> set[str]:
    """``"imap,smtp"`` (or several such) as a set of known names; unknown ones refused."""
    if text is None:
        return set()
    items = [text] if isinstance(text, str) else list(text)
    names = {part.strip().lower() for item in items for part in item.split(",") if part.strip()}
    unknown = names - NAMES
    if unknown:
        raise PrivilegeError(f"unknown privilege {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(NAMES))})")
    return names


def apply_changes(bits: int, denied: Iterable[str], allow: Iterable[str],
                  deny: Iterable[str]) -> tuple[int, frozenset[str]]:
    """New ``(privilege_bits, denied extra protocols)`` after ``allow`` and ``deny``."""
    allow, deny = set(allow), set(deny)
    both = allow & deny
    if both:
        raise PrivilegeError(f"{', '.join(sorted(both))} both allowed and denied")
    unknown = (allow | deny) - NAMES
    if unknown:
        raise PrivilegeError(f"unknown privilege {', '.join(sorted(unknown))}")
    changed = {BITS[name] for name in allow | deny if name in BITS}
    if any(bit & DETAILED for bit in changed) and not bits & DETAIL1:
        bits |= DETAIL1 | DETAILED  # keep what the untouched ones grant today
    for name in allow & set(BITS):
        bits |= BITS[name]
    for name in deny & set(BITS):
        bits &= ~BITS[name]
    new_denied = (set(denied) | (deny & EXTRA)) - allow
    return bits, frozenset(new_denied)


def granted_names(bits: int, denied: Iterable[str] = ()) -> list[str]:
    """Names granted by ``bits`` (DETAIL1 rule applied) and not denied, for listings."""
    names = []
    for name, bit in BITS.items():
        if bits & bit or (bit & DETAILED and not bits & DETAIL1):
            names.append(name)
    names += sorted(EXTRA - set(denied))
    return names


def protocol_allowed(user: User, protocol: str, denied_extra: Iterable[str] = ()) -> bool:
    """Whether ``user``'s privileges allow ``protocol`` (see :data:`PROTOCOLS`).

    ``denied_extra`` is ``await directory.denied_protocols(user)``. Account
    state (address_status, display type) is :func:`account_problem`'s job.
    An unknown protocol name is a programming error: :class:`ValueError`.
    """
    try:
        kind, value = PROTOCOLS[protocol.lower()]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r} "
                         f"(known: {', '.join(sorted(PROTOCOLS))})") from None
    bits = user.privilege_bits
    if kind == "bit":
        assert isinstance(value, int)
        return bool(bits & value)
    if kind == "detail":
        assert isinstance(value, int)
        return bool(bits & value) or not bits & DETAIL1
    if kind == "extra":
        return value not in set(denied_extra)
    return True


def account_problem(user: User) -> str | None:
    """Why ``user`` cannot log in at all, or None: grommunio requires
    address_status 0 and display type 0 (a missing display-type row refuses)."""
    status = user.address_status
    if status != 0:
        low = status & 0x0F
        what = {1: "suspended", 3: "deleted", 4: "a shared mailbox", 5: "a contact"}.get(low)
        if what is None:
            what = {0x10: "in a suspended domain", 0x30: "in a deleted domain"}.get(
                status & 0x30, f"not active (address_status {status})")
        return f"account is {what}"
    if user.display_type is None:
        return "account has no display type (not a mailbox user)"
    if user.display_type != DT_MAILUSER:
        return f"account is not a mailbox user (display type {user.display_type})"
    return None
