"""``imaplib`` with the extensions real clients lean on, and two sessions side by side.

Non-ASCII folder names (modified UTF-7), LIST-EXTENDED/SPECIAL-USE selection,
LIST-STATUS, ESEARCH, SORT, BINARY and BINARY.SIZE, nested sections of a
message/rfc822 part, charset-aware SEARCH (RFC 2047 encoded subjects), a
5 MiB message (size, partial fetch in the middle), APPEND to a missing
folder (TRYCREATE), MOVE (COPYUID and EXPUNGE), CONDSTORE STATUS/STORE, ID,
NAMESPACE, and a second session on the same mailbox that must learn of
flag changes and expunges at NOOP — but of expunges not during FETCH.
"""

from __future__ import annotations

import imaplib
import re

from imapclient.imap_utf7 import decode as utf7_decode
from imapclient.imap_utf7 import encode as utf7_encode
from imapclient.response_parser import parse_fetch_response

from tests.integration.imap_scripts import (
    Target,
    Transcript,
    corpus_message,
    crlf,
    debug_level,
    plain,
    session_messages,
)
from tests.integration.imap_scripts.imaplib_session import (
    check,
    connect,
    parse_list,
    quoted,
    removed_positions,
    untagged,
)

UNICODE_FOLDER = "Entwürfe/Ärger & Co"
BIG_SIZE = 5 * 1024 * 1024


def run(target: Target, out: Transcript | None = None) -> Transcript:
    """Run the session against ``target``; steps are appended to ``out`` as they happen."""
    out = [] if out is None else out
    imaplib.Debug = debug_level()
    conn = connect(target)
    try:
        check(conn.login(target.user, target.password))
        extensions(conn, target, out)
        two_sessions(conn, target, out)
    finally:
        try:
            conn.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return out


def caps(conn: imaplib.IMAP4) -> set[str]:
    return set(check(conn.capability())[0].decode().upper().split())


def raw(conn: imaplib.IMAP4, command: str, *args: str) -> tuple[str, list]:
    """A command imaplib does not know, with its untagged responses (by name)."""
    name = command.split()[0].upper()
    if name not in imaplib.Commands:
        imaplib.Commands[name] = ("AUTH", "SELECTED")
    typ, data = conn._simple_command(command, *args)
    return typ, data


def fetch(conn: imaplib.IMAP4, sequence: str, items: str) -> dict:
    data = [d for d in check(conn.fetch(sequence, items)) if d is not None]
    return parse_fetch_response(data, normalise_times=False, uid_is_key=False)


