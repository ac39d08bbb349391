"""SOAP AutoDiscover (MS-OXWSADISC) at ``/autodiscover/autodiscover.svc``.

GetUserSettings and GetDomainSettings, SOAP 1.1 or 1.2, after authentication
(the 401 of :class:`gateway.auth.http.HttpAuth` advertises the configured
schemes, which is how exchangelib picks its auth type). Each requested
setting the contributed endpoints can answer is returned; any other gets a
``UserSettingError`` (``InvalidSetting`` for names MS-OXWSADISC does not know
here, ``SettingIsNotAvailable`` for those with no value), as Exchange does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lxml import etree
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth.http import PRINCIPAL
from gateway.directory.models import Domains
from gateway.discovery import DiscoveryRequest, Endpoint
from gateway.host import Host
from gateway.xmlsafe import BadXml, BodyTooLarge, parse, read_body
from plugins.autodiscover import resolve
from plugins.autodiscover.render import sub, xml_response

NS = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ACTION = "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/"
MAX_USERS = 100
MAX_SETTINGS = 200
CAS_VERSION = "15.01.2507.000"
DEFAULT_SCHEMAS = "Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, " \
    "Exchange2010_SP2, Exchange2013, Exchange2013_SP1, Exchange2016"
SERVER_VERSION = (("MajorVersion", "15"), ("MinorVersion", "1"), ("MajorBuildNumber", "2507"),
                  ("MinorBuildNumber", "0"), ("Version", "Exchange2016"))

class UserInfo:
    def __init__(self, display_name: str, legacy_dn: str, address: str, deployment: str,
                 host_name: str):
        self.display_name = display_name
        self.legacy_dn = legacy_dn
        self.address = address
        self.deployment = deployment
        self.host_name = host_name


def _url(protocol: str) -> Callable[[UserInfo, Sequence[Endpoint]], str | None]:
    def get(_: UserInfo, endpoints: Sequence[Endpoint]) -> str | None:
        found = resolve.first(endpoints, protocol)
        return found.url if found is not None else None
    return get


def _setting(protocol: str, key: str, default: str | None = None
             ) -> Callable[[UserInfo, Sequence[Endpoint]], str | None]:
    def get(_: UserInfo, endpoints: Sequence[Endpoint]) -> str | None:
        found = resolve.first(endpoints, protocol)
        if found is None:
            return None
        return found.settings.get(key, default)
    return get


def _rpc_server(_: UserInfo, endpoints: Sequence[Endpoint]) -> str | None:
    found = resolve.first(endpoints, "EXPR") or resolve.first(endpoints, "EXCH")
    return found.server if found is not None else None


def _mailbox_dn(_: UserInfo, endpoints: Sequence[Endpoint]) -> str | None:
    found = resolve.first(endpoints, "EXCH") or resolve.first(endpoints, "EXPR")
    return found.settings.get("MdbDN") if found is not None else None


def _mapi_enabled(_: UserInfo, endpoints: Sequence[Endpoint]) -> str:
    return "True" if resolve.first(endpoints, "mapiHttp") is not None else "False"


def _expr_auth(_: UserInfo, endpoints: Sequence[Endpoint]) -> str | None:
    found = resolve.first(endpoints, "EXPR")
    return found.settings.get("AuthPackage") if found is not None else None


USER_SETTINGS: dict[str, Callable[[UserInfo, Sequence[Endpoint]], str | None]] = {
    "UserDisplayName": lambda u, _: u.display_name,
    "UserDN": lambda u, _: u.legacy_dn,
    "UserDeploymentId": lambda u, _: u.deployment,
    "AutoDiscoverSMTPAddress": lambda u, _: u.address,
    "MailboxDN": _mailbox_dn,
    "ExternalEwsUrl": _url("EWS"),
    "InternalEwsUrl": _url("EWS"),
    "ExternalEwsVersion": _setting("EWS", "CasVersion", CAS_VERSION),
    "EwsSupportedSchemas": _setting("EWS", "EwsSupportedSchemas", DEFAULT_SCHEMAS),
    "CasVersion": lambda _u, e: (resolve.first(e, "EWS") or Endpoint("EWS")).settings.get(
        "CasVersion", CAS_VERSION),
    "ExternalOABUrl": _url("OAB"),
    "InternalOABUrl": _url("OAB"),
    "MapiHttpEnabled": _mapi_enabled,
    "MapiHttpVersion": lambda _u, e: "1" if resolve.first(e, "mapiHttp") else None,
    "ExternalMailboxServer": _rpc_server,
    "InternalMailboxServer": _rpc_server,
    "InternalRpcClientServer": _rpc_server,
    "ExternalMailboxServerRequiresSSL": lambda u, e: "True" if _rpc_server(u, e) else None,
    "ExternalMailboxServerAuthenticationMethods": _expr_auth,
    "ActiveSyncUrl": _url("ActiveSync"),
    "UserMSOnline": lambda _u, _e: "False",
    "CrossOrganizationSharingEnabled": lambda _u, _e: "False",
    "ShowGalAsDefaultView": lambda _u, _e: "True",
}
KNOWN_UNAVAILABLE = frozenset({
    "InternalMailboxServerDN", "InternalEcpUrl", "ExternalEcpUrl", "InternalUMUrl",
    "ExternalUMUrl", "InternalWebClientUrls", "ExternalWebClientUrls", "PublicFolderServer",
    "ActiveDirectoryServer", "ExchangeRpcUrl", "InteropExternalEwsUrl",
    "InteropExternalEwsVersion", "MobileMailboxPolicyInterop", "GroupingInformation",
    "InternalPop3Connections", "ExternalPop3Connections", "InternalImap4Connections",
    "ExternalImap4Connections", "InternalSmtpConnections", "ExternalSmtpConnections",
    "InternalServerExclusiveConnect", "ExternalServerExclusiveConnect",
})
DOMAIN_SETTINGS = ("ExternalEwsUrl", "ExternalEwsVersion")


class SoapError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _envelope(soap: str, operation: str) -> tuple[etree._Element, etree._Element]:
    env = etree.Element(f"{{{soap}}}Envelope",
                        nsmap={"s": soap, "a": WSA, "i": XSI})
    header = etree.SubElement(env, f"{{{soap}}}Header")
    action = etree.SubElement(header, f"{{{WSA}}}Action", {f"{{{soap}}}mustUnderstand": "1"})
    action.text = ACTION + operation
    info = etree.SubElement(header, f"{{{NS}}}ServerVersionInfo", nsmap={"h": NS})
    for name, value in SERVER_VERSION:
        sub(info, name, value)
    body = etree.SubElement(env, f"{{{soap}}}Body")
    return env, body


def fault(soap: str, message: str, status: int) -> Response:
    env = etree.Element(f"{{{soap}}}Envelope", nsmap={"s": soap})
    body = etree.SubElement(env, f"{{{soap}}}Body")
    node = etree.SubElement(body, f"{{{soap}}}Fault")
    if soap == SOAP12:
        code = etree.SubElement(node, f"{{{soap}}}Code")
        etree.SubElement(code, f"{{{soap}}}Value").text = "s:Sender"
        reason = etree.SubElement(node, f"{{{soap}}}Reason")
        text = etree.SubElement(reason, f"{{{soap}}}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text.text = message
    else:
        etree.SubElement(node, "faultcode").text = "s:Client"
        etree.SubElement(node, "faultstring").text = message
    return xml_response(env, status)


def _requested(request: etree._Element) -> list[str]:
    names = [(s.text or "").strip()
             for s in request.findall(f"{{{NS}}}RequestedSettings/{{{NS}}}Setting")]
    if not names or len(names) > MAX_SETTINGS:
        raise SoapError(f"RequestedSettings must name 1 to {MAX_SETTINGS} settings")
    return names


async def _user_response(host: Host, parent: etree._Element, mailbox: str, login: str,
                         names: list[str], base: str) -> None:
    node = sub(parent, "UserResponse")
    found = await resolve.resolve(host, mailbox, login)
    if found.status == "unknown" or found.user is None:
        sub(node, "ErrorCode", "InvalidUser")
        sub(node, "ErrorMessage", "Invalid user: " + mailbox[:320])
        sub(node, "RedirectTarget", attrib={f"{{{XSI}}}nil": "true"})
        sub(node, "UserSettingErrors")
        sub(node, "UserSettings")
        return
    if found.status == "redirect":
        sub(node, "ErrorCode", "RedirectUrl")
        sub(node, "ErrorMessage", "The mailbox is served by another server.")
        sub(node, "RedirectTarget",
            f"https://{found.redirect_host}/autodiscover/autodiscover.svc")
        sub(node, "UserSettingErrors")
        sub(node, "UserSettings")
        return
    user = found.user
    settings = resolve.section(host)
    info = UserInfo(resolve.display_name(user), resolve.legacy_dn(settings, user),
                    user.username, resolve.deployment_id(settings), base)
    endpoints = resolve.collect(host, DiscoveryRequest(user.username, "soap", base, login))
    sub(node, "ErrorCode", "NoError")
    sub(node, "ErrorMessage", "No error.")
    sub(node, "RedirectTarget", attrib={f"{{{XSI}}}nil": "true"})
    errors = sub(node, "UserSettingErrors")
    values = sub(node, "UserSettings")
    for name in dict.fromkeys(names):
        if name == "AlternateMailboxes":
            _alternate_mailboxes(values, found.alternatives)
            continue
        compute = USER_SETTINGS.get(name)
        value = compute(info, endpoints) if compute is not None else None
        if value is None:
            error = sub(errors, "UserSettingError")
            known = compute is not None or name in KNOWN_UNAVAILABLE
            sub(error, "ErrorCode", "SettingIsNotAvailable" if known else "InvalidSetting")
            sub(error, "ErrorMessage", ("No value is available for " if known
                                        else "Unknown setting ") + name[:100])
            sub(error, "SettingName", name[:100])
            continue
        setting = sub(values, "UserSetting", attrib={f"{{{XSI}}}type": "StringSetting"})
        sub(setting, "Name", name)
        sub(setting, "Value", value)


def _alternate_mailboxes(values: etree._Element,
                         alternatives: Sequence[resolve.Alternative]) -> None:
    """Outlook's additional mailboxes (secondary_store_hints the user has rights on)."""
    setting = sub(values, "UserSetting",
                  attrib={f"{{{XSI}}}type": "AlternateMailboxCollectionSetting"})
    sub(setting, "Name", "AlternateMailboxes")
    collection = sub(setting, "AlternateMailboxes")
    for alternative in alternatives:
        entry = sub(collection, "AlternateMailbox")
        sub(entry, "Type", "Delegate")
        sub(entry, "DisplayName", resolve.display_name(alternative.user))
        sub(entry, "LegacyDN", alternative.legacy_dn)
        sub(entry, "Server", alternative.user.username)
        sub(entry, "SmtpAddress", alternative.user.username)
        sub(entry, "OwnerSmtpAddress", alternative.user.username)


