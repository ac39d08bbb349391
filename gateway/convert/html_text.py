"""HTML rendered as plain text, for the body triangle and for mail without a text part.

Built on :mod:`html.parser`: block elements end lines, list items get ``-`` or
numbers, table cells tabs, links become ``text <url>``, scripts and styles
vanish. Linear in its input.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from gateway.convert.codepages import META_CHARSET, codec, codepage_of

_BLOCKS = frozenset("address article aside blockquote center dd div dl dt fieldset figcaption "
                    "figure footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section "
                    "table tr ul".split())
_PARAGRAPHS = frozenset("p h1 h2 h3 h4 h5 h6 blockquote pre table ul ol".split())
_HIDDEN = frozenset("script style head title template noscript".split())


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = self.pre = 0
        self.lists: list[list[Any]] = []
        self.links: list[tuple[str, int]] = []

    def newline(self, count: int = 1) -> None:
        """End the line, so that ``count - 1`` blank lines follow what was written."""
        have = 0
        for piece in reversed(self.out):
            ends = len(piece) - len(piece.rstrip("\n"))
            have += ends
            if ends < len(piece) or have >= count:
                break
        else:
            return  # nothing written yet: no leading blank lines
        if have < count:
            self.out.append("\n" * (count - have))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag in _BLOCKS:
            self.newline(2 if tag in _PARAGRAPHS and not self.lists else 1)
        if tag == "pre":
            self.pre += 1
        elif tag in ("ul", "ol") and len(self.lists) < 64:
            self.lists.append([tag, 0])
        elif tag == "li" and self.lists:
            self.lists[-1][1] += 1
            kind, number = self.lists[-1]
            bullet = "- " if kind == "ul" else f"{number}. "
            self.out.append("  " * (len(self.lists) - 1) + bullet)
        elif tag in ("td", "th") and self.out and not self.out[-1].endswith("\n"):
            self.out.append("\t")
        elif tag == "a" and len(self.links) < 64:
            self.links.append((dict(attrs).get("href") or "", len(self.out)))
        elif tag == "img" and (alt := dict(attrs).get("alt")):
            self.handle_data(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            target = href[7:] if href.lower().startswith("mailto:") else href
            if href and not href.startswith(("#", "javascript:")) and target != label:
                self.out.append(f" <{href}>" if label else href)
        elif tag in _BLOCKS:
            if tag in ("ul", "ol") and self.lists:
                self.lists.pop()
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
            self.newline(2 if tag in _PARAGRAPHS and not self.lists else 1)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if not self.pre:
            data = re.sub(r"[ \t\r\n\f\xa0]+", " ", data)
            if not self.out or self.out[-1].endswith(("\n", "\t", " ")):
                data = data.lstrip(" ")
        if data:
            self.out.append(data.replace("\xa0", " "))


def text_from_html(html_body: bytes | str, codepage: int | None = None) -> str:
    """Readable plain text of an HTML body (bytes in ``codepage``, or sniffed, or UTF-8)."""
    if isinstance(html_body, bytes):
        html_body = _decode_html(html_body, codepage)
    parser = _TextParser()
    parser.feed(html_body)
    parser.close()
    lines = [line.rstrip(" ") for line in "".join(parser.out).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def _decode_html(data: bytes, codepage: int | None) -> str:
    if codepage is None and (found := META_CHARSET.search(data[:4096])):
        codepage = codepage_of(found.group(1).decode("ascii", "replace"))
    if codepage is not None:
        return data.decode(codec(codepage), errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")
