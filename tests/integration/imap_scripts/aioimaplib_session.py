"""``aioimaplib``: the asyncio client a push-notification service runs.

LOGIN, SELECT, APPEND, SEARCH (charset UTF-8), FETCH and UID FETCH (with a
literal BODY[]), STORE, COPY/MOVE, STATUS, then IDLE: a second aioimaplib
connection appends and a delivery arrives, each pushed to the idler; DONE
ends IDLE with a tagged OK.
"""

from __future__ import annotations

import asyncio
import re

from aioimaplib import IMAP4, IMAP4_SSL

from tests.integration.imap_scripts import Target, Transcript, crlf, session_messages

PUSH_WAIT = 10.0


def run(target: Target, out: Transcript | None = None) -> Transcript:
    """Run the session against ``target``; steps are appended to ``out`` as they happen."""
    return asyncio.run(run_async(target, out))


async def connect(target: Target, *, other: bool = False) -> IMAP4:
    if target.use_tls:
        client: IMAP4 = IMAP4_SSL(target.host, target.connect_port, timeout=30,
                                  ssl_context=target.ssl_context())
    else:
        client = IMAP4(target.host, target.connect_port, timeout=30)
    await client.wait_hello_from_server()
    user, password = ((target.other_user, target.other_password) if other
                      else (target.user, target.password))
    response = await client.login(user, password)
    if response.result != "OK":
        raise AssertionError(f"login refused: {response}")
    return client


def ok(response) -> list:
    if response.result != "OK":
        raise AssertionError(f"expected OK, got {response.result} {response.lines!r}")
    return response.lines


async def run_async(target: Target, out: Transcript | None = None) -> Transcript:
    out = [] if out is None else out
    client = await connect(target)
    try:
        await session(client, target, out)
        await idle(client, target, out)
    finally:
        try:
            await asyncio.wait_for(client.logout(), 10)
        except (TimeoutError, OSError, Exception):
            pass
    return out


async def session(client: IMAP4, target: Target, out: Transcript) -> None:
    out.append(("state after login", client.protocol.state))
    for index, raw in enumerate(session_messages()[:3]):
        ok(await client.append(raw, mailbox="INBOX", flags="(\\Seen)" if index else None))
    lines = ok(await client.select("INBOX"))
    exists = [int(m.group(1)) for line in lines
              if (m := re.match(rb"(\d+) EXISTS", line if isinstance(line, bytes) else b""))]
    out.append(("select EXISTS", exists))
    out.append(("search UNSEEN", _numbers(ok(await client.search("UNSEEN")))))
    out.append(("search TEXT (utf-8 charset)", _numbers(ok(await client.search("TEXT", "Jeff")))))
    lines = ok(await client.fetch("1:*", "(FLAGS RFC822.SIZE)"))
    out.append(("fetch FLAGS RFC822.SIZE", sorted(
        (int(m.group(1)), int(m.group(2))) for line in lines if isinstance(line, bytes)
        for m in [re.match(rb"(\d+) FETCH \(.*RFC822\.SIZE (\d+)", line)] if m)))
    lines = ok(await client.fetch("2", "(BODY.PEEK[])"))
    literal = [line for line in lines if isinstance(line, bytearray)]
    out.append(("fetch BODY.PEEK[] literal equals appended",
                bool(literal) and bytes(literal[0]) == session_messages()[1]))
    uid_lines = ok(await client.uid("fetch", "1:*", "(UID FLAGS)"))
    uids = [int(m.group(1)) for line in uid_lines if isinstance(line, bytes)
            for m in [re.search(rb"UID (\d+)", line)] if m]
    out.append(("uid fetch count", len(uids)))
    lines = ok(await client.store("1", "+FLAGS", "(\\Flagged)"))
    out.append(("store answers FETCH with flags", any(b"\\Flagged" in line for line in lines
                                                     if isinstance(line, bytes))))
    ok(await client.create("Async"))
    ok(await client.copy("1", "Async"))
    if client.has_capability("MOVE"):
        ok(await client.uid("move", str(uids[-1]), "Async"))
    lines = ok(await client.status("Async", "(MESSAGES)"))
    out.append(("status after copy and move", [m.group(1).decode() for line in lines
                                               if isinstance(line, bytes)
                                               for m in [re.search(rb"MESSAGES (\d+)", line)]
                                               if m]))
    lines = ok(await client.list('""', "*"))
    out.append(("list has Async", any(line.endswith(b"Async") or line.endswith(b'"Async"')
                                      for line in lines if isinstance(line, bytes))))


async def idle(client: IMAP4, target: Target, out: Transcript) -> None:
    if not client.has_capability("IDLE"):
        out.append(("idle", "not offered"))
        return
    ok(await client.select("INBOX"))
    other = await connect(target)
    try:
        waiting = await client.idle_start(timeout=60)
        await other.append(crlf(b"From: push@example.org\r\nSubject: pushed\r\n\r\nx\r\n"),
                           mailbox="INBOX")
        out.append(("idle push after APPEND", await _pushed(client, b"EXISTS")))
        await asyncio.to_thread(
            target.deliver, target.user,
            crlf(b"From: mta@example.net\nSubject: delivered\n\nhello\n"), "INBOX")
        out.append(("idle push after delivery", await _pushed(client, b"EXISTS")))
        client.idle_done()
        done = await asyncio.wait_for(waiting, 10)
        out.append(("DONE ends IDLE with OK", done.result))
        out.append(("noop after idle", (await client.noop()).result))
    finally:
        try:
            await asyncio.wait_for(other.logout(), 10)
        except Exception:
            pass


async def _pushed(client: IMAP4, kind: bytes) -> bool | list:
    seen: list = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PUSH_WAIT
    while loop.time() < deadline:
        try:
            push = await client.wait_server_push(timeout=max(0.1, deadline - loop.time()))
        except TimeoutError:
            break
        lines = push if isinstance(push, list) else [push]
        for line in lines:
            seen.append(line)
            if isinstance(line, (bytes, bytearray)) and line.endswith(kind):
                return True
    return [bytes(s).decode(errors="replace") if isinstance(s, (bytes, bytearray)) else str(s)
            for s in seen]


def _numbers(lines: list) -> list[int]:
    for line in lines:
        if isinstance(line, bytes) and not line.lower().startswith(b"search completed"):
            text = line.decode()
            if text.upper().startswith("SEARCH"):
                text = text[6:]
            values = text.split()
            if all(v.isdigit() for v in values):
                return sorted(int(v) for v in values)
    return []