async def get_user_settings(host: Host, request: Request, message: etree._Element,
                            body: etree._Element, base: str) -> None:
    inner = message.find(f"{{{NS}}}Request")
    if inner is None:
        raise SoapError("GetUserSettingsRequestMessage has no Request")
    mailboxes = [(m.text or "").strip()
                 for m in inner.findall(f"{{{NS}}}Users/{{{NS}}}User/{{{NS}}}Mailbox")]
    if not mailboxes or len(mailboxes) > MAX_USERS:
        raise SoapError(f"Users must name 1 to {MAX_USERS} mailboxes")
    names = _requested(inner)
    login = request.scope[PRINCIPAL].username
    message_out = etree.SubElement(body, f"{{{NS}}}GetUserSettingsResponseMessage",
                                   nsmap={None: NS})
    response = sub(message_out, "Response")
    sub(response, "ErrorCode", "NoError")
    sub(response, "ErrorMessage", "")
    users = sub(response, "UserResponses")
    for mailbox in mailboxes:
        await _user_response(host, users, mailbox, login, names, base)


async def _domain_exists(host: Host, domain: str) -> bool:
    async def compute() -> bool:
        async with host.directory.engine.connect() as conn:
            row = (await conn.execute(select(Domains.id)
                                      .where(Domains.domainname == domain))).first()
        return row is not None

    found: bool = await host.directory.cached(("autodiscover-domain", domain.lower()), compute)
    return found


