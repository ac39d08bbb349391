"""REPORTs of the DAV plugin in process: calendar-multiget and addressbook-multiget,
calendar-query (time ranges on single, recurring, overridden, excluded and all-day events;
VTODO queries; text-match; calendar-data with comp/prop selection and expand),
addressbook-query (text-match, nresults) and sync-collection (RFC 4791 7, RFC 6352 8,
RFC 6578): initial, after changes made by DAV and through the store API, deletions and moves
reported with their original names, DAV:limit paging, and tokens that are not valid here."""

from __future__ import annotations

from icalendar import Calendar
from lxml import etree

from gateway.store import Private
from gateway.store import dav as store_dav
from gateway.store import tags as T
from tests.unit import dav_setup
from tests.unit.dav_setup import (
    ALICE,
    BOOK,
    CAL,
    EASTERN,
    HOME,
    NS,
    TASKS,
    XMLNS,
    Dav,
    ics,
    put,
    vcard,
)

dav = dav_setup.dav  # the fixture


# -- data (after RFC 4791 Appendix B) ----------------------------------------------------------

SINGLE = ics(EASTERN, """BEGIN:VEVENT
UID:74855313FA803DA593CD579A@example.com
DTSTAMP:20060206T001102Z
DTSTART;TZID=US/Eastern:20060102T100000
DURATION:PT1H
SUMMARY:Event #1
DESCRIPTION:Go Steelers!
END:VEVENT""")
"""2006-01-02 15:00-16:00Z."""

SERIES = ics(EASTERN, """BEGIN:VEVENT
UID:00959BC664CA650E933C892C@example.com
DTSTAMP:20060206T001121Z
DTSTART;TZID=US/Eastern:20060102T120000
DURATION:PT1H
RRULE:FREQ=DAILY;COUNT=5
EXDATE;TZID=US/Eastern:20060105T120000
SUMMARY:Event #2
DESCRIPTION:We are having a meeting all this week at 12 pm for one hour
END:VEVENT""", """BEGIN:VEVENT
UID:00959BC664CA650E933C892C@example.com
DTSTAMP:20060206T001121Z
RECURRENCE-ID;TZID=US/Eastern:20060104T120000
DTSTART;TZID=US/Eastern:20060104T140000
DURATION:PT1H
SUMMARY:Event #2 bis
DESCRIPTION:Moved to 2 pm
END:VEVENT""")
"""Daily at 17:00Z on Jan 2-6 2006; Jan 5 excluded; Jan 4 moved to 19:00Z."""

ALLDAY = ics("""BEGIN:VEVENT
UID:allday-0001@example.com
DTSTAMP:20060206T001102Z
DTSTART;VALUE=DATE:20060110
DTEND;VALUE=DATE:20060111
SUMMARY:Holiday
END:VEVENT""")

LATE = ics("""BEGIN:VEVENT
UID:late-override@example.com
DTSTAMP:20060206T001102Z
DTSTART:20060201T100000Z
DURATION:PT1H
RRULE:FREQ=DAILY;COUNT=3
SUMMARY:Short series
END:VEVENT""", """BEGIN:VEVENT
UID:late-override@example.com
DTSTAMP:20060206T001102Z
RECURRENCE-ID:20060203T100000Z
DTSTART:20060220T100000Z
DURATION:PT1H
SUMMARY:Moved far out
END:VEVENT""")
"""Feb 1-3 2006 at 10:00Z, the last instance moved to Feb 20, after the series' end."""

OPEN_ENDED = ics("""BEGIN:VEVENT
UID:weekly-forever@example.com
DTSTAMP:20060206T001102Z
DTSTART:20060106T080000Z
DURATION:PT30M
RRULE:FREQ=WEEKLY;BYDAY=FR
SUMMARY:Weekly standup
END:VEVENT""")


def vtodo(uid: str, summary: str, extra: str = "") -> str:
    return ics(f"""BEGIN:VTODO
UID:{uid}
DTSTAMP:20060205T235335Z
DUE:20060104T120000Z
SUMMARY:{summary}
{extra}END:VTODO""")


TODO_OPEN = vtodo("todo-open@example.com", "Open task", "STATUS:NEEDS-ACTION\n")
TODO_DONE = vtodo("todo-done@example.com", "Done task",
                  "STATUS:COMPLETED\nCOMPLETED:20060105T000000Z\n")
