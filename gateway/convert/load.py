"""Reading a whole message out of a store as plain data for the converters.

Named properties come back under their names (:class:`NamedProp` keys, as
``gateway.store.tags`` defines them), not under the store's own ids from
0x8000, so converters need not know which store a message came from.
"""

from __future__ import annotations

from typing import Any

from gateway.store import Mailbox, NamedProp, NewAttachment, NewMessage
from gateway.store import proptypes as pt
from gateway.store import tags as T
from gateway.store.objects import ATTACH_EMBEDDED_MSG
from gateway.store.txn import PropKey, Txn

MAX_DEPTH = 8


async def load_message(mbox: Mailbox, message_id: int, depth: int = 0) -> NewMessage:
    """The message with its recipients and attachments (data read whole, as ``[bytes]``)."""
    props = await mbox.message(message_id)
    recipients = await mbox.recipients(message_id)
    listed = await mbox.attachments(message_id)
    names = await mbox.read(_names, [props, *recipients, *listed])
    message = NewMessage(props=_named(props, names),
                         recipients=[_named(r, names) for r in recipients],
                         associated=bool(props.get(T.PidTagAssociated)))
    for attachment_props in listed:
        num = attachment_props[T.PidTagAttachNumber]
        attachment = NewAttachment(props=_named(attachment_props, names))
        if attachment_props.get(T.PidTagAttachMethod) == ATTACH_EMBEDDED_MSG and depth < MAX_DEPTH:
            inner = await mbox.embedded_message(message_id, num)
            attachment.embedded = await load_message(mbox, inner, depth + 1)
        else:
            attachment.data = [b"".join([chunk async for chunk in
                                         mbox.attachment_data(message_id, num)])]
        message.attachments.append(attachment)
    return message


def _names(txn: Txn, bags: list[dict[PropKey, Any]]) -> dict[int, NamedProp]:
    """The name behind every named-property tag in ``bags``."""
    out: dict[int, NamedProp] = {}
    for bag in bags:
        for key in bag:
            if isinstance(key, int) and pt.is_named(key) and key not in out:
                named = txn.named_of(pt.prop_id(key))
                if named is not None:
                    out[key] = NamedProp(named.propset, named.key, pt.prop_type(key))
    return out


def _named(bag: dict[PropKey, Any], names: dict[int, NamedProp]) -> dict[PropKey, Any]:
    return {names.get(key, key) if isinstance(key, int) else key: value
            for key, value in bag.items()}
