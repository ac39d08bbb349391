"""The body triangle: RTF de-encapsulation, RTF/HTML → text, encapsulation, fill_bodies."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.convert import body
from gateway.convert.body import (
    fill_bodies,
    html_from_rtf,
    rtf_from_html,
    rtf_from_text,
    text_from_html,
    text_from_rtf,
)
from gateway.convert.rtf import compress, decompress
from gateway.store import tags as T

RTF = Path(__file__).parent.parent / "corpus" / "rtf"

OUTLOOK_HTML = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.0 Transitional//EN">\r\n<html><head>\r\n'
    b'<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">\r\n'
    b'<style><!--\r\np.MsoNormal {margin:0cm; font-family:"Calibri",sans-serif;}\r\n--></style>'
    b'</head>\r\n<body lang="DE" link="#0563C1"><div class="WordSection1"><p class="MsoNormal">'
    b'<span lang="DE">Caf\xe9, na\xefve, 10 \x80 \x93quoted\x94 {braces}&nbsp;'
    b'<a href="https://example.com/?a=1&amp;b=2">the site</a></span></p>\r\n'
    b'<p class="MsoNormal">Tab\tand &#128512; emoji'
    b'<img width="16" height="16" src="cid:image001.png@01D5A1B2.C3D4E5F0"></p>\r\n'
    b"</div></body></html>")


def test_outlook_encapsulated_html() -> None:
    """outlook-html.rtf is written to match Outlook's encapsulation (corpus README)."""
    rtf = (RTF / "outlook-html.rtf").read_bytes()
    assert html_from_rtf(rtf) == OUTLOOK_HTML
    assert body.html_and_codepage_from_rtf(rtf)[1] == 1252
    assert text_from_rtf(rtf) == ("Café, naïve, 10 € “quoted” {braces} the site "
                                  "<https://example.com/?a=1&b=2>\n\nTab and 😀 emoji")


def test_exchange_encapsulated_html() -> None:
    """A real Exchange 2013 voice-mail body (corpus: multi-value-attribute)."""
    html = html_from_rtf((RTF / "multi-value-attribute.rtf").read_bytes())
    assert html is not None
    assert html.startswith(b'<html><head>\r\n<style type="text/css"> a:link { color: #3399ff; }')
    assert (b'font-weight: bold;">You received a voice mail from Curie Conf Room at '
            b'<a style="color: #3399ff; " href="tel:208225">208225</a>.</div><br><table') in html
    assert html.endswith(b"</div></div></body></html>")
    assert b"HYPERLINK" not in html and b"\\" not in html
    assert text_from_rtf((RTF / "multi-value-attribute.rtf").read_bytes()) == \
        "You received a voice mail from Curie Conf Room at 208225 <tel:208225>."


def test_real_text_and_plain_rtf() -> None:
    from_text = text_from_rtf((RTF / "long-filename.rtf").read_bytes())
    assert from_text.startswith("I've attached a temp. license for QARun 4.7.  Do you need")
    assert "\nFrom: Mark Simpson [mailto:msimpson@numega.com]\nSent: Wednesday" in from_text
    assert html_from_rtf((RTF / "long-filename.rtf").read_bytes()) is None
    plain = text_from_rtf((RTF / "rtf.rtf").read_bytes())
    assert plain.startswith("\naafgag'alga'kgk\n\nagka;kgag\n") and "\\hge" in plain
    assert plain.endswith("978-318-6939 (Fax) \n\n")
    assert text_from_rtf((RTF / "triples.rtf").read_bytes()) == "Sample description\n"
    assert text_from_rtf((RTF / "data-before-name.rtf").read_bytes()) == "asdf   \n"


