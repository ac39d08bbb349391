"""POX AutoDiscover (MS-OXDSCLI, and the mobilesync schema of MS-ASCMD) at
``/Autodiscover/Autodiscover.xml``.

POST only, authenticated (the route wraps this in :class:`gateway.auth.http.HttpAuth`).
The request names ``EMailAddress`` and ``AcceptableResponseSchema``; the answer is
the outlook 2006a schema (User, Account with one Protocol per contributed endpoint,
AlternativeMailbox entries) or mobilesync (the ActiveSync URL). A bad request gets
the schema's own Error (600 invalid request, 601 schema not served, 500 unknown
address), never a traceback; another user's settings only with rights on that mailbox.
A user's own answer with no rights involved is cached like the directory's lookups.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth.http import PRINCIPAL
from gateway.discovery import DiscoveryRequest, Endpoint
from gateway.host import Host
from gateway.xmlsafe import BadXml, BodyTooLarge, parse, read_body, text_of
from plugins.autodiscover import resolve
from plugins.autodiscover.render import XmlWriter, bytes_response, error_id, error_time

NS_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
NS_OUTLOOK_REQUEST = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
NS_OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
NS_MOBILE_REQUEST = (
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006")
NS_MOBILE = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
REQUEST_SCHEMAS = {NS_OUTLOOK_REQUEST: NS_OUTLOOK, NS_MOBILE_REQUEST: NS_MOBILE}
RESPONSE_SCHEMAS = {NS_OUTLOOK: "outlook", NS_MOBILE: "mobilesync"}

EXCHANGE_TYPES = ("EXCH", "EXPR")
MAIL_TYPES = ("IMAP", "POP3", "SMTP")


def error_document(namespace: str | None, code: int, message: str,
                   debug: str = "") -> bytes:
    """``Autodiscover/Response/Error`` in the response namespace (2006 when unknown)."""
    xml = XmlWriter()
    xml.open("Autodiscover", xmlns=NS_RESPONSE)
    if namespace:
        xml.open("Response", xmlns=namespace)
    else:
        xml.open("Response")
    xml.open("Error", Time=error_time(), Id=error_id())
    xml.leaf("ErrorCode", str(code))
    xml.leaf("Message", message)
    xml.leaf("DebugData", debug)
    xml.close("Error")
    xml.close("Response")
    xml.close("Autodiscover")
    return xml.data()


def error_response(namespace: str | None, code: int, message: str, status: int = 200,
                   headers: dict[str, str] | None = None) -> Response:
    return bytes_response(error_document(namespace, code, message), status, headers)


async def method_not_allowed(request: Request) -> Response:
    return error_response(None, 600, f"Invalid Request: {request.method} is not served here; "
                          "AutoDiscover requests are POSTed", 405, {"allow": "POST"})


def _exchange_urls(endpoints: Sequence[Endpoint]) -> list[tuple[str, str]]:
    """URL elements every EXCH/EXPR entry carries: EWS (also availability and OOF), OAB."""
    urls = []
    ews = resolve.first(endpoints, "EWS")
    if ews is not None and ews.url:
        urls += [("ASUrl", ews.url), ("EwsUrl", ews.url), ("OOFUrl", ews.url)]
    oab = resolve.first(endpoints, "OAB")
    if oab is not None and oab.url:
        urls.append(("OABUrl", oab.url))
    return urls


def _mail_protocol(xml: XmlWriter, endpoint: Endpoint, login: str) -> None:
    xml.open("Protocol")
    xml.leaf("Type", endpoint.protocol)
    if endpoint.server:
        xml.leaf("Server", endpoint.server)
    if endpoint.port:
        xml.leaf("Port", str(endpoint.port))
    xml.leaf("LoginName", endpoint.settings.get("LoginName") or login)
    xml.leaf("DomainRequired", "off")
    xml.leaf("SPA", "off")
    socket_type = endpoint.settings.get("SocketType", "SSL").upper()
    xml.leaf("SSL", "off" if socket_type == "PLAIN" else "on")
    if socket_type in ("SSL", "STARTTLS"):
        xml.leaf("Encryption", "SSL" if socket_type == "SSL" else "TLS")
    xml.leaf("AuthRequired", "on")
    xml.close("Protocol")


def outlook_account(xml: XmlWriter, endpoints: Sequence[Endpoint], login: str,
                    web_url: str, mapi_http: bool) -> None:
    """One Protocol per contributed endpoint, in MS-OXDSCLI form."""
    urls = _exchange_urls(endpoints)
    exchange = [e for e in endpoints if e.protocol in EXCHANGE_TYPES]
    if not exchange and urls:
        exchange = [Endpoint("EXPR")]
    for endpoint in exchange:
        xml.open("Protocol")
        xml.leaf("Type", endpoint.protocol)
        if endpoint.server:
            xml.leaf("Server", endpoint.server)
        for name, value in endpoint.settings.items():
            xml.leaf(name, value)
        for name, value in urls:
            xml.leaf(name, value)
        xml.close("Protocol")
    web = web_url or next((e.url for e in endpoints if e.protocol == "WEB" and e.url), "")
    if web:
        xml.open("Protocol")
        xml.leaf("Type", "WEB")
        for place in ("Internal", "External"):
            xml.open(place)
            xml.leaf("OWAUrl", web, AuthenticationMethod="Basic, Fba")
            xml.close(place)
        xml.close("Protocol")
    if mapi_http:
        for endpoint in endpoints:
            if endpoint.protocol == "mapiHttp" and endpoint.url:
                xml.open("Protocol", Type="mapiHttp", Version="1")
                for part, url in (("MailStore", endpoint.url),
                                  ("AddressBook", endpoint.settings.get("AddressBookUrl", ""))):
                    if url:
                        xml.open(part)
                        xml.leaf("InternalUrl", url)
                        xml.leaf("ExternalUrl", url)
                        xml.close(part)
                xml.close("Protocol")
    if not exchange:
        mail = sorted((e for e in endpoints if e.protocol in MAIL_TYPES),
                      key=lambda e: MAIL_TYPES.index(e.protocol))  # incoming first
        for endpoint in mail:
            _mail_protocol(xml, endpoint, login)


def _outlook_start(xml: XmlWriter) -> None:
    xml.open("Autodiscover", xmlns=NS_RESPONSE)
    xml.open("Response", xmlns=NS_OUTLOOK)


def _outlook_end(xml: XmlWriter) -> bytes:
    xml.close("Account")
    xml.close("Response")
    xml.close("Autodiscover")
    return xml.data()


async def _answer_outlook(host: Host, request: Request, address: str, login: str,
                          base: str) -> Response:
    found = await resolve.resolve(host, address, login)
    if found.status == "unknown" or found.user is None:
        return error_response(NS_OUTLOOK, 500, "The email address cannot be found.")
    user = found.user
    capability = request.headers.get("x-mapihttpcapability", "0").strip()
    mapi_http = capability.isdigit() and int(capability) >= 1
    if found.status == "ok" and not found.alternatives and not found.checked_rights:
        # The user's own answer, no store consulted: a function of directory data and the
        # endpoints, kept as long as the directory's own lookups (SIGHUP forgets both).
        data: bytes = await host.directory.cached(
            ("autodiscover-pox", user.id, login, base, mapi_http),
            lambda: _render_outlook(host, found, login, base, mapi_http))
        return bytes_response(data)
    return bytes_response(await _render_outlook(host, found, login, base, mapi_http))


async def _render_outlook(host: Host, found: resolve.Resolution, login: str, base: str,
                          mapi_http: bool) -> bytes:
    assert found.user is not None
    settings = resolve.section(host)
    xml = XmlWriter()
    _outlook_start(xml)
    user = found.user
    if found.status == "redirect":
        xml.open("Account")
        xml.leaf("AccountType", "email")
        xml.leaf("Action", "redirectUrl")
        xml.leaf("RedirectUrl", f"https://{found.redirect_host}/Autodiscover/Autodiscover.xml")
        return _outlook_end(xml)
    xml.open("User")
    xml.leaf("DisplayName", resolve.display_name(user))
    xml.leaf("LegacyDN", resolve.legacy_dn(settings, user))
    xml.leaf("AutoDiscoverSMTPAddress", user.username)
    xml.leaf("DeploymentId", resolve.deployment_id(settings))
    xml.close("User")
    xml.open("Account")
    xml.leaf("AccountType", "email")
    xml.leaf("Action", "settings")
    xml.leaf("MicrosoftOnline", "False")
    endpoints = resolve.collect(host, DiscoveryRequest(user.username, "outlook", base, login))
    outlook_account(xml, endpoints, login, settings.web_url, mapi_http)
    for alternative in found.alternatives:
        xml.open("AlternativeMailbox")
        xml.leaf("Type", "Delegate")
        xml.leaf("DisplayName", resolve.display_name(alternative.user))
        xml.leaf("LegacyDN", alternative.legacy_dn)
        xml.leaf("Server", alternative.user.username)
        xml.leaf("SmtpAddress", alternative.user.username)
        xml.leaf("OwnerSmtpAddress", alternative.user.username)
        xml.close("AlternativeMailbox")
    return _outlook_end(xml)


async def _answer_mobile(host: Host, address: str, login: str, base: str) -> Response:
    found = await resolve.resolve(host, address, login)
    known = found.user is not None and found.status != "unknown"
    eas = None
    if known and found.user is not None:
        if found.status == "redirect":
            # mobilesync can redirect only to another address; the home server's own
            # ActiveSync URL is the answer instead
            base = f"https://{found.redirect_host}"
        endpoints = resolve.collect(host, DiscoveryRequest(found.user.username, "mobilesync",
                                                            base, login))
        eas = resolve.first(endpoints, "ActiveSync")
        if eas is None or not eas.url:
            return error_response(NS_MOBILE, 601, "ActiveSync is not served for this mailbox.")
    xml = XmlWriter()
    xml.open("Autodiscover", xmlns=NS_RESPONSE)
    xml.open("Response", xmlns=NS_MOBILE)
    xml.leaf("Culture", "en:us")
    xml.open("User")
    if found.user is not None and found.status == "ok":  # a redirect names nobody
        xml.leaf("DisplayName", resolve.display_name(found.user))
    xml.leaf("EMailAddress", found.user.username if known and found.user else address)
    xml.close("User")
    xml.open("Action")
    if eas is None or not eas.url:
        xml.open("Error")
        xml.leaf("Status", "2")
        xml.leaf("Message", "The email address cannot be found.")
        xml.leaf("DebugData", "MailUser")
        xml.close("Error")
    else:
        xml.open("Settings")
        xml.open("Server")
        xml.leaf("Type", "MobileSync")
        xml.leaf("Url", eas.url)
        xml.leaf("Name", eas.url)
        xml.close("Server")
        xml.close("Settings")
    xml.close("Action")
    xml.close("Response")
    xml.close("Autodiscover")
    return bytes_response(xml.data())


async def pox(host: Host, request: Request) -> Response:
    """``POST /Autodiscover/Autodiscover.xml`` (after authentication)."""
    settings = resolve.section(host)
    try:
        body = await read_body(request, settings.max_body_bytes)
    except BodyTooLarge:
        # connection: close, as the host's own 413: the unread rest of the body must not
        # be taken for the next request
        return error_response(None, 600, "Invalid Request: the request body is too large.", 413,
                              {"connection": "close"})
    try:
        root = parse(body)
    except BadXml as exc:
        return error_response(None, 600, f"Invalid Request: {exc}")
    qname = etree.QName(root)
    wanted = REQUEST_SCHEMAS.get(qname.namespace or "")
    if qname.localname != "Autodiscover" or wanted is None:
        return error_response(None, 600, "Invalid Request: not an AutoDiscover request of the "
                              "outlook or mobilesync request schema")
    request_tag = f"{{{qname.namespace}}}Request"
    accepted = (text_of(root, request_tag, f"{{{qname.namespace}}}AcceptableResponseSchema")
                or wanted)
    if accepted not in RESPONSE_SCHEMAS:
        return error_response(wanted, 601, "The requested response schema is not served: "
                              + accepted[:200])
    address = text_of(root, request_tag, f"{{{qname.namespace}}}EMailAddress")
    if not address:
        return error_response(accepted, 600, "Invalid Request: EMailAddress is missing")
    principal = request.scope[PRINCIPAL]
    base = resolve.external_base(request, settings)
    if RESPONSE_SCHEMAS[accepted] == "mobilesync":
        return await _answer_mobile(host, address, principal.username, base)
    return await _answer_outlook(host, request, address, principal.username, base)
