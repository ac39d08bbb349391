"""CalDAV with Kerberos single sign-on: requests-gssapi and curl --negotiate against a
throwaway realm, no password anywhere.

The realm of ``krb5_realm`` (alice, ``HTTP/localhost``), a gateway with ``[spnego]
enabled`` mapping EXAMPLE.ORG to example.org; alice's ticket finds her principal,
stores an event and reads it back. Negotiate is offered beside Basic on a 401.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from lxml import etree

from tests.harness.gateway import GatewayFactory, RunningGateway, add_users, gateway_env
from tests.harness.kerberos import Krb5Realm

requests_gssapi = pytest.importorskip("requests_gssapi")

EVENT = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
         "UID:krb-1@example.org\r\nDTSTAMP:20261129T000000Z\r\nDTSTART:20261201T090000Z\r\n"
         "DTEND:20261201T100000Z\r\nSUMMARY:Signed on once\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
PRINCIPAL = ('<propfind xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><prop>'
             "<current-user-principal/><C:calendar-home-set/></prop></propfind>")


@dataclass
class Setup:
    gw: RunningGateway
    env: dict[str, str]


@pytest.fixture(scope="module")
def setup(krb5_realm: Krb5Realm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    realm = krb5_realm
    tmp = tmp_path_factory.mktemp("dav-krb5")
    ccache = tmp / "alice.cc"
    assert realm.kinit(ccache=ccache).returncode == 0
    env = {k: realm.env[k] for k in ("KRB5_CONFIG", "KRB5RCACHEDIR") if k in realm.env}
    env["KRB5CCNAME"] = f"FILE:{ccache}"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        for name in ("KRB5_KTNAME", "KRB5_CLIENT_KTNAME"):
            mp.delenv(name, raising=False)
        factory = GatewayFactory(tmp / "gateways")
        try:
            gw = factory(
                '[plugins]\ndisabled = ["imap"]\n[auth]\nfailure_delay = 0.0\n'
                f'[spnego]\nenabled = true\nkeytab = "{realm.keytab}"\n'
                'realm_domains = {{ "EXAMPLE.ORG" = "example.org" }}\n')
            add_users(gw, "example.org", {"alice@example.org": "Alice"})
            yield Setup(gw, env)
        finally:
            factory.stop_all()


def test_requests_gssapi_uses_caldav_without_a_password(setup: Setup) -> None:
    base = f"http://localhost:{setup.gw.http_port}"
    refused = requests.request("PROPFIND", base + "/dav/", data=PRINCIPAL, timeout=30)
    assert refused.status_code == 401
    offered = refused.headers["www-authenticate"]
    assert "Negotiate" in offered and "Basic" in offered
    auth = requests_gssapi.HTTPSPNEGOAuth(mutual_authentication=requests_gssapi.REQUIRED)
    with requests.Session() as session:
        session.auth = auth
        found = session.request("PROPFIND", base + "/dav/", data=PRINCIPAL, timeout=30,
                                headers={"Depth": "0"})
        assert found.status_code == 207, found.text
        root = etree.fromstring(found.content)
        ns = {"D": "DAV:"}
        assert root.findtext(".//D:current-user-principal/D:href", namespaces=ns) == \
            "/dav/principals/users/alice@example.org/"
        item = base + "/dav/calendars/alice@example.org/calendar/krb-1.ics"
        put = session.put(item, data=EVENT, timeout=30,
                          headers={"Content-Type": "text/calendar"})
        assert put.status_code == 201, put.text
        got = session.get(item, timeout=30)
        assert got.status_code == 200 and got.text == EVENT
        assert got.headers["etag"] == put.headers["etag"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_negotiate_reads_the_calendar_home(setup: Setup) -> None:
    url = f"http://localhost:{setup.gw.http_port}/dav/calendars/alice@example.org/"
    done = subprocess.run(
        ["curl", "-s", "--negotiate", "-u", ":", "-X", "PROPFIND", "-H", "Depth: 1",
         "-w", "\n%{http_code}", url], capture_output=True, text=True, timeout=60,
        env={**gateway_env(), **setup.env})
    body, _, code = done.stdout.rpartition("\n")
    assert code == "207", done.stdout + done.stderr
    assert "/dav/calendars/alice@example.org/calendar/" in body
