"""What callers hand the store to create: messages, their recipients and attachments.

Plain data; the store checks every value against its tag when it writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.store.txn import PropKey

# PidTagMessageFlags bits (MS-OXCMSG 2.2.1.6).
MSGFLAG_READ = 0x0001
MSGFLAG_UNMODIFIED = 0x0002
MSGFLAG_SUBMITTED = 0x0004
MSGFLAG_UNSENT = 0x0008
MSGFLAG_HASATTACH = 0x0010
MSGFLAG_FROMME = 0x0020
MSGFLAG_ASSOCIATED = 0x0040
COMPUTED_FLAGS = MSGFLAG_READ | MSGFLAG_HASATTACH | MSGFLAG_ASSOCIATED
"""Bits the store derives itself and never keeps in the property row."""

# PidTagFolderType
FOLDER_ROOT = 0
FOLDER_GENERIC = 1
FOLDER_SEARCH = 2

# PidTagAttachMethod
ATTACH_BY_VALUE = 1
ATTACH_EMBEDDED_MSG = 5


@dataclass
class NewAttachment:
    props: dict[PropKey, Any] = field(default_factory=dict)
    embedded: NewMessage | None = None
    """An attached message (``PidTagAttachMethod`` becomes ``ATTACH_EMBEDDED_MSG``)."""
    data: Iterable[bytes] | None = None
    """The attachment's content in chunks (``PidTagAttachDataBinary``), written to the
    blob store as it arrives, so a large attachment is never held whole."""


@dataclass
class NewMessage:
    props: dict[PropKey, Any] = field(default_factory=dict)
    recipients: list[dict[PropKey, Any]] = field(default_factory=list)
    attachments: list[NewAttachment] = field(default_factory=list)
    associated: bool = False
    """A folder-associated information (FAI) message: views, rules, settings."""
    mime: bytes | None = None
    """The original Internet message, kept and returned byte for byte (IMAP FETCH)."""
