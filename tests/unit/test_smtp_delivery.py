"""Recipient resolution against a real directory and local delivery into real stores.

A real host (directory on SQLite, stores, notifier) in a temporary data dir;
``host.mail`` is a recorder of ``send_system`` calls where a test needs one,
so what forwards and out-of-office replies send can be read back exactly.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, update

from gateway.convert import mime_in
from gateway.directory import admin
from gateway.directory.models import Domains, Forwards, UserProperties, Users
from gateway.host import Host, load_config
from gateway.mail import autoreply
from gateway.mail.delivery import PLUS_TAG, check_recipient, deliver_local
from gateway.mail.recipients import FORWARD_CC, FORWARD_REDIRECT, resolve
from gateway.store import Private
from gateway.store import quota as q
from gateway.store import tags as T

INBOX = int(Private.INBOX)
MESSAGE = (b"From: Sender <sender@remote.test>\r\nTo: alice@example.test\r\n"
           b"Subject: Hello\r\nMessage-ID: <m1@remote.test>\r\n\r\nHi there.\r\n")


class RecordingMail:
    """Stands in for ``host.mail``: keeps what ``send_system`` was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, str, list[str]]] = []
        self.fail = False

    async def send_system(self, raw: bytes, *, sender: str, recipients: list[str]) -> str:
        if self.fail:
            raise OSError("queue unavailable")
        self.sent.append((raw, sender, list(recipients)))
        return "Q1"


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    env = dict(os.environ, GATEWAY__GATEWAY__DATA_DIR=str(tmp_path / "data"))
    config, pm, plugins = load_config([], env)
    started = Host(config, pm, plugins, environ=env)
    await started.startup()
    engine = started.directory.engine
    await admin.add_domain(engine, "example.test")
    await admin.add_domain(engine, "paused.test")
    for address, name in (("alice@example.test", "Alice"), ("bob@example.test", "Bob"),
                          ("carol@example.test", ""), ("dan@paused.test", "")):
        await admin.add_user(engine, address, display_name=name or None)
        await started.store.create(address)
    await admin.add_user(engine, "nobox@example.test")
    await admin.add_alias(engine, "a.liddell@example.test", "alice@example.test")
    await admin.add_altname(engine, "alice-login", "alice@example.test")
    async with engine.begin() as conn:
        await conn.execute(update(Domains).where(Domains.domainname == "paused.test")
                           .values(domain_status=1))
    started.directory.invalidate()
    try:
        yield started
    finally:
        await started.shutdown()


async def _set_status(host: Host, address: str, status: int) -> None:
    async with host.directory.engine.begin() as conn:
        await conn.execute(update(Users).where(Users.username == address)
                           .values(address_status=status))
    host.directory.invalidate()


async def _forward(host: Host, address: str, kind: int, destination: str) -> None:
    async with host.directory.engine.begin() as conn:
        await conn.execute(insert(Forwards).values(username=address, forward_type=kind,
                                                   destination=destination))
    host.directory.invalidate()


async def _receive_quota(host: Host, address: str, kib: int) -> None:
    user = await host.directory.get_user(address)
    async with host.directory.engine.begin() as conn:
        await conn.execute(insert(UserProperties).values(
            user_id=user.id, proptag=q.PR_PROHIBIT_RECEIVE_QUOTA, order_id=1,
            propval_str=str(kib)))
    host.directory.invalidate()


async def _inbox(host: Host, address: str) -> list[int]:
    mbox = await host.store.open(address)

    def ids(txn: Any) -> list[int]:
        return [r[0] for r in txn.conn.execute(
            "SELECT message_id FROM messages WHERE folder_id = ? ORDER BY message_id",
            (INBOX,)).fetchall()]
    return await mbox.read(ids)


async def _original(host: Host, address: str, message_id: int) -> bytes:
    mbox = await host.store.open(address)
    return b"".join([chunk async for chunk in mbox.original_message(message_id)])


# -- resolution -----------------------------------------------------------------------------------


