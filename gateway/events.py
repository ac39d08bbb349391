"""Store events: what changed in a mailbox, as delivered to ``gateway_store_event``.

Events cross process boundaries through Redis, so they are plain data with a
JSON form.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class StoreEvent:
    """One change in one mailbox store."""

    mailbox: str
    """The store's owner address (or public store name)."""
    kind: str
    """``"object_created"``, ``"object_modified"``, ``"object_deleted"``, ``"object_moved"``,
    ``"folder_created"``, ``"folder_modified"``, ``"folder_deleted"``, ``"new_mail"``, ..."""
    folder_id: int | None = None
    object_id: int | None = None
    change_number: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> StoreEvent:
        fields = json.loads(text)
        if not isinstance(fields, dict) or not isinstance(fields.get("mailbox"), str):
            raise ValueError("not a store event")
        return cls(**fields)
