"""Unmodified IMAP clients against the gateway, compared with Dovecot running the same script.

Each script in ``tests/integration/imap_scripts/`` (imaplib, imapclient,
aioimaplib, imap-tools, mbsync, eight clients at once) is run first against a
private Dovecot — so the script itself is known to be right — and then
against the gateway's ``imap_server``: in plaintext, over implicit TLS, with
STARTTLS required, and with two worker processes. The two normalised
transcripts must agree step by step. The scripts check what the RFCs fix
themselves; the comparison settles what they leave open (search matching of
encoded words, section boundaries, BODYSTRUCTURE details, which untagged
responses IDLE carries).

On failure the message names the first differing steps (or the step a client
failed before) and the gateway log's warnings; ``IMAP_SCRIPT_DEBUG=4`` adds
imaplib's protocol trace, ``IMAP_CLIENTS_DUMP=1`` prints both transcripts
(run with ``-s``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.harness.dovecot import DovecotMissing, DovecotServer, start_dovecot
from tests.harness.imap import ImapServer
from tests.integration.imap_scripts import (
    Target,
    Transcript,
    aioimaplib_session,
    concurrent_clients,
    first_differences,
    imapclient_session,
    imaplib_extensions,
    imaplib_session,
    imaptools_session,
    mbsync_bulk,
    mbsync_session,
)

SCRIPTS = {
    "imaplib": imaplib_session,
    "imaplib-extensions": imaplib_extensions,
    "imapclient": imapclient_session,
    "aioimaplib": aioimaplib_session,
    "imap-tools": imaptools_session,
    "mbsync": mbsync_session,
    "mbsync-bulk": mbsync_bulk,
    "concurrent": concurrent_clients,
}
# What issue 6 asks the server to announce after login (besides IMAP4rev1).
REQUIRED_CAPABILITIES = {
    "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "LITERAL+", "NAMESPACE", "ID", "ENABLE",
    "CONDSTORE", "QRESYNC", "ESEARCH", "LIST-EXTENDED", "LIST-STATUS", "UNSELECT", "CHILDREN",
    "SASL-IR", "UTF8=ACCEPT", "STATUS=SIZE", "IMAP4REV2",
}

_reference: dict[str, Transcript] = {}


def dovecot_target(server: DovecotServer, workdir: Path) -> Target:
    alice, bob = server.users
    return Target("dovecot", server.host, server.port, alice, server.users[alice], bob,
                  server.users[bob], server.deliver, workdir=workdir)


def gateway_target(server: ImapServer, workdir: Path, *, tls: bool = False,
                   starttls: bool = False) -> Target:
    alice, bob = sorted(server.users)
    return Target("gateway", server.host, server.port, alice, server.users[alice], bob,
                  server.users[bob], server.deliver, tls_port=server.tls_port,
                  ca_file=server.ca_file, use_tls=tls, use_starttls=starttls, workdir=workdir)


def skip_without(script: ModuleType) -> None:
    if script in (mbsync_session, mbsync_bulk):
        try:
            mbsync_session.mbsync_binary()
        except mbsync_session.MbsyncMissing as exc:
            pytest.skip(str(exc))


def reference_transcript(name: str, tmp_path: Path) -> Transcript:
    """Dovecot's transcript of script ``name`` (run once per test session)."""
    if name not in _reference:
        try:
            server = start_dovecot(tmp_path / "reference", imap=True, lmtp=False)
        except DovecotMissing as exc:
            pytest.skip(f"no reference to compare with: {exc}")
        try:
            _reference[name] = SCRIPTS[name].run(dovecot_target(server, tmp_path / "reference"))
        finally:
            server.stop()
    return _reference[name]


def run_against(name: str, target: Target) -> tuple[Transcript, str]:
    """The script's transcript, and the error that ended it early ("" when none)."""
    transcript: Transcript = []
    try:
        SCRIPTS[name].run(target, transcript)
    except Exception as exc:
        return transcript, f"{type(exc).__name__}: {exc}"
    return transcript, ""


def server_log_tail(server: ImapServer, lines: int = 25) -> str:
    """Warnings, errors and tracebacks from the gateway's log (for a failure message)."""
    text = server.gateway.log().splitlines()
    keep = [line for line in text if re.search(r"WARNING|ERROR|CRITICAL|Traceback|^\s|Error",
                                               line)]
    return "\n".join(keep[-lines:])


def assert_same_on(server: ImapServer, ours: Transcript, error: str,
                   reference: Transcript) -> None:
    try:
        assert_same(ours, error, reference)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- gateway log (warnings and errors) ---\n"
                             f"{server_log_tail(server)}") from None


