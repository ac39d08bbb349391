"""Charsets of Internet mail and Windows code pages (``PidTagInternetCodepage``).

Reading is forgiving: a charset is looked up through Python's codecs plus the
aliases mailers use that Python does not know (``x-sjis``, ``iso-8859-8-i``,
``windows-874`` ...), and decoded with the superset real mailers mean (a
message labelled ``iso-8859-1`` is read as ``windows-1252``, ``gb2312`` as
``gb18030``, ``ks_c_5601-1987`` as ``cp949``, as browsers do). Text that does
not decode is tried as UTF-8, then decoded with replacement characters: no
function here raises on bad input. NUL characters are dropped from every
decoded string (the store refuses them).

RFC 2047 encoded words are decoded by :func:`decode_words` (adjacent words of
one charset joined before decoding, so a character split across two words
survives) and written by :func:`encode_words`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from functools import lru_cache

UTF8_CODEPAGE = 65001

# Labels Python does not know, and labels read as the superset mailers mean.
_ALIASES = {
    "x-sjis": "cp932", "sjis": "cp932", "shift-jis": "cp932", "shift_jis": "cp932",
    "windows-31j": "cp932", "x-ms-cp932": "cp932", "ms_kanji": "cp932",
    "iso-8859-8-i": "iso8859_8", "iso-8859-6-i": "iso8859_6", "iso-8859-8-e": "iso8859_8",
    "windows-874": "cp874", "x-windows-874": "cp874", "tis-620": "cp874", "iso-8859-11": "cp874",
    "x-gbk": "gb18030", "gbk": "gb18030", "gb2312": "gb18030", "x-gb2312": "gb18030",
    "euc-cn": "gb18030", "cp936": "gb18030", "x-euc-jp": "euc_jp", "x-euc": "euc_jp",
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "euc-kr": "cp949", "x-euc-kr": "cp949",
    "iso-2022-jp": "iso2022_jp_ext", "csiso2022jp": "iso2022_jp_ext",
    "big5": "cp950", "x-x-big5": "cp950", "x-mac-roman": "mac_roman",
    "x-mac-cyrillic": "mac_cyrillic", "x-mac-ce": "mac_latin2", "x-mac-greek": "mac_greek",
    "x-mac-turkish": "mac_turkish", "x-mac-icelandic": "mac_iceland",
    "iso-8859-1": "cp1252", "latin1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252",
    "iso-8859-9": "cp1254", "x-cp1250": "cp1250", "x-cp1251": "cp1251",
    "utf8": "utf-8", "x-unicode20utf8": "utf-8", "unicode-1-1-utf-8": "utf-8",
    "unicode": "utf-16-le", "x-utf-16le": "utf-16-le",
}
_UNKNOWN = {"x-unknown", "unknown", "unknown-8bit", "x-user-defined", "default", "8bit",
            "7bit", "binary", "none", "charset", ""}

# Python codec name -> Windows code page.
_CODEPAGES = {
    "utf-8": 65001, "ascii": 20127, "cp1252": 1252, "latin-1": 28591, "iso8859-1": 28591,
    "iso8859-2": 28592, "iso8859-3": 28593, "iso8859-4": 28594, "iso8859-5": 28595,
    "iso8859-6": 28596, "iso8859-7": 28597, "iso8859-8": 28598, "iso8859-9": 28599,
    "iso8859-13": 28603, "iso8859-15": 28605, "cp1250": 1250, "cp1251": 1251, "cp1253": 1253,
    "cp1254": 1254, "cp1255": 1255, "cp1256": 1256, "cp1257": 1257, "cp1258": 1258,
    "cp874": 874, "cp932": 932, "shift_jis": 932, "euc_jp": 51932, "iso2022_jp": 50220,
    "iso2022_jp_ext": 50222, "gb2312": 936, "gbk": 936, "gb18030": 54936, "hz": 52936,
    "big5": 950, "cp950": 950, "big5hkscs": 950, "euc_kr": 51949, "cp949": 949,
    "iso2022_kr": 50225, "koi8-r": 20866, "koi8-u": 21866, "utf-16-le": 1200,
    "utf-16-be": 1201, "utf-16": 1200, "utf-7": 65000, "cp437": 437, "cp850": 850,
    "cp852": 852, "cp866": 866, "mac-roman": 10000,
}
# Code page -> (MIME charset name written, Python codec read).
_BY_CODEPAGE = {
    65001: ("utf-8", "utf-8"), 20127: ("us-ascii", "ascii"), 1252: ("windows-1252", "cp1252"),
    28591: ("iso-8859-1", "cp1252"), 28592: ("iso-8859-2", "iso8859_2"),
    28593: ("iso-8859-3", "iso8859_3"), 28594: ("iso-8859-4", "iso8859_4"),
    28595: ("iso-8859-5", "iso8859_5"), 28596: ("iso-8859-6", "iso8859_6"),
    28597: ("iso-8859-7", "iso8859_7"), 28598: ("iso-8859-8", "iso8859_8"),
    28599: ("iso-8859-9", "cp1254"), 28603: ("iso-8859-13", "iso8859_13"),
    28605: ("iso-8859-15", "iso8859_15"), 874: ("windows-874", "cp874"),
    932: ("shift_jis", "cp932"), 51932: ("euc-jp", "euc_jp"),
    50220: ("iso-2022-jp", "iso2022_jp_ext"),
    50221: ("iso-2022-jp", "iso2022_jp_ext"), 50222: ("iso-2022-jp", "iso2022_jp_ext"),
    936: ("gb2312", "gb18030"), 54936: ("gb18030", "gb18030"), 52936: ("hz-gb-2312", "hz"),
    950: ("big5", "cp950"), 51949: ("euc-kr", "cp949"), 949: ("ks_c_5601-1987", "cp949"),
    50225: ("iso-2022-kr", "iso2022_kr"), 20866: ("koi8-r", "koi8_r"), 21866: ("koi8-u", "koi8_u"),
    1200: ("utf-16le", "utf-16-le"), 1201: ("utf-16be", "utf-16-be"), 65000: ("utf-7", "utf-7"),
    437: ("ibm437", "cp437"), 850: ("ibm850", "cp850"), 852: ("ibm852", "cp852"),
    866: ("ibm866", "cp866"), 10000: ("macintosh", "mac_roman"),
}
for _cp in range(1250, 1259):
    _BY_CODEPAGE[_cp] = (f"windows-{_cp}", f"cp{_cp}")

_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_WS = re.compile(r"[ \t\r\n]*")
_WORD_BUDGET = 75 - len("=?utf-8?b??=")


@lru_cache(maxsize=256)
def codec(charset: str | None) -> str | None:
    """The Python codec to read ``charset`` with (supersets applied), or None if unknown."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower().split("*", 1)[0]
    if label in _UNKNOWN or len(label) > 40:
        return None
    label = _ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):
        return None


