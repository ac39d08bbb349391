"""Reading a whole message out of a store as plain data for the converters."""

from __future__ import annotations

from gateway.store import Mailbox, NewAttachment, NewMessage
from gateway.store import tags as T
from gateway.store.objects import ATTACH_EMBEDDED_MSG

MAX_DEPTH = 8


async def load_message(mbox: Mailbox, message_id: int, depth: int = 0) -> NewMessage:
    """The message with its recipients and attachments (data read whole, as ``[bytes]``)."""
    props = await mbox.message(message_id)
    message = NewMessage(props=dict(props), recipients=await mbox.recipients(message_id),
                         associated=bool(props.get(T.PidTagAssociated)))
    for listed in await mbox.attachments(message_id):
        num = listed[T.PidTagAttachNumber]
        attachment = NewAttachment(props=dict(listed))
        if listed.get(T.PidTagAttachMethod) == ATTACH_EMBEDDED_MSG and depth < MAX_DEPTH:
            inner = await mbox.embedded_message(message_id, num)
            attachment.embedded = await load_message(mbox, inner, depth + 1)
        else:
            attachment.data = [b"".join([chunk async for chunk in
                                         mbox.attachment_data(message_id, num)])]
        message.attachments.append(attachment)
    return message
