"""Windows ⇄ IANA time-zone names (icalendar's table) and tzinfo lookup by either."""

from __future__ import annotations

from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

_OLSON_TO_WINDOWS: dict[str, str] = {}
for _win, _olson in sorted(WINDOWS_TO_OLSON.items()):
    _OLSON_TO_WINDOWS.setdefault(_olson, _win)
_WINDOWS_LOWER = {k.lower(): v for k, v in WINDOWS_TO_OLSON.items()}


def windows_to_iana(name: str) -> str | None:
    return _WINDOWS_LOWER.get(name.strip().lower())


def iana_to_windows(key: str) -> str | None:
    return _OLSON_TO_WINDOWS.get(key)


def zone(name: str) -> tzinfo | None:
    """A tzinfo for an IANA or Windows zone name, or None."""
    if name.upper() in ("UTC", "Z", "GMT", "ETC/UTC"):
        return UTC
    key = windows_to_iana(name) or name
    try:
        return ZoneInfo(key)
    except (ValueError, OSError, KeyError):
        return None


def keyname_for(tz: tzinfo, tzid: str | None = None) -> str:
    """The TZDEFINITION key name: the Windows name when one is known."""
    key = getattr(tz, "key", None) or tzid or str(tz)
    if tz is UTC or key in ("UTC", "Etc/UTC"):
        return "UTC"
    if windows_to_iana(key):
        return key
    return iana_to_windows(key) or key
