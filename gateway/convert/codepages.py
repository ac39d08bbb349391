"""Windows code pages and Python codecs: the numbers MAPI and RTF use, the names mail uses.

PidTagInternetCodepage, RTF's ``\\ansicpg`` and TNEF's OEM code page are
Windows code page numbers; Python knows codecs by name. These two functions
go between them, falling back rather than raising.
"""

from __future__ import annotations

import codecs
import re

_CODEC = {65001: "utf-8", 20127: "ascii", 20866: "koi8-r", 21866: "koi8-u", 10000: "mac-roman",
          50220: "iso2022-jp", 51932: "euc-jp", 54936: "gb18030", 1200: "utf-16-le",
          1201: "utf-16-be", 932: "shift_jis", 936: "gbk", 950: "big5", 949: "cp949",
          **{28590 + n: f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15)}}
_CODEPAGE = {codecs.lookup(name).name: number for number, name in _CODEC.items()} | {
    "gb2312": 936, "euc_kr": 949, "big5hkscs": 950}
_ALIASES = {"iso-8859-8-i": "iso8859-8", "iso-8859-6-i": "iso8859-6", "windows-874": "cp874",
            "x-mac-roman": "mac-roman"}
"""Charset names mail uses that Python's codec registry does not know."""

META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.I)
"""The charset an HTML document declares in a ``<meta>`` tag."""


def codec(codepage: int | None, default: str = "cp1252") -> str:
    """The Python codec for a Windows code page number (``default`` when unknown)."""
    if codepage is None:
        return default
    try:
        return codecs.lookup(_CODEC.get(codepage, f"cp{codepage}")).name
    except LookupError:
        return default


def codepage_of(name: str) -> int | None:
    """The Windows code page number of a charset name, if we know one."""
    try:
        norm = codecs.lookup(_ALIASES.get(name.lower(), name)).name
    except LookupError:
        return None
    found = re.fullmatch(r"cp(\d+)", norm)
    return _CODEPAGE.get(norm) or (int(found.group(1)) if found else None)
