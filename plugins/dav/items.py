"""Items of a collection: their names, ETags and bytes, and turning a PUT body into a message.

An item's URL name is the one a client PUT it under, or ``gw-<message id>.ics``
(``.vcf``) for items other protocols made. Its ETag is its change number, so any
change through any protocol changes it. Its bytes are the kept rendering while
the change number holds (what the client PUT, byte for byte, until someone else
changes the item), else a fresh conversion through :mod:`gateway.convert`, which
is kept for the next read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from icalendar import Calendar

from gateway.convert import goid
from gateway.convert.ical_in import parse_calendar_report
from gateway.convert.ical_out import render_calendar
from gateway.convert.load import load_message
from gateway.convert.vcard import UID_PROP, parse_vcards
from gateway.convert.vcard_out import render_vcard
from gateway.store import Mailbox, NewMessage, StoreError, dav
from gateway.store import tags as T
from plugins.dav.errors import DavError
from plugins.dav.xmlns import CALDAV, CARDDAV, tag

FALLBACK = re.compile(r"^gw-([0-9]+)\.(ics|vcf)$")
FORMATS = {"calendar": "ical", "addressbook": "vcard"}
CONTENT_TYPES = {"calendar": "text/calendar; charset=utf-8",
                 "addressbook": "text/vcard; charset=utf-8"}
EXTENSIONS = {"calendar": "ics", "addressbook": "vcf"}
MAX_NAME = 255


@dataclass(frozen=True, slots=True)
class ItemRef:
    """An item as a listing or look-up found it."""

    id: int
    name: str
    change_number: int

    @property
    def etag(self) -> str:
        return f'"{self.change_number:x}"'


def name_of(item: dav.Item, kind: str) -> str:
    return item.name or f"gw-{item.id}.{EXTENSIONS[kind]}"


def refs(rows: Sequence[dav.Item], kind: str) -> list[ItemRef]:
    """Items with their names; a name two items have (another protocol moved one in) stays
    with the older one, the other gets its ``gw-`` name, so every item has its own href."""
    seen: set[str] = set()
    out = []
    for row in sorted(rows, key=lambda r: r.id):
        name = name_of(row, kind)
        if name in seen:
            name = f"gw-{row.id}.{EXTENSIONS[kind]}"
        seen.add(name)
        out.append(ItemRef(row.id, name, row.change_number))
    return out


async def listing(mbox: Mailbox, folder_id: int, kind: str) -> list[ItemRef]:
    return refs(await mbox.read(dav.items, folder_id), kind)


async def lookup(mbox: Mailbox, folder_id: int, names: Sequence[str],
                 kind: str) -> dict[str, ItemRef]:
    """``{name: item}`` for those of ``names`` that exist in the folder."""
    def run(txn: object) -> dict[str, ItemRef]:
        stored = dav.by_names(txn, folder_id, names)  # type: ignore[arg-type]
        ids = dict(stored)
        for name in names:
            match = FALLBACK.match(name)
            if name not in ids and match and match.group(2) == EXTENSIONS[kind]:
                ids[name] = int(match.group(1))
        rows = {r.id: r for r in dav.items(txn, folder_id, list(set(ids.values())))}  # type: ignore[arg-type]
        out: dict[str, ItemRef] = {}
        for name, mid in ids.items():
            row = rows.get(mid)
            if row is None:
                continue
            own = name_of(row, kind)
            if own != name and row.name and FALLBACK.match(name):
                # a duplicate stored name: the item answers to its gw- name when an older
                # item holds the stored one (see refs)
                if dav.by_name(txn, folder_id, row.name) != mid:  # type: ignore[arg-type]
                    own = name
            if own == name:
                out[name] = ItemRef(mid, name, row.change_number)
        return out

    return await mbox.read(run)


async def bodies(mbox: Mailbox, items: Sequence[ItemRef], kind: str) -> dict[int, bytes]:
    """The bytes of each item: kept renderings, else converted now (and kept)."""
    fmt = FORMATS[kind]
    ids = [i.id for i in items]
    found = await mbox.read(dav.renders, ids, fmt)
    missing = [i for i in items if i.id not in found]
    if missing:
        fresh: dict[int, tuple[int, bytes]] = {}
        for item in missing:
            try:
                message = await load_message(mbox, item.id)
            except StoreError:
                continue  # deleted meanwhile
            data = render(message, kind)
            fresh[item.id] = (item.change_number, data)
            found[item.id] = data
        await mbox.write(dav.keep_renders, fmt, fresh)
    return found


def render(message: NewMessage, kind: str) -> bytes:
    if kind == "addressbook":
        return render_vcard(message, "3.0")
    return render_calendar(message)


@dataclass
class Parsed:
    message: NewMessage
    uid: str
    component: str
    """``VEVENT``/``VTODO``/``VJOURNAL``/``VCARD``."""
    calendar: Calendar | None = None
    """The iCalendar as read (calendar objects only), so it is parsed once per PUT."""


_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def parse_calendar_object(data: bytes) -> Parsed:
    """One calendar object resource (RFC 4791 4.1) as a message; 403 with the precondition
    that fails otherwise."""
    if _CONTROL.search(data):  # RFC 5545 3.1: no control characters but HTAB in values
        raise DavError(403, tag(CALDAV, "valid-calendar-data"),
                       "control characters are not allowed in iCalendar")
    if not data.rstrip().upper().endswith(b"END:VCALENDAR"):  # icalendar closes it anyway
        raise DavError(403, tag(CALDAV, "valid-calendar-data"), "the iCalendar is cut short")
    try:
        calendars = Calendar.from_ical(data, multiple=True)
    except Exception as exc:  # icalendar raises ValueError, KeyError, IndexError...
        raise DavError(403, tag(CALDAV, "valid-calendar-data"),
                       f"not valid iCalendar: {exc}") from None
    if len(calendars) != 1 or calendars[0].name != "VCALENDAR":
        raise DavError(403, tag(CALDAV, "valid-calendar-data"), "exactly one VCALENDAR expected")
    cal = calendars[0]
    if "METHOD" in cal:
        raise DavError(403, tag(CALDAV, "valid-calendar-object-resource"),
                       "a calendar object resource has no METHOD (RFC 4791 4.1)")
    components = [c for c in cal.subcomponents if c.name in ("VEVENT", "VTODO", "VJOURNAL")]
    if not components:
        raise DavError(403, tag(CALDAV, "valid-calendar-object-resource"),
                       "no VEVENT, VTODO or VJOURNAL in the calendar object")
    uids = {str(c.get("UID", "")) for c in components}
    kinds = {c.name for c in components}
    if len(uids) != 1 or "" in uids or len(kinds) != 1:
        raise DavError(403, tag(CALDAV, "valid-calendar-object-resource"),
                       "all components of one resource share one UID and one type")
    (component,) = kinds
    result = parse_calendar_report(data, parsed=[cal])
    if len(result.messages) != 1:
        raise DavError(403, tag(CALDAV, "valid-calendar-data"),
                       "; ".join(result.errors) or "the calendar object could not be read")
    return Parsed(result.messages[0], uids.pop(), component, cal)


def parse_vcard_object(data: bytes) -> Parsed:
    """One address object resource (RFC 6352 5.1); 403 valid-address-data otherwise."""
    if not data.lstrip().upper().startswith(b"BEGIN:VCARD"):
        raise DavError(403, tag(CARDDAV, "valid-address-data"), "not a vCard")
    if not data.rstrip().upper().endswith(b"END:VCARD"):
        raise DavError(403, tag(CARDDAV, "valid-address-data"), "the vCard is cut short")
    if _CONTROL.search(data):
        raise DavError(403, tag(CARDDAV, "valid-address-data"),
                       "control characters are not allowed in a vCard")
    try:
        cards = parse_vcards(data)
    except Exception as exc:
        raise DavError(403, tag(CARDDAV, "valid-address-data"), f"not a vCard: {exc}") from None
    if len(cards) != 1:
        raise DavError(403, tag(CARDDAV, "valid-address-data"), "exactly one vCard expected")
    card = cards[0]
    uid = str(card.props.get(UID_PROP) or "")
    if not uid:
        raise DavError(403, tag(CARDDAV, "valid-address-data"), "the vCard has no UID")
    return Parsed(card, uid, "VCARD")


CLASS_COMPONENTS = {"ipm.task": "VTODO", "ipm.activity": "VJOURNAL"}


async def component_of(mbox: Mailbox, message_id: int, default: str) -> str:
    """The iCalendar component a stored item is (from its message class)."""
    found = (await mbox.message(message_id, [T.PidTagMessageClass])).get(T.PidTagMessageClass)
    kind = str(found or "").lower()
    return next((c for prefix, c in CLASS_COMPONENTS.items()
                 if kind == prefix or kind.startswith(prefix + ".")), default if not kind
                else "VEVENT")


UID_KEYS: dict[str, Any] = {"calendar": T.PidLidGlobalObjectId, "addressbook": UID_PROP}
"""The property an item's UID lives in, per kind of collection."""


def uid_key(parsed: Parsed) -> tuple[Any, Any]:
    """The property and value that identify the parsed object's UID in the store."""
    if parsed.component == "VCARD":
        return UID_KEYS["addressbook"], parsed.uid
    return UID_KEYS["calendar"], goid.uid_to_goid(parsed.uid)


async def same_uid(mbox: Mailbox, message_id: int, parsed: Parsed) -> bool:
    """Whether the stored item has the parsed object's UID (or none to compare with)."""
    key, value = uid_key(parsed)
    stored = (await mbox.message(message_id, [key])).get(key)
    return stored is None or stored == value


