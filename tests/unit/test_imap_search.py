"""IMAP SEARCH parsing: every key, RETURN, CHARSET, MODSEQ, and bad input with its reason."""

from __future__ import annotations

import time
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugins.imap.search import (
    MAX_DEPTH,
    MAX_KEYS,
    AllKey,
    AndKey,
    BadCharset,
    DateKey,
    FlagKey,
    HeaderKey,
    ModseqKey,
    NotKey,
    OrKey,
    RecentKey,
    SearchSyntaxError,
    SetKey,
    SizeKey,
    TextKey,
    WithinKey,
    header_values,
    parse_search,
)


def key(*args: object) -> object:
    return parse_search(list(args)).key


@pytest.mark.parametrize(("name", "flag", "negated"), [
    ("ANSWERED", "\\Answered", False), ("UNANSWERED", "\\Answered", True),
    ("DELETED", "\\Deleted", False), ("UNDELETED", "\\Deleted", True),
    ("DRAFT", "\\Draft", False), ("UNDRAFT", "\\Draft", True),
    ("FLAGGED", "\\Flagged", False), ("UNFLAGGED", "\\Flagged", True),
    ("SEEN", "\\Seen", False), ("UNSEEN", "\\Seen", True),
])
def test_flag_keys_any_case(name: str, flag: str, negated: bool) -> None:
    expected = NotKey(FlagKey(flag)) if negated else FlagKey(flag)
    assert key(name) == expected
    assert key(name.lower()) == expected
    assert key(name.capitalize()) == expected


def test_keys_without_arguments() -> None:
    assert key("ALL") == AllKey()
    assert key("RECENT") == RecentKey()
    assert key("NEW") == AndKey((RecentKey(), NotKey(FlagKey("\\Seen"))))
    assert key("old") == NotKey(RecentKey())


@pytest.mark.parametrize("name", ["BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"])
def test_text_keys_take_atoms_strings_and_nil(name: str) -> None:
    assert key(name, "word") == TextKey(name, "word")
    assert key(name.lower(), "Grüße".encode()) == TextKey(name, "Grüße")
    assert key(name, b"") == TextKey(name, "")
    assert key(name, None) == TextKey(name, "NIL")


def test_keyword_header_sizes_within() -> None:
    assert key("KEYWORD", "$Label1") == FlagKey("$Label1", keyword=True)
    assert key("UNKEYWORD", "Work") == NotKey(FlagKey("Work", keyword=True))
    assert key("HEADER", "X-Spam", b"yes") == HeaderKey("X-Spam", "yes")
    assert key("HEADER", b"Message-ID", b"") == HeaderKey("Message-ID", "")
    assert key("LARGER", "1000") == SizeKey(True, 1000)
    assert key("SMALLER", "0") == SizeKey(False, 0)
    assert key("LARGER", str(2**63 - 1)) == SizeKey(True, 2**63 - 1)
    assert key("OLDER", "60") == WithinKey(True, 60)
    assert key("YOUNGER", "3600") == WithinKey(False, 3600)


@pytest.mark.parametrize(("name", "sent", "op"), [
    ("BEFORE", False, "before"), ("ON", False, "on"), ("SINCE", False, "since"),
    ("SENTBEFORE", True, "before"), ("SENTON", True, "on"), ("SENTSINCE", True, "since"),
])
def test_date_keys(name: str, sent: bool, op: str) -> None:
    assert key(name, "1-Feb-1994") == DateKey(sent, op, date(1994, 2, 1))
    assert key(name, b"29-feb-2024") == DateKey(sent, op, date(2024, 2, 29))
    assert key(name, "01-DEC-2000") == DateKey(sent, op, date(2000, 12, 1))


def test_sequence_sets_uid_and_saved() -> None:
    found = key("1:3,5")
    assert isinstance(found, SetKey) and not found.uid
    assert found.seqset.resolve(10) == [(1, 3), (5, 5)]
    found = key("UID", "4:*")
    assert isinstance(found, SetKey) and found.uid
    assert key("*") == key("*")
    query = parse_search(["$"])
    assert query.uses_saved
    query = parse_search(["UID", "$", "SEEN"])
    assert query.uses_saved
    assert not parse_search(["SEEN"]).uses_saved


def test_not_or_groups_flatten() -> None:
    assert key("NOT", "SEEN") == NotKey(FlagKey("\\Seen"))
    assert key("NOT", "NOT", "SEEN") == FlagKey("\\Seen")
    assert key("NOT", "NOT", "NOT", "SEEN") == NotKey(FlagKey("\\Seen"))
    assert key("OR", "SEEN", "DRAFT") == OrKey((FlagKey("\\Seen"), FlagKey("\\Draft")))
    three = OrKey((FlagKey("\\Seen"), FlagKey("\\Draft"), FlagKey("\\Flagged")))
    assert key("OR", "OR", "SEEN", "DRAFT", "FLAGGED") == three
    assert key("OR", "SEEN", "OR", "DRAFT", "FLAGGED") == three
    assert key("OR", "SEEN", ["OR", "DRAFT", "FLAGGED"]) == three
    assert key(["SEEN", ["DRAFT"]], "FLAGGED") == AndKey(
        (FlagKey("\\Seen"), FlagKey("\\Draft"), FlagKey("\\Flagged")))
    assert key("SEEN", "TO", "x") == AndKey((FlagKey("\\Seen"), TextKey("TO", "x")))


