"""The directory commands through the real ``gateway`` command, on SQLite."""

from __future__ import annotations

from pathlib import Path

from gateway.directory.engine import SQLITE_FILE
from tests.harness.gateway import run_cli
from tests.unit.directory_support import cli_round_trip, run_gateway, write_config


def test_cli_round_trip_on_the_embedded_database(tmp_path: Path) -> None:
    conf = write_config(tmp_path / "conf", tmp_path / "data")
    cli_round_trip(conf)
    assert (tmp_path / "data" / SQLITE_FILE).is_file()


def test_first_command_on_a_fresh_data_dir_creates_the_schema(tmp_path: Path) -> None:
    conf = write_config(tmp_path / "conf", tmp_path / "data")
    done = run_cli("domain", "add", "example.test", config_dirs=[conf])
    assert done.returncode == 0, done.stderr
    listed = run_cli("domain", "list", config_dirs=[conf])
    assert listed.stdout.startswith("example.test  id=1  users=0/1000")


def test_done_when_steps_of_the_issue(tmp_path: Path) -> None:
    conf = write_config(tmp_path / "conf", tmp_path / "data")
    domain = run_gateway("domain", "add", "example.test", config_dirs=[conf])
    assert domain.returncode == 0 and "created the public folders" in domain.stdout
    assert (tmp_path / "data" / "public" / "example.test" / "store.sqlite3").is_file()
    added = run_gateway("user", "add", "alice@example.test", "--password-stdin",
                        config_dirs=[conf], stdin="secret\n")
    assert added.returncode == 0, added.stderr
    assert "added user alice@example.test" in added.stdout
    # The mailbox comes with the user, and the directory knows where it is.
    store = tmp_path / "data" / "mailboxes" / "example.test" / "alice"
    assert f"created the mailbox of alice@example.test at {store}" in added.stdout
    assert (store / "store.sqlite3").is_file()
    listed = run_gateway("mbox", "stats", "alice@example.test", config_dirs=[conf])
    assert listed.returncode == 0 and "Inbox" in listed.stdout, listed.stderr
    import sqlite3
    with sqlite3.connect(tmp_path / "data" / SQLITE_FILE) as db:
        assert db.execute("SELECT maildir FROM users").fetchone() == (str(store),)
    skipped = run_gateway("user", "add", "bob@example.test", "--no-mailbox", config_dirs=[conf])
    assert "created the mailbox" not in skipped.stdout
    assert not (store.parent / "bob").exists()


def test_passwd_needs_a_password(tmp_path: Path) -> None:
    conf = write_config(tmp_path / "conf", tmp_path / "data")
    run_gateway("domain", "add", "example.test", config_dirs=[conf])
    run_gateway("user", "add", "alice@example.test", config_dirs=[conf])
    done = run_gateway("user", "passwd", "alice@example.test", config_dirs=[conf])
    assert done.returncode != 0 and "--password-stdin" in done.stderr


def test_bad_url_is_reported_without_traceback(tmp_path: Path) -> None:
    conf = write_config(tmp_path / "conf", tmp_path / "data", url="postgresql://h/db")
    done = run_gateway("domain", "list", config_dirs=[conf])
    assert done.returncode == 1 and "unsupported database" in done.stderr
    assert "Traceback" not in done.stderr
    conf = write_config(tmp_path / "conf2", tmp_path / "data",
                        url="mysql+aiomysql://nobody@127.0.0.1:1/db")
    done = run_gateway("db", "init", config_dirs=[conf])
    assert done.returncode == 1 and "directory database error" in done.stderr
    assert "Traceback" not in done.stderr
