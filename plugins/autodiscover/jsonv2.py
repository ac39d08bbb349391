"""AutoDiscover v2 (JSON): ``GET /autodiscover/autodiscover.json/v1.0/{address}?Protocol=``
and ``GET /autodiscover/autodiscover.json?Email=...&Protocol=...``.

Anonymous, as in Exchange: the answer is a URL, never user data, and it is the
same for unknown addresses as for known local ones (no address probing); a
user homed on another server gets that server's URLs.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.directory.directory import plausible_name
from gateway.discovery import DiscoveryRequest
from gateway.host import Host
from plugins.autodiscover import resolve

PROTOCOLS = {"activesync": ("ActiveSync", "ActiveSync"), "ews": ("EWS", "EWS"),
             "autodiscoverv1": ("AutodiscoverV1", None)}
"""Accepted ``Protocol`` values (case-insensitive) → (name in the answer, endpoint protocol)."""


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"ErrorCode": code, "ErrorMessage": message}, status_code=status,
                        headers={"cache-control": "no-store"})


async def autodiscover_json(host: Host, request: Request) -> Response:
    address = request.path_params.get("address") or request.query_params.get("Email", "")
    if not address:
        for key, value in request.query_params.items():
            if key.lower() == "email":
                address = value
    protocol = request.query_params.get("Protocol", "")
    if not protocol:
        protocol = next((v for k, v in request.query_params.items() if k.lower() == "protocol"),
                        "")
    if not address or not plausible_name(address) or "@" not in address:
        return _error(400, "InvalidUser", "An email address is required "
                      "(/autodiscover/autodiscover.json/v1.0/{address}?Protocol=...)")
    known = PROTOCOLS.get(protocol.lower())
    if known is None:
        return _error(400, "InvalidProtocol", f"The given protocol value '{protocol[:64]}' is "
                      "invalid. Supported values are 'ActiveSync,Ews,AutodiscoverV1'.")
    name, endpoint_protocol = known
    settings = resolve.section(host)
    base = resolve.external_base(request, settings)
    found = await resolve.resolve(host, address, None)
    if found.status == "redirect":
        base = f"https://{found.redirect_host}"
    if endpoint_protocol is None:
        return JSONResponse({"Protocol": name, "Url": f"{base}/autodiscover/autodiscover.xml"},
                            headers={"cache-control": "no-store"})
    endpoints = resolve.collect(host, DiscoveryRequest(address, "json", base))
    endpoint = resolve.first(endpoints, endpoint_protocol)
    if endpoint is None or not endpoint.url:
        return _error(404, "ProtocolNotAvailable",
                      f"The protocol '{name}' is not served by this server.")
    return JSONResponse({"Protocol": name, "Url": endpoint.url},
                        headers={"cache-control": "no-store"})
