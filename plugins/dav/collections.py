"""Store folders as DAV collections: which folders a home shows, their URL segments, and
making, renaming and describing them.

A calendar home shows the store's appointment (``IPF.Appointment``), task
(``IPF.Task``) and journal (``IPF.Journal``) folders anywhere under the IPM subtree,
except in Deleted Items, each holding one component (VEVENT, VTODO or VJOURNAL);
an address book home its contact (``IPF.Contact``) folders, without Outlook's
hidden ones (Quick Contacts, IM contacts, GAL contacts). The default folders have
fixed segments (``calendar``, ``tasks``, ``journal``, ``contacts``); a folder a DAV client
created keeps the segment it was created at (``DAV_SEGMENT``); any other folder is
``f<folder id in hex>``. The home's view is flat: DAV clients do not nest
calendars. Settings clients set (colour, order, time zone and other dead
properties) are kept on the folder as JSON, so every client sees the same.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from gateway.store import Collision, Private, folders, permissions, sync
from gateway.store import tags as T
from gateway.store.dav import DAV_PROPERTIES, DAV_SEGMENT
from gateway.store.rights import Rights
from gateway.store.txn import Txn
from plugins.dav.errors import DavError

CALENDAR_CLASSES = {"IPF.Appointment": "VEVENT", "IPF.Task": "VTODO", "IPF.Journal": "VJOURNAL"}
"""Folder classes a calendar home shows, with the component each holds."""
CONTACT_CLASS = "IPF.Contact"
FIXED = {int(Private.CALENDAR): "calendar", int(Private.TASKS): "tasks",
         int(Private.JOURNAL): "journal", int(Private.CONTACTS): "contacts"}
HIDDEN = {int(Private.QUICK_CONTACTS), int(Private.IM_CONTACT_LIST),
          int(Private.GAL_CONTACTS), int(Private.CONTACTS_SEARCH), int(Private.SUGGESTED_CONTACTS)}
RESERVED = re.compile(r"^(f[0-9a-f]+|calendar|tasks|journal|contacts|inbox|outbox|gal)$",
                      re.I)
"""Segments a client cannot choose for a new collection."""
MAX_DEAD = 64 * 1024
SYNC_PREFIX = "urn:x-gateway:sync:"
"""Sync tokens are this and the store's sync state (:mod:`gateway.store.sync`)."""
COMPONENTS = "gateway:components"
"""In the dead properties of a calendar a DAV client made for several components (or none
named, as Thunderbird does): their list. Outlook's own folders hold one kind each; such a
calendar is an appointment folder whose tasks and journal entries only DAV clients see."""
DISPLAY = "gateway:displayname"
"""In the dead properties: ``[shown name, folder name]`` when a client's displayname could
not become the folder's name (a sibling has it)."""


@dataclass
class FolderInfo:
    id: int
    segment: str
    name: str
    container_class: str
    comment: str
    change_number: int
    dead: dict[str, str] = field(default_factory=dict)
    """Dead properties: ``{clark name: serialized XML of the property element}``."""
    rights: Rights = Rights.NONE
    sync_state: str = ""
    """The store's sync state at :func:`collection_tag` (set when asked for)."""

    @property
    def kind(self) -> str:
        """``"calendar"`` or ``"addressbook"``."""
        return "addressbook" if self.container_class.startswith(CONTACT_CLASS) else "calendar"

    @property
    def component(self) -> str:
        """``VEVENT``, ``VTODO`` or ``VJOURNAL``: what the folder's class holds."""
        for prefix, component in CALENDAR_CLASSES.items():
            if self.container_class == prefix or self.container_class.startswith(prefix + "."):
                return component
        return "VEVENT"

    @property
    def components(self) -> tuple[str, ...]:
        """What the calendar takes: its class's component, or for a calendar a DAV client
        made for several (:data:`COMPONENTS`) all of those."""
        with contextlib.suppress(ValueError, TypeError, KeyError):
            stored = json.loads(self.dead[COMPONENTS])
            found = tuple(c for c in CALENDAR_CLASSES.values() if c in stored)
            if self.component in found:
                return found
        return (self.component,)


def _class_kind(container_class: str) -> str | None:
    for prefix in CALENDAR_CLASSES:
        if container_class == prefix or container_class.startswith(prefix + "."):
            return "calendars"
    if container_class == CONTACT_CLASS or container_class.startswith(CONTACT_CLASS + "."):
        return "addressbooks"
    return None


