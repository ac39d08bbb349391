"""The body triangle: plain text, HTML and RTF of a message, each made from the others.

Best effort, by design. What it does:

- :func:`html_from_rtf` de-encapsulates HTML from RTF marked ``\\fromhtml1``
  (MS-OXRTFEX): ``{\\*\\htmltag}`` groups are copied, text between them is
  copied unless ``\\htmlrtf`` is on, ``\\par``/``\\tab``/``\\'hh``/``\\uN`` are
  decoded. The result is bytes in the RTF's code page (``\\ansicpg``);
  characters that code page lacks become numeric character references.
- :func:`text_from_rtf` reads plain text from any RTF: ``\\fromtext``
  encapsulation, ``\\fromhtml1`` (through :func:`text_from_html`), or ordinary
  RTF with destinations (font table, pictures, field instructions, ...) skipped
  and ``\\'hh`` decoded in the current font's charset.
- :func:`text_from_html` (:mod:`gateway.convert.html_text`, re-exported
  here) renders HTML as text.
- :func:`rtf_from_html` / :func:`rtf_from_text` encapsulate the other way;
  :func:`html_from_rtf` and :func:`text_from_rtf` give the input back (HTML
  byte for byte; text with line ends as ``\\n``).
- :func:`fill_bodies` fills whichever of PidTagBody, PidTagHtml and
  PidTagRtfCompressed a message lacks from its native body and sets
  PidTagNativeBody.

Text comes out with ``\\n`` line ends. Limits: no layout in RTF → text
(tables become tab-separated lines, list numbers only as the RTF spells them
out); HTML made from plain RTF or text is minimal (paragraphs and line
breaks); encapsulated HTML keeps its bytes, so a font whose charset differs
from the document's is not re-encoded; ``{\\*\\mhtmltag}`` groups (the
rewritten-URL twin of a tag) are skipped and the ``\\htmltag`` kept; the
``PidTagRtfSync*`` properties are not computed. Input is hostile: the RTF
walker iterates with a bounded stack (groups deeper than :data:`MAX_NESTING`
are skipped), every conversion is linear in its input, and compressed RTF is
inflated with a size bound.
"""

from __future__ import annotations

import html
import re
from typing import Any

from gateway.convert import rtf as lzfu
from gateway.convert.codepages import META_CHARSET, codec, codepage_of
from gateway.convert.html_text import text_from_html
from gateway.store import tags as T

MAX_NESTING = 200
MAX_RTF = 32 * 1024 * 1024
NATIVE_PLAIN, NATIVE_RTF, NATIVE_HTML = 1, 2, 3

_CHARSET_CP = {0: 1252, 2: 1252, 77: 10000, 128: 932, 129: 949, 130: 1361, 134: 936, 136: 950,
               161: 1253, 162: 1254, 163: 1258, 177: 1255, 178: 1256, 186: 1257, 204: 1251,
               222: 874, 238: 1250, 255: 437}
_SKIP = frozenset(b"fonttbl colortbl stylesheet info pict header headerl headerr headerf footer "
                  b"footerl footerr footerf fldinst listtable listoverridetable revtbl rsidtbl "
                  b"themedata colorschememapping latentstyles datastore xmlnstbl filetbl object "
                  b"objdata nonshppict generator ftnsep ftnsepc aftnsep aftnsepc".split())
_CHARS = {b"par": "\n", b"line": "\n", b"sect": "\n", b"page": "\n", b"row": "\n",
          b"cell": "\t", b"tab": "\t", b"emdash": "\u2014", b"endash": "\u2013",
          b"lquote": "\u2018", b"rquote": "\u2019", b"ldblquote": "\u201c",
          b"rdblquote": "\u201d", b"bullet": "\u2022", b"emspace": "\u2003",
          b"enspace": "\u2002", b"~": "\xa0", b"_": "\u2011", b"\n": "\n", b"\r": "\n",
          b"{": "{", b"}": "}", b"\\": "\\"}
_TOKEN = re.compile(rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\(.)|([{}])"
                    rb"|([^\\{}\r\n]+)|[\r\n]+|\\", re.S)


# -- RTF reading ---------------------------------------------------------------------------------

def rtf_header(rtf: bytes) -> dict[bytes, int | None]:
    """Control words of the RTF header (before the first group or text): ``fromhtml``, ..."""
    found: dict[bytes, int | None] = {}
    pos = 1 if rtf[:1] == b"{" else 0
    while len(found) < 64 and (m := _TOKEN.match(rtf, pos)):
        pos = m.end()
        if m.group(1):
            found[m.group(1)] = int(m.group(2)) if m.group(2) else None
        elif m.group(5) or m.group(6) or m.group(4):
            break
    return found


