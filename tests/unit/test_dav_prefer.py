"""``Prefer: return=minimal`` (RFC 8144) on PROPFIND: the 404 propstats are left out."""

from __future__ import annotations

from lxml import etree

from tests.unit import dav_setup
from tests.unit.dav_setup import NS, Dav

dav = dav_setup.dav
HOME = "/dav/calendars/alice@example.org/"
BODY = ('<D:propfind xmlns:D="DAV:" xmlns:X="urn:x"><D:prop><D:displayname/><X:nothing/>'
        "</D:prop></D:propfind>")


async def test_return_minimal_leaves_out_what_is_missing(dav: Dav) -> None:
    full = await dav.request("PROPFIND", HOME, BODY, Depth="1")
    minimal = await dav.request("PROPFIND", HOME, BODY, Depth="1", Prefer="return=minimal")
    brief = await dav.request("PROPFIND", HOME, BODY, Depth="1", Brief="t")
    assert full.status_code == minimal.status_code == brief.status_code == 207
    assert "Preference-Applied" not in full.headers
    assert minimal.headers["Preference-Applied"] == "return=minimal"
    for answer, missing in ((full, True), (minimal, False), (brief, False)):
        root = etree.fromstring(answer.content)
        statuses = [s.text for s in root.iterfind(".//D:propstat/D:status", NS)]
        assert ("HTTP/1.1 404 Not Found" in statuses) is missing
        names = root.findall(".//D:propstat/D:prop/D:displayname", NS)
        assert len(names) == len(root.findall("D:response", NS)) >= 3
