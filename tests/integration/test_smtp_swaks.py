"""swaks (Debian) against a real ``gateway serve``: LMTP and SMTP on the delivery
listener, authenticated submission with STARTTLS and with implicit TLS,
pipelining, an oversize message, unknown recipients and relay attempts.

Each case asserts on swaks' exit code (see ``swaks --help``, EXIT CODES) and
on the server's reply lines in its transcript, then on what the store holds
(``gateway mbox export``).
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.gateway import GatewayFactory, RunningGateway, run_cli
from tests.harness.ports import port_open
from tests.harness.postfix import exported_messages
from tests.unit.directory_support import run_gateway

DOMAIN = "example.test"
ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
PASSWORDS = {ALICE: "alice secret 1", BOB: "bob secret 2"}
REMOTE = "someone@remote.example"
MAX_BYTES = 200_000

# swaks exit codes
OK, MAIL_FAILED, NO_RCPT, DATA_REFUSED, AUTH_FAILED = 0, 23, 24, 26, 28

GATEWAY_TOML = f"""\
[plugins]
disabled = ["imap"]
[smtp]
delivery_listen = ["127.0.0.1:{{port_delivery}}"]
submission_listen = ["127.0.0.1:{{port_submission}}"]
submission_listen_tls = ["127.0.0.1:{{port_submissions}}"]
max_message_bytes = {MAX_BYTES}
"""


@dataclass
class Swaks:
    """One finished swaks run."""

    code: int
    transcript: str

    def server_lines(self) -> list[str]:
        """What the server said: ``<-``, ``<~`` (over TLS), ``<**``, ``<~*`` (errors)."""
        return [re.sub(r"^<(?:-|~|\*\*|~\*)\s+", "", line)
                for line in self.transcript.splitlines()
                if re.match(r"^<(?:-|~|\*\*|~\*)\s", line)]

    def replies(self, code: int) -> list[str]:
        return [line for line in self.server_lines() if line.startswith(str(code))]


@dataclass
class MailGateway:
    """A gateway with the smtp plugin's three listeners and two users (alice, bob)."""

    gateway: RunningGateway
    workdir: Path

    def port(self, name: str) -> int:
        return self.gateway.ports[name]

    def swaks(self, port: str, *args: str, timeout: float = 60.0) -> Swaks:
        binary = shutil.which("swaks")
        assert binary is not None
        done = subprocess.run(
            [binary, "--server", "127.0.0.1", "--port", str(self.port(port)),
             "--timeout", "20", *args],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return Swaks(done.returncode, done.stdout + done.stderr)

    def folder(self, address: str, folder: str = "Inbox") -> list[email.message.EmailMessage]:
        raws = exported_messages(self.gateway.config_dir, address, folder,
                                 self.workdir / "exports", run_cli)
        return [email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[misc]
                for raw in raws]

    def subjects(self, address: str, folder: str = "Inbox") -> list[str]:
        return [str(mail["Subject"]) for mail in self.folder(address, folder)]

    def count(self, address: str, title: str, folder: str = "Inbox") -> int:
        """How many messages with the subject ``title`` ``folder`` holds."""
        return self.subjects(address, folder).count(title)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailGateway]:
    """One gateway for the module: every case uses subjects of its own."""
    if shutil.which("swaks") is None:
        pytest.skip("swaks not found: install the Debian package swaks")
    tmp_path = tmp_path_factory.mktemp("swaks")
    factory = GatewayFactory(tmp_path)
    try:
        yield start_site(factory, tmp_path)
    finally:
        factory.stop_all()


def start_site(factory: GatewayFactory, tmp_path: Path) -> MailGateway:
    gw = factory(GATEWAY_TOML, ports=("delivery", "submission", "submissions"))

    def cli(*args: str, stdin: str | None = None) -> None:
        done = run_gateway(*args, config_dirs=[gw.config_dir], stdin=stdin)
        assert done.returncode == 0, f"gateway {' '.join(args)}: {done.stdout}{done.stderr}"

    cli("domain", "add", DOMAIN, "--no-public-store")
    for address, password in PASSWORDS.items():
        cli("user", "add", address, "--password-stdin", stdin=password + "\n")
    for name in ("delivery", "submission", "submissions"):
        if not port_open("127.0.0.1", gw.ports[name]):
            pytest.fail(f"the smtp plugin is not listening on its {name} port "
                        f"{gw.ports[name]}; gateway log:\n{gw.log()[-3000:]}")
    return MailGateway(gw, tmp_path)