def extensions(conn: imaplib.IMAP4, target: Target, out: Transcript) -> None:
    have = caps(conn)
    out.append(("ID answers", raw(conn, "ID", '("name" "imaplib-script")')[0]))
    typ, data = conn.namespace()
    out.append(("NAMESPACE personal", typ == "OK" and b'(("" "/"))' in data[0]))

    # Non-ASCII folder names travel in modified UTF-7.
    encoded = utf7_encode(UNICODE_FOLDER).decode()
    out.append(("create unicode folder", conn.create(quoted(encoded))[0]))
    names = [utf7_decode(n.encode()) for n in parse_list(check(conn.list('""', "*")))[0]]
    out.append(("unicode folder and its parent listed",
                sorted(n for n in names if n.startswith("Entwürfe"))))
    selected = conn.select(quoted(encoded))
    out.append(("select unicode folder", selected[0] if selected[0] == "OK"
                else f"{selected[0]} {selected[1]!r}"))
    if selected[0] == "OK":
        conn.close()
    # NO (Dovecot) or BAD: the RFC does not say which.
    out.append(("invalid modified UTF-7 refused",
                _kind(lambda: conn.create('"Bad&Jjl-&"')) in ("NO", "BAD")))

    if "SPECIAL-USE" in have and "LIST-EXTENDED" in have:
        typ, data = raw(conn, "LIST", '(SPECIAL-USE) "" "*"')
        special = {a for line in conn.untagged_responses.pop("LIST", []) if isinstance(line, bytes)
                   for a in re.findall(rb"\\[A-Za-z]+", line)}
        out.append(("LIST (SPECIAL-USE) only special folders",
                    sorted(a.decode() for a in special
                           if a.decode() in ("\\Sent", "\\Drafts", "\\Trash", "\\Junk"))))
    if "LIST-STATUS" in have:
        conn.untagged_responses.pop("STATUS", None)
        typ, _ = raw(conn, "LIST", '"" "INBOX" RETURN (STATUS (MESSAGES UIDVALIDITY))')
        status = conn.untagged_responses.pop("STATUS", [])
        out.append(("LIST-STATUS gives STATUS", typ == "OK" and any(
            b"MESSAGES 0" in s for s in status if isinstance(s, bytes))))

    out.append(("APPEND to a missing folder says TRYCREATE",
                _append_code(conn, '"No Such Folder"')))

    messages = session_messages()
    for raw_message in messages:
        check(conn.append("INBOX", "()", None, raw_message))
    big = big_message()
    check(conn.append("INBOX", "(\\Seen)", None, big))
    check(conn.select("INBOX"))
    count = len(messages) + 1

    info = fetch(conn, str(count), "(RFC822.SIZE BODY.PEEK[]<2621440.64>)")[count]
    out.append(("big message RFC822.SIZE", info[b"RFC822.SIZE"] == len(big)))
    out.append(("big message partial from the middle",
                info.get(b"BODY[]<2621440>") == big[2621440:2621440 + 64]))

    # message/rfc822 part: 3 is outlook-embedded-message.eml (text, then message/rfc822)
    nested = fetch(conn, "3", "(BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.1] "
                              "BODY.PEEK[2.MIME])")[3]
    out.append(("message/rfc822 part sections", plain(sorted(nested.items()))))
    if "BINARY" in have:
        data = check(conn.fetch("4", "(BINARY.SIZE[1] BINARY.PEEK[1]<0.16>)"))
        head, literal = data[0] if isinstance(data[0], tuple) else (data[0], b"")
        size = re.search(rb"BINARY\.SIZE\[1\] (\d+)", head + b"".join(
            d for d in data[1:] if isinstance(d, bytes)))
        out.append(("BINARY.SIZE of a base64 part", int(size.group(1)) if size else None))
        out.append(("BINARY[1]<0.16> decoded bytes", literal.hex()))

    # Searches that need decoding: RFC 2047 subjects, charset UTF-8.
    for label, args in (("subject in KOI8/UTF-8 words", ("SUBJECT", "Отчёт")),
                        ("subject in ISO-2022-JP words", ("SUBJECT", "日本語")),
                        ("subject in ISO-8859-1 words", ("SUBJECT", "Eelanalüüsi")),
                        ("from display name", ("FROM", "Мария")),
                        ("body text, quoted-printable", ("BODY", "Привет"))):
        conn.literal = args[1].encode()
        typ, data = conn.search("UTF-8", args[0])
        out.append((f"search UTF-8 {label}", sorted(int(n) for n in data[0].split())
                    if typ == "OK" else typ))
    typ, data = conn.search(None, "NOT", "OR", "SEEN", "OR", "LARGER", "3000",
                            "HEADER", "X-Mailer", '""')
    out.append(("search NOT OR OR with HEADER present", sorted(int(n) for n in data[0].split())))
    typ, data = conn.search(None, "SENTSINCE", "1-Jan-2015", "SENTBEFORE", "1-Jan-2020")
    out.append(("search SENTSINCE SENTBEFORE", sorted(int(n) for n in data[0].split())))

    if "ESEARCH" in have:
        conn.untagged_responses.pop("ESEARCH", None)
        typ, _ = raw(conn, "SEARCH", "RETURN (MIN MAX COUNT ALL) NOT SEEN")
        esearch = conn.untagged_responses.pop("ESEARCH", [b""])[0].decode()
        words = re.sub(r'\(TAG "[^"]*"\) ?', "", esearch).split()
        out.append(("ESEARCH MIN MAX COUNT ALL", dict(sorted(zip(words[::2], words[1::2],
                                                                 strict=False)))))
    if "SORT" in have:
        conn.untagged_responses.pop("SORT", None)
        typ, data = conn.sort("(REVERSE SIZE)", "UTF-8", "ALL")
        out.append(("SORT (REVERSE SIZE)", [int(n) for n in data[0].split()]))
        typ, data = conn.sort("(SUBJECT)", "UTF-8", "ALL")
        out.append(("SORT (SUBJECT)", [int(n) for n in data[0].split()]))

    if "CONDSTORE" in have:
        status = check(conn.status("INBOX", "(HIGHESTMODSEQ MESSAGES)"))[0]
        out.append(("STATUS HIGHESTMODSEQ", b"HIGHESTMODSEQ" in status))
        modseq = fetch(conn, "1", "(MODSEQ)")[1][b"MODSEQ"][0]
        conn.untagged_responses.pop("MODIFIED", None)
        typ, data = conn.store("1", f"(UNCHANGEDSINCE {modseq}) +FLAGS", "(\\Flagged)")
        after = fetch(conn, "1", "(MODSEQ FLAGS)")[1]
        out.append(("STORE UNCHANGEDSINCE current succeeds",
                    [typ, "\\Flagged" in [f.decode() for f in after[b"FLAGS"]],
                     after[b"MODSEQ"][0] > modseq]))

    if "MOVE" in have:
        check(conn.create('"Moved"'))
        conn.untagged_responses.pop("COPYUID", None)
        conn.untagged_responses.pop("EXPUNGE", None)
        typ, _ = raw(conn, "MOVE", "2:3", '"Moved"')
        copyuid = conn.untagged_responses.pop("COPYUID", [])
        expunged = [int(n) for n in conn.untagged_responses.pop("EXPUNGE", [])]
        out.append(("MOVE answers COPYUID and EXPUNGEs",
                    [typ, bool(copyuid), removed_positions(expunged, count)]))
        out.append(("STATUS Moved", check(conn.status('"Moved"', "(MESSAGES)"))[0]
                    .decode().split("(")[1]))


