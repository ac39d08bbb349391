"""Python's ``imaplib``: the session a simple script or a backup tool runs.

LOGIN, CAPABILITY, CREATE, LIST, APPEND (flags and dates), SELECT, FETCH of
FLAGS/RFC822.SIZE/INTERNALDATE/ENVELOPE/BODYSTRUCTURE, BODY.PEEK[] sections
and partials, BODY[] setting ``\\Seen``, STORE +/-/= FLAGS (and .SILENT),
SEARCH and UID SEARCH, COPY and UID COPY, EXPUNGE, STATUS, EXAMINE, CLOSE,
LOGOUT.
"""

from __future__ import annotations

import imaplib
import re
from datetime import UTC, datetime

from imapclient.response_parser import parse_fetch_response

from tests.integration.imap_scripts import (
    Target,
    Transcript,
    debug_level,
    flags_of,
    plain,
    session_messages,
)

FOLDER = "Client Work"


def connect(target: Target) -> imaplib.IMAP4:
    imaplib.Debug = debug_level()
    if target.use_tls:
        return imaplib.IMAP4_SSL(target.host, target.connect_port,
                                 ssl_context=target.ssl_context(), timeout=30)
    conn = imaplib.IMAP4(target.host, target.connect_port, timeout=30)
    if target.use_starttls:
        check(conn.starttls(target.ssl_context()))
    return conn


def check(result: tuple[str, list]) -> list:
    kind, data = result
    if kind != "OK":
        raise AssertionError(f"expected OK, got {kind} {data!r}")
    return data


def fetch(conn: imaplib.IMAP4, sequence: str, items: str, *, uid: bool = False) -> dict:
    if uid:
        data = check(conn.uid("FETCH", sequence, items))
    else:
        data = check(conn.fetch(sequence, items))
    data = [d for d in data if d is not None]
    return parse_fetch_response(data, normalise_times=False, uid_is_key=uid)


def quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def untagged(conn: imaplib.IMAP4, name: str) -> list:
    """The untagged responses called ``name`` received so far (and forget them)."""
    return [d for d in conn.response(name)[1] if d is not None]


def run(target: Target, out: Transcript | None = None) -> Transcript:
    """Run the session against ``target``; steps are appended to ``out`` as they happen."""
    out = [] if out is None else out
    conn = connect(target)
    try:
        session(conn, target, out)
    finally:
        try:
            conn.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return out


