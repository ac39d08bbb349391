"""Journals over CalDAV in process: the store's Journal folder as ``journal/`` (VJOURNAL
only), PUT and GET of VJOURNALs kept as journal entries (``IPM.Activity``), entries made
through the store API, MKCALENDAR of journals, calendar-query time ranges on VJOURNAL
(RFC 4791 9.9), and components a collection does not hold refused with 403
``supported-calendar-component`` (RFC 4791 5.3.2.1), writing nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Calendar
from lxml import etree

from gateway.convert import goid
from gateway.convert.load import load_message
from gateway.store import NewMessage, Private
from gateway.store import dav as store_dav
from gateway.store import tags as T
from tests.unit import dav_setup
from tests.unit.dav_setup import NS, Dav

dav = dav_setup.dav  # the fixture

ALICE = "alice@example.org"
HOME = f"/dav/calendars/{ALICE}/"
CAL, TASKS, JOURNAL = HOME + "calendar/", HOME + "tasks/", HOME + "journal/"
XMLNS = f'xmlns:D="DAV:" xmlns:C="{NS["C"]}"'
C = "{" + NS["C"] + "}"


def ics(*lines: str) -> bytes:
    body = "\r\n".join(lines)
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example Corp.//CalDAV Client//EN\r\n"
            f"{body}\r\nEND:VCALENDAR\r\n").encode()


def vjournal(uid: str, *lines: str) -> bytes:
    return ics("BEGIN:VJOURNAL", f"UID:{uid}", "DTSTAMP:20240101T120000Z", *lines,
               "END:VJOURNAL")


def vevent(uid: str) -> bytes:
    return ics("BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20240101T120000Z",
               "DTSTART:20240111T100000Z", "DTEND:20240111T110000Z", "SUMMARY:meeting",
               "END:VEVENT")


def components(root: etree._Element, href: str) -> list[str]:
    for resp in root.findall("D:response", NS):
        if resp.findtext("D:href", namespaces=NS) == href:
            return [c.get("name") for c in resp.iterfind(
                ".//C:supported-calendar-component-set/C:comp", NS)]
    raise AssertionError(f"{href} not listed")


async def put(dav: Dav, path: str, data: bytes, status: int = 201) -> str:
    answer = await dav.request("PUT", path, data, Content_Type="text/calendar; charset=utf-8")
    assert answer.status_code == status, answer.text
    return answer.headers.get("etag", "")


def refused(answer: object, condition: str) -> None:
    assert getattr(answer, "status_code", None) == 403, getattr(answer, "text", answer)
    root = etree.fromstring(answer.content)  # type: ignore[attr-defined]
    assert root.find(condition, NS) is not None, answer.text  # type: ignore[attr-defined]


async def state(dav: Dav) -> tuple[int, list[str]]:
    """The store's last change number and its folders: what a refused request must keep."""
    mbox = await dav.host.store.open(ALICE)
    names = await mbox.read(lambda txn: sorted(
        r[0] for r in txn.conn.execute("SELECT name FROM folders").fetchall()))
    return await mbox.last_change_number(), names


async def query(dav: Dav, path: str, comp_filter: str) -> set[str]:
    body = (f'<?xml version="1.0" encoding="utf-8"?><C:calendar-query {XMLNS}><D:prop>'
            '<D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
            f"{comp_filter}</C:comp-filter></C:filter></C:calendar-query>")
    root = await dav.xml("REPORT", path, body, Depth="1")
    return {str(h).rsplit("/", 1)[1] for h in root.xpath("//D:href/text()", namespaces=NS)}


# -- the collection ---------------------------------------------------------------------------

async def test_the_home_lists_the_journal_as_a_vjournal_calendar(dav: Dav) -> None:
    body = (f'<?xml version="1.0"?><D:propfind {XMLNS}><D:prop><D:resourcetype/>'
            "<C:supported-calendar-component-set/></D:prop></D:propfind>")
    root = await dav.xml("PROPFIND", HOME, body, Depth="1")
    assert components(root, JOURNAL) == ["VJOURNAL"]
    assert components(root, CAL) == ["VEVENT"] and components(root, TASKS) == ["VTODO"]
    (types,) = [r.find(".//D:resourcetype", NS) for r in root.findall("D:response", NS)
                if r.findtext("D:href", namespaces=NS) == JOURNAL]
    assert {t.tag for t in types} == {"{DAV:}collection", C + "calendar"}
    assert (await dav.request("MKCALENDAR", JOURNAL)).status_code == 405  # it exists