def decode(data: bytes, charset: str | None) -> str:
    """Text of ``data`` in ``charset``, best effort, never raising; NULs dropped."""
    name = codec(charset)
    text = None
    if name == "cp1252" and charset and charset.strip().lower() in ("us-ascii", "ascii"):
        name = None  # 8-bit text labelled ASCII is most often UTF-8
    if name is not None:
        try:
            text = data.decode(name)
        except (UnicodeError, LookupError):
            text = None
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode(name or "cp1252", "replace")
    return text.replace("\x00", "") if "\x00" in text else text


def decodes_strictly(data: bytes, charset: str | None) -> bool:
    name = codec(charset)
    if name is None:
        return False
    try:
        data.decode(name)
    except (UnicodeError, LookupError):
        return False
    return True


def codepage(charset: str | None) -> int | None:
    """The Windows code page of a MIME charset, or None when it has none."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    if label in ("iso-8859-1", "latin1", "l1", "iso_8859-1"):
        return 28591
    if label in ("us-ascii", "ascii"):
        return 20127
    if label in ("iso-2022-jp", "csiso2022jp"):
        return 50220
    if label in ("gb2312", "euc-cn"):
        return 936
    if label in ("euc-kr",):
        return 51949
    if label in ("iso-8859-9",):
        return 28599
    name = codec(label)
    return None if name is None else _CODEPAGES.get(name)


def charset_of(cp: int | None) -> str | None:
    """The MIME charset name written for a code page (None when unknown)."""
    return _BY_CODEPAGE[cp][0] if cp in _BY_CODEPAGE else None


def codec_of(cp: int | None) -> str | None:
    """The Python codec that reads text of a code page (None when unknown)."""
    return _BY_CODEPAGE[cp][1] if cp in _BY_CODEPAGE else None


def header_bytes(raw: bytes, fallback: str | None = None) -> str:
    """A raw header value as text: ASCII, else UTF-8 (RFC 6532), else ``fallback``."""
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return decode(raw, fallback)


def unescape(text: str, fallback: str | None = None) -> str:
    """Undo ``surrogateescape`` (8-bit bytes the stdlib kept as lone surrogates)."""
    if not any("\udc80" <= c <= "\udcff" for c in text):
        return text
    try:
        return header_bytes(text.encode("ascii", "surrogateescape"), fallback)
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8", "replace")


def _word_bytes(encoding: str, payload: str) -> bytes:
    data = payload.encode("ascii", "replace")
    if encoding in "bB":
        data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        data = data[: len(data) - len(data) % 4] if len(data) % 4 == 1 else data
        try:
            return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
        except binascii.Error:
            return b""
    return binascii.a2b_qp(data, header=True)


def decode_words(text: str) -> str:
    """``text`` with its RFC 2047 encoded words decoded (lenient: words inside quotes
    or next to other text are decoded too; whitespace between two words is dropped)."""
    if "=?" not in text:
        return text.replace("\x00", "") if "\x00" in text else text
    out: list[str] = []
    pos = 0
    run: list[tuple[str, list[bytes]]] = []

    def flush() -> None:
        for charset, chunks in run:
            out.append(decode(b"".join(chunks), charset))
        run.clear()

    for match in _WORD.finditer(text):
        gap = text[pos:match.start()]
        if not (run and _WS.fullmatch(gap)):
            flush()
            out.append(gap)
        charset = match.group(1).split("*", 1)[0].lower()
        data = _word_bytes(match.group(2), match.group(3))
        if run and run[-1][0] == charset:
            run[-1][1].append(data)
        else:
            run.append((charset, [data]))
        pos = match.end()
    flush()
    out.append(text[pos:])
    result = "".join(out)
    return result.replace("\x00", "") if "\x00" in result else result


def encode_words(text: str) -> list[str]:
    """``text`` as UTF-8 base64 encoded words of at most 75 characters each, split
    between characters (the words are joined by folding whitespace)."""
    budget = _WORD_BUDGET // 4 * 3
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode("utf-8", "surrogatepass"))
        if size + width > budget and chunk:
            words.append(_b_word("".join(chunk)))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    if chunk or not words:
        words.append(_b_word("".join(chunk)))
    return words


def _b_word(text: str) -> str:
    data = text.encode("utf-8", "surrogatepass")
    return "=?utf-8?b?" + base64.b64encode(data).decode("ascii") + "?="
