"""Kerberos/SPNEGO and Basic through HttpAuth, against a real realm and a real gateway.

One ``gateway serve`` (``[spnego] enabled``, the test plugin
``tests.plugins.protected``) serves every test of this module. The throwaway
realm (``krb5_realm``) has alice, the service ``HTTP/localhost`` and, added
here: bob (a principal without a user), carol (mapped to alice@example.org
through an altname) and ``HTTP/stale`` (whose key changed after the gateway's
keytab was written). Clients: ``curl --negotiate``, requests-gssapi, and
tokens made with python-gssapi for what real clients will not send.
"""

from __future__ import annotations

import base64
import http.client
import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.harness.daemons import find_binary
from tests.harness.gateway import GatewayFactory, RunningGateway, gateway_env
from tests.harness.kerberos import Krb5Realm

gssapi = pytest.importorskip("gssapi")

SPNEGO = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
KRB5 = gssapi.OID.from_int_seq("1.2.840.113554.1.2.2")
PASSWORD = "principal-pw"
BODY_ALICE = "user=alice@example.org mechanism=spnego krb5=alice@EXAMPLE.ORG"


@dataclass
class Setup:
    realm: Krb5Realm
    gw: RunningGateway
    ccaches: dict[str, Path]
    client_env: dict[str, str]

    @property
    def url(self) -> str:
        """By host name: clients ask for a ticket for HTTP/<host name>."""
        return f"http://localhost:{self.gw.http_port}"

    def creds(self, who: str) -> object:
        return gssapi.Credentials(usage="initiate",
                                  store={"ccache": f"FILE:{self.ccaches[who]}"})

    def token(self, who: str = "alice", service: str = "HTTP@localhost",
              mech: object = SPNEGO) -> bytes:
        context = gssapi.SecurityContext(
            name=gssapi.Name(service, gssapi.NameType.hostbased_service), usage="initiate",
            mech=mech, creds=self.creds(who))
        out: bytes = context.step()
        return out

    def curl(self, *args: str, ccache: str = "alice") -> subprocess.CompletedProcess[str]:
        env = {**self.client_env, "KRB5CCNAME": f"FILE:{self.ccaches.get(ccache, ccache)}"}
        return subprocess.run(["curl", "-sS", *args], capture_output=True, text=True,
                              env=env, timeout=60, check=False)


def skewed_copy(ccache: Path, target: Path, offset: int) -> Path:
    """A copy of a v4 file ccache with a KDC time offset: the client's clock seems
    ``offset`` seconds off."""
    data = ccache.read_bytes()
    assert data[:2] == b"\x05\x04", "not a version 4 file ccache"
    (length,) = struct.unpack(">H", data[2:4])
    header = struct.pack(">HHii", 1, 8, offset, 0)  # tag 1: KDC time offset (s, us)
    target.write_bytes(data[:2] + struct.pack(">H", len(header)) + header + data[4 + length:])
    return target