def dead_properties(txn: Txn, folder_id: int) -> dict[str, str]:
    """The folder's dead properties as stored now."""
    raw = txn.read_props("folder_props", folder_id, [DAV_PROPERTIES]).get(DAV_PROPERTIES)
    try:
        found = json.loads(raw or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _info(txn: Txn, folder_id: int, user: str | None) -> FolderInfo | None:
    row = txn.conn.execute("SELECT name, change_number FROM folders WHERE folder_id = ?",
                           (folder_id,)).fetchone()
    if row is None:
        return None
    props = txn.read_props("folder_props", folder_id, [T.PidTagContainerClass, T.PidTagComment,
                                                       DAV_SEGMENT, DAV_PROPERTIES])
    chosen = props.get(DAV_SEGMENT)
    if chosen and RESERVED.match(chosen):  # made before the name was reserved ("journal")
        chosen = None
    segment = FIXED.get(folder_id) or chosen or f"f{folder_id:x}"
    try:
        dead = json.loads(props.get(DAV_PROPERTIES) or "{}")
    except ValueError:
        dead = {}
    rights = permissions.rights_for(txn, user, folder_id)
    name = row[0]
    with contextlib.suppress(ValueError, TypeError, KeyError):
        shown, folder_name = json.loads(dead[DISPLAY])
        if folder_name == name:
            name = shown
    return FolderInfo(folder_id, segment, name, str(props.get(T.PidTagContainerClass) or ""),
                      str(props.get(T.PidTagComment) or ""), row[1], dead, rights)


def listing(txn: Txn, home: str, user: str | None) -> list[FolderInfo]:
    """The folders a home (``"calendars"`` or ``"addressbooks"``) shows to ``user``: those
    of its kind that ``user`` can see, defaults first."""
    if txn.info.public:
        return []
    parents = dict(txn.conn.execute("SELECT folder_id, parent_id FROM folders").fetchall())
    subtree, wastebasket = int(Private.IPM_SUBTREE), int(Private.DELETED_ITEMS)
    classes = {fid: value for fid, value in txn.conn.execute(
        "SELECT folder_id, value FROM folder_props WHERE tag = ?", (T.PidTagContainerClass,))}
    found: list[FolderInfo] = []
    for fid, parent in parents.items():
        if fid in HIDDEN or _class_kind(str(classes.get(fid) or "")) != home:
            continue
        seen, node, inside = 0, parent, False
        while node is not None and seen < 64:
            if node == wastebasket:
                break
            if node == subtree:
                inside = True
                break
            node, seen = parents.get(node), seen + 1
        if not inside:
            continue
        info = _info(txn, fid, user)
        if info is not None and info.rights & (Rights.READ_ANY | Rights.FOLDER_VISIBLE):
            found.append(info)
    found.sort(key=lambda f: (f.id not in FIXED, f.id))
    return found


def find(txn: Txn, home: str, segment: str, user: str | None) -> FolderInfo | None:
    """The collection at ``segment`` of a home, if ``user`` may see it."""
    wanted = segment.lower()
    for info in listing(txn, home, user):
        if info.segment.lower() == wanted:
            return info
    return None


def collection_tag(txn: Txn, folder_id: int) -> int:
    """The latest change number of the folder's items, deletions and own properties:
    the CS:getctag and the sync-token's position."""
    row = txn.conn.execute(
        "SELECT max(coalesce((SELECT max(change_number) FROM messages WHERE folder_id = :f "
        "AND associated = 0), 0), coalesce((SELECT max(change_number) FROM tombstones WHERE "
        "folder_id = :f AND is_folder = 0), 0), (SELECT change_number FROM folders WHERE "
        "folder_id = :f))", {"f": folder_id}).fetchone()
    return int(row[0] or 0)


def tag_and_state(txn: Txn, folder_id: int) -> tuple[int, str]:
    """:func:`collection_tag` and the store's sync state of a complete sync there."""
    ctag = collection_tag(txn, folder_id)
    return ctag, sync.encode_state(txn, folder_id, "contents", sync.State(ctag, None))


def create(txn: Txn, home: str, segment: str, name: str, container_class: str,
           props: dict[Any, Any], dead: dict[str, str]) -> int:
    """A new folder for MKCALENDAR/MKCOL under the IPM subtree (calendars, task lists and
    journals beside Calendar, address books beside Contacts)."""
    if find(txn, home, segment, txn.info.key) is not None:  # checked again inside the write
        raise Collision(f"a collection {segment} exists")
    parent = int(Private.IPM_SUBTREE)
    display = name or segment
    base, n = display, 1
    while folders.find_child(txn, parent, display) is not None:
        n += 1
        display = f"{base} ({n})"
    if display != base:
        dead = {**dead, DISPLAY: json.dumps([base, display])}
    extra: dict[Any, Any] = {DAV_SEGMENT: segment, **props}
    if dead:
        extra[DAV_PROPERTIES] = dump_dead(dead)
    return folders.create(txn, parent, display, container_class, extra)


def set_display_name(txn: Txn, folder_id: int, name: str, props: dict[Any, Any],
                     dead: dict[str, str]) -> None:
    """Show ``name`` as the collection's displayname: the folder takes it when no sibling
    has it; otherwise the folder keeps its name (MAPI names are unique among siblings)
    and ``name`` is kept beside it, shown while the folder is not renamed elsewhere."""
    parent, _, current, _ = folders.require(txn, folder_id)
    other = folders.find_child(txn, parent, name) if parent is not None else None
    if other is None or other == folder_id:
        props[T.PidTagDisplayName] = name
        dead.pop(DISPLAY, None)
    else:
        dead[DISPLAY] = json.dumps([name, current])


def dump_dead(dead: dict[str, str]) -> str:
    text = json.dumps(dead, ensure_ascii=False, sort_keys=True)
    if len(text.encode()) > MAX_DEAD:
        raise DavError(507, message="too many or too large properties on this collection")
    return text
