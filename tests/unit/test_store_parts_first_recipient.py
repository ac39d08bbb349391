"""``parts.first_recipients``: each message's first To / Cc / Bcc recipient in one query."""

from __future__ import annotations

from gateway.store import Mailbox, NewMessage, Private, parts
from gateway.store import tags as T

INBOX = int(Private.INBOX)


def _message(*recipients: tuple[int, str, str]) -> NewMessage:
    message = NewMessage(props={T.PidTagMessageClass: "IPM.Note", T.PidTagSubject: "s"})
    message.recipients = [{T.PidTagRecipientType: kind, T.PidTagDisplayName: name,
                           T.PidTagSmtpAddress: address} for kind, name, address in recipients]
    return message


async def test_first_recipient_of_each_type_by_row(mbox: Mailbox) -> None:
    mixed = await mbox.create_message(INBOX, _message(
        (2, "Carol", "carol@x.org"), (1, "Bob", "bob@x.org"), (1, "Alice", "alice@x.org")))
    only_cc = await mbox.create_message(INBOX, _message((2, "Dave", "dave@x.org")))
    nobody = await mbox.create_message(INBOX, _message())
    ids = [mixed, only_cc, nobody]

    to = await mbox.read(parts.first_recipients, ids, 1)
    cc = await mbox.read(parts.first_recipients, ids, 2)
    bcc = await mbox.read(parts.first_recipients, ids, 3)

    assert set(to) == {mixed}
    assert to[mixed][T.PidTagDisplayName] == "Bob"
    assert to[mixed][T.PidTagSmtpAddress] == "bob@x.org"
    assert {mid: props[T.PidTagDisplayName] for mid, props in cc.items()} == {
        mixed: "Carol", only_cc: "Dave"}
    assert bcc == {}
    assert await mbox.read(parts.first_recipients, [], 1) == {}