async def test_primary_alias_and_plus_addresses_resolve(host: Host) -> None:
    for address, tag in (("alice@example.test", ""), ("ALICE@Example.TEST", ""),
                         ("a.liddell@example.test", ""), ("alice+lists@example.test", "lists"),
                         ("a.liddell+x+y@example.test", "x+y")):
        found = await resolve(host, address)
        assert found.local and found.mailbox == "alice@example.test", address
        assert found.tag == tag and found.user is not None


@pytest.mark.parametrize(("address", "code", "enhanced"), [
    ("nobody@example.test", 550, "5.1.1"),
    ("alice-login@example.test", 550, "5.1.1"),
    ("+tag@example.test", 550, "5.1.1"),
    ("someone@remote.test", 550, "5.7.1"),
    ("dan@paused.test", 550, "5.2.1"),
    ("alice@exämple.test", 550, "5.7.1"),
    ("'; DROP TABLE users; --@example.test", 550, "5.1.1"),
])
async def test_addresses_that_reach_no_mailbox(host: Host, address: str, code: int,
                                               enhanced: str) -> None:
    found = await resolve(host, address)
    assert not found.local and (found.code, found.enhanced) == (code, enhanced), found
    check = await check_recipient(host, address)
    assert not check.ok and (check.code, check.enhanced) == (code, enhanced)


@pytest.mark.parametrize(("status", "receives", "enhanced"), [
    (0, True, ""), (4, True, ""), (1, False, "5.2.1"), (3, False, "5.1.1"),
    (5, False, "5.1.1"), (0x10, False, "5.2.1"),
])
async def test_user_status_decides_who_receives(host: Host, status: int, receives: bool,
                                                enhanced: str) -> None:
    await _set_status(host, "bob@example.test", status)
    check = await check_recipient(host, "bob@example.test")
    assert check.ok is receives
    if not receives:
        assert check.code == 550 and check.enhanced == enhanced


async def test_check_recipient_canonical_address_and_missing_store(host: Host) -> None:
    check = await check_recipient(host, "A.Liddell@example.test")
    assert check.ok and check.address == "alice@example.test" and check.code == 250
    check = await check_recipient(host, "nobox@example.test")
    assert (check.ok, check.code, check.enhanced) == (False, 550, "5.1.1")


async def test_receive_quota(host: Host) -> None:
    await _receive_quota(host, "bob@example.test", 2)  # 2 KiB
    assert (await check_recipient(host, "bob@example.test", 1000)).ok
    big = await check_recipient(host, "bob@example.test", 5000)
    assert (big.code, big.enhanced) == (552, "5.2.2")
    filler = MESSAGE + b"x" * 3000 + b"\r\n"
    mbox = await host.store.open("bob@example.test")
    await mbox.create_message(INBOX, mime_in.parse(filler))
    full = await check_recipient(host, "bob@example.test", 10)
    assert (full.code, full.enhanced) == (452, "4.2.2")
    result, = await deliver_local(host, MESSAGE, sender="s@remote.test",
                                  recipients=["bob@example.test"])
    assert (result.code, result.enhanced, result.message_id) == (452, "4.2.2", None)


# -- delivery -------------------------------------------------------------------------------------


