"""MailService end to end in one process: a real host (directory, stores), a real SMTP
sink on 127.0.0.1 as the relayhost, real deliveries into Inboxes.

Covers submission checks (own address, alias, send-as, on-behalf, envelope sender,
hostile envelope values, recipient limits, send quota, no route), Sent Items and
Bcc handling, local delivery, relaying, retry with backoff, bounces (permanent
failure, expiry, SMTPUTF8 missing), NOTIFY handling and never bouncing a bounce.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from sqlalchemy import insert

from gateway.directory import admin
from gateway.directory.models import UserProperties
from gateway.host import Host, build_host, collect_schemas, make_plugin_manager
from gateway.mail import DsnRequest, MailService, SubmissionRefused
from gateway.mail.settings import MailSection, resolve
from gateway.store import NewMessage, permissions
from gateway.store import tags as T
from gateway.store.special import Private
from tests.unit.test_mail_sink import SmtpSink

ALICE, BOB, CAROL = "alice@example.org", "bob@example.org", "carol@example.org"
ALIAS = "a.liddell@example.org"
REMOTE = "friend@remote.test"


async def stop_default_mail(host: Host) -> None:
    """Stop the mail service the host may have started itself (its own [mail] settings):
    the tests run their own on the same queue."""
    running = getattr(host, "mail", None)
    if running is not None:
        await running.stop()


@dataclass
class Env:
    host: Host
    sink: SmtpSink
    service: MailService

    def reconfigure(self, **changes: Any) -> MailService:
        """A fresh service (the old one stopped by the caller) with changed settings."""
        section = replace(self.service.settings.section, **changes)
        self.service = MailService(self.host, resolve(section))
        self.host.mail = self.service  # type: ignore[attr-defined]
        return self.service


def section_for(sink: SmtpSink, **changes: Any) -> MailSection:
    values: dict[str, Any] = dict(relayhost=f"[127.0.0.1]:{sink.port}", relay_tls="none",
                                  retry_schedule=[1], scan_interval=0.2, timeout=5.0,
                                  hostname="gw.example.org", delay_warning=0)
    values.update(changes)
    return MailSection(**values)


@functools.cache
def mail_registered() -> bool:
    """Whether the host declares [mail] (gateway/settings.py), so a config may set it."""
    return "mail" in collect_schemas(make_plugin_manager()[0])


def write_config(base: Path, section: MailSection | None = None) -> Path:
    """A config dir for a host on ``base/data``; with [mail] = ``section`` once the host
    declares [mail] (then a mail service the host starts itself acts as the test's)."""
    conf = base / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    text = f'[gateway]\ndata_dir = "{base / "data"}"\n'
    if section is not None and mail_registered():
        text += tomli_w.dumps({"mail": dataclasses.asdict(section)})
    (conf / "50-test.toml").write_text(text)
    return conf


async def make_host(tmp_path: Path, section: MailSection | None = None) -> Host:
    conf = write_config(tmp_path, section)
    host = build_host([conf], environ={})
    await host.startup()
    await stop_default_mail(host)
    engine = host.directory.engine
    await admin.add_domain(engine, "example.org")
    for address, name in ((ALICE, "Alice"), (BOB, "Bob"), (CAROL, "Carol")):
        await admin.add_user(engine, address, "", name)
        await host.store.create(address)
    await admin.add_alias(engine, ALIAS, ALICE)
    return host


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    sink = await SmtpSink().start()
    host = await make_host(tmp_path, section_for(sink))
    service = MailService(host, resolve(section_for(sink)))
    host.mail = service  # type: ignore[attr-defined]
    environment = Env(host, sink, service)
    try:
        yield environment
    finally:
        await environment.service.stop()
        await host.shutdown()
        await sink.stop()


def message(sender: str = ALICE, to: str = REMOTE, *, extra: str = "",
            subject: str = "hello") -> bytes:
    return (f"From: Sender <{sender}>\r\nTo: <{to}>\r\n{extra}Subject: {subject}\r\n"
            "Date: Sun, 29 Nov 2026 08:00:00 +0000\r\nMessage-ID: <m1@example.org>\r\n"
            "\r\nbody line\r\n.dot line\r\n").encode()


async def folder_messages(host: Host, address: str, folder: int) -> list[bytes]:
    mbox = await host.store.open(address)
    ids = await mbox.read(lambda txn: [row[0] for row in txn.conn.execute(
        "SELECT message_id FROM messages WHERE folder_id = ? ORDER BY message_id",
        (folder,))])
    out = []
    for message_id in ids:
        out.append(b"".join([chunk async for chunk in mbox.original_message(message_id)]))
    return out


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def report_of(raw: bytes) -> tuple[email.message.EmailMessage, str]:
    """The bounce and the text of its message/delivery-status part."""
    bounce = parsed(raw)
    assert bounce.get_content_type() == "multipart/report"
    assert bounce.get_param("report-type") == "delivery-status"
    part = next(p for p in bounce.walk() if p.get_content_type() == "message/delivery-status")
    return bounce, part.as_bytes().decode("utf-8", "replace")


# -- sending ----------------------------------------------------------------------------------
async def test_remote_recipient_relayed_bcc_stripped_sent_copy_kept(env: Env) -> None:
    await env.service.start()
    raw = message(extra="Bcc: <hidden@remote.test>\r\n")
    result = await env.service.submit_mime(ALICE, raw)
    assert result.queue_id and result.queued == [REMOTE, "hidden@remote.test"]
    await eventually(lambda: _true(len(env.sink.messages) == 1))
    got = env.sink.messages[0]
    assert got.sender == ALICE and sorted(got.recipients) == ["friend@remote.test",
                                                              "hidden@remote.test"]
    assert b"Bcc:" not in got.data and b"hidden" not in got.data
    assert b"\r\n.dot line\r\n" in got.data and b"Subject: hello" in got.data
    sent = await folder_messages(env.host, ALICE, int(Private.SENT_ITEMS))
    assert len(sent) == 1 and b"Bcc: <hidden@remote.test>" in sent[0]
    mbox = await env.host.store.open(ALICE)
    props = await mbox.message(result.sent_copy_id or 0)
    assert props[T.PidTagMessageFlags] & 1  # read
    await eventually(lambda: _true(not list((env.host.data_dir / "queue/messages").iterdir())))


async def _true(value: bool) -> bool:
    return value


async def test_local_recipient_delivered_directly(env: Env) -> None:
    result = await env.service.submit_mime(ALICE, message(to=BOB))
    assert result.queue_id == "" and [r.code for r in result.delivered] == [250]
    inbox = await folder_messages(env.host, BOB, int(Private.INBOX))
    assert len(inbox) == 1 and b"Subject: hello" in inbox[0]
    assert env.sink.messages == []


async def test_alias_send_as_and_on_behalf(env: Env) -> None:
    await env.service.submit_mime(ALICE, message(sender=ALIAS, to=BOB))
    with pytest.raises(SubmissionRefused) as refused:
        await env.service.submit_mime(ALICE, message(sender=CAROL, to=BOB))
    assert (refused.value.code, refused.value.enhanced) == (553, "5.7.1")
    carol = await env.host.store.open(CAROL)
    await carol.write(permissions.set_grant, ALICE, permissions.Grant(send_as=True))
    await env.service.submit_mime(ALICE, message(sender=CAROL, to=BOB, subject="as"))
    bob = await env.host.store.open(BOB)
    await bob.write(permissions.set_grant, ALICE, permissions.Grant(send_on_behalf=True))
    await env.service.submit_mime(ALICE, message(sender=BOB, to=CAROL, subject="behalf"))
    inbox = await folder_messages(env.host, CAROL, int(Private.INBOX))
    behalf = parsed(inbox[-1])
    assert str(behalf["Sender"]) == ALICE and BOB in behalf["From"]
    as_mail = parsed((await folder_messages(env.host, BOB, int(Private.INBOX)))[-1])
    assert as_mail["Sender"] is None and CAROL in as_mail["From"]
    assert "Return-Path: <carol@example.org>" in as_mail.as_string()


async def test_envelope_sender_and_sender_field_checked(env: Env) -> None:
    with pytest.raises(SubmissionRefused) as refused:
        await env.service.submit_mime(ALICE, message(to=BOB), envelope_from=CAROL)
    assert refused.value.code == 553
    with pytest.raises(SubmissionRefused):
        await env.service.submit_mime(ALICE, message(to=BOB, extra=f"Sender: <{CAROL}>\r\n"))
    await env.service.submit_mime(ALICE, message(to=BOB), envelope_from=ALIAS)
    assert await folder_messages(env.host, ALICE, int(Private.SENT_ITEMS))


@pytest.mark.parametrize("bad", ["alice@example.org\r\nRCPT TO:<x@y.test>", "a b@example.org",
                                 "alice@example.org>", "noatsign", "x@exa\x00mple.org",
                                 "a" * 65 + "@example.org", "x@-bad-.test"])
async def test_hostile_envelope_addresses_refused(env: Env, bad: str) -> None:
    with pytest.raises(SubmissionRefused) as refused:
        await env.service.submit_mime(ALICE, message(to=BOB), recipients=[bad])
    assert refused.value.code == 501 and refused.value.enhanced == "5.1.3"
    with pytest.raises(SubmissionRefused) as refused:
        await env.service.submit_mime(ALICE, message(to=BOB), envelope_from=bad)
    assert refused.value.code == 501 and refused.value.enhanced == "5.1.7"
    assert not await folder_messages(env.host, BOB, int(Private.INBOX))
    assert not await folder_messages(env.host, ALICE, int(Private.SENT_ITEMS))


async def test_huge_recipient_list_refused_before_lookups(env: Env) -> None:
    many = [f"r{i}@remote.test" for i in range(5000)]
    started = time.monotonic()
    with pytest.raises(SubmissionRefused) as refused:
        await env.service.submit_mime(ALICE, message(), recipients=many)
    assert refused.value.code == 452 and time.monotonic() - started < 1.0
    header = ", ".join(f"<{a}>" for a in many)
    with pytest.raises(SubmissionRefused) as refused:
        await env.service.submit_mime(ALICE, message(to=header))
    assert refused.value.code == 452


async def test_no_route_refused_at_submission(env: Env) -> None:
    service = env.reconfigure(relayhost="", mx_lookup=False)
    with pytest.raises(SubmissionRefused) as refused:
        await service.submit_mime(ALICE, message(to=BOB), recipients=[BOB, REMOTE])
    assert (refused.value.code, refused.value.enhanced) == (550, "5.4.4")
    assert "relayhost" in refused.value.text
    assert not await folder_messages(env.host, BOB, int(Private.INBOX))
    assert await service.queue.list() == []


async def test_unknown_local_recipient_refused(env: Env) -> None:
    with pytest.raises(SubmissionRefused) as refused:
        await env.service.submit_mime(ALICE, message(to="nobody@example.org"))
    assert refused.value.code == 550 and refused.value.enhanced == "5.1.1"


async def test_send_quota(env: Env) -> None:
    user = await env.host.directory.get_user(ALICE)
    async with env.host.directory.engine.begin() as conn:
        await conn.execute(insert(UserProperties).values(
            user_id=user.id, proptag=0x666E0003, propval_str="1"))
    env.host.directory.invalidate()
    mbox = await env.host.store.open(ALICE)
    await mbox.create_message(int(Private.INBOX), NewMessage(
        {T.PidTagSubject: "x", T.PidTagBody: "y" * 5000}))
    with pytest.raises(SubmissionRefused) as refused:
        await env.service.submit_mime(ALICE, message(to=BOB))
    assert (refused.value.code, refused.value.enhanced) == (552, "5.2.2")


async def test_missing_headers_added(env: Env) -> None:
    raw = f"To: <{BOB}>\r\nSubject: bare\r\n\r\nhi\r\n".encode()
    await env.service.submit_mime(ALICE, raw)
    got = parsed((await folder_messages(env.host, BOB, int(Private.INBOX)))[0])
    assert ALICE in got["From"] and got["Date"] and got["Message-ID"].endswith(
        "@gw.example.org>")


# -- retry, bounces -----------------------------------------------------------------------------
async def test_retry_with_backoff_then_delivered(env: Env) -> None:
    env.sink.temp_fail_first = 2
    service = env.reconfigure(retry_schedule=[1, 2])
    await service.start()
    started = time.monotonic()
    await service.submit_mime(ALICE, message())
    await eventually(lambda: _true(len(env.sink.messages) == 1), within=20)
    assert env.sink.transactions == 3
    assert time.monotonic() - started >= 2.5  # waited 1 s, then 2 s
    await eventually(lambda: _queue_empty(env))
    assert len(env.sink.messages) == 1
    assert not await folder_messages(env.host, ALICE, int(Private.INBOX))  # no bounce


async def test_permanent_failure_bounces_to_sender_inbox(env: Env) -> None:
    env.sink.reject = {"gone@remote.test"}
    await env.service.start()
    await env.service.submit_mime(ALICE, message(to="gone@remote.test"),
                                  recipients=["gone@remote.test", REMOTE])
    await eventually(lambda: _inbox_count(env, ALICE, 1))
    assert env.sink.messages[0].recipients == [REMOTE]
    raw = (await folder_messages(env.host, ALICE, int(Private.INBOX)))[0]
    bounce, status = report_of(raw)
    assert bounce["From"] == "Mail Delivery System <MAILER-DAEMON@gw.example.org>"
    assert b"Return-Path: <>" in raw
    assert "Reporting-MTA: dns; gw.example.org" in status and "Arrival-Date:" in status
    assert "Final-Recipient: rfc822; gone@remote.test" in status
    assert "Action: failed" in status and "Status: 5.1.1" in status
    assert "Diagnostic-Code: smtp; 550 5.1.1" in status and REMOTE not in status
    original = [p for p in bounce.walk() if p.get_content_type() == "message/rfc822"]
    assert original and b"body line" in original[0].as_bytes()
    await eventually(lambda: _queue_empty(env))


async def _inbox_count(env: Env, address: str, count: int) -> bool:
    return len(await folder_messages(env.host, address, int(Private.INBOX))) >= count


async def _queue_empty(env: Env) -> bool:
    return await env.service.queue.list() == []


async def test_expiry_bounces_with_4_4_7(env: Env) -> None:
    await env.sink.stop()  # the relay is down
    service = env.reconfigure(max_queue_age=2, retry_schedule=[1])
    await service.start()
    await service.submit_mime(ALICE, message(), dsn=DsnRequest(ret="HDRS"))
    await eventually(lambda: _inbox_count(env, ALICE, 1), within=20)
    bounce, status = report_of((await folder_messages(env.host, ALICE, int(Private.INBOX)))[0])
    assert "Status: 4.4.7" in status and "Action: failed" in status
    assert "delivery time expired" in status
    assert [p for p in bounce.walk() if p.get_content_type() == "text/rfc822-headers"]
    assert not [p for p in bounce.walk() if p.get_content_type() == "message/rfc822"]


async def test_notify_never_and_null_sender_get_no_bounce(env: Env) -> None:
    env.sink.reject = {REMOTE}
    await env.service.start()
    await env.service.submit_mime(ALICE, message(), dsn=DsnRequest(notify={REMOTE: ["NEVER"]}))
    queue_id = await env.service.send_system(message(sender="x@remote.test"), sender="",
                                             recipients=[REMOTE])
    assert queue_id
    await eventually(lambda: _queue_empty(env))
    await asyncio.sleep(0.3)
    assert not await folder_messages(env.host, ALICE, int(Private.INBOX))


async def test_notify_success_and_delay(env: Env) -> None:
    env.sink.defer = {"slow@remote.test"}
    service = env.reconfigure(delay_warning=1, retry_schedule=[1])
    await service.start()
    await service.submit_mime(
        ALICE, message(), recipients=[REMOTE, "slow@remote.test"],
        dsn=DsnRequest(notify={REMOTE: ["SUCCESS"], "slow@remote.test": ["FAILURE", "DELAY"]},
                       envid="env-42"))
    await eventually(lambda: _inbox_count(env, ALICE, 2), within=20)
    notices = [report_of(raw) for raw in await folder_messages(env.host, ALICE,
                                                                int(Private.INBOX))]
    actions = sorted(status.split("Action: ")[1].split()[0] for _, status in notices)
    assert actions == ["delayed", "relayed"]
    assert all("Original-Envelope-Id: env-42" in status for _, status in notices)
    await service.stop()
    await asyncio.sleep(0.1)
    queued = await service.queue.list()
    assert len(queued) == 1 and [r.address for r in queued[0].pending()] == ["slow@remote.test"]


async def test_non_ascii_address_without_smtputf8_bounces(env: Env) -> None:
    await env.service.start()
    result = await env.service.submit_mime(ALICE, message(to="jörg@remote.test"))
    assert result.queued == ["jörg@remote.test"]
    await eventually(lambda: _inbox_count(env, ALICE, 1))
    _, status = report_of((await folder_messages(env.host, ALICE, int(Private.INBOX)))[0])
    assert "Status: 5.6.7" in status and "SMTPUTF8" in status
    assert env.sink.messages == []


async def test_non_ascii_address_with_smtputf8_relayed(env: Env) -> None:
    env.sink.smtputf8 = True
    await env.service.start()
    await env.service.submit_mime(ALICE, message(to="jörg@bücher.test"))
    await eventually(lambda: _true(len(env.sink.messages) == 1))
    assert env.sink.messages[0].recipients == ["jörg@xn--bcher-kva.test"]
    assert "SMTPUTF8" in env.sink.messages[0].mail_options


async def test_relay_auth(env: Env) -> None:
    env.sink.auth = ("relayuser", "relaypass")
    service = env.reconfigure(relay_user="relayuser", relay_password="wrong")
    await service.start()
    await service.submit_mime(ALICE, message())
    await eventually(lambda: _deferred(service))
    queued = await service.queue.list()
    assert "authentication" in queued[0].recipients[0].text
    await service.stop()
    service = env.reconfigure(relay_user="relayuser", relay_password="relaypass")
    await service.queue.flush()
    await service.start()
    await eventually(lambda: _true(len(env.sink.messages) == 1))


async def _deferred(service: MailService) -> bool:
    queued = await service.queue.list()
    return bool(queued) and queued[0].attempts >= 1


async def test_submit_message_moves_draft_to_sent_items(env: Env) -> None:
    mbox = await env.host.store.open(ALICE)
    draft = NewMessage(
        props={T.PidTagSubject: "from a draft", T.PidTagBody: "draft body",
               T.PidTagMessageClass: "IPM.Note", T.PidTagMessageFlags: 0x8,
               T.PidTagSenderEmailAddress: ALICE, T.PidTagSenderAddressType: "SMTP",
               T.PidTagSenderName: "Alice", T.PidTagSentRepresentingEmailAddress: ALICE,
               T.PidTagSentRepresentingAddressType: "SMTP",
               T.PidTagSentRepresentingName: "Alice"},
        recipients=[{T.PidTagRecipientType: 1, T.PidTagDisplayName: "Bob",
                     T.PidTagEmailAddress: BOB, T.PidTagAddressType: "SMTP",
                     T.PidTagSmtpAddress: BOB}])
    draft_id = await mbox.create_message(int(Private.DRAFTS), draft)
    result = await env.service.submit_message(ALICE, ALICE, draft_id)
    inbox = await folder_messages(env.host, BOB, int(Private.INBOX))
    assert len(inbox) == 1 and b"from a draft" in inbox[0]
    props = await mbox.message(result.sent_copy_id or 0)
    assert props[T.PidTagSubject] == "from a draft"
    assert props[T.PidTagMessageFlags] & 1 and not props[T.PidTagMessageFlags] & 0x8
    drafts = await mbox.read(lambda txn: txn.conn.execute(
        "SELECT count(*) FROM messages WHERE folder_id = ?", (int(Private.DRAFTS),)).fetchone())
    assert drafts[0] == 0


async def test_two_runners_share_the_queue_each_message_sent_once(env: Env) -> None:
    env.sink.data_delay = 0.05
    ids = [await env.service.submit_mime(ALICE, message(subject=f"n{i}")) for i in range(12)]
    assert all(r.queue_id for r in ids)
    other = MailService(env.host, env.service.settings)
    for _ in range(10):
        await asyncio.gather(env.service.queue.run_once(), other.queue.run_once(),
                             env.service.queue.run_once(), other.queue.run_once())
        if not await env.service.queue.list():
            break
    subjects = sorted(parsed(m.data)["Subject"] for m in env.sink.messages)
    assert subjects == sorted(f"n{i}" for i in range(12))
    assert await env.service.queue.list() == []


async def test_system_mail_without_route_raises_before_sending(env: Env) -> None:
    service = env.reconfigure(relayhost="", mx_lookup=False)
    with pytest.raises(SubmissionRefused) as refused:
        await service.send_system(message(), sender="", recipients=[BOB, REMOTE])
    assert refused.value.enhanced == "5.4.4"
    assert not await folder_messages(env.host, BOB, int(Private.INBOX))
    assert await service.send_system(message(), sender="", recipients=[BOB]) == ""
    assert len(await folder_messages(env.host, BOB, int(Private.INBOX))) == 1


async def test_submit_message_delete_after_submit_and_foreign_store(env: Env) -> None:
    bob = await env.host.store.open(BOB)
    draft = NewMessage(
        props={T.PidTagSubject: "bob's draft", T.PidTagBody: "x",
               T.PidTagMessageClass: "IPM.Note", T.PidTagDeleteAfterSubmit: True,
               T.PidTagSentRepresentingEmailAddress: BOB,
               T.PidTagSentRepresentingAddressType: "SMTP"},
        recipients=[{T.PidTagRecipientType: 1, T.PidTagEmailAddress: CAROL,
                     T.PidTagAddressType: "SMTP", T.PidTagSmtpAddress: CAROL}])
    draft_id = await bob.create_message(int(Private.DRAFTS), draft)
    with pytest.raises(SubmissionRefused):  # alice has no grant on bob's store
        await env.service.submit_message(ALICE, BOB, draft_id)
    await bob.write(permissions.set_grant, ALICE, permissions.Grant(send_on_behalf=True))
    result = await env.service.submit_message(ALICE, BOB, draft_id)
    assert result.sent_copy_id is None
    got = parsed((await folder_messages(env.host, CAROL, int(Private.INBOX)))[0])
    assert BOB in str(got["From"]) and str(got["Sender"]) == ALICE
    left = await bob.read(lambda txn: txn.conn.execute(
        "SELECT count(*) FROM messages WHERE folder_id IN (?, ?)",
        (int(Private.DRAFTS), int(Private.SENT_ITEMS))).fetchone())
    assert left[0] == 0