def assert_same(ours: Transcript, error: str, reference: Transcript) -> None:
    """Our transcript equals Dovecot's; on failure say where they part and why.

    ``IMAP_CLIENTS_DUMP=1`` prints both transcripts side by side (with ``-s``)."""
    if os.environ.get("IMAP_CLIENTS_DUMP"):
        theirs = dict(reference)
        for step, value in ours:
            mark = "==" if theirs.get(step) == value else "!="
            print(f"{mark} {step}: {value!r:.150}")
    if error:
        done = len(ours)
        following = reference[done][0] if done < len(reference) else "(the end)"
        diffs = first_differences(ours, reference[:done], limit=8)
        raise AssertionError(f"the client failed after {done} of {len(reference)} steps, "
                             f"before {following!r}: {error}"
                             + ("\nearlier differences from Dovecot:\n" + "\n".join(diffs)
                                if diffs else ""))
    diffs = first_differences(ours, reference, limit=8)
    assert not diffs, "differs from Dovecot:\n" + "\n".join(diffs)


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_against_dovecot(name: str, dovecot_server: DovecotServer,
                                tmp_path: Path) -> None:
    """The script runs cleanly against Dovecot: its own checks hold (no False step)."""
    skip_without(SCRIPTS[name])
    transcript = SCRIPTS[name].run(dovecot_target(dovecot_server, tmp_path))
    failed = [step for step, value in transcript if value is False]
    assert not failed, f"script checks failed against Dovecot: {failed}"
    _reference.setdefault(name, transcript)


@pytest.mark.parametrize("name", SCRIPTS)
def test_client_against_gateway(name: str, imap_server: ImapServer, tmp_path: Path) -> None:
    """The same client session against the gateway gives Dovecot's transcript."""
    skip_without(SCRIPTS[name])
    reference = reference_transcript(name, tmp_path)
    ours, error = run_against(name, gateway_target(imap_server, tmp_path / "ours"))
    assert_same_on(imap_server, ours, error, reference)


@pytest.mark.parametrize("name", ["imaplib", "imapclient", "aioimaplib", "imap-tools", "mbsync"])
def test_client_over_implicit_tls(name: str, imap_server: ImapServer, tmp_path: Path) -> None:
    """Over the implicit-TLS port the session is the same as in plaintext."""
    skip_without(SCRIPTS[name])
    reference = reference_transcript(name, tmp_path)
    ours, error = run_against(name, gateway_target(imap_server, tmp_path / "ours", tls=True))
    assert_same_on(imap_server, ours, error, reference)


@pytest.mark.parametrize("name", ["imaplib", "imapclient", "mbsync"])
def test_client_with_starttls_required(name: str, imap_server_factory, tmp_path: Path) -> None:
    """With plaintext login refused, clients that STARTTLS first run the same session."""
    skip_without(SCRIPTS[name])
    reference = reference_transcript(name, tmp_path)
    server = imap_server_factory(plaintext=False)
    ours, error = run_against(name, gateway_target(server, tmp_path / "ours", starttls=True))
    assert_same_on(server, ours, error, reference)


@pytest.mark.parametrize("name", ["imapclient", "aioimaplib", "concurrent"])
def test_client_against_two_workers(name: str, imap_server_factory, tmp_path: Path) -> None:
    """With two worker processes, sessions that land in different workers still see each
    other's changes (IDLE, NOOP) through the Redis notifications."""
    reference = reference_transcript(name, tmp_path)
    server = imap_server_factory("[gateway]\nworkers = 2\n")
    ours, error = run_against(name, gateway_target(server, tmp_path / "ours"))
    assert_same_on(server, ours, error, reference)


def test_plaintext_login_refused_without_tls(imap_server_factory) -> None:
    """imaplib and imapclient see LOGINDISABLED and a refused LOGIN before STARTTLS."""
    import imaplib

    from imapclient import IMAPClient
    from imapclient.exceptions import LoginError

    server = imap_server_factory(plaintext=False)
    alice = sorted(server.users)[0]
    conn = imaplib.IMAP4(server.host, server.port, timeout=30)
    try:
        assert "LOGINDISABLED" in conn.capabilities
        with pytest.raises(imaplib.IMAP4.error):
            conn.login(alice, server.users[alice])
    finally:
        conn.shutdown()
    client = IMAPClient(server.host, port=server.port, ssl=False, timeout=30)
    try:
        with pytest.raises(LoginError):
            client.login(alice, server.users[alice])
    finally:
        client.shutdown()


def test_gateway_capabilities_cover_the_issue(imap_server: ImapServer) -> None:
    """After login the gateway announces every extension issue 6 lists."""
    import imaplib

    conn = imaplib.IMAP4(imap_server.host, imap_server.port, timeout=30)
    try:
        alice = sorted(imap_server.users)[0]
        conn.login(alice, imap_server.users[alice])
        caps = set(conn.capability()[1][0].decode().upper().split())
    finally:
        conn.logout()
    assert "IMAP4REV1" in caps
    assert not REQUIRED_CAPABILITIES - caps, sorted(REQUIRED_CAPABILITIES - caps)
