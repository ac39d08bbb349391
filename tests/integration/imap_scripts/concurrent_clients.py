"""Eight ``imaplib`` clients at once on one mailbox: APPENDs, STOREs and a watcher in IDLE.

Each writer appends 25 messages to INBOX and flags every other one it
appended, while an ``imapclient`` watcher waits in IDLE. Afterwards every
APPENDUID is distinct, the mailbox holds exactly the 200 messages with the
right flags, and the watcher has heard an EXISTS for the final count.
"""

from __future__ import annotations

import re
import threading
import time

from tests.integration.imap_scripts import Target, Transcript, corpus_cycle
from tests.integration.imap_scripts.imapclient_session import login as imapclient_login
from tests.integration.imap_scripts.imaplib_session import check, connect

WRITERS = 8
EACH = 25


def run(target: Target, out: Transcript | None = None) -> Transcript:
    """Run the session against ``target``; steps are appended to ``out`` as they happen."""
    out = [] if out is None else out
    watcher = imapclient_login(target)
    watcher.select_folder("INBOX")
    watcher.idle()
    results: dict[int, list[int]] = {}
    errors: list[str] = []

    def writer(number: int) -> None:
        try:
            conn = connect(target)
            check(conn.login(target.user, target.password))
            uids = []
            for raw in corpus_cycle(EACH, tag=f"writer{number}"):
                data = check(conn.append("INBOX", "()", None, raw))
                found = re.search(rb"\[APPENDUID \d+ (\d+)\]", data[0] or b"")
                uids.append(int(found.group(1)) if found else 0)
            check(conn.select("INBOX"))
            for uid in uids[::2]:
                check(conn.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Flagged)"))
            conn.logout()
            results[number] = uids
        except Exception as exc:
            errors.append(f"writer {number}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    out.append(("writers finished without error", errors or True))
    total = WRITERS * EACH
    heard = 0
    deadline = time.monotonic() + 10
    while heard < total and time.monotonic() < deadline:
        for response in watcher.idle_check(timeout=1):
            if len(response) >= 2 and response[1] == b"EXISTS":
                heard = max(heard, response[0])
    watcher.idle_done()
    out.append(("watcher heard EXISTS for the final count", heard == total or heard))
    all_uids = [uid for uids in results.values() for uid in uids]
    out.append(("APPENDUIDs distinct", len(set(all_uids)) == total or len(set(all_uids))))
    uids = watcher.search(["ALL"])
    out.append(("messages in INBOX", len(uids)))
    out.append(("APPENDUIDs are the mailbox's UIDs", sorted(all_uids) == sorted(uids)))
    flagged = watcher.search(["FLAGGED"])
    out.append(("flagged", len(flagged)))
    expected = sorted(uid for uids in results.values() for uid in uids[::2])
    out.append(("flagged are the ones each writer flagged", sorted(flagged) == expected))
    watcher.logout()
    return out
