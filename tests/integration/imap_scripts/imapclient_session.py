"""``imapclient``: the session a mail-processing application runs.

Folders (create, status, subscribe), APPEND, SELECT with CONDSTORE, FETCH
(ENVELOPE, BODYSTRUCTURE, FLAGS, MODSEQ), flags, MOVE, COPY, UID EXPUNGE,
FETCH CHANGEDSINCE, QRESYNC re-select with VANISHED, and IDLE: a second
connection appends, flags and expunges, and an outside delivery arrives,
while the first waits in IDLE and must hear of each.
"""

from __future__ import annotations

import imaplib
import time
from datetime import UTC, datetime

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from tests.integration.imap_scripts import (
    Target,
    Transcript,
    crlf,
    debug_level,
    flags_of,
    plain,
    session_messages,
)

FOLDER = "Processed"
IDLE_WAIT = 10.0


def connect(target: Target) -> IMAPClient:
    imaplib.Debug = debug_level()
    client = IMAPClient(target.host, port=target.connect_port, ssl=target.use_tls,
                        ssl_context=target.ssl_context(), timeout=30, use_uid=True)
    if target.use_starttls:
        client.starttls(target.ssl_context())
    return client


def login(target: Target, *, other: bool = False) -> IMAPClient:
    client = connect(target)
    if other:
        client.login(target.other_user, target.other_password)
    else:
        client.login(target.user, target.password)
    return client


def run(target: Target, out: Transcript | None = None) -> Transcript:
    """Run the session against ``target``; steps are appended to ``out`` as they happen."""
    out = [] if out is None else out
    client = login(target)
    try:
        session(client, target, out)
        idle(client, target, out)
        condstore(client, target, out)
    finally:
        try:
            client.logout()
        except (IMAPClientError, OSError):
            pass
    return out


