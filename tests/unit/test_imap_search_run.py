"""IMAP SEARCH run against a real store: every key picks exactly the right messages."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.convert import mime_in
from gateway.store import Mailbox, Private, imap
from gateway.store import tags as T
from plugins.imap.search import (
    SearchResult,
    SearchSyntaxError,
    SelectedView,
    parse_search,
    run_search,
    search_response,
)
from plugins.imap.seqset import format_set

INBOX = int(Private.INBOX)
FILLER = "lorem ipsum dolor sit amet\r\n" * 800  # > 16 KiB: the body goes to the blob store


def mime(headers: list[tuple[str, str]], body: str, content_type: str = "text/plain") -> bytes:
    lines = [f"{name}: {value}" for name, value in headers]
    lines += ["MIME-Version: 1.0", f"Content-Type: {content_type}; charset=utf-8",
              "Content-Transfer-Encoding: 8bit", "", body]
    return "\r\n".join(lines).encode("utf-8")


MESSAGES = {
    "report": (mime([("From", "Alice Archer <alice@example.org>"), ("To", "bob@example.net"),
                     ("Cc", "Carol Chen <carol@example.com>"), ("Subject", "Quarterly report"),
                     ("Date", "Thu, 01 Feb 2024 10:00:00 +0000"),
                     ("Message-ID", "<report@example.org>"), ("X-Custom", "blue sky")],
                    "The numbers are in.\r\n"),
               datetime(2024, 2, 1, 12, 0, tzinfo=UTC), ["\\Seen"]),
    "greeting": (mime([("From", "bob@example.net"), ("To", "Alice <alice@example.org>"),
                       ("Bcc", "dave@example.org"),
                       ("Subject", "=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Koeln"),
                       ("Date", "Fri, 02 Feb 2024 23:30:00 -0500"),
                       ("Message-ID", "<greeting@example.net>")],
                      "<html><body><p>Hello <b>World</b></p></body></html>\r\n", "text/html"),
                 datetime(2024, 2, 3, 0, 0, tzinfo=UTC), ["\\Flagged", "\\Answered", "Work"]),
    "reply": (mime([("From", "Carol <carol@example.com>"), ("To", "alice@example.org"),
                    ("Subject", "Re: Quarterly report"),
                    ("Date", "Mon, 05 Feb 2024 08:00:00 +0000"),
                    ("In-Reply-To", "<report@example.org>")],
                   FILLER + "a needle in the haystack\r\n"),
              datetime(2024, 2, 5, 23, 59, 59, tzinfo=UTC),
              ["\\Draft", "\\Deleted", "$Forwarded"]),
    "plain": (mime([("From", "Dave <dave@example.org>"), ("To", "team@example.org"),
                    ("X-Custom", "red\r\n =?utf-8?q?gr=C3=BCn?= yellow")], "short\r\n"),
              datetime(2024, 3, 1, 0, 0, tzinfo=UTC), ["$Label1", "Work", "\\Seen"]),
}


@dataclass
class Box:
    mbox: Mailbox
    view: SelectedView
    uid: dict[str, int]

    async def search(self, *args: object, uid: bool = True) -> list[str]:
        """Names of the matches; the same with flags from the store and from the view."""
        result = await self.result(*args)
        listing = await self.mbox.read(imap.listing, INBOX)
        in_memory = replace(self.view, flags={item.uid: item for item in listing})
        assert (await run_search(self.mbox, in_memory, parse_search(list(args)))).uids == \
            result.uids, "flags from the view answer differently"
        names = {v: k for k, v in self.uid.items()}
        return sorted(names[u] for u in result.uids)

    async def result(self, *args: object) -> SearchResult:
        return await run_search(self.mbox, self.view, parse_search(list(args)))


@pytest.fixture
async def box(mbox: Mailbox) -> Box:
    uid: dict[str, int] = {}
    for name, (raw, internal, flags) in MESSAGES.items():
        message = mime_in.parse(raw)
        message.props[T.PidTagMessageDeliveryTime] = internal
        mid = await mbox.create_message(INBOX, message)
        await mbox.write(imap.store_flags, INBOX, [mid], flags, "set")
        listing = await mbox.read(imap.listing, INBOX)
        uid[name] = next(item.uid for item in listing if item.message_id == mid)
    view = SelectedView(INBOX, sorted(uid.values()), saved=[uid["plain"]],
                        recent=[uid["reply"], uid["plain"]])
    return Box(mbox, view, uid)


ALL = ["greeting", "plain", "reply", "report"]


@pytest.mark.parametrize(("args", "expected"), [
    (["ALL"], ALL),
    (["SEEN"], ["plain", "report"]),
    (["UNSEEN"], ["greeting", "reply"]),
    (["FLAGGED"], ["greeting"]),
    (["UNFLAGGED"], ["plain", "reply", "report"]),
    (["ANSWERED"], ["greeting"]),
    (["UNANSWERED"], ["plain", "reply", "report"]),
    (["DRAFT"], ["reply"]),
    (["UNDRAFT"], ["greeting", "plain", "report"]),
    (["DELETED"], ["reply"]),
    (["UNDELETED"], ["greeting", "plain", "report"]),
    (["KEYWORD", "Work"], ["greeting", "plain"]),
    (["KEYWORD", "work"], ["greeting", "plain"]),
    (["KEYWORD", "$label1"], ["plain"]),
    (["KEYWORD", "$Forwarded"], ["reply"]),
    (["KEYWORD", "Nothing"], []),
    (["UNKEYWORD", "Work"], ["reply", "report"]),
    (["RECENT"], ["plain", "reply"]),
    (["NEW"], ["reply"]),
    (["OLD"], ["greeting", "report"]),
    (["FROM", "alice"], ["report"]),
    (["FROM", b"ARCHER"], ["report"]),
    (["FROM", "example.net"], ["greeting"]),
    (["TO", "alice"], ["greeting", "reply"]),
    (["TO", "team@"], ["plain"]),
    (["CC", "chen"], ["report"]),
    (["CC", "alice"], []),
    (["BCC", "dave"], ["greeting"]),
    (["SUBJECT", "quarterly"], ["reply", "report"]),
    (["SUBJECT", "GRÜSSE".encode()], ["greeting"]),
    (["SUBJECT", b""], ["greeting", "reply", "report"]),
    (["BODY", "numbers"], ["report"]),
    (["BODY", "hello world"], ["greeting"]),  # text derived from the HTML
    (["BODY", "world"], ["greeting"]),
    (["BODY", "NEEDLE IN THE"], ["reply"]),
    (["TEXT", "needle"], ["reply"]),
    (["TEXT", "x-custom"], ["plain", "report"]),
    (["TEXT", "quarterly"], ["reply", "report"]),
    (["HEADER", "X-Custom", "sky"], ["report"]),
    (["HEADER", "x-custom", "grün"], ["plain"]),
    (["HEADER", "X-Custom", "red grün"], ["plain"]),
    (["HEADER", "X-Custom", ""], ["plain", "report"]),
    (["HEADER", "Message-ID", "<greeting@"], ["greeting"]),
    (["HEADER", "In-Reply-To", "report@example.org"], ["reply"]),
    (["HEADER", "Subject", "aus koeln"], ["greeting"]),
    (["HEADER", "X-Missing", ""], []),
    (["BEFORE", "3-Feb-2024"], ["report"]),
    (["ON", "3-Feb-2024"], ["greeting"]),
    (["ON", "5-feb-2024"], ["reply"]),
    (["SINCE", "3-Feb-2024"], ["greeting", "plain", "reply"]),
    (["SINCE", b"1-Mar-2024"], ["plain"]),
    # the Date header's own day counts: 2 Feb 23:30 -0500 (3 Feb in UTC) was sent on 2 Feb
    (["SENTBEFORE", "3-Feb-2024"], ["greeting", "report"]),
    (["SENTBEFORE", "2-Feb-2024"], ["report"]),
    (["SENTON", "2-Feb-2024"], ["greeting"]),
    (["SENTON", "3-Feb-2024"], []),
    (["SENTSINCE", "2-Feb-2024"], ["greeting", "reply"]),
    (["SENTSINCE", "5-Feb-2024"], ["reply"]),
    (["SENTSINCE", "1-Jan-0001"], ["greeting", "reply", "report"]),
    (["SENTBEFORE", "31-Dec-9999"], ["greeting", "reply", "report"]),
    (["NOT", "SENTON", "2-Feb-2024"], ["plain", "reply", "report"]),
    (["KEYWORD", "\\Seen"], []),  # not a keyword: nothing, as in Dovecot
    (["UNKEYWORD", "\\Seen"], ALL),
    (["OLDER", "1"], ALL),
    (["YOUNGER", "60"], []),
    (["NOT", "SEEN"], ["greeting", "reply"]),
    (["NOT", "NOT", "SEEN"], ["plain", "report"]),
    (["OR", "FLAGGED", "DRAFT"], ["greeting", "reply"]),
    (["OR", "OR", "FLAGGED", "DRAFT", "SEEN"], ALL),
    ([["SEEN", "KEYWORD", "Work"]], ["plain"]),
    (["SEEN", "KEYWORD", "Work"], ["plain"]),
    (["NOT", ["SEEN", "KEYWORD", "Work"]], ["greeting", "reply", "report"]),
    (["OR", "HEADER", "X-Custom", "sky", "FLAGGED"], ["greeting", "report"]),
    (["NOT", "HEADER", "X-Custom", "sky"], ["greeting", "plain", "reply"]),
    (["CHARSET", "UTF-8", "SUBJECT", "grüße".encode()], ["greeting"]),
])
async def test_each_key(box: Box, args: list[object], expected: list[str]) -> None:
    assert await box.search(*args) == expected


async def test_sizes(box: Box) -> None:
    sizes = {name: len(raw) for name, (raw, _, _) in MESSAGES.items()}
    big = sizes["reply"]
    assert await box.search("LARGER", str(big - 1)) == ["reply"]
    assert await box.search("LARGER", str(big)) == []
    assert await box.search("SMALLER", str(sizes["plain"] + 1)) == ["plain"]
    assert await box.search("SMALLER", str(sizes["plain"])) == []


async def test_sequence_sets_uids_and_saved(box: Box) -> None:
    uid = box.uid
    assert await box.search("1") == ["report"]
    assert await box.search("2:3") == ["greeting", "reply"]
    assert await box.search("*") == ["plain"]
    assert await box.search("3:*", "SEEN") == ["plain"]
    assert await box.search("99") == []
    assert await box.search("UID", f"{uid['greeting']},{uid['plain']}") == ["greeting", "plain"]
    assert await box.search("UID", "*") == ["plain"]
    assert await box.search("UID", f"{uid['plain'] + 1}:*") == ["plain"]  # n:* with n > max
    assert await box.search("$") == ["plain"]
    assert await box.search("UID", "$") == ["plain"]
    assert await box.search("NOT", "$") == ["greeting", "reply", "report"]
    assert await box.search("OR", "1", "$") == ["plain", "report"]


async def test_view_limits_results(box: Box) -> None:
    """A message the session has not been told about yet is not in the answer."""
    view = SelectedView(INBOX, [box.uid["report"], box.uid["greeting"]])
    result = await run_search(box.mbox, view, parse_search(["ALL"]))
    assert result.uids == [box.uid["report"], box.uid["greeting"]]
    result = await run_search(box.mbox, view, parse_search(["NOT", "SEEN"]))
    assert result.uids == [box.uid["greeting"]]


async def test_modseq(box: Box) -> None:
    listing = {item.uid: item.modseq for item in await box.mbox.read(imap.listing, INBOX)}
    top = max(listing.values())
    result = await box.result("MODSEQ", str(top))
    assert result.uids == [u for u, m in listing.items() if m >= top]
    assert result.highest_modseq == top
    result = await box.result("MODSEQ", b"/flags/\\draft", "all", "1")
    assert result.uids == sorted(listing) and result.highest_modseq == top
    query = parse_search(["MODSEQ", "1", "SEEN"])
    result = await run_search(box.mbox, box.view, query)
    line = search_response("a", result, query, box.view, uid=False)
    highest = max(listing[u] for u in result.uids)
    assert line == [f"* SEARCH 1 4 (MODSEQ {highest})\r\n".encode()]
    items = await box.mbox.read(imap.listing, INBOX)
    in_memory = replace(box.view, flags={item.uid: item for item in items})
    again = await run_search(box.mbox, in_memory, query)
    assert again.uids == result.uids and again.modseqs == result.modseqs


async def test_esearch_and_save(box: Box) -> None:
    uid = box.uid
    query = parse_search(["RETURN", ["MIN", "MAX", "COUNT", "ALL", "SAVE"], "UNSEEN"])
    result = await run_search(box.mbox, box.view, query)
    assert result.saved == sorted([uid["greeting"], uid["reply"]])
    lines = search_response("A1", result, query, box.view, uid=True)
    assert lines == [(f'* ESEARCH (TAG "A1") UID MIN {uid["greeting"]} MAX {uid["reply"]} '
                      f'COUNT 2 ALL {uid["greeting"]}:{uid["reply"]}\r\n').encode()]
    assert search_response("A1", result, query, box.view, uid=False) == [
        b'* ESEARCH (TAG "A1") MIN 2 MAX 3 COUNT 2 ALL 2:3\r\n']
    query = parse_search(["RETURN", ["SAVE", "MIN"], "UNSEEN"])
    result = await run_search(box.mbox, box.view, query)
    assert result.saved == [uid["greeting"]]
    query = parse_search(["RETURN", ["SAVE"], "UNSEEN"])
    result = await run_search(box.mbox, box.view, query)
    assert search_response("A1", result, query, box.view, uid=True) == []
    assert result.saved == sorted([uid["greeting"], uid["reply"]])
    query = parse_search(["RETURN", [], "KEYWORD", "none"])
    result = await run_search(box.mbox, box.view, query)
    assert search_response("A1", result, query, box.view, uid=True) == [
        b'* ESEARCH (TAG "A1") UID\r\n']
    query = parse_search(["RETURN", ["COUNT"], "KEYWORD", "none"])
    result = await run_search(box.mbox, box.view, query)
    assert search_response("A1", result, query, box.view, uid=True) == [
        b'* ESEARCH (TAG "A1") UID COUNT 0\r\n']


async def test_plain_search_response_and_rev2(box: Box) -> None:
    query = parse_search(["SEEN"])
    result = await run_search(box.mbox, box.view, query)
    assert search_response("t", result, query, box.view, uid=False) == [b"* SEARCH 1 4\r\n"]
    uids = " ".join(str(u) for u in result.uids)
    assert search_response("t", result, query, box.view, uid=True) == [
        f"* SEARCH {uids}\r\n".encode()]
    assert search_response("t", result, query, box.view, uid=False, esearch=True) == [
        b'* ESEARCH (TAG "t") ALL 1,4\r\n']
    query.returns = ()  # what a session does for IMAP4rev2: RETURN () is ALL
    assert search_response("t", result, query, box.view, uid=True) == [
        f'* ESEARCH (TAG "t") UID ALL {format_set(result.uids)}\r\n'.encode()]
    query = parse_search(["SEEN"])
    empty = await run_search(box.mbox, box.view, parse_search(["KEYWORD", "none"]))
    assert search_response("t", empty, query, box.view, uid=False) == [b"* SEARCH\r\n"]


async def test_many_keys_beyond_one_sql_statement(box: Box) -> None:
    """1,000 keys (an OR chain of the deepest kind) still answer, split across queries."""
    args: list[object] = []
    for _ in range(249):
        args += ["OR", "FROM", "nobody-at-all"]
    args += ["SUBJECT", "grüße".encode()]
    assert await box.search(*args) == ["greeting"]
    assert await box.search(*(["SUBJECT", b"e"] * 300)) == ["greeting", "reply", "report"]


async def test_deep_not_chain_within_limit(box: Box) -> None:
    args: list[object] = ["NOT"] * 63 + ["SEEN"]
    assert await box.search(*args) == ["greeting", "reply"]
    nested: list[object] = ["SEEN"]
    for _ in range(30):
        nested = ["OR", "DRAFT", nested]
    assert await box.search(*nested) == ["plain", "reply", "report"]


EDGE_ATOMS = ["ALL", "NOT", "OR", "SEEN", "UID", "SUBJECT", "HEADER", "X-Custom", "BEFORE",
              "SENTON", "LARGER", "SMALLER", "MODSEQ", "OLDER", "YOUNGER", "KEYWORD", "1:*",
              "$", "*", "4294967295", "0", "1", "9223372036854775807", "1-Jan-0001",
              "31-Dec-9999", "29-Feb-2024", "\\Seen", "$Forwarded", "FROM", "TEXT", "BODY"]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.sampled_from(EDGE_ATOMS), st.binary(max_size=4),
                          st.lists(st.sampled_from(EDGE_ATOMS), max_size=3)), max_size=8))
async def test_whatever_parses_also_runs(box: Box, args: list[object]) -> None:
    try:
        query = parse_search(args)
    except SearchSyntaxError:
        return
    result = await run_search(box.mbox, box.view, query)
    assert set(result.uids) <= set(box.view.uids)
    assert search_response("t", result, query, box.view, uid=True)[0].startswith(b"* SEARCH")


async def test_imap_columns_of_the_contents_table(box: Box) -> None:
    """The message-row columns IMAP adds to the restriction domain: values, sort, filter."""
    from gateway.store import tables
    from gateway.store.restriction_domains import (
        PidTagGatewayImapDeleted,
        PidTagGatewayModseq,
        PidTagGatewayRead,
        PidTagGatewayRfc822Size,
    )
    from gateway.store.restrictions import Property

    uid = T.PidTagInternetArticleNumber
    columns = [uid, PidTagGatewayModseq, PidTagGatewayRfc822Size, PidTagGatewayRead,
               PidTagGatewayImapDeleted]
    table = await tables.contents_table(box.mbox, INBOX, columns,
                                        [(PidTagGatewayRfc822Size, True)])
    listing = {item.uid: item for item in await box.mbox.read(imap.listing, INBOX)}
    assert [row[uid] for row in table.rows] == sorted(
        listing, key=lambda u: listing[u].size, reverse=True)
    for row in table.rows:
        item = listing[row[uid]]
        assert row[PidTagGatewayModseq] == item.modseq
        assert row[PidTagGatewayRfc822Size] == item.size
        assert row[PidTagGatewayRead] is ("\\Seen" in item.flags)
        assert row[PidTagGatewayImapDeleted] is ("\\Deleted" in item.flags)
    deleted = await tables.contents_table(box.mbox, INBOX, [uid], restriction=Property(
        "eq", PidTagGatewayImapDeleted, True))
    assert [row[uid] for row in deleted.rows] == [box.uid["reply"]]
