"""The SQLite schema of one mailbox store, its version and its upgrades.

``SCHEMA_VERSION`` is kept in ``PRAGMA user_version``. Opening an older store
runs each step of ``UPGRADES`` above its version in one transaction; a store
newer than this code is refused rather than guessed at.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from gateway.store.errors import CorruptStore

SCHEMA_VERSION = 5

# Property rows: ``value`` holds the SQLite form; a large string or binary is a
# blob instead (``value`` NULL, ``blob`` its hash, ``size`` its length).
_PROPS = """(
    {owner} INTEGER NOT NULL,
    tag INTEGER NOT NULL,
    value,
    blob TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY ({owner}, tag)
) WITHOUT ROWID"""

# Version 2: folder counts (content, unread, FAI) from the index alone, so the
# counts event after each write does not read every message row of a big folder.
_READ_STATE_INDEX = ("CREATE INDEX messages_folder_read ON messages "
                     "(folder_id, associated, is_read)")

# Version 3: what IMAP derives from a message's Internet bytes (part offsets, ENVELOPE,
# BODYSTRUCTURE), cached per MIME blob. Blobs are content-addressed, so a row never goes
# stale; ``version`` is the deriving code's, and a row goes with its blob. And
# ``messages.mime_rendered``: the MIME blob was rendered from MAPI (gateway/store/
# mime_cache.py), a view of the message that does not count in its size. And an index
# on MODSEQ, so an IMAP session's poll after a change reads only the changed rows.
# Version 4: each folder's content, unread and associated counts kept by triggers, so
# the counts event after a write reads one row instead of counting a large folder's
# index (a delivery into a 10,000-message Inbox spent a millisecond there).
_COUNT_COLUMNS = ("content_count", "unread_count", "associated_count")
_COUNT = ("UPDATE folders SET content_count = content_count {op} ({row}.associated = 0), "
          "unread_count = unread_count {op} ({row}.associated = 0 AND {row}.is_read = 0), "
          "associated_count = associated_count {op} ({row}.associated <> 0) "
          "WHERE folder_id = {row}.folder_id;")
_COUNT_TRIGGERS = (
    "CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN "
    + _COUNT.format(op="+", row="NEW") + " END",
    "CREATE TRIGGER messages_count_delete AFTER DELETE ON messages BEGIN "
    + _COUNT.format(op="-", row="OLD") + " END",
    "CREATE TRIGGER messages_count_update AFTER UPDATE OF folder_id, associated, is_read "
    "ON messages BEGIN " + _COUNT.format(op="-", row="OLD") + " "
    + _COUNT.format(op="+", row="NEW") + " END",
)
_COUNT_TRIGGERS_SQL = ";\n".join(_COUNT_TRIGGERS)
# Version 5: renderings of a message in another format (the iCalendar or vCard a DAV
# client reads), kept with the change number they were made at, so a GET or a multiget
# of an unchanged item costs a row read instead of a conversion; and the bytes a client
# PUT, which it gets back unchanged (with its own X- properties) until another protocol
# changes the item. A row goes when its message goes or gets a new id (a move). And
# ``tombstones.name``: the DAV name of a deleted or moved-away message, for DAV sync.
_RENDERS = ("CREATE TABLE renders (message_id INTEGER NOT NULL, format TEXT NOT NULL, "
            "change_number INTEGER NOT NULL, data BLOB NOT NULL, "
            "PRIMARY KEY (message_id, format)) WITHOUT ROWID")
_RENDERS_GC = (
    "CREATE TRIGGER renders_gc AFTER DELETE ON messages BEGIN "
    "DELETE FROM renders WHERE message_id = old.message_id; END",
    "CREATE TRIGGER renders_moved AFTER UPDATE OF message_id ON messages BEGIN "
    "DELETE FROM renders WHERE message_id = old.message_id; END",
)
_MODSEQ_INDEX = "CREATE INDEX messages_folder_modseq ON messages (folder_id, modseq)"
_MIME_STRUCTURES = ("CREATE TABLE mime_structures (hash TEXT PRIMARY KEY, version INTEGER "
                    "NOT NULL, size INTEGER NOT NULL, crlf INTEGER NOT NULL, envelope BLOB "
                    "NOT NULL, body BLOB NOT NULL, bodystructure BLOB NOT NULL, tree BLOB "
                    "NOT NULL)")
_MIME_STRUCTURES_GC = ("CREATE TRIGGER mime_structures_gc AFTER DELETE ON blobs BEGIN "
                       "DELETE FROM mime_structures WHERE hash = OLD.hash; END")

CREATE = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE named_props (
    propid INTEGER PRIMARY KEY,
    guid BLOB NOT NULL,
    lid INTEGER,
    name TEXT
);
CREATE UNIQUE INDEX named_props_lid ON named_props (guid, lid) WHERE lid IS NOT NULL;
CREATE UNIQUE INDEX named_props_name ON named_props (guid, name) WHERE name IS NOT NULL;

CREATE TABLE folders (
    folder_id INTEGER PRIMARY KEY,
    parent_id INTEGER,
    folder_type INTEGER NOT NULL DEFAULT 1,
    name TEXT NOT NULL,
    change_number INTEGER NOT NULL,
    created_cn INTEGER NOT NULL,
    pcl BLOB,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL DEFAULT 1,
    hierarchy_cn INTEGER NOT NULL DEFAULT 0,
    content_count INTEGER NOT NULL DEFAULT 0,
    unread_count INTEGER NOT NULL DEFAULT 0,
    associated_count INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX folders_sibling_names ON folders (parent_id, name COLLATE NOCASE);
CREATE TABLE folder_props {_PROPS.format(owner="folder_id")};

CREATE TABLE messages (
    message_id INTEGER PRIMARY KEY,
    folder_id INTEGER,
    parent_attach_id INTEGER,
    associated INTEGER NOT NULL DEFAULT 0,
    uid INTEGER,
    change_number INTEGER NOT NULL,
    created_cn INTEGER NOT NULL,
    read_cn INTEGER NOT NULL DEFAULT 0,
    modseq INTEGER NOT NULL,
    pcl BLOB,
    is_read INTEGER NOT NULL DEFAULT 0,
    imap_deleted INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0,
    mime_blob TEXT,
    mime_size INTEGER,
    mime_rendered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_folder_uid ON messages (folder_id, associated, uid);
CREATE INDEX messages_folder_cn ON messages (folder_id, change_number);
CREATE INDEX messages_folder_read_cn ON messages (folder_id, read_cn);
CREATE INDEX messages_embedded ON messages (parent_attach_id) WHERE parent_attach_id IS NOT NULL;
{_READ_STATE_INDEX};
CREATE TABLE message_props {_PROPS.format(owner="message_id")};

CREATE TABLE recipients (
    recipient_id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL,
    row_id INTEGER NOT NULL
);
CREATE UNIQUE INDEX recipients_message ON recipients (message_id, row_id);
CREATE TABLE recipient_props {_PROPS.format(owner="recipient_id")};

CREATE TABLE attachments (
    attach_id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL,
    num INTEGER NOT NULL
);
CREATE UNIQUE INDEX attachments_message ON attachments (message_id, num);
CREATE TABLE attachment_props {_PROPS.format(owner="attach_id")};

CREATE TABLE tombstones (
    object_id INTEGER NOT NULL,
    folder_id INTEGER,
    is_folder INTEGER NOT NULL,
    associated INTEGER NOT NULL DEFAULT 0,
    uid INTEGER,
    created_cn INTEGER NOT NULL,
    change_number INTEGER NOT NULL,
    deleted_at INTEGER NOT NULL,
    name TEXT
);
CREATE INDEX tombstones_folder_cn ON tombstones (folder_id, change_number);
CREATE INDEX tombstones_cn ON tombstones (change_number);

CREATE TABLE permissions (
    folder_id INTEGER NOT NULL,
    member TEXT NOT NULL,
    rights INTEGER NOT NULL,
    PRIMARY KEY (folder_id, member)
) WITHOUT ROWID;
{_RENDERS};
{_RENDERS_GC[0]};
{_RENDERS_GC[1]};
CREATE TABLE store_grants (
    member TEXT PRIMARY KEY,
    send_as INTEGER NOT NULL DEFAULT 0,
    send_on_behalf INTEGER NOT NULL DEFAULT 0,
    full_access INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    refcount INTEGER NOT NULL,
    data BLOB
) WITHOUT ROWID;
{_MIME_STRUCTURES};
{_MIME_STRUCTURES_GC};
{_MODSEQ_INDEX};
{_COUNT_TRIGGERS_SQL};
"""

