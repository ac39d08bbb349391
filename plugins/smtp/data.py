"""Reading the message after ``DATA``: dot-unstuffing, and refusing what is unsafe.

The message ends at a line holding only ``.`` followed by CRLF. Everything up
to there is read even when the message is already refused, so that the
session stays in step with the client; what was wrong is reported after the
end of data and nothing is kept:

- a line longer than 998 octets plus CRLF (RFC 5321 4.5.3.1.6) → 554 5.6.0;
- a bare LF, a bare CR or a NUL byte → 554 5.6.0. Bare line ends are how
  SMTP smuggling hides a second message, so the data ends only at
  CRLF ``.`` CRLF: a ``.`` line after a line that ended in a bare LF is
  content (of a message that is then refused whole), and ``\\r.\\r`` is
  no line at all;
- more than the size limit → 552 5.3.4 (the rest is read and dropped).

A connection that closes before the final dot raises ``ConnectionClosed``:
the caller delivers nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.net import Connection, LineTooLong
from plugins.smtp.replies import Reply

MAX_TEXT_LINE = 1000
"""998 octets of text plus CRLF."""


@dataclass
class Message:
    """The message as received, or why it must be refused."""

    raw: bytes
    size: int
    """Octets received after unstuffing (also when over the limit)."""
    problem: Reply | None = None


async def read_message(conn: Connection, max_bytes: int) -> Message:
    """Read up to the final ``.`` line; see the module docstring for refusals."""
    chunks: list[bytes] = []
    size = 0
    problem: Reply | None = None
    after_crlf = True  # the previous line ended in CRLF (or there was none)
    while True:
        try:
            line = await conn.readline()
        except LineTooLong:
            problem = problem or Reply(554, "5.6.0", "message has a line longer than 998 "
                                                     "octets; nothing was stored")
            continue
        if line == b".\r\n" and after_crlf:
            break
        after_crlf = line[-2:] == b"\r\n"
        if len(line) > MAX_TEXT_LINE:
            problem = problem or Reply(554, "5.6.0", "message has a line longer than 998 "
                                                     "octets; nothing was stored")
            continue
        if line[-2:-1] != b"\r" or b"\r" in line[:-2]:
            problem = problem or Reply(554, "5.6.0", "message has a bare CR or LF; lines "
                                                     "must end with CRLF; nothing was stored")
            continue
        if b"\0" in line:
            problem = problem or Reply(554, "5.6.0", "message contains a NUL byte; nothing "
                                                     "was stored")
            continue
        if line[:1] == b".":
            line = line[1:]
        size += len(line)
        if size > max_bytes:
            problem = problem or Reply(552, "5.3.4", f"message exceeds the size limit of "
                                                     f"{max_bytes} bytes; nothing was stored")
        if problem is None:
            chunks.append(line)
        elif chunks:
            chunks.clear()
    return Message(b"".join(chunks) if problem is None else b"", size, problem)
