"""The administrator's path: a fresh data dir, a user, and a real mbox file imported.

The mbox is this repository's own history as ``git format-patch`` writes it:
real RFC 5322 messages with long bodies, encoded headers and ``From`` lines
inside patches — made here, so the test needs no network and no fixture file.
"""

from __future__ import annotations

import mailbox
import subprocess
from pathlib import Path

import pytest

from tests.harness.gateway import REPO
from tests.unit.directory_support import run_gateway, write_config


def git_mbox(target: Path, count: int = 25) -> int:
    made = subprocess.run(["git", "format-patch", "--stdout", f"-{count}", "HEAD"], cwd=REPO,
                          capture_output=True, check=False)
    if made.returncode != 0 or not made.stdout:
        pytest.skip(f"no git history to make an mbox from: {made.stderr!r}")
    target.write_bytes(made.stdout)
    return len(mailbox.mbox(str(target)))


def test_import_and_export_a_real_mbox_from_a_fresh_set_up(tmp_path: Path) -> None:
    conf = write_config(tmp_path / "conf", tmp_path / "data")
    source = tmp_path / "history.mbox"
    expected = git_mbox(source)

    def ok(*args: str, stdin: str | None = None) -> str:
        done = run_gateway(*args, config_dirs=[conf], stdin=stdin, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    ok("domain", "add", "example.test")
    ok("user", "add", "alice@example.test", "--password-stdin", stdin="secret\n")
    imported = ok("mbox", "import", "alice@example.test", "Archive/git", str(source))
    assert f"imported {expected} messages into Archive/git (0 skipped)" in imported, imported
    stats = ok("mbox", "stats", "alice@example.test")
    assert "git" in stats
    ok("mbox", "check", "alice@example.test")
    out = tmp_path / "out.mbox"
    ok("mbox", "export", "alice@example.test", "Archive/git", str(out))
    before = [m.as_bytes() for m in mailbox.mbox(str(source))]
    after = [m.as_bytes() for m in mailbox.mbox(str(out))]
    assert after == before
