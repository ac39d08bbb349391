"""The ``[mail]`` config section: how mail leaves the gateway.

Outbound mail goes through ``relayhost`` when one is set, else (with
``mx_lookup``) straight to each recipient domain's MX hosts; with neither,
mail to remote addresses is refused at submission instead of sitting in the
queue until it expires.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass, field
from typing import Any

from gateway.config import option

TLS_MODES = ("none", "starttls", "tls")


@dataclass(frozen=True)
class RelayHost:
    """A parsed ``relayhost``: ``[host]:port`` (no MX lookup) or ``host:port`` (MX of host)."""

    host: str
    port: int
    mx: bool


def parse_relayhost(text: str) -> RelayHost | None:
    """``"[mail.example.net]:587"`` → ``RelayHost("mail.example.net", 587, mx=False)``.

    As in Postfix, brackets turn MX lookup off; without them the name's MX
    records are used. ``""`` means no relayhost. ``ValueError`` when malformed.
    """
    text = text.strip()
    if not text:
        return None
    if any(ord(ch) < 0x21 or ord(ch) > 0x7E for ch in text):
        raise ValueError(f"{text!r}: a relayhost is a host name or address, ASCII, no spaces")
    mx = True
    port = 25
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host:
            raise ValueError(f"{text!r}: an unclosed '[' (write [host]:port)")
        mx = False
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r}: expected ':port' after ']'")
            port = _port(text, rest[1:])
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            host = text
        elif ":" in host:
            raise ValueError(f"{text!r}: put an IPv6 address in brackets: [addr]:port")
        else:
            port = _port(text, port_text)
        if not host:
            raise ValueError(f"{text!r}: no host name")
    return RelayHost(host, port, mx)


def _port(text: str, value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return int(value)


def _check_relayhost(value: str) -> None:
    parse_relayhost(value)


def _check_tls(value: str) -> None:
    if value not in TLS_MODES:
        raise ValueError(f"one of {', '.join(TLS_MODES)}, not {value!r}")


def _check_schedule(value: list[int]) -> None:
    if not value:
        raise ValueError("give at least one delay in seconds, e.g. [60, 300, 900]")
    if any(delay <= 0 for delay in value):
        raise ValueError("every delay is a positive number of seconds")


def _check_positive(value: float) -> None:
    if value <= 0:
        raise ValueError("must be greater than 0")


def _check_not_negative(value: float) -> None:
    if value < 0:
        raise ValueError("must not be negative")


def _check_hostname(value: str) -> None:
    if value and not all(part and all(ch.isalnum() or ch == "-" for ch in part)
                         for part in value.split(".")):
        raise ValueError(f"{value!r} is not a host name")


@dataclass
class MailSection:
    hostname: str = option("", "Name of this mail system: EHLO to relays, Message-IDs it "
                           "adds, Reporting-MTA of bounces; empty: the machine's FQDN.",
                           check=_check_hostname)
    relayhost: str = option("", "Where all outbound mail goes, as in Postfix: \"[host]:port\" "
                            "(that host), \"host:port\" (host's MX records); empty: none.",
                            check=_check_relayhost)
    relay_user: str = option("", "User name for AUTH at the relayhost; empty: no AUTH.")
    relay_password: str = option("", "Password for AUTH at the relayhost.", secret=True)
    relay_tls: str = option("starttls", "TLS to the relayhost: none, starttls (required, "
                            "certificate checked) or tls (implicit TLS, e.g. port 465).",
                            check=_check_tls)
    relay_ca_file: str = option("", "PEM file of CAs trusted for the relayhost's certificate; "
                                "empty: the system's.")
    mx_lookup: bool = option(False, "Without a relayhost, deliver to each recipient domain's "
                             "MX hosts (A/AAAA when there is no MX). Off and no relayhost: "
                             "mail to remote addresses is refused at submission.")
    mx_port: int = option(25, "Port of MX hosts (25; other values only for tests).")
    dns_servers: list[str] = option([], "Name servers for MX lookups; empty: /etc/resolv.conf.")
    retry_schedule: list[int] = option([60, 300, 900, 3600, 14400], "Seconds before each "
                                       "retry of a deferred message; the last repeats.",
                                       check=_check_schedule)
    max_queue_age: int = option(432000, "Seconds a message may stay queued before it is "
                                "bounced (5 days).", check=_check_positive)
    delay_warning: int = option(14400, "Seconds after which a delay notice goes to a sender "
                                "who asked for one (DSN NOTIFY=DELAY); 0: never.",
                                check=_check_not_negative)
    max_message_bytes: int = option(50 * 1024 * 1024, "Largest message accepted for "
                                    "sending.", check=_check_positive)
    max_recipients: int = option(1000, "Most recipients of one message.",
                                 check=_check_positive)
    bounce_from: str = option("", "From address of bounces and delay notices; empty: "
                              "MAILER-DAEMON@hostname.")
    concurrency: int = option(8, "Queued messages one worker delivers at the same time.",
                              check=_check_positive)
    scan_interval: float = option(10.0, "Seconds between looks at the queue directory for "
                                  "messages that came due (other workers, gateway queue).",
                                  check=_check_positive)
    timeout: float = option(60.0, "Seconds to wait for a relay's greeting or reply.",
                            check=_check_positive)


@dataclass(frozen=True)
class MailSettings:
    """:class:`MailSection` with the derived values filled in."""

    section: MailSection
    hostname: str
    bounce_from: str
    relay: RelayHost | None = field(default=None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.section, name)


@functools.cache
def machine_fqdn() -> str:
    """The machine's fully qualified name, looked up once per process."""
    name = socket.getfqdn()
    return name if name and name != "localhost" and "." in name else (name or "localhost")


def resolve(section: MailSection) -> MailSettings:
    hostname = section.hostname or machine_fqdn()
    return MailSettings(section=section, hostname=hostname,
                        bounce_from=section.bounce_from or f"MAILER-DAEMON@{hostname}",
                        relay=parse_relayhost(section.relayhost))


def mail_settings(host: Any) -> MailSettings:
    """The host's ``[mail]`` settings; the defaults while the section is not registered."""
    config = host.config
    section = config.mail if "mail" in config else MailSection()
    return resolve(section)
