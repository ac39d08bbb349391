"""The ``[dav]`` config section."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth.http import check_schemes
from gateway.auth.settings import check_positive
from gateway.config import option


def check_context_path(value: str) -> None:
    if not value.startswith("/") or value.endswith("/") or "//" in value or len(value) < 2:
        raise ValueError('must be an absolute path without a trailing slash, e.g. "/dav"')


@dataclass
class DavSection:
    context_path: str = option(
        "/dav", "URL path under which CalDAV and CardDAV are served.", check=check_context_path)
    auth_schemes: list[str] = option(
        ["basic", "negotiate"], "HTTP authentication offered (negotiate only while [spnego] "
        "enabled).", check=check_schemes)
    max_resource_bytes: int = option(
        10 * 1024 * 1024, "Largest calendar object or vCard a client may PUT "
        "(CALDAV/CARDDAV max-resource-size).", check=check_positive)
    max_xml_bytes: int = option(
        1024 * 1024, "Largest PROPFIND, PROPPATCH, REPORT or MKCOL body; larger gets 413.",
        check=check_positive)
    max_sync_items: int = option(
        1000, "Most changes one sync-collection answer carries; the rest follow with its "
        "token (a client's smaller DAV:limit is honoured).", check=check_positive)
    max_results: int = option(
        10000, "Most resources one PROPFIND Depth 1 or REPORT answers about; more gets 507 "
        "(number-of-matches-within-limits).", check=check_positive)
    parsed_cache_items: int = option(
        2048, "Calendar objects a worker keeps parsed in memory for calendar-query (about "
        "17 KB each); 0: none.", check=lambda v: check_positive(v + 1))
    gal: bool = option(
        True, "Offer the domain's global address list as a read-only address book "
        "(gal) in every address book home.")