def test_return_options() -> None:
    assert parse_search(["SEEN"]).returns is None
    assert parse_search(["RETURN", [], "SEEN"]).returns == ("ALL",)
    assert parse_search(["return", ["min", "MAX", "Count", "ALL", "save", "MIN"],
                         "SEEN"]).returns == ("MIN", "MAX", "COUNT", "ALL", "SAVE")


def test_charset() -> None:
    assert parse_search(["CHARSET", "UTF-8", "SEEN"]).charset == "UTF-8"
    assert parse_search(["charset", b"us-ascii", "SEEN"]).charset == "US-ASCII"
    assert parse_search(["RETURN", ["COUNT"], "CHARSET", "UTF-8", "ALL"]).returns == ("COUNT",)
    assert parse_search(["SEEN"], utf8=True).key == FlagKey("\\Seen")


def test_modseq() -> None:
    query = parse_search(["MODSEQ", "620162338"])
    assert query.uses_modseq and query.key == ModseqKey(620162338)
    query = parse_search(["MODSEQ", b"/flags/\\draft", "all", "620162338"])
    assert query.uses_modseq and query.key == ModseqKey(620162338)
    query = parse_search(["OR", "MODSEQ", b"/flags/$x", "priv", "5", "SEEN"])
    assert query.uses_modseq
    assert not parse_search(["SEEN"]).uses_modseq


@pytest.mark.parametrize(("args", "reason"), [
    ([], "empty"),
    (["FOO"], "unknown search key 'FOO'"),
    (["SEEN", "BOGUS"], "unknown search key 'BOGUS'"),
    ([b"SEEN"], "expected a search key, got 'SEEN'"),
    ([None], "expected a search key, got NIL"),
    ([[]], "empty"),
    (["SUBJECT"], "missing argument: SUBJECT needs a string"),
    (["FROM"], "missing argument"), (["TO"], "missing argument"),
    (["CC"], "missing argument"), (["BCC"], "missing argument"),
    (["BODY"], "missing argument"), (["TEXT"], "missing argument"),
    (["SUBJECT", ["a"]], "SUBJECT needs a string argument, not a parenthesised list"),
    (["SUBJECT", b"\xff\xfe"], "not valid UTF-8"),
    (["SUBJECT", b"a\x00b"], "NUL"),
    (["HEADER"], "missing argument"),
    (["HEADER", "X-Foo"], "missing argument: HEADER needs a string"),
    (["HEADER", b"X Foo", b"v"], "not a header field name"),
    (["HEADER", b"", b"v"], "not a header field name"),
    (["HEADER", b"X:Foo", b"v"], "not a header field name"),
    (["KEYWORD"], "missing argument: KEYWORD needs a flag keyword"),
    (["KEYWORD", b"Work"], "KEYWORD needs a flag keyword"),
    (["UNKEYWORD", ["x"]], "UNKEYWORD needs a flag keyword"),
    (["LARGER"], "missing argument: LARGER needs a number"),
    (["LARGER", "x"], "LARGER needs a number, not 'x'"),
    (["SMALLER", "-1"], "SMALLER needs a number"),
    (["SMALLER", "1.5"], "SMALLER needs a number"),
    (["LARGER", str(2**63)], "too large"),
    (["LARGER", "9" * 400], "LARGER needs a number"),
    (["OLDER", str(2**32)], "too large"),
    (["YOUNGER"], "missing argument"),
    (["BEFORE"], "missing argument: BEFORE needs a date"),
    (["BEFORE", "2024-02-01"], "BEFORE needs a date like 1-Feb-1994, not '2024-02-01'"),
    (["ON", "31-Feb-2024"], "not a date"),
    (["SINCE", "1-Foo-2024"], "needs a date"),
    (["SENTON", b"1-Feb-24"], "needs a date"),
    (["SENTSINCE", "123-Feb-2024"], "needs a date"),
    (["SENTBEFORE", "0-Feb-2024"], "not a date"),
    (["SINCE", ["1-Feb-2024"]], "needs a date"),
    (["NOT"], "missing argument: search key"),
    (["OR", "SEEN"], "missing argument: search key"),
    (["OR"], "missing argument"),
    (["UID"], "missing argument: UID needs a sequence set"),
    (["UID", b"1:2"], "UID needs a sequence set"),
    (["UID", "1:*:2"], "bad sequence set"),
    (["1,,2"], "bad sequence set"),
    (["0"], "bad sequence set"),
    (["4294967296"], "bad sequence set"),
    (["MODSEQ"], "missing argument: MODSEQ needs a number"),
    (["MODSEQ", "x"], "MODSEQ needs a number"),
    (["MODSEQ", b"/flags/x", "5"], "entry type must be priv, shared or all"),
    (["MODSEQ", b"/flags/x", "bogus", "5"], "entry type must be priv, shared or all"),
    (["MODSEQ", b"/flags/x"], "needs an entry type"),
    (["RETURN"], "missing argument: RETURN"),
    (["RETURN", "MIN", "SEEN"], "RETURN needs a parenthesised list"),
    (["RETURN", ["PARTIAL"], "SEEN"], "unknown RETURN option 'PARTIAL'"),
    (["RETURN", [b"MIN"], "SEEN"], "unknown RETURN option"),
    (["RETURN", ["MIN"]], "empty"),
    (["CHARSET"], "missing argument: CHARSET"),
    (["CHARSET", ["UTF-8"], "SEEN"], "CHARSET needs a charset name"),
    (["CHARSET", "UTF-8"], "empty"),
])
def test_bad_input_has_a_reason(args: list[object], reason: str) -> None:
    with pytest.raises(SearchSyntaxError, match=_escaped(reason)):
        parse_search(args)