def _walk(rtf: bytes, *, encapsulated: bool, as_bytes: bool) -> tuple[bytes | str, str]:
    """Walk RTF without recursion; return its text (bytes or str) and the document codec."""
    head = rtf_header(rtf)
    doc = codec(head.get(b"ansicpg") or 1252)
    fonts: dict[int, str] = {}
    out_b, out_s, pending = bytearray(), list[str](), bytearray()
    # group state: skip, htmlrtf, in_htmltag, font codec, \uc
    state: tuple[bool, bool, bool, str, int] = (False, False, False, doc, 1)
    stack: list[tuple[bool, bool, bool, str, int]] = []
    overflow, fresh, star, in_fonts, font_no, fallback, high = 0, False, False, 0, 0, 0, 0

    def emit_bytes(data: bytes) -> None:
        if as_bytes:
            out_b.extend(data)
        else:
            pending.extend(data)

    def emit_text(text: str, cur: str) -> None:
        if as_bytes:
            out_b.extend(text.encode(doc, errors="xmlcharrefreplace"))
        else:
            flush(cur)
            out_s.append(text)

    def flush(cur: str) -> None:
        if pending:
            out_s.append(pending.decode(cur, errors="replace"))
            pending.clear()

    pos, size = 0, len(rtf)
    while pos < size:
        m = _TOKEN.match(rtf, pos)
        if m is None:  # pragma: no cover - the pattern matches any byte
            break
        pos = m.end()
        word, arg, hexbyte, symbol, brace, text = m.groups()
        if brace == b"{":
            if overflow or len(stack) >= MAX_NESTING:
                overflow += 1
                continue
            stack.append(state)
            fresh, star = True, False
            continue
        if brace == b"}":
            if overflow:
                overflow -= 1
            elif stack:
                if in_fonts and len(stack) <= in_fonts:
                    in_fonts = 0
                if not as_bytes and state[3] != stack[-1][3]:
                    flush(state[3])
                state = stack.pop()
                if not stack:
                    break  # the document's group is closed; what follows is padding
            fresh = False
            continue
        if overflow:
            continue
        skip, htmlrtf, in_tag, cur, uc = state
        if fresh and symbol == b"*":
            star = True
            continue
        if fresh and word is not None:
            fresh = False
            if word == b"htmltag" and star and encapsulated:
                state = (skip, htmlrtf, True, cur, uc)
                continue
            if word == b"fonttbl":
                in_fonts = len(stack)
            if star or word in _SKIP:
                state = (True, htmlrtf, in_tag, cur, uc)
                if not in_fonts:  # in the font table, \f and \fcharset are read below
                    continue
        fresh = False
        if in_fonts and word is not None and arg is not None and len(fonts) < 4096:
            if word == b"f":
                font_no = int(arg)
            elif word == b"fcharset" and int(arg) != 1:
                fonts[font_no] = codec(_CHARSET_CP.get(int(arg)), doc)
            continue
        if word == b"bin" and arg is not None:
            pos += max(0, int(arg))
            continue
        if skip:
            continue
        if word == b"htmlrtf" and encapsulated:
            state = (skip, arg is None or arg != b"0", in_tag, cur, uc)
            continue
        if word == b"uc" and arg is not None:
            state = (skip, htmlrtf, in_tag, cur, max(0, min(int(arg), 10)))
            continue
        if word == b"f" and arg is not None and not as_bytes:
            flush(cur)
            state = (skip, htmlrtf, in_tag, fonts.get(int(arg), doc), uc)
            continue
        if htmlrtf and not in_tag:
            continue
        if fallback and (text or hexbyte or word or symbol):
            if text and len(text) > fallback:
                text, fallback = text[fallback:], 0
            else:
                fallback -= 1
                continue
        if text:
            emit_bytes(text)
        elif hexbyte:
            emit_bytes(bytes.fromhex(hexbyte.decode()))
        elif word == b"u" and arg is not None:
            unit, fallback = int(arg) % 0x10000, uc
            if 0xD800 <= unit < 0xDC00:
                high = unit  # the first half of a surrogate pair; the second follows
                continue
            if 0xDC00 <= unit < 0xE000:
                unit = 0x10000 + ((high - 0xD800) << 10) + unit - 0xDC00 if high else 0xFFFD
            high = 0
            emit_text(chr(unit), cur)
        elif (key := word or symbol) in _CHARS and not (in_tag and key in (b"\n", b"\r")):
            char = _CHARS[key]
            emit_text("\r\n" if encapsulated and as_bytes and char == "\n" else char, cur)
    if as_bytes:
        return bytes(out_b), doc
    flush(state[3])
    return "".join(out_s).replace("\x00", ""), doc


