"""The ``[smtp]`` config section: listeners, who may deliver, limits, auto-replies."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import option
from gateway.settings import check_networks


def _positive(value: int) -> None:
    if value <= 0:
        raise ValueError("must be positive")


def _not_negative(value: float) -> None:
    if value < 0:
        raise ValueError("must not be negative")


@dataclass
class SmtpSection:
    delivery_listen: list[str] = option(
        ["127.0.0.1:2424"],
        "Delivery listeners (host:port) for the MTA: LMTP when the client greets with LHLO, "
        "SMTP when it greets with EHLO/HELO. No AUTH; only delivery_clients may connect, and "
        "only local recipients are accepted.")
    delivery_clients: list[str] = option(
        ["127.0.0.0/8", "::1"],
        "Addresses or networks allowed to deliver on delivery_listen (the MTA's).",
        check=check_networks)
    submission_listen: list[str] = option(
        ["127.0.0.1:1587"], "Submission listeners (RFC 6409) offering STARTTLS; AUTH required.")
    submission_listen_tls: list[str] = option(
        ["127.0.0.1:1465"], "Submission listeners with implicit TLS; AUTH required.")
    allow_plaintext_auth: bool = option(
        False, "Allow AUTH on submission before STARTTLS (tests, trusted networks only).")
    hostname: str = option(
        "", "Name in the greeting and in Received headers; empty: this machine's host name.")
    max_message_bytes: int = option(
        50 * 1024 * 1024, "Largest message accepted (SIZE); larger gets 552 5.3.4.",
        check=_positive)
    max_recipients: int = option(
        100, "Recipients per message; more get 452 4.5.3.", check=_positive)
    max_hops: int = option(
        50, "Received headers a message may carry before it is refused as a loop (554 5.4.6).",
        check=_positive)
    max_errors: int = option(
        20, "Bad commands a client may send before it is disconnected (421 4.7.0).",
        check=_positive)
    max_connections_per_address: int = option(
        20, "Open connections from one client address (per worker); 0: unlimited.",
        check=_not_negative)
    max_connections_per_minute: int = option(
        120, "New connections from one client address per minute (per worker); more are "
        "answered 421 4.7.0 and closed; 0: unlimited.", check=_not_negative)
    idle_timeout: float = option(
        300.0, "Seconds a client may stay silent (RFC 5321 asks for at least 5 minutes).",
        check=_not_negative)
    proxy_protocol: bool = option(
        False, "Expect PROXY protocol headers from trusted_proxies on every listener.")
    trusted_proxies: list[str] = option(
        [], "Load balancers allowed to send PROXY headers.", check=check_networks)
    autoreply_interval: float = option(
        7 * 86400.0, "Seconds before the same sender gets the same out-of-office reply "
        "again (RFC 3834 suggests 7 days).", check=_not_negative)