async def get_domain_settings(host: Host, request: Request, message: etree._Element,
                              body: etree._Element, base: str) -> None:
    inner = message.find(f"{{{NS}}}Request")
    if inner is None:
        raise SoapError("GetDomainSettingsRequestMessage has no Request")
    domains = [(d.text or "").strip()
               for d in inner.findall(f"{{{NS}}}Domains/{{{NS}}}Domain")]
    if not domains or len(domains) > MAX_USERS:
        raise SoapError(f"Domains must name 1 to {MAX_USERS} domains")
    names = _requested(inner)
    login = request.scope[PRINCIPAL].username
    endpoints = resolve.collect(host, DiscoveryRequest("", "soap", base, login))
    ews = resolve.first(endpoints, "EWS")
    message_out = etree.SubElement(body, f"{{{NS}}}GetDomainSettingsResponseMessage",
                                   nsmap={None: NS})
    response = sub(message_out, "Response")
    sub(response, "ErrorCode", "NoError")
    sub(response, "ErrorMessage", "")
    answers = sub(response, "DomainResponses")
    for domain in domains:
        node = sub(answers, "DomainResponse")
        if len(domain) > 255 or not await _domain_exists(host, domain):
            sub(node, "ErrorCode", "InvalidDomain")
            sub(node, "ErrorMessage", "Invalid domain: " + domain[:255])
            continue
        sub(node, "ErrorCode", "NoError")
        sub(node, "ErrorMessage", "No error.")
        errors = sub(node, "DomainSettingErrors")
        values = sub(node, "DomainSettings")
        for name in dict.fromkeys(names):
            value = None
            if ews is not None and name == "ExternalEwsUrl":
                value = ews.url
            elif ews is not None and name == "ExternalEwsVersion":
                value = ews.settings.get("CasVersion", CAS_VERSION)
            if value is None:
                error = sub(errors, "DomainSettingError")
                sub(error, "ErrorCode", "SettingIsNotAvailable" if name in DOMAIN_SETTINGS
                    else "InvalidSetting")
                sub(error, "ErrorMessage", "No value for " + name[:100])
                sub(error, "SettingName", name[:100])
                continue
            setting = sub(values, "DomainSetting",
                          attrib={f"{{{XSI}}}type": "DomainStringSetting"})
            sub(setting, "Name", name)
            sub(setting, "Value", value)
        sub(node, "RedirectTarget", attrib={f"{{{XSI}}}nil": "true"})


