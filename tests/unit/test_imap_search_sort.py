"""IMAP SORT (RFC 5256, RFC 5957): base subjects, parsing, and orders against a real store."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.convert import mime_in
from gateway.store import Mailbox, Private, imap
from gateway.store import tags as T
from gateway.store.restriction_eval import fold
from plugins.imap.search import BadCharset, SearchSyntaxError, SelectedView
from plugins.imap.sort import CRITERIA, base_subject, parse_sort, run_sort, sort_response

INBOX = int(Private.INBOX)


@pytest.mark.parametrize(("subject", "base"), [
    ("Hello", "Hello"),
    ("Re: Hello", "Hello"),
    ("RE: re: Fwd: Hello", "Hello"),
    ("Re[2]: Hello", "Hello"),
    ("Re [2] : Hello", "Hello"),
    ("Fw: Hello", "Hello"),
    ("[list] Re: Hello", "Hello"),
    ("[list] [other] Hello", "Hello"),
    ("[list]", "[list]"),  # a blob is kept when nothing would remain
    ("Hello (fwd)", "Hello"),
    ("Hello (FWD) (fwd)  ", "Hello"),
    ("[Fwd: Re: Hello]", "Hello"),
    ("Re: [Fwd: [list] Hello (fwd)]", "Hello"),
    ("  Hello \t  world  ", "Hello world"),
    ("Réponse: x", "Réponse: x"),
    ("Read: x", "Read: x"),
    ("", ""),
    ("Re:", ""),
])
def test_base_subject(subject: str, base: str) -> None:
    assert base_subject(subject) == base


def test_parse_sort() -> None:
    query = parse_sort([["REVERSE", "date", "SUBJECT"], "UTF-8", "UNSEEN"])
    assert query.criteria == (("DATE", True), ("SUBJECT", False))
    assert query.search.charset == "UTF-8"
    query = parse_sort([["DISPLAYFROM"], b"us-ascii", "ALL"])
    assert query.criteria == (("DISPLAYFROM", False),)


@pytest.mark.parametrize(("args", "reason"), [
    ([], "parenthesised list of sort criteria"),
    (["DATE", "UTF-8", "ALL"], "parenthesised list"),
    ([[], "UTF-8", "ALL"], "at least one sort criterion"),
    ([["BOGUS"], "UTF-8", "ALL"], "unknown sort criterion 'BOGUS'"),
    ([["REVERSE"], "UTF-8", "ALL"], "REVERSE must be followed"),
    ([["REVERSE", "REVERSE", "DATE"], "UTF-8", "ALL"], "REVERSE REVERSE"),
    ([["DATE"]], "needs a charset"),
    ([["DATE"], "UTF-8"], "empty"),
    ([["DATE"], "UTF-8", "BOGUS"], "unknown search key"),
])
def test_parse_sort_errors(args: list[object], reason: str) -> None:
    with pytest.raises(SearchSyntaxError, match=reason):
        parse_sort(args)


def test_sort_bad_charset() -> None:
    with pytest.raises(BadCharset):
        parse_sort([["DATE"], "KOI8-R", "ALL"])


# -- against a store ---------------------------------------------------------------------------
PEOPLE = [("Zoe Adams", "zoe@example.org"), ("", "adam@example.net"),
          ("bob", "Bob@example.com"), ("Émile", "emile@example.fr")]
SUBJECTS = ["Re: Lunch", "lunch", "[team] Budget", "Fwd: budget (fwd)", "Agenda", None,
            "re: AGENDA"]


def make(rng: random.Random, i: int) -> tuple[bytes, dict[str, object]]:
    info: dict[str, object] = {}
    headers = []
    sender = rng.choice([*PEOPLE, None])
    if sender:
        headers.append(f"From: {sender[0]} <{sender[1]}>" if sender[0] else f"From: {sender[1]}")
    info["from"] = sender
    to = rng.sample(PEOPLE, rng.randint(0, 2))
    cc = rng.sample(PEOPLE, rng.randint(0, 1))
    for name, people in (("To", to), ("Cc", cc)):
        if people:
            headers.append(f"{name}: " + ", ".join(
                f"{p[0]} <{p[1]}>" if p[0] else p[1] for p in people))
    info["to"], info["cc"] = to, cc
    subject = rng.choice(SUBJECTS)
    if subject is not None:
        headers.append(f"Subject: {subject}")
    info["subject"] = subject or ""
    sent = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(0, 200, 7))
    if rng.random() < 0.8:
        headers.append("Date: " + sent.strftime("%a, %d %b %Y %H:%M:%S +0000"))
        info["date"] = sent
    else:
        info["date"] = None
    info["arrival"] = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(0, 200, 5))
    body = "x" * rng.choice([10, 10, 200, 3000])
    raw = ("\r\n".join(headers) + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
           ).encode()
    info["size"] = len(raw)
    return raw, info


@pytest.fixture
async def sorted_box(mbox: Mailbox) -> tuple[Mailbox, SelectedView, list[dict[str, object]]]:
    rng = random.Random(5256)
    infos = []
    for i in range(14):
        raw, info = make(rng, i)
        message = mime_in.parse(raw)
        message.props[T.PidTagMessageDeliveryTime] = info["arrival"]
        mid = await mbox.create_message(INBOX, message)
        info["mid"] = mid
        infos.append(info)
    listing = {item.message_id: item.uid for item in await mbox.read(imap.listing, INBOX)}
    for info in infos:
        info["uid"] = listing[info["mid"]]  # type: ignore[index]
    view = SelectedView(INBOX, sorted(listing.values()))
    return mbox, view, infos


def local(address: str) -> str:
    return fold(address.rpartition("@")[0])


def model_key(info: dict[str, object], name: str) -> object:
    sender = info["from"]
    if name == "ARRIVAL":
        return info["arrival"]
    if name == "DATE":
        return info["date"] or info["arrival"]
    if name == "SIZE":
        return info["size"]
    if name == "SUBJECT":
        return fold(base_subject(str(info["subject"])))
    if name == "FROM":
        return local(sender[1]) if sender else ""  # type: ignore[index]
    if name == "DISPLAYFROM":
        return fold(sender[0] or sender[1]) if sender else ""  # type: ignore[index]
    people = info["cc" if name == "CC" else "to"]
    if not people:
        return ""
    first = people[0]  # type: ignore[index]
    return fold(first[0] or first[1]) if name == "DISPLAYTO" else local(first[1])


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(criteria=st.lists(st.tuples(st.sampled_from(CRITERIA), st.booleans()), min_size=1,
                         max_size=3))
async def test_sort_matches_model(sorted_box: tuple[Mailbox, SelectedView, list[dict]],
                                  criteria: list[tuple[str, bool]]) -> None:
    mbox, view, infos = sorted_box
    tokens: list[object] = []
    for name, reverse in criteria:
        tokens += ["REVERSE", name] if reverse else [name]
    got = await run_sort(mbox, view, parse_sort([tokens, "UTF-8", "ALL"]))
    expected = sorted(infos, key=lambda i: i["uid"])
    for name, reverse in reversed(criteria):
        expected.sort(key=lambda i, n=name: model_key(i, n), reverse=reverse)
    assert got == [i["uid"] for i in expected]


async def test_sort_with_search_and_response(sorted_box: tuple) -> None:
    mbox, view, infos = sorted_box
    got = await run_sort(mbox, view, parse_sort([["REVERSE", "SIZE"], "UTF-8", "SUBJECT",
                                                 "lunch"]))
    lunch = [i for i in infos if "lunch" in str(i["subject"]).lower()]
    assert sorted(got) == sorted(i["uid"] for i in lunch)
    sizes = [next(i["size"] for i in infos if i["uid"] == u) for u in got]
    assert sizes == sorted(sizes, reverse=True)
    line = sort_response(got, view, uid=True)
    assert line == ("* SORT " + " ".join(map(str, got)) + "\r\n").encode()
    seqs = [view.uids.index(u) + 1 for u in got]
    assert sort_response(got, view, uid=False) == (
        "* SORT " + " ".join(map(str, seqs)) + "\r\n").encode()
    empty = await run_sort(mbox, view, parse_sort([["DATE"], "UTF-8", "SUBJECT", "nothing"]))
    assert empty == [] and sort_response(empty, view, uid=True) == b"* SORT\r\n"
