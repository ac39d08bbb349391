"""Thunderbird autoconfig (``config-v1.1.xml``) and the RFC 6764 ``/.well-known`` redirects.

``/.well-known/autoconfig/mail/config-v1.1.xml`` and
``/mail/config-v1.1.xml?emailaddress=`` describe the IMAP, POP3 and SMTP
listeners the enabled plugins contribute (and EWS as ``exchange``), under the
external host name. Anonymous, and the same for every address of a domain
except that users homed on another server get that server's name.
"""

from __future__ import annotations

from lxml import etree
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from gateway.directory.directory import plausible_name
from gateway.discovery import DiscoveryRequest, Endpoint
from gateway.host import Host
from plugins.autodiscover import resolve
from plugins.autodiscover.render import sub, xml_response

SOCKET_TYPES = {"SSL": "SSL", "STARTTLS": "STARTTLS", "PLAIN": "plain"}
INCOMING = {"IMAP": "imap", "POP3": "pop3"}


def _server(provider: etree._Element, tag: str, kind: str, endpoint: Endpoint,
            fallback_host: str) -> None:
    server = sub(provider, tag, attrib={"type": kind})
    sub(server, "hostname", endpoint.server or fallback_host)
    sub(server, "port", str(endpoint.port or 0))
    socket_type = endpoint.settings.get("SocketType", "SSL").upper()
    sub(server, "socketType", SOCKET_TYPES.get(socket_type, "SSL"))
    sub(server, "authentication", endpoint.settings.get("Authentication", "password-cleartext"))
    sub(server, "username", "%EMAILADDRESS%")


def _socket_rank(endpoint: Endpoint) -> int:
    return 0 if endpoint.settings.get("SocketType", "SSL").upper() == "SSL" else 1


async def autoconfig(host: Host, request: Request) -> Response:
    address = next((v for k, v in request.query_params.items() if k.lower() == "emailaddress"),
                   "")
    domain = address.rpartition("@")[2] if "@" in address else ""
    if address and (not plausible_name(address) or not domain):
        return PlainTextResponse("emailaddress is not an email address\n", status_code=400)
    settings = resolve.section(host)
    base = resolve.external_base(request, settings)
    if address:
        found = await resolve.resolve(host, address, None)
        if found.status == "redirect":
            base = f"https://{found.redirect_host}"
    request_info = DiscoveryRequest(address, "autoconfig", base)
    endpoints = resolve.collect(host, request_info)
    if not domain:
        domain = request_info.host
    root = etree.Element("clientConfig", {"version": "1.1"})
    provider = sub(root, "emailProvider", attrib={"id": domain})
    sub(provider, "domain", domain)
    sub(provider, "displayName", settings.display_name or domain)
    sub(provider, "displayShortName", (settings.display_name or domain).split(".")[0])
    for protocol, kind in INCOMING.items():
        for endpoint in sorted((e for e in endpoints if e.protocol == protocol), key=_socket_rank):
            _server(provider, "incomingServer", kind, endpoint, request_info.host)
    ews = resolve.first(endpoints, "EWS")
    if ews is not None and ews.url:
        server = sub(provider, "incomingServer", attrib={"type": "exchange"})
        sub(server, "hostname", request_info.host)
        sub(server, "port", "443")
        sub(server, "username", "%EMAILADDRESS%")
        sub(server, "socketType", "SSL")
        sub(server, "authentication", "password-cleartext")
        web = settings.web_url or next((e.url for e in endpoints
                                        if e.protocol == "WEB" and e.url), "")
        if web:
            sub(server, "owaURL", web)
        sub(server, "ewsURL", ews.url)
    for endpoint in sorted((e for e in endpoints if e.protocol == "SMTP"), key=_socket_rank):
        _server(provider, "outgoingServer", "smtp", endpoint, request_info.host)
    return xml_response(root)


async def well_known(host: Host, kind: str, request: Request) -> Response:
    """``/.well-known/caldav`` and ``/carddav``: 301 to the DAV plugin's context path."""
    settings = resolve.section(host)
    base = resolve.external_base(request, settings)
    endpoints = resolve.collect(host, DiscoveryRequest("", "wellknown", base))
    endpoint = resolve.first(endpoints, kind)
    if endpoint is None or not endpoint.url:
        return PlainTextResponse(f"{kind} is not served by this server\n", status_code=404)
    return RedirectResponse(endpoint.url, status_code=301)