def test_unicode_and_code_pages() -> None:
    rtf = (b"{\\rtf1\\ansi\\ansicpg1251\\deff0{\\fonttbl{\\f0\\fswiss\\fcharset204 Arial;}"
           b"{\\f1\\fnil\\fcharset0 Times;}{\\f2\\fnil\\fcharset128 MS Gothic;}}"
           b"\\f0 \\'cf\\'f0\\'e8\\'e2\\'e5\\'f2 {\\f1 caf\\'e9} {\\f2 \\'93\\'fa\\'96\\'7b}"
           b" \\uc2\\u8364\\'80\\'80 \\uc0\\u8482 \\u-4064 x\\~y\\_z\\emdash}")
    assert text_from_rtf(rtf) == "Привет café 日本 € ™\uf020x\xa0y\u2011z\u2014"


def test_nested_groups_and_destinations() -> None:
    rtf = (b"{\\rtf1{\\info{\\title Hidden}}{\\*\\generator x;}{\\header head}"
           b"a{\\b b{\\i c{\\ul d}}}e{\\*\\unknown skip{\\nested more}}f"
           b"{\\field{\\*\\fldinst HYPERLINK \"u\"}{\\fldrslt link}}"
           b"{\\pict\\pngblip 89504e47}\\bin4 {}\\}g\\par\\line\\tab h\\cell i\\row}trailing")
    assert text_from_rtf(rtf) == "abcdeflinkg\n\n\th\ti\n"


def test_hostile_nesting_and_size() -> None:
    deep = b"{\\rtf1 " + b"{" * 200_000 + b"x" + b"}" * 200_000 + b"after}"
    started = time.perf_counter()
    assert text_from_rtf(deep) == "after"  # groups beyond MAX_NESTING are dropped
    assert html_from_rtf(b"{\\rtf1\\fromhtml1 " + deep[7:]) == b"after"
    assert time.perf_counter() - started < 5
    unbalanced = b"{\\rtf1 " + b"}" * 1000 + b"{" * 1000 + b"tail"
    assert isinstance(text_from_rtf(unbalanced), str)
    giant = b"{\\rtf1\\ansi " + b"word \\par " * 400_000 + b"}"
    started = time.perf_counter()
    assert len(text_from_rtf(giant)) == 2_400_000
    assert time.perf_counter() - started < 8
    assert text_from_rtf(b"{\\rtf1 x\\bin999999999999 ignored}") == "x"
    assert text_from_rtf(b"") == "" and html_from_rtf(b"not rtf") is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=500))
def test_rtf_garbage_never_escapes(noise: bytes) -> None:
    for data in (noise, b"{\\rtf1\\fromhtml1 " + noise, b"{\\rtf1\\fromtext " + noise):
        assert isinstance(text_from_rtf(data), str)
        html_from_rtf(data)


# -- HTML to text --------------------------------------------------------------------------------

def test_text_from_html() -> None:
    page = ("<html><head><title>T</title><style>p{}</style><script>alert(1)</script></head>"
            "<body><h1>Title</h1><p>One&nbsp;two &amp; <b>three</b>\n   four</p>"
            "<div>Block<br>break</div><ul><li>a</li><li>b<ol><li>x</li><li>y</li></ol></li></ul>"
            "<p>See <a href='https://example.org/'>the site</a>, <a href='#top'>top</a>, "
            "<a href='mailto:a@b.c'>a@b.c</a> and <a href='https://x.y/'>https://x.y/</a>.</p>"
            "<table><tr><td>c1</td><td>c2</td></tr><tr><td>c3</td><td>c4</td></tr></table>"
            "<pre>  keep\n    spacing</pre><img alt='[logo]' src='x'>&#x1F600;</body></html>")
    assert text_from_html(page) == (
        "Title\n\nOne two & three four\n\nBlock\nbreak\n\n- a\n- b\n  1. x\n  2. y\n\n"
        "See the site <https://example.org/>, top, a@b.c and https://x.y/.\n\n"
        "c1\tc2\nc3\tc4\n\n  keep\n    spacing\n\n[logo]😀")


def test_text_from_html_charsets() -> None:
    assert text_from_html(b"<p>x</p>") == "x"
    assert text_from_html(b"<p>caf\xe9</p>", 28591) == "café"
    assert text_from_html(b'<meta charset="koi8-r"><p>\xf0\xd2\xc9\xd7\xc5\xd4</p>') == "Привет"
    assert text_from_html(b"<p>caf\xe9</p>") == "café"  # not UTF-8: Windows-1252
    assert text_from_html("<p>ünïcödé</p>".encode()) == "ünïcödé"


