"""A message's parts: its recipient table and its attachments (embedded messages included).

Operations are plain functions ``fn(txn, ...)`` like those of
:mod:`gateway.store.messages`, which re-exports the public ones
(``messages.recipients``, ``messages.add_attachment``, ...). A change to a part
is a change to its message: it takes a new change number through
``messages._stamp``. The two modules call each other, so this one imports
:mod:`~gateway.store.messages` inside the functions that need it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gateway.store import tags as T
from gateway.store.errors import NotFound, TooBig
from gateway.store.objects import ATTACH_BY_VALUE, ATTACH_EMBEDDED_MSG, NewAttachment
from gateway.store.txn import PropKey, Txn

MAX_RECIPIENTS = 10_000
MAX_ATTACHMENTS = 1_000


def _write_recipients(txn: Txn, message_id: int,
                      rows: Sequence[Mapping[PropKey, Any]]) -> None:
    for row_id, props in enumerate(rows):
        recipient_id = txn.conn.execute(
            "INSERT INTO recipients (message_id, row_id) VALUES (?, ?) RETURNING recipient_id",
            (message_id, row_id)).fetchone()[0]
        stored = dict(props)
        stored.pop(T.PidTagRowid, None)
        txn.write_props("recipient_props", recipient_id, stored)


def _delete_recipients(txn: Txn, message_id: int) -> None:
    for (recipient_id,) in txn.conn.execute(
            "DELETE FROM recipients WHERE message_id = ? RETURNING recipient_id",
            (message_id,)).fetchall():
        txn.delete_all_props("recipient_props", recipient_id)


def set_recipients(txn: Txn, message_id: int, rows: list[Mapping[PropKey, Any]]) -> int:
    """Replace the recipient table."""
    from gateway.store import messages

    messages.require(txn, message_id)
    if len(rows) > MAX_RECIPIENTS:
        raise TooBig(f"more than {MAX_RECIPIENTS} recipients")
    _delete_recipients(txn, message_id)
    _write_recipients(txn, message_id, rows)
    return messages._stamp(txn, message_id)


def recipients(txn: Txn, message_id: int) -> list[dict[PropKey, Any]]:
    from gateway.store import messages

    messages.require(txn, message_id)
    out = []
    for recipient_id, row_id in txn.conn.execute(
            "SELECT recipient_id, row_id FROM recipients WHERE message_id = ? ORDER BY row_id",
            (message_id,)).fetchall():
        props = txn.read_props("recipient_props", recipient_id)
        props[T.PidTagRowid] = row_id
        out.append(props)
    return out


_PERSON_TAGS = (T.PidTagRecipientType, T.PidTagDisplayName, T.PidTagSmtpAddress,
                T.PidTagEmailAddress)


def first_recipients(txn: Txn, message_ids: Sequence[int],
                     recipient_type: int) -> dict[int, dict[int, Any]]:
    """Each message's first recipient (by row) of ``recipient_type`` (1 To, 2 Cc, 3 Bcc).

    One query for all the messages; a message without such a recipient is left out.
    The values are the recipient's ``PidTagRecipientType``, ``PidTagDisplayName``,
    ``PidTagSmtpAddress`` and ``PidTagEmailAddress`` as stored, by tag.
    """
    # min(row_id) with bare columns: SQLite takes recipient_id from the row holding the minimum.
    rows = txn.conn.execute(
        "WITH first AS (SELECT r.message_id, r.recipient_id, min(r.row_id) FROM recipients r "
        "JOIN recipient_props kind ON kind.recipient_id = r.recipient_id "
        "AND kind.tag = ? AND kind.value = ? "
        "WHERE r.message_id IN (SELECT value FROM json_each(?)) GROUP BY r.message_id) "
        "SELECT f.message_id, rp.tag, rp.value FROM first f "
        "JOIN recipient_props rp ON rp.recipient_id = f.recipient_id "
        "AND rp.tag IN (?, ?, ?, ?)",
        (T.PidTagRecipientType, recipient_type, json.dumps(list(message_ids)),
         *_PERSON_TAGS)).fetchall()
    first: dict[int, dict[int, Any]] = {}
    for message_id, tag, value in rows:
        first.setdefault(message_id, {})[tag] = value
    return first


def _add_attachment(txn: Txn, message_id: int, attachment: NewAttachment, depth: int) -> int:
    from gateway.store import messages

    row = txn.conn.execute("SELECT coalesce(max(num) + 1, 0) FROM attachments "
                           "WHERE message_id = ?", (message_id,)).fetchone()
    num = int(row[0])
    attach_id = txn.conn.execute(
        "INSERT INTO attachments (message_id, num) VALUES (?, ?) RETURNING attach_id",
        (message_id, num)).fetchone()[0]
    props = dict(attachment.props)
    props.pop(T.PidTagAttachNumber, None)
    if attachment.embedded is not None:
        props[T.PidTagAttachMethod] = ATTACH_EMBEDDED_MSG
    else:
        props.setdefault(T.PidTagAttachMethod, ATTACH_BY_VALUE)
    txn.write_props("attachment_props", attach_id, props)
    if attachment.data is not None:
        digest, size = txn.blobs.put_stream(txn.conn, iter(attachment.data),
                                            txn.limits.max_value_bytes)
        txn.write_blob_prop("attachment_props", attach_id, T.PidTagAttachDataBinary, digest, size)
    if attachment.embedded is not None:
        messages.create(txn, None, attachment.embedded, parent_attach_id=attach_id, depth=depth + 1)
    _update_attachment_size(txn, attach_id)
    return num


def _update_attachment_size(txn: Txn, attach_id: int) -> None:
    size = txn.props_size("attachment_props", attach_id)
    embedded = txn.conn.execute("SELECT size FROM messages WHERE parent_attach_id = ?",
                                (attach_id,)).fetchone()
    if embedded is not None:
        size += int(embedded[0])
    txn.write_props("attachment_props", attach_id, {T.PidTagAttachSize: min(size, 0x7FFFFFFF)})


def add_attachment(txn: Txn, message_id: int, attachment: NewAttachment) -> int:
    """Attach; returns the attachment number."""
    from gateway.store import messages

    messages.require(txn, message_id)
    count = txn.conn.execute("SELECT count(*) FROM attachments WHERE message_id = ?",
                             (message_id,)).fetchone()[0]
    if count >= MAX_ATTACHMENTS:
        raise TooBig(f"more than {MAX_ATTACHMENTS} attachments")
    num = _add_attachment(txn, message_id, attachment, _embedding_depth(txn, message_id))
    messages._stamp(txn, message_id)
    return num


def _embedding_depth(txn: Txn, message_id: int) -> int:
    depth, current = 0, message_id
    while True:
        row = txn.conn.execute(
            "SELECT a.message_id FROM messages m JOIN attachments a ON a.attach_id = "
            "m.parent_attach_id WHERE m.message_id = ?", (current,)).fetchone()
        if row is None:
            return depth
        depth, current = depth + 1, row[0]


def attachment_id(txn: Txn, message_id: int, num: int) -> int:
    row = txn.conn.execute("SELECT attach_id FROM attachments WHERE message_id = ? AND num = ?",
                           (message_id, num)).fetchone()
    if row is None:
        raise NotFound(f"message {message_id} has no attachment {num}")
    return int(row[0])


def attachments(txn: Txn, message_id: int,
                keys: Iterable[PropKey] | None = None) -> list[dict[PropKey, Any]]:
    """Each attachment's properties, without its data unless ``keys`` asks for it."""
    from gateway.store import messages

    messages.require(txn, message_id)
    out = []
    for attach_id, num in txn.conn.execute(
            "SELECT attach_id, num FROM attachments WHERE message_id = ? ORDER BY num",
            (message_id,)).fetchall():
        props = txn.read_props("attachment_props", attach_id, keys)
        if keys is None:
            props.pop(T.PidTagAttachDataBinary, None)
        props[T.PidTagAttachNumber] = num
        out.append(props)
    return out