async def test_delivery_stores_once_per_mailbox_with_trace_fields(host: Host,
                                                                  monkeypatch) -> None:
    parses: list[bytes] = []
    real_parse = mime_in.parse

    def counting_parse(raw: bytes, **kw: Any) -> Any:
        parses.append(raw)
        return real_parse(raw, **kw)
    monkeypatch.setattr(mime_in, "parse", counting_parse)
    async with host.notifier.subscribe("bob@example.test") as events:
        results = await deliver_local(
            host, MESSAGE, sender="sender@remote.test",
            recipients=["alice@example.test", "nobody@example.test", "A.Liddell@example.test",
                        "bob+work@example.test", "x@remote.test"],
            remote="mx.remote.test ([192.0.2.7])", protocol="LMTP")
        event = await asyncio.wait_for(events.get(), 5)
        while event.kind != "new_mail":
            event = await asyncio.wait_for(events.get(), 5)
    assert [(r.code, r.enhanced) for r in results] == [
        (250, "2.0.0"), (550, "5.1.1"), (250, "2.0.0"), (250, "2.0.0"), (550, "5.7.1")]
    assert results[0].message_id == results[2].message_id is not None
    assert len(parses) == 1
    assert await _inbox(host, "alice@example.test") == [results[0].message_id]
    assert await _inbox(host, "bob@example.test") == [results[3].message_id]
    assert event.folder_id == INBOX and event.object_id == results[3].message_id
    assert results[3].message_id is not None
    stored = await _original(host, "bob@example.test", results[3].message_id)
    head, _, rest = stored.partition(b"From: Sender")
    assert rest and stored.endswith(MESSAGE[len(b"From: Sender"):])
    assert head.startswith(b"Return-Path: <sender@remote.test>\r\nReceived: from "
                           b"mx.remote.test ([192.0.2.7])\r\n\tby ")
    assert b"with LMTP id " in head and b"for <" not in head  # several recipients
    mbox = await host.store.open("bob@example.test")
    props = await mbox.message(results[3].message_id)
    assert props[T.PidTagSubject] == "Hello"
    assert props[T.PidTagReceivedByEmailAddress] == "bob@example.test"
    assert props[T.PidTagReceivedByName] == "Bob"
    tagged = await mbox.message(results[3].message_id, [PLUS_TAG])
    assert tagged[PLUS_TAG] == "work"
    assert "Received: from mx.remote.test" in props[T.PidTagTransportMessageHeaders]


async def test_single_recipient_trace_names_it_and_null_sender(host: Host) -> None:
    result, = await deliver_local(host, MESSAGE, sender="", recipients=["carol@example.test"])
    assert result.message_id is not None
    stored = await _original(host, "carol@example.test", result.message_id)
    assert stored.startswith(b"Return-Path: <>\r\nReceived: by ")
    assert b"\r\n\tfor <carol@example.test>; " in stored.split(b"From: Sender")[0]


async def test_cc_forward_keeps_a_copy_and_redirect_does_not(host: Host) -> None:
    mail = RecordingMail()
    host.mail = mail  # type: ignore[attr-defined]
    await _forward(host, "alice@example.test", FORWARD_CC, "alice@elsewhere.test")
    await _forward(host, "bob@example.test", FORWARD_REDIRECT, "bob@elsewhere.test")
    results = await deliver_local(host, MESSAGE, sender="sender@remote.test",
                                  recipients=["alice@example.test", "bob@example.test"])
    assert [r.code for r in results] == [250, 250]
    assert results[0].message_id is not None and results[1].message_id is None
    assert await _inbox(host, "alice@example.test") == [results[0].message_id]
    assert await _inbox(host, "bob@example.test") == []
    sent = {tuple(rcpts): (raw, sender) for raw, sender, rcpts in mail.sent}
    assert set(sent) == {("alice@elsewhere.test",), ("bob@elsewhere.test",)}
    raw, sender = sent[("bob@elsewhere.test",)]
    assert sender == "sender@remote.test"
    assert raw.startswith(b"Delivered-To: bob@example.test\r\nReturn-Path: <sender@remote.test>")
    assert raw.endswith(MESSAGE)


async def test_redirect_that_cannot_be_sent_is_stored(host: Host) -> None:
    await _forward(host, "bob@example.test", FORWARD_REDIRECT, "bob@elsewhere.test")
    result, = await deliver_local(host, MESSAGE, sender="s@remote.test",
                                  recipients=["bob@example.test"])  # no host.mail
    assert result.code == 250 and result.message_id is not None
    mail = RecordingMail()
    mail.fail = True
    host.mail = mail  # type: ignore[attr-defined]
    result, = await deliver_local(host, MESSAGE, sender="s@remote.test",
                                  recipients=["bob@example.test"])
    assert result.code == 250 and result.message_id is not None
    assert len(await _inbox(host, "bob@example.test")) == 2


async def test_forwarding_loop_is_stored_not_forwarded(host: Host) -> None:
    mail = RecordingMail()
    host.mail = mail  # type: ignore[attr-defined]
    await _forward(host, "bob@example.test", FORWARD_REDIRECT, "alice@example.test")
    looped = b"Delivered-To: bob@example.test\r\n" + MESSAGE
    result, = await deliver_local(host, looped, sender="s@remote.test",
                                  recipients=["bob@example.test"])
    assert result.message_id is not None and mail.sent == []


