"""The mailbox store: one MAPI-native truth per mailbox, shared by every protocol.

Start with :class:`Store` (``host.store``): ``await host.store.open(address)``
gives a :class:`Mailbox` whose async methods create, read, change, move and
delete folders and messages. Property tags are in :mod:`gateway.store.tags`
(MS-OXPROPS names), types in :mod:`gateway.store.proptypes`.
"""

from gateway.store.errors import (
    AccessDenied,
    Collision,
    FolderCycle,
    InvalidArgument,
    InvalidValue,
    NotFound,
    QuotaExceeded,
    StoreError,
    TooBig,
    TooComplex,
)
from gateway.store.mailbox import Mailbox
from gateway.store.named import NamedProp
from gateway.store.objects import NewAttachment, NewMessage
from gateway.store.special import Private, Public
from gateway.store.store import Store

__all__ = [
    "AccessDenied", "Collision", "FolderCycle", "InvalidArgument", "InvalidValue", "Mailbox",
    "NamedProp", "NewAttachment", "NewMessage", "NotFound", "Private", "Public",
    "QuotaExceeded", "Store", "StoreError", "TooBig", "TooComplex",
]
