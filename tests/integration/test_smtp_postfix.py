"""A real Postfix in front of the gateway, configured as the grommunio manual says.

Postfix looks domains, mailboxes and aliases up in the directory's MariaDB
tables (``mysql:`` maps) and hands accepted mail to the smtp plugin's
delivery listener, over LMTP (``lmtp:inet:``) and over SMTP
(``smtp:[127.0.0.1]:port``). The gateway is a real ``gateway serve`` on the
same MariaDB directory; what it stored is read back from the store with
``gateway mbox export``/``stats``, and over IMAP (imaplib).
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import json
import re
import smtplib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.store import Private
from tests.harness.gateway import GatewayFactory, RunningGateway, run_cli
from tests.harness.mariadb import MariaDB
from tests.harness.ports import port_open
from tests.harness.postfix import (
    MysqlMaps,
    PostfixFactory,
    PostfixServer,
    exported_messages,
    skip_without_postfix,
    start_postfix,
)
from tests.unit.directory_support import run_gateway, write_config

DOMAIN = "example.test"
ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
ALICE_ALIAS = f"ali@{DOMAIN}"
CAROL = f"carol@{DOMAIN}"
PASSWORDS = {ALICE: "alice secret 1", BOB: "bob secret 2"}
SENDER = "someone@remote.example"
INBOX = int(Private.INBOX)

GATEWAY_TOML = """\
[directory]
url = "{url}"
[smtp]
delivery_listen = ["127.0.0.1:{{port_delivery}}"]
submission_listen = ["127.0.0.1:{{port_submission}}"]
submission_listen_tls = ["127.0.0.1:{{port_submissions}}"]
[imap]
listen = ["127.0.0.1:{{port_imap}}"]
listen_tls = []
allow_plaintext_auth = true
"""


@dataclass
class MailSite:
    """A gateway on a MariaDB directory (alice with an alias, bob, suspended carol) and
    where Postfix finds that database."""

    gateway: RunningGateway
    maps: MysqlMaps
    workdir: Path

    @property
    def delivery_port(self) -> int:
        return self.gateway.ports["delivery"]

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = run_gateway(*args, config_dirs=[self.gateway.config_dir], stdin=stdin)
        assert done.returncode == 0, f"gateway {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def inbox(self, address: str) -> list[email.message.EmailMessage]:
        raws = exported_messages(self.gateway.config_dir, address, "Inbox",
                                 self.workdir / "exports", run_cli)
        return [email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[misc]
                for raw in raws]

    def inbox_counts(self, address: str) -> tuple[int, int]:
        """(messages, unread) of the Inbox from ``gateway mbox stats --json``."""
        report = json.loads(self.cli("mbox", "stats", address, "--json"))
        row = next(row for row in report["folders"] if row["id"] == INBOX)
        return row["messages"], row["unread"]


@pytest.fixture(scope="module")
def site(mariadb: MariaDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSite]:
    """One gateway for the module, on a fresh MariaDB directory; every case uses
    subjects and Message-IDs of its own."""
    tmp_path = tmp_path_factory.mktemp("smtp-postfix")
    factory = GatewayFactory(tmp_path)
    try:
        yield start_site(mariadb, factory, tmp_path)
    finally:
        factory.stop_all()


def start_site(mariadb: MariaDB, factory: GatewayFactory, tmp_path: Path) -> MailSite:
    database = mariadb.create_database("gwsmtp")
    url = mariadb.url(database)
    init = run_gateway("db", "init",
                       config_dirs=[write_config(tmp_path / "init", tmp_path / "init-data", url)])
    assert init.returncode == 0, init.stderr
    gw = factory(GATEWAY_TOML.format(url=url),
                 ports=("delivery", "submission", "submissions", "imap"))
    mail_site = MailSite(gw, MysqlMaps(mariadb.host, mariadb.port, mariadb.user,
                                       mariadb.password, database), tmp_path)
    mail_site.cli("domain", "add", DOMAIN, "--no-public-store")
    for address, password in PASSWORDS.items():
        mail_site.cli("user", "add", address, "--password-stdin", stdin=password + "\n")
    mail_site.cli("alias", "add", ALICE_ALIAS, ALICE)
    # Carol is in the users table (so Postfix's map knows her) but suspended: the gateway
    # refuses her at RCPT time and Postfix must bounce, per recipient.
    mail_site.cli("user", "add", CAROL)
    with mariadb.connect(database) as conn, conn.cursor() as cur:
        cur.execute("UPDATE users SET address_status = 1 WHERE username = %s", (CAROL,))
    if not port_open("127.0.0.1", mail_site.delivery_port):
        pytest.fail("the smtp plugin is not listening on [smtp] delivery_listen "
                    f"(127.0.0.1:{mail_site.delivery_port}); gateway log:\n{gw.log()[-3000:]}")
    return mail_site


TRANSPORTS = {
    "lmtp": "lmtp:inet:127.0.0.1:{port}",
    "smtp": "smtp:[127.0.0.1]:{port}",
}


@pytest.fixture(scope="module", params=sorted(TRANSPORTS))
def postfix(request: pytest.FixtureRequest, site: MailSite) -> Iterator[PostfixServer]:
    """Postfix in front of the gateway, one instance per virtual_transport."""
    skip_without_postfix(mysql=True)
    transport = TRANSPORTS[request.param].format(port=site.delivery_port)
    # mynetworks empty: Postfix treats the test client like any host on the Internet.
    server = start_postfix(transport=transport, maps=site.maps, extra={"mynetworks": ""})
    try:
        yield server
    finally:
        server.stop()


def message(to: str, subject: str, body: str = "Hello through Postfix.\n") -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"Someone <{SENDER}>"
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@remote.example>"
    mail.set_content(body)
    return mail


def title(postfix: PostfixServer, what: str) -> str:
    """A subject no other case uses: what, the transport and a random tag."""
    return f"{what} via {postfix.transport.split(':')[0]} {uuid.uuid4().hex[:8]}"


def send(postfix: PostfixServer, mail: EmailMessage, recipients: list[str]) -> dict:
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as client:
        client.ehlo("client.remote.example")
        return client.send_message(mail, SENDER, recipients)


def wait_delivered(postfix: PostfixServer, mail: EmailMessage, count: int,
                   timeout: float = 30.0) -> list[dict[str, str]]:
    """Wait until Postfix logged ``count`` deliveries of ``mail`` and has nothing queued;
    fail at once on a deferral or bounce, quoting the gateway's reply."""
    deadline = time.monotonic() + timeout
    while True:
        lines = postfix.deliveries(str(mail["Message-ID"]))
        failed = [line for line in lines if line["status"] != "sent"]
        assert not failed, f"Postfix could not deliver to the gateway: {failed}"
        if len(lines) >= count and postfix.queue_is_empty():
            return lines
        assert time.monotonic() < deadline, (
            f"{len(lines)} of {count} deliveries after {timeout}s; queue:\n{postfix.queue()}")
        time.sleep(0.1)


