"""The URL space of the plugin: parsing request paths into parts, and building hrefs.

    <base>/                                      root
    <base>/principals/  <base>/principals/users/ principal collections
    <base>/principals/users/<address>/           a user's principal
    <base>/principals/users/<address>/calendar-proxy-read/ (and -write/)  its proxy groups
    <base>/calendars/<address>/[<collection>/[<item>]]
    <base>/addressbooks/<address>/[<collection>/[<item>]]

Every segment is percent-decoded once and checked: no empty, ``.`` or ``..``
segment, no slash, backslash or control character inside one, at most 255
characters; anything else is a 404, so a path can never name something outside
this tree. Hrefs are built back with every unsafe character percent-encoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote

from plugins.dav.errors import DavError

HOMES = ("calendars", "addressbooks")
Kind = Literal["root", "principals", "users", "principal", "proxy", "home", "collection",
               "item"]

_BAD = re.compile(r"[\x00-\x1f\x7f/\\]")
MAX_SEGMENT = 255


@dataclass(frozen=True, slots=True)
class DavPath:
    kind: Kind
    owner: str = ""
    home: str = ""
    """``"calendars"`` or ``"addressbooks"`` below a home."""
    collection: str = ""
    item: str = ""


def _segment(raw: str) -> str:
    text = unquote(raw, errors="strict")
    if not text or text in (".", "..") or len(text) > MAX_SEGMENT or _BAD.search(text):
        raise DavError(404, message="no such resource")
    return text


def parse(path: str, base: str) -> DavPath:
    """The parts of a request path (which must start with ``base``); 404 otherwise."""
    if path != base and not path.startswith(base + "/"):
        raise DavError(404, message="outside the DAV tree")
    rest = path[len(base):].strip("/")
    try:
        parts = [_segment(p) for p in rest.split("/")] if rest else []
    except UnicodeDecodeError:
        raise DavError(404, message="not UTF-8") from None
    if not parts:
        return DavPath("root")
    top = parts[0]
    if top == "principals":
        if len(parts) == 1:
            return DavPath("principals")
        if parts[1] != "users" or len(parts) > 4:
            raise DavError(404, message="no such principal")
        if len(parts) == 2:
            return DavPath("users")
        if len(parts) == 4:  # calendar-proxy-read/-write of a user (plugins.dav.principals)
            return DavPath("proxy", owner=parts[2].lower(), collection=parts[3].lower())
        return DavPath("principal", owner=parts[2].lower())
    if top in HOMES and 2 <= len(parts) <= 4:
        owner = parts[1].lower()
        if len(parts) == 2:
            return DavPath("home", owner, top)
        if len(parts) == 3:
            return DavPath("collection", owner, top, parts[2])
        return DavPath("item", owner, top, parts[2], parts[3])
    raise DavError(404, message="no such resource")


def href(base: str, *segments: str, collection: bool = True) -> str:
    """``base/seg1/seg2/`` with each segment percent-encoded (a trailing slash for
    collections)."""
    encoded = "/".join(quote(s, safe="@+:!$&'()*,;=~") for s in segments)
    out = f"{base}/{encoded}" if encoded else base
    return out + "/" if collection else out


def principal_href(base: str, address: str) -> str:
    return href(base, "principals", "users", address)
