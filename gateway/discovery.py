"""Types exchanged through ``gateway_autodiscover_endpoints``.

A discovery plugin builds a :class:`DiscoveryRequest`, asks every enabled
plugin for its :class:`Endpoint` entries and renders them in whatever schema
the client asked for (POX, SOAP, JSON, autoconfig).

Conventions the renderers rely on (``Endpoint.protocol`` → what to fill in):

* ``"EXCH"``, ``"EXPR"``: ``server`` and ``settings`` as MS-OXDSCLI Protocol
  child elements (``ServerDN``, ``ServerVersion``, ``MdbDN``, ``AuthPackage``,
  ``CertPrincipalName``, ``SSL`` ...), in the order given.
* ``"mapiHttp"``: ``url`` is the mail store (EMSMDB) URL,
  ``settings["AddressBookUrl"]`` the NSPI URL.
* ``"EWS"``: ``url``; ``settings["EwsSupportedSchemas"]`` (comma-separated
  ``Exchange2016, ...``) and ``settings["CasVersion"]`` for SOAP AutoDiscover.
  ``"OAB"``: ``url``. ``"WEB"``: ``url`` (the web client).
* ``"ActiveSync"``: ``url`` of ``/Microsoft-Server-ActiveSync``.
* ``"CalDAV"``, ``"CardDAV"``: ``url`` of the DAV context path.
* ``"IMAP"``, ``"POP3"``, ``"SMTP"``: ``server`` (usually
  :attr:`DiscoveryRequest.host`), ``port`` and ``settings["SocketType"]``
  (``"SSL"`` for implicit TLS, ``"STARTTLS"``, ``"plain"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit


@dataclass(frozen=True)
class DiscoveryRequest:
    """One client's question: where is this mailbox served?"""

    address: str
    """The SMTP address the client asked about (empty for well-known lookups)."""
    schema: str
    """What the client wants: ``"outlook"``, ``"mobilesync"``, ``"soap"``, ``"json"``,
    ``"autoconfig"``, ``"wellknown"``, ..."""
    base_url: str
    """External base URL of this gateway as the client reached it (``https://mail.example.org``)."""
    principal: str | None = None
    """The authenticated user, when the request was authenticated."""

    @cached_property
    def host(self) -> str:
        """The external host name of :attr:`base_url`, without port (``mail.example.org``)."""
        return urlsplit(self.base_url).hostname or ""


@dataclass(frozen=True)
class Endpoint:
    """One protocol entry advertised to clients."""

    protocol: str
    """Protocol name as discovery schemas spell it: ``"EXCH"``, ``"EXPR"``, ``"mapiHttp"``,
    ``"EWS"``, ``"OAB"``, ``"ActiveSync"``, ``"CalDAV"``, ``"CardDAV"``, ``"IMAP"``, ``"SMTP"``."""
    url: str | None = None
    server: str | None = None
    port: int | None = None
    settings: Mapping[str, str] = field(default_factory=dict)
    """Further schema-specific elements (``{"SSL": "On", "AuthPackage": "Negotiate"}``)."""


def listener_port(listener: str) -> int | None:
    """The port of a ``host:port`` / ``[v6]:port`` listener, None when it has none."""
    _, colon, port = listener.rpartition(":")
    return int(port) if colon and port.isdigit() else None
