"""The IMAP session engine against a real ``gateway serve``: mailboxes and messages,
sessions seeing each other's changes, IDLE, APPEND durability and the extensions
(CONDSTORE, QRESYNC, IMAP4rev2, LIST-EXTENDED, SEARCHRES, SORT, BINARY, UTF8=ACCEPT).
"""

from __future__ import annotations

import imaplib
import re
import time

from tests.harness.imap import (
    ALICE,
    BOB,
    BOB_PW,
    TIMEOUT,
    ImapServer,
    RawClient,
    untagged,
)
from tests.harness.imap import imaplib_client as client
from tests.harness.imap import make_message as message

Raw = RawClient


def test_list_select_fetch_store_copy_move_expunge(imap_server_module: ImapServer) -> None:
    server = imap_server_module
    raws = [message(f"flow {i}", f"Body number {i}.\r\n") for i in range(3)]
    server.deliver_many(ALICE, raws, "Flow")
    imap = client(server)
    try:
        status, listing = imap.list()
        assert status == "OK"
        names = b"\n".join(listing)
        assert b'"/" INBOX' in names and b"Flow" in names
        status, data = imap.select("Flow")
        assert status == "OK" and data == [b"3"]
        status, data = imap.fetch("1:*", "(UID FLAGS RFC822.SIZE ENVELOPE)")
        assert status == "OK" and len([d for d in data if d]) == 3
        assert b"flow 0" in data[0] and b"RFC822.SIZE" in data[0]
        status, data = imap.fetch("2", "(BODY.PEEK[])")
        assert data[0][1] == raws[1]
        assert b"\\Seen" not in imap.fetch("2", "(FLAGS)")[1][0]
        status, data = imap.fetch("2", "(BODY[TEXT])")
        assert data[0][1] == b"Body number 1.\r\n"
        assert b"\\Seen" in b" ".join(x if isinstance(x, bytes) else x[0] for x in data)
        assert b"\\Seen" in imap.fetch("2", "(FLAGS)")[1][0]
        status, data = imap.store("1", "+FLAGS", "(\\Flagged)")
        assert status == "OK" and b"\\Flagged" in data[0]
        assert imap.create("Flow/Kept")[0] == "OK"
        status, data = imap.copy("1", "Flow/Kept")
        assert status == "OK"
        status, data = imap.uid("MOVE", imap.fetch("3", "(UID)")[1][0].split()[-1][:-1],
                                "Flow/Kept")
        assert status == "OK"
        status, data = imap.select("Flow")
        assert data == [b"2"]
        imap.store("1", "+FLAGS", "(\\Deleted)")
        status, data = imap.expunge()
        assert status == "OK" and data == [b"1"]
        assert imap.select("Flow/Kept")[1] == [b"2"]
        flags = imap.fetch("1:*", "(FLAGS)")[1]
        assert any(b"\\Flagged" in f for f in flags)
        status, data = imap.copy("1", "Does/Not/Exist")
        assert status == "NO" and b"[TRYCREATE]" in data[0]
    finally:
        imap.logout()


def test_append_is_stored_and_fetched_back(imap_server_module: ImapServer) -> None:
    server = imap_server_module
    raw = message("appended", "Kept byte for byte.\r\n")
    imap = client(server)
    try:
        imap.create("Appended")
        status, data = imap.append("Appended", "(\\Seen $Work)",
                                   imaplib.Time2Internaldate(1_700_000_000), raw)
        assert status == "OK" and b"APPENDUID" in data[0], data
        status, data = imap.append("Nowhere", None, None, raw)
        assert status == "NO" and b"TRYCREATE" in data[0]
        imap.select("Appended", readonly=True)
        status, data = imap.fetch("1", "(FLAGS INTERNALDATE BODY.PEEK[])")
        assert data[0][1] == raw
        assert b"\\Seen" in data[0][0] and b"$Work" in data[0][0]
        assert b"14-Nov-2023" in data[0][0]
        assert imap.store("1", "+FLAGS", "(\\Flagged)")[0] == "NO"  # EXAMINE: read-only
    finally:
        imap.logout()


