"""IMAP SEARCH against a brute-force Python evaluation of the same messages (hypothesis).

A corpus of messages drawn from small vocabularies (so that keys hit often) is
stored once; hypothesis then draws search programs of every key kind, nested
with NOT, OR and parentheses, and each answer must equal what a plain Python
reading of the corpus says.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.convert import mime_in
from gateway.store import Mailbox, Private, imap
from gateway.store import tags as T
from gateway.store.imap import MessageFlags
from gateway.store.restriction_eval import fold
from plugins.imap.search import SelectedView, parse_search, run_search

INBOX = int(Private.INBOX)
PEOPLE = [("Anna Berg", "anna@example.org"), ("", "bert@example.net"),
          ("Céline Dupont", "celine@exemple.fr"), ("Dirk", "dirk@example.org")]
WORDS = ["alpha", "Beta", "GAMMA", "délta", "straße", "Report", "notes"]
NEEDLES = ["alp", "beta", "gamma", "DÉLTA", "strasse", "STRASSE", "port", "es", "a",
           "anna", "BERG", "example.org", "exemple", "@", "dirk@", "zzz", "x-tag", "subject"]
DAYS = [date(2024, 1, d) for d in (1, 2, 3, 5, 8)]
FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft", "\\Deleted", "$Forwarded", "Work",
         "Home"]
COUNT = 16


@dataclass
class Model:
    uid: int = 0
    seq: int = 0
    sender: tuple[str, str] | None = None
    recipients: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    subject: str | None = None
    body: str = ""
    headers: str = ""
    x_tag: str | None = None
    sent: datetime | None = None
    internal: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    flags: set[str] = field(default_factory=set)
    size: int = 0
    modseq: int = 0


def person(box: tuple[str, str]) -> str:
    name, address = box
    return f'"{name}" <{address}>' if name else address


def build(rng: random.Random) -> tuple[bytes, Model]:
    model = Model()
    headers: list[tuple[str, str]] = []
    if rng.random() < 0.9:
        model.sender = rng.choice(PEOPLE)
        headers.append(("From", person(model.sender)))
    for kind in ("To", "Cc", "Bcc"):
        chosen = rng.sample(PEOPLE, rng.randint(0, 2))
        model.recipients[kind.upper()] = chosen
        if chosen:
            headers.append((kind, ", ".join(person(p) for p in chosen)))
    if rng.random() < 0.85:
        model.subject = " ".join(rng.choices(WORDS, k=rng.randint(1, 3)))
        headers.append(("Subject", model.subject))
    if rng.random() < 0.8:
        # local time in a random zone: SENT* go by this date, not by the UTC one
        zone = timezone(timedelta(minutes=rng.choice([-660, -480, -300, 0, 330, 780])))
        model.sent = datetime.combine(rng.choice(DAYS), datetime.min.time(), zone) + timedelta(
            hours=rng.randrange(24), minutes=rng.randrange(60))
        headers.append(("Date", model.sent.strftime("%a, %d %b %Y %H:%M:%S %z")))
    if rng.random() < 0.5:
        model.x_tag = rng.choice(WORDS)
        headers.append(("X-Tag", model.x_tag))
    model.body = " ".join(rng.choices(WORDS, k=rng.randint(0, 12)))
    model.internal = datetime.combine(rng.choice(DAYS), datetime.min.time(), UTC) + timedelta(
        seconds=rng.randrange(86400))
    model.flags = {flag for flag in FLAGS if rng.random() < 0.35}
    block = "".join(f"{name}: {value}\r\n" for name, value in headers)
    model.headers = block
    raw = (block + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\n" + model.body + "\r\n").encode("utf-8")
    model.size = len(raw)
    return raw, model


@dataclass
class Corpus:
    mbox: Mailbox
    view: SelectedView
    models: list[Model]


@pytest.fixture
async def corpus(mbox: Mailbox) -> Corpus:
    rng = random.Random(5256)
    models = []
    for _ in range(COUNT):
        raw, model = build(rng)
        message = mime_in.parse(raw)
        message.props[T.PidTagMessageDeliveryTime] = model.internal
        mid = await mbox.create_message(INBOX, message)
        await mbox.write(imap.store_flags, INBOX, [mid], sorted(model.flags), "set")
        model.uid = mid  # replaced by the UID below
        models.append(model)
    listing = {item.message_id: item for item in await mbox.read(imap.listing, INBOX)}
    for model in models:
        item = listing[model.uid]
        model.uid, model.modseq = item.uid, item.modseq
    models.sort(key=lambda m: m.uid)
    for seq, model in enumerate(models, 1):
        model.seq = seq
    uids = [m.uid for m in models]
    view = SelectedView(INBOX, uids, saved=uids[1::3], recent=uids[::4])
    return Corpus(mbox, view, models)


class KnownFlags(Mapping[int, MessageFlags]):
    """A read-only view like the one a selected mailbox hands over (not a dict)."""

    def __init__(self, items: dict[int, MessageFlags]) -> None:
        self.items_by_uid = items

    def __getitem__(self, uid: int) -> MessageFlags:
        return self.items_by_uid[uid]

    def __iter__(self) -> Iterator[int]:
        return iter(self.items_by_uid)

    def __len__(self) -> int:
        return len(self.items_by_uid)


# -- the brute-force side ----------------------------------------------------------------------
Predicate = Callable[[Model, Corpus], bool]


def has(text: str | None, needle: str) -> bool:
    return text is not None and fold(needle) in fold(text)


def people_match(people: list[tuple[str, str]], needle: str) -> bool:
    return any(has(name or address, needle) or has(address, needle) for name, address in people)


def text_predicate(key: str, needle: str) -> Predicate:
    def check(m: Model, c: Corpus) -> bool:
        if key == "FROM":
            return m.sender is not None and people_match([m.sender], needle)
        if key in ("TO", "CC", "BCC"):
            return people_match(m.recipients[key], needle)
        if key == "SUBJECT":
            return has(m.subject, needle)
        if key == "BODY":
            return has(m.body, needle)
        return has(m.headers, needle) or has(m.subject, needle) or has(m.body, needle)
    return check


def date_predicate(key: str, day: date) -> Predicate:
    def check(m: Model, c: Corpus) -> bool:
        if key.startswith("SENT"):
            if m.sent is None:
                return False
            found = m.sent.date()  # the header's own date, its zone disregarded
        else:
            found = m.internal.astimezone(UTC).date()
        op = key.removeprefix("SENT")
        return found < day if op == "BEFORE" else found == day if op == "ON" else found >= day
    return check


def flag_predicate(flag: str) -> Predicate:
    return lambda m, c: any(f.lower() == flag.lower() for f in m.flags)


def seq_set(text: str, largest: int) -> set[int]:
    found: set[int] = set()
    for part in text.split(","):
        ends = [largest if v == "*" else int(v) for v in part.split(":")]
        found.update(range(min(ends), max(ends) + 1))
    return found


# -- the search programs -----------------------------------------------------------------------
Drawn = tuple[list[Any], Predicate]
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def imap_date(day: date) -> str:
    return f"{day.day}-{MONTHS[day.month - 1]}-{day.year}"


flag_keys = st.sampled_from([
    (["SEEN"], "\\Seen", True), (["UNSEEN"], "\\Seen", False),
    (["FLAGGED"], "\\Flagged", True), (["UNFLAGGED"], "\\Flagged", False),
    (["ANSWERED"], "\\Answered", True), (["UNANSWERED"], "\\Answered", False),
    (["DRAFT"], "\\Draft", True), (["UNDRAFT"], "\\Draft", False),
    (["DELETED"], "\\Deleted", True), (["UNDELETED"], "\\Deleted", False),
    (["KEYWORD", "Work"], "Work", True), (["KEYWORD", "home"], "Home", True),
    (["UNKEYWORD", "Work"], "Work", False), (["KEYWORD", "$Forwarded"], "$Forwarded", True),
]).map(lambda t: (t[0], (lambda m, c, f=t[1], want=t[2]: flag_predicate(f)(m, c) == want)))

text_keys = st.tuples(st.sampled_from(["FROM", "TO", "CC", "BCC", "SUBJECT", "BODY", "TEXT"]),
                      st.sampled_from(NEEDLES), st.booleans()).map(
    lambda t: ([t[0], t[1].encode() if t[2] else t[1]], text_predicate(t[0], t[1])))

header_keys = st.sampled_from([*WORDS, "", "ALP", "zzz"]).map(
    lambda needle: (["HEADER", "x-tag", needle.encode()],
                    lambda m, c, n=needle: m.x_tag is not None and has(m.x_tag, n)))

date_keys = st.tuples(
    st.sampled_from(["BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"]),
    st.sampled_from([*DAYS, date(2024, 1, 4), date(2023, 12, 31)])).map(
    lambda t: ([t[0], imap_date(t[1])], date_predicate(t[0], t[1])))

size_keys = st.tuples(st.booleans(), st.integers(150, 400)).map(
    lambda t: (["LARGER" if t[0] else "SMALLER", str(t[1])],
               lambda m, c, larger=t[0], n=t[1]: m.size > n if larger else m.size < n))

set_text = st.lists(st.tuples(st.sampled_from(["*", *map(str, range(1, COUNT + 3))]),
                              st.sampled_from(["", "*", *map(str, range(1, COUNT + 3))])),
                    min_size=1, max_size=3).map(
    lambda parts: ",".join(a if not b else f"{a}:{b}" for a, b in parts))

seq_keys = set_text.map(lambda text: (
    [text], lambda m, c, t=text: m.seq in seq_set(t, len(c.models))))

uid_keys = set_text.map(lambda text: (text, text)).map(lambda t: (
    ["UID", "UIDS:" + t[0]],
    lambda m, c, text=t[0]: m.seq in seq_set(text, len(c.models))))

other_keys = st.sampled_from([
    (["ALL"], lambda m, c: True),
    (["RECENT"], lambda m, c: m.uid in c.view.recent),
    (["NEW"], lambda m, c: m.uid in c.view.recent and "\\Seen" not in m.flags),
    (["OLD"], lambda m, c: m.uid not in c.view.recent),
    (["$"], lambda m, c: m.uid in c.view.saved),
    (["UID", "$"], lambda m, c: m.uid in c.view.saved),
])

def modseq_at(index: int, corpus: Corpus) -> int:
    """One of the corpus's MODSEQ values, picked by an index 0..60."""
    modseqs = sorted({m.modseq for m in corpus.models})
    return modseqs[index * (len(modseqs) - 1) // 60]


modseq_keys = st.integers(0, 60).map(
    lambda n: (["MODSEQ", "MODSEQ:" + str(n)],
               lambda m, c, n=n: m.modseq >= modseq_at(n, c)))

leaves = st.one_of(flag_keys, text_keys, header_keys, date_keys, size_keys, seq_keys,
                   uid_keys, other_keys, modseq_keys)


def combine(children: st.SearchStrategy[Drawn]) -> st.SearchStrategy[Drawn]:
    negate = children.map(lambda d: (["NOT", *d[0]], lambda m, c, p=d[1]: not p(m, c)))
    either = st.tuples(children, children).map(lambda t: (
        ["OR", *t[0][0], *t[1][0]], lambda m, c, a=t[0][1], b=t[1][1]: a(m, c) or b(m, c)))
    group = st.lists(children, min_size=1, max_size=3).map(lambda ds: (
        [[arg for d in ds for arg in d[0]]],
        lambda m, c, ps=[d[1] for d in ds]: all(p(m, c) for p in ps)))
    return st.one_of(negate, either, group)


programs = st.lists(st.recursive(leaves, combine, max_leaves=8), min_size=1, max_size=3)


def resolve(args: list[Any], corpus: Corpus) -> list[Any]:
    """Stand-ins the strategies cannot know: UIDs for "UIDS:" sets, MODSEQ values."""
    out: list[Any] = []
    for arg in args:
        if isinstance(arg, list):
            out.append(resolve(arg, corpus))
        elif isinstance(arg, str) and arg.startswith("UIDS:"):
            seqs = sorted(seq_set(arg[5:], len(corpus.models)))
            uids = [corpus.view.uids[s - 1] for s in seqs if s <= len(corpus.models)]
            out.append(",".join(map(str, uids)) or str(corpus.view.uids[-1] + 100))
        elif isinstance(arg, str) and arg.startswith("MODSEQ:"):
            out.append(str(modseq_at(int(arg[7:]), corpus)))
        else:
            out.append(arg)
    return out


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                   HealthCheck.too_slow])
@given(drawn=programs)
async def test_search_matches_brute_force(corpus: Corpus, drawn: list[Drawn]) -> None:
    args = resolve([arg for d in drawn for arg in d[0]], corpus)
    predicates = [d[1] for d in drawn]
    expected = [m.uid for m in corpus.models if all(p(m, corpus) for p in predicates)]
    result = await run_search(corpus.mbox, corpus.view, parse_search(args))
    assert result.uids == expected, args
    listing = await corpus.mbox.read(imap.listing, INBOX)
    in_memory = replace(corpus.view, flags=KnownFlags({item.uid: item for item in listing}))
    result = await run_search(corpus.mbox, in_memory, parse_search(args))
    assert result.uids == expected, ("flags from the view", args)
