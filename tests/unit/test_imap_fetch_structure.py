"""ENVELOPE, BODY and BODYSTRUCTURE against Dovecot's answers, and the parser under abuse.

``DOVECOT`` holds what Dovecot 2.3 (Debian) answered to
``FETCH n (RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE)`` for the hand-made
samples; ``tests/unit/test_imap_fetch_dovecot.py`` asks a live Dovecot about
the corpus too. Differences kept on purpose are listed there.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugins.imap.mime_envelope import addresses, encode_addresses, nstring
from plugins.imap.mime_structure import MAX_PARTS, Node, load_tree, parse_message
from tests.unit.test_imap_fetch_samples import SAMPLES, corpus

DOVECOT = {
    'nested-multipart': (
        b'RFC822.SIZE 892 ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "nested" (("Alice Example'
        b'" NIL "alice" "example.org")) (("Alice Example" NIL "alice" "example.org")) (("Alice'
        b' Example" NIL "alice" "example.org")) (("Bob" NIL "bob" "example.net")(NIL NIL "caro'
        b'l" "example.com")) NIL NIL NIL "<nested@example.org>") BODY ((("text" "plain" ("char'
        b'set" "utf-8") NIL NIL "quoted-printable" 20 1)("text" "html" ("charset" "utf-8") NIL'
        b' NIL "7bit" 12 0) "alternative")("application" "octet-stream" ("name" "data.bin") "<'
        b'part3@example.org>" "some data" "base64" 16) "mixed") BODYSTRUCTURE ((("text" "plain'
        b'" ("charset" "utf-8") NIL NIL "quoted-printable" 20 1 NIL NIL NIL NIL)("text" "html"'
        b' ("charset" "utf-8") NIL NIL "7bit" 12 0 NIL NIL NIL NIL) "alternative" ("boundary" '
        b'"inner") NIL NIL NIL)("application" "octet-stream" ("name" "data.bin") "<part3@examp'
        b'le.org>" "some data" "base64" 16 NIL ("attachment" ("filename*" "utf-8\'\'%E2%82%A'
        b'C%20rate.bin")) ("en" "de") "http://example.org/data.bin") "mixed" ("boundary" "oute'
        b'r") NIL NIL NIL)'
    ),
    'missing-close-boundary': (
        b'RFC822.SIZE 178 ENVELOPE (NIL "no close" ((NIL NIL "a" "example.org")) ((NIL NIL "a"'
        b' "example.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL) BODY (("text" "p'
        b'lain" ("charset" "us-ascii") NIL NIL "7bit" 3 0)("text" "plain" ("charset" "us-ascii'
        b'") NIL NIL "7bit" 19 1) "mixed") BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii'
        b'") NIL NIL "7bit" 3 0 NIL NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL'
        b' "7bit" 19 1 NIL NIL NIL NIL) "mixed" ("boundary" "zz") NIL NIL NIL)'
    ),
    'no-boundaries-in-body': (
        b'RFC822.SIZE 111 ENVELOPE (NIL "boundary never seen" ((NIL NIL "a" "example.org")) (('
        b'NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL) BODY '
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed") BODYSTRUCTURE ('
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" ('
        b'"boundary" "never") NIL NIL NIL)'
    ),
    'multipart-without-boundary': (
        b'RFC822.SIZE 93 ENVELOPE (NIL "no boundary param" ((NIL NIL "a" "example.org")) ((NIL'
        b' NIL "a" "example.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL) BODY (("'
        b'text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed") BODYSTRUCTURE (("t'
        b'ext" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" NIL '
        b'NIL NIL NIL)'
    ),
    'no-body': (
        b'RFC822.SIZE 44 ENVELOPE (NIL "headers only" ((NIL NIL "a" "example.org")) ((NIL NIL '
        b'"a" "example.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL) BODY ("text" '
        b'"plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) BODYSTRUCTURE ("text" "plain" ("c'
        b'harset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'
    ),
    'eight-bit-headers': (
        b'RFC822.SIZE 186 ENVELOPE (NIL {17}\r\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln (({15}'
        b'\r\nJ\xc3\xbcrgen M\xc3\xbcller NIL "juergen" "example.de")) (({15}\r\nJ\xc3\xbcrg'
        b'en M\xc3\xbcller NIL "juergen" "example.de")) (({15}\r\nJ\xc3\xbcrgen M\xc3\xbcller '
        b'NIL "juergen" "example.de")) (({7}\r\nGr\xc3\xbcppe NIL "g" "example.de")) NIL NIL N'
        b'IL NIL) BODY ("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 8 1) BODYSTRUCTURE ('
        b'"text" "plain" ("charset" "utf-8") NIL NIL "8bit" 8 1 NIL NIL NIL NIL)'
    ),
    'group-addresses': (
        b'RFC822.SIZE 320 ENVELOPE (NIL {36}\r\n=?utf-8?q?encoded_=E2=82=AC?= folded (("Team'
        b' Lead" NIL "lead" "example.org")) (("Team Lead" NIL "lead" "example.org")) (("Team L'
        b'ead" NIL "lead" "example.org")) ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL '
        b'NIL)) ((NIL NIL "Friends" NIL)(NIL NIL "anna" "example.org")({13}\r\nBen "B" Brown'
        b' NIL "ben" "example.org")(NIL NIL NIL NIL)("Dave Comment" NIL "dave" "example.net"))'
        b' ((NIL "@route.example,@other.example" "eve" "example.org")) NIL "<g@example.org>") '
        b'BODY ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1) BODYSTRUCTURE ("text'
        b'" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)'
    ),
    'rfc2231-params': (
        b'RFC822.SIZE 274 ENVELOPE (NIL "params" ((NIL NIL "a" "example.org")) ((NIL NIL "a" "'
        b'example.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL) BODY ("text" "plai'
        b'n" ("charset" "us-ascii" "title*" "us-ascii\'en\'This%20is%20even%20more%20%2A%2A%'
        b'2Afun%2A%2A%2A%20isn\'t it!") NIL NIL "7bit" 7 1) BODYSTRUCTURE ("text" "plain" ("cha'
        b'rset" "us-ascii" "title*" "us-ascii\'en\'This%20is%20even%20more%20%2A%2A%2Afun%2A'
        b'%2A%2A%20isn\'t it!") NIL NIL "7bit" 7 1 NIL ("inline" ("size" "12" "filename*" "iso-'
        b'8859-1\'\'t%E4st.txt")) NIL NIL)'
    ),
    'lf-only': (
        b'RFC822.SIZE 145 ENVELOPE (NIL "bare LF" ((NIL NIL "lf" "example.org")) ((NIL NIL "lf'
        b'" "example.org")) ((NIL NIL "lf" "example.org")) NIL NIL NIL NIL NIL) BODY (("text" '
        b'"plain" ("charset" "us-ascii") NIL NIL "7bit" 18 1) "mixed") BODYSTRUCTURE (("text" '
        b'"plain" ("charset" "us-ascii") NIL NIL "7bit" 18 1 NIL NIL NIL NIL) "mixed" ("bounda'
        b'ry" "L") NIL NIL NIL)'
    ),
    'top-level-rfc822': (
        b'RFC822.SIZE 133 ENVELOPE (NIL "outer" ((NIL NIL "outer" "example.org")) ((NIL NIL "o'
        b'uter" "example.org")) ((NIL NIL "outer" "example.org")) NIL NIL NIL NIL NIL) BODY ("'
        b'message" "rfc822" NIL NIL NIL "7bit" 60 (NIL "inner only" ((NIL NIL "inner" "example'
        b'.org")) ((NIL NIL "inner" "example.org")) ((NIL NIL "inner" "example.org")) NIL NIL '
        b'NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1) 4) BODYSTRU'
        b'CTURE ("message" "rfc822" NIL NIL NIL "7bit" 60 (NIL "inner only" ((NIL NIL "inner" '
        b'"example.org")) ((NIL NIL "inner" "example.org")) ((NIL NIL "inner" "example.org")) '
        b'NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1 NIL '
        b'NIL NIL NIL) 4 NIL NIL NIL NIL)'
    ),
    'digest': (
        b'RFC822.SIZE 201 ENVELOPE (NIL "digest" ((NIL NIL "list" "example.org")) ((NIL NIL "l'
        b'ist" "example.org")) ((NIL NIL "list" "example.org")) NIL NIL NIL NIL NIL) BODY (("m'
        b'essage" "rfc822" NIL NIL NIL "7bit" 44 (NIL "one" ((NIL NIL "one" "example.org")) (('
        b'NIL NIL "one" "example.org")) ((NIL NIL "one" "example.org")) NIL NIL NIL NIL NIL) ('
        b'"text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0) 3)("message" "rfc822" NIL '
        b'NIL NIL "7bit" 45 (NIL "two" ((NIL NIL "two" "example.org")) ((NIL NIL "two" "exampl'
        b'e.org")) ((NIL NIL "two" "example.org")) NIL NIL NIL NIL NIL) ("text" "plain" ("char'
        b'set" "us-ascii") NIL NIL "7bit" 6 0) 3) "digest") BODYSTRUCTURE (("message" "rfc822"'
        b' NIL NIL NIL "7bit" 44 (NIL "one" ((NIL NIL "one" "example.org")) ((NIL NIL "one" "e'
        b'xample.org")) ((NIL NIL "one" "example.org")) NIL NIL NIL NIL NIL) ("text" "plain" ('
        b'"charset" "us-ascii") NIL NIL "7bit" 5 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)("messag'
        b'e" "rfc822" NIL NIL NIL "7bit" 45 (NIL "two" ((NIL NIL "two" "example.org")) ((NIL N'
        b'IL "two" "example.org")) ((NIL NIL "two" "example.org")) NIL NIL NIL NIL NIL) ("text'
        b'" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 0 NIL NIL NIL NIL) 3 NIL NIL NIL N'
        b'IL) "digest" ("boundary" "d") NIL NIL NIL)'
    ),
    'odd-content-types': (
        b'RFC822.SIZE 254 ENVELOPE (NIL "odd types" ((NIL NIL "a" "example.org")) ((NIL NIL "a'
        b'" "example.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL) BODY (("text" "'
        b'" ("charset" "us-ascii") NIL NIL "7bit" 10 0)("" "" NIL NIL NIL "7bit" 12)("image" "'
        b'png" NIL NIL NIL "x-unknown" 4) "mixed") BODYSTRUCTURE (("text" "" ("charset" "us-as'
        b'cii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)("" "" NIL NIL NIL "7bit" 12 NIL NIL NIL N'
        b'IL)("image" "png" NIL NIL NIL "x-unknown" 4 NIL NIL NIL NIL) "mixed" ("boundary" "o"'
        b') NIL NIL NIL)'
    ),
    'prefix-boundaries': (
        b'RFC822.SIZE 275 ENVELOPE (NIL "boundary prefixes" ((NIL NIL "a" "example.org")) ((NI'
        b'L NIL "a" "example.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL) BODY (('
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0) "alternative")("text" "pl'
        b'ain" ("charset" "us-ascii") NIL NIL "7bit" 9 0) "mixed") BODYSTRUCTURE ((("text" "pl'
        b'ain" ("charset" "us-ascii") NIL NIL "7bit" 9 0 NIL NIL NIL NIL) "alternative" ("boun'
        b'dary" "abcdef") NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 '
        b'0 NIL NIL NIL NIL) "mixed" ("boundary" "abc") NIL NIL NIL)'
    ),
    'odd-addresses': (
        b'RFC822.SIZE 264 ENVELOPE ("Tue, 1 Jul 2003 10:52:37 +0200  " "leading tab" (({13'
        b'}\r\nQuoted \\ Name NIL "q" "example.org")(NIL NIL "bare" "example.org")(NIL NIL "n'
        b'odomain" "MISSING_DOMAIN")("=?iso-8859-1?q?Andr=E9?=" NIL "andre" "example.fr")) (({'
        b'13}\r\nQuoted \\ Name NIL "q" "example.org")(NIL NIL "bare" "example.org")(NIL NIL '
        b'"nodomain" "MISSING_DOMAIN")("=?iso-8859-1?q?Andr=E9?=" NIL "andre" "example.fr")) ('
        b'({13}\r\nQuoted \\ Name NIL "q" "example.org")(NIL NIL "bare" "example.org")(NIL NI'
        b'L "nodomain" "MISSING_DOMAIN")("=?iso-8859-1?q?Andr=E9?=" NIL "andre" "example.fr"))'
        b' ((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")("Some Name" NIL "broken" "SYNTAX_ERRO'
        b'R")) NIL NIL "<a@b> <c@d>" NIL) BODY ("text" "plain" ("charset" "us-ascii") NIL NIL '
        b'"7bit" 3 1) BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 '
        b'NIL NIL NIL NIL)'
    ),
    'binary-parts': (
        b'RFC822.SIZE 326 ENVELOPE (NIL "binary" ((NIL NIL "a" "example.org")) ((NIL NIL "a" "'
        b'example.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL) BODY (("text" "pla'
        b'in" ("charset" "iso-8859-1") NIL NIL "Quoted-Printable" 32 1)("application" "octet-s'
        b'tream" NIL NIL NIL "BASE64" 16) "mixed") BODYSTRUCTURE (("text" "plain" ("charset" "'
        b'iso-8859-1") NIL NIL "Quoted-Printable" 32 1 NIL NIL NIL NIL)("application" "octet-s'
        b'tream" NIL NIL NIL "BASE64" 16 NIL NIL NIL NIL) "mixed" ("boundary" "bb") NIL NIL NI'
        b'L)'
    ),
    'comments-and-case': (
        b'RFC822.SIZE 296 ENVELOPE (NIL "second subject" ((NIL NIL "tight" "example.org")) ((N'
        b'IL NIL "tight" "example.org")) ((NIL NIL "tight" "example.org")) ((NIL NIL "one" "ex'
        b'ample.org")(NIL NIL "two" "example.org")) NIL NIL NIL NIL) BODY ("TEXT" "HTML" ("CHA'
        b'RSET" "UTF-8") NIL NIL "BASE64" 14 1) BODYSTRUCTURE ("TEXT" "HTML" ("CHARSET" "UTF-8'
        b'") NIL NIL "BASE64" 14 1 NIL ("ATTACHMENT" ("FILENAME" "X.TXT")) ("en") NIL)'
    ),
    'no-header': (
        b'RFC822.SIZE 31 ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) BODY ("text" "plai'
        b'n" ("charset" "us-ascii") NIL NIL "7bit" 29 1) BODYSTRUCTURE ("text" "plain" ("chars'
        b'et" "us-ascii") NIL NIL "7bit" 29 1 NIL NIL NIL NIL)'
    ),
    'cr-and-nul': (
        b'RFC822.SIZE 62 ENVELOPE (NIL {7}\r\nbare CR ((NIL NIL "a" "example.org")) ((NIL NI'
        b'L "a" "example.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL) BODY ("text'
        b'" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 2) BODYSTRUCTURE ("text" "plain" '
        b'("charset" "us-ascii") NIL NIL "7bit" 21 2 NIL NIL NIL NIL)'
    ),
    'only-close-delimiter': (
        b'RFC822.SIZE 83 ENVELOPE (NIL NIL ((NIL NIL "a" "example.org")) ((NIL NIL "a" "exampl'
        b'e.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL) BODY (("text" "plain" ("'
        b'charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed") BODYSTRUCTURE (("text" "plain" ("c'
        b'harset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" ("boundary" "c") NIL'
        b' NIL NIL)'
    ),
    'padded-delimiters': (
        b'RFC822.SIZE 153 ENVELOPE (NIL NIL ((NIL NIL "a" "example.org")) ((NIL NIL "a" "examp'
        b'le.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL) BODY (("text" "plain" ('
        b'"charset" "us-ascii") NIL NIL "7bit" 3 0)("text" "plain" ("charset" "us-ascii") NIL '
        b'NIL "7bit" 3 0) "alternative") BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii")'
        b' NIL NIL "7bit" 3 0 NIL NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL "'
        b'7bit" 3 0 NIL NIL NIL NIL) "alternative" ("boundary" "a b c") NIL NIL NIL)'
    ),
}


def fetch_line(raw: bytes) -> bytes:
    parsed = parse_message(raw)
    return b"RFC822.SIZE %d ENVELOPE %s BODY %s BODYSTRUCTURE %s" % (
        parsed.size, parsed.envelope, parsed.body, parsed.bodystructure)


@pytest.mark.parametrize("name", sorted(DOVECOT))
def test_structure_is_what_dovecot_answers(name: str) -> None:
    assert fetch_line(SAMPLES[name]) == DOVECOT[name]


def test_message_rfc822_part_size_excludes_the_delimiter_crlf() -> None:
    """Kept on purpose: Dovecot counts the CRLF before the outer delimiter into a
    message/rfc822 part that ends in a multipart's close delimiter (296/17 here);
    RFC 2046 gives that CRLF to the delimiter, so the part is 294 octets, 16 lines."""
    line = fetch_line(SAMPLES["rfc822-in-multipart"])
    assert b'("message" "rfc822" NIL NIL NIL "7bit" 294 (' in line
    assert b'"alternative") 16)' in line


@pytest.mark.parametrize(("header", "expected"), [
    (b"a@b", b'((NIL NIL "a" "b"))'),
    (b'"Last, First" <f.l@example.org>', b'(("Last, First" NIL "f.l" "example.org"))'),
    (b"Team: ;", b'((NIL NIL "Team" NIL)(NIL NIL NIL NIL))'),
    (b"x@y (Real (nested) Name)", b'(("Real (nested) Name" NIL "x" "y"))'),
    (b"<a@[127.0.0.1]>", b'((NIL NIL "a" "[127.0.0.1]"))'),
    (b"", b"NIL"),
    (b",,,", b"NIL"),
    (b'"unterminated <a@b>', b'((NIL NIL {20}\r\n"unterminated <a@b>" "MISSING_DOMAIN"))'),
])
def test_address_lists(header: bytes, expected: bytes) -> None:
    assert encode_addresses(addresses(header)) == expected


def test_strings_are_quoted_or_literal() -> None:
    assert nstring(None) == b"NIL"
    assert nstring(b"plain text") == b'"plain text"'
    assert nstring(b'say "hi"') == b'{8}\r\nsay "hi"'
    assert nstring("Grüße".encode()) == b"{7}\r\n" + "Grüße".encode()


def _nests(node: Node, start: int, end: int) -> int:
    assert start <= node.header_start <= node.body_start <= node.body_end <= end
    count = 1
    for child in node.children:
        count += _nests(child, node.body_start, node.body_end)
    if node.message is not None:
        count += _nests(node.message, node.body_start, node.body_end)
    return count


_CORPUS = list(corpus().values()) + list(SAMPLES.values())


@given(st.sampled_from(_CORPUS), st.integers(min_value=0), st.integers(min_value=0),
       st.binary(max_size=40))
def test_mangled_messages_never_break_the_parser(raw: bytes, cut: int, at: int,
                                                  junk: bytes) -> None:
    cut %= len(raw) + 1
    at %= cut + 1
    mangled = raw[:at] + junk + raw[at:cut]
    parsed = parse_message(mangled)
    assert _nests(parsed.root, 0, parsed.size) >= 1
    assert load_tree(parsed.tree()) == parsed.root
    assert parsed.bodystructure.count(b"(") >= 1


def test_nesting_and_part_bombs_are_bounded() -> None:
    deep = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (n, n)
                    for n in range(5000)) + b"\r\nend\r\n"
    wide = (b"Content-Type: multipart/mixed; boundary=w\r\n\r\n"
            + b"--w\r\n\r\nx\r\n" * 20000 + b"--w--\r\n")
    rfc822 = b"Content-Type: message/rfc822\r\n\r\n" * 5000 + b"\r\nend"
    for raw in (deep, wide, rfc822):
        started = time.perf_counter()
        parsed = parse_message(raw)
        assert _nests(parsed.root, 0, parsed.size) <= MAX_PARTS + 1
        assert time.perf_counter() - started < 5
