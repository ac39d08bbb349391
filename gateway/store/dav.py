"""What a CalDAV/CardDAV front end asks of a store, in single queries.

* **Names.** A DAV client chooses the last segment of an item's URL when it PUTs
  it (``<uid>.ics`` mostly, but any name); the name is kept on the message
  (:data:`DAV_NAME`). A collection a client made with MKCALENDAR or MKCOL keeps
  its URL segment on the folder (:data:`DAV_SEGMENT`), so renaming the folder in
  Outlook does not move it under the client's feet.
* **Listings.** :func:`items` gives every item of a folder with its name and
  change number (the ETag's source) from the index and one property row each.
* **Look-ups** by name and by an identifying property (the iCalendar UID's global
  object id, the vCard UID), for PUT's no-uid-conflict check.
* **Renderings** (schema 5, table ``renders``): the iCalendar or vCard made from a
  message, or the bytes a client PUT, kept with the change number they belong
  to. A rendering is used only while the message still has that change number,
  so any change through any protocol makes the next read convert again.

These are transaction-level functions (``mbox.read(dav.items, folder_id)``); the
plugin decides what the names and formats mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.store import messages, values
from gateway.store import proptypes as pt
from gateway.store.errors import Collision, StoreError
from gateway.store.named import DAV_NAME as DAV_NAME
from gateway.store.named import PSETID_GATEWAY, NamedProp
from gateway.store.txn import PropKey, Txn

DAV_SEGMENT = NamedProp(PSETID_GATEWAY, "DavCollectionName", pt.PT_UNICODE)
"""On a folder: the URL segment of a collection a DAV client created."""
DAV_PROPERTIES = NamedProp(PSETID_GATEWAY, "DavProperties", pt.PT_UNICODE)
"""On a folder: the dead properties DAV clients set on the collection, as JSON."""

_CHUNK = 500
T_ = TypeVar("T_")


@dataclass(frozen=True, slots=True)
class Item:
    """One item of a collection: its message id, the name a client gave it, its CN."""

    id: int
    name: str | None
    change_number: int


def _chunks(values: Sequence[T_]) -> Iterable[Sequence[T_]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def items(txn: Txn, folder_id: int, message_ids: Sequence[int] | None = None) -> list[Item]:
    """The (normal, not associated) messages of a folder, or those of ``message_ids`` that
    are in it, in id order."""
    tag = txn.resolve(DAV_NAME)
    select = ("SELECT m.message_id, p.value, m.change_number FROM messages m "
              "LEFT JOIN message_props p ON p.message_id = m.message_id AND p.tag = ? "
              "WHERE m.folder_id = ? AND m.associated = 0")
    if message_ids is None:
        rows = txn.conn.execute(select + " ORDER BY m.message_id", (tag or 0, folder_id))
        return [Item(*row) for row in rows]
    found: list[Item] = []
    for chunk in _chunks(list(message_ids)):
        marks = ",".join("?" * len(chunk))
        found.extend(Item(*row) for row in txn.conn.execute(
            f"{select} AND m.message_id IN ({marks})", (tag or 0, folder_id, *chunk)))
    found.sort(key=lambda item: item.id)
    return found


def by_name(txn: Txn, folder_id: int, name: str) -> int | None:
    """The message a client stored under ``name`` in the folder."""
    found = by_prop(txn, folder_id, DAV_NAME, name)
    return found[0] if found else None


def by_names(txn: Txn, folder_id: int, names: Sequence[str]) -> dict[str, int]:
    """``{name: message id}`` for those of ``names`` stored in the folder."""
    tag = txn.resolve(DAV_NAME)
    if tag is None:
        return {}
    out: dict[str, int] = {}
    for chunk in _chunks(list(names)):
        marks = ",".join("?" * len(chunk))
        for mid, value in txn.conn.execute(
                "SELECT m.message_id, p.value FROM message_props p JOIN messages m "
                "ON m.message_id = p.message_id WHERE p.tag = ? AND m.folder_id = ? "
                f"AND m.associated = 0 AND p.value IN ({marks}) ORDER BY m.message_id",
                (tag, folder_id, *chunk)):
            out.setdefault(value, mid)
    return out


def by_prop(txn: Txn, folder_id: int, key: PropKey, value: Any) -> list[int]:
    """The folder's messages whose property ``key`` equals ``value`` exactly."""
    tag = txn.resolve(key)
    if tag is None:
        return []
    tag = pt.normal_tag(tag)
    rows = txn.conn.execute(
        "SELECT m.message_id FROM messages m JOIN message_props p ON p.message_id = "
        "m.message_id AND p.tag = ? WHERE m.folder_id = ? AND m.associated = 0 AND p.value = ? "
        "ORDER BY m.message_id", (tag, folder_id, values.to_sql(tag, value)))
    return [row[0] for row in rows]


