"""Hand-made tricky messages for the FETCH data tests (and the Dovecot comparison).

Each sample is the raw bytes of one message, CRLF line endings unless the
name says otherwise. The test here only checks that every sample and every
corpus message parses without raising and that the part offsets nest; the
other ``test_imap_fetch*`` modules check the answers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.imap.mime_structure import Node, parse_message

CORPUS = Path(__file__).parents[1] / "corpus" / "mail"


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


SAMPLES: dict[str, bytes] = {
    "nested-multipart": _crlf(
        "From: Alice Example <alice@example.org>\n"
        "To: Bob <bob@example.net>, carol@example.com\n"
        "Subject: nested\n"
        "Date: Mon, 7 Feb 1994 21:52:25 -0800\n"
        "Message-ID: <nested@example.org>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"outer\"\n"
        "\n"
        "preamble\n"
        "--outer\n"
        "Content-Type: multipart/alternative; boundary=inner\n"
        "\n"
        "--inner\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: quoted-printable\n"
        "\n"
        "caf=C3=A9 =\n"
        "au lait\n"
        "--inner\n"
        "Content-Type: text/html; charset=\"utf-8\"\n"
        "\n"
        "<p>caf\u00e9</p>\n"
        "--inner--\n"
        "\n"
        "--outer\n"
        "Content-Type: application/octet-stream; name=\"data.bin\"\n"
        "Content-Transfer-Encoding: base64\n"
        "Content-Disposition: attachment;\n"
        " filename*0*=utf-8''%E2%82%AC%20rate;\n"
        " filename*1=\".bin\"\n"
        "Content-Language: en, de\n"
        "Content-Location: http://example.org/data.bin\n"
        "Content-ID: <part3@example.org>\n"
        "Content-Description: some data\n"
        "\n"
        "AAECAwQFBgcICQ==\n"
        "--outer--\n"
        "epilogue\n"),
    "rfc822-in-multipart": _crlf(
        "From: alice@example.org\n"
        "To: bob@example.net\n"
        "Subject: Fwd: inner\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=b1\n"
        "\n"
        "--b1\n"
        "Content-Type: text/plain\n"
        "\n"
        "see attached\n"
        "--b1\n"
        "Content-Type: message/rfc822\n"
        "Content-Disposition: attachment\n"
        "\n"
        "From: \"Carol, C.\" <carol@example.com>\n"
        "Sender: list@example.com\n"
        "Reply-To: replies@example.com\n"
        "Subject: inner\n"
        "In-Reply-To: <x@y>\n"
        "Content-Type: multipart/alternative; boundary=b2\n"
        "\n"
        "--b2\n"
        "Content-Type: text/plain\n"
        "\n"
        "inner text\n"
        "two lines\n"
        "--b2\n"
        "Content-Type: text/html\n"
        "\n"
        "<b>inner</b>\n"
        "--b2--\n"
        "--b1--\n"),
    "missing-close-boundary": _crlf(
        "From: a@example.org\n"
        "Subject: no close\n"
        "Content-Type: multipart/mixed; boundary=zz\n"
        "\n"
        "--zz\n"
        "Content-Type: text/plain\n"
        "\n"
        "one\n"
        "--zz\n"
        "Content-Type: text/plain\n"
        "\n"
        "two, then the end\n"),
    "no-boundaries-in-body": _crlf(
        "From: a@example.org\n"
        "Subject: boundary never seen\n"
        "Content-Type: multipart/mixed; boundary=never\n"
        "\n"
        "just text\n"),
    "multipart-without-boundary": _crlf(
        "From: a@example.org\n"
        "Subject: no boundary param\n"
        "Content-Type: multipart/mixed\n"
        "\n"
        "just text\n"),
    "no-body": _crlf(
        "From: a@example.org\n"
        "Subject: headers only\n"),
    "empty-body": _crlf(
        "From: a@example.org\n"
        "Subject: empty body\n"
        "\n"),
    "eight-bit-headers": (
        "From: J\u00fcrgen M\u00fcller <juergen@example.de>\r\n"
        "To: \"Gr\u00fcppe\" <g@example.de>\r\n"
        "Subject: Gr\u00fc\u00dfe aus K\u00f6ln\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "H\u00e4llo\r\n").encode("utf-8"),
    "group-addresses": _crlf(
        "From: Team Lead <lead@example.org>\n"
        "To: undisclosed-recipients:;\n"
        "Cc: Friends: anna@example.org, \"Ben \\\"B\\\" Brown\" <ben@example.org>;,\n"
        " dave@example.net (Dave Comment)\n"
        "Bcc: <@route.example,@other.example:eve@example.org>\n"
        "Sender:\n"
        "Subject: =?utf-8?q?encoded_=E2=82=AC?=\n"
        "  folded\n"
        "Message-ID: <g@example.org>\n"
        "\n"
        "body\n"),
    "rfc2231-params": _crlf(
        "From: a@example.org\n"
        "Subject: params\n"
        "Content-Type: text/plain; charset=us-ascii;\n"
        " title*0*=us-ascii'en'This%20is%20even%20more%20;\n"
        " title*1*=%2A%2A%2Afun%2A%2A%2A%20;\n"
        " title*2=\"isn't it!\"\n"
        "Content-Disposition: inline; filename*=iso-8859-1''t%E4st.txt; size=12\n"
        "\n"
        "hello\n"),
    "lf-only": (
        b"From: lf@example.org\n"
        b"Subject: bare LF\n"
        b"Content-Type: multipart/mixed; boundary=L\n"
        b"\n"
        b"--L\n"
        b"Content-Type: text/plain\n"
        b"\n"
        b"line one\n"
        b"line two\n"
        b"--L--\n"),
    "top-level-rfc822": _crlf(
        "From: outer@example.org\n"
        "Subject: outer\n"
        "Content-Type: message/rfc822\n"
        "\n"
        "From: inner@example.org\n"
        "Subject: inner only\n"
        "\n"
        "inner body\n"),
    "digest": _crlf(
        "From: list@example.org\n"
        "Subject: digest\n"
        "Content-Type: multipart/digest; boundary=d\n"
        "\n"
        "--d\n"
        "\n"
        "From: one@example.org\n"
        "Subject: one\n"
        "\n"
        "first\n"
        "--d\n"
        "\n"
        "From: two@example.org\n"
        "Subject: two\n"
        "\n"
        "second\n"
        "--d--\n"),
    "odd-content-types": _crlf(
        "From: a@example.org\n"
        "Subject: odd types\n"
        "Content-Type: multipart/mixed; boundary=o\n"
        "\n"
        "--o\n"
        "Content-Type: text\n"
        "\n"
        "no subtype\n"
        "--o\n"
        "Content-Type: ;;garbage\n"
        "\n"
        "garbage type\n"
        "--o\n"
        "Content-Type: image/png\n"
        "Content-Transfer-Encoding: x-unknown\n"
        "\n"
        "????\n"
        "--o--\n"),
    "prefix-boundaries": _crlf(
        "From: a@example.org\n"
        "Subject: boundary prefixes\n"
        "Content-Type: multipart/mixed; boundary=abc\n"
        "\n"
        "--abc\n"
        "Content-Type: multipart/alternative; boundary=abcdef\n"
        "\n"
        "--abcdef\n"
        "Content-Type: text/plain\n"
        "\n"
        "inner one\n"
        "--abcdef--\n"
        "--abc\n"
        "Content-Type: text/plain\n"
        "\n"
        "outer two\n"
        "--abc--\n"),
    "odd-addresses": _crlf(
        "From: \"Quoted \\\\ Name\" <q@example.org>, bare@example.org,\n"
        " nodomain, =?iso-8859-1?q?Andr=E9?= <andre@example.fr>\n"
        "To: (comment only) , Some Name <broken@>\n"
        "Reply-To: \n"
        "Date:   Tue, 1 Jul 2003 10:52:37 +0200  \n"
        "Subject:\tleading tab\n"
        "In-Reply-To: <a@b> <c@d>\n"
        "\n"
        "x\n"),
    "binary-parts": _crlf(
        "From: a@example.org\n"
        "Subject: binary\n"
        "Content-Type: multipart/mixed; boundary=bb\n"
        "\n"
        "--bb\n"
        "Content-Type: text/plain; charset=iso-8859-1\n"
        "Content-Transfer-Encoding: Quoted-Printable\n"
        "\n"
        "caf=E9 soft=\n"
        "break, trailing   \n"
        "--bb\n"
        "Content-Type: application/octet-stream\n"
        "Content-Transfer-Encoding: BASE64\n"
        "\n"
        "AAEC\n"
        "AwQF\n"
        "Bgc=\n"
        "--bb--\n"),
    "comments-and-case": _crlf(
        "From:<tight@example.org>\n"
        "Subject:tight\n"
        "Subject: second subject\n"
        "To: one@example.org\n"
        "To: two@example.org\n"
        "Content-Type: TEXT/HTML (a comment); CHARSET=\"UTF-8\" (another)\n"
        "Content-Transfer-Encoding: BASE64\n"
        "Content-Disposition: ATTACHMENT; FILENAME=\"X.TXT\"\n"
        "Content-Language: en\n"
        "\n"
        "PGI+aGk8L2I+\n"),
    "no-header": b"\r\nbody only, no header at all\r\n",
    "cr-and-nul": (b"From: a@example.org\r\nSubject: bare\rCR\r\n\r\nnul \x00 byte\r\n"
                   b"bare\rCR\r\n"),
    "only-close-delimiter": _crlf(
        "From: a@example.org\n"
        "Content-Type: multipart/mixed; boundary=c\n"
        "\n"
        "preamble\n"
        "--c--\n"),
    "rfc822-base64": _crlf(
        "From: a@example.org\n"
        "Content-Type: multipart/mixed; boundary=m\n"
        "\n"
        "--m\n"
        "Content-Type: message/rfc822\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "RnJvbTogeEB5DQpTdWJqZWN0OiBpbm5lcg0KDQpoaQ0K\n"
        "--m--\n"),
    "padded-delimiters": _crlf(
        "From: a@example.org\n"
        "Content-Type: multipart/alternative; boundary=\"a b c\"\n"
        "\n"
        "--a b c   \n"
        "Content-Type: text/plain\n"
        "\n"
        "one\n"
        "--a b c\t\n"
        "\n"
        "two\n"
        "--a b c--  \n"),
}


def corpus() -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))}


def _check(node: Node, start: int, end: int) -> None:
    assert start <= node.header_start <= node.body_start <= node.body_end <= end
    for child in node.children:
        _check(child, node.body_start, node.body_end)
    if node.message is not None:
        assert node.message.header_start == node.body_start
        _check(node.message, node.body_start, node.body_end)


@pytest.mark.parametrize("name", sorted(SAMPLES) + sorted(corpus()))
def test_every_sample_parses_into_nested_offsets(name: str) -> None:
    raw = SAMPLES.get(name) or corpus()[name]
    parsed = parse_message(raw)
    assert parsed.size >= len(raw)
    _check(parsed.root, 0, parsed.size)
    assert parsed.envelope.startswith(b"(") and parsed.bodystructure.startswith(b"(")
