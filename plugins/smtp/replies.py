"""SMTP replies: a code, an enhanced status code (RFC 3463/2034) and text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    code: int
    enhanced: str
    """``"2.1.0"``; empty for replies that carry none (greeting, EHLO, 334, 354)."""
    text: str
    lines: tuple[str, ...] = ()
    """Further lines of a multi-line reply (the EHLO keywords)."""

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400

    def encode(self, enhanced: bool = True) -> bytes:
        first = f"{self.enhanced} {self.text}" if enhanced and self.enhanced else self.text
        texts = [first, *self.lines]
        out = []
        for index, text in enumerate(texts):
            sep = " " if index == len(texts) - 1 else "-"
            out.append(f"{self.code}{sep}{_clean(text)}\r\n")
        return "".join(out).encode("utf-8")


def _clean(text: str) -> str:
    """Reply text on one line: no CR/LF/NUL from whatever produced it."""
    return text.replace("\r", " ").replace("\n", " ").replace("\0", " ")


OK = Reply(250, "2.0.0", "OK")
BAD_SEQUENCE = "5.5.1"
