"""The autodiscover plugin in-process: a real host (SQLite directory, stores), its ASGI
app driven by httpx, users with and without rights, a user homed on another node.

Real clients over real HTTP are in tests/integration/test_autodiscover_clients.py.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from lxml import etree
from sqlalchemy import insert

from gateway.app import build_app
from gateway.directory import admin
from gateway.directory.models import SecondaryStoreHints, Servers
from gateway.directory.passwords import hash_password
from gateway.host import Host, build_host
from gateway.store.permissions import REVIEWER, Grant, Permissions
from gateway.store.special import Private
from tests.harness.asgi import in_process
from tests.unit.test_autodiscover_schemas import validate

NS_R = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
NS_O = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
NS_M = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
NS_OREQ = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
NS_MREQ = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"
NS_A = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
USERS = {"alice@example.org": "Alice Liddell", "bob@example.org": "Bob",
         "shared@example.org": "Shared Desk", "dave@example.org": "Dave",
         "lonely@example.org": "Lonely"}
PASSWORD = "pw-{}"


def basic(user: str, password: str | None = None) -> dict[str, str]:
    secret = password if password is not None else PASSWORD.format(user.split("@")[0])
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def pox_request(address: str | None, schema: str = NS_O, ns: str = NS_OREQ) -> bytes:
    email = f"<EMailAddress>{address}</EMailAddress>" if address is not None else ""
    return (f'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="{ns}"><Request>'
            f"{email}<AcceptableResponseSchema>{schema}</AcceptableResponseSchema>"
            "</Request></Autodiscover>").encode()


def soap_request(users: list[str], settings: list[str], op: str = "GetUserSettings") -> bytes:
    if op == "GetUserSettings":
        who = "".join(f"<a:User><a:Mailbox>{u}</a:Mailbox></a:User>" for u in users)
        inner = f"<a:Users>{who}</a:Users>"
    else:
        inner = "<a:Domains>" + "".join(f"<a:Domain>{d}</a:Domain>" for d in users) + \
            "</a:Domains>"
    wanted = "".join(f"<a:Setting>{s}</a:Setting>" for s in settings)
    return (f'<s:Envelope xmlns:s="{SOAP}" xmlns:a="{NS_A}"><s:Header/><s:Body>'
            f"<a:{op}RequestMessage><a:Request>{inner}"
            f"<a:RequestedSettings>{wanted}</a:RequestedSettings></a:Request>"
            f"</a:{op}RequestMessage></s:Body></s:Envelope>").encode()


@dataclass
class Setup:
    host: Host
    client: httpx.AsyncClient

    async def pox(self, address: str | None, user: str = "alice@example.org", **kw: str
                  ) -> tuple[httpx.Response, etree._Element]:
        answer = await self.client.post("/autodiscover/autodiscover.xml",
                                        content=pox_request(address, **kw), headers=basic(user))
        assert answer.status_code == 200, answer.text
        return answer, validate(answer.content, "pox")


def write_config(tmp_path: Path, extra: str = "") -> Path:
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "50-test.toml").write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n'
        '[plugins]\nmodules = ["tests.plugins.endpoints"]\ndisabled = ["imap", "dav"]\n'
        '[auth]\nfailure_delay = 0.0\n[directory]\ncache_ttl = 0.0\n'
        '[autodiscover]\nserver_id = "node1"\n'
        '[smtp]\ndelivery_listen = []\nsubmission_listen = ["127.0.0.1:1587"]\n'
        'submission_listen_tls = ["127.0.0.1:1465"]\n')
    (conf / "60-extra.toml").write_text(extra)
    return conf


async def populate(host: Host) -> None:
    engine = host.directory.engine
    await admin.add_domain(engine, "example.org")
    async with engine.begin() as conn:
        await conn.execute(insert(Servers).values(id=1, hostname="node1",
                                                  extname="node1.example.org"))
        await conn.execute(insert(Servers).values(id=2, hostname="node2",
                                                  extname="node2.example.org"))
    ids = {}
    for address, name in USERS.items():
        ids[address] = await admin.add_user(
            engine, address, hash_password(PASSWORD.format(address.split("@")[0])), name,
            homeserver=1)
        mbox = await host.store.create(address)
        await admin.set_maildir(engine, address, str(mbox.path))
    await admin.add_user(engine, "carol@example.org", hash_password("pw-carol"), "Carol",
                         homeserver=2)
    await admin.add_alias(engine, "al@example.org", "alice@example.org")
    shared = await host.store.open("shared@example.org")
    await Permissions(shared).set_grant("alice@example.org", Grant(full_access=True))
    dave = await host.store.open("dave@example.org")
    await Permissions(dave).set_acl(int(Private.INBOX), "alice@example.org", REVIEWER)
    async with engine.begin() as conn:
        for secondary in ("shared@example.org", "bob@example.org"):
            await conn.execute(insert(SecondaryStoreHints).values(
                primary=ids["alice@example.org"], secondary=ids[secondary]))


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with in_process(write_config(tmp_path), populate) as (host, client):
        yield Setup(host, client)


def o(path: str) -> str:
    """An XPath-ish find path in the outlook namespace: "Response/User/DisplayName"."""
    return "/".join(f"{{{NS_O}}}{p}" for p in path.split("/"))


# -- POX outlook ---------------------------------------------------------------------------------


async def test_pox_outlook_answers_the_users_own_settings(setup: Setup) -> None:
    answer, root = await setup.pox("alice@example.org")
    assert answer.headers["content-type"].startswith("text/xml")
    user = root.find(o("Response/User"))
    assert user.findtext(o("DisplayName")) == "Alice Liddell"
    assert user.findtext(o("AutoDiscoverSMTPAddress")) == "alice@example.org"
    dn = user.findtext(o("LegacyDN"))
    assert dn.startswith("/o=Gromox default/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)"
                         "/cn=Recipients/cn=") and dn.endswith("-alice")
    account = root.find(o("Response/Account"))
    assert account.findtext(o("Action")) == "settings"
    types = [p.findtext(o("Type")) or p.get("Type") for p in account.findall(o("Protocol"))]
    assert types == ["EXCH", "EXPR"]  # no X-MapiHttpCapability: no mapiHttp entry
    expr = account.findall(o("Protocol"))[1]
    assert expr.findtext(o("EwsUrl")) == "https://mail.example.org/EWS/Exchange.asmx"
    assert expr.findtext(o("OABUrl")) == "https://mail.example.org/OAB/"
    alternatives = account.findall(o("AlternativeMailbox"))
    # bob is hinted too, but alice has no rights there: only the shared desk is offered
    assert [a.findtext(o("SmtpAddress")) for a in alternatives] == ["shared@example.org"]


async def test_pox_mapihttp_only_for_clients_that_announce_it(setup: Setup) -> None:
    answer = await setup.client.post(
        "/Autodiscover/Autodiscover.xml", content=pox_request("alice@example.org"),
        headers={**basic("alice@example.org"), "X-MapiHttpCapability": "1"})
    root = validate(answer.content, "pox")
    mapi = [p for p in root.iter(f"{{{NS_O}}}Protocol") if p.get("Type") == "mapiHttp"]
    assert len(mapi) == 1 and mapi[0].get("Version") == "1"
    assert mapi[0].findtext(o("MailStore/ExternalUrl")).startswith(
        "https://mail.example.org/mapi/emsmdb/?MailboxId=")
    assert "/mapi/nspi/" in mapi[0].findtext(o("AddressBook/ExternalUrl"))


async def test_pox_by_alias_answers_the_primary_address(setup: Setup) -> None:
    _, root = await setup.pox("AL@example.org")
    assert root.findtext(o("Response/User/AutoDiscoverSMTPAddress")) == "alice@example.org"


async def test_pox_another_users_mailbox_needs_rights(setup: Setup) -> None:
    _, shared = await setup.pox("shared@example.org")  # full access grant
    assert shared.findtext(o("Response/User/DisplayName")) == "Shared Desk"
    _, dave = await setup.pox("dave@example.org")  # reviewer on the Inbox
    assert dave.findtext(o("Response/User/DisplayName")) == "Dave"
    for address in ("bob@example.org", "nobody@example.org"):
        answer, root = await setup.pox(address)
        assert root.findtext(o("Response/Error/ErrorCode")) == "500"
        assert b"Bob" not in answer.content and b"/cn=Recipients" not in answer.content
    # and bob has no rights on alice
    answer, root = await setup.pox("alice@example.org", user="bob@example.org")
    assert root.findtext(o("Response/Error/ErrorCode")) == "500"
    assert b"Alice" not in answer.content


async def test_pox_user_on_another_node_is_redirected(setup: Setup) -> None:
    _, root = await setup.pox("carol@example.org")
    account = root.find(o("Response/Account"))
    assert account.findtext(o("Action")) == "redirectUrl"
    assert account.findtext(o("RedirectUrl")) == \
        "https://node2.example.org/Autodiscover/Autodiscover.xml"
    assert root.find(o("Response/User")) is None


async def test_pox_mobilesync(setup: Setup) -> None:
    _, root = await setup.pox("alice@example.org", schema=NS_M, ns=NS_MREQ)
    server = root.find(f"{{{NS_M}}}Response/{{{NS_M}}}Action/{{{NS_M}}}Settings/{{{NS_M}}}Server")
    assert server.findtext(f"{{{NS_M}}}Type") == "MobileSync"
    assert server.findtext(f"{{{NS_M}}}Url") == \
        "https://mail.example.org/Microsoft-Server-ActiveSync"
    _, unknown = await setup.pox("bob@example.org", schema=NS_M, ns=NS_MREQ)
    assert unknown.findtext(f"{{{NS_M}}}Response/{{{NS_M}}}Action/{{{NS_M}}}Error/"
                            f"{{{NS_M}}}Status") == "2"


# -- POX bad input -------------------------------------------------------------------------------

BOMB = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Autodiscover xmlns="%s"><Request><EMailAddress>&lol3;</EMailAddress>
<AcceptableResponseSchema>%s</AcceptableResponseSchema></Request></Autodiscover>""" % (
    NS_OREQ.encode(), NS_O.encode())
