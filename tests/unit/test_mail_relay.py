"""The SMTP client of the queue against real peers: the SMTP sink, and a tiny DNS
server (dnspython messages over UDP on 127.0.0.1) answering MX and A queries."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from gateway.mail.queue import Envelope, Recipient
from gateway.mail.relay import Relay
from gateway.mail.settings import MailSection, resolve
from gateway.tls import generate_self_signed, server_context
from tests.harness.ports import free_port
from tests.unit.test_mail_sink import SmtpSink

ZONE: dict[tuple[str, str], list[str]] = {
    ("remote.test.", "MX"): ["10 mx.remote.test."],
    ("mx.remote.test.", "A"): ["127.0.0.1"],
    ("backup.test.", "MX"): ["5 dead.backup.test.", "10 mx.remote.test."],
    ("dead.backup.test.", "A"): ["127.0.0.2"],
    ("nomx.test.", "A"): ["127.0.0.1"],
    ("nullmx.test.", "MX"): ["0 ."],
    ("relay.test.", "MX"): ["10 mx.remote.test."],
}
NAMES = {name for name, _ in ZONE}


class DnsServer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.queries: list[tuple[str, str]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name, kind = question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, kind))
        records = ZONE.get((name, kind))
        if records:
            response.answer.append(dns.rrset.from_text_list(name, 60, "IN", kind, records))
        elif name not in NAMES:
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
async def dns_port() -> AsyncIterator[tuple[int, DnsServer]]:
    port = free_port()
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        DnsServer, local_addr=("127.0.0.1", port))
    try:
        yield port, protocol
    finally:
        transport.close()


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    server = await SmtpSink().start()
    try:
        yield server
    finally:
        await server.stop()


def relay(**values: Any) -> Relay:
    values.setdefault("hostname", "gw.example.org")
    values.setdefault("timeout", 5.0)
    return Relay(resolve(MailSection(**values)))


def envelope(*addresses: str, sender: str = "alice@example.org") -> tuple[Envelope,
                                                                            list[Recipient]]:
    now = time.time()
    recipients = [Recipient(a) for a in addresses]
    return Envelope(id="ABCDEF0123456789", sender=sender, recipients=recipients, size=10,
                    created=now, queued_at=now, next_attempt=now), recipients


RAW = b"From: <alice@example.org>\r\nSubject: relay test\r\n\r\nbody\r\n"


async def test_mx_lookup_groups_by_domain_and_falls_back(dns_port: tuple[int, DnsServer],
                                                         sink: SmtpSink) -> None:
    port, server = dns_port
    client = relay(mx_lookup=True, mx_port=sink.port, dns_servers=[f"127.0.0.1:{port}"])
    env, recipients = envelope("a@remote.test", "b@remote.test", "c@backup.test",
                               "d@nomx.test", "e@nullmx.test", "f@missing.test")
    results = {r.address: r for r in await client.deliver(env, RAW, recipients)}
    for address in ("a@remote.test", "b@remote.test", "c@backup.test", "d@nomx.test"):
        assert results[address].code == 250, results[address]
        assert results[address].action == "relayed"
    assert results["c@backup.test"].remote_mta == "dns; mx.remote.test"  # 2nd MX after 1st
    assert (results["e@nullmx.test"].code, results["e@nullmx.test"].enhanced) == (556, "5.1.10")
    assert (results["f@missing.test"].code, results["f@missing.test"].enhanced) == (550,
                                                                                      "5.1.2")
    # one transaction per domain that has a host: remote.test, backup.test, nomx.test
    assert len(sink.messages) == 3 and sorted(map(len, (m.recipients for m in sink.messages))
                                              ) == [1, 1, 2]
    assert ("nomx.test.", "MX") in server.queries


async def test_relayhost_without_brackets_uses_its_mx(dns_port: tuple[int, DnsServer],
                                                      sink: SmtpSink) -> None:
    port, _ = dns_port
    client = relay(relayhost=f"relay.test:{sink.port}", relay_tls="none",
                   dns_servers=[f"127.0.0.1:{port}"])
    env, recipients = envelope("x@one.test", "y@two.test")
    results = await client.deliver(env, RAW, recipients)
    assert [r.code for r in results] == [250, 250]
    assert len(sink.messages) == 1 and sink.messages[0].recipients == ["x@one.test",
                                                                       "y@two.test"]


async def test_per_recipient_codes_and_dsn_passed_on(sink: SmtpSink) -> None:
    sink.reject, sink.defer, sink.dsn = {"gone@y.test"}, {"later@y.test"}, True
    client = relay(relayhost=f"[127.0.0.1]:{sink.port}", relay_tls="none")
    env, recipients = envelope("ok@y.test", "gone@y.test", "later@y.test")
    env.ret, env.envid = "HDRS", "id+with=odd chars"
    recipients[0].notify, recipients[0].orcpt = ["SUCCESS", "FAILURE"], "rfc822;OK@y.test"
    results = await client.deliver(env, RAW, recipients)
    assert [(r.code, r.enhanced) for r in results] == [(250, "2.0.0"), (550, "5.1.1"),
                                                       (451, "4.2.0")]
    assert results[0].action == "transferred"  # the relay reports on from here
    got = sink.messages[0]
    assert "RET=HDRS" in got.mail_options and "ENVID=id+2Bwith+3Dodd+20chars" in got.mail_options
    assert got.rcpt_options["ok@y.test"] == ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;OK@y.test"]
    assert f"SIZE={len(RAW)}" in got.mail_options


async def test_starttls_required_but_not_offered_defers(sink: SmtpSink) -> None:
    client = relay(relayhost=f"[127.0.0.1]:{sink.port}", relay_tls="starttls")
    env, recipients = envelope("ok@y.test")
    (result,) = await client.deliver(env, RAW, recipients)
    assert result.code == 451 and "STARTTLS" in result.text and sink.messages == []


async def test_connection_refused_defers() -> None:
    client = relay(relayhost=f"[127.0.0.1]:{free_port()}", relay_tls="none")
    env, recipients = envelope("ok@y.test")
    (result,) = await client.deliver(env, RAW, recipients)
    assert result.code == 451 and result.enhanced == "4.4.1"


async def test_no_route_defers_with_reason() -> None:
    env, recipients = envelope("ok@y.test")
    (result,) = await relay().deliver(env, RAW, recipients)
    assert result.code == 451 and "mx_lookup" in result.text


async def test_temp_failure_at_mail_from(sink: SmtpSink) -> None:
    sink.temp_fail_first = 1
    client = relay(relayhost=f"[127.0.0.1]:{sink.port}", relay_tls="none")
    env, recipients = envelope("ok@y.test")
    (first,) = await client.deliver(env, RAW, recipients)
    (second,) = await client.deliver(env, RAW, recipients)
    assert (first.code, second.code) == (451, 250)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    cert, key = tmp_path / "relay.crt", tmp_path / "relay.key"
    generate_self_signed(cert, key, ["relay.localhost"])
    return cert, server_context(cert, key)


async def test_starttls_with_trusted_ca_and_auth(certificate: tuple[Path, ssl.SSLContext]
                                                 ) -> None:
    cert, context = certificate
    sink = await SmtpSink(tls=context, auth=("u", "p")).start()
    try:
        client = relay(relayhost=f"[127.0.0.1]:{sink.port}", relay_tls="starttls",
                       relay_ca_file=str(cert), relay_user="u", relay_password="p")
        env, recipients = envelope("ok@y.test")
        (result,) = await client.deliver(env, RAW, recipients)
        assert result.code == 250 and sink.secured == [True]
        # the same relay without its CA: the certificate is refused, nothing sent
        untrusting = relay(relayhost=f"[127.0.0.1]:{sink.port}", relay_tls="starttls",
                           relay_user="u", relay_password="p")
        (refused,) = await untrusting.deliver(env, RAW, recipients)
        assert refused.code == 451 and len(sink.messages) == 1
    finally:
        await sink.stop()


async def test_implicit_tls(certificate: tuple[Path, ssl.SSLContext]) -> None:
    cert, context = certificate
    sink = await SmtpSink(tls=context, implicit_tls=True).start()
    try:
        client = relay(relayhost=f"[127.0.0.1]:{sink.port}", relay_tls="tls",
                       relay_ca_file=str(cert))
        env, recipients = envelope("ok@y.test")
        (result,) = await client.deliver(env, RAW, recipients)
        assert result.code == 250 and sink.secured == [True]
    finally:
        await sink.stop()


async def test_mx_hosts_get_opportunistic_tls(dns_port: tuple[int, DnsServer],
                                              certificate: tuple[Path, ssl.SSLContext]) -> None:
    _, context = certificate  # self-signed, not trusted: still used for MX delivery
    port, _ = dns_port
    sink = await SmtpSink(tls=context).start()
    try:
        client = relay(mx_lookup=True, mx_port=sink.port, dns_servers=[f"127.0.0.1:{port}"])
        env, recipients = envelope("a@remote.test")
        (result,) = await client.deliver(env, RAW, recipients)
        assert result.code == 250 and sink.secured == [True]
    finally:
        await sink.stop()


async def test_unsafe_addresses_never_reach_the_wire(sink: SmtpSink) -> None:
    """Addresses that bypassed submission (a damaged envelope file) cannot inject commands."""
    client = relay(relayhost=f"[127.0.0.1]:{sink.port}", relay_tls="none")
    env, recipients = envelope("ok@y.test", "x@y.test>\r\nRCPT TO:<evil@z.test")
    results = await client.deliver(env, RAW, recipients)
    assert [r.code for r in results] == [553, 250] or [r.code for r in results] == [250, 553]
    assert sink.messages[0].recipients == ["ok@y.test"]
    env, recipients = envelope("ok@y.test", sender="a@b.test>\r\nRSET")
    (result,) = await client.deliver(env, RAW, recipients)
    assert result.code == 553 and len(sink.messages) == 1