def html_from_rtf(rtf: bytes) -> bytes | None:
    """The HTML encapsulated in ``rtf``, or None when it was not made from HTML."""
    return html_and_codepage_from_rtf(rtf)[0]


def html_and_codepage_from_rtf(rtf: bytes) -> tuple[bytes | None, int | None]:
    """:func:`html_from_rtf` plus the code page its bytes are in (the RTF's ``\\ansicpg``)."""
    head = rtf_header(rtf)
    if b"fromhtml" not in head:
        return None, None
    html_bytes, _ = _walk(rtf, encapsulated=True, as_bytes=True)
    assert isinstance(html_bytes, bytes)
    return html_bytes, head.get(b"ansicpg") or 1252


def text_from_rtf(rtf: bytes) -> str:
    """Plain text of ``rtf``: de-encapsulated when it came from text or HTML."""
    head = rtf_header(rtf)
    if b"fromhtml" in head:
        html_bytes, codepage = html_and_codepage_from_rtf(rtf)
        return text_from_html(html_bytes or b"", codepage)
    text, _ = _walk(rtf, encapsulated=b"fromtext" in head, as_bytes=False)
    assert isinstance(text, str)
    return text


# -- writing RTF ---------------------------------------------------------------------------------

_PROLOGUE = (b"{\\rtf1\\ansi\\ansicpg%d\\%s \\deff0{\\fonttbl\r\n{\\f0\\fswiss Arial;}\r\n"
             b"{\\f1\\fmodern Courier New;}}\r\n\\uc1\\pard\\plain\\deftab360 \\f0\\fs20 ")
_TAGS = re.compile(rb"<!--.*?(?:-->|$)|<![^>]*>?|<\?[^>]*>?|</?[A-Za-z][^\s/>]*"
                   rb"(?:[^>\"']|\"[^\"]*\"|'[^']*')*>?", re.S)
_RAW = re.compile(rb"[\\{}\x80-\xff\r\n\x00-\x08\x0b-\x1f\x7f]")
_RTF_BREAK = frozenset(b"br p div tr li h1 h2 h3 h4 h5 h6 table blockquote".split())
_RTF_HIDDEN = frozenset(b"head style script title".split())


def _escape(data: bytes) -> bytes:
    """Bytes as RTF text: ``\\ { }`` escaped, others outside printable ASCII as ``\\'hh``."""
    return _RAW.sub(lambda m: b"\\" + m.group() if m.group() in b"\\{}"
                    else b"\\'%02x" % m.group()[0], data)


def rtf_from_html(html_body: bytes | str, codepage: int | None = None) -> bytes:
    """RTF encapsulating ``html_body`` (``\\fromhtml1``); :func:`html_from_rtf` returns it."""
    if isinstance(html_body, str):
        codepage = codepage or 65001
        data = html_body.encode(codec(codepage, "utf-8"), errors="xmlcharrefreplace")
    else:
        data = html_body
        if codepage is None and (found := META_CHARSET.search(data[:4096])):
            codepage = codepage_of(found.group(1).decode("ascii", "replace"))
    parts = [_PROLOGUE % (codepage or 1252, b"fromhtml1")]
    hidden, pos = 0, 0
    for m in _TAGS.finditer(data):
        parts.append(_html_text(data[pos:m.start()], hidden > 0))
        tag = m.group()
        name = re.match(rb"</?([A-Za-z0-9]*)", tag)
        word = name.group(1).lower() if name else b""
        if word in _RTF_HIDDEN:
            hidden = max(0, hidden + (-1 if tag.startswith(b"</") else 1))
        parts.append(b"{\\*\\htmltag%d %s}" % (8 if tag.startswith(b"</") else 0, _escape(tag)))
        if word in _RTF_BREAK and not hidden:
            parts.append(b"\\htmlrtf \\par \\htmlrtf0 ")
        pos = m.end()
    parts.append(_html_text(data[pos:], hidden > 0))
    parts.append(b"}")
    return b"".join(parts)


def _html_text(chunk: bytes, hidden: bool) -> bytes:
    """Text between tags: visible runs as RTF text, line ends and hidden text as tags."""
    if not chunk:
        return b""
    if hidden:
        return b"{\\*\\htmltag0 %s}" % _escape(chunk)
    pieces = re.split(rb"(\r\n|\r|\n)", chunk)
    return b"".join(b"{\\*\\htmltag0 %s}" % _escape(p) if i % 2 else _escape(p)
                    for i, p in enumerate(pieces))