OPERATIONS = {
    "GetUserSettingsRequestMessage": ("GetUserSettingsResponse", get_user_settings),
    "GetDomainSettingsRequestMessage": ("GetDomainSettingsResponse", get_domain_settings),
}


async def soap(host: Host, request: Request) -> Response:
    """``POST /autodiscover/autodiscover.svc`` (after authentication)."""
    settings = resolve.section(host)
    try:
        data = await read_body(request, settings.max_body_bytes)
    except BodyTooLarge:
        response = fault(SOAP11, "The request body is too large.", 413)
        response.headers["connection"] = "close"  # the unread body must not become a request
        return response
    try:
        root = parse(data)
    except BadXml as exc:
        return fault(SOAP11, str(exc), 400)
    qname = etree.QName(root)
    if qname.localname != "Envelope" or qname.namespace not in (SOAP11, SOAP12):
        return fault(SOAP11, "Not a SOAP 1.1 or 1.2 Envelope.", 400)
    soap_ns = qname.namespace
    body_in = root.find(f"{{{soap_ns}}}Body")
    message = body_in[0] if body_in is not None and len(body_in) else None
    if message is None:
        return fault(soap_ns, "The SOAP Body is empty.", 400)
    name = etree.QName(message)
    operation = OPERATIONS.get(name.localname) if name.namespace == NS else None
    if operation is None:
        return fault(soap_ns, f"Operation {name.localname!r} ({name.namespace}) is not "
                     "served; GetUserSettings and GetDomainSettings are.", 400)
    response_name, handler = operation
    env, body = _envelope(soap_ns, response_name)
    try:
        await handler(host, request, message, body, resolve.external_base(request, settings))
    except SoapError as exc:
        return fault(soap_ns, str(exc), exc.status)
    return xml_response(env)


async def method_not_allowed(request: Request) -> Response:
    response = fault(SOAP11, f"{request.method} is not served here; SOAP requests are POSTed.",
                     405)
    response.headers["allow"] = "POST"
    return response