async def test_a_calendar_made_at_journal_before_keeps_working(dav: Dav) -> None:
    """A calendar a client made at ``journal/`` when the name was free moves to its
    ``f<id>`` segment: ``journal/`` is the store's Journal folder."""
    mbox = await dav.host.store.open(ALICE)
    older = await mbox.create_folder(int(Private.IPM_SUBTREE), "Old journal calendar",
                                     "IPF.Appointment", {store_dav.DAV_SEGMENT: "journal"})
    body = (f'<?xml version="1.0"?><D:propfind {XMLNS}><D:prop>'
            "<C:supported-calendar-component-set/></D:prop></D:propfind>")
    root = await dav.xml("PROPFIND", HOME, body, Depth="1")
    assert components(root, JOURNAL) == ["VJOURNAL"]
    assert components(root, f"{HOME}f{older:x}/") == ["VEVENT"]


# -- items ------------------------------------------------------------------------------------

async def test_put_and_get_of_a_vjournal(dav: Dav) -> None:
    data = vjournal("j1@example.com", "DTSTART;VALUE=DATE:20240111",
                    "SUMMARY:simple journal entry", "DESCRIPTION:what happened\\, and why",
                    "CATEGORIES:Work")
    etag = await put(dav, JOURNAL + "j1.ics", data)
    assert etag
    answer = await dav.request("GET", JOURNAL + "j1.ics")
    assert answer.status_code == 200
    assert answer.content == data and answer.headers["etag"] == etag
    assert answer.headers["content-type"].startswith("text/calendar")
    # kept as a journal entry in the store's Journal folder
    mbox = await dav.host.store.open(ALICE)
    (item,) = await mbox.read(store_dav.items, int(Private.JOURNAL))
    p = (await load_message(mbox, item.id)).props
    assert p[T.PidTagMessageClass] == "IPM.Activity"
    assert p[T.PidTagSubject] == "simple journal entry"
    assert p[T.PidTagBody] == "what happened, and why"
    assert p[T.PidLidLogStart] == datetime(2024, 1, 11, tzinfo=UTC)
    assert p[T.PidLidGlobalObjectId] == goid.uid_to_goid("j1@example.com")
    # replaced under If-Match; the same UID elsewhere in the collection is a conflict
    changed = data.replace(b"simple journal entry", b"edited entry")
    new_etag = await put(dav, JOURNAL + "j1.ics", changed, status=204)
    assert new_etag != etag
    assert (await dav.request("GET", JOURNAL + "j1.ics")).content == changed
    refused(await dav.request("PUT", JOURNAL + "other.ics", data,
                              Content_Type="text/calendar"), "C:no-uid-conflict")


async def test_a_journal_entry_made_through_the_store_reads_as_vjournal(dav: Dav) -> None:
    start = datetime(2024, 3, 4, 14, 5, tzinfo=UTC)
    entry = NewMessage(props={
        T.PidTagMessageClass: "IPM.Activity", T.PidTagSubject: "Phone call with Bob",
        T.PidTagBody: "about the roof", T.PidLidLogType: "Phone call",
        T.PidLidLogStart: start, T.PidLidLogEnd: start + timedelta(minutes=20),
        T.PidLidLogDuration: 20})
    mbox = await dav.host.store.open(ALICE)
    mid = await mbox.create_message(int(Private.JOURNAL), entry)
    answer = await dav.request("GET", f"{JOURNAL}gw-{mid}.ics")
    assert answer.status_code == 200, answer.text
    (comp,) = Calendar.from_ical(answer.content).walk("VJOURNAL")
    assert str(comp["SUMMARY"]) == "Phone call with Bob"
    assert str(comp["DESCRIPTION"]) == "about the roof"
    assert comp.decoded("DTSTART") == start
    assert str(comp["UID"])
    assert await query(dav, JOURNAL, '<C:comp-filter name="VJOURNAL"/>') == {f"gw-{mid}.ics"}