def rtf_from_text(text: str) -> bytes:
    """RTF encapsulating plain ``text`` (``\\fromtext``); :func:`text_from_rtf` returns it."""
    body = []
    for ch in re.sub(r"\r\n?", "\n", text):
        if ch in "\\{}":
            body.append("\\" + ch)
        elif ch == "\n":
            body.append("\\par\r\n")
        elif ch == "\t":
            body.append("\\tab ")
        elif " " <= ch <= "~":
            body.append(ch)
        else:
            for unit in _utf16_units(ch):
                body.append(f"\\u{unit - 0x10000 if unit >= 0x8000 else unit}?")
    return _PROLOGUE % (1252, b"fromtext") + "".join(body).encode("ascii") + b"}"


def _utf16_units(ch: str) -> list[int]:
    raw = ch.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(raw[i:i + 2], "little") for i in range(0, len(raw), 2)]


def html_from_text(text: str, codepage: int | None = None) -> bytes:
    """Minimal HTML for plain text (paragraphs, line breaks), in ``codepage`` or UTF-8."""
    name = codec(codepage, "utf-8")
    label = f"windows-{codepage}" if name.startswith("cp125") else name
    paragraphs = re.split(r"\n[ \t]*\n", re.sub(r"\r\n?", "\n", text).strip("\n"))
    body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>' + chr(10))}</p>\n"
                   for p in paragraphs if p.strip())
    return (f'<html><head><meta charset="{label}"></head><body>\n{body}</body></html>\n'
            ).encode(name, errors="xmlcharrefreplace")


# -- the triangle --------------------------------------------------------------------------------

def fill_bodies(props: dict[Any, Any]) -> None:
    """Fill the missing bodies of ``props`` from its native one; set PidTagNativeBody.

    The native body is PidTagNativeBody when it names a body that is there;
    otherwise RTF when PidTagRtfInSync says it is current (or it is the only
    body), else HTML, else plain text. RTF made from HTML or text is
    encapsulated, so it de-encapsulates to the original. Broken RTF is
    ignored rather than raised.
    """
    html_key = next((k for k in (T.PidTagHtml, T.PidTagBodyHtml) if props.get(k)), None)
    rtf_text = _rtf_of(props)
    have = {NATIVE_PLAIN: bool(props.get(T.PidTagBody)), NATIVE_HTML: html_key is not None,
            NATIVE_RTF: rtf_text is not None}
    native = props.get(T.PidTagNativeBody)
    if not have.get(native or 0):
        if have[NATIVE_RTF] and (props.get(T.PidTagRtfInSync) or not any(
                (have[NATIVE_PLAIN], have[NATIVE_HTML]))):
            native = NATIVE_RTF
        else:
            native = next((n for n in (NATIVE_HTML, NATIVE_PLAIN) if have[n]), None)
    if native is None:
        return
    html_body: bytes | str | None = props[html_key] if html_key is not None else None
    codepage = props.get(T.PidTagInternetCodepage)
    if native == NATIVE_RTF and rtf_text is not None:
        head = rtf_header(rtf_text)
        if b"fromhtml" in head:
            native = NATIVE_HTML
            if html_key is None:
                found, rtf_codepage = html_and_codepage_from_rtf(rtf_text)
                if codepage is None:
                    props[T.PidTagInternetCodepage] = codepage = rtf_codepage
                elif found and codec(codepage) != codec(rtf_codepage):  # keep the two in step
                    found = found.decode(codec(rtf_codepage), errors="replace").encode(
                        codec(codepage), errors="xmlcharrefreplace")
                props[T.PidTagHtml] = html_body = found
        elif b"fromtext" in head:
            native = NATIVE_PLAIN
        if not have[NATIVE_PLAIN]:
            props[T.PidTagBody] = text_from_rtf(rtf_text)
    elif native == NATIVE_HTML and html_body is not None:
        if not have[NATIVE_PLAIN]:
            props[T.PidTagBody] = text_from_html(html_body, codepage)
        if rtf_text is None:
            props[T.PidTagRtfCompressed] = lzfu.compress(rtf_from_html(html_body, codepage))
            props[T.PidTagRtfInSync] = True
    elif native == NATIVE_PLAIN and rtf_text is None:
        props[T.PidTagRtfCompressed] = lzfu.compress(rtf_from_text(props[T.PidTagBody]))
        props[T.PidTagRtfInSync] = True
    if not (props.get(T.PidTagHtml) or props.get(T.PidTagBodyHtml)) and props.get(T.PidTagBody):
        props[T.PidTagHtml] = html_from_text(props[T.PidTagBody], codepage)
        props.setdefault(T.PidTagInternetCodepage, 65001)
    props[T.PidTagNativeBody] = native


def _rtf_of(props: dict[Any, Any]) -> bytes | None:
    data = props.get(T.PidTagRtfCompressed)
    if not data:
        return None
    for strict in (True, False):
        try:
            return lzfu.decompress(data, MAX_RTF, check_crc=strict)
        except lzfu.RtfError:
            continue
    return None
