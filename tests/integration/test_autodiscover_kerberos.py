"""POX AutoDiscover with Kerberos SSO: requests-gssapi against a throwaway realm.

Outlook on a domain-joined machine asks AutoDiscover with Negotiate and no
password. Here: the realm of ``krb5_realm`` (alice, ``HTTP/localhost``), a
gateway with ``[spnego] enabled`` mapping EXAMPLE.ORG to example.org, and
requests-gssapi posting the POX request with alice's ticket.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.harness.gateway import GatewayFactory, RunningGateway, add_users
from tests.harness.kerberos import Krb5Realm
from tests.unit.test_autodiscover_app import o, pox_request
from tests.unit.test_autodiscover_schemas import validate

requests_gssapi = pytest.importorskip("requests_gssapi")


@dataclass
class Setup:
    gw: RunningGateway
    ccache: Path


@pytest.fixture(scope="module")
def setup(krb5_realm: Krb5Realm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    realm = krb5_realm
    tmp = tmp_path_factory.mktemp("autodiscover-krb5")
    ccache = tmp / "alice.cc"
    assert realm.kinit(ccache=ccache).returncode == 0
    krb5 = {k: realm.env[k] for k in ("KRB5_CONFIG", "KRB5RCACHEDIR") if k in realm.env}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in krb5.items():
            mp.setenv(name, value)
        for name in ("KRB5_KTNAME", "KRB5_CLIENT_KTNAME"):
            mp.delenv(name, raising=False)
        mp.setenv("KRB5CCNAME", f"FILE:{ccache}")
        factory = GatewayFactory(tmp / "gateways")
        try:
            gw = factory(
                '[plugins]\nmodules = ["tests.plugins.endpoints"]\ndisabled = ["imap", "dav"]\n'
                '[auth]\nfailure_delay = 0.0\n'
                f'[spnego]\nenabled = true\nkeytab = "{realm.keytab}"\n'
                'realm_domains = {{ "EXAMPLE.ORG" = "example.org" }}\n')
            add_users(gw, "example.org", {"alice@example.org": "Alice"})
            yield Setup(gw, ccache)
        finally:
            factory.stop_all()


def test_requests_gssapi_gets_pox_without_a_password(setup: Setup) -> None:
    url = f"http://localhost:{setup.gw.http_port}/Autodiscover/Autodiscover.xml"
    unauthenticated = requests.post(url, data=pox_request("alice@example.org"), timeout=30)
    assert unauthenticated.status_code == 401
    assert "Negotiate" in unauthenticated.headers["www-authenticate"]
    auth = requests_gssapi.HTTPSPNEGOAuth(mutual_authentication=requests_gssapi.REQUIRED)
    answer = requests.post(url, data=pox_request("alice@example.org"), auth=auth, timeout=30,
                           headers={"Content-Type": "text/xml"})
    assert answer.status_code == 200, answer.text
    root = validate(answer.content, "pox")
    assert root.findtext(o("Response/User/AutoDiscoverSMTPAddress")) == "alice@example.org"
    assert root.findtext(o("Response/User/DisplayName")) == "Alice"
    assert root.findtext(o("Response/Account/Action")) == "settings"