def test_postfix_delivers_to_primary_address_alias_and_plus_address(
        postfix: PostfixServer, site: MailSite) -> None:
    plus = f"bob+news@{DOMAIN}"
    mails = {to: message(to, title(postfix, to)) for to in (ALICE, ALICE_ALIAS, plus)}
    for to, mail in mails.items():
        assert send(postfix, mail, [to]) == {}
    relays = set()
    for mail in mails.values():
        relays |= {line["relay"] for line in wait_delivered(postfix, mail, 1)}
    assert relays == {f"127.0.0.1[127.0.0.1]:{site.delivery_port}"}, relays

    alice = {str(mail["Subject"]): mail for mail in site.inbox(ALICE)}
    bob = {str(mail["Subject"]): mail for mail in site.inbox(BOB)}
    assert mails[ALICE]["Subject"] in alice and mails[ALICE_ALIAS]["Subject"] in alice
    assert mails[plus]["Subject"] in bob
    for mail in (alice[mails[ALICE]["Subject"]], alice[mails[ALICE_ALIAS]["Subject"]],
                 bob[mails[plus]["Subject"]]):
        assert mail["Return-Path"] == f"<{SENDER}>", mail["Return-Path"]
        received = mail.get_all("Received") or []
        # The gateway's own Received on top, Postfix's (by mx.postfix.test) below it.
        assert len(received) >= 2, received
        assert "mx.postfix.test" in received[1], received
        assert mail.get_content().rstrip() == "Hello through Postfix."


