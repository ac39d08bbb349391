"""Config sections of password authentication: ``[auth]`` and ``[ldap]``.

Declared by the host (``gateway.settings``) and written out with the same
defaults in ``conf.d/00-gateway.toml``.

``[auth] mode`` follows grommunio's ``authmgr.cfg`` ``auth_backend_selection``:
``"externid"`` (LDAP for users whose ``users.externid`` is not NULL, the
directory's crypt hash for the others), ``"sql"`` (always the crypt hash,
``always_mysql``) or ``"ldap"`` (always LDAP, ``always_ldap``).

``[ldap]`` holds the global LDAP settings; an organisation's ``orgparam`` rows
(``ldap_uri``, ``ldap_binddn``, ``ldap_bindpw``, ``ldap_basedn``,
``ldap_mail_attr``, ``ldap_start_tls``) override them key by key for the users
of that organisation's domains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.config import option

MODES = ("externid", "sql", "ldap")

_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9-]*\Z|[0-9]+(?:\.[0-9]+)*\Z")


def check_mode(value: str) -> None:
    if value not in MODES:
        raise ValueError(f"must be one of {', '.join(MODES)}")


def check_non_negative(value: float) -> None:
    if value < 0:
        raise ValueError("must not be negative")


def check_positive(value: float) -> None:
    if value <= 0:
        raise ValueError("must be greater than 0")


def check_attribute(value: str) -> None:
    """An LDAP attribute description: a name or an OID, nothing that could change a filter."""
    if not _ATTRIBUTE.match(value):
        raise ValueError(f"not an LDAP attribute name: {value!r}")


def check_filter(value: str) -> None:
    """Empty, or one parenthesised LDAP filter with balanced parentheses."""
    if not value:
        return
    depth = 0
    escaped = False
    for index, char in enumerate(value):
        if char == "\\":
            escaped = True  # RFC 4515 escapes are \XX; only "(" and ")" matter here
            continue
        if escaped:
            escaped = False
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0 or (depth == 0 and index != len(value) - 1):
                raise ValueError(f"not one parenthesised LDAP filter: {value!r}")
    if not value.startswith("(") or depth != 0:
        raise ValueError(f"not one parenthesised LDAP filter: {value!r}")


def check_ldap_uri(value: str) -> None:
    if value and not re.match(r"ldaps?://", value, re.IGNORECASE):
        raise ValueError(f"must be an ldap:// or ldaps:// URI, got {value!r}")


@dataclass
class AuthSection:
    mode: str = option("externid", "Where passwords are checked: \"externid\" (LDAP for "
                       "users with users.externid set, the directory's crypt hash otherwise; "
                       "grommunio's default), \"sql\" (always the hash) or \"ldap\" (always "
                       "LDAP).", check=check_mode)
    cache_ttl: float = option(60.0, "Seconds a verified user name and password stay cached "
                              "(as a keyed hash, never in clear) so that the next login "
                              "skips crypt or the LDAP bind; 0: no cache.",
                              check=check_non_negative)
    failure_delay: float = option(1.0, "Seconds every failed login waits before it is "
                                  "answered (grommunio: 1).", check=check_non_negative)
    max_failures_per_account: int = option(
        10, "Failed logins for one account within failure_window after which further "
        "attempts are refused unchecked; 0: no limit.", check=check_non_negative)
    max_failures_per_address: int = option(
        30, "Failed logins from one client address (IPv6: its /64) within failure_window "
        "after which further attempts are refused unchecked; 0: no limit.",
        check=check_non_negative)
    failure_window: float = option(300.0, "Seconds over which failed logins are counted "
                                   "(with [redis] url set, counted across all processes "
                                   "and nodes).", check=check_positive)


@dataclass
class LdapSection:
    server: str = option("", "ldap:// or ldaps:// URI of the LDAP server; empty: only "
                         "organisations with an ldap_uri in orgparam use LDAP.",
                         check=check_ldap_uri)
    bind_user: str = option("", "DN the gateway binds as to search for users; empty: "
                            "anonymous searches.")
    bind_password: str = option("", "Password of bind_user.", secret=True)
    base_dn: str = option("", "Where users are searched (subtree).")
    filter: str = option("", "Extra LDAP filter ANDed to the user search, e.g. "
                         "\"(objectClass=inetOrgPerson)\"; empty: none.", check=check_filter)
    username_attribute: str = option("mail", "Attribute holding the user's primary address "
                                     "(grommunio's ldap_mail_attr).", check=check_attribute)
    starttls: bool = option(False, "Use StartTLS on ldap:// connections (the certificate is "
                            "checked against ca_file, else the system's CAs).")
    ca_file: str = option("", "PEM file of the CA that signed the LDAP server's certificate; "
                          "empty: the system's trust store.")
    timeout: float = option(10.0, "Seconds one LDAP connect, search or bind may take.",
                            check=check_positive)
    pool_size: int = option(4, "Search connections kept open per LDAP server and bind DN "
                            "(grommunio's data_connections).", check=check_positive)