async def test_components_the_collection_does_not_hold_are_refused(dav: Dav) -> None:
    before = await state(dav)
    journal = vjournal("j@example.com", "SUMMARY:notes")
    for path, data in ((JOURNAL + "e.ics", vevent("e@example.com")),
                       (CAL + "j.ics", journal), (TASKS + "j.ics", journal)):
        answer = await dav.request("PUT", path, data, Content_Type="text/calendar")
        refused(answer, "C:supported-calendar-component")
    bad = vjournal("bad@example.com", "DTSTART:someday")  # not a date: not valid iCalendar
    refused(await dav.request("PUT", JOURNAL + "bad.ics", bad, Content_Type="text/calendar"),
            "C:valid-calendar-data")
    assert await state(dav) == before


# -- MKCALENDAR -------------------------------------------------------------------------------

def mkcalendar(name: str, *comps: str) -> str:
    wanted = "".join(f'<C:comp name="{c}"/>' for c in comps)
    return (f'<?xml version="1.0"?><C:mkcalendar {XMLNS}><D:set><D:prop>'
            f"<D:displayname>{name}</D:displayname><C:supported-calendar-component-set>"
            f"{wanted}</C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>")


async def test_mkcalendar_of_a_journal(dav: Dav) -> None:
    diary = HOME + "diary/"
    answer = await dav.request("MKCALENDAR", diary, mkcalendar("Diary", "VJOURNAL"))
    assert answer.status_code == 201, answer.text
    body = (f'<?xml version="1.0"?><D:propfind {XMLNS}><D:prop>'
            "<C:supported-calendar-component-set/></D:prop></D:propfind>")
    assert components(await dav.xml("PROPFIND", diary, body, Depth="0"), diary) == ["VJOURNAL"]
    mbox = await dav.host.store.open(ALICE)
    folder = await mbox.find_folder(int(Private.IPM_SUBTREE), "Diary")
    assert folder is not None
    props = await mbox.folder(folder, [T.PidTagContainerClass])
    assert props[T.PidTagContainerClass] == "IPF.Journal"
    await put(dav, diary + "d.ics", vjournal("d@example.com", "DTSTART:20240105T080000Z"))
    refused(await dav.request("PUT", diary + "e.ics", vevent("e@example.com"),
                              Content_Type="text/calendar"), "C:supported-calendar-component")
    # a calendar a client makes for events and journals takes both
    answer = await dav.request("MKCALENDAR", HOME + "mixed/",
                               mkcalendar("Mixed", "VEVENT", "VJOURNAL"))
    assert answer.status_code == 201
    mixed = HOME + "mixed/"
    assert components(await dav.xml("PROPFIND", mixed, body, Depth="0"), mixed) == \
        ["VEVENT", "VJOURNAL"]
    await put(dav, mixed + "d.ics", vjournal("d2@example.com", "DTSTART:20240105T080000Z"))


# -- calendar-query ---------------------------------------------------------------------------

async def test_time_range_on_vjournal(dav: Dav) -> None:
    await put(dav, JOURNAL + "day.ics", vjournal("day@example.com", "DTSTART;VALUE=DATE:20240111"))
    await put(dav, JOURNAL + "timed.ics", vjournal("timed@example.com",
                                                   "DTSTART:20240201T100000Z"))
    await put(dav, JOURNAL + "undated.ics", vjournal("undated@example.com", "SUMMARY:x"))

    def ranged(start: str, end: str) -> str:
        return (f'<C:comp-filter name="VJOURNAL"><C:time-range start="{start}" end="{end}"/>'
                "</C:comp-filter>")

    assert await query(dav, JOURNAL, ranged("20240101T000000Z", "20240201T000000Z")) \
        == {"day.ics"}
    assert await query(dav, JOURNAL, ranged("20240111T120000Z", "20240112T000000Z")) \
        == {"day.ics"}  # a dated journal lasts its whole day (RFC 4791 9.9)
    assert await query(dav, JOURNAL, ranged("20240201T100000Z", "20240201T100001Z")) \
        == {"timed.ics"}
    assert await query(dav, JOURNAL, ranged("20240201T100001Z", "20250101T000000Z")) == set()
    assert await query(dav, JOURNAL, '<C:comp-filter name="VJOURNAL"/>') \
        == {"day.ics", "timed.ics", "undated.ics"}
    assert await query(dav, JOURNAL, '<C:comp-filter name="VEVENT"/>') == set()