def test_postfix_refuses_unknown_recipient_and_unknown_domain_at_rcpt(
        postfix: PostfixServer, site: MailSite) -> None:
    unknown = message(f"nobody@{DOMAIN}", title(postfix, "unknown"))
    relayed = message("x@elsewhere.example", title(postfix, "relay"))
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as client:
        client.ehlo("client.remote.example")
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.send_message(unknown, SENDER, [f"nobody@{DOMAIN}"])
        code, text = refused.value.recipients[f"nobody@{DOMAIN}"]
        assert code == 550 and b"5.1.1" in text and b"virtual mailbox table" in text, text
        client.rset()
        with pytest.raises(smtplib.SMTPRecipientsRefused) as relay:
            client.send_message(relayed, SENDER, ["x@elsewhere.example"])
        code, text = relay.value.recipients["x@elsewhere.example"]
        assert code == 554 and b"Relay access denied" in text, text
    assert postfix.deliveries(str(unknown["Message-ID"])) == []
    assert postfix.deliveries(str(relayed["Message-ID"])) == []
    assert postfix.queue_is_empty()


def test_one_message_to_two_mailboxes_and_an_alias_is_stored_once_each(
        postfix: PostfixServer, site: MailSite) -> None:
    # Postfix folds the alias into alice: one transaction, two recipients.
    recipients = [ALICE, BOB, ALICE_ALIAS]
    before = {address: site.inbox_counts(address) for address in (ALICE, BOB)}
    mail = message(", ".join(recipients), title(postfix, "to all"))
    assert send(postfix, mail, recipients) == {}
    wait_delivered(postfix, mail, 2)
    for address in (ALICE, BOB):
        assert [m["Subject"] for m in site.inbox(address)].count(mail["Subject"]) == 1
        messages, unread = before[address]
        assert site.inbox_counts(address) == (messages + 1, unread + 1)  # stored unread


def test_gateway_refusal_of_one_recipient_bounces_that_one_only(
        postfix: PostfixServer, site: MailSite) -> None:
    mail = message(f"{ALICE}, {CAROL}", title(postfix, "carol is suspended"))
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as client:
        client.ehlo("client.remote.example")
        assert client.send_message(mail, BOB, [ALICE, CAROL]) == {}  # Postfix's map: both ok
    message_id = str(mail["Message-ID"])
    deadline = time.monotonic() + 30
    while len(postfix.deliveries(message_id)) < 2 or not postfix.queue_is_empty():
        assert time.monotonic() < deadline, f"{postfix.deliveries(message_id)}\n{postfix.queue()}"
        time.sleep(0.1)
    outcome = {line["to"]: line for line in postfix.deliveries(message_id)}
    assert outcome[ALICE]["status"] == "sent", outcome
    assert outcome[CAROL]["status"] == "bounced", outcome
    assert "550 5.2.1" in outcome[CAROL]["text"], outcome[CAROL]
    assert [m["Subject"] for m in site.inbox(ALICE)].count(mail["Subject"]) == 1
    # Postfix's bounce went back to the sender, Bob, through the gateway too.
    bounces = [m for m in site.inbox(BOB) if m.get_content_type() == "multipart/report"
               and message_id in m.as_string()]
    assert len(bounces) == 1 and CAROL in bounces[0].as_string()