def test_text_from_html_hostile() -> None:
    deep = "<div>" * 100_000 + "x" + "</div>" * 100_000
    started = time.perf_counter()
    assert text_from_html(deep) == "x"
    assert text_from_html("<ul>" * 5000 + "<li>y") == "  " * 63 + "- y"
    assert text_from_html("<br>" * 100_000 + "z") == "z"
    assert text_from_html("<a href=x>" * 10_000 + "w").startswith("w")
    assert time.perf_counter() - started < 10


# -- writing RTF ---------------------------------------------------------------------------------

def test_rtf_from_html_round_trip() -> None:
    rtf = rtf_from_html(OUTLOOK_HTML)
    assert rtf.startswith(b"{\\rtf1\\ansi\\ansicpg1252\\fromhtml1 ")
    assert html_from_rtf(rtf) == OUTLOOK_HTML
    assert html_from_rtf(decompress(compress(rtf))) == OUTLOOK_HTML
    text = "<p>Grüße 😀</p>"
    utf8 = rtf_from_html(text)
    assert b"\\ansicpg65001" in utf8 and html_from_rtf(utf8) == text.encode()
    assert text_from_rtf(utf8) == "Grüße 😀"
    assert text_from_rtf(rtf_from_html(b"<p>a</p>\n<script>var x = '<p>';</script><p>b</p>")) \
        == "a\n\nb"


html_like = st.lists(st.one_of(
    st.sampled_from([b"<p>", b"</p>", b"<br>", b"<a href='x\"y'>", b"</a>", b"<!-- c -->",
                     b"<style>p{}</style>", b"\r\n", b"\n", b"\\", b"{", b"}", b"&amp;",
                     b"<!DOCTYPE html>", b"<", b">", b"<b", b"\t"]),
    st.binary(max_size=20)), max_size=40).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(html_like)
def test_html_round_trip_property(html: bytes) -> None:
    assert html_from_rtf(rtf_from_html(html)) == html


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_text_round_trip_property(text: str) -> None:
    expected = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    assert text_from_rtf(rtf_from_text(text)) == expected


# -- fill_bodies ---------------------------------------------------------------------------------

def test_fill_from_plain() -> None:
    props = {T.PidTagBody: "Hello\nworld <&>\n\nSecond"}
    fill_bodies(props)
    assert props[T.PidTagNativeBody] == body.NATIVE_PLAIN
    rtf = decompress(props[T.PidTagRtfCompressed])
    assert b"\\fromtext" in rtf and text_from_rtf(rtf) == "Hello\nworld <&>\n\nSecond"
    assert props[T.PidTagRtfInSync] is True
    assert text_from_html(props[T.PidTagHtml], props[T.PidTagInternetCodepage]) == \
        "Hello\nworld <&>\n\nSecond"


def test_fill_from_html() -> None:
    props = {T.PidTagHtml: OUTLOOK_HTML, T.PidTagInternetCodepage: 1252}
    fill_bodies(props)
    assert props[T.PidTagNativeBody] == body.NATIVE_HTML
    assert props[T.PidTagBody].startswith("Café, naïve, 10 €")
    assert html_from_rtf(decompress(props[T.PidTagRtfCompressed])) == OUTLOOK_HTML
    props = {T.PidTagBodyHtml: "<p>only a string</p>"}
    fill_bodies(props)
    assert props[T.PidTagBody] == "only a string" and T.PidTagHtml not in props