def _escaped(text: str) -> str:
    import re
    return re.escape(text)


def test_unknown_charset_is_bad_charset() -> None:
    with pytest.raises(BadCharset, match="ISO-8859-1"):
        parse_search(["CHARSET", "ISO-8859-1", "SUBJECT", b"x"])
    with pytest.raises(BadCharset):
        parse_search(["CHARSET", b"KOI8-R", "ALL"])
    assert issubclass(BadCharset, SearchSyntaxError)


def test_not_a_list() -> None:
    with pytest.raises(SearchSyntaxError):
        parse_search("SEEN")  # type: ignore[arg-type]


# -- hostile nesting and size ----------------------------------------------------------------
def _nested(depth: int) -> list[object]:
    inner: list[object] = ["SEEN"]
    for _ in range(depth):
        inner = [inner]
    return inner


def test_parenthesis_bomb_is_refused_quickly() -> None:
    started = time.perf_counter()
    with pytest.raises(SearchSyntaxError, match="nested deeper than"):
        parse_search(_nested(10_000))
    assert time.perf_counter() - started < 0.5
    assert parse_search(_nested(MAX_DEPTH - 1)).key == FlagKey("\\Seen")


def test_not_chain_bomb_is_refused_quickly() -> None:
    started = time.perf_counter()
    with pytest.raises(SearchSyntaxError, match=f"more than {MAX_KEYS} search keys"):
        parse_search(["NOT"] * 10_000 + ["SEEN"])
    with pytest.raises(SearchSyntaxError, match="more than"):
        parse_search(["OR"] * 10_000 + ["SEEN"] * 10_001)
    with pytest.raises(SearchSyntaxError, match="more than"):
        parse_search(["OR", "SEEN"] * 10_000 + ["SEEN"])
    with pytest.raises(SearchSyntaxError, match="more than"):
        parse_search(["SEEN"] * 100_000)
    assert time.perf_counter() - started < 1.0
    assert parse_search(["NOT"] * 999 + ["SEEN"]).key == NotKey(FlagKey("\\Seen"))


def test_not_inside_groups_counts_depth() -> None:
    args: list[object] = ["SEEN"]
    for _ in range(MAX_DEPTH + 5):
        args = ["NOT", args]
    with pytest.raises(SearchSyntaxError, match="nested deeper than"):
        parse_search(args)


def test_long_or_chains_of_real_clients_parse() -> None:
    right: list[object] = []
    for n in range(300):
        right += ["OR", "FROM", f"user{n}"]
    right += ["FROM", "last"]
    found = parse_search(right).key
    assert isinstance(found, OrKey) and len(found.children) == 301
    left = ["OR"] * 300 + [arg for n in range(301) for arg in ("TO", f"u{n}")]
    found = parse_search(left).key
    assert isinstance(found, OrKey) and len(found.children) == 301


def test_header_values_unfold_and_decode() -> None:
    block = ("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nX-List: one\r\n\ttwo\r\n"
             "x-list: three\r\nX-Listing: no\r\nBad line\r\n")
    assert header_values(block, "subject") == ["Grüße"]
    assert header_values(block, "x-list") == ["one\ttwo", "three"]
    assert header_values(block, "x-none") == []


# -- anything a client may send ----------------------------------------------------------------
ATOMS = ["ALL", "NOT", "OR", "SEEN", "UID", "SUBJECT", "HEADER", "BEFORE", "LARGER", "MODSEQ",
         "KEYWORD", "RETURN", "CHARSET", "UTF-8", "1:*", "$", "*", "0", "1-Feb-1994", "x",
         "\\Seen", "99999999999999999999999", "priv", "MIN", ""]
tokens = st.recursive(
    st.one_of(st.sampled_from(ATOMS), st.text(max_size=8), st.binary(max_size=8), st.none()),
    lambda inner: st.lists(inner, max_size=4), max_leaves=20)


@given(st.lists(tokens, max_size=12))
def test_any_tokens_parse_or_fail_with_a_reason(args: list[object]) -> None:
    try:
        parse_search(args)
    except SearchSyntaxError as exc:
        assert str(exc) and len(str(exc)) < 300
