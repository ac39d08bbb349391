"""Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3).

Printable US-ASCII stands for itself except ``&``, written ``&-``; every other
character goes into a ``&...-`` run of UTF-16 in base64 with ``,`` for ``/``
and no padding. ``decode`` is strict: it refuses what no conforming encoder
produces (a run that encodes only printable ASCII, two adjacent runs, bad
padding bits, broken surrogates, raw 8-bit or control characters), so each
name has exactly one spelling.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["decode", "encode"]

_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def _is_direct(ch: str) -> bool:
    return 0x20 <= ord(ch) <= 0x7E


def _encode_run(run: str) -> str:
    data = run.encode("utf-16-be", "surrogatepass")
    text = base64.b64encode(data).decode("ascii").rstrip("=")
    return "&" + text.replace("/", ",") + "-"


def encode(name: str) -> str:
    """The modified UTF-7 spelling of a Unicode mailbox name."""
    out: list[str] = []
    run: list[str] = []
    for ch in name:
        if _is_direct(ch):
            if run:
                out.append(_encode_run("".join(run)))
                run.clear()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    if run:
        out.append(_encode_run("".join(run)))
    return "".join(out)


def _decode_run(text: str, whole: str) -> str:
    if not text:
        raise ValueError(f"invalid modified UTF-7 in {whole!r}: empty base64 run")
    if any(c not in _B64_CHARS for c in text):
        raise ValueError(f"invalid modified UTF-7 in {whole!r}: bad base64 character")
    if len(text) % 4 == 1:
        raise ValueError(f"invalid modified UTF-7 in {whole!r}: truncated base64")
    padded = text.replace(",", "/") + "=" * (-len(text) % 4)
    try:
        data = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"invalid modified UTF-7 in {whole!r}: bad base64") from None
    if len(data) % 2:
        raise ValueError(f"invalid modified UTF-7 in {whole!r}: odd number of bytes")
    # The unused low bits of the last base64 character must be zero (canonical form).
    if base64.b64encode(data).decode("ascii").rstrip("=") != padded.rstrip("="):
        raise ValueError(f"invalid modified UTF-7 in {whole!r}: non-zero padding bits")
    try:
        decoded = data.decode("utf-16-be")
    except UnicodeDecodeError:
        raise ValueError(f"invalid modified UTF-7 in {whole!r}: broken UTF-16") from None
    if any(_is_direct(ch) for ch in decoded):
        raise ValueError(f"invalid modified UTF-7 in {whole!r}: "
                         "printable ASCII must not be base64-encoded")
    return decoded


def decode(name: str) -> str:
    """The Unicode name of a modified UTF-7 mailbox name; ``ValueError`` when invalid."""
    out: list[str] = []
    i, n = 0, len(name)
    previous_run_end = -1
    while i < n:
        ch = name[i]
        if not _is_direct(ch):
            raise ValueError(f"invalid modified UTF-7 in {name!r}: "
                             f"character {ch!r} must be encoded")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise ValueError(f"invalid modified UTF-7 in {name!r}: unterminated '&' run")
        if end == i + 1:
            out.append("&")
        else:
            if previous_run_end == i:
                raise ValueError(f"invalid modified UTF-7 in {name!r}: adjacent base64 runs")
            out.append(_decode_run(name[i + 1:end], name))
            previous_run_end = end + 1
        i = end + 1
    return "".join(out)
