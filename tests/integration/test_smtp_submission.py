"""Submission and the listeners' policies in-process: a real host (directory, stores),
a real ``MailService`` (``gateway.mail``), the smtp plugin's own TCP services on real
sockets with TLS, and smtplib / aiosmtplib as clients.

This runs the submission path before the host wires ``host.mail`` itself; the
same path through ``gateway serve`` is in ``test_smtp_delivery.py``.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import insert

from gateway.directory import admin
from gateway.directory.models import Forwards, UserProperties
from gateway.directory.passwords import hash_password
from gateway.host import Host, load_config
from gateway.mail import MailService, autoreply
from gateway.mail.settings import MailSection
from gateway.mail.settings import resolve as mail_resolve
from gateway.net import TcpServer, bind_socket
from gateway.store import Private
from gateway.store import quota as q
from gateway.tls import generate_self_signed, server_context
from plugins.smtp import plugin
from tests.harness.ports import free_port

DOMAIN = "example.test"
ALICE, BOB, EVE = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"eve@{DOMAIN}"
PASSWORD = "correct horse"
INBOX, SENT = int(Private.INBOX), int(Private.SENT_ITEMS)


@dataclass
class Running:
    host: Host
    ports: dict[str, int]
    client_tls: ssl.SSLContext

    async def folder(self, address: str, folder: int) -> list[bytes]:
        mbox = await self.host.store.open(address)

        def ids(txn: Any) -> list[int]:
            return [r[0] for r in txn.conn.execute(
                "SELECT message_id FROM messages WHERE folder_id = ? ORDER BY message_id",
                (folder,)).fetchall()]
        return [b"".join([c async for c in mbox.original_message(i)])
                for i in await mbox.read(ids)]


async def _start(tmp_path: Path, extra: str = "") -> tuple[Running, Callable[[], Any]]:
    ports = {name: free_port() for name in ("delivery", "submission", "submissions")}
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "50-test.toml").write_text(
        f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[smtp]\ndelivery_listen = ["127.0.0.1:{ports["delivery"]}"]\n'
        f'submission_listen = ["127.0.0.1:{ports["submission"]}"]\n'
        f'submission_listen_tls = ["127.0.0.1:{ports["submissions"]}"]\n{extra}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    config, pm, plugins = load_config([conf], env)
    host = Host(config, pm, plugins, [conf], env)
    host.register_auth_mechanisms()
    await host.startup()
    engine = host.directory.engine
    await admin.add_domain(engine, DOMAIN)
    for address in (ALICE, BOB, EVE):
        await admin.add_user(engine, address, hash_password(PASSWORD), address.split("@")[0],
                             deny={"smtp"} if address == EVE else ())
        await host.store.create(address)
    await admin.add_alias(engine, f"alice.alias@{DOMAIN}", ALICE)
    mail = MailService(host, mail_resolve(MailSection(relayhost="[127.0.0.1]:9",
                                                      hostname="gw.test")))
    host.mail = mail  # type: ignore[attr-defined]
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    generate_self_signed(cert, key, ["localhost"])
    context = server_context(cert, key)
    servers, sockets = [], []
    for service in plugin.gateway_tcp_services(host):
        plain = [bind_socket(a) for a in service.listen]
        tls = [bind_socket(a) for a in service.listen_tls]
        server = TcpServer(service, context)
        await server.start(plain, tls)
        servers.append(server)
        sockets += plain + tls
    client = ssl.create_default_context(cafile=str(cert))

    async def stop() -> None:
        for server in servers:
            await server.close(1.0)
        for sock in sockets:
            sock.close()
        await host.shutdown()

    return Running(host, ports, client), stop


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Running]:
    running, stop = await _start(tmp_path)
    try:
        yield running
    finally:
        await stop()


def _message(sender: str, to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Hello from the test.\n")
    return msg


async def test_starttls_auth_plain_from_alice_to_bob(gw: Running) -> None:
    def talk() -> None:
        with smtplib.SMTP("127.0.0.1", gw.ports["submission"], timeout=20) as smtp:
            smtp.ehlo("laptop.test")
            assert smtp.has_extn("starttls") and not smtp.has_extn("auth")
            assert smtp.docmd("AUTH", "PLAIN AGFsaWNlAHg=")[0] == 538
            assert smtp.docmd("MAIL", f"FROM:<{ALICE}>")[0] == 530
            smtp.starttls(context=gw.client_tls)
            smtp.ehlo("laptop.test")
            assert smtp.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
            assert not smtp.has_extn("starttls")
            smtp.login(ALICE, PASSWORD)
            assert smtp.docmd("AUTH", "PLAIN")[0] == 503
            smtp.send_message(_message(f"Alice <{ALICE}>", BOB, "to bob"))

    await asyncio.to_thread(talk)
    received, = await gw.folder(BOB, INBOX)
    sent, = await gw.folder(ALICE, SENT)
    for raw in (received, sent):
        assert b"Subject: to bob" in raw
    assert b"with ESMTPSA id" in received and b"Return-Path: <alice@example.test>" in received


async def test_implicit_tls_auth_login_and_alias_sender(gw: Running) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=gw.ports["submissions"],
                               use_tls=True, tls_context=gw.client_tls) as smtp:
        await smtp.login(ALICE, PASSWORD)  # aiosmtplib prefers ... whichever is offered
        errors, _ = await smtp.send_message(_message(f"alice.alias@{DOMAIN}", BOB, "alias"),
                                            sender=f"alice.alias@{DOMAIN}", recipients=[BOB])
        assert errors == {}
    received, = await gw.folder(BOB, INBOX)
    assert b"Subject: alias" in received


async def test_login_mechanism_exchange_and_failures(gw: Running) -> None:
    def talk() -> None:
        with smtplib.SMTP_SSL("127.0.0.1", gw.ports["submissions"], timeout=20,
                              context=gw.client_tls) as smtp:
            smtp.ehlo("laptop.test")
            assert smtp.docmd("AUTH", "CRAM-MD5")[0] == 504
            assert smtp.docmd("AUTH", "PLAIN !!!")[0] == 501
            code, text = smtp.docmd("AUTH", "LOGIN")
            assert (code, text) == (334, b"VXNlcm5hbWU6")
            assert smtp.docmd("*")[0] == 501
            with pytest.raises(smtplib.SMTPAuthenticationError) as err:
                smtp.login(EVE, PASSWORD)  # no smtp privilege
            assert err.value.smtp_code == 535
            with pytest.raises(smtplib.SMTPAuthenticationError):
                smtp.login(BOB, "wrong")
            smtp.user, smtp.password = ALICE, PASSWORD
            code, _ = smtp.auth("LOGIN", smtp.auth_login, initial_response_ok=False)
            assert code == 235

    await asyncio.to_thread(talk)


async def test_sending_as_someone_else_is_refused(gw: Running) -> None:
    def talk() -> tuple[int, bytes]:
        with smtplib.SMTP_SSL("127.0.0.1", gw.ports["submissions"], timeout=20,
                              context=gw.client_tls) as smtp:
            smtp.login(ALICE, PASSWORD)
            with pytest.raises(smtplib.SMTPDataError) as err:
                smtp.send_message(_message(BOB, ALICE, "forged"), from_addr=ALICE,
                                  to_addrs=[ALICE])
            code, text = smtp.docmd("RCPT", f"TO:<nobody@{DOMAIN}>")
            assert code == 503  # the transaction ended with the refusal
            assert smtp.docmd("MAIL", f"FROM:<{ALICE}>")[0] == 250
            code, text = smtp.docmd("RCPT", f"TO:<nobody@{DOMAIN}>")
            assert (code, text[:5]) == (550, b"5.1.1")
            error = err.value.smtp_error
            return err.value.smtp_code, error if isinstance(error, bytes) else error.encode()

    code, text = await asyncio.to_thread(talk)
    assert (code, text[:5]) == (553, b"5.7.1")
    assert await gw.folder(ALICE, INBOX) == [] and await gw.folder(ALICE, SENT) == []


async def test_dsn_parameters_reach_the_queue(gw: Running) -> None:
    def talk() -> None:
        with smtplib.SMTP_SSL("127.0.0.1", gw.ports["submissions"], timeout=20,
                              context=gw.client_tls) as smtp:
            smtp.login(ALICE, PASSWORD)
            smtp.sendmail(ALICE, ["far@remote.example", BOB],
                          _message(ALICE, "far@remote.example", "dsn").as_bytes(policy=SMTP),
                          mail_options=["RET=HDRS", "ENVID=env+2B1"],
                          rcpt_options=["NOTIFY=SUCCESS,FAILURE",
                                        "ORCPT=rfc822;far+2Bx@remote.example"])

    await asyncio.to_thread(talk)
    queued, = await gw.host.mail.queue.list()  # type: ignore[attr-defined]
    assert (queued.ret, queued.envid, queued.sender) == ("HDRS", "env+1", ALICE)
    far, = [r for r in queued.recipients if r.address == "far@remote.example"]
    assert far.notify == ["SUCCESS", "FAILURE"] and far.orcpt == "rfc822;far+x@remote.example"
    assert len(await gw.folder(BOB, INBOX)) == 1


async def test_delivery_clients_and_connection_rate(tmp_path: Path) -> None:
    running, stop = await _start(tmp_path, 'delivery_clients = ["192.0.2.0/24"]\n'
                                           "max_connections_per_minute = 2\n")
    try:
        async def greeting(port: int) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            line = await asyncio.wait_for(reader.readline(), 5)
            if not line.startswith(b"220 "):  # a refusal: then the server closes
                assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            return line

        refused = await greeting(running.ports["delivery"])
        assert refused.startswith(b"554 5.7.1 ")
        firsts = [await greeting(running.ports["submission"]) for _ in range(2)]
        assert all(g.startswith(b"220 ") for g in firsts)
        assert (await greeting(running.ports["submission"])).startswith(b"421 4.7.0 ")
    finally:
        await stop()


async def test_smtp_delivery_bounces_what_failed_after_250(gw: Running) -> None:
    """SMTP (not LMTP) on the delivery port: one recipient stored, one over its quota at
    the end of data; the client hears 250 and the sender gets an RFC 3464 bounce."""
    bob = await gw.host.directory.get_user(BOB)
    async with gw.host.directory.engine.begin() as conn:
        await conn.execute(insert(UserProperties).values(
            user_id=bob.id, proptag=q.PR_PROHIBIT_RECEIVE_QUOTA, order_id=1, propval_str="1"))
    gw.host.directory.invalidate()
    body = _message(ALICE, BOB, "too big for bob")
    body.set_content(("y" * 70 + "\n") * 40)

    def talk() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", gw.ports["delivery"], timeout=20) as smtp:
            smtp.ehlo("mta.test")
            assert smtp.mail(ALICE)[0] == 250  # no SIZE=, so RCPT cannot know
            assert smtp.rcpt(EVE)[0] == 250 and smtp.rcpt(BOB)[0] == 250
            return smtp.data(body.as_bytes(policy=SMTP))

    code, _ = await asyncio.to_thread(talk)
    assert code == 250
    assert len(await gw.folder(EVE, INBOX)) == 1 and await gw.folder(BOB, INBOX) == []
    bounce, = await gw.folder(ALICE, INBOX)
    assert b"multipart/report" in bounce and b"Final-Recipient: rfc822; bob@example.test" in bounce
    assert b"Status: 5.2.2" in bounce and b"Return-Path: <>" in bounce


async def test_forward_and_out_of_office_through_the_mail_service(gw: Running) -> None:
    """LMTP delivery to alice, who forwards (CC) to bob and is out of the office: alice and
    bob both get the message, and the auto-reply to the remote sender is queued."""
    async with gw.host.directory.engine.begin() as conn:
        await conn.execute(insert(Forwards).values(username=ALICE, forward_type=0,
                                                   destination=BOB))
    gw.host.directory.invalidate()
    await autoreply.set_settings(await gw.host.store.open(ALICE), autoreply.OofSettings(
        state=autoreply.ON, allow_external=True, external_body="Gone fishing."))
    body = _message("Far Away <far@remote.example>", ALICE, "while away")

    def talk() -> None:
        with smtplib.LMTP("127.0.0.1", gw.ports["delivery"], timeout=20) as lmtp:
            lmtp.ehlo("mta.test")
            for _ in range(2):  # one reply per sender, however often they write
                assert lmtp.sendmail("far@remote.example", [ALICE],
                                     body.as_bytes(policy=SMTP)) == {}

    await asyncio.to_thread(talk)
    assert len(await gw.folder(ALICE, INBOX)) == 2
    copies = await gw.folder(BOB, INBOX)
    assert len(copies) == 2 and all(c.startswith(b"Return-Path: <far@remote.example>")
                                    for c in copies)
    assert all(b"Delivered-To: alice@example.test" in c for c in copies)
    reply, = await gw.host.mail.queue.list()  # type: ignore[attr-defined]
    assert reply.sender == "" and [r.address for r in reply.recipients] == ["far@remote.example"]


async def test_envelope_sender_checked_at_mail(gw: Running) -> None:
    def talk() -> None:
        with smtplib.SMTP_SSL("127.0.0.1", gw.ports["submissions"], timeout=20,
                              context=gw.client_tls) as smtp:
            smtp.login(ALICE, PASSWORD)
            code, text = smtp.docmd("MAIL", f"FROM:<{BOB}>")
            assert (code, text[:5]) == (553, b"5.7.1")
            assert smtp.docmd("MAIL", f"FROM:<ALICE.ALIAS@{DOMAIN}>")[0] == 250

    await asyncio.to_thread(talk)