XXE = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Autodiscover xmlns="%s"><Request><EMailAddress>&xxe;</EMailAddress>
<AcceptableResponseSchema>%s</AcceptableResponseSchema></Request></Autodiscover>""" % (
    NS_OREQ.encode(), NS_O.encode())


@pytest.mark.parametrize(("body", "code"), [
    (BOMB, "600"), (XXE, "600"), (b"<Autodiscover><Request>", "600"), (b"", "600"),
    (pox_request("alice@example.org", ns="urn:wrong"), "600"),
    (pox_request(None), "600"),
    (pox_request("alice@example.org", schema="urn:other/responseschema"), "601"),
    ("<?xml version='1.0' encoding='utf-16'?><x/>".encode("utf-16"), "600"),
], ids=["entity-bomb", "external-entity", "truncated", "empty", "wrong-namespace",
        "no-address", "unknown-schema", "utf16-not-autodiscover"])
async def test_pox_bad_requests_get_the_schemas_error(setup: Setup, body: bytes, code: str
                                                      ) -> None:
    answer = await setup.client.post("/autodiscover/autodiscover.xml", content=body,
                                     headers=basic("alice@example.org"))
    assert answer.status_code == 200
    root = validate(answer.content, "pox")
    codes = [e.text for e in root.iter("{*}ErrorCode")]
    assert codes == [code]
    assert b"root:" not in answer.content and b"Traceback" not in answer.content


async def test_pox_enormous_body_is_413_before_parsing(setup: Setup) -> None:
    big = pox_request("alice@example.org").replace(b"<Request>", b"<Request>" + b" " * 70000)
    answer = await setup.client.post("/autodiscover/autodiscover.xml", content=big,
                                     headers=basic("alice@example.org"))
    assert answer.status_code == 413
    validate(answer.content, "pox")


async def test_pox_methods_and_authentication(setup: Setup) -> None:
    answer = await setup.client.get("/AUTODISCOVER/AUTODISCOVER.XML")
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    validate(answer.content, "pox")
    answer = await setup.client.post("/autodiscover/autodiscover.xml",
                                     content=pox_request("alice@example.org"))
    assert answer.status_code == 401
    assert answer.headers.get_list("www-authenticate") == [
        'Basic realm="Groupware gateway", charset="UTF-8"']  # negotiate: [spnego] is off
    answer = await setup.client.post("/autodiscover/autodiscover.xml",
                                     content=pox_request("alice@example.org"),
                                     headers=basic("alice@example.org", "wrong"))
    assert answer.status_code == 401 and b"Alice" not in answer.content


# -- SOAP ----------------------------------------------------------------------------------------

WANTED = ["UserDisplayName", "UserDN", "ExternalEwsUrl", "InternalEwsUrl", "EwsSupportedSchemas",
          "MailboxDN", "CasVersion", "MapiHttpEnabled", "ExternalMailboxServer",
          "AutoDiscoverSMTPAddress", "AlternateMailboxes", "NoSuchSetting"]


def settings_of(user_response: etree._Element) -> tuple[dict[str, str], dict[str, str]]:
    values = {s.findtext(f"{{{NS_A}}}Name"): s.findtext(f"{{{NS_A}}}Value")
              for s in user_response.iter(f"{{{NS_A}}}UserSetting")}
    errors = {e.findtext(f"{{{NS_A}}}SettingName"): e.findtext(f"{{{NS_A}}}ErrorCode")
              for e in user_response.iter(f"{{{NS_A}}}UserSettingError")}
    return values, errors


async def test_soap_get_user_settings(setup: Setup) -> None:
    answer = await setup.client.post(
        "/autodiscover/autodiscover.svc",
        content=soap_request(["alice@example.org", "bob@example.org", "carol@example.org"],
                             WANTED),
        headers={**basic("alice@example.org"), "content-type": "text/xml"})
    assert answer.status_code == 200, answer.text
    root = validate(answer.content, "soap")
    responses = list(root.iter(f"{{{NS_A}}}UserResponse"))
    codes = [r.findtext(f"{{{NS_A}}}ErrorCode") for r in responses]
    assert codes == ["NoError", "InvalidUser", "RedirectUrl"]
    values, errors = settings_of(responses[0])
    assert values["UserDisplayName"] == "Alice Liddell"
    assert values["ExternalEwsUrl"] == values["InternalEwsUrl"] == \
        "https://mail.example.org/EWS/Exchange.asmx"
    assert "Exchange2016" in values["EwsSupportedSchemas"]
    assert values["MapiHttpEnabled"] == "True"
    assert values["MailboxDN"].endswith("/cn=Microsoft Private MDB")
    assert values["UserDN"].endswith("-alice")
    assert errors == {"NoSuchSetting": "InvalidSetting"}
    alternates = [m.findtext(f"{{{NS_A}}}SmtpAddress")
                  for m in responses[0].iter(f"{{{NS_A}}}AlternateMailbox")]
    assert alternates == ["shared@example.org"]  # bob is hinted, but alice has no rights
    assert settings_of(responses[1]) == ({}, {})  # nothing about bob
    assert responses[2].findtext(f"{{{NS_A}}}RedirectTarget") == \
        "https://node2.example.org/autodiscover/autodiscover.svc"


async def test_soap_get_domain_settings(setup: Setup) -> None:
    answer = await setup.client.post(
        "/autodiscover/autodiscover.svc",
        content=soap_request(["example.org", "elsewhere.test"],
                             ["ExternalEwsUrl", "ExternalEwsVersion"], op="GetDomainSettings"),
        headers=basic("alice@example.org"))
    root = validate(answer.content, "soap")
    responses = list(root.iter(f"{{{NS_A}}}DomainResponse"))
    assert [r.findtext(f"{{{NS_A}}}ErrorCode") for r in responses] == ["NoError", "InvalidDomain"]
    assert responses[0].findtext(f".//{{{NS_A}}}Value") == \
        "https://mail.example.org/EWS/Exchange.asmx"


async def test_soap_401_advertises_schemes_and_bad_input_gets_faults(setup: Setup) -> None:
    answer = await setup.client.post("/autodiscover/autodiscover.svc",
                                     content=soap_request(["alice@example.org"], WANTED))
    assert answer.status_code == 401 and "Basic" in answer.headers["www-authenticate"]
    for body in (BOMB, b"<nope/>", soap_request([], ["UserDisplayName"]),
                 soap_request(["alice@example.org"], []),
                 soap_request(["alice@example.org"], ["X"]).replace(b"GetUserSettings",
                                                                     b"GetFederationInformation")):
        answer = await setup.client.post("/autodiscover/autodiscover.svc", content=body,
                                         headers=basic("alice@example.org"))
        assert answer.status_code == 400, body
        fault = etree.fromstring(answer.content).find(f"{{{SOAP}}}Body/{{{SOAP}}}Fault")
        assert fault is not None and fault.findtext("faultcode") == "s:Client"
    answer = await setup.client.get("/autodiscover/autodiscover.svc")
    assert answer.status_code == 405


# -- JSON v2, autoconfig, well-known -------------------------------------------------------------


async def test_json_v2(setup: Setup) -> None:
    answer = await setup.client.get(
        "/autodiscover/autodiscover.json/v1.0/alice@example.org?Protocol=ActiveSync")
    assert answer.status_code == 200
    assert answer.json() == {"Protocol": "ActiveSync",
                             "Url": "https://mail.example.org/Microsoft-Server-ActiveSync"}
    answer = await setup.client.get(
        "/autodiscover/autodiscover.json?Email=alice@example.org&Protocol=ews")
    assert answer.json() == {"Protocol": "EWS", "Url": "https://mail.example.org/EWS/Exchange.asmx"}
    answer = await setup.client.get(
        "/Autodiscover/Autodiscover.json/v1.0/x@example.org?Protocol=AutodiscoverV1")
    assert answer.json()["Url"] == "https://mail.example.org/autodiscover/autodiscover.xml"
    answer = await setup.client.get(
        "/autodiscover/autodiscover.json/v1.0/carol@example.org?Protocol=EWS")
    assert answer.json()["Url"] == "https://node2.example.org/EWS/Exchange.asmx"
    answer = await setup.client.get(
        "/autodiscover/autodiscover.json/v1.0/alice@example.org?Protocol=Gopher")
    assert answer.status_code == 400 and answer.json()["ErrorCode"] == "InvalidProtocol"
    answer = await setup.client.get("/autodiscover/autodiscover.json/v1.0/nonsense?Protocol=EWS")
    assert answer.status_code == 400 and answer.json()["ErrorCode"] == "InvalidUser"


async def test_autoconfig_lists_submission_and_ews(setup: Setup) -> None:
    for path in ("/.well-known/autoconfig/mail/config-v1.1.xml",
                 "/mail/config-v1.1.xml?emailaddress=alice@example.org"):
        answer = await setup.client.get(path)
        assert answer.status_code == 200
        root = validate(answer.content, "autoconfig")
        smtp = root.findall("emailProvider/outgoingServer")
        assert [(s.findtext("hostname"), s.findtext("port"), s.findtext("socketType"))
                for s in smtp] == [("mail.example.org", "1465", "SSL"),
                                   ("mail.example.org", "1587", "STARTTLS")]
        ews = root.find("emailProvider/incomingServer[@type='exchange']")
        assert ews.findtext("ewsURL") == "https://mail.example.org/EWS/Exchange.asmx"
    answer = await setup.client.get("/mail/config-v1.1.xml?emailaddress=not%20an%20address")
    assert answer.status_code == 400


async def test_well_known_dav_redirects(setup: Setup) -> None:
    answer = await setup.client.get("/.well-known/caldav")
    assert answer.status_code == 301
    assert answer.headers["location"] == "https://mail.example.org/dav/calendars/"
    answer = await setup.client.get("/.well-known/carddav")
    assert answer.headers["location"] == "https://mail.example.org/dav/addressbooks/"


async def test_forwarded_host_only_from_trusted_proxies(tmp_path: Path) -> None:
    forwarded = {"X-Forwarded-Host": "evil.example.net", "X-Forwarded-Proto": "http"}
    for index, (trusted, expected) in enumerate((("[]", "https://mail.example.org"),
                                                 ('["127.0.0.1"]', "http://evil.example.net"))):
        (tmp_path / str(index)).mkdir()
        conf = write_config(tmp_path / str(index), f"[http]\ntrusted_proxies = {trusted}\n")
        host = build_host([conf], environ={})
        await host.startup()
        try:
            transport = httpx.ASGITransport(app=build_app(host), client=("127.0.0.1", 5000))
            async with httpx.AsyncClient(transport=transport,
                                         base_url="https://mail.example.org") as client:
                answer = await client.get("/autodiscover/autodiscover.json/v1.0/a@example.org"
                                          "?Protocol=EWS", headers=forwarded)
            assert answer.json()["Url"] == f"{expected}/EWS/Exchange.asmx"
        finally:
            await host.shutdown()


async def test_external_host_wins_and_disabled_plugins_leave(tmp_path: Path) -> None:
    conf = write_config(tmp_path, '[autodiscover]\nexternal_host = "mx.example.com:8443"\n'
                        '[endpoints]\nprotocols = ["EWS"]\n')
    (conf / "70-more.toml").write_text('[plugins]\ndisabled = ["imap", "smtp", "dav"]\n')
    host = build_host([conf], environ={})
    await host.startup()
    try:
        transport = httpx.ASGITransport(app=build_app(host))
        async with httpx.AsyncClient(transport=transport, base_url="http://whatever") as client:
            answer = await client.get("/mail/config-v1.1.xml?emailaddress=a@example.org")
            root = validate(answer.content, "autoconfig")
            assert root.findall("emailProvider/outgoingServer") == []  # smtp disabled
            assert root.find("emailProvider/incomingServer").findtext("ewsURL") == \
                "https://mx.example.com:8443/EWS/Exchange.asmx"
            answer = await client.get("/.well-known/caldav")
            assert answer.status_code == 404  # no DAV endpoint contributed
            answer = await client.get(
                "/autodiscover/autodiscover.json/v1.0/a@example.org?Protocol=ActiveSync")
            assert answer.status_code == 404
            assert answer.json()["ErrorCode"] == "ProtocolNotAvailable"
    finally:
        await host.shutdown()


@pytest.mark.hook("gateway_autodiscover_endpoints")
async def test_hook_gateway_autodiscover_endpoints_entries_follow_the_enabled_plugins(
        tmp_path: Path) -> None:
    """POX lists exactly what the enabled plugins contribute: with the test plugin's
    endpoints off, the smtp plugin's submission listeners; with smtp disabled, nothing."""
    seen = []
    for index, disabled in enumerate(('["imap", "dav"]', '["imap", "smtp", "dav"]')):
        (tmp_path / str(index)).mkdir()
        conf = write_config(tmp_path / str(index), "[endpoints]\nprotocols = []\n")
        (conf / "70-disabled.toml").write_text(f"[plugins]\ndisabled = {disabled}\n")
        host = build_host([conf], environ={})
        await host.startup()
        try:
            await populate(host)
            transport = httpx.ASGITransport(app=build_app(host))
            async with httpx.AsyncClient(transport=transport,
                                         base_url="https://mail.example.org") as client:
                answer = await client.post("/autodiscover/autodiscover.xml",
                                           content=pox_request("alice@example.org"),
                                           headers=basic("alice@example.org"))
            root = validate(answer.content, "pox")
            seen.append([(p.findtext(o("Type")), p.findtext(o("Port")), p.findtext(o("Encryption")))
                         for p in root.iter(f"{{{NS_O}}}Protocol")])
        finally:
            await host.shutdown()
    assert seen == [[("SMTP", "1465", "SSL"), ("SMTP", "1587", "TLS")], []]