@pytest.fixture(scope="module")
def setup(krb5_realm: Krb5Realm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    realm = krb5_realm
    tmp = tmp_path_factory.mktemp("spnego")
    # The gateway's keytab: HTTP/localhost, plus HTTP/stale whose key then changes.
    keytab = tmp / "gateway.keytab"
    shutil.copy(realm.keytab, keytab)
    realm.add_principal("HTTP/stale")
    realm.extract_keytab("HTTP/stale", keytab)
    realm.add_principal("HTTP/elsewhere")  # known to the KDC, not in the gateway's keytab
    kadmin = find_binary("kadmin.local", "krb5-admin-server")
    subprocess.run([kadmin, "-r", realm.realm, "-q", f"cpw -randkey HTTP/stale@{realm.realm}"],
                   env={**os.environ, **realm.env}, check=True, capture_output=True, timeout=60)
    ccaches = {"alice": tmp / "alice.cc", "none": tmp / "nobody.cc"}
    for who in ("bob", "carol"):
        principal = realm.add_principal(f"{who}-spnego", PASSWORD)
        ccaches[who] = tmp / f"{who}.cc"
        assert realm.kinit(principal, PASSWORD, ccaches[who]).returncode == 0
    assert realm.kinit(ccache=ccaches["alice"]).returncode == 0

    krb5 = {k: realm.env[k] for k in ("KRB5_CONFIG", "KRB5RCACHEDIR") if k in realm.env}
    with pytest.MonkeyPatch.context() as mp:
        # The gateway finds the realm through KRB5_CONFIG only; its keys come from
        # [spnego] keytab, not from KRB5_KTNAME.
        for name, value in krb5.items():
            mp.setenv(name, value)
        for name in ("KRB5_KTNAME", "KRB5CCNAME", "KRB5_CLIENT_KTNAME"):
            mp.delenv(name, raising=False)
        # With the service ticket already in the cache the skewed client needs no KDC
        # (which would refuse it first); only the gateway sees its clock.
        alice = gssapi.Credentials(usage="initiate", store={"ccache": f"FILE:{ccaches['alice']}"})
        service = gssapi.Name("HTTP@localhost", gssapi.NameType.hostbased_service)
        gssapi.SecurityContext(name=service, usage="initiate", creds=alice).step()
        ccaches["skewed"] = skewed_copy(ccaches["alice"], tmp / "skewed.cc", 3600)
        factory = GatewayFactory(tmp / "gateways")
        try:
            gw = factory(
                '[plugins]\nmodules = ["tests.plugins.protected"]\n'
                '[protected]\nusername = "tester"\npassword = "tester-pw"\n'
                '[auth]\nfailure_delay = 0.0\nmax_failures_per_account = 0\n'
                'max_failures_per_address = 0\n'
                '[spnego]\nenabled = true\n'
                f'keytab = "{keytab}"\n'
                # (doubled braces: the factory formats port placeholders)
                'realm_domains = {{ "EXAMPLE.ORG" = "example.org" }}\n')
            for args, stdin in ((("domain", "add", "example.org"), None),
                                (("user", "add", "alice@example.org", "--password-stdin"),
                                 "alice-directory-pw\n"),
                                (("altname", "add", "carol-spnego@EXAMPLE.ORG",
                                  "alice@example.org"), None)):
                done = subprocess.run(
                    [sys.executable, "-m", "gateway", "--config-dir", str(gw.config_dir),
                     *args], input=stdin, capture_output=True, text=True, timeout=60,
                    env=gateway_env(), cwd=gw.config_dir)
                assert done.returncode == 0, done.stderr
            client_env = {**os.environ, **krb5}
            yield Setup(realm, gw, ccaches, client_env)
        finally:
            factory.stop_all()


def negotiate(token: bytes) -> dict[str, str]:
    return {"Authorization": "Negotiate " + base64.b64encode(token).decode()}


def last_log_lines(gw: RunningGateway, count: int = 40) -> str:
    return "\n".join(gw.log().splitlines()[-count:])


# --------------------------------------------------------------------------
# Real clients
# --------------------------------------------------------------------------


def test_curl_has_spnego() -> None:
    features = subprocess.run(["curl", "-V"], capture_output=True, text=True,
                              check=True).stdout
    assert "GSS-API" in features and "SPNEGO" in features


def test_curl_negotiate_with_a_ticket(setup: Setup, tmp_path: Path) -> None:
    headers = tmp_path / "headers"
    done = setup.curl("--negotiate", "-u", ":", "-D", str(headers), "-w", "\n%{http_code}",
                      f"{setup.url}/protected/")
    body, _, status = done.stdout.rpartition("\n")
    assert status == "200", (done.stdout, done.stderr, last_log_lines(setup.gw))
    assert body.strip() == BODY_ALICE
    # curl sends its token at once (no challenge first); the answer carries the
    # mutual-authentication token.
    assert "www-authenticate: negotiate " in headers.read_text().lower()


def test_requests_gssapi_with_mutual_authentication(setup: Setup) -> None:
    requests = pytest.importorskip("requests")
    requests_gssapi = pytest.importorskip("requests_gssapi")
    auth = requests_gssapi.HTTPSPNEGOAuth(
        creds=setup.creds("alice"), mutual_authentication=requests_gssapi.REQUIRED)
    with requests.Session() as session:
        answer = session.get(f"{setup.url}/protected/", auth=auth, timeout=30)
        assert answer.status_code == 200, last_log_lines(setup.gw)
        assert answer.text.strip() == BODY_ALICE
        # The same session again, and the Negotiate-only route.
        again = session.get(f"{setup.url}/negotiate-only/", auth=auth, timeout=30)
        assert again.status_code == 200 and again.text.strip() == BODY_ALICE


def test_no_ticket_gets_401_offering_negotiate_and_basic(setup: Setup) -> None:
    done = setup.curl("--negotiate", "-u", ":", "-o", "/dev/null", "-w", "%{http_code}",
                      f"{setup.url}/protected/", ccache="none")
    assert done.stdout == "401"
    answer = httpx.get(f"{setup.url}/protected/")
    assert answer.status_code == 401
    assert answer.headers.get_list("www-authenticate") == [
        "Negotiate", 'Basic realm="Groupware gateway", charset="UTF-8"']
    assert httpx.get(f"{setup.url}/negotiate-only/").headers.get_list("www-authenticate") == [
        "Negotiate"]
    basic_only = httpx.get(f"{setup.url}/basic-only/").headers.get_list("www-authenticate")
    assert [v.split()[0] for v in basic_only] == ["Basic"]


def test_altname_maps_another_principal(setup: Setup) -> None:
    answer = httpx.get(f"{setup.url}/protected/", headers=negotiate(setup.token("carol")))
    assert answer.status_code == 200
    assert answer.text.strip() == (
        "user=alice@example.org mechanism=spnego krb5=carol-spnego@EXAMPLE.ORG")


# --------------------------------------------------------------------------
# Basic
# --------------------------------------------------------------------------


def test_basic_right_and_wrong_password(setup: Setup) -> None:
    ok = httpx.get(f"{setup.url}/protected/", auth=("tester", "tester-pw"))
    assert ok.status_code == 200 and ok.text.startswith("user=tester ")
    wrong = httpx.get(f"{setup.url}/protected/", auth=("tester", "nope"))
    unknown = httpx.get(f"{setup.url}/protected/", auth=("nobody", "nope"))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.text == unknown.text
    assert (wrong.headers.get_list("www-authenticate")
            == unknown.headers.get_list("www-authenticate"))
    # Basic is not offered on the Negotiate-only route.
    assert httpx.get(f"{setup.url}/negotiate-only/",
                     auth=("tester", "tester-pw")).status_code == 401


def test_basic_against_the_directory(setup: Setup) -> None:
    """The host's password mechanism, with the user made by ``gateway user add``."""
    answer = httpx.get(f"{setup.url}/basic-only/",
                       auth=("alice@example.org", "alice-directory-pw"))
    assert answer.status_code == 200, last_log_lines(setup.gw)
    assert answer.text.startswith("user=alice@example.org ")


# --------------------------------------------------------------------------
# Multi-leg SPNEGO over one keep-alive connection
# --------------------------------------------------------------------------


def der(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def der_fields(neg_token_resp: bytes) -> dict[int, bytes]:
    """The context-tagged fields of a negTokenResp."""

    def split(buf: bytes) -> tuple[int, bytes, bytes]:
        tag, size, start = buf[0], buf[1], 2
        if size & 0x80:
            count = size & 0x7F
            size, start = int.from_bytes(buf[2:2 + count], "big"), 2 + count
        return tag, buf[start:start + size], buf[start + size:]

    _, sequence, _ = split(neg_token_resp)
    _, body, _ = split(sequence)
    fields = {}
    while body:
        tag, value, body = split(body)
        fields[tag] = split(value)[1] if tag == 0xA2 else value
    return fields


NTLM_OID = bytes.fromhex("060a2b06010401823702020a")
KRB5_OID = bytes.fromhex("06092a864886f712010202")
SPNEGO_OID = bytes.fromhex("06062b0601050502")


def www_token(response: http.client.HTTPResponse) -> bytes:
    (value,) = response.headers.get_all("www-authenticate")
    scheme, _, token = value.partition(" ")
    assert scheme == "Negotiate" and token
    return base64.b64decode(token)


def test_three_leg_spnego_on_one_connection(setup: Setup) -> None:
    """The client lists NTLM first and sends no optimistic token: SPNEGO picks
    Kerberos and asks for its token (leg 1), sends the AP-REP (leg 2) and wants
    the mechanism-list MIC (leg 3)."""
    mech_types = der(0x30, NTLM_OID + KRB5_OID)
    init = der(0x60, SPNEGO_OID + der(0xA0, der(0x30, der(0xA0, mech_types))))
    krb5 = gssapi.SecurityContext(
        name=gssapi.Name("HTTP@localhost", gssapi.NameType.hostbased_service),
        usage="initiate", mech=KRB5, creds=setup.creds("alice"),
        flags=gssapi.RequirementFlag.mutual_authentication | gssapi.RequirementFlag.integrity)
    conn = http.client.HTTPConnection("127.0.0.1", setup.gw.http_port, timeout=30)
    try:
        conn.request("GET", "/protected/", headers=negotiate(init))
        leg1 = conn.getresponse()
        leg1.read()
        assert leg1.status == 401
        assert der_fields(www_token(leg1))[0xA1] == KRB5_OID  # supportedMech

        ap_req = krb5.step()
        conn.request("GET", "/protected/",
                     headers=negotiate(der(0xA1, der(0x30, der(0xA2, der(0x04, ap_req))))))
        leg2 = conn.getresponse()
        leg2.read()
        assert leg2.status == 401, last_log_lines(setup.gw)
        krb5.step(der_fields(www_token(leg2))[0xA2])  # the AP-REP: mutual authentication
        assert krb5.complete

        mic = krb5.get_signature(mech_types)
        conn.request("GET", "/protected/",
                     headers=negotiate(der(0xA1, der(0x30, der(0xA3, der(0x04, mic))))))
        leg3 = conn.getresponse()
        assert leg3.status == 200, last_log_lines(setup.gw)
        assert leg3.read().decode().strip() == BODY_ALICE
    finally:
        conn.close()


def test_continuation_on_another_connection_is_refused(setup: Setup) -> None:
    mech_types = der(0x30, NTLM_OID + KRB5_OID)
    init = der(0x60, SPNEGO_OID + der(0xA0, der(0x30, der(0xA0, mech_types))))
    first = httpx.get(f"{setup.url}/protected/", headers=negotiate(init))
    assert first.status_code == 401 and first.headers["www-authenticate"].startswith("Negotiate ")
    ap_req = setup.token(mech=KRB5)
    other = httpx.get(f"{setup.url}/protected/",
                      headers=negotiate(der(0xA1, der(0x30, der(0xA2, der(0x04, ap_req))))))
    assert other.status_code == 401
    assert "without a pending exchange" in last_log_lines(setup.gw)


# --------------------------------------------------------------------------
# What an administrator reads in the log
# --------------------------------------------------------------------------


def refused_with(setup: Setup, token: bytes, phrase: str) -> None:
    answer = httpx.get(f"{setup.url}/protected/", headers=negotiate(token))
    assert answer.status_code == 401
    assert answer.headers.get_list("www-authenticate")[0] == "Negotiate"
    log = last_log_lines(setup.gw)
    assert phrase in log, log
    assert "Traceback" not in setup.gw.log()


def test_clock_skew_is_logged(setup: Setup) -> None:
    refused_with(setup, setup.token("skewed"),
                 "client's clock differs from ours by more than 5 minutes")


def test_out_of_date_keytab_is_logged(setup: Setup) -> None:
    refused_with(setup, setup.token(service="HTTP@stale"), "the keytab is out of date")


def test_unknown_server_principal_is_logged(setup: Setup) -> None:
    refused_with(setup, setup.token(service="HTTP@elsewhere"), "unknown server principal")


def test_principal_without_a_user_is_logged(setup: Setup) -> None:
    refused_with(setup, setup.token("bob"), "unknown client principal 'bob-spnego@EXAMPLE.ORG'")


def test_ntlm_is_refused_and_logged(setup: Setup) -> None:
    refused_with(setup, b"NTLMSSP\x00\x01\x00\x00\x00" + b"\x00" * 28, "NTLM")


def test_garbage_token_is_logged(setup: Setup) -> None:
    refused_with(setup, b"\x60\x82\x00\x10" + b"\x00" * 16, "SPNEGO: refused")


# --------------------------------------------------------------------------
# Hostile headers on the wire
# --------------------------------------------------------------------------


def raw_request(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)


@pytest.mark.parametrize(("authorization", "statuses"), [
    (b"Basic %%%", (400,)),
    (b"Basic " + base64.b64encode(b"no-colon"), (400,)),
    (b"Basic " + base64.b64encode(b"tester\x00:tester-pw"), (400,)),
    (b"Negotiate !!!", (400,)),
    (b"Negotiate " + b"A" * 100_000, (400, 431)),
    (b"Bearer abc", (401,)),
    (b"Basic \x00abc", (400,)),
    (b"Basic \xff\xfe", (400,)),
])
def test_hostile_headers_on_the_wire(setup: Setup, authorization: bytes,
                                     statuses: tuple[int, ...]) -> None:
    head = (b"GET /protected/ HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + authorization
            + b"\r\nConnection: close\r\n\r\n")
    answer = raw_request(setup.gw.http_port, head)
    status = int(answer.split(b" ", 2)[1])
    assert status in statuses, answer[:200]
    assert b"tester" not in answer
    assert "Traceback" not in setup.gw.log()


def test_two_authorization_headers_on_the_wire(setup: Setup) -> None:
    good = b"Authorization: Basic " + base64.b64encode(b"tester:tester-pw") + b"\r\n"
    head = (b"GET /protected/ HTTP/1.1\r\nHost: localhost\r\n" + good + good
            + b"Connection: close\r\n\r\n")
    assert raw_request(setup.gw.http_port, head).startswith(b"HTTP/1.1 400")


def test_replayed_token_is_refused(setup: Setup) -> None:
    """A captured Authorization header must not open the door a second time."""
    token = setup.token("alice")
    first = httpx.get(f"{setup.url}/protected/", headers=negotiate(token))
    assert first.status_code == 200, last_log_lines(setup.gw)
    again = httpx.get(f"{setup.url}/protected/", headers=negotiate(token))
    assert again.status_code == 401, last_log_lines(setup.gw)
    assert "replay" in last_log_lines(setup.gw).lower()