# -- out of office --------------------------------------------------------------------------------


async def _oof(host: Host, address: str, **changes: Any) -> None:
    values: dict[str, Any] = {"state": autoreply.ON, "internal_subject": "Away",
                              "internal_body": "Back on Monday.", "allow_external": True,
                              "external_body": "Away for a while."}
    values.update(changes)
    await autoreply.set_settings(await host.store.open(address),
                                 autoreply.OofSettings(**values))


async def test_out_of_office_settings_round_trip(host: Host) -> None:
    mbox = await host.store.open("alice@example.test")
    assert await autoreply.get_settings(mbox) == autoreply.OofSettings()
    start = datetime(2030, 1, 1, tzinfo=UTC)
    settings = autoreply.OofSettings(state=autoreply.SCHEDULED, start=start,
                                     end=start + timedelta(days=3), internal_body="x")
    await autoreply.set_settings(mbox, settings)
    assert await autoreply.get_settings(mbox) == settings
    assert not settings.active(start - timedelta(seconds=1))
    assert settings.active(start + timedelta(days=1))
    assert not settings.active(start + timedelta(days=3))
    root = await mbox.folder(int(Private.ROOT), [T.PidTagOutOfOfficeState])
    assert root[T.PidTagOutOfOfficeState] is False


async def test_out_of_office_replies_once_per_sender(host: Host) -> None:
    mail = RecordingMail()
    host.mail = mail  # type: ignore[attr-defined]
    await _oof(host, "alice@example.test")
    for _ in range(2):
        await deliver_local(host, MESSAGE, sender="sender@remote.test",
                            recipients=["alice@example.test"])
    assert len(mail.sent) == 1
    raw, sender, rcpts = mail.sent[0]
    assert sender == "" and rcpts == ["sender@remote.test"]
    reply = autoreply.header_block(raw)
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == "<m1@remote.test>"
    assert "alice@example.test" in reply["From"] and reply["Subject"] == "Automatic reply: Hello"
    assert b"Away for a while." in raw  # an external sender gets the external text
    await deliver_local(host, MESSAGE, sender="bob@example.test",
                        recipients=["alice@example.test"])
    raw, _, rcpts = mail.sent[-1]
    assert rcpts == ["bob@example.test"] and b"Back on Monday." in raw
    assert autoreply.header_block(raw)["Subject"] == "Away"


@pytest.mark.parametrize(("extra", "sender"), [
    (b"", ""),
    (b"Auto-Submitted: auto-generated\r\n", "sender@remote.test"),
    (b"Precedence: bulk\r\n", "sender@remote.test"),
    (b"List-Id: <news.remote.test>\r\n", "sender@remote.test"),
    (b"X-Auto-Response-Suppress: OOF\r\n", "sender@remote.test"),
    (b"", "MAILER-DAEMON@remote.test"),
    (b"", "news-request@remote.test"),
    (b"", "alice@example.test"),
])
async def test_out_of_office_never_answers_robots_and_lists(host: Host, extra: bytes,
                                                            sender: str) -> None:
    mail = RecordingMail()
    host.mail = mail  # type: ignore[attr-defined]
    await _oof(host, "alice@example.test")
    result, = await deliver_local(host, extra + MESSAGE, sender=sender,
                                  recipients=["alice@example.test"])
    assert result.code == 250 and mail.sent == []


async def test_out_of_office_off_outside_window_or_external_not_allowed(host: Host) -> None:
    mail = RecordingMail()
    host.mail = mail  # type: ignore[attr-defined]
    past = datetime.now(UTC) - timedelta(days=2)
    await _oof(host, "alice@example.test", state=autoreply.SCHEDULED, start=past,
               end=past + timedelta(days=1))
    await _oof(host, "bob@example.test", allow_external=False)
    await deliver_local(host, MESSAGE, sender="sender@remote.test",
                        recipients=["alice@example.test", "bob@example.test"])
    assert mail.sent == []
