"""Read-only reports on a store: folder statistics and a consistency check.

Both are plain transaction functions, run on a read snapshot
(``await mbox.read(store_stats)``, ``await mbox.read(check_store)``); the
``gateway mbox stats`` and ``gateway mbox check`` commands
(:mod:`gateway.store.cli`) print what they return.
"""

from __future__ import annotations

from typing import Any

from gateway.store import folders, messages, schema
from gateway.store.txn import Txn


def store_stats(txn: Txn) -> dict[str, Any]:
    """Each folder (tree order, with depth) with its counts and size, and store totals."""
    conn = txn.conn
    rows = conn.execute("SELECT folder_id, parent_id, name FROM folders").fetchall()
    counts = {fid: (int(n), int(unread), int(fai), int(size)) for fid, n, unread, fai, size in
              conn.execute("SELECT folder_id, total(associated = 0), "
                           "total(associated = 0 AND is_read = 0), total(associated = 1), "
                           "total(size) FROM messages WHERE folder_id IS NOT NULL "
                           "GROUP BY folder_id")}
    children: dict[int | None, list[tuple[str, int]]] = {}
    for fid, parent, name in rows:
        children.setdefault(parent, []).append((name.casefold(), fid))
    names = {fid: name for fid, _, name in rows}
    listed: list[dict[str, Any]] = []
    seen: set[int] = set()

    def walk(parent: int | None, depth: int) -> None:
        for _, fid in sorted(children.get(parent, [])):
            if fid in seen or depth > folders.MAX_DEPTH:
                continue
            seen.add(fid)
            n, unread, fai, size = counts.get(fid, (0, 0, 0, 0))
            listed.append({"id": fid, "name": names[fid], "depth": depth, "messages": n,
                           "unread": unread, "associated": fai, "size": size})
            walk(fid, depth + 1)

    walk(None, 0)
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    messages = conn.execute("SELECT count(*) FROM messages WHERE folder_id IS NOT NULL "
                            "AND associated = 0").fetchone()[0]
    return {"key": txn.info.key, "kind": txn.info.kind, "language": txn.info.language,
            "path": str(txn.info.path), "schema": conn.execute("PRAGMA user_version").fetchone()[0],
            "folders": listed, "unlisted_folders": len(rows) - len(listed),
            "messages": int(messages), "total_size": int(meta.get("total_size", 0)),
            "last_change_number": int(meta.get("last_cn", 0))}


PROP_TABLES = ("folder_props", "message_props", "recipient_props", "attachment_props")


def _check_blobs(txn: Txn, problems: list[str], notes: list[str]) -> None:
    conn = txn.conn
    wanted: dict[str, int] = {}
    for table in PROP_TABLES:
        for digest, n in conn.execute(f"SELECT blob, count(*) FROM {table} "
                                      "WHERE blob IS NOT NULL GROUP BY blob"):
            wanted[digest] = wanted.get(digest, 0) + n
    for digest, n in conn.execute("SELECT mime_blob, count(*) FROM messages "
                                  "WHERE mime_blob IS NOT NULL GROUP BY mime_blob"):
        wanted[digest] = wanted.get(digest, 0) + n
    rows = {digest: (refcount, in_file) for digest, refcount, in_file in
            conn.execute("SELECT hash, refcount, data IS NULL FROM blobs")}
    on_disk = set(txn.blobs.files())
    for digest, n in sorted(wanted.items()):
        if digest not in rows:
            problems.append(f"blob {digest} is referenced {n} time(s) but has no row")
        elif rows[digest][0] != n:
            problems.append(f"blob {digest} has refcount {rows[digest][0]} but {n} reference(s)")
    for digest, (refcount, in_file) in sorted(rows.items()):
        if digest not in wanted:
            problems.append(f"blob {digest} (refcount {refcount}) is referenced by nothing")
        if in_file and digest not in on_disk:
            problems.append(f"blob file {txn.blobs.path(digest)} is missing")
    for digest in sorted(on_disk - {d for d, (_, in_file) in rows.items() if in_file}):
        notes.append(f"orphan blob file {txn.blobs.path(digest)} (no row; safe to delete)")


def _check_tree(txn: Txn, problems: list[str]) -> None:
    parents = dict(txn.conn.execute("SELECT folder_id, parent_id FROM folders").fetchall())
    roots = [fid for fid, parent in parents.items() if parent is None]
    if len(roots) != 1:
        problems.append(f"the store has {len(roots)} root folders (ids {roots}), not one")
    for fid in sorted(parents):
        chain, current = {fid}, parents[fid]
        while current is not None:
            if current not in parents:
                problems.append(f"folder {fid}: ancestor {current} does not exist")
                break
            if current in chain or len(chain) > folders.MAX_DEPTH + 1:
                problems.append(f"folder {fid} is in a cycle of the folder tree")
                break
            chain.add(current)
            current = parents[current]
    for mid, fid in txn.conn.execute(
            "SELECT message_id, folder_id FROM messages WHERE folder_id IS NOT NULL AND "
            "folder_id NOT IN (SELECT folder_id FROM folders)"):
        problems.append(f"message {mid} is in folder {fid}, which does not exist")


def _check_messages(txn: Txn, problems: list[str]) -> None:
    conn = txn.conn
    for mid, size in conn.execute("SELECT message_id, size FROM messages").fetchall():
        expected = messages.computed_size(txn, mid)
        if expected != size:
            problems.append(f"message {mid}: size {size} recorded, {expected} recomputed")
    total = conn.execute("SELECT total(size) FROM messages WHERE folder_id IS NOT NULL"
                         ).fetchone()[0]
    recorded = conn.execute("SELECT value FROM meta WHERE key = 'total_size'").fetchone()[0]
    if int(total) != int(recorded):
        problems.append(f"the store's total size is {recorded}, its messages add up to "
                        f"{int(total)}")
    for fid, uidnext, top in conn.execute(
            "SELECT f.folder_id, f.uidnext, max(m.uid) FROM folders f JOIN messages m "
            "ON m.folder_id = f.folder_id GROUP BY f.folder_id HAVING max(m.uid) >= f.uidnext"):
        problems.append(f"folder {fid}: uidnext {uidnext} is not above its highest UID {top}")
    for fid, kept, counted in conn.execute(
            "SELECT f.folder_id, printf('%d/%d/%d', f.content_count, f.unread_count, "
            "f.associated_count), printf('%d/%d/%d', total(m.associated = 0), "
            "total(m.associated = 0 AND m.is_read = 0), total(m.associated <> 0)) "
            "FROM folders f LEFT JOIN messages m ON m.folder_id = f.folder_id "
            "GROUP BY f.folder_id"):
        if kept != counted:
            problems.append(f"folder {fid}: counts (content/unread/associated) {kept} kept, "
                            f"{counted} counted")


def check_store(txn: Txn) -> tuple[list[str], list[str]]:
    """``(problems, notes)`` of a consistency check on a read snapshot."""
    problems: list[str] = []
    notes: list[str] = []
    result = [row[0] for row in txn.conn.execute("PRAGMA integrity_check")]
    if result != ["ok"]:
        problems.extend(f"sqlite: {line}" for line in result)
        return problems, notes
    version = txn.conn.execute("PRAGMA user_version").fetchone()[0]
    if version != schema.SCHEMA_VERSION:
        problems.append(f"schema version {version}, expected {schema.SCHEMA_VERSION}")
    _check_blobs(txn, problems, notes)
    _check_tree(txn, problems)
    _check_messages(txn, problems)
    return problems, notes
