"""The host's own config sections, declared like any plugin's.

Defaults here are also written out in ``conf.d/00-gateway.toml``; a test
keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway import hookimpl
from gateway.auth.settings import AuthSection, LdapSection
from gateway.auth.spnego import SpnegoSection
from gateway.config import option
from gateway.mail.settings import MailSection
from gateway.net.proxy import parse_networks
from gateway.store.settings import StoreSection


def check_networks(entries: list[str]) -> None:
    """Refuse a list of addresses/networks with a malformed entry."""
    parse_networks(tuple(entries))


@dataclass
class GatewaySection:
    data_dir: str = option("./var", "Where mailboxes, the embedded directory and generated "
                           "TLS keys live; relative paths are taken from the working directory.")
    log_level: str = option("info", "debug, info, warning or error.")
    workers: int = option(1, "Worker processes sharing the listeners (gateway serve --workers).")
    grace_period: float = option(10.0, "Seconds SIGTERM waits for in-flight work before closing.")


@dataclass
class HttpSection:
    listen: list[str] = option(["127.0.0.1:8080"], "Plain HTTP listeners, host:port.")
    listen_tls: list[str] = option(["127.0.0.1:8443"], "HTTPS listeners, host:port.")
    trusted_proxies: list[str] = option(
        [], "Addresses or networks whose X-Forwarded-For/-Proto and X-Request-ID are believed.",
        check=check_networks)
    max_header_bytes: int = option(
        16384, "Largest request head (HTTP/1.1) or header list (HTTP/2).")
    max_body_bytes: int = option(64 * 1024 * 1024, "Largest request body; larger gets 413.")
    keep_alive_timeout: float = option(15.0, "Seconds an idle keep-alive connection is kept.")
    read_timeout: int = option(
        0, "Seconds a client may take to send the next bytes of a request; 0: no limit. "
        "Costs about 5% of request throughput (a timer per read); a client silent before "
        "its request is closed after keep_alive_timeout whatever this says.")
    access_log: bool = option(True, "One line per request on standard error (gateway.access).")


@dataclass
class TlsSection:
    certificate: str = option("", "PEM certificate chain; empty: a self-signed pair is "
                              "generated into data_dir/tls on first start.")
    private_key: str = option("", "PEM private key matching the certificate.")


@dataclass
class DirectorySection:
    url: str = option("", "SQLAlchemy URL of the user directory (mysql+aiomysql://... for a "
                      "grommunio MariaDB); empty: SQLite under data_dir.", secret=True)
    cache_ttl: float = option(60.0, "Seconds directory lookups (users, login names, "
                              "organisation settings) are cached; SIGHUP drops the cache; "
                              "0: no cache.")


@dataclass
class RedisSection:
    url: str = option("", "redis:// URL for notifications across processes and nodes; "
                      "empty: everything stays in-process.", secret=True)


@dataclass
class PluginsSection:
    disabled: list[str] = option([], "Names of installed plugins not to load.")
    modules: list[str] = option([], "Extra plugin modules to load by dotted name "
                                "(site plugins that are not packaged).")


@hookimpl
def gateway_config_schema() -> Mapping[str, type]:
    return {
        "gateway": GatewaySection,
        "http": HttpSection,
        "tls": TlsSection,
        "directory": DirectorySection,
        "redis": RedisSection,
        "plugins": PluginsSection,
        "auth": AuthSection,
        "ldap": LdapSection,
        "spnego": SpnegoSection,
        "store": StoreSection,
        "mail": MailSection,
    }