TODO_CANCELLED = vtodo("todo-cancelled@example.com", "Cancelled task", "STATUS:CANCELLED\n")


CARDS = {"ann.vcf": vcard("ann-uid", "Ann Smith", "ann@example.com"),
         "bo.vcf": vcard("bo-uid", "Bo Jones", "bo@example.net"),
         "cyrus.vcf": vcard("cyrus-uid", "Cyrus Daboo", "cyrus@example.com")}


# -- helpers ------------------------------------------------------------------------------------

async def calendar(dav: Dav) -> dict[str, str]:
    """The test events in Alice's calendar: ``{name: etag}``."""
    names = {"single.ics": SINGLE, "series.ics": SERIES, "allday.ics": ALLDAY,
             "late.ics": LATE, "weekly.ics": OPEN_ENDED}
    return {name: await put(dav, CAL + name, data) for name, data in names.items()}


def responses(root: etree._Element) -> dict[str, etree._Element]:
    return {r.findtext("D:href", namespaces=NS): r for r in root.findall("D:response", NS)}


def status(resp: etree._Element) -> int | None:
    line = resp.findtext("D:status", namespaces=NS)
    return int(line.split()[1]) if line else None


def prop(resp: etree._Element, name: str) -> str | None:
    for stat in resp.findall("D:propstat", NS):
        if "200" in (stat.findtext("D:status", namespaces=NS) or ""):
            found = stat.find(f"D:prop/{name}", NS)
            if found is not None:
                return found.text or ""
    return None


def query(filter_xml: str, data: str = "<C:calendar-data/>") -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?><C:calendar-query {XMLNS}><D:prop>'
            f"<D:getetag/>{data}</D:prop><C:filter>{filter_xml}</C:filter></C:calendar-query>")


