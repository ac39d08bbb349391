"""What the item reports share: the requested properties and data specs, and writing the
responses of items with their calendar-data or address-data."""

from __future__ import annotations

from collections.abc import Sequence

from plugins.dav import calendar_data, carddav_filter, props
from plugins.dav.m_propfind import unique_names
from plugins.dav.resources import Context, Item
from plugins.dav.xmlns import CALDAV, CARDDAV, DAV, tag
from plugins.dav.xmlout import Element, element, response


class Request:
    """The ``DAV:prop`` of a report body: plain property names and the data spec."""

    def __init__(self, root: Element):
        self.names: list[str] = []
        self.data_name: str | None = None
        self.spec: calendar_data.CalendarDataSpec | carddav_filter.AddressDataSpec | None = None
        self.allprop = False
        for child in root:
            if child.tag == tag(DAV, "allprop"):
                self.allprop = True
            if child.tag != tag(DAV, "prop"):
                continue
            for prop in child:
                if not isinstance(prop.tag, str):
                    continue
                if prop.tag == tag(CALDAV, "calendar-data"):
                    self.data_name = prop.tag
                    self.spec = calendar_data.parse_calendar_data(prop)
                elif prop.tag == tag(CARDDAV, "address-data"):
                    self.data_name = prop.tag
                    self.spec = carddav_filter.parse_address_data(prop)
                else:
                    self.names.append(prop.tag)
        self.names = unique_names(self.names)


async def write_items(ctx: Context, ms: Element, wanted: Request, found: Sequence[Item],
                      bodies: dict[int, bytes] | None = None) -> None:
    """One ``<D:response>`` per item with the asked properties and data."""
    if wanted.data_name is not None and bodies is None:
        bodies = await props.item_bodies(found)
    names = None if wanted.allprop else wanted.names
    for res, elements, missing in await props.collect(ctx, found, names, bodies or {}):
        if wanted.data_name is not None:
            assert isinstance(res, Item) and res.ref is not None
            raw = (bodies or {}).get(res.ref.id)
            if raw is None:
                missing.append(wanted.data_name)
            else:
                data = raw if wanted.spec is None or wanted.spec.is_identity else \
                    wanted.spec.render(raw)
                elements.append(element(wanted.data_name, data.decode("utf-8", "replace")))
        response(ms, res.href, elements, {404: missing})
