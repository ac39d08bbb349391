"""What the directory hands out: :class:`User` and :class:`LoginLookup`."""

from __future__ import annotations

from dataclasses import dataclass, field

PR_DISPLAY_TYPE_EX = 956628995
"""user_properties tag of the display type: 0 mailbox user, 1 list, 6 contact, 7 room,
8 equipment."""
PR_DISPLAY_NAME = 805371935
"""user_properties tag of the display name (PT_UNICODE)."""
PR_NICKNAME = 978255903

DT_MAILUSER = 0


@dataclass(frozen=True)
class User:
    """One row of ``users`` with what logins need from its domain and properties."""

    id: int
    username: str
    """The canonical (primary) address, as stored."""
    domain_id: int
    password: str = field(repr=False)
    """crypt(3) hash (kept out of repr, so out of logs); empty: no SQL password (login fails)."""
    maildir: str
    """Store path; empty until a mailbox exists."""
    lang: str
    timezone: str
    privilege_bits: int
    address_status: int
    """0 normal; low nibble 1 suspended, 3 deleted, 4 shared, 5 contact; 0x30 domain state."""
    externid: bytes | None
    """Non-NULL (even empty): an LDAP-backed user."""
    homeserver: int
    """servers.id; 0: local/any."""
    display_type: int | None
    """user_properties 956628995; None when the row is missing (then no login)."""
    display_name: str
    """user_properties 805371935, or ""."""
    org_id: int
    """The organisation of the user's domain; 0 when none."""


@dataclass(frozen=True)
class LoginLookup:
    """The user a login name stands for, or why there is none."""

    user: User | None
    reason: str
    """"" when found; else "no such user" or "ambiguous login name"."""

    NO_SUCH_USER = "no such user"
    AMBIGUOUS = "ambiguous login name"
