"""The IMAP command reader: tokens, literals (sync, LITERAL+, literal8) and hostile input."""

from __future__ import annotations

import pytest

from gateway.net import ConnectionClosed, LineTooLong, LiteralTooLarge
from plugins.imap.parser import (
    MAX_DEPTH,
    Command,
    CommandError,
    CommandReader,
    Literal8,
    tokenize,
)


class FakeConnection:
    """Serves a byte string the way ``gateway.net.Connection`` does (limits included)."""

    def __init__(self, data: bytes, max_line: int = 1000, max_literal: int = 10_000) -> None:
        self.data = data
        self.max_line = max_line
        self.max_literal = max_literal
        self.reads: list[int] = []

    async def readline(self) -> bytes:
        end = self.data.find(b"\n")
        if end < 0:
            raise ConnectionClosed("eof")
        if end + 1 > self.max_line:
            self.data = self.data[end + 1:]
            raise LineTooLong(self.max_line)
        line, self.data = self.data[:end + 1], self.data[end + 1:]
        return line

    async def readexactly(self, n: int) -> bytes:
        if n > self.max_literal:
            raise LiteralTooLarge(n, self.max_literal)
        if len(self.data) < n:
            raise ConnectionClosed("closed inside a literal")
        self.reads.append(n)
        chunk, self.data = self.data[:n], self.data[n:]
        return chunk


def reader(data: bytes, **kwargs: int) -> tuple[CommandReader, list[str]]:
    conn = FakeConnection(data, kwargs.pop("max_line", 1000), kwargs.pop("max_literal", 10_000))
    asked: list[str] = []

    async def go_ahead() -> None:
        asked.append("+")

    return CommandReader(conn, go_ahead, max_line_bytes=conn.max_line,
                         max_literal_bytes=conn.max_literal, **kwargs), asked


async def read(data: bytes, **kwargs: int) -> Command:
    command_reader, _ = reader(data, **kwargs)
    return await command_reader.read()


async def test_simple_command() -> None:
    command = await read(b"a1 fetch 1:* (FLAGS UID)\r\n")
    assert command == Command("a1", "FETCH", ["1:*", ["FLAGS", "UID"]])


async def test_tokens_keep_case_quoted_strings_unescape_and_nil() -> None:
    command = await read(b'A2 LOGIN "al\\"ice" "pa\\\\ss" NIL \\Seen $ *\r\n')
    assert command.args == [b'al"ice', b"pa\\ss", None, "\\Seen", "$", "*"]


async def test_fetch_sections_stay_one_token_with_spaces_and_partials() -> None:
    command = await read(
        b"t FETCH 1 (BODY.PEEK[HEADER.FIELDS (From Subject)]<0.100> BODY[1.2.MIME])\r\n")
    assert command.args == ["1", ["BODY.PEEK[HEADER.FIELDS (From Subject)]<0.100>",
                                  "BODY[1.2.MIME]"]]


async def test_synchronizing_literal_asks_for_continuation() -> None:
    command_reader, asked = reader(b"a LOGIN {5}\r\nalice {6}\r\nsecret\r\n")
    command = await command_reader.read()
    assert command.args == [b"alice", b"secret"]
    assert asked == ["+", "+"]


async def test_non_synchronizing_literal_and_literal8() -> None:
    command_reader, asked = reader(b"a APPEND INBOX (\\Seen) ~{3+}\r\n\x00\x01\x02\r\n")
    command = await command_reader.read()
    assert command.args == ["INBOX", ["\\Seen"], b"\x00\x01\x02"]
    assert isinstance(command.args[2], Literal8)
    assert asked == []


async def test_literal_inside_a_list() -> None:
    command = await read(b"a SEARCH (SUBJECT {3}\r\nfoo FROM x)\r\n")
    assert command.args == [["SUBJECT", b"foo", "FROM", "x"]]


async def test_uid_command_keeps_its_verb_as_the_first_argument() -> None:
    command = await read(b"a uid fetch 1:2 FLAGS\r\n")
    assert (command.name, command.args) == ("UID", ["fetch", "1:2", "FLAGS"])


async def test_utf8_atoms_and_quoted_strings() -> None:
    command = await read('a SELECT "Entwürfe" Grüße\r\n'.encode())
    assert command.args == ["Entwürfe".encode(), "Grüße"]


async def test_two_commands_in_a_row() -> None:
    command_reader, _ = reader(b"a NOOP\r\nb CAPABILITY\r\n")
    assert (await command_reader.read()).tag == "a"
    assert (await command_reader.read()).name == "CAPABILITY"


# -- hostile input ------------------------------------------------------------------------------


async def error(data: bytes, **kwargs: int) -> CommandError:
    command_reader, asked = reader(data, **kwargs)
    with pytest.raises(CommandError) as caught:
        await command_reader.read()
    caught.value.asked = asked  # type: ignore[attr-defined]
    return caught.value