def session(conn: imaplib.IMAP4, target: Target, out: Transcript) -> None:
    caps = set(conn.capabilities)
    out.append(("greeting capability has IMAP4rev1", "IMAP4REV1" in caps))
    check(conn.login(target.user, target.password))
    caps = set(check(conn.capability())[0].decode().upper().split())
    out.append(("capability after login has IMAP4rev1 IDLE UIDPLUS",
                {"IMAP4REV1", "IDLE", "UIDPLUS"} <= caps or sorted(caps)))

    check(conn.create(quoted(FOLDER)))
    out.append(("create existing", conn.create(quoted(FOLDER))[0]))
    listing = check(conn.list('""', "*"))
    names, special = parse_list(listing)
    out.append(("list has INBOX and the new folder", {"INBOX", FOLDER} <= set(names)))
    out.append(("list special-use", sorted(special & {"\\Sent", "\\Drafts", "\\Trash",
                                                         "\\Junk"})))
    out.append(("list pattern %", sorted(n for n in parse_list(check(conn.list('""', "%")))[0]
                                         if n in ("INBOX", FOLDER))))
    check(conn.subscribe(quoted(FOLDER)))
    out.append(("lsub after subscribe", FOLDER in parse_list(check(conn.lsub('""', "*")))[0]))

    messages = session_messages()
    when = datetime(2024, 3, 1, 12, 30, 5, tzinfo=UTC)
    appended: list[int] = []
    for index, raw in enumerate(messages):
        flags = "(\\Seen)" if index % 2 else "()"
        data = check(conn.append("INBOX", flags, imaplib.Time2Internaldate(when), raw))
        appenduid = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0] or b"")
        if appenduid:
            appended.append(int(appenduid.group(2)))
    out.append(("APPENDUIDs given and increasing", len(appended) == len(messages)
                and appended == sorted(set(appended))))

    status = check(conn.status("INBOX", "(MESSAGES UNSEEN UIDNEXT)"))[0].decode()
    numbers = {k: int(v) for k, v in re.findall(r"(MESSAGES|UNSEEN|UIDNEXT) (\d+)", status)}
    out.append(("status INBOX", {"MESSAGES": numbers.get("MESSAGES"),
                                 "UNSEEN": numbers.get("UNSEEN"),
                                 "UIDNEXT above last APPENDUID":
                                     numbers.get("UIDNEXT", 0) > max(appended, default=0)}))

    exists = check(conn.select("INBOX"))
    out.append(("select EXISTS", int(exists[0])))
    uidvalidity = untagged(conn, "UIDVALIDITY")
    out.append(("select UIDVALIDITY positive", bool(uidvalidity) and int(uidvalidity[0]) > 0))
    uidnext = untagged(conn, "UIDNEXT")
    out.append(("select UIDNEXT above last APPENDUID",
                bool(uidnext) and int(uidnext[0]) > max(appended, default=0)))
    flags = untagged(conn, "FLAGS")
    out.append(("select FLAGS has system flags",
                bool(flags) and all(f.encode() in flags[0] for f in
                                    ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
                                     "\\Draft"))))

    info = fetch(conn, "1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)")
    uids = [info[seq][b"UID"] for seq in sorted(info)]
    out.append(("fetch UIDs are the APPENDUIDs", uids == appended))
    for seq in sorted(info):
        item = info[seq]
        out.append((f"fetch {seq} flags", flags_of(item[b"FLAGS"])))
        out.append((f"fetch {seq} size", item[b"RFC822.SIZE"]))
        out.append((f"fetch {seq} internaldate", item[b"INTERNALDATE"].astimezone(UTC).isoformat()))
        out.append((f"fetch {seq} envelope", plain(item[b"ENVELOPE"])))
    structure = fetch(conn, "1:*", "(BODYSTRUCTURE)")
    for seq in sorted(structure):
        out.append((f"bodystructure {seq}", plain(structure[seq][b"BODYSTRUCTURE"])))
    body = fetch(conn, "1:*", "(BODY)")
    for seq in sorted(body):
        out.append((f"body {seq}", plain(body[seq][b"BODY"])))

    for seq, raw in enumerate(messages, 1):
        whole = fetch(conn, str(seq), "(BODY.PEEK[])")[seq][b"BODY[]"]
        out.append((f"body.peek[] {seq} equals appended", whole == raw))
    partial = fetch(conn, "2", "(BODY.PEEK[]<10.50>)")[2]
    out.append(("partial <10.50>", plain(partial.get(b"BODY[]<10>"))))
    header = fetch(conn, "2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])")[2]
    out.append(("header.fields", plain(sorted(header.items()))))
    part = fetch(conn, "2", "(BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[TEXT]<0.20>)")[2]
    out.append(("sections 1, 1.MIME, TEXT<0.20>", plain(sorted(part.items()))))
    out.append(("peek left \\Seen alone", flags_of(fetch(conn, "1", "(FLAGS)")[1][b"FLAGS"])))
    seen = fetch(conn, "1", "(BODY[HEADER])")[1]
    out.append(("BODY[HEADER] sets \\Seen", flags_of(seen.get(b"FLAGS", ()))
                or flags_of(fetch(conn, "1", "(FLAGS)")[1][b"FLAGS"])))

    out.append(("store +FLAGS", plain(sorted(
        (seq, flags_of(v[b"FLAGS"])) for seq, v in
        parse_fetch_response(check(conn.store("1:2", "+FLAGS", "(\\Flagged $Label1)"))).items()))))
    out.append(("store -FLAGS", plain(sorted(
        (seq, flags_of(v[b"FLAGS"])) for seq, v in
        parse_fetch_response(check(conn.store("2", "-FLAGS", "($Label1)"))).items()))))
    silent = check(conn.store("3", "FLAGS.SILENT", "(\\Answered)"))
    out.append(("store FLAGS.SILENT answers nothing", [d for d in silent if d] == []))
    out.append(("flags after stores", {seq: flags_of(v[b"FLAGS"]) for seq, v in
                                       fetch(conn, "1:*", "(FLAGS)").items()}))

    for criteria in ("FLAGGED", "UNSEEN", "SEEN", "ANSWERED", 'SUBJECT "Re"', 'FROM "example"',
                     "NOT FLAGGED", "OR FLAGGED ANSWERED", "LARGER 3000", "SMALLER 1000",
                     'HEADER Message-ID "@"', 'TEXT "the"', 'BODY "the"', "SINCE 1-Jan-2024",
                     "BEFORE 1-Jan-2024", "2:4", f"UID {uids[0]}:{uids[2]}", "KEYWORD $Label1",
                     "ALL"):
        data = check(conn.search(None, criteria))
        label = "UID first:third" if criteria.startswith("UID ") else criteria
        out.append((f"search {label}", sorted(int(n) for n in data[0].split())))
    data = check(conn.uid("SEARCH", "FLAGGED"))
    out.append(("uid search FLAGGED (as sequence numbers)",
                sorted(uids.index(int(n)) + 1 for n in data[0].split())))
    out.append(("search unknown charset",
                _bad_or_no(conn, lambda: conn.search("X-NO-SUCH-CHARSET", "ALL"))))

    untagged(conn, "COPYUID")
    check(conn.copy("1:2", quoted(FOLDER)))
    out.append(("copy COPYUID", _copyuid(untagged(conn, "COPYUID"))))
    check(conn.uid("COPY", "3", quoted(FOLDER)))
    out.append(("uid copy COPYUID", _copyuid(untagged(conn, "COPYUID"))))
    out.append(("copy to missing folder", conn.copy("1", '"No Such Folder"')[0]))

    check(conn.store("2:3", "+FLAGS.SILENT", "(\\Deleted)"))
    expunged = check(conn.expunge())
    out.append(("expunge removed (original numbers)",
                removed_positions([int(n) for n in expunged if n is not None], 6)))
    out.append(("after expunge EXISTS", len(fetch(conn, "1:*", "(UID)"))))

    out.append(("status folder", _status(check(conn.status(quoted(FOLDER),
                                                           "(MESSAGES UIDNEXT)"))[0])))
    check(conn.select(quoted(FOLDER), readonly=True))
    before = fetch(conn, "1", "(FLAGS)")[1][b"FLAGS"]
    _store_result(conn)   # NO, or OK without effect (Dovecot): the RFC leaves it open
    out.append(("examine: store changes nothing",
                flags_of(fetch(conn, "1", "(FLAGS)")[1][b"FLAGS"]) == flags_of(before)))
    folder_info = fetch(conn, "1:*", "(FLAGS ENVELOPE)")
    out.append(("folder messages", [(flags_of(v[b"FLAGS"]), plain(v[b"ENVELOPE"].subject))
                                    for _seq, v in sorted(folder_info.items())]))
    check(conn.close())
    out.append(("fetch after close", _bad_or_no(conn, lambda: conn.fetch("1", "(FLAGS)"))))
    check(conn.rename(quoted(FOLDER), quoted(FOLDER + " Renamed")))
    check(conn.delete(quoted(FOLDER + " Renamed")))
    out.append(("list after rename+delete", sorted(
        n for n in parse_list(check(conn.list('""', "*")))[0] if n.startswith(FOLDER))))
    out.append(("noop", conn.noop()[0]))