async def test_soap_12_and_another_users_mailbox_with_rights(setup: Setup) -> None:
    soap12 = "http://www.w3.org/2003/05/soap-envelope"
    body = soap_request(["shared@example.org"], ["UserDisplayName", "AutoDiscoverSMTPAddress"])
    answer = await setup.client.post("/autodiscover/autodiscover.svc",
                                     content=body.replace(SOAP.encode(), soap12.encode()),
                                     headers={**basic("alice@example.org"),
                                              "content-type": "application/soap+xml"})
    root = validate(answer.content, "soap")
    assert etree.QName(root).namespace == soap12
    values, errors = settings_of(next(root.iter(f"{{{NS_A}}}UserResponse")))
    assert values == {"UserDisplayName": "Shared Desk",
                      "AutoDiscoverSMTPAddress": "shared@example.org"} and errors == {}


async def test_pox_mobilesync_for_a_user_on_another_node_names_its_server(setup: Setup) -> None:
    _, root = await setup.pox("carol@example.org", schema=NS_M, ns=NS_MREQ)
    url = root.find(f"{{{NS_M}}}Response/{{{NS_M}}}Action/{{{NS_M}}}Settings/{{{NS_M}}}Server/"
                    f"{{{NS_M}}}Url")
    assert url.text == "https://node2.example.org/Microsoft-Server-ActiveSync"