def test_fill_from_rtf() -> None:
    outlook = (RTF / "outlook-html.rtf").read_bytes()
    props = {T.PidTagRtfCompressed: compress(outlook), T.PidTagRtfInSync: True}
    fill_bodies(props)
    assert props[T.PidTagNativeBody] == body.NATIVE_HTML
    assert props[T.PidTagHtml] == OUTLOOK_HTML and props[T.PidTagInternetCodepage] == 1252
    assert props[T.PidTagBody].endswith("Tab and 😀 emoji")
    props = {T.PidTagRtfCompressed: compress((RTF / "long-filename.rtf").read_bytes())}
    fill_bodies(props)
    assert props[T.PidTagNativeBody] == body.NATIVE_PLAIN
    assert props[T.PidTagBody].startswith("I've attached")
    props = {T.PidTagRtfCompressed: compress((RTF / "triples.rtf").read_bytes())}
    fill_bodies(props)
    assert props[T.PidTagNativeBody] == body.NATIVE_RTF
    assert props[T.PidTagBody] == "Sample description\n"
    assert b"<p>Sample description</p>" in props[T.PidTagHtml]


def test_fill_prefers_in_sync_rtf_and_native_body() -> None:
    rtf = compress(rtf_from_text("from rtf"))
    props = {T.PidTagBody: "from body", T.PidTagRtfCompressed: rtf, T.PidTagRtfInSync: False}
    fill_bodies(props)
    assert props[T.PidTagNativeBody] == body.NATIVE_PLAIN and props[T.PidTagBody] == "from body"
    assert props[T.PidTagRtfCompressed] == rtf  # existing bodies are never replaced
    props = {T.PidTagHtml: b"<p>h</p>", T.PidTagRtfCompressed: rtf, T.PidTagRtfInSync: True}
    fill_bodies(props)
    assert props[T.PidTagNativeBody] == body.NATIVE_PLAIN and props[T.PidTagBody] == "from rtf"
    props = {T.PidTagHtml: b"<p>h</p>", T.PidTagBody: "b", T.PidTagNativeBody: 1}
    fill_bodies(props)
    assert props[T.PidTagNativeBody] == 1 and T.PidTagRtfCompressed in props


@pytest.mark.parametrize("broken", [b"", b"junk", compress(b"{\\rtf1 x}")[:-3],
                                    compress(b"A" * 100)[:16] + b"\xff" * 40])
def test_fill_survives_broken_rtf(broken: bytes) -> None:
    props = {T.PidTagRtfCompressed: broken, T.PidTagBody: "text"}
    fill_bodies(props)
    assert props[T.PidTagBody] == "text" and props[T.PidTagNativeBody] == body.NATIVE_PLAIN
    props = {T.PidTagRtfCompressed: broken}
    fill_bodies(props)  # nothing usable: nothing filled, nothing raised
    assert T.PidTagBody not in props or isinstance(props[T.PidTagBody], str)


def test_fill_nothing() -> None:
    props: dict = {T.PidTagSubject: "no body"}
    fill_bodies(props)
    assert props == {T.PidTagSubject: "no body"}


def test_codepages() -> None:
    assert body.codec(1252) == "cp1252" and body.codec(65001) == "utf-8"
    assert body.codec(28591) == "iso8859-1" and body.codec(99999) == "cp1252"
    assert body.codepage_of("ISO-8859-8-i") == 28598 and body.codepage_of("bogus") is None
    assert body.codepage_of("Shift_JIS") == 932 and body.codepage_of("windows-1250") == 1250


def test_fill_keeps_the_internet_codepage() -> None:
    props = {T.PidTagBody: "café € 😀", T.PidTagInternetCodepage: 1252}
    fill_bodies(props)
    assert b'<meta charset="windows-1252">' in props[T.PidTagHtml]
    assert b"caf\xe9 \x80 &#128512;" in props[T.PidTagHtml]
    assert text_from_html(props[T.PidTagHtml], 1252) == "café € 😀"
    outlook = compress((RTF / "outlook-html.rtf").read_bytes())
    props = {T.PidTagRtfCompressed: outlook, T.PidTagInternetCodepage: 65001}
    fill_bodies(props)
    assert props[T.PidTagInternetCodepage] == 65001
    assert "Café, naïve, 10 € “quoted”".encode() in props[T.PidTagHtml]