def events_in(start: str, end: str) -> str:
    return ('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            f'<C:time-range start="{start}" end="{end}"/></C:comp-filter></C:comp-filter>')


async def found(dav: Dav, path: str, body: str, depth: str = "1") -> dict[str, etree._Element]:
    return responses(await dav.xml("REPORT", path, body, Depth=depth))


async def names_in(dav: Dav, start: str, end: str) -> set[str]:
    hits = await found(dav, CAL, query(events_in(start, end), ""))
    return {href.rsplit("/", 1)[1] for href in hits}


# -- calendar-multiget --------------------------------------------------------------------------

async def test_calendar_multiget_with_present_and_missing_hrefs(dav: Dav) -> None:
    tags = await calendar(dav)
    await put(dav, TASKS + "open.ics", TODO_OPEN)
    await put(dav, CAL + "My%20Event.ics", SINGLE.replace("74855313FA803DA593CD579A", "spaced"))
    hrefs = [CAL + "single.ics", CAL + "series.ics", CAL + "missing.ics", TASKS + "open.ics",
             "/dav/calendars/bob@example.org/calendar/single.ics", CAL + "My%20Event.ics",
             CAL, "https://mail.example.org" + CAL + "allday.ics"]
    body = (f'<?xml version="1.0"?><C:calendar-multiget {XMLNS}><D:prop><D:getetag/>'
            "<C:calendar-data/></D:prop>"
            + "".join(f"<D:href>{h}</D:href>" for h in hrefs) + "</C:calendar-multiget>")
    hits = await found(dav, CAL, body)
    assert prop(hits[CAL + "single.ics"], "D:getetag") == tags["single.ics"]
    assert prop(hits[CAL + "single.ics"], "C:calendar-data").encode() == SINGLE.encode()
    assert prop(hits[CAL + "series.ics"], "C:calendar-data").encode() == SERIES.encode()
    assert prop(hits[CAL + "My%20Event.ics"], "D:getetag")
    for missing in (CAL + "missing.ics", TASKS + "open.ics",
                    "/dav/calendars/bob@example.org/calendar/single.ics", CAL):
        assert status(hits[missing]) == 404, missing
        assert prop(hits[missing], "C:calendar-data") is None
    assert set(hits) <= set(hrefs)
    absolute = hits.get("https://mail.example.org" + CAL + "allday.ics")
    if absolute is None:
        absolute = hits.get(CAL + "allday.ics")
    assert absolute is not None and prop(absolute, "D:getetag") == tags["allday.ics"]


async def test_calendar_multiget_of_items_made_through_the_store(dav: Dav) -> None:
    from gateway.convert.ical_in import parse_calendar_report

    (message,) = parse_calendar_report(SINGLE).messages
    mbox = await dav.host.store.open(ALICE)
    mid = await mbox.create_message(int(Private.CALENDAR), message)
    href = f"{CAL}gw-{mid}.ics"
    body = (f'<?xml version="1.0"?><C:calendar-multiget {XMLNS}><D:prop><D:getetag/>'
            f"<C:calendar-data/></D:prop><D:href>{href}</D:href></C:calendar-multiget>")
    hits = await found(dav, CAL, body)
    cal = Calendar.from_ical(prop(hits[href], "C:calendar-data"))
    assert [str(e["UID"]) for e in cal.walk("VEVENT")] == ["74855313FA803DA593CD579A@example.com"]


async def test_addressbook_multiget(dav: Dav) -> None:
    for name, data in CARDS.items():
        await put(dav, BOOK + name, data)
    hrefs = [BOOK + "ann.vcf", BOOK + "cyrus.vcf", BOOK + "nobody.vcf"]
    body = (f'<?xml version="1.0"?><R:addressbook-multiget {XMLNS}><D:prop><D:getetag/>'
            "<R:address-data/></D:prop>"
            + "".join(f"<D:href>{h}</D:href>" for h in hrefs) + "</R:addressbook-multiget>")
    hits = await found(dav, BOOK, body)
    assert set(hits) == set(hrefs)
    assert prop(hits[BOOK + "ann.vcf"], "R:address-data").encode() == CARDS["ann.vcf"].encode()
    assert prop(hits[BOOK + "cyrus.vcf"], "R:address-data").encode() \
        == CARDS["cyrus.vcf"].encode()
    assert status(hits[BOOK + "nobody.vcf"]) == 404


async def test_a_multiget_of_the_other_kind_is_403_supported_report(dav: Dav) -> None:
    await put(dav, BOOK + "ann.vcf", CARDS["ann.vcf"])
    await put(dav, CAL + "single.ics", SINGLE)
    for path, body in (
            (BOOK, f'<C:calendar-multiget {XMLNS}><D:prop><C:calendar-data/></D:prop>'
                   f"<D:href>{BOOK}ann.vcf</D:href></C:calendar-multiget>"),
            (CAL, f'<R:addressbook-multiget {XMLNS}><D:prop><R:address-data/></D:prop>'
                  f"<D:href>{CAL}single.ics</D:href></R:addressbook-multiget>")):
        answer = await dav.request("REPORT", path, body, Depth="1")
        assert answer.status_code == 403, (path, answer.status_code)
        assert etree.fromstring(answer.content).find("D:supported-report", NS) is not None


# -- calendar-query -----------------------------------------------------------------------------

async def test_time_range_on_single_recurring_overridden_and_excluded_events(dav: Dav) -> None:
    await calendar(dav)
    assert await names_in(dav, "20060102T150000Z", "20060102T153000Z") == {"single.ics"}
    assert await names_in(dav, "20060103T000000Z", "20060104T000000Z") == {"series.ics"}
    # Jan 5 is an EXDATE: no instance that day
    assert await names_in(dav, "20060105T000000Z", "20060106T000000Z") == set()
    # Jan 4's instance moved from 17:00Z to 19:00Z
    assert await names_in(dav, "20060104T165000Z", "20060104T175000Z") == set()
    assert await names_in(dav, "20060104T183000Z", "20060104T193000Z") == {"series.ics"}
    # after the series' last instance
    assert await names_in(dav, "20060107T000000Z", "20060108T000000Z") == set()
    # an open-ended weekly series far in the future
    assert await names_in(dav, "20300104T000000Z", "20300105T000000Z") == {"weekly.ics"}
    assert await names_in(dav, "20300105T000000Z", "20300106T000000Z") == set()


async def test_time_range_on_an_all_day_event(dav: Dav) -> None:
    await calendar(dav)
    assert await names_in(dav, "20060110T120000Z", "20060110T130000Z") == {"allday.ics"}
    assert await names_in(dav, "20060111T120000Z", "20060111T130000Z") == set()
    assert await names_in(dav, "20060109T100000Z", "20060109T110000Z") == set()


async def test_an_override_moved_past_the_end_of_its_series_is_found(dav: Dav) -> None:
    await calendar(dav)
    assert await names_in(dav, "20060219T000000Z", "20060221T000000Z") == {"late.ics"}


async def test_an_override_moved_out_of_its_slot_is_not_found_there(dav: Dav) -> None:
    await calendar(dav)
    assert await names_in(dav, "20060203T093000Z", "20060203T113000Z") == set()
    assert await names_in(dav, "20060201T093000Z", "20060201T113000Z") == {"late.ics"}


async def test_a_query_returns_etags_and_the_stored_data(dav: Dav) -> None:
    tags = await calendar(dav)
    hits = await found(dav, CAL, query(events_in("20060102T000000Z", "20060103T000000Z")))
    assert set(hits) == {CAL + "single.ics", CAL + "series.ics"}
    assert prop(hits[CAL + "single.ics"], "D:getetag") == tags["single.ics"]
    assert prop(hits[CAL + "single.ics"], "C:calendar-data").encode() == SINGLE.encode()


async def test_text_match_on_summary(dav: Dav) -> None:
    await calendar(dav)

    def summary(text: str, extra: str = "") -> str:
        return query('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
                     f'<C:prop-filter name="SUMMARY"><C:text-match collation="i;ascii-casemap"'
                     f"{extra}>{text}</C:text-match></C:prop-filter></C:comp-filter>"
                     "</C:comp-filter>", "")

    hits = await found(dav, CAL, summary("event #2"))
    assert set(hits) == {CAL + "series.ics"}
    hits = await found(dav, CAL, summary("EVENT", ' negate-condition="yes"'))
    assert set(hits) == {CAL + "allday.ics", CAL + "late.ics", CAL + "weekly.ics"}
    hits = await found(dav, CAL, summary("steelers"))
    assert hits == {}


async def test_vtodo_queries(dav: Dav) -> None:
    for name, data in (("open.ics", TODO_OPEN), ("done.ics", TODO_DONE),
                       ("cancelled.ics", TODO_CANCELLED)):
        await put(dav, TASKS + name, data)
    await calendar(dav)
    # RFC 4791 7.8.9: to-dos not completed and not cancelled
    hits = await found(dav, TASKS, query(
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VTODO">'
        '<C:prop-filter name="COMPLETED"><C:is-not-defined/></C:prop-filter>'
        '<C:prop-filter name="STATUS"><C:text-match negate-condition="yes">CANCELLED'
        "</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter>"))
    assert set(hits) == {TASKS + "open.ics"}
    assert prop(hits[TASKS + "open.ics"], "C:calendar-data").encode() == TODO_OPEN.encode()
    all_todos = query('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VTODO"/>'
                      "</C:comp-filter>", "")
    assert len(await found(dav, TASKS, all_todos)) == 3
    assert await found(dav, CAL, all_todos) == {}
    all_events = query('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/>'
                       "</C:comp-filter>", "")
    assert await found(dav, TASKS, all_events) == {}
    assert len(await found(dav, CAL, all_events)) == 5
    due = query('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VTODO">'
                '<C:time-range start="20060104T000000Z" end="20060105T000000Z"/>'
                "</C:comp-filter></C:comp-filter>", "")
    assert len(await found(dav, TASKS, due)) == 3
    due = due.replace("20060104T000000Z", "20060110T000000Z").replace(
        "20060105T000000Z", "20060111T000000Z")
    hits = await found(dav, TASKS, due)
    assert TASKS + "open.ics" not in hits


async def test_calendar_data_with_comp_and_prop_selection(dav: Dav) -> None:
    await calendar(dav)
    data = ('<C:calendar-data><C:comp name="VCALENDAR"><C:prop name="VERSION"/>'
            '<C:comp name="VEVENT"><C:prop name="SUMMARY"/><C:prop name="UID"/>'
            '<C:prop name="DTSTART"/></C:comp><C:comp name="VTIMEZONE"/></C:comp>'
            "</C:calendar-data>")
    hits = await found(dav, CAL, query(events_in("20060102T150000Z", "20060102T153000Z"), data))
    text = prop(hits[CAL + "single.ics"], "C:calendar-data")
    cal = Calendar.from_ical(text)
    (event,) = cal.walk("VEVENT")
    assert str(event["SUMMARY"]) == "Event #1"
    assert "DESCRIPTION" not in event and "DURATION" not in event
    assert cal.walk("VTIMEZONE")


async def test_calendar_data_with_expand(dav: Dav) -> None:
    await calendar(dav)
    data = ('<C:calendar-data><C:expand start="20060103T000000Z" end="20060106T000000Z"/>'
            "</C:calendar-data>")
    hits = await found(dav, CAL, query(events_in("20060103T000000Z", "20060106T000000Z"), data))
    assert set(hits) == {CAL + "series.ics"}
    cal = Calendar.from_ical(prop(hits[CAL + "series.ics"], "C:calendar-data"))
    instances = cal.walk("VEVENT")
    starts = sorted(e.decoded("DTSTART").strftime("%Y%m%dT%H%M%SZ") for e in instances)
    # Jan 3 at 17:00Z, Jan 4 moved to 19:00Z; Jan 5 excluded (RFC 4791 9.6.5: UTC, no RRULE)
    assert starts == ["20060103T170000Z", "20060104T190000Z"]
    for instance in instances:
        assert "RRULE" not in instance and "EXDATE" not in instance
        assert "RECURRENCE-ID" in instance
    summaries = {e.decoded("DTSTART").day: str(e["SUMMARY"]) for e in instances}
    assert summaries[4] == "Event #2 bis"
    assert not cal.walk("VTIMEZONE")


async def test_a_query_on_an_item_answers_for_that_item_only(dav: Dav) -> None:
    await calendar(dav)
    every_event = query('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/>'
                        "</C:comp-filter>", "")
    hits = await found(dav, CAL + "single.ics", every_event, depth="0")
    assert set(hits) == {CAL + "single.ics"}


async def test_a_query_without_a_filter_is_refused(dav: Dav) -> None:
    body = (f'<?xml version="1.0"?><C:calendar-query {XMLNS}><D:prop><D:getetag/></D:prop>'
            "</C:calendar-query>")
    answer = await dav.request("REPORT", CAL, body, Depth="1")
    assert answer.status_code in (400, 403)
    assert answer.status_code == 400 or \
        etree.fromstring(answer.content).find("C:valid-filter", NS) is not None


async def test_an_unknown_report_is_403_supported_report(dav: Dav) -> None:
    body = '<?xml version="1.0"?><X:no-such-report xmlns:X="urn:example:x"/>'
    answer = await dav.request("REPORT", CAL, body, Depth="0")
    assert answer.status_code == 403
    assert etree.fromstring(answer.content).find("D:supported-report", NS) is not None


# -- addressbook-query --------------------------------------------------------------------------

def card_query(filter_xml: str, limit: int | None = None, data: str = "") -> str:
    extra = f"<R:limit><R:nresults>{limit}</R:nresults></R:limit>" if limit is not None else ""
    return (f'<?xml version="1.0"?><R:addressbook-query {XMLNS}><D:prop><D:getetag/>{data}'
            f"</D:prop><R:filter>{filter_xml}</R:filter>{extra}</R:addressbook-query>")


async def test_addressbook_query_text_match(dav: Dav) -> None:
    for name, data in CARDS.items():
        await put(dav, BOOK + name, data)
    hits = await found(dav, BOOK, card_query(
        '<R:prop-filter name="EMAIL"><R:text-match collation="i;unicode-casemap" '
        'match-type="ends-with">@EXAMPLE.COM</R:text-match></R:prop-filter>',
        data="<R:address-data/>"))
    assert set(hits) == {BOOK + "ann.vcf", BOOK + "cyrus.vcf"}
    assert prop(hits[BOOK + "ann.vcf"], "R:address-data").encode() == CARDS["ann.vcf"].encode()
    hits = await found(dav, BOOK, card_query(
        '<R:prop-filter name="FN"><R:text-match match-type="equals">Bo Jones</R:text-match>'
        "</R:prop-filter>"))
    assert set(hits) == {BOOK + "bo.vcf"}
    hits = await found(dav, BOOK, card_query(
        '<R:prop-filter name="FN"><R:text-match>daboo</R:text-match></R:prop-filter>'
        '<R:prop-filter name="EMAIL"><R:text-match>ann@</R:text-match></R:prop-filter>'
        ).replace("<R:filter>", '<R:filter test="anyof">'))
    assert set(hits) == {BOOK + "cyrus.vcf", BOOK + "ann.vcf"}
    hits = await found(dav, BOOK, card_query(
        '<R:prop-filter name="FN"><R:text-match>daboo</R:text-match></R:prop-filter>'
        '<R:prop-filter name="EMAIL"><R:text-match>ann@</R:text-match></R:prop-filter>'
        ).replace("<R:filter>", '<R:filter test="allof">'))
    assert hits == {}


async def test_addressbook_query_nresults_limit(dav: Dav) -> None:
    for name, data in CARDS.items():
        await put(dav, BOOK + name, data)
    hits = await found(dav, BOOK, card_query(
        '<R:prop-filter name="EMAIL"><R:text-match>example</R:text-match></R:prop-filter>',
        limit=2))
    items = {h for h in hits if h != BOOK}
    assert len(items) == 2 and items <= {BOOK + n for n in CARDS}
    # RFC 6352 8.6.1: a truncated answer says so with a 507 for the request-URI
    assert status(hits[BOOK]) == 507
    hits = await found(dav, BOOK, card_query(
        '<R:prop-filter name="EMAIL"><R:text-match>example</R:text-match></R:prop-filter>',
        limit=3))
    assert set(hits) == {BOOK + n for n in CARDS}


# -- sync-collection ----------------------------------------------------------------------------

def sync_body(token: str = "", limit: int | None = None, data: str = "") -> str:
    extra = f"<D:limit><D:nresults>{limit}</D:nresults></D:limit>" if limit else ""
    return (f'<?xml version="1.0"?><D:sync-collection {XMLNS}><D:sync-token>{token}'
            f"</D:sync-token><D:sync-level>1</D:sync-level>{extra}<D:prop><D:getetag/>{data}"
            "</D:prop></D:sync-collection>")


async def sync(dav: Dav, path: str, token: str = "", limit: int | None = None
               ) -> tuple[dict[str, etree._Element], str]:
    root = await dav.xml("REPORT", path, sync_body(token, limit), Depth="0")
    token = root.findtext("D:sync-token", namespaces=NS)
    assert token
    return responses(root), token


async def test_sync_collection_initial_and_after_changes(dav: Dav) -> None:
    tags = await calendar(dav)
    hits, token = await sync(dav, CAL)
    assert set(hits) == {CAL + n for n in tags}
    for name, etag in tags.items():
        assert prop(hits[CAL + name], "D:getetag") == etag
    # the property and the report agree on where the collection is
    root = await dav.xml("PROPFIND", CAL, '<D:propfind xmlns:D="DAV:"><D:prop><D:sync-token/>'
                         "</D:prop></D:propfind>", Depth="0")
    assert root.findtext(".//D:sync-token", namespaces=NS) == token
    hits, _ = await sync(dav, CAL, token)
    assert hits == {}
    # add, change, delete
    await put(dav, CAL + "new.ics", SINGLE.replace("74855313FA803DA593CD579A", "new-one"))
    changed = await put(dav, CAL + "single.ics", SINGLE.replace("Event #1", "Event #1 v2"),
                        status=204)
    assert (await dav.request("DELETE", CAL + "allday.ics")).status_code == 204
    hits, token2 = await sync(dav, CAL, token)
    assert set(hits) == {CAL + "new.ics", CAL + "single.ics", CAL + "allday.ics"}
    assert prop(hits[CAL + "single.ics"], "D:getetag") == changed
    assert prop(hits[CAL + "new.ics"], "D:getetag")
    assert status(hits[CAL + "allday.ics"]) == 404
    assert hits[CAL + "allday.ics"].find("D:propstat", NS) is None
    hits, _ = await sync(dav, CAL, token2)
    assert hits == {}


async def test_sync_reports_changes_made_through_the_store(dav: Dav) -> None:
    tags = await calendar(dav)
    _, token = await sync(dav, CAL)
    mbox = await dav.host.store.open(ALICE)
    rows = {row.name: row.id for row in await mbox.read(store_dav.items, int(Private.CALENDAR))}
    await mbox.set_message_props(rows["single.ics"], {T.PidTagSubject: "Renamed in Outlook"})
    await mbox.delete_messages([rows["late.ics"]], hard=True)
    await mbox.delete_messages([rows["weekly.ics"]])  # to Deleted Items, as Outlook does
    hits, _ = await sync(dav, CAL, token)
    assert set(hits) == {CAL + "single.ics", CAL + "late.ics", CAL + "weekly.ics"}
    assert prop(hits[CAL + "single.ics"], "D:getetag") not in (None, tags["single.ics"])
    assert status(hits[CAL + "late.ics"]) == 404
    assert status(hits[CAL + "weekly.ics"]) == 404


async def test_sync_reports_items_moved_away_under_their_old_names(dav: Dav) -> None:
    await calendar(dav)
    assert (await dav.request("MKCALENDAR", HOME + "work/")).status_code == 201
    _, token = await sync(dav, CAL)
    _, work_token = await sync(dav, HOME + "work/")
    answer = await dav.request("MOVE", CAL + "series.ics", Destination=HOME + "work/series.ics")
    assert answer.status_code == 201
    mbox = await dav.host.store.open(ALICE)
    rows = {row.name: row.id for row in await mbox.read(store_dav.items, int(Private.CALENDAR))}
    await mbox.move_messages([rows["single.ics"]], int(Private.TASKS))  # as another protocol
    hits, _ = await sync(dav, CAL, token)
    assert set(hits) == {CAL + "series.ics", CAL + "single.ics"}
    assert status(hits[CAL + "series.ics"]) == 404
    assert status(hits[CAL + "single.ics"]) == 404
    hits, _ = await sync(dav, HOME + "work/", work_token)
    assert set(hits) == {HOME + "work/series.ics"}
    assert prop(hits[HOME + "work/series.ics"], "D:getetag")


async def test_sync_reports_a_rename_in_the_collection(dav: Dav) -> None:
    await calendar(dav)
    _, token = await sync(dav, CAL)
    answer = await dav.request("MOVE", CAL + "series.ics", Destination=CAL + "renamed.ics")
    assert answer.status_code == 201
    hits, _ = await sync(dav, CAL, token)
    assert status(hits.get(CAL + "series.ics", etree.Element("x"))) == 404
    assert prop(hits[CAL + "renamed.ics"], "D:getetag")


async def test_sync_paging_with_a_limit(dav: Dav) -> None:
    tags = await calendar(dav)
    seen: set[str] = set()
    token, rounds = "", 0
    while True:
        rounds += 1
        assert rounds <= 5
        hits, token = await sync(dav, CAL, token, limit=2)
        more = hits.pop(CAL, None)
        assert len(hits) <= 2
        seen.update(hits)
        if more is None:
            break
        assert status(more) == 507
    assert seen == {CAL + n for n in tags}
    assert rounds == 3
    hits, _ = await sync(dav, CAL, token, limit=2)
    assert hits == {}


async def test_sync_of_an_address_book(dav: Dav) -> None:
    for name, data in CARDS.items():
        await put(dav, BOOK + name, data)
    hits, token = await sync(dav, BOOK)
    assert set(hits) == {BOOK + n for n in CARDS}
    assert (await dav.request("DELETE", BOOK + "bo.vcf")).status_code == 204
    hits, _ = await sync(dav, BOOK, token)
    assert set(hits) == {BOOK + "bo.vcf"} and status(hits[BOOK + "bo.vcf"]) == 404


async def test_tokens_that_are_not_valid_here_are_403_valid_sync_token(dav: Dav) -> None:
    await calendar(dav)
    _, own = await sync(dav, CAL)
    _, tasks = await sync(dav, TASKS)
    _, book = await sync(dav, BOOK)
    root = await dav.xml("REPORT", "/dav/calendars/bob@example.org/calendar/", sync_body(),
                         Depth="0", user="bob@example.org")
    bobs = root.findtext("D:sync-token", namespaces=NS)
    prefix = own[:own.index(":sync:") + len(":sync:")]
    for token in (tasks, book, bobs, "http://example.com/ns/sync/1234", prefix + "garbage",
                  prefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAA", own + "x", "x" * 5000):
        answer = await dav.request("REPORT", CAL, sync_body(token), Depth="0")
        assert answer.status_code == 403, (token, answer.status_code, answer.text)
        assert etree.fromstring(answer.content).find("D:valid-sync-token", NS) is not None
    hits, _ = await sync(dav, CAL, own)
    assert hits == {}


async def test_sync_collection_on_a_non_collection_is_refused(dav: Dav) -> None:
    await calendar(dav)
    for path in (HOME, CAL + "single.ics"):
        answer = await dav.request("REPORT", path, sync_body(), Depth="0")
        assert answer.status_code == 403, path
