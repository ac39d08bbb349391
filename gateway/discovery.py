"""Types exchanged through ``gateway_autodiscover_endpoints``.

A discovery plugin builds a :class:`DiscoveryRequest`, asks every enabled
plugin for its :class:`Endpoint` entries and renders them in whatever schema
the client asked for (POX, SOAP, JSON, autoconfig).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DiscoveryRequest:
    """One client's question: where is this mailbox served?"""

    address: str
    """The SMTP address the client asked about."""
    schema: str
    """What the client wants: ``"outlook"``, ``"mobilesync"``, ``"soap"``, ``"json"``, ..."""
    base_url: str
    """External base URL of this gateway as the client reached it (``https://mail.example.org``)."""
    principal: str | None = None
    """The authenticated user, when the request was authenticated."""


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
