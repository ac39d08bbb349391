"""IMAP sequence sets: parsing, resolving against a mailbox, formatting, hostile input."""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugins.imap.seqset import MAX_ELEMENTS, MAX_NUMBER, SequenceSet, format_set


def test_single_numbers_and_ranges():
    assert SequenceSet.parse("1").resolve(10) == [(1, 1)]
    assert SequenceSet.parse("2:4,7").resolve(10) == [(2, 4), (7, 7)]
    assert list(SequenceSet.parse("2:4,7").iter_values(10)) == [2, 3, 4, 7]


def test_star_is_largest_and_reversed_ranges_are_equal():
    assert SequenceSet.parse("*").resolve(9) == [(9, 9)]
    assert SequenceSet.parse("5:*").resolve(9) == [(5, 9)]
    assert SequenceSet.parse("*:5").resolve(9) == [(5, 9)]
    assert SequenceSet.parse("7:3").resolve(9) == [(3, 7)]
    # "*" below the range start: RFC 3501 says n:* with n > largest is largest:n
    assert SequenceSet.parse("20:*").resolve(9) == [(9, 20)]


def test_ranges_are_sorted_and_merged():
    assert SequenceSet.parse("9,1:3,4,2,6:8").resolve(100) == [(1, 4), (6, 9)]
    assert SequenceSet.parse("1:5,3:10,12").resolve(100) == [(1, 10), (12, 12)]


def test_values_above_largest_are_kept_for_uids():
    assert SequenceSet.parse("5:100").resolve(10) == [(5, 100)]
    assert SequenceSet.parse("5:100").highest(10) == 100


def test_empty_mailbox_star_matches_nothing():
    assert SequenceSet.parse("*").resolve(0) == []
    assert SequenceSet.parse("1:*").resolve(0) == [(1, 1)]
    assert list(SequenceSet.parse("1:*").iter_values(0, [])) == []


def test_iter_values_against_existing_uids():
    uids = [3, 5, 9, 10, 200, 4000]
    assert list(SequenceSet.parse("1:*").iter_values(4000, uids)) == uids
    assert list(SequenceSet.parse("4:10,300:*").iter_values(4000, uids)) == [5, 9, 10, 4000]
    assert list(SequenceSet.parse("6:8").iter_values(4000, uids)) == []


def test_iter_values_huge_range_against_existing_is_cheap():
    uids = list(range(1, 100_001, 7))
    started = time.perf_counter()
    values = list(SequenceSet.parse(f"1:{MAX_NUMBER}").iter_values(uids[-1], uids))
    assert values == uids
    assert time.perf_counter() - started < 1.0


def test_saved_result():
    saved = SequenceSet.parse("$")
    assert saved.is_saved
    assert not SequenceSet.parse("1").is_saved
    with pytest.raises(ValueError, match=r"\$"):
        saved.resolve(10)
    assert SequenceSet.from_values([4, 2]).resolve(10) == [(2, 2), (4, 4)]


def test_largest_number():
    assert SequenceSet.parse(str(MAX_NUMBER)).resolve(1) == [(MAX_NUMBER, MAX_NUMBER)]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty"),
        ("1,,2", "empty element"),
        (",1", "empty element"),
        ("1,", "empty element"),
        ("0", "out of range"),
        ("0:5", "out of range"),
        ("1:*:2", "invalid range"),
        ("1::2", "invalid range"),
        (":", "invalid number"),
        ("4294967296", "out of range"),
        ("99999999999999999999999", "invalid number"),
        ("-1", "invalid number"),
        ("+1", "invalid number"),
        (" 1", "invalid number"),
        ("1 ", "invalid number"),
        ("\u0661", "invalid number"),  # Arabic-Indic digit: str.isdigit would accept it
        ("a", "invalid number"),
        ("**", "invalid number"),
        ("$,1", "invalid number"),
        ("1.5", "invalid number"),
    ],
)
def test_hostile_input_is_refused_with_a_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        SequenceSet.parse(text)


def test_element_limit():
    at_limit = ",".join(str(n) for n in range(1, MAX_ELEMENTS + 1))
    assert len(SequenceSet.parse(at_limit).resolve(MAX_ELEMENTS)) == 1
    over = ",".join(str(n) for n in range(1, 100_001))
    started = time.perf_counter()
    with pytest.raises(ValueError, match="more than"):
        SequenceSet.parse(over)
    assert time.perf_counter() - started < 0.5


def test_non_string_is_refused():
    with pytest.raises(ValueError):
        SequenceSet.parse(b"1:2")  # type: ignore[arg-type]


def test_format_set():
    assert format_set([]) == ""
    assert format_set([1]) == "1"
    assert format_set([1, 2, 3, 5, 7, 8, 9]) == "1:3,5,7:9"
    assert format_set([9, 1, 2, 2]) == "1:2,9"
    assert format_set(range(1, 100_001)) == "1:100000"


@given(st.sets(st.integers(1, 500), max_size=60))
def test_format_then_parse_round_trips(values):
    text = format_set(values)
    if not values:
        assert text == ""
        return
    assert list(SequenceSet.parse(text).iter_values(500)) == sorted(values)


@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=20),
    st.integers(0, 50),
    st.sets(st.integers(1, 70)),
)
def test_iter_values_matches_brute_force(pairs, largest, existing):
    def text(value):
        return "*" if value == 0 else str(value)

    seqset = SequenceSet.parse(",".join(f"{text(a)}:{text(b)}" for a, b in pairs))
    expected = set()
    for a, b in pairs:
        a = largest if a == 0 else a
        b = largest if b == 0 else b
        expected.update(v for v in range(min(a, b), max(a, b) + 1) if v >= 1)
    ordered = sorted(existing)
    assert list(seqset.iter_values(largest, ordered)) == sorted(expected & existing)
    assert list(seqset.iter_values(largest)) == sorted(expected)


def test_equality_is_by_content():
    assert SequenceSet.parse("1:*") == SequenceSet.parse("1:*")
    assert SequenceSet.parse("$") == SequenceSet.parse("$")
    assert SequenceSet.parse("1:2") != SequenceSet.parse("2:1")  # same members, other text
    assert len({SequenceSet.parse("5"), SequenceSet.parse("5")}) == 1


def test_error_messages_stay_short():
    for text in ("1:" + "9" * 100_000, "x" * 100_000, "1:2:" + "3" * 100_000, "1," * 5 + ","):
        with pytest.raises(ValueError) as caught:
            SequenceSet.parse(text)
        assert len(str(caught.value)) < 200
