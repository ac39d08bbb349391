"""A test plugin contributing AutoDiscover endpoints, until the real EWS, MAPI, EAS
and DAV plugins exist. Loaded with ``[plugins] modules = ["tests.plugins.endpoints"]``.

``[endpoints] protocols`` picks which of EXCH, EXPR, mapiHttp, EWS, OAB,
ActiveSync, CalDAV, CardDAV (the default), WEB and IMAP (two listeners, 993
implicit TLS and 143 STARTTLS, as the imap plugin's hook would give) it
contributes; URLs are built from the request's ``base_url`` as a real
plugin's would be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway import hookimpl
from gateway.config import option
from gateway.discovery import DiscoveryRequest, Endpoint
from gateway.host import Host

ALL = ["EXCH", "EXPR", "mapiHttp", "EWS", "OAB", "ActiveSync", "CalDAV", "CardDAV"]
SCHEMAS = ("Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, "
           "Exchange2013, Exchange2013_SP1, Exchange2016")


@dataclass
class EndpointsSection:
    protocols: list[str] = option(list(ALL), "Which endpoints to contribute.")


def endpoints_for(protocols: Sequence[str], request: DiscoveryRequest) -> list[Endpoint]:
    base = request.base_url
    domain = request.address.rpartition("@")[2] or request.host
    server = f"0e8dd8c4-0e1c-4c4c-9c0e-000000000001@{domain}"
    server_dn = ("/o=Gromox default/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)"
                 f"/cn=Configuration/cn=Servers/cn={server}")
    made = {
        "EXCH": Endpoint("EXCH", server=server, settings={
            "ServerDN": server_dn, "ServerVersion": "73C18880",
            "MdbDN": server_dn + "/cn=Microsoft Private MDB", "AuthPackage": "Anonymous"}),
        "EXPR": Endpoint("EXPR", server=request.host, settings={
            "SSL": "On", "AuthPackage": "Ntlm", "CertPrincipalName": "None"}),
        "mapiHttp": Endpoint("mapiHttp", url=f"{base}/mapi/emsmdb/?MailboxId={server}",
                             settings={"AddressBookUrl": f"{base}/mapi/nspi/?MailboxId={server}"}),
        "EWS": Endpoint("EWS", url=f"{base}/EWS/Exchange.asmx",
                        settings={"EwsSupportedSchemas": SCHEMAS, "CasVersion": "15.01.2507.000"}),
        "OAB": Endpoint("OAB", url=f"{base}/OAB/"),
        "ActiveSync": Endpoint("ActiveSync", url=f"{base}/Microsoft-Server-ActiveSync"),
        "CalDAV": Endpoint("CalDAV", url=f"{base}/dav/calendars/"),
        "CardDAV": Endpoint("CardDAV", url=f"{base}/dav/addressbooks/"),
        "WEB": Endpoint("WEB", url=f"{base}/web/"),
    }
    imap = [Endpoint("IMAP", server=request.host, port=993, settings={"SocketType": "SSL"}),
            Endpoint("IMAP", server=request.host, port=143, settings={"SocketType": "STARTTLS"})]
    found = []
    for name in protocols:
        found.extend(imap if name == "IMAP" else [made[name]] if name in made else [])
    return found


@hookimpl
def gateway_config_schema() -> Mapping[str, type]:
    return {"endpoints": EndpointsSection}


@hookimpl
def gateway_autodiscover_endpoints(host: Host, request: DiscoveryRequest) -> Sequence[Endpoint]:
    return endpoints_for(host.config.endpoints.protocols, request)
