"""``imap-tools``: the high-level ``MailBox`` a ticketing or automation script uses.

Login with an initial folder, folder manager (create, exists, list, status,
subscribe, rename, delete), append with flags and date, fetch with criteria
(``AND``/``OR``, headers only, bulk, limit, reverse, mark_seen off), parsed
messages (subject, from, to, date, text, attachments), flag, copy, move,
delete, and ``mailbox.idle.wait`` hearing a delivery.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

from imap_tools import AND, OR, MailBox, MailBoxUnencrypted, MailMessageFlags

from tests.integration.imap_scripts import Target, Transcript, crlf, session_messages

FOLDER = "Tickets"


def connect(target: Target) -> MailBox | MailBoxUnencrypted:
    if target.use_tls:
        return MailBox(target.host, target.connect_port, timeout=30,
                       ssl_context=target.ssl_context())
    return MailBoxUnencrypted(target.host, target.connect_port, timeout=30)


def run(target: Target, out: Transcript | None = None) -> Transcript:
    """Run the session against ``target``; steps are appended to ``out`` as they happen."""
    out = [] if out is None else out
    with connect(target).login(target.user, target.password, initial_folder="INBOX") as box:
        session(box, target, out)
        idle(box, target, out)
    return out


def session(box: MailBox | MailBoxUnencrypted, target: Target, out: Transcript) -> None:
    out.append(("login response OK", box.login_result[0]))
    box.folder.create(FOLDER)
    out.append(("folder exists", [box.folder.exists(FOLDER), box.folder.exists("Nope")]))
    names = [f.name for f in box.folder.list()]
    out.append(("folder list", sorted(n for n in names if n in ("INBOX", FOLDER))))
    box.folder.subscribe(FOLDER, True)
    subscribed = [f.name for f in box.folder.list(subscribed_only=True)]
    out.append(("subscribed list", FOLDER in subscribed))
    when = datetime(2023, 12, 24, 18, 0, tzinfo=UTC)
    for index, raw in enumerate(session_messages()):
        flags = [MailMessageFlags.SEEN] if index % 3 == 0 else []
        box.append(raw, "INBOX", dt=when, flag_set=flags)
    out.append(("status", box.folder.status("INBOX", ["MESSAGES", "UNSEEN"])))
    box.folder.set("INBOX")

    messages = list(box.fetch(mark_seen=False))
    out.append(("fetch count", len(messages)))
    for index, msg in enumerate(messages):
        out.append((f"message {index}", {
            "subject": msg.subject, "from": msg.from_, "to": list(msg.to),
            "date": msg.date.astimezone(UTC).isoformat() if msg.date.tzinfo else str(msg.date),
            "flags": sorted(f for f in msg.flags if f != "\\Recent"),
            "size": msg.size_rfc822, "text start": msg.text[:40],
            "attachments": [(a.filename, a.content_type, a.size) for a in msg.attachments],
        }))
    out.append(("unseen still unseen after mark_seen=False",
                len(list(box.fetch(AND(seen=False), mark_seen=False)))))
    out.append(("criteria subject", [m.subject for m in
                                     box.fetch(AND(subject="Test"), mark_seen=False)]))
    out.append(("criteria OR from", sorted(m.from_ for m in box.fetch(
        OR(from_=["gmail.com", "37signals.com"]), mark_seen=False))))
    out.append(("criteria date_gte", len(list(box.fetch(AND(date_gte=date(2015, 1, 1)),
                                                       mark_seen=False)))))
    out.append(("headers_only bulk limit reverse", [
        (m.subject, m.text) for m in box.fetch(headers_only=True, bulk=True, limit=2,
                                               reverse=True, mark_seen=False)]))
    out.append(("criteria unicode text", len(list(box.fetch(AND(text="Jeff"), charset="UTF-8",
                                                            mark_seen=False)))))

    uids = box.uids()
    box.flag(uids[:2], (MailMessageFlags.FLAGGED, MailMessageFlags.ANSWERED), True)
    box.flag(uids[1:2], MailMessageFlags.ANSWERED, False)
    out.append(("flags after flag()", [sorted(f for f in m.flags if f != "\\Recent")
                                       for m in box.fetch(headers_only=True, mark_seen=False)]))
    box.copy(uids[:1], FOLDER)
    box.move(uids[2:4], FOLDER)
    box.delete(uids[4:5])
    out.append(("inbox after copy, move, delete", len(box.uids())))
    box.folder.set(FOLDER)
    out.append(("folder content", sorted(m.subject for m in box.fetch(mark_seen=False))))
    box.folder.set("INBOX")
    box.folder.create(FOLDER + "/Sub")
    box.folder.rename(FOLDER + "/Sub", FOLDER + "/Done")
    out.append(("rename sub-folder", sorted(f.name for f in box.folder.list(FOLDER + "/*"))))
    box.folder.delete(FOLDER + "/Done")
    out.append(("delete sub-folder", [f.name for f in box.folder.list(FOLDER + "/*")]))


def idle(box: MailBox | MailBoxUnencrypted, target: Target, out: Transcript) -> None:
    raw = crlf(b"From: helpdesk@example.net\nSubject: new ticket\n\nplease help\n")
    timer = threading.Timer(0.5, target.deliver, (target.user, raw, "INBOX"))
    timer.start()
    try:
        responses = box.idle.wait(timeout=10)
    finally:
        timer.join()
    out.append(("idle.wait hears the delivery", any(r.endswith(b"EXISTS") for r in responses)
                or [r.decode(errors="replace") for r in responses]))
    out.append(("new ticket fetched", [m.subject for m in box.fetch(AND(subject="new ticket"),
                                                                   mark_seen=False)]))
