"""Named properties (MS-OXCDATA 2.6.1): a property set GUID plus a LID or a string name.

A named property has no fixed id: each store maps it to an id from 0x8000 up when it
is first used. Code names it by value, e.g. ``tags.PidLidAppointmentStartWhole``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID


@dataclass(frozen=True, slots=True)
class NamedProp:
    """A named property: its property set, its key and its type.

    ``key`` is the long id (LID, an ``int``) of a ``PidLid*`` property or the string
    name of a ``PidName*`` one; ``type`` is a ``PT_*`` of :mod:`gateway.store.proptypes`.
    """

    propset: UUID
    key: int | str
    type: int

    @property
    def kind(self) -> Literal["lid", "name"]:
        """``"lid"`` for a numeric key (MNID_ID), ``"name"`` for a string one (MNID_STRING)."""
        return "lid" if isinstance(self.key, int) else "name"


PSETID_GATEWAY = UUID("6f0c1b7e-2a5d-4c0e-9a53-1d2f8b6e4c71")
"""Property set of the gateway's own named properties (IMAP flags MAPI cannot hold,
vCard UIDs and member lists, ...), so they never collide with Microsoft's."""

DAV_NAME = NamedProp(PSETID_GATEWAY, "DavResourceName", 0x001F)
"""On a message: the last URL segment a DAV client gave it (PT_UNICODE). Kept in the
message's tombstone too, so a DAV sync can name what was deleted."""