def test_two_sessions_see_each_others_changes_at_once(imap_server_module: ImapServer) -> None:
    server = imap_server_module
    server.deliver_many(ALICE, [message("shared 1"), message("shared 2")], "Together")
    one, two = Raw(server), Raw(server)
    try:
        for raw in (one, two):
            raw.login()
            assert untagged(raw.ok("s1", "SELECT Together"), b"EXISTS")[0] == b"* 2 EXISTS\r\n"
        one.ok("f1", "STORE 1 +FLAGS (\\Flagged)")
        lines = two.ok("n1", "NOOP")
        assert any(re.match(rb"\* 1 FETCH \(.*\\Flagged", line) for line in lines), lines
        third = message("shared 3")
        one.ok("a1", b"APPEND Together {%d+}\r\n%s" % (len(third), third))
        lines = two.ok("n2", "NOOP")
        assert b"* 3 EXISTS\r\n" in lines, lines
        one.ok("d1", "STORE 2 +FLAGS.SILENT (\\Deleted)")
        one.ok("e1", "EXPUNGE")
        lines = two.ok("n3", "NOOP")
        assert b"* 2 EXPUNGE\r\n" in lines, lines
        lines = two.ok("f2", "FETCH 1:* (UID)")
        assert len(untagged(lines, b"FETCH")) == 2
    finally:
        one.close()
        two.close()