Upgrade = Callable[[sqlite3.Connection], None]


def _add_read_state_index(conn: sqlite3.Connection) -> None:
    conn.execute(_READ_STATE_INDEX)


def _add_mime_structures(conn: sqlite3.Connection) -> None:
    # IF NOT EXISTS / the column check: a store made by this code and set back to an
    # older version (as the upgrade tests do) already has them.
    conn.execute(_MIME_STRUCTURES.replace("TABLE", "TABLE IF NOT EXISTS", 1))
    conn.execute(_MIME_STRUCTURES_GC.replace("TRIGGER", "TRIGGER IF NOT EXISTS", 1))
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    if "mime_rendered" not in columns:
        conn.execute("ALTER TABLE messages ADD COLUMN mime_rendered INTEGER NOT NULL DEFAULT 0")
    conn.execute(_MODSEQ_INDEX.replace("INDEX", "INDEX IF NOT EXISTS", 1))


def _add_folder_counts(conn: sqlite3.Connection) -> None:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(folders)")}
    for column in _COUNT_COLUMNS:
        if column not in columns:
            conn.execute(f"ALTER TABLE folders ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
    for trigger in _COUNT_TRIGGERS:
        conn.execute(trigger.replace("TRIGGER", "TRIGGER IF NOT EXISTS", 1))
    conn.execute(
        "UPDATE folders SET content_count = (SELECT count(*) FROM messages m WHERE "
        "m.folder_id = folders.folder_id AND m.associated = 0), unread_count = (SELECT "
        "count(*) FROM messages m WHERE m.folder_id = folders.folder_id AND m.associated = 0 "
        "AND m.is_read = 0), associated_count = (SELECT count(*) FROM messages m WHERE "
        "m.folder_id = folders.folder_id AND m.associated <> 0)")


def _add_renders(conn: sqlite3.Connection) -> None:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(tombstones)")}
    if "name" not in columns:
        conn.execute("ALTER TABLE tombstones ADD COLUMN name TEXT")
    conn.execute(_RENDERS.replace("TABLE", "TABLE IF NOT EXISTS", 1))
    for trigger in _RENDERS_GC:
        conn.execute(trigger.replace("TRIGGER", "TRIGGER IF NOT EXISTS", 1))


UPGRADES: dict[int, Upgrade] = {
    2: _add_read_state_index,
    3: _add_mime_structures,
    4: _add_folder_counts,
    5: _add_renders,
}
"""``{version: step}``: the step that brings a store from ``version - 1`` to ``version``.
A step runs inside the upgrade's transaction; it must not commit."""


def create(conn: sqlite3.Connection) -> None:
    conn.executescript(f"BEGIN; {CREATE} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")


def upgrade(conn: sqlite3.Connection, path: str) -> int:
    """Bring an existing store to ``SCHEMA_VERSION``; returns the version found."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise CorruptStore(f"{path}: schema version {found} is newer than this gateway "
                           f"({SCHEMA_VERSION}); upgrade the gateway")
    if found == SCHEMA_VERSION:
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        for version in range(found + 1, SCHEMA_VERSION + 1):
            UPGRADES[version](conn)
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found
