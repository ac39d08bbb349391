"""The AutoDiscover XSDs in schemas/autodiscover, and the validator other tests use.

``validate(data, kind)`` checks an answer against the schema of its kind with
xmlschema when it is installed, else with libxml2's XSD validator (lxml); both
are full XSD 1.0 validators. The tests here show the schemas accept the
specifications' own examples and refuse wrong ones, so a validation passing
elsewhere means something.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "autodiscover"
FILES = {
    "pox": "responseschema-2006.xsd",
    "soap": "messages.xsd",
    "autoconfig": "autoconfig-1.1.xsd",
    "outlook-request": "outlook-requestschema-2006.xsd",
    "mobilesync-request": "mobilesync-requestschema-2006.xsd",
}
SOAP_NS = ("http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope")


@cache
def _schema(kind: str) -> Any:
    path = SCHEMAS / FILES[kind]
    try:
        import xmlschema
    except ImportError:
        return etree.XMLSchema(etree.parse(str(path)))
    return xmlschema.XMLSchema(str(path))


def _check(schema: Any, element: etree._Element) -> None:
    if isinstance(schema, etree.XMLSchema):
        if not schema.validate(element):
            raise AssertionError(f"schema violation: {schema.error_log}\n"
                                 f"{etree.tostring(element).decode()}")
        return
    schema.validate(etree.tostring(element).decode())


def validate(data: bytes, kind: str) -> etree._Element:
    """Parse ``data`` and validate it as ``kind`` (pox, soap, autoconfig, ...); return the root.

    For ``soap`` the Envelope is unwrapped: the Body's message and the
    header's ServerVersionInfo (when present) are validated."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    if kind != "soap":
        _check(_schema(kind), root)
        return root
    assert etree.QName(root).localname == "Envelope" and etree.QName(root).namespace in SOAP_NS
    soap = etree.QName(root).namespace
    body = root.find(f"{{{soap}}}Body")
    assert body is not None and len(body) == 1, "a SOAP Body with one message"
    _check(_schema("soap"), body[0])
    header = root.find(f"{{{soap}}}Header")
    if header is not None:
        for info in header.findall("{http://schemas.microsoft.com/exchange/2010/Autodiscover}"
                                   "ServerVersionInfo"):
            _check(_schema("soap"), info)
    return root


# -- the schemas themselves ----------------------------------------------------------------------

OUTLOOK_OK = b"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
 <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
  <User><DisplayName>Alice</DisplayName><LegacyDN>/o=First Organization/cn=alice</LegacyDN>
   <AutoDiscoverSMTPAddress>alice@example.org</AutoDiscoverSMTPAddress>
   <DeploymentId>644560b8-a1ce-429c-8ace-23395843f701</DeploymentId></User>
  <Account><AccountType>email</AccountType><Action>settings</Action>
   <Protocol><Type>EXPR</Type><Server>mail.example.org</Server><SSL>On</SSL>
    <AuthPackage>Ntlm</AuthPackage><EwsUrl>https://mail.example.org/EWS/Exchange.asmx</EwsUrl>
   </Protocol>
   <Protocol Type="mapiHttp" Version="1"><MailStore>
    <ExternalUrl>https://mail.example.org/mapi/emsmdb/?MailboxId=x@example.org</ExternalUrl>
   </MailStore></Protocol>
  </Account>
 </Response>
</Autodiscover>"""

ERROR_OK = b"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
 <Response><Error Time="16:56:32.6164027" Id="1054084152"><ErrorCode>600</ErrorCode>
  <Message>Invalid Request</Message><DebugData /></Error></Response>
</Autodiscover>"""

MOBILE_OK = b"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
 <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006">
  <Culture>en:us</Culture><User><DisplayName>Chris</DisplayName>
  <EMailAddress>chris@woodgrovebank.com</EMailAddress></User>
  <Action><Settings><Server><Type>MobileSync</Type>
   <Url>https://loandept.woodgrovebank.com/Microsoft-Server-ActiveSync</Url>
   <Name>https://loandept.woodgrovebank.com/Microsoft-Server-ActiveSync</Name>
  </Server></Settings></Action>
 </Response>
</Autodiscover>"""


@pytest.mark.parametrize("document", [OUTLOOK_OK, ERROR_OK, MOBILE_OK],
                         ids=["outlook", "error", "mobilesync"])
def test_the_specification_examples_are_valid(document: bytes) -> None:
    validate(document, "pox")


@pytest.mark.parametrize("broken", [
    OUTLOOK_OK.replace(b"<Action>settings</Action>", b"<Action>whatever</Action>"),
    OUTLOOK_OK.replace(b"<Type>EXPR</Type>", b"<Type>NOPE</Type>"),
    OUTLOOK_OK.replace(b"<SSL>On</SSL>", b"<Bogus>On</Bogus>"),
    OUTLOOK_OK.replace(b"/2006a", b"/2099"),
    ERROR_OK.replace(b"<ErrorCode>600</ErrorCode>", b""),
    ERROR_OK.replace(b' Id="1054084152"', b""),
    MOBILE_OK.replace(b"<Type>MobileSync</Type>", b""),
], ids=["action", "protocol-type", "unknown-setting", "namespace", "no-code", "no-id",
        "no-server-type"])
def test_wrong_documents_are_refused(broken: bytes) -> None:
    with pytest.raises(Exception):  # noqa: B017 - xmlschema and lxml raise their own errors
        validate(broken, "pox")


SOAP_OK = b"""<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><s:Body>
 <GetUserSettingsResponseMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover">
  <Response><ErrorCode>NoError</ErrorCode><ErrorMessage/><UserResponses><UserResponse>
   <ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage>
   <RedirectTarget i:nil="true"/><UserSettingErrors/><UserSettings>
    <UserSetting i:type="StringSetting"><Name>UserDisplayName</Name><Value>Alice</Value>
    </UserSetting>
   </UserSettings></UserResponse></UserResponses></Response>
 </GetUserSettingsResponseMessage></s:Body></s:Envelope>"""


def test_soap_schema_accepts_a_response_and_refuses_an_unknown_error_code() -> None:
    validate(SOAP_OK, "soap")
    with pytest.raises(Exception):  # noqa: B017
        validate(SOAP_OK.replace(b"<ErrorCode>NoError</ErrorCode><ErrorMessage>No",
                                 b"<ErrorCode>Oops</ErrorCode><ErrorMessage>No"), "soap")
    with pytest.raises(Exception):  # noqa: B017
        validate(SOAP_OK.replace(b'i:type="StringSetting"', b""), "soap")