def subject() -> str:
    return f"swaks {uuid.uuid4().hex[:10]}"


def test_lmtp_answers_per_recipient_and_stores_in_each_inbox(site: MailGateway) -> None:
    title = subject()
    run = site.swaks("delivery", "--protocol", "LMTP", "--from", REMOTE,
                     "--to", f"{ALICE},{BOB}", "--header", f"Subject: {title}")
    assert run.code == OK, run.transcript
    assert any(line.startswith("250") for line in run.server_lines()[:3]), run.transcript
    # LMTP: after the final dot one reply per accepted recipient (RFC 2033).
    after_data = run.transcript.split("\n -> .\n", 1)[1]
    assert len(re.findall(r"^<-\s+250", after_data, re.MULTILINE)) == 2, run.transcript
    for address in (ALICE, BOB):
        [mail] = [m for m in site.folder(address) if m["Subject"] == title]
        assert mail["Subject"] == title
        assert mail["Return-Path"] == f"<{REMOTE}>"
        assert mail.get_all("Received"), "no Received header added"


def test_lmtp_refuses_unknown_recipient_with_550_5_1_1(site: MailGateway) -> None:
    run = site.swaks("delivery", "--protocol", "LMTP", "--from", REMOTE,
                     "--to", f"nobody@{DOMAIN}")
    assert run.code == NO_RCPT, run.transcript
    assert any(re.match(r"550[ -]5\.1\.1", line) for line in run.server_lines()), run.transcript


def test_smtp_on_the_delivery_port_advertises_extensions_and_delivers(
        site: MailGateway) -> None:
    title = subject()
    run = site.swaks("delivery", "--protocol", "ESMTP", "--from", REMOTE, "--to", ALICE,
                     "--header", f"Subject: {title}")
    assert run.code == OK, run.transcript
    ehlo = " ".join(run.replies(250))
    for extension in ("PIPELINING", "8BITMIME", "SIZE", "ENHANCEDSTATUSCODES", "SMTPUTF8"):
        assert extension in ehlo, f"{extension} not advertised: {run.transcript}"
    assert "AUTH" not in ehlo, "the delivery listener must not offer AUTH"
    assert site.count(ALICE, title) == 1


@pytest.mark.parametrize("protocol", ["LMTP", "ESMTP"])
def test_pipelined_transaction_with_one_bad_recipient(site: MailGateway, protocol: str) -> None:
    title = subject()
    run = site.swaks("delivery", "--protocol", protocol, "--pipeline", "--from", REMOTE,
                     "--to", f"{ALICE},nobody@{DOMAIN},{BOB}",
                     "--header", f"Subject: {title}")
    assert run.code == OK, run.transcript
    assert "PIPELINING" in run.transcript
    assert any(re.match(r"550[ -]5\.1\.1", line) for line in run.server_lines()), run.transcript
    assert site.count(ALICE, title) == 1
    assert site.count(BOB, title) == 1