def test_delivered_mail_reads_back_over_imap(postfix: PostfixServer, site: MailSite) -> None:
    imap_port = site.gateway.ports["imap"]
    mail = message(ALICE, title(postfix, "over imap"), "Read me over IMAP.\n")
    assert send(postfix, mail, [ALICE]) == {}
    wait_delivered(postfix, mail, 1)
    try:
        read_back_over_imap(imap_port, mail)
    except (imaplib.IMAP4.error, AssertionError) as exc:
        pytest.fail(f"IMAP read-back failed: {exc}; gateway log:\n{site.gateway.log()[-4000:]}")


def read_back_over_imap(imap_port: int, mail: EmailMessage) -> None:
    with imaplib.IMAP4("127.0.0.1", imap_port, timeout=30) as client:
        client.login(ALICE, PASSWORDS[ALICE])
        status, data = client.select("INBOX", readonly=True)
        assert status == "OK", data
        status, found = client.search(None, "HEADER", "Message-ID", str(mail["Message-ID"]))
        assert status == "OK" and len(found[0].split()) == 1, found
        status, fetched = client.fetch(found[0].split()[0].decode(), "(BODY.PEEK[])")
        assert status == "OK" and isinstance(fetched[0], tuple), fetched
        raw = fetched[0][1]
        got = email.message_from_bytes(raw, policy=email.policy.default)
        assert got["Subject"] == mail["Subject"] and got["Message-ID"] == mail["Message-ID"]
        assert got["Return-Path"] == f"<{SENDER}>"
        assert b"Read me over IMAP." in raw


def test_large_8bit_message_arrives_byte_for_byte(postfix: PostfixServer,
                                                  site: MailSite) -> None:
    text = "Grüße aus Köln — 8-bit text, straight through.\n" * 50
    mail = message(BOB, title(postfix, "Größe: 2 MiB und 8 bit"), text)
    mail.add_attachment(bytes(range(256)) * 8192, maintype="application",
                        subtype="octet-stream", filename="blob.bin")  # 2 MiB
    raw = mail.as_bytes(policy=email.policy.SMTP)
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=60) as client:
        client.ehlo("client.remote.example")
        assert client.sendmail(SENDER, [BOB], raw, mail_options=["BODY=8BITMIME"]) == {}
    wait_delivered(postfix, mail, 1, timeout=60)
    exported = exported_messages(site.gateway.config_dir, BOB, "Inbox",
                                 site.workdir / "exports", run_cli)
    [stored] = [one for one in exported if str(mail["Message-ID"]).encode() in one]
    sent_body = raw.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")
    stored_body = stored.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1]
    assert stored_body.rstrip(b"\n") == sent_body.rstrip(b"\n")
    got = email.message_from_bytes(stored, policy=email.policy.default)
    assert got["Subject"] == mail["Subject"]


# -- outbound: Postfix as the gateway's relayhost ------------------------------------------------

REJECTED = "rejected@elsewhere.example"
OUTBOUND_TOML = """\
[plugins]
disabled = ["imap"]
[smtp]
delivery_listen = ["127.0.0.1:{{port_delivery}}"]
submission_listen = ["127.0.0.1:{{port_submission}}"]
submission_listen_tls = []
[mail]
relayhost = "[127.0.0.1]:{relay_port}"
relay_tls = "none"
hostname = "gw.example.test"
retry_schedule = [1, 2]
scan_interval = 0.5
"""