async def test_imap_listeners_in_autoconfig_and_pox(tmp_path: Path) -> None:
    conf = write_config(tmp_path, '[endpoints]\nprotocols = ["IMAP"]\n')
    host = build_host([conf], environ={})
    await host.startup()
    try:
        await populate(host)
        transport = httpx.ASGITransport(app=build_app(host))
        async with httpx.AsyncClient(transport=transport,
                                     base_url="https://mail.example.org") as client:
            answer = await client.get("/mail/config-v1.1.xml?emailaddress=alice@example.org")
            root = validate(answer.content, "autoconfig")
            assert [(s.findtext("hostname"), s.findtext("port"), s.findtext("socketType"))
                    for s in root.iter("incomingServer")] == [
                ("mail.example.org", "993", "SSL"), ("mail.example.org", "143", "STARTTLS")]
            answer = await client.post("/autodiscover/autodiscover.xml",
                                       content=pox_request("alice@example.org"),
                                       headers=basic("alice@example.org"))
            pox = validate(answer.content, "pox")
            assert [(p.findtext(o("Type")), p.findtext(o("Port")), p.findtext(o("LoginName")))
                    for p in pox.iter(f"{{{NS_O}}}Protocol")] == [
                ("IMAP", "993", "alice@example.org"), ("IMAP", "143", "alice@example.org"),
                ("SMTP", "1465", "alice@example.org"), ("SMTP", "1587", "alice@example.org")]
    finally:
        await host.shutdown()