def attachment_props(txn: Txn, message_id: int, num: int,
                     keys: Iterable[PropKey] | None = None) -> dict[PropKey, Any]:
    props = txn.read_props("attachment_props", attachment_id(txn, message_id, num), keys)
    props[T.PidTagAttachNumber] = num
    return props


def set_attachment_props(txn: Txn, message_id: int, num: int,
                         props: Mapping[PropKey, Any]) -> int:
    from gateway.store import messages

    attach_id = attachment_id(txn, message_id, num)
    txn.write_props("attachment_props", attach_id, props)
    _update_attachment_size(txn, attach_id)
    return messages._stamp(txn, message_id)


def attachment_data_ref(txn: Txn, message_id: int, num: int) -> tuple[str | None, bytes | None]:
    """Where an attachment's data is: ``(blob hash, None)`` or ``(None, inline bytes)``."""
    attach_id = attachment_id(txn, message_id, num)
    row = txn.conn.execute("SELECT value, blob FROM attachment_props WHERE attach_id = ? "
                           "AND tag = ?", (attach_id, T.PidTagAttachDataBinary)).fetchone()
    if row is None:
        return None, b""
    return row[1], row[0]


def embedded(txn: Txn, message_id: int, num: int) -> int:
    """The id of the message held by an attachment."""
    attach_id = attachment_id(txn, message_id, num)
    row = txn.conn.execute("SELECT message_id FROM messages WHERE parent_attach_id = ?",
                           (attach_id,)).fetchone()
    if row is None:
        raise NotFound(f"attachment {num} of message {message_id} holds no message")
    return int(row[0])


def delete_attachment(txn: Txn, message_id: int, num: int) -> int:
    from gateway.store import messages

    attach_id = attachment_id(txn, message_id, num)
    _destroy_attachment(txn, attach_id)
    return messages._stamp(txn, message_id)


def _destroy_attachment(txn: Txn, attach_id: int) -> None:
    from gateway.store import messages

    for (inner,) in txn.conn.execute("SELECT message_id FROM messages WHERE parent_attach_id = ?",
                                     (attach_id,)).fetchall():
        messages._destroy(txn, inner)
    txn.delete_all_props("attachment_props", attach_id)
    txn.conn.execute("DELETE FROM attachments WHERE attach_id = ?", (attach_id,))
