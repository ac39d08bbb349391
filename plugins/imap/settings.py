"""The ``[imap]`` configuration section (defaults also written out in ``conf.d/imap.toml``)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import option
from gateway.settings import check_networks


def check_listeners(entries: list[str]) -> None:
    """Refuse a listener that is not ``host:port``."""
    from gateway.net import parse_address

    for entry in entries:
        parse_address(entry)


def check_positive(value: int | float) -> None:
    if value <= 0:
        raise ValueError("must be greater than 0")


def check_not_negative(value: int | float) -> None:
    if value < 0:
        raise ValueError("must not be negative")


@dataclass
class ImapSection:
    listen: list[str] = option(
        ["127.0.0.1:1143"], "Plain IMAP listeners (host:port); STARTTLS is offered there.",
        check=check_listeners)
    listen_tls: list[str] = option(
        ["127.0.0.1:1993"], "Implicit-TLS IMAP listeners (host:port).", check=check_listeners)
    allow_plaintext_auth: bool = option(
        False, "Allow LOGIN and AUTHENTICATE before TLS (otherwise LOGINDISABLED is advertised "
        "and [PRIVACYREQUIRED] answered).")
    show_all_folders: bool = option(
        False, "List calendar, contact, task and note folders too (normally hidden).")
    max_connections_per_user: int = option(
        50, "Open sessions one user may have at once (counted after login); 0: no limit.",
        check=check_not_negative)
    max_connections_per_address: int = option(
        500, "Open connections from one client address; 0: no limit.", check=check_not_negative)
    max_line_bytes: int = option(
        65536, "Longest command line, CRLF included (literals are not counted).",
        check=check_positive)
    max_literal_bytes: int = option(
        67108864, "Largest literal (and so the largest APPEND); advertised as APPENDLIMIT.",
        check=check_positive)
    login_timeout: float = option(
        60.0, "Seconds a client that has not logged in yet may stay silent.",
        check=check_positive)
    idle_timeout: float = option(
        1800.0, "Seconds a logged-in client may stay silent, IDLE included (RFC 3501 asks "
        "for at least 30 minutes).", check=check_positive)
    proxy_protocol: bool = option(
        False, "Expect a PROXY protocol header from trusted_proxies (and only from them).")
    trusted_proxies: list[str] = option(
        [], "Load balancers (addresses or networks) allowed to send PROXY headers.",
        check=check_networks)