def renders(txn: Txn, message_ids: Sequence[int], fmt: str) -> dict[int, bytes]:
    """The kept renderings in ``fmt`` of those messages whose CN has not moved since."""
    out: dict[int, bytes] = {}
    for chunk in _chunks(list(message_ids)):
        marks = ",".join("?" * len(chunk))
        for mid, data in txn.conn.execute(
                "SELECT r.message_id, r.data FROM renders r JOIN messages m ON m.message_id = "
                f"r.message_id AND m.change_number = r.change_number WHERE r.format = ? "
                f"AND r.message_id IN ({marks})", (fmt, *chunk)):
            out[mid] = bytes(data)
    return out


def keep_renders(txn: Txn, fmt: str, rendered: dict[int, tuple[int, bytes]]) -> None:
    """Keep ``{message id: (change number, bytes)}`` renderings (a message gone since is
    skipped)."""
    for mid, (cn, data) in rendered.items():
        txn.conn.execute(
            "INSERT OR REPLACE INTO renders (message_id, format, change_number, data) "
            "SELECT message_id, ?, ?, ? FROM messages WHERE message_id = ?",
            (fmt, cn, data, mid))


def change_number(txn: Txn, message_id: int) -> int | None:
    row = txn.conn.execute("SELECT change_number FROM messages WHERE message_id = ?",
                           (message_id,)).fetchone()
    return None if row is None else int(row[0])


def save_item(txn: Txn, folder_id: int, message_id: int | None, new: Any, name: str,
              fmt: str, data: bytes) -> tuple[int, int]:
    """Create (``message_id`` None) or replace an item of a folder from what a client PUT:
    the message ``new`` (a :class:`~gateway.store.NewMessage`), its name, and its bytes,
    kept as the item's rendering in ``fmt``. Returns ``(message id, change number)``."""
    new.props[DAV_NAME] = name
    if message_id is None:
        message_id = messages.create(txn, folder_id, new)
        cn = change_number(txn, message_id)
    else:
        messages.in_folder(txn, folder_id, [message_id])
        cn = messages.replace(txn, message_id, new)
    assert cn is not None
    keep_renders(txn, fmt, {message_id: (cn, data)})
    return message_id, cn


class UidConflict(StoreError):
    """Another item of the folder has the UID of the item being stored."""

    def __init__(self, holder: int):
        super().__init__(f"message {holder} has that UID")
        self.holder = holder


class Changed(StoreError):
    """The item changed since the client read it (a failed If-Match)."""


def check_unchanged(txn: Txn, message_id: int, expected: int | None) -> None:
    """Raise :class:`Changed` unless the message still has change number ``expected``."""
    if expected is not None and change_number(txn, message_id) != expected:
        raise Changed(f"message {message_id} changed")


def put_item(txn: Txn, folder_id: int, message_id: int | None, new: Any, name: str,
             fmt: str, data: bytes, uid: tuple[PropKey, Any] | None = None,
             create_only: bool = False, expected: int | None = None) -> tuple[int, int, bool]:
    """:func:`save_item` with the checks a PUT needs made inside the write, so concurrent
    PUTs cannot both pass them: a name taken since the client looked is replaced (or
    :class:`Collision` with ``create_only``, If-None-Match: *), another item with
    ``uid`` (property, value) raises :class:`UidConflict`, and an item no longer at the
    ``expected`` change number (If-Match) :class:`Changed`. Returns ``(id, CN, created)``."""
    if message_id is not None:
        check_unchanged(txn, message_id, expected)
    current = by_name(txn, folder_id, name)
    if message_id is None and current is not None:
        if create_only:
            raise Collision(f"{name} exists")
        message_id = current
    if uid is not None:
        holders = [m for m in by_prop(txn, folder_id, *uid) if m != message_id]
        if holders:
            raise UidConflict(holders[0])
    created = message_id is None
    mid, cn = save_item(txn, folder_id, message_id, new, name, fmt, data)
    return mid, cn, created
