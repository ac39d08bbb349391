"""The ``[autodiscover]`` config section."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.auth.http import check_schemes
from gateway.auth.settings import check_positive
from gateway.config import option

HOST_PORT = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:[0-9]{1,5})?$"
                       r"|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
"""A host name or bracketed IPv6 address with an optional port: what a Host header may be."""


def check_host(value: str) -> None:
    if value and not HOST_PORT.match(value):
        raise ValueError("must be a host name with an optional :port, e.g. mail.example.org")


def check_url(value: str) -> None:
    if value and not re.match(r"^https?://[^\s<>\"]+$", value):
        raise ValueError("must be an http(s) URL")


@dataclass
class AutodiscoverSection:
    external_host: str = option(
        "", "Public host name (and :port) put into every generated URL, e.g. "
        "\"mail.example.org\"; URLs then use https. Empty: the name the client used (the Host "
        "header, or X-Forwarded-Host and -Proto from [http] trusted_proxies).",
        check=check_host)
    organization: str = option(
        "Gromox default", "X.500 organisation name in legacy DNs (/o=...), as grommunio's "
        "x500_org_name.")
    server_id: str = option(
        "", "This node's host id as in the servers table (servers.hostname); users homed on "
        "a server with another non-empty host id are redirected to its extname. Empty: this "
        "machine's host name.")
    deployment_id: str = option(
        "", "GUID reported as DeploymentId; empty: one derived from the organisation name.")
    web_url: str = option(
        "", "URL of a web client advertised as Protocol WEB (POX) and OWA; empty: none.",
        check=check_url)
    auth_schemes: list[str] = option(
        ["basic", "negotiate"], "HTTP authentication offered on POX and SOAP AutoDiscover "
        "(negotiate only while [spnego] enabled).", check=check_schemes)
    max_body_bytes: int = option(
        65536, "Largest POX or SOAP request body; larger gets 413 before any parsing.",
        check=check_positive)
    display_name: str = option(
        "", "Provider name shown by Thunderbird (autoconfig displayName); empty: the domain.")
