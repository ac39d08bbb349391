"""``mbsync`` with a few hundred messages each way: pipelined FETCHes, APPENDs and STOREs.

300 messages on the server and 100 written into the local Maildir are synced
both ways; then 50 are flagged locally, 40 deleted on the server and 30
deleted locally, and a second sync must leave both sides holding the same
messages with the same flags. mbsync pipelines its commands (and uses
LITERAL+ where offered), which the small session does not exercise.
"""

from __future__ import annotations

import os
import time

from tests.integration.imap_scripts import Target, Transcript, corpus_cycle
from tests.integration.imap_scripts.mbsync_session import (
    imap_login,
    local_state,
    mbsync,
    set_local_flags,
    write_config,
)

ON_SERVER = 300
LOCAL = 100


def run(target: Target, out: Transcript | None = None) -> Transcript:
    """Run the session against ``target``; steps are appended to ``out`` as they happen."""
    out = [] if out is None else out
    if target.workdir is None:
        raise ValueError("the mbsync script needs target.workdir")
    work = target.workdir / f"mbsync-bulk-{target.name}"
    work.mkdir(parents=True, exist_ok=True)
    server_messages = corpus_cycle(ON_SERVER, tag="server")
    local_messages = corpus_cycle(LOCAL, tag="local")

    conn = imap_login(target)
    try:
        for index, raw in enumerate(server_messages):
            conn.append("INBOX", "(\\Seen)" if index % 3 == 0 else "()", None, raw)
    finally:
        conn.logout()
    config = write_config(target, work)
    inbox = work / "local" / "INBOX"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    for index, raw in enumerate(local_messages):
        (inbox / "new" / f"{stamp}.{os.getpid()}_{index}.laptop").write_bytes(raw)

    mbsync(config)
    server, local = server_ids(target), local_state(work, "INBOX")
    out.append(("first sync: counts", [len(server), len(local)]))
    out.append(("first sync: both sides agree", server == local or _diff(server, local)))

    for index in range(50):
        set_local_flags(work, "INBOX", f"<server-{index * 2}@corpus.test>", "F")
    conn = imap_login(target)
    try:
        conn.select("INBOX")
        for index in range(40):
            _typ, data = conn.search(None, "HEADER", "Message-ID",
                                     f"<server-{index * 7 + 1}@corpus.test>")
            for number in data[0].split():
                conn.store(number.decode(), "+FLAGS.SILENT", "(\\Deleted)")
        conn.expunge()
    finally:
        conn.logout()
    removed = 0
    for path in sorted((inbox / "cur").glob("*")) + sorted((inbox / "new").glob("*")):
        if b"<local-" in path.read_bytes()[:200] and removed < 30:
            path.unlink()
            removed += 1

    mbsync(config)
    server, local = server_ids(target), local_state(work, "INBOX")
    out.append(("second sync: counts", [len(server), len(local)]))
    out.append(("second sync: flagged on the server",
                sum("\\Flagged" in flags for flags in server.values())))
    out.append(("second sync: both sides agree", server == local or _diff(server, local)))
    return out


def server_ids(target: Target) -> dict[str, list[str]]:
    """Message-ID -> flags in the server's INBOX, fetched in one command."""
    from tests.integration.imap_scripts.mbsync_session import server_state

    return server_state(target, "INBOX")


def _diff(server: dict[str, list[str]], local: dict[str, list[str]]) -> dict[str, object]:
    only_server = sorted(set(server) - set(local))
    only_local = sorted(set(local) - set(server))
    flags = sorted(k for k in set(server) & set(local) if server[k] != local[k])
    return {"only on the server": only_server[:5], "only local": only_local[:5],
            "flags differ": [(k, server[k], local[k]) for k in flags[:5]]}