async def test_ews_alone_gets_an_expr_entry_and_web_client(tmp_path: Path) -> None:
    conf = write_config(tmp_path, '[endpoints]\nprotocols = ["EWS", "WEB"]\n')
    host = build_host([conf], environ={})
    await host.startup()
    try:
        await populate(host)
        transport = httpx.ASGITransport(app=build_app(host))
        async with httpx.AsyncClient(transport=transport,
                                     base_url="https://mail.example.org") as client:
            answer = await client.post("/autodiscover/autodiscover.xml",
                                       content=pox_request("alice@example.org"),
                                       headers=basic("alice@example.org"))
        root = validate(answer.content, "pox")
        protocols = list(root.iter(f"{{{NS_O}}}Protocol"))
        assert [p.findtext(o("Type")) for p in protocols] == ["EXPR", "WEB"]
        assert protocols[0].findtext(o("EwsUrl")) == "https://mail.example.org/EWS/Exchange.asmx"
        assert protocols[1].findtext(o("External/OWAUrl")) == "https://mail.example.org/web/"
        assert b"<Type>SMTP</Type>" not in answer.content  # an Exchange account: no SMTP entry
    finally:
        await host.shutdown()


async def test_own_answers_are_cached_with_the_directory_rights_answers_never(
        tmp_path: Path) -> None:
    conf = write_config(tmp_path, "[directory]\ncache_ttl = 60.0\n")
    host = build_host([conf], environ={})
    await host.startup()
    try:
        await populate(host)
        transport = httpx.ASGITransport(app=build_app(host))
        async with httpx.AsyncClient(transport=transport,
                                     base_url="https://mail.example.org") as client:

            async def ask(address: str, user: str) -> etree._Element:
                answer = await client.post("/autodiscover/autodiscover.xml",
                                           content=pox_request(address), headers=basic(user))
                return validate(answer.content, "pox")

            before = await ask("lonely@example.org", "lonely@example.org")
            await admin.set_user(host.directory.engine, "lonely@example.org", "Renamed")
            cached = await ask("lonely@example.org", "lonely@example.org")
            assert cached.findtext(o("Response/User/DisplayName")) == \
                before.findtext(o("Response/User/DisplayName")) == "Lonely"
            host.directory.invalidate()  # what SIGHUP does
            fresh = await ask("lonely@example.org", "lonely@example.org")
            assert fresh.findtext(o("Response/User/DisplayName")) == "Renamed"
            # rights live in the store and are checked on every request
            shared = await ask("shared@example.org", "alice@example.org")
            assert shared.findtext(o("Response/User/DisplayName")) == "Shared Desk"
            mbox = await host.store.open("shared@example.org")
            await Permissions(mbox).set_grant("alice@example.org", Grant())
            revoked = await ask("shared@example.org", "alice@example.org")
            assert revoked.findtext(o("Response/Error/ErrorCode")) == "500"
            mine = await ask("alice@example.org", "alice@example.org")
            assert mine.findall(o("Response/Account/AlternativeMailbox")) == []
    finally:
        await host.shutdown()
