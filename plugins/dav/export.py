"""A whole collection as one document: a calendar as one VCALENDAR, an address book as
concatenated vCards (GET of a collection)."""

from __future__ import annotations

from icalendar import Calendar

from plugins.dav import items
from plugins.dav.resources import Collection

MAX_EXPORT = 20_000


async def whole_collection(coll: Collection) -> tuple[bytes, str]:
    refs = (await items.listing(coll.mbox, coll.folder.id, coll.kind))[:MAX_EXPORT]
    found = await items.bodies(coll.mbox, refs, coll.kind)
    if coll.kind == "addressbook":
        return b"".join(found[r.id] for r in refs if r.id in found), items.CONTENT_TYPES[coll.kind]
    out = Calendar()
    out.add("PRODID", "-//groupware-gateway//dav//EN")
    out.add("VERSION", "2.0")
    zones: set[str] = set()
    for ref in refs:
        data = found.get(ref.id)
        if data is None:
            continue
        try:
            cal = Calendar.from_ical(data)
        except Exception:  # a broken item must not hide the others
            continue
        for comp in cal.subcomponents:
            if comp.name == "VTIMEZONE":
                tzid = str(comp.get("TZID"))
                if tzid in zones:
                    continue
                zones.add(tzid)
            out.add_component(comp)
    return bytes(out.to_ical()), items.CONTENT_TYPES[coll.kind]