def two_sessions(conn: imaplib.IMAP4, target: Target, out: Transcript) -> None:
    """A second session learns of this one's changes, at the right moments."""
    other = connect(target)
    try:
        check(other.login(target.user, target.password))
        check(conn.select("INBOX"))
        exists = int(check(other.select("INBOX"))[0])
        check(conn.store("1", "+FLAGS", "(\\Answered)"))
        other.untagged_responses.pop("FETCH", None)
        check(other.noop())
        fetches = [f for f in other.untagged_responses.pop("FETCH", []) if f]
        out.append(("other session: FETCH FLAGS at NOOP",
                    [b"\\Answered" in f for f in fetches if isinstance(f, bytes)][:1]))
        check(conn.store("2", "+FLAGS.SILENT", "(\\Deleted)"))
        check(conn.expunge())
        other.untagged_responses.pop("EXPUNGE", None)
        fetch(other, "1:*", "(FLAGS)")
        held_back = other.untagged_responses.pop("EXPUNGE", [])
        out.append(("other session: no EXPUNGE during FETCH", held_back == []))
        check(other.noop())
        expunged = [int(n) for n in other.untagged_responses.pop("EXPUNGE", [])]
        out.append(("other session: EXPUNGE at NOOP", removed_positions(expunged, exists)))
        check(conn.append("INBOX", "()", None,
                          crlf(b"From: a@example.org\nSubject: third\n\nx\n")))
        check(other.noop())
        out.append(("other session: EXISTS after APPEND",
                    [int(n) for n in untagged(other, "EXISTS")][-1:]))
    finally:
        try:
            other.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def big_message() -> bytes:
    """A message with a 5 MiB base64 attachment (deterministic bytes)."""
    import base64

    payload = bytes((i * 7 + i // 251) % 256 for i in range(BIG_SIZE * 3 // 4))
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    head = crlf(b"From: big@example.org\nTo: alice@example.org\nSubject: big one\n"
                b"Message-ID: <big@example.org>\nMIME-Version: 1.0\n"
                b"Content-Type: multipart/mixed; boundary=BIG\n\n--BIG\n"
                b"Content-Type: text/plain\n\nsee attachment\n--BIG\n"
                b"Content-Type: application/octet-stream; name=big.bin\n"
                b"Content-Transfer-Encoding: base64\n\n")
    return head + encoded + b"\r\n--BIG--\r\n"


def _kind(call) -> str:
    try:
        return call()[0]
    except imaplib.IMAP4.error as exc:
        return "BAD" if "BAD" in str(exc) or "command" in str(exc) else "error"


def _append_code(conn: imaplib.IMAP4, mailbox: str) -> str:
    try:
        typ, data = conn.append(mailbox, "()", None, corpus_message("thunderbird-reply.eml"))
    except imaplib.IMAP4.error as exc:
        text = str(exc)
    else:
        text = f"{typ} {data!r}"
    return "TRYCREATE" if "TRYCREATE" in text else text
