"""load_message: a stored message comes back whole, named properties under their names."""

from __future__ import annotations

from gateway.convert.load import load_message
from gateway.store import Mailbox, NewAttachment, NewMessage, Private
from gateway.store import tags as T


async def test_named_properties_come_back_by_name(mbox: Mailbox) -> None:
    stored = NewMessage(
        {T.PidTagSubject: "plan", T.PidLidLocation: "Room 1", T.PidNameKeywords: ["a", "b"]},
        recipients=[{T.PidTagDisplayName: "Bob", T.PidLidResponseStatus: 3}],
        attachments=[NewAttachment({T.PidTagAttachLongFilename: "x.txt"}, data=[b"xyz"]),
                     NewAttachment({}, embedded=NewMessage({T.PidLidLocation: "inner"}))])
    mid = await mbox.create_message(int(Private.CALENDAR), stored)
    loaded = await load_message(mbox, mid)
    assert loaded.props[T.PidLidLocation] == "Room 1"
    assert loaded.props[T.PidNameKeywords] == ["a", "b"]
    assert loaded.recipients[0][T.PidLidResponseStatus] == 3
    assert loaded.attachments[0].data == [b"xyz"]
    assert loaded.attachments[1].embedded is not None
    assert loaded.attachments[1].embedded.props[T.PidLidLocation] == "inner"
    assert not any(isinstance(k, int) and k >> 16 >= 0x8000 for k in loaded.props)