def session(client: IMAPClient, target: Target, out: Transcript) -> None:
    caps = {c.decode().upper() for c in client.capabilities()}
    out.append(("has MOVE CONDSTORE QRESYNC IDLE", sorted(
        {"MOVE", "CONDSTORE", "QRESYNC", "IDLE"} - caps) or True))
    out.append(("namespace personal", plain(client.namespace().personal)))
    client.create_folder(FOLDER)
    client.subscribe_folder(FOLDER)
    out.append(("folder_exists", [client.folder_exists(FOLDER),
                                  client.folder_exists("Nope")]))
    folders = {name: [f.decode() for f in flags] for flags, _d, name in client.list_folders()}
    out.append(("list INBOX and new folder", sorted(n for n in folders if n in ("INBOX", FOLDER))))
    out.append(("list_sub_folders has new folder", FOLDER in
                [name for _f, _d, name in client.list_sub_folders()]))
    sent = client.find_special_folder(b"\\Sent")
    out.append(("find_special_folder Sent found", sent is not None))

    messages = session_messages()
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    results = []
    for index, raw in enumerate(messages[:4]):
        results.append(client.append("INBOX", raw, flags=[b"\\Flagged"] if index == 0 else [],
                                     msg_time=when))
    out.append(("append answers APPENDUID", all(b"APPENDUID" in r for r in results)))

    status = client.folder_status("INBOX", ["MESSAGES", "UNSEEN", "RECENT"])
    out.append(("folder_status", {k.decode(): v for k, v in sorted(status.items())
                                  if k != b"RECENT"}))
    selected = client.select_folder("INBOX")
    out.append(("select EXISTS", selected[b"EXISTS"]))
    out.append(("select has UIDVALIDITY UIDNEXT PERMANENTFLAGS",
                all(k in selected for k in (b"UIDVALIDITY", b"UIDNEXT", b"PERMANENTFLAGS"))))
    out.append(("select READ-WRITE", selected.get(b"READ-WRITE")))

    uids = client.search(["ALL"])
    out.append(("search ALL count", len(uids)))
    out.append(("search FLAGGED", [uids.index(u) for u in client.search(["FLAGGED"])]))
    out.append(("search SUBJECT", [uids.index(u) for u in client.search(["SUBJECT", "DKIM"])]))
    out.append(("search criteria list", [uids.index(u) for u in
                                         client.search(["NOT", "FLAGGED", "SINCE",
                                                        datetime(2020, 1, 1).date()])]))
    out.append(("search unicode charset", [uids.index(u) for u in
                                           client.search(["TEXT", "Jeff"], charset="UTF-8")]))
    data = client.fetch(uids, ["ENVELOPE", "BODYSTRUCTURE", "FLAGS", "RFC822.SIZE",
                               "INTERNALDATE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    for index, uid in enumerate(uids):
        item = data[uid]
        out.append((f"fetch {index} envelope subject", plain(item[b"ENVELOPE"].subject)))
        out.append((f"fetch {index} envelope from", plain(item[b"ENVELOPE"].from_)))
        out.append((f"fetch {index} bodystructure", plain(item[b"BODYSTRUCTURE"])))
        out.append((f"fetch {index} flags", flags_of(item[b"FLAGS"])))
        out.append((f"fetch {index} size", item[b"RFC822.SIZE"]))
        out.append((f"fetch {index} internaldate",
                    item[b"INTERNALDATE"].astimezone(UTC).isoformat()))
        out.append((f"fetch {index} message-id header",
                    plain(item[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"])))
    out.append(("add_flags", {uids.index(u): flags_of(f) for u, f in
                              client.add_flags(uids[1:3], [b"\\Seen", b"\\Answered"]).items()}))
    out.append(("remove_flags", {uids.index(u): flags_of(f) for u, f in
                                 client.remove_flags(uids[2:3], [b"\\Answered"]).items()}))
    out.append(("set_flags", {uids.index(u): flags_of(f) for u, f in
                              client.set_flags(uids[3:4], [b"\\Draft"]).items()}))
    out.append(("get_flags", {uids.index(u): flags_of(f) for u, f in
                              client.get_flags(uids).items()}))

    client.move(uids[3:4], FOLDER)
    out.append(("after move", len(client.search(["ALL"]))))
    client.copy(uids[0:1], FOLDER)
    client.delete_messages(uids[1:2])
    client.uid_expunge(uids[1:2])
    remaining = client.search(["ALL"])
    out.append(("after uid expunge", [uids.index(u) for u in remaining]))
    status = client.folder_status(FOLDER, ["MESSAGES"])
    out.append(("target folder MESSAGES", status[b"MESSAGES"]))
    client.select_folder(FOLDER, readonly=True)
    moved = client.fetch(client.search(["ALL"]), ["FLAGS", "ENVELOPE"])
    out.append(("target folder content", sorted(
        (plain(v[b"ENVELOPE"].subject), flags_of(v[b"FLAGS"])) for v in moved.values())))
    client.unselect_folder() if client.has_capability("UNSELECT") else client.close_folder()


def idle(client: IMAPClient, target: Target, out: Transcript) -> None:
    """Wait in IDLE on INBOX while a second connection and a delivery change it."""
    client.select_folder("INBOX")
    before = client.search(["ALL"])
    other = login(target)
    try:
        client.idle()
        other.append("INBOX", crlf(b"From: other@example.org\r\nSubject: appended during idle"
                                   b"\r\n\r\nhello\r\n"))
        out.append(("idle hears APPEND", _wait_for(client, b"EXISTS", len(before) + 1)))
        target.deliver(target.user, crlf(b"From: mta@example.net\nTo: " +
                                         target.user.encode() +
                                         b"\nSubject: delivered during idle\n\nhi\n"), "INBOX")
        out.append(("idle hears delivery", _wait_for(client, b"EXISTS", len(before) + 2)))
        other.select_folder("INBOX")
        other_uids = other.search(["ALL"])
        other.add_flags(other_uids[:1], [b"\\Flagged", b"\\Seen"])
        out.append(("idle hears flag change", _wait_for(client, b"FETCH", None)))
        other.delete_messages(other_uids[-1:])
        other.expunge()
        out.append(("idle hears expunge", _wait_for(client, b"EXPUNGE", len(before) + 2)))
        client.idle_done()
        out.append(("after idle count", len(client.search(["ALL"])) - len(before)))
    finally:
        try:
            other.logout()
        except (IMAPClientError, OSError):
            pass


def _wait_for(client: IMAPClient, kind: bytes, number: int | None) -> bool | list:
    deadline = time.monotonic() + IDLE_WAIT
    seen = []
    while time.monotonic() < deadline:
        for response in client.idle_check(timeout=1):
            seen.append(response)
            if len(response) >= 2 and response[1] == kind and (
                    number is None or response[0] == number):
                return True
    return plain(seen)


def condstore(client: IMAPClient, target: Target, out: Transcript) -> None:
    """CONDSTORE (MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE) and QRESYNC (VANISHED)."""
    if not client.has_capability("CONDSTORE"):
        out.append(("condstore", "not offered"))
        return
    client.close_folder()
    if client.has_capability("ENABLE"):
        client.enable("CONDSTORE")
    selected = client.select_folder("INBOX")
    highest = selected.get(b"HIGHESTMODSEQ")
    out.append(("select HIGHESTMODSEQ given", isinstance(highest, int) and highest > 0))
    uids = client.search(["ALL"])
    mods = client.fetch(uids, ["MODSEQ", "FLAGS"])
    out.append(("fetch MODSEQ all at most HIGHESTMODSEQ",
                all(0 < v[b"MODSEQ"][0] <= highest for v in mods.values())))
    client.add_flags(uids[:1], [b"$Forwarded"])
    changed = client.fetch(uids, ["FLAGS"], modifiers=[f"CHANGEDSINCE {highest}"])
    out.append(("CHANGEDSINCE returns only the changed one",
                [uids.index(u) for u in sorted(changed)]))
    out.append(("CHANGEDSINCE includes MODSEQ",
                all(b"MODSEQ" in v for v in changed.values())))
    newest = max(v[b"MODSEQ"][0] for v in changed.values())
    out.append(("search MODSEQ", [uids.index(u) for u in
                                  client.search(["MODSEQ", str(highest + 1)])]))
    imap = client._imap
    imap.untagged_responses.pop("MODIFIED", None)
    typ, _data = imap.uid("STORE", str(uids[0]), f"(UNCHANGEDSINCE {highest})", "+FLAGS",
                          "(\\Answered)")
    modified = imap.untagged_responses.pop("MODIFIED", [])
    out.append(("UNCHANGEDSINCE stale: OK [MODIFIED uid]",
                [typ, [m.decode() == str(uids[0]) for m in modified]]))
    out.append(("UNCHANGEDSINCE stale left flags alone",
                "\\Answered" not in flags_of(client.get_flags(uids[:1])[uids[0]])))

    if not client.has_capability("QRESYNC"):
        out.append(("qresync", "not offered"))
        return
    uidvalidity = selected[b"UIDVALIDITY"]
    client.delete_messages(uids[-1:])
    client.expunge()
    client.close_folder()
    client.enable("QRESYNC")
    typ, _data = imap._simple_command(
        "SELECT", "INBOX", f"(QRESYNC ({uidvalidity} {newest} {uids[0]}:{uids[-1]}))")
    vanished = imap.untagged_responses.pop("VANISHED", [])
    out.append(("QRESYNC select OK", typ))
    out.append(("QRESYNC VANISHED (EARLIER) names the expunged UID",
                any(str(uids[-1]).encode() in v for v in vanished if isinstance(v, bytes))
                or plain(vanished)))
