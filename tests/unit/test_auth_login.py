"""Login-name parsing: plain names, login!target and target!login, hostile strings."""

from __future__ import annotations

import pytest

from gateway.auth.login import MAX_NAME, LoginName, candidates, display_name, valid_name


def test_plain_name_is_one_reading() -> None:
    assert candidates("alice@example.test") == [LoginName("alice@example.test")]
    assert candidates("bob-login") == [LoginName("bob-login")]


def test_bang_gives_grommunio_reading_first_then_reversed() -> None:
    assert candidates("alice@x.test!shared@x.test") == [
        LoginName("alice@x.test!shared@x.test"),
        LoginName("alice@x.test", "shared@x.test"),
        LoginName("shared@x.test", "alice@x.test"),
    ]


def test_bang_inside_a_local_part_keeps_every_split() -> None:
    found = candidates("o!brien@x.test!shared@x.test")
    assert found[0] == LoginName("o!brien@x.test!shared@x.test")
    assert LoginName("o!brien@x.test", "shared@x.test") in found
    assert LoginName("o", "brien@x.test!shared@x.test") in found
    assert found.index(LoginName("o!brien@x.test", "shared@x.test")) < found.index(
        LoginName("shared@x.test", "o!brien@x.test"))


@pytest.mark.parametrize("raw", ["!", "!!", "a!", "!a", "a!!!!b", "a!b!c!d!e"])
def test_degenerate_bang_forms(raw: str) -> None:
    for reading in candidates(raw):
        assert reading.login and valid_name(reading.login)
        assert reading.target == "" or valid_name(reading.target)
    assert all(r.target == "" for r in candidates("a!")) and candidates("a!")
    assert candidates("a!b!c!d!e") == [LoginName("a!b!c!d!e")]


HOSTILE = [
    "", " ", "alice@example.test ", " alice", "alice\0@example.test", "alice\0",
    "alice\n", "alice\r\nX-Injected: 1", "al\tice", "\x7f", "\u0430lice@example.test",
    "alice@example.t\u0435st", "alice@examp\u217ce.test", "\uff41lice@example.test",
    "alice\u200b@example.test", "x" * (2 * MAX_NAME + 2), "a" * 100_000,
    "alice@example.test!\u0430", "\udcff", None, 42, b"alice",
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_strings_name_nobody(raw: object) -> None:
    assert candidates(raw) == []


def test_over_long_parts_are_dropped() -> None:
    long = "x" * (MAX_NAME + 1)
    assert candidates(long) == []
    assert candidates(f"{long}!b") == []
    assert candidates("x" * MAX_NAME) == [LoginName("x" * MAX_NAME)]


def test_metacharacters_are_just_characters() -> None:
    for raw in ("' OR '1'='1", "alice@example.test' --", "%", "_", "*", "(uid=*)",
                "alice)(mail=*", "\\"):
        found = candidates(raw.replace(" ", "")) if " " in raw else candidates(raw)
        for reading in found:
            assert valid_name(reading.login)
    assert candidates("' OR '1'='1") == []  # spaces are not in any grommunio name


def test_display_name_is_one_safe_log_field() -> None:
    assert display_name("alice@example.test") == "alice@example.test"
    assert display_name("a b") == "a\\x20b"
    assert display_name("x client=10.0.0.1") == "x\\x20client\\x3d10.0.0.1"
    assert display_name("a\nb\0") == "a\\nb\\x00"
    assert display_name("\u0430") == "\\u0430"
    assert display_name("") == '""' and display_name(None) == "-"
    long = display_name("y" * 1000)
    assert long.endswith("...[1000]") and len(long) < 150