def test_delivery_shows_up_in_an_idle_session(imap_server_module: ImapServer) -> None:
    server = imap_server_module
    server.deliver(BOB, message("before idle", to=BOB))
    raw = Raw(server)
    try:
        raw.login(BOB, BOB_PW)
        exists = untagged(raw.ok("s1", "SELECT INBOX"), b"EXISTS")[0]
        count = int(exists.split()[1])
        raw.send(b"i1 IDLE\r\n")
        assert raw.line().startswith(b"+ ")
        started = time.monotonic()
        server.deliver(BOB, message("during idle", to=BOB))
        line = raw.line()
        assert line == b"* %d EXISTS\r\n" % (count + 1), line
        assert time.monotonic() - started < 10
        raw.send(b"DONE\r\n")
        assert raw.until_tagged("i1")[-1].startswith(b"i1 OK")
        lines = raw.ok("f1", f"FETCH {count + 1} (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: during idle" in lines[0]
    finally:
        raw.close()


def test_dropped_connection_inside_an_append_literal_stores_nothing(
        imap_server_module: ImapServer) -> None:
    server = imap_server_module
    raw = Raw(server)
    raw.login()
    raw.ok("c1", "CREATE Dropped")
    raw.send(b"a1 APPEND Dropped {5000}\r\n")
    assert raw.line().startswith(b"+ ")
    raw.send(message("half")[:200])
    raw.close()
    time.sleep(0.5)
    check = Raw(server)
    try:
        check.login()
        lines = check.ok("s1", "STATUS Dropped (MESSAGES)")
        assert b"(MESSAGES 0)" in lines[0], lines
    finally:
        check.close()


def test_modified_utf7_names_round_trip(imap_server_module: ImapServer) -> None:
    imap = client(imap_server_module)
    try:
        assert imap.create('"Entw&APw-rfe/Gr&APwA3w-e"')[0] == "OK"
        status, listing = imap.list('""', '"Entw&APw-rfe*"')
        assert status == "OK"
        assert any(line.endswith(b' "/" Entw&APw-rfe/Gr&APwA3w-e') for line in listing), listing
        imap._simple_command("ENABLE", "UTF8=ACCEPT")
        status, listing = imap.list('""', '"Entw*"')
        assert any("Grüße".encode() in line for line in listing), listing
    finally:
        imap.logout()


def test_condstore_and_qresync_resynchronise(imap_server_module: ImapServer) -> None:
    server = imap_server_module
    server.deliver_many(ALICE, [message(f"sync {i}") for i in range(4)], "Sync")
    raw = Raw(server)
    try:
        raw.login()
        assert b"* ENABLED QRESYNC" in raw.ok("e1", "ENABLE QRESYNC")[0]
        lines = raw.ok("s1", "SELECT Sync")
        validity = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(lines)).group(1))
        modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(lines)).group(1))
        uids = [int(x) for x in re.findall(rb"UID (\d+)", b"".join(raw.ok("f1", "FETCH 1:* UID")))]
        raw.ok("st", f"UID STORE {uids[0]} +FLAGS (\\Flagged)")
        raw.ok("d1", f"UID STORE {uids[1]} +FLAGS.SILENT (\\Deleted)")
        lines = raw.ok("x1", f"UID EXPUNGE {uids[1]}")
        assert f"* VANISHED {uids[1]}\r\n".encode() in lines, lines
        raw.ok("u1", "UNSELECT")
        lines = raw.ok("s2", f"SELECT Sync (QRESYNC ({validity} {modseq} 1:*))")
        text = b"".join(lines)
        assert f"* VANISHED (EARLIER) {uids[1]}".encode() in text, lines
        assert re.search(rb"\* 1 FETCH \(UID %d .*\\Flagged.*MODSEQ" % uids[0], text), lines
        lines = raw.ok("f2", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
        text = b"".join(lines)
        assert f"VANISHED (EARLIER) {uids[1]}".encode() in text and b"MODSEQ" in text, lines
        lines = raw.command("c1", f"UID STORE {uids[2]} (UNCHANGEDSINCE 1) +FLAGS (\\Seen)")
        assert f"[MODIFIED {uids[2]}]".encode() in lines[-1], lines
        assert raw.command("b1", "FETCH 1 FLAGS (VANISHED)")[-1].startswith(b"b1 BAD")
    finally:
        raw.close()


def test_imap4rev2_search_list_extended_and_status(imap_server_module: ImapServer) -> None:
    server = imap_server_module
    server.deliver_many(ALICE, [message("find me", "needle here\r\n"), message("other")],
                        "Rev2")
    raw = Raw(server)
    try:
        raw.login()
        lines = raw.ok("l1", 'LIST (SPECIAL-USE) "" "*" RETURN (STATUS (MESSAGES SIZE))')
        assert any(b"\\Sent" in line for line in lines), lines
        lines = raw.ok("l2", 'LIST "" (INBOX Rev2) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))')
        assert b'* STATUS Rev2 (MESSAGES 2 UNSEEN 2)\r\n' in lines, lines
        raw.ok("sb", "SUBSCRIBE Rev2")
        lines = raw.ok("l3", 'LIST (SUBSCRIBED) "" "Rev*"')
        assert any(b"\\Subscribed" in line and b"Rev2" in line for line in lines), lines
        lines = raw.ok("ns", "NAMESPACE")
        assert lines[0].startswith(b'* NAMESPACE (("" "/"))'), lines
        lines = raw.ok("st", "STATUS Rev2 (MESSAGES SIZE HIGHESTMODSEQ)")
        assert re.match(rb"\* STATUS Rev2 \(MESSAGES 2 SIZE \d+ HIGHESTMODSEQ \d+\)", lines[0])
        assert b"ENABLED IMAP4rev2" in raw.ok("e1", "ENABLE IMAP4rev2")[0]
        lines = raw.ok("s1", "SELECT Rev2")
        assert not untagged(lines, b"RECENT")
        lines = raw.ok("q1", "SEARCH BODY needle")
        assert lines[0] == b'* ESEARCH (TAG "q1") ALL 1\r\n', lines
        lines = raw.ok("q2", "UID SEARCH RETURN (SAVE) SUBJECT other")
        assert not untagged(lines, b"SEARCH")
        lines = raw.ok("q3", "FETCH $ (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: other" in lines[0], lines
        lines = raw.ok("so", "SORT (REVERSE SUBJECT) UTF-8 ALL")
        assert lines[0] == b"* SORT 2 1\r\n", lines
        lines = raw.ok("bi", "FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
        assert b"BINARY[1] ~{" in lines[0] and b"needle here" in lines[0], lines
        lines = raw.ok("id", 'ID ("name" "raw-test")')
        assert lines[0].startswith(b'* ID ("name" "groupware-gateway"')
    finally:
        raw.close()


def test_selected_mailbox_deleted_by_another_session_ends_with_bye(
        imap_server_module: ImapServer) -> None:
    server = imap_server_module
    server.deliver(ALICE, message("doomed"), "Doomed")
    one, two = Raw(server), Raw(server)
    try:
        one.login()
        two.login()
        one.ok("s1", "SELECT Doomed")
        two.ok("d1", "DELETE Doomed")
        one.send(b"n1 NOOP\r\n")
        assert one.line().startswith(b"* BYE"), "expected BYE"
        assert one.closed()
        assert two.command("s2", "SELECT Doomed")[-1].startswith(b"s2 NO [NONEXISTENT]")
    finally:
        one.close()
        two.close()


def test_utf8_append_and_names_after_enable(imap_server_module: ImapServer) -> None:
    raw = Raw(imap_server_module)
    try:
        raw.login()
        body = message("utf8 append", "Grüße\r\n")
        refused = raw.command("a0", b"APPEND INBOX UTF8 (~{%d+}\r\n%s)" % (len(body), body))
        assert refused[-1].startswith(b"a0 BAD"), refused
        raw.ok("e1", "ENABLE UTF8=ACCEPT")
        raw.ok("c1", 'CREATE "Büro"'.encode())
        raw.ok("a1", b'APPEND "B\xc3\xbcro" UTF8 (~{%d+}\r\n%s)' % (len(body), body))
        lines = raw.ok("l1", b'LIST "" "B*"')
        assert any("Büro".encode() in line for line in lines), lines
        lines = raw.ok("s1", 'STATUS "Büro" (MESSAGES)'.encode())
        assert b"MESSAGES 1" in lines[0], lines
    finally:
        raw.close()


def test_idle_sees_flags_and_expunges_of_another_session(imap_server_module: ImapServer) -> None:
    server = imap_server_module
    server.deliver_many(ALICE, [message("watched 1"), message("watched 2")], "Watched")
    idler, actor = Raw(server), Raw(server)
    try:
        idler.login()
        actor.login()
        idler.ok("s1", "SELECT Watched")
        actor.ok("s2", "SELECT Watched")
        idler.send(b"i1 IDLE\r\n")
        assert idler.line().startswith(b"+ ")
        actor.ok("f1", "STORE 2 +FLAGS (\\Answered)")
        line = idler.line()
        assert re.match(rb"\* 2 FETCH \(UID \d+ FLAGS \(.*\\Answered", line), line
        actor.ok("f2", "STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert re.match(rb"\* 1 FETCH \(UID \d+ FLAGS \(.*\\Deleted", idler.line())
        actor.ok("e1", "EXPUNGE")
        assert idler.line() == b"* 1 EXPUNGE\r\n"
        idler.send(b"DONE\r\n")
        assert idler.until_tagged("i1")[-1].startswith(b"i1 OK")
    finally:
        idler.close()
        actor.close()


def test_lmtp_delivery_is_read_flagged_and_moved_and_a_second_session_sees_it(
        imap_server_factory) -> None:
    """The issue's end-to-end case: delivered by the SMTP plugin (LMTP), then IMAP."""
    import smtplib

    server = imap_server_factory('[smtp]\ndelivery_listen = ["127.0.0.1:{port_lmtp}"]\n',
                                 ports=["lmtp"])
    reader, watcher = Raw(server), Raw(server)

    def update() -> bytes:  # the watcher's next untagged update, RECENT (rev1) left out
        line = watcher.line()
        return watcher.line() if re.match(rb"\* \d+ RECENT\r\n", line) else line

    try:
        for raw in (reader, watcher):
            raw.login(BOB, BOB_PW)
            raw.ok("s1", "SELECT INBOX")
        watcher.send(b"i1 IDLE\r\n")
        assert watcher.line().startswith(b"+ ")
        with smtplib.LMTP("127.0.0.1", server.gateway.ports["lmtp"], timeout=TIMEOUT) as lmtp:
            refused = lmtp.sendmail("carol@example.net", [BOB],
                                    message("over lmtp", "Delivered by LMTP.\r\n", to=BOB))
            assert refused == {}
        assert update() == b"* 1 EXISTS\r\n"
        lines = reader.ok("n1", "NOOP")
        assert b"* 1 EXISTS\r\n" in lines, lines
        lines = reader.ok("f1", "FETCH 1 (FLAGS BODY[TEXT])")
        assert b"Delivered by LMTP." in lines[0] and b"\\Seen" in lines[0], lines
        assert re.match(rb"\* 1 FETCH \(UID \d+ FLAGS \(.*\\Seen", update())
        reader.ok("st", "STORE 1 +FLAGS (\\Flagged)")
        assert b"\\Flagged" in update()
        reader.ok("c1", "CREATE Kept")
        lines = reader.ok("m1", "MOVE 1 Kept")
        assert any(b"[COPYUID " in line for line in lines), lines
        assert update() == b"* 1 EXPUNGE\r\n"
        watcher.send(b"DONE\r\n")
        assert watcher.until_tagged("i1")[-1].startswith(b"i1 OK")
        lines = watcher.ok("st2", "STATUS Kept (MESSAGES UNSEEN)")
        assert b"(MESSAGES 1 UNSEEN 0)" in lines[0], lines
    finally:
        reader.close()
        watcher.close()


def test_idle_sessions_in_every_worker_process_see_an_append(imap_server_factory) -> None:
    """With two worker processes, sessions land in both; Redis carries the events."""
    server = imap_server_factory(args=["--workers", "2"])
    idlers = [Raw(server) for _ in range(6)]
    actor = Raw(server)
    try:
        for raw in idlers:
            raw.login(BOB, BOB_PW)
            raw.ok("s1", "SELECT INBOX")
            raw.send(b"i1 IDLE\r\n")
            assert raw.line().startswith(b"+ ")
        actor.login(BOB, BOB_PW)
        body = message("to every worker", to=BOB)
        actor.ok("a1", b"APPEND INBOX {%d+}\r\n%s" % (len(body), body))
        for raw in idlers:
            assert raw.line() == b"* 1 EXISTS\r\n"
    finally:
        for raw in (*idlers, actor):
            raw.close()
