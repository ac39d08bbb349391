"""Tables: columns, multi-key sort, every restriction kind, paging (offset, bookmark), counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.store import (
    InvalidArgument,
    InvalidValue,
    Mailbox,
    NewAttachment,
    NewMessage,
    Private,
    TooComplex,
    ids,
    tables,
)
from gateway.store import proptypes as pt
from gateway.store import tags as T
from gateway.store.restrictions import (
    And,
    Bitmask,
    CompareProps,
    Content,
    Exists,
    Not,
    Or,
    Property,
    Restriction,
    Size,
    SubRestriction,
)
from gateway.store.txn import PropKey

INBOX = int(Private.INBOX)
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BIG = "lorem ipsum " * 3000 + "Needle in the Haystack"  # > value_inline_bytes: a blob


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def recipient(address: str) -> dict[Any, Any]:
    return {T.PidTagDisplayName: address.split("@")[0], T.PidTagSmtpAddress: address,
            T.PidTagRecipientType: 1}


MESSAGES = [
    NewMessage({T.PidTagSubject: "Straße in Berlin", T.PidTagImportance: 2,
                T.PidTagSenderName: "Anna", T.PidTagMessageDeliveryTime: at(3),
                T.PidNameKeywords: ["Work", "Urgent"], T.PidTagMessageFlags: 1},
               recipients=[recipient("bob@example.org")]),
    NewMessage({T.PidTagSubject: "strasse in Bonn", T.PidTagImportance: 1,
                T.PidTagSenderName: "bert", T.PidTagMessageDeliveryTime: at(1),
                T.PidNameKeywords: ["Home"]},
               recipients=[recipient("carol@example.net"), recipient("dave@example.org")],
               attachments=[NewAttachment({T.PidTagAttachLongFilename: "Report.PDF"},
                                          data=[b"%PDF"])]),
    NewMessage({T.PidTagSubject: "Café au lait", T.PidTagImportance: 1,
                T.PidTagSenderName: "Céline", T.PidTagMessageDeliveryTime: at(2),
                T.PidTagBody: BIG}),
    NewMessage({T.PidTagSubject: "Meeting notes", T.PidTagImportance: 2,
                T.PidTagSenderName: "anna", T.PidTagMessageDeliveryTime: at(3),
                T.PidLidLocation: "Room 1"},
               attachments=[NewAttachment({T.PidTagAttachLongFilename: "notes.docx"})]),
    NewMessage({T.PidTagSubject: "meeting", T.PidTagImportance: 0,
                T.PidTagMessageDeliveryTime: at(0), T.PidLidAppointmentSequence: 5}),
]


@pytest.fixture
async def box(mbox: Mailbox) -> tuple[Mailbox, int, list[int]]:
    folder = await mbox.create_folder(INBOX, "Tables")
    mids = await mbox.create_messages(folder, MESSAGES)
    return mbox, folder, mids


Box = tuple[Mailbox, int, list[int]]


async def order(box: Box, restriction: Restriction | None = None,
                sort: list[tuple[Any, bool]] | None = None) -> list[int]:
    """Indexes into MESSAGES of the rows, in table order."""
    mbox, folder, mids = box
    result = await tables.contents_table(mbox, folder, [], sort or [], restriction)
    assert result.total == len(result.rows)
    assert await tables.contents_count(mbox, folder, restriction) == result.total
    return [mids.index(row["id"]) for row in result.rows]


async def matches(box: Box, restriction: Restriction) -> set[int]:
    return set(await order(box, restriction))


# -- columns and sort --------------------------------------------------------------------------
async def test_columns_stored_computed_named_and_missing(box: Box) -> None:
    mbox, folder, mids = box
    cols: list[PropKey] = [T.PidTagSubject, T.PidTagMessageDeliveryTime, T.PidTagMid,
                           T.PidTagMessageFlags,
                           T.PidTagMessageSize, T.PidTagHasAttachments, T.PidTagEntryId,
                           T.PidTagBody, T.PidNameKeywords, T.PidLidLocation,
                           pt.change_type(T.PidTagSenderName, 0)]
    result = await tables.contents_table(mbox, folder, cols, [(T.PidTagMessageDeliveryTime,
                                                                 False)])
    rows = {row["id"]: row for row in result.rows}
    for mid in mids:
        expected: dict[Any, Any] = {"id": mid, **await mbox.message(mid, cols)}
        assert rows[mid] == expected
    assert rows[mids[2]][T.PidTagBody] == BIG
    assert rows[mids[0]][T.PidTagMid] == ids.make_eid(mids[0])
    assert rows[mids[0]][T.PidTagMessageFlags] & 1
    assert rows[mids[1]][T.PidTagHasAttachments] is True
    assert T.PidLidLocation not in rows[mids[0]] and rows[mids[3]][T.PidLidLocation] == "Room 1"
    assert rows[mids[1]][pt.change_type(T.PidTagSenderName, 0)] == "bert"
    paged = await tables.contents_table(mbox, folder, cols, [(T.PidTagMessageDeliveryTime,
                                                                False)], limit=10)
    assert paged.rows == result.rows  # a small page reads its columns after cutting it


async def test_sort_one_key_both_ways_ties_by_id(box: Box) -> None:
    by_time = await order(box, sort=[(T.PidTagMessageDeliveryTime, False)])
    assert by_time == [4, 1, 2, 0, 3]  # 0 and 3 tie: the older id first
    assert await order(box, sort=[(T.PidTagMessageDeliveryTime, True)]) == [0, 3, 2, 1, 4]
    assert await order(box) == [0, 1, 2, 3, 4]


async def test_sort_several_keys_strings_caseless(box: Box) -> None:
    keys = [(T.PidTagImportance, True), (T.PidTagSenderName, False)]
    assert await order(box, sort=keys) == [0, 3, 1, 2, 4]  # "Anna" = "anna": id decides
    keys = [(T.PidTagSubject, False)]
    assert await order(box, sort=keys) == [2, 4, 3, 0, 1]  # "straße" folds to "strasse"


async def test_sort_and_restrict_on_computed(box: Box) -> None:
    mbox, _, mids = box
    by_size = await order(box, sort=[(T.PidTagMessageSize, True)])
    assert by_size[0] == 2  # the big body
    sizes = [(await mbox.message(mids[i], [T.PidTagMessageSize]))[T.PidTagMessageSize]
             for i in by_size]
    assert sizes == sorted(sizes, reverse=True)
    assert await matches(box, Property("gt", T.PidTagMessageSize, 10_000)) == {2}
    assert await matches(box, Property("eq", T.PidTagMid, ids.make_eid(mids[3]))) == {3}
    assert await matches(box, Property(4, T.PidTagHasAttachments, True)) == {1, 3}
    entry = (await mbox.message(mids[4], [T.PidTagEntryId]))[T.PidTagEntryId]
    assert await matches(box, Property("eq", T.PidTagEntryId, entry)) == {4}
    assert await order(box, sort=[(T.PidTagInternetArticleNumber, True)]) == [4, 3, 2, 1, 0]


# -- restrictions ------------------------------------------------------------------------------
async def test_content_caseless_unicode_prefix_full_loose(box: Box) -> None:
    subject = T.PidTagSubject
    assert await matches(box, Content(subject, "STRASSE", ignore_case=True)) == {0, 1}
    assert await matches(box, Content(subject, "raße")) == {0}
    assert await matches(box, Content(subject, "STRASSE")) == set()
    assert await matches(box, Content(subject, "meeting", "prefix", ignore_case=True)) == {3, 4}
    assert await matches(box, Content(subject, "meeting", "prefix")) == {4}
    assert await matches(box, Content(subject, "MEETING", "full", ignore_case=True)) == {4}
    assert await matches(box, Content(subject, "cafe", loose=True)) == {2}
    assert await matches(box, Content(subject, "cafe", ignore_case=True)) == set()
    level = Content.from_fuzzy_level(subject, "IN B", 0x0001_0001)
    assert await matches(box, level) == {0, 1}


async def test_and_or_not_nesting(box: Box) -> None:
    work = Content(T.PidNameKeywords, "Work", "full")
    important = Property("ge", T.PidTagImportance, 2)
    assert await matches(box, And(important, Not(work))) == {3}
    assert await matches(box, Or(work, Property("eq", T.PidTagImportance, 0))) == {0, 4}
    assert await matches(box, Not(Or(And(important, work), Exists(T.PidTagBody)))) == {1, 3, 4}
    assert await matches(box, And()) == {0, 1, 2, 3, 4}
    assert await matches(box, Or()) == set()
    many = Or(*(Property("eq", T.PidTagImportance, n) for n in range(500)))
    assert await matches(box, many) == {0, 1, 2, 3, 4}


async def test_property_relops_and_times(box: Box) -> None:
    time = T.PidTagMessageDeliveryTime
    assert await matches(box, Property("lt", time, at(2))) == {1, 4}
    assert await matches(box, Property("le", time, at(2))) == {1, 2, 4}
    assert await matches(box, Property("ne", time, at(3))) == {1, 2, 4}
    assert await matches(box, Property("eq", T.PidTagSenderName, "ANNA")) == {0, 3}
    # a property the message lacks: false, and its negation true
    assert await matches(box, Property("ne", T.PidTagSenderName, "x")) == {0, 1, 2, 3}
    assert await matches(box, Not(Property("eq", T.PidTagSenderName, "x"))) == {0, 1, 2, 3, 4}


async def test_bitmask_on_read_flag(box: Box) -> None:
    mbox, _, mids = box
    read = Bitmask(T.PidTagMessageFlags, 0x1)
    assert await matches(box, read) == {0}
    await mbox.set_read([mids[2]], True)
    assert await matches(box, read) == {0, 2}
    assert await matches(box, Bitmask(T.PidTagMessageFlags, 0x1, any_set=False)) == {1, 3, 4}
    assert await matches(box, Bitmask(T.PidTagMessageFlags, 0x10)) == {1, 3}  # has attachments


async def test_exists_size_and_compare(box: Box) -> None:
    assert await matches(box, Exists(T.PidTagBody)) == {2}
    assert await matches(box, Exists(pt.change_type(T.PidTagBody, pt.PT_UNSPECIFIED))) == {2}
    assert await matches(box, Exists(T.PidTagMid)) == {0, 1, 2, 3, 4}
    assert await matches(box, Size("gt", T.PidTagBody, 30_000)) == {2}
    assert await matches(box, Size("lt", T.PidTagSubject, 8)) == {4}
    creation = CompareProps("lt", T.PidTagMessageDeliveryTime, T.PidTagCreationTime)
    assert await matches(box, creation) == {0, 1, 2, 3, 4}
    names = CompareProps("eq", T.PidTagSenderName, T.PidTagSubject)
    assert await matches(box, names) == set()


async def test_sub_restrictions_on_recipients_and_attachments(box: Box) -> None:
    smtp = SubRestriction("recipients", Content(T.PidTagSmtpAddress, "EXAMPLE.NET",
                                                ignore_case=True))
    assert await matches(box, smtp) == {1}
    org = SubRestriction("recipients", Content(T.PidTagSmtpAddress, "@example.org"))
    assert await matches(box, org) == {0, 1}
    pdf = SubRestriction("attachments", Content(T.PidTagAttachLongFilename, ".pdf",
                                                ignore_case=True))
    assert await matches(box, pdf) == {1}
    second = SubRestriction("attachments", Property("eq", T.PidTagAttachNumber, 0))
    assert await matches(box, second) == {1, 3}
    assert await matches(box, Not(SubRestriction("recipients", And()))) == {2, 3, 4}


async def test_multi_valued_any_element(box: Box) -> None:
    keywords = T.PidNameKeywords
    assert await matches(box, Content(keywords, "urg", ignore_case=True)) == {0}
    assert await matches(box, Property("eq", keywords, "home")) == {1}
    assert await matches(box, Property("eq", keywords, ["Work", "Urgent"])) == {0}
    assert await matches(box, Property("gt", keywords, "V")) == {0}


async def test_large_blob_body_and_named_properties(box: Box) -> None:
    mbox, folder, mids = box

    def body_row(txn: Any) -> tuple[Any, ...]:
        return tuple(txn.conn.execute("SELECT value, blob FROM message_props WHERE message_id = ? "
                                      "AND tag = ?", (mids[2], T.PidTagBody)).fetchone())
    value, blob = await mbox.read(body_row)
    assert value is None and blob is not None  # the body is in the blob store
    assert await matches(box, Content(T.PidTagBody, "needle in the haystack",
                                      ignore_case=True)) == {2}
    assert await matches(box, Content(T.PidTagBody, "needle")) == set()
    assert await matches(box, Property("eq", T.PidTagBody, BIG.upper())) == {2}
    assert await matches(box, Property("eq", T.PidLidAppointmentSequence, 5)) == {4}
    assert await matches(box, Content(T.PidLidLocation, "room", ignore_case=True)) == {3}
    never = T.PidLidAppointmentEndWhole  # a named property this store has never seen
    assert await matches(box, Property("eq", never, at(0))) == set()
    assert await matches(box, Not(Exists(never))) == {0, 1, 2, 3, 4}
    result = await tables.contents_table(mbox, folder, [never], [(never, True)])
    assert [set(row) for row in result.rows] == [{"id"}] * 5


# -- paging and counts -------------------------------------------------------------------------
async def test_paging_by_offset_and_counts(box: Box) -> None:
    mbox, folder, mids = box
    sort = [(T.PidTagMessageDeliveryTime, True)]
    first = await tables.contents_table(mbox, folder, [T.PidTagSubject], sort, limit=2)
    assert [mids.index(r["id"]) for r in first.rows] == [0, 3]
    assert first.total == 5 and first.more
    last = await tables.contents_table(mbox, folder, [T.PidTagSubject], sort, offset=4, limit=2)
    assert [mids.index(r["id"]) for r in last.rows] == [4] and not last.more
    assert last.total == 5
    none = await tables.contents_table(mbox, folder, [], sort, offset=9)
    assert none.rows == [] and none.total == 5 and none.bookmark_next is None
    subset = await tables.contents_table(mbox, folder, [], sort, Exists(T.PidTagSenderName),
                                         limit=1)
    assert subset.total == 4
    assert await tables.contents_count(mbox, folder) == 5


async def test_bookmark_survives_deletions(mbox: Mailbox) -> None:
    folder = await mbox.create_folder(INBOX, "Many")
    batch = [NewMessage({T.PidTagSubject: f"m{i}", T.PidTagImportance: i % 3,
                         T.PidTagMessageDeliveryTime: at(i // 2)}) for i in range(40)]
    await mbox.create_messages(folder, batch)
    sort = [(T.PidTagImportance, False), (T.PidTagMessageDeliveryTime, True)]
    expected = [r["id"] for r in (await tables.contents_table(mbox, folder, [], sort)).rows]
    seen: list[int] = []
    bookmark = None
    while True:
        page = await tables.contents_table(mbox, folder, [T.PidTagSubject], sort, limit=7,
                                           bookmark=bookmark)
        seen += [row["id"] for row in page.rows]
        if not page.more:
            break
        bookmark = page.bookmark_next
        # delete the last row shown and one not yet shown: nothing skipped, nothing repeated
        gone = [seen[-1], expected[len(seen) + 1]] if len(seen) + 1 < len(expected) else [seen[-1]]
        await mbox.delete_messages(gone, hard=True)
        expected = [mid for mid in expected if mid not in gone[1:]]
    assert seen == expected
    with pytest.raises(InvalidArgument):
        await tables.contents_table(mbox, folder, [], [(T.PidTagSubject, False)],
                                    bookmark=bookmark)
    with pytest.raises(InvalidArgument):
        await tables.contents_table(mbox, folder, [], sort, bookmark="garbage!")


@pytest.mark.parametrize("descending", [False, True])
async def test_bookmark_over_missing_sort_values(box: Box, descending: bool) -> None:
    mbox, folder, _ = box
    sort: list[tuple[Any, bool]] = [(T.PidTagSenderName, descending),
                                    (T.PidLidLocation, not descending)]
    whole = [r["id"] for r in (await tables.contents_table(mbox, folder, [], sort)).rows]
    seen, bookmark = [], None
    for _ in range(10):
        page = await tables.contents_table(mbox, folder, [], sort, limit=1, bookmark=bookmark)
        seen += [r["id"] for r in page.rows]
        bookmark = page.bookmark_next
        if not page.more:
            break
    assert seen == whole and len(seen) == 5


async def test_associated_contents(box: Box) -> None:
    mbox, folder, _ = box
    fai = await mbox.create_message(folder, NewMessage({T.PidTagMessageClass: "IPM.View"},
                                                       associated=True))
    result = await tables.contents_table(mbox, folder, [T.PidTagMessageClass,
                                                        T.PidTagMessageFlags], associated=True)
    assert [row["id"] for row in result.rows] == [fai]
    assert result.rows[0][T.PidTagMessageFlags] & 0x40
    assert await tables.contents_count(mbox, folder, associated=True) == 1
    assert fai not in [r["id"] for r in (await tables.contents_table(mbox, folder, [])).rows]


# -- hierarchy ---------------------------------------------------------------------------------
async def test_hierarchy_depth_one_and_deep(mbox: Mailbox) -> None:
    top = await mbox.create_folder(INBOX, "Top")
    b = await mbox.create_folder(top, "b")
    a = await mbox.create_folder(top, "A")
    inner = await mbox.create_folder(b, "inner")
    await mbox.create_messages(a, [NewMessage({T.PidTagSubject: "x"})] * 3)
    cols = [T.PidTagDisplayName, T.PidTagDepth, T.PidTagContentCount, T.PidTagSubfolders,
            T.PidTagFolderId, T.PidTagSourceKey]
    shallow = await tables.hierarchy_table(mbox, top, cols)
    assert [row["id"] for row in shallow.rows] == [b, a]
    deep = await tables.hierarchy_table(mbox, top, cols, depth="deep")
    assert [(row["id"], row[T.PidTagDepth]) for row in deep.rows] == [(b, 1), (inner, 2),
                                                                       (a, 1)]
    by_id = {row["id"]: row for row in deep.rows}
    assert by_id[a][T.PidTagContentCount] == 3 and by_id[b][T.PidTagSubfolders] is True
    expected: dict[Any, Any] = {"id": inner, **await mbox.folder(inner, cols)}
    assert by_id[inner] == {**expected, T.PidTagDepth: 2}
    named = await tables.hierarchy_table(mbox, top, cols, [(T.PidTagDisplayName, False)],
                                         depth="deep")
    assert [row["id"] for row in named.rows] == [a, b, inner]
    busy = Property("gt", T.PidTagContentCount, 0)
    assert [r["id"] for r in (await tables.hierarchy_table(mbox, top, [], restriction=busy,
                                                           depth="deep")).rows] == [a]
    assert await tables.hierarchy_count(mbox, top, Content(T.PidTagDisplayName, "B", "full",
                                                           ignore_case=True)) == 1
    assert await tables.hierarchy_count(mbox, top, depth="deep") == 3
    page = await tables.hierarchy_table(mbox, top, [], depth="deep", limit=1)
    rest = await tables.hierarchy_table(mbox, top, [], depth="deep", bookmark=page.bookmark_next)
    assert [r["id"] for r in page.rows + rest.rows] == [b, inner, a]


# -- bad input ---------------------------------------------------------------------------------
async def test_bad_input_is_refused_and_writes_nothing(box: Box) -> None:
    mbox, folder, _ = box
    before = await mbox.last_change_number()
    deep: Restriction = Exists(T.PidTagSubject)
    for _ in range(mbox.limits.max_restriction_depth):
        deep = Not(deep)
    bad: list[tuple[type[Exception], Any]] = [
        (TooComplex, deep),
        (InvalidValue, Property("eq", T.PidTagImportance, "high")),
        (InvalidValue, Property("eq", T.PidTagMessageDeliveryTime, "yesterday")),
        (InvalidValue, Content(T.PidTagImportance, "1")),
        (InvalidValue, Content(T.PidTagSubject, b"bytes")),
        (InvalidValue, Bitmask(T.PidTagSubject, 1)),
        (InvalidValue, Property("eq", T.PidLidAppointmentEndWhole, 3.5)),
        (InvalidArgument, Property("like", T.PidTagSubject, "x")),
        (InvalidArgument, Property("re", T.PidTagSubject, "x")),
        (InvalidArgument, Content(T.PidTagSubject, "x", "fuzzy")),
        (InvalidArgument, And(Exists(T.PidTagSubject), "not a restriction")),  # type: ignore[arg-type]
        (InvalidArgument, SubRestriction("folders", Exists(T.PidTagSubject))),
        (InvalidArgument, Exists("PidTagSubject")),  # type: ignore[arg-type]
    ]
    for error, restriction in bad:
        with pytest.raises(error):
            await tables.contents_table(mbox, folder, [T.PidTagSubject], [], restriction)
        with pytest.raises(error):
            await tables.contents_count(mbox, folder, restriction)
    with pytest.raises(InvalidArgument):
        instance = pt.prop_tag(0x6800, pt.PT_MV_UNICODE | pt.MV_INSTANCE)
        await tables.contents_table(mbox, folder, [instance])
    with pytest.raises(InvalidArgument):
        await tables.contents_table(mbox, folder, [], [(T.PidTagEntryId, False)])
    with pytest.raises(InvalidArgument):
        await tables.contents_table(mbox, folder, [], [(T.PidNameKeywords, False)])
    with pytest.raises(InvalidArgument):
        await tables.contents_table(mbox, folder, [], offset=-1)
    with pytest.raises(InvalidArgument):
        await tables.hierarchy_table(mbox, folder, [], depth=2)
    assert isinstance(deep, Not)
    await tables.contents_table(mbox, folder, [], [], deep.child)  # one level less: allowed
    assert await mbox.last_change_number() == before
    assert await mbox.read(lambda txn: txn.resolve(T.PidLidAppointmentEndWhole)) is None
