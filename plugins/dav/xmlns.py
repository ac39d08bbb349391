"""XML namespaces of WebDAV, CalDAV, CardDAV and the Apple extensions, and Clark-name helpers."""

from __future__ import annotations

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
CS = "http://calendarserver.org/ns/"
ICAL = "http://apple.com/ns/ical/"

PREFIXES = {"D": DAV, "C": CALDAV, "CR": CARDDAV, "CS": CS, "ICAL": ICAL}
"""Prefixes used in our answers (clients must not care, but people reading traces do)."""


def tag(ns: str, name: str) -> str:
    """The Clark name ``{ns}name`` of an element."""
    return f"{{{ns}}}{name}"


def split(clark: str) -> tuple[str, str]:
    """``(namespace, local name)`` of a Clark name; a name without namespace has ``""``."""
    if clark.startswith("{"):
        ns, _, name = clark[1:].partition("}")
        return ns, name
    return "", clark