def _bad_or_no(conn: imaplib.IMAP4, call) -> str:
    try:
        return call()[0]
    except imaplib.IMAP4.error:
        return "error"


def _store_result(conn: imaplib.IMAP4) -> str:
    try:
        kind = conn.store("1", "+FLAGS", "(\\Flagged)")[0]
    except imaplib.IMAP4.error:
        return "error"
    return kind


def _copyuid(data: list) -> list[int] | None:
    """(number of source UIDs, number of destination UIDs) of the last COPYUID."""
    if not data:
        return None
    parts = data[-1].split()
    if len(parts) != 3:
        return None
    return [len(_expand(parts[1])), len(_expand(parts[2]))]


def removed_positions(expunges: list[int], count: int) -> list[int]:
    """Which original sequence numbers a series of EXPUNGE responses removed (servers
    may report them in any order)."""
    positions = list(range(1, count + 1))
    removed = [positions.pop(seq - 1) for seq in expunges]
    return sorted(removed)


def _expand(text: bytes) -> list[int]:
    values: list[int] = []
    for part in text.decode().split(","):
        low, _, high = part.partition(":")
        values.extend(range(int(low), int(high or low) + 1))
    return values


def _status(data: bytes) -> dict[str, int]:
    return {k: int(v) for k, v in sorted(re.findall(r"(MESSAGES) (\d+)", data.decode()))}


LIST_LINE = re.compile(rb'\((?P<attrs>[^)]*)\) (?:"(?P<sep>[^"]*)"|NIL) (?P<name>.*)$')


def parse_list(lines: list) -> tuple[list[str], set[str]]:
    """Mailbox names and the union of their attributes, from imaplib's LIST data."""
    names: list[str] = []
    attributes: set[str] = set()
    pending: bytes | None = None
    for item in lines:
        if isinstance(item, tuple):     # name sent as a literal
            pending, literal = item
            match = LIST_LINE.match(pending.rsplit(b" {", 1)[0] + b" x")
            if match:
                attributes |= set(match.group("attrs").decode().split())
            names.append(literal.decode())
            continue
        if item is None or item == b")":
            continue
        match = LIST_LINE.match(item)
        if not match:
            continue
        attributes |= set(match.group("attrs").decode().split())
        name = match.group("name")
        if name.startswith(b'"'):
            name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        names.append(name.decode())
    return names, attributes