@pytest.mark.parametrize(("data", "tag", "reason"), [
    (b"\r\n", None, "empty"),
    (b"   \r\n", None, "empty"),
    (b"a+b NOOP\r\n", None, "invalid tag"),
    (b"a*b NOOP\r\n", None, "invalid tag"),
    (b'"a" NOOP\r\n', None, "invalid tag"),
    (b"a\x01 NOOP\r\n", None, "invalid tag"),
    (b"\xff NOOP\r\n", None, "invalid tag"),
    (b"lonely\r\n", "lonely", "missing command"),
    (b"a 123\r\n", "a", "invalid command name"),
    (b"a NO-OP\r\n", "a", "invalid command name"),
    (b'a LOGIN "unterminated\r\n', "a", "unterminated quoted"),
    (b'a LOGIN "bad \\n escape"\r\n', "a", "escaped"),
    (b"a FETCH 1 (FLAGS\r\n", "a", "unbalanced '('"),
    (b"a FETCH 1 FLAGS)\r\n", "a", "unbalanced ')'"),
    (b"a FETCH 1 BODY[HEADER\r\n", "a", "unterminated '['"),
    (b"a LOGIN {5} x\r\n", "a", "literal"),
    (b"a LOGIN {abc}\r\n", "a", "literal"),
    (b"a LOGIN x{5}\r\n", "a", "inside an atom"),
    (b"a SELECT \xff\xfe\r\n", "a", "UTF-8"),
    (b"a NOOP \x00\r\n", "a", "control character"),
    (b"a SEARCH " + b"(" * (MAX_DEPTH + 1) + b")" * (MAX_DEPTH + 1) + b"\r\n", "a", "nested"),
])
async def test_malformed_commands(data: bytes, tag: str | None, reason: str) -> None:
    refused = await error(data)
    assert refused.tag == tag
    assert reason in refused.text
    assert not refused.fatal


async def test_over_long_line_is_refused_untagged_and_the_next_command_still_works() -> None:
    command_reader, _ = reader(b"a NOOP " + b"x" * 2000 + b"\r\nb NOOP\r\n", max_line=100)
    with pytest.raises(CommandError) as caught:
        await command_reader.read()
    assert caught.value.tag is None and caught.value.code == "TOOBIG"
    assert (await command_reader.read()).tag == "b"


async def test_huge_synchronizing_literal_is_refused_before_continuation() -> None:
    refused = await error(b"a APPEND INBOX {99999999999999}\r\n")
    assert refused.tag == "a" and refused.code == "TOOBIG" and refused.kind == "NO"
    assert not refused.fatal and refused.asked == []  # type: ignore[attr-defined]


async def test_literal_over_the_line_limit_outside_append_is_bad() -> None:
    refused = await error(b"a LOGIN {5000}\r\n", max_line=1000)
    assert refused.kind == "BAD" and refused.code == "TOOBIG"


async def test_huge_non_synchronizing_literal_is_fatal() -> None:
    refused = await error(b"a APPEND INBOX {99999+}\r\n")
    assert refused.fatal and refused.code == "TOOBIG"


async def test_literal_minus_limits_non_synchronizing_literals() -> None:
    refused = await error(b"a APPEND INBOX {5000+}\r\n" + b"x" * 5000 + b"\r\n",
                          literal_plus=False)
    assert refused.fatal and "LITERAL-" in refused.text
    command_reader, _ = reader(b"a APPEND INBOX {4+}\r\nabcd\r\n", literal_plus=False)
    assert (await command_reader.read()).args == ["INBOX", b"abcd"]


async def test_connection_dropped_inside_a_literal() -> None:
    command_reader, _ = reader(b"a APPEND INBOX {100+}\r\nonly a little")
    with pytest.raises(ConnectionClosed):
        await command_reader.read()


async def test_too_many_literals() -> None:
    data = b"a SEARCH" + b" {1+}\r\nx" * 300 + b"\r\n"
    refused = await error(data)
    assert "literals" in refused.text and refused.fatal


def test_tokenize_refuses_literals() -> None:
    assert tokenize(b"(a b) c") == [["a", "b"], "c"]
    with pytest.raises(ValueError):
        tokenize(b"a {5}")


# -- round trip: whatever the encoder writes, the reader reads back -------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from plugins.imap import responses as R  # noqa: E402

ATOM = st.text(alphabet="abcXYZ019.-_:*\\$!#&'+,/;<=>?@^`|~", min_size=1, max_size=12).filter(
    lambda a: a.upper() != "NIL" and not a.startswith("~"))
STRING = st.binary(max_size=40).filter(lambda b: b"\0" not in b)
TOKENS = st.recursive(
    st.one_of(ATOM, STRING, st.none()),
    lambda inner: st.lists(inner, max_size=4), max_leaves=12)


def encode(token: object) -> bytes:
    if token is None:
        return b"NIL"
    if isinstance(token, str):
        return token.encode()
    if isinstance(token, bytes):
        if b"\r" in token or b"\n" in token:
            return b"{%d+}\r\n" % len(token) + token
        return R.quoted(token)
    assert isinstance(token, list)
    return b"(" + b" ".join(encode(t) for t in token) + b")"


@given(st.lists(TOKENS, max_size=6))
async def test_encoded_tokens_read_back_the_same(tokens: list) -> None:
    line = b"t1 CMD" + b"".join(b" " + encode(t) for t in tokens) + b"\r\n"
    command = await read(line, max_line=100_000)
    assert command.args == tokens