def test_oversize_message_is_refused_and_nothing_stored(site: MailGateway,
                                                        tmp_path: Path) -> None:
    body = tmp_path / "big.txt"
    body.write_text(("x" * 76 + "\n") * (MAX_BYTES // 77 + 100))
    title = subject()
    for protocol in ("LMTP", "ESMTP"):
        run = site.swaks("delivery", "--protocol", protocol, "--from", REMOTE, "--to", ALICE,
                         "--header", f"Subject: {title}", "--body", str(body))
        assert run.code in (MAIL_FAILED, DATA_REFUSED), run.transcript
        assert any(re.match(r"552[ -]5\.3\.4", line) for line in run.server_lines()), \
            run.transcript
    assert site.count(ALICE, title) == 0


def test_relay_through_the_delivery_port_is_refused(site: MailGateway) -> None:
    run = site.swaks("delivery", "--protocol", "ESMTP", "--from", REMOTE,
                     "--to", "someone@elsewhere.example")
    assert run.code == NO_RCPT, run.transcript
    assert any(re.match(r"55[0-4][ -]5\.", line) for line in run.server_lines()), run.transcript


def test_submission_starttls_auth_plain_delivers_and_keeps_a_sent_copy(
        site: MailGateway) -> None:
    title = subject()
    run = site.swaks("submission", "--tls", "--tls-verify",
                     "--tls-ca-path", str(site.gateway.certificate),
                     "--auth", "PLAIN", "--auth-user", ALICE,
                     "--auth-password", PASSWORDS[ALICE], "--from", ALICE, "--to", BOB,
                     "--header", f"Subject: {title}")
    assert run.code == OK, run.transcript
    assert any(re.match(r"235[ -]2\.7\.0", line) for line in run.server_lines()), run.transcript
    assert site.count(BOB, title) == 1
    assert site.count(ALICE, title, "Sent Items") == 1


def test_submission_implicit_tls_auth_login(site: MailGateway) -> None:
    title = subject()
    run = site.swaks("submissions", "--tls-on-connect", "--auth", "LOGIN",
                     "--auth-user", BOB, "--auth-password", PASSWORDS[BOB],
                     "--from", BOB, "--to", ALICE, "--header", f"Subject: {title}")
    assert run.code == OK, run.transcript
    assert site.count(ALICE, title) == 1


def test_submission_relay_without_auth_is_refused(site: MailGateway) -> None:
    run = site.swaks("submission", "--tls", "--from", ALICE,
                     "--to", "someone@elsewhere.example")
    assert run.code in (MAIL_FAILED, NO_RCPT), run.transcript
    assert any(re.match(r"530[ -]5\.7\.0", line) for line in run.server_lines()), \
        run.transcript


def test_submission_offers_no_auth_before_tls(site: MailGateway) -> None:
    title = subject()
    run = site.swaks("submission", "--auth", "PLAIN", "--auth-user", ALICE,
                     "--auth-password", PASSWORDS[ALICE], "--from", ALICE, "--to", BOB,
                     "--header", f"Subject: {title}")
    assert run.code == AUTH_FAILED, run.transcript
    assert "STARTTLS" in " ".join(run.replies(250))
    assert site.count(BOB, title) == 0


def test_submission_wrong_password_gets_535(site: MailGateway) -> None:
    run = site.swaks("submission", "--tls", "--auth", "PLAIN", "--auth-user", ALICE,
                     "--auth-password", "wrong", "--from", ALICE, "--to", BOB)
    assert run.code == AUTH_FAILED, run.transcript
    assert any(re.match(r"535[ -]5\.7\.8", line) for line in run.server_lines()), run.transcript


def test_submission_refuses_a_sender_the_user_does_not_own(site: MailGateway) -> None:
    title = subject()
    run = site.swaks("submission", "--tls", "--auth", "PLAIN", "--auth-user", ALICE,
                     "--auth-password", PASSWORDS[ALICE], "--from", BOB, "--to", BOB,
                     "--header", f"Subject: {title}")
    assert run.code in (MAIL_FAILED, DATA_REFUSED), run.transcript
    assert any(line.startswith("553") for line in run.server_lines()), run.transcript
    assert site.count(BOB, title) == 0


@pytest.mark.parametrize("protocol", ["LMTP", "ESMTP"])
def test_connection_dropped_mid_data_delivers_nothing(site: MailGateway, protocol: str) -> None:
    lost = subject()
    dropped = site.swaks("delivery", "--protocol", protocol, "--from", REMOTE, "--to", ALICE,
                         "--header", f"Subject: {lost}", "--drop-after", "DATA")
    assert "354" in " ".join(dropped.server_lines()), dropped.transcript
    title = subject()
    after = site.swaks("delivery", "--protocol", protocol, "--from", REMOTE, "--to", ALICE,
                       "--header", f"Subject: {title}")
    assert after.code == OK, after.transcript
    assert site.count(ALICE, title) == 1
    assert site.count(ALICE, lost) == 0