@pytest.fixture
def relay_site(gateway_factory: GatewayFactory, postfix_factory: PostfixFactory,
               tmp_path: Path) -> tuple[RunningGateway, PostfixServer]:
    # Postfix takes mail from 127.0.0.1 for anywhere and throws it away (discard), except
    # for one address it refuses at RCPT time.
    relay = postfix_factory(transport="discard:", extra={
        "default_transport": "discard:", "relay_transport": "discard:",
        "smtpd_recipient_restrictions":
            f"check_recipient_access inline:{{ {{ {REJECTED} = REJECT no such user }} }}, "
            "permit_mynetworks, reject"})
    gw = gateway_factory(OUTBOUND_TOML.format(relay_port=relay.port),
                         ports=("delivery", "submission"))
    for args, stdin in ((("domain", "add", DOMAIN, "--no-public-store"), None),
                        (("user", "add", ALICE, "--password-stdin"), PASSWORDS[ALICE] + "\n")):
        done = run_gateway(*args, config_dirs=[gw.config_dir], stdin=stdin)
        assert done.returncode == 0, done.stderr
    return gw, relay


def submit(gw: RunningGateway, to: list[str], subject: str) -> None:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = ALICE, ", ".join(to), subject
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@example.test>"
    mail.set_content("Out through the relayhost.\n")
    with smtplib.SMTP("127.0.0.1", gw.ports["submission"], timeout=30) as client:
        client.starttls(context=gw.ssl_context())
        client.login(ALICE, PASSWORDS[ALICE])
        assert client.send_message(mail, ALICE, to) == {}


def test_submitted_mail_leaves_through_postfix_as_relayhost(
        relay_site: tuple[RunningGateway, PostfixServer], tmp_path: Path) -> None:
    gw, relay = relay_site
    submit(gw, ["someone@elsewhere.example"], "outbound via postfix")
    relay.wait_log(r"to=<someone@elsewhere\.example>.*status=sent", timeout=60)
    assert re.search(r"from=<alice@example\.test>", relay.log()), relay.log()[-2000:]
    sent = exported_messages(gw.config_dir, ALICE, "Sent Items", tmp_path / "exports", run_cli)
    assert any(b"outbound via postfix" in raw for raw in sent)


def test_a_recipient_refused_by_the_relayhost_bounces_to_the_sender(
        relay_site: tuple[RunningGateway, PostfixServer], tmp_path: Path) -> None:
    gw, relay = relay_site
    submit(gw, [REJECTED], "will bounce")
    relay.wait_log(rf"reject: RCPT from \S+: 554 5\.7\.1 <{re.escape(REJECTED)}>", timeout=60)
    deadline = time.monotonic() + 60
    bounces: list[email.message.EmailMessage] = []
    while not bounces and time.monotonic() < deadline:
        bounces = [email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[misc]
                   for raw in exported_messages(gw.config_dir, ALICE, "Inbox",
                                                tmp_path / "exports", run_cli)]
        time.sleep(0.5)
    assert bounces, f"no bounce in the sender's Inbox; gateway log:\n{gw.log()[-3000:]}"
    [bounce] = bounces
    assert bounce.get_content_type() == "multipart/report"
    assert bounce.get_param("report-type") == "delivery-status"
    assert REJECTED in bounce.as_string() and "no such user" in bounce.as_string()


def test_smtputf8_sender_passes_through_postfix(postfix: PostfixServer, site: MailSite) -> None:
    # A UTF-8 local part. (A UTF-8 *domain* makes the manual's mysql queries fail on the
    # ascii columns, "Illegal mix of collations", and Postfix answers 451 to every RCPT.)
    sender = "jörg@remote.example"
    mail = message(ALICE, title(postfix, "SMTPUTF8"))
    del mail["From"]
    mail["From"] = f"Jörg <{sender}>"
    raw = mail.as_bytes(policy=email.policy.SMTPUTF8)
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as client:
        client.ehlo("client.remote.example")
        assert client.has_extn("smtputf8")
        assert client.sendmail(sender, [ALICE], raw, mail_options=["SMTPUTF8"]) == {}
    lines = wait_delivered(postfix, mail, 1)
    assert lines[0]["status"] == "sent", lines
    [stored] = [m for m in site.inbox(ALICE) if m["Message-ID"] == mail["Message-ID"]]
    assert stored["Return-Path"] == f"<{sender}>", stored["Return-Path"]
