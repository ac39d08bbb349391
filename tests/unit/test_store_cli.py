"""``gateway mbox``: importing .eml, mbox and Maildir, mbox export, and the commands."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import update

from gateway.directory import admin
from gateway.directory.directory import Directory
from gateway.directory.models import Users
from gateway.store import Mailbox, Store, imap
from gateway.store import tags as T
from gateway.store.cli import make_mbox_group
from gateway.store.exporter import export_mbox
from gateway.store.importer import ImapAnswered, import_path
from gateway.store.mailbox import DB_NAME
from gateway.store.objects import MSGFLAG_READ, MSGFLAG_UNSENT
from gateway.store.settings import StoreSection
from gateway.store.special import Private
from gateway.store.store import store_path
from gateway.store.txn import Txn

INBOX = int(Private.INBOX)

EML = (b"Received: from mx.example.net by mail.example.org; Tue, 2 Jan 2024 12:00:00 +0100\r\n"
       b"From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.net>\r\n"
       b"To: \"Doe, Jane\" <jane@example.org>, bob@example.org\r\n"
       b"Cc: =?iso-8859-1?q?Ren=E9?= <rene@example.org>\r\n"
       b"Subject: =?utf-8?b?R3LDvMOfZQ==?= aus\r\n M\xc3\xbcnchen\r\n"
       b"Date: Tue, 2 Jan 2024 11:58:00 +0100\r\n"
       b"Message-ID: <abc@example.net>\r\n"
       b"\r\n"
       b"Hallo!\r\n")

MBOX = (b"From alice@example.org Mon Jan  1 10:00:00 2024\n"
        b"From: Alice <alice@example.org>\n"
        b"Subject: one\n"
        b"Status: RO\n"
        b"\n"
        b">From the quoted line\n"
        b">>From a line quoted twice\n"
        b"\n"
        b"From bob@example.org Tue Jan  2 11:30:05 2024\n"
        b"From: bob@example.org\n"
        b"Subject: two\n"
        b"X-Status: AF\n"
        b"\n"
        b"body two\n"
        b"\n"
        b"From carol@example.org Wed Jan 10 08:00:00 2024\n"
        b"From: Carol <carol@example.org>\r\n"
        b"Subject: three, with CRLF\r\n"
        b"\r\n"
        b">From  here, and a last line without a blank one after\r\n"
        b"\n")


async def _mids(mbox: Mailbox, folder: int = INBOX) -> list[int]:
    def run(txn: Txn) -> list[int]:
        return [r[0] for r in txn.conn.execute(
            "SELECT message_id FROM messages WHERE folder_id = ? ORDER BY uid", (folder,))]
    return await mbox.read(run)


async def _original(mbox: Mailbox, mid: int) -> bytes:
    return b"".join([chunk async for chunk in mbox.original_message(mid)])


# -- importer -----------------------------------------------------------------------------------


async def test_an_eml_file(mbox: Mailbox, tmp_path: Path) -> None:
    path = tmp_path / "one.eml"
    path.write_bytes(EML)
    result = await import_path(mbox, INBOX, path)
    assert (result.imported, result.skipped, result.bytes_read) == (1, 0, len(EML))
    [mid] = await _mids(mbox)
    assert await _original(mbox, mid) == EML
    props = await mbox.message(mid)
    assert props[T.PidTagMessageClass] == "IPM.Note"
    assert props[T.PidTagSubject] == "Grüße aus München"
    assert props[T.PidTagSenderName] == props[T.PidTagSentRepresentingName] == "Jörg Müller"
    assert props[T.PidTagSenderSmtpAddress] == props[T.PidTagSenderEmailAddress] \
        == props[T.PidTagSentRepresentingSmtpAddress] == "joerg@example.net"
    assert props[T.PidTagSenderAddressType] == "SMTP"
    assert props[T.PidTagDisplayTo] == "Doe, Jane; bob@example.org"
    assert props[T.PidTagDisplayCc] == "René"
    assert props[T.PidTagClientSubmitTime] == datetime(2024, 1, 2, 10, 58, tzinfo=UTC)
    assert props[T.PidTagMessageDeliveryTime] == datetime(2024, 1, 2, 11, 0, tzinfo=UTC)
    assert props[T.PidTagInternetMessageId] == "<abc@example.net>"
    assert props[T.PidTagTransportMessageHeaders].startswith("Received: from mx")
    assert "Hallo" not in props[T.PidTagTransportMessageHeaders]
    assert props[T.PidTagMessageFlags] & MSGFLAG_READ == 0


async def test_an_mbox_round_trips_byte_for_byte(mbox: Mailbox, tmp_path: Path) -> None:
    path = tmp_path / "in.mbox"
    path.write_bytes(MBOX)
    seen: list[int] = []
    result = await import_path(mbox, INBOX, path, lambda r: seen.append(r.imported))
    assert (result.imported, result.skipped, result.bytes_read) == (3, 0, len(MBOX))
    assert seen[-1] == 3
    one, two, three = await _mids(mbox)
    assert await _original(mbox, one) == (
        b"From: Alice <alice@example.org>\nSubject: one\nStatus: RO\n\n"
        b"From the quoted line\n>From a line quoted twice\n")
    assert (await _original(mbox, three)).endswith(b"\r\nFrom  here, and a last line "
                                                   b"without a blank one after\r\n")
    props = await mbox.message(one)
    assert props[T.PidTagMessageDeliveryTime] == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert props[T.PidTagMessageFlags] & MSGFLAG_READ
    second = await mbox.message(two)
    assert second[T.PidTagFlagStatus] == 2 and second[T.PidTagLastVerbExecuted] == 102
    assert second[T.PidTagMessageDeliveryTime] == datetime(2024, 1, 2, 11, 30, 5, tzinfo=UTC)
    out = io.BytesIO()
    exported = await export_mbox(mbox, INBOX, out)
    assert (exported.exported, exported.without_original) == (3, 0)
    assert out.getvalue() == MBOX
    assert exported.bytes_written == len(MBOX)


def _maildir(root: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)

    def message(n: int) -> bytes:
        return f"From: sender{n}@example.org\nSubject: number {n}\n\nbody {n}\n".encode()

    files = {"cur/1000.1.host:2,FS": 1, "cur/1000.2.host:2,RST": 2, "cur/1000.3.host:2,D": 3,
             "cur/1000.4.host:2,PRS": 4, "new/1000.5.host": 5}
    for name, n in files.items():
        (root / name).write_bytes(message(n))
    os.utime(root / "new/1000.5.host", (1_700_000_000, 1_700_000_000))
    (root / "tmp/1000.6.host").write_bytes(message(6))  # not delivered yet: ignored
    return root


async def test_a_maildir_with_flags(mbox: Mailbox, tmp_path: Path) -> None:
    result = await import_path(mbox, INBOX, _maildir(tmp_path / "Maildir"))
    assert (result.imported, result.skipped) == (5, 0)
    listed = await mbox.read(imap.listing, INBOX)
    flags = {(await mbox.message(m.message_id))[T.PidTagSubject]: m.flags for m in listed}
    assert flags == {
        "number 1": {"\\Flagged", "\\Seen"},
        "number 2": {"\\Answered", "\\Seen"},  # T (trashed) is not imported as \Deleted
        "number 3": {"\\Draft"},
        "number 4": {"$Forwarded", "\\Answered", "\\Seen"},
        "number 5": set(),
    }
    mids = await _mids(mbox)
    draft = await mbox.message(mids[2])
    assert draft[T.PidTagMessageFlags] & MSGFLAG_UNSENT
    forwarded = await mbox.message(mids[3], [T.PidTagLastVerbExecuted, ImapAnswered])
    assert forwarded == {T.PidTagLastVerbExecuted: 104, ImapAnswered: True}
    new = await mbox.message(mids[4])
    assert new[T.PidTagMessageDeliveryTime] == datetime.fromtimestamp(1_700_000_000, UTC)


async def test_malformed_messages_are_skipped_and_counted(mbox: Mailbox, tmp_path: Path) -> None:
    path = tmp_path / "mixed.mbox"
    path.write_bytes(b"From a@example.org Mon Jan  1 10:00:00 2024\nSubject: good\n\nok\n\n"
                     b"From b@example.org Mon Jan  1 10:00:00 2024\n\x00\x01 not mail \xff\n\n"
                     b"From c@example.org Mon Jan  1 10:00:00 2024\n\n"
                     b"From d@example.org Mon Jan  1 10:00:00 2024\nSubject: also good\n\nok\n")
    result = await import_path(mbox, INBOX, path)
    assert (result.imported, result.skipped) == (2, 2)
    assert len(result.warnings) == 2 and "message 2" in result.warnings[0]
    garbage = tmp_path / "garbage.eml"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n binary")
    result = await import_path(mbox, INBOX, garbage)
    assert (result.imported, result.skipped) == (0, 1)
    assert len(await _mids(mbox)) == 2


async def test_a_message_the_store_refuses_does_not_lose_its_batch(tmp_path: Path) -> None:
    store = Store(tmp_path / "data", StoreSection(reader_threads=2, max_value_bytes=2000))
    try:
        mbox = await store.create("small@example.org")
        path = tmp_path / "in.mbox"
        huge = b"X-Filler: " + b"x" * 3000 + b"\n"
        path.write_bytes(b"".join(
            b"From a@example.org Mon Jan  1 10:00:00 2024\nSubject: %d\n%s\nbody\n\n"
            % (n, huge if n == 2 else b"") for n in range(4)))
        result = await import_path(mbox, INBOX, path)
        assert (result.imported, result.skipped) == (3, 1)
        assert "refused" in result.warnings[0]
    finally:
        await store.close()


async def test_an_oversized_message_is_skipped_without_being_held(tmp_path: Path) -> None:
    store = Store(tmp_path / "data", StoreSection(reader_threads=2, max_message_bytes=2 << 20))
    try:
        mbox = await store.create("small@example.org")
        path = tmp_path / "in.mbox"
        head = b"From a@example.org Mon Jan  1 10:00:00 2024\nSubject: %d\n\n"
        path.write_bytes(head % 1 + b"short\n\n"
                         + head % 2 + b"y" * (3 << 20) + b"\n\n"
                         + head % 3 + b"short\n")
        result = await import_path(mbox, INBOX, path)
        assert (result.imported, result.skipped) == (2, 1)
        assert "message 2: skipped, larger than" in result.warnings[0]
        assert result.bytes_read == path.stat().st_size
        subjects = [(await mbox.message(m))[T.PidTagSubject] for m in await _mids(mbox)]
        assert subjects == ["1", "3"]
    finally:
        await store.close()


async def test_export_counts_messages_without_internet_form(mbox: Mailbox) -> None:
    from gateway.store import NewMessage

    await mbox.create_message(INBOX, NewMessage(props={T.PidTagSubject: "made in Outlook"}))
    out = io.BytesIO()
    result = await export_mbox(mbox, INBOX, out)
    assert (result.exported, result.without_original, out.getvalue()) == (0, 1, b"")


# -- commands -----------------------------------------------------------------------------------


def _conf(tmp_path: Path) -> tuple[Path, Path]:
    conf, data = tmp_path / "conf", tmp_path / "data"
    conf.mkdir()
    (conf / "50-test.toml").write_text(f'[gateway]\ndata_dir = "{data}"\n')
    return conf, data


def _run(conf: Path, *args: str) -> Result:
    command, rest = args[0], args[1:]
    return CliRunner().invoke(make_mbox_group(), [command, "--config-dir", str(conf), *rest])


def _add_user(data: Path, address: str, lang: str) -> None:
    async def main() -> None:
        directory = await Directory.open("", data, cache_ttl=0)
        try:
            await admin.add_domain(directory.engine, address.partition("@")[2])
            await admin.add_user(directory.engine, address)
            await admin.add_alias(directory.engine, "alias@" + address.partition("@")[2],
                                  address)
            async with directory.engine.begin() as conn:
                await conn.execute(update(Users).where(Users.username == address)
                                   .values(lang=lang))
        finally:
            await directory.close()
    asyncio.run(main())


def test_create_asks_the_directory(tmp_path: Path) -> None:
    conf, data = _conf(tmp_path)
    refused = _run(conf, "create", "nobody@example.test")
    assert refused.exit_code == 1 and "--no-directory" in refused.output
    assert not store_path(data, "nobody@example.test").exists()
    _add_user(data, "alice@example.test", "de_DE")
    done = _run(conf, "create", "ALIAS@example.test")  # an alias: the primary address's store
    assert done.exit_code == 0, done.output
    assert "created the store of alice@example.test" in done.output
    assert "37 folders, language de" in done.output
    again = _run(conf, "create", "alice@example.test")
    assert again.exit_code == 1 and "has a store already" in again.output
    forced = _run(conf, "create", "--no-directory", "--language", "fr-CA", "x@elsewhere.test")
    assert forced.exit_code == 0 and "language fr" in forced.output
    public = _run(conf, "create", "public:example.test")
    assert public.exit_code == 0 and "4 folders" in public.output
    stats = _run(conf, "stats", "--json", "alice@example.test")
    report = json.loads(stats.output)
    assert report["language"] == "de"
    names = {row["name"] for row in report["folders"]}
    assert {"Posteingang", "Kalender", "Top of Information Store"} <= names


def test_import_stats_check_export(tmp_path: Path) -> None:
    conf, _ = _conf(tmp_path)
    assert _run(conf, "create", "--no-directory", "u@example.test").exit_code == 0
    source = tmp_path / "in.mbox"
    source.write_bytes(MBOX)
    imported = _run(conf, "import", "u@example.test", "Inbox/Lists/python", str(source))
    assert imported.exit_code == 0, imported.output
    assert "imported 3 messages into Inbox/Lists/python (0 skipped)" in imported.output
    assert "messages/s" in imported.output
    maildir = _maildir(tmp_path / "Maildir")
    assert "imported 5 messages" in _run(conf, "import", "u@example.test", "inbox",
                                         str(maildir)).output
    stats = _run(conf, "stats", "u@example.test")
    assert stats.exit_code == 0
    lines = stats.output.splitlines()
    python = next(line for line in lines if "python [" in line)
    assert python.split()[:2] == ["3", "2"] and "      python" in python
    inbox = next(line for line in lines if "Inbox [13]" in line)
    assert inbox.split()[:2] == ["5", "2"]
    assert "total: 39 folders, 8 messages" in lines[-1]
    checked = _run(conf, "check", "u@example.test")
    assert checked.exit_code == 0 and checked.output.strip() == "ok"
    target = tmp_path / "out.mbox"
    exported = _run(conf, "export", "u@example.test", "Inbox/Lists/python", str(target))
    assert exported.exit_code == 0, exported.output
    assert "exported 3 messages" in exported.output
    assert target.read_bytes() == MBOX
    missing = _run(conf, "export", "u@example.test", "Nowhere", str(target))
    assert missing.exit_code == 1 and "no folder 'Nowhere'" in missing.output
    unknown = _run(conf, "stats", "nobody@example.test")
    assert unknown.exit_code == 1 and "has no store" in unknown.output


@pytest.mark.parametrize(("damage", "found"), [
    ("refcount", "has refcount 7 but 1 reference"), ("blob row", "but has no row"),
    ("blob file", "is missing"), ("size", "recomputed"),
    ("cycle", "folder 25 is in a cycle"), ("uidnext", "folder 13: uidnext 1 is not above"),
    ("total", "total size is 5, its messages add up to"),
    ("counts", "counts (content/unread/associated) 9/1/0 kept")])
def test_check_finds_damage(tmp_path: Path, damage: str, found: str) -> None:
    conf, data = _conf(tmp_path)
    assert _run(conf, "create", "--no-directory", "u@example.test").exit_code == 0
    big = tmp_path / "big.eml"
    big.write_bytes(b"Subject: big\n\n" + os.urandom(200_000).hex().encode())
    assert _run(conf, "import", "u@example.test", "Inbox", str(big)).exit_code == 0
    root = store_path(data, "u@example.test")
    (root / "blobs" / "ab").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "ab" / ("ab" * 32 + ".zst")).write_bytes(b"left by a crash")
    healthy = _run(conf, "check", "u@example.test")
    assert healthy.exit_code == 0, healthy.output
    assert "note: orphan blob file" in healthy.output
    conn = sqlite3.connect(root / DB_NAME)
    with conn:
        digest = conn.execute("SELECT hash FROM blobs WHERE data IS NULL").fetchone()[0]
        statements = {
            "refcount": "UPDATE blobs SET refcount = 7",
            "blob row": f"DELETE FROM blobs WHERE hash = '{digest}'",
            "blob file": None,
            "size": "UPDATE messages SET size = size + 1",
            "cycle": "UPDATE folders SET parent_id = 26 WHERE folder_id = 25",
            "uidnext": "UPDATE folders SET uidnext = 1 WHERE folder_id = 13",
            "total": "UPDATE meta SET value = 5 WHERE key = 'total_size'",
            "counts": "UPDATE folders SET content_count = 9 WHERE folder_id = 13",
        }
        statement = statements[damage]
        if statement is None:
            (root / "blobs" / digest[:2] / f"{digest}.zst").unlink()
        else:
            conn.execute(statement)
    conn.close()
    broken = _run(conf, "check", "u@example.test")
    assert broken.exit_code == 1, broken.output
    assert "problem: " in broken.output and found in broken.output
    assert "problem(s) found" in broken.output
