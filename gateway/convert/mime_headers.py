"""An Internet message's header block as MAPI envelope properties (MS-OXCMAIL 2.2.3).

:func:`envelope` reads the header fields of one message (names lower-cased,
values unfolded raw bytes, as :mod:`gateway.convert.mime_in` splits them):

- From → ``PidTagSentRepresenting*``; Sender (else From) → ``PidTagSender*``;
  Reply-To → ``PidTagReplyRecipientNames`` and ``…Entries`` (one-off ids);
  To/Cc/Bcc → recipient rows of type 1/2/3;
- Subject → subject, prefix (``RE: ``, 1 to 3 characters before ``": "``),
  normalized subject; Thread-Topic/Thread-Index → conversation topic/index;
- Message-ID, In-Reply-To, References; Date → ``PidTagClientSubmitTime``;
  Expires and Reply-By;
- Importance (else X-Priority, X-MSMail-Priority, Priority) →
  ``PidTagImportance``; Priority → ``PidTagPriority``; Sensitivity;
- Disposition-Notification-To and Return-Receipt-To → read receipt requested;
- List-Help/-Subscribe/-Unsubscribe → their tags, List-Id/-Post/-Archive/
  -Owner/-Unsubscribe-Post → named properties in ``PS_INTERNET_HEADERS``;
  Content-Class, Keywords;
- the whole block → ``PidTagTransportMessageHeaders``.

Every field is read on its own: one that cannot be read is skipped and
reported, the others still count.

:func:`envelope_headers` writes the same properties back as header fields
(folded at 78 columns, non-ASCII text as RFC 2047 words, parameters as
RFC 2231 values), reading only what :func:`envelope` sets, so that writing,
reading and writing again gives the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import partial
from typing import Any
from urllib.parse import quote

from gateway.convert import addresses as A
from gateway.convert import charsets
from gateway.convert.charsets import decode_words, header_bytes
from gateway.store import tags as T
from gateway.store.named import NamedProp
from gateway.store.objects import NewMessage
from gateway.store.proptypes import PT_UNICODE
from gateway.store.txn import PropKey
from gateway.store.values import from_filetime

MAX_RECIPIENTS = 10_000
MAX_KEYWORDS = 100
LIST_TAGS = {"list-help": T.PidTagListHelp, "list-subscribe": T.PidTagListSubscribe,
             "list-unsubscribe": T.PidTagListUnsubscribe}
LIST_NAMED = {name.lower(): NamedProp(T.PS_INTERNET_HEADERS, name, PT_UNICODE)
              for name in ("List-Id", "List-Post", "List-Archive", "List-Owner",
                           "List-Unsubscribe-Post")}
"""List headers without a tag of their own, kept in ``PS_INTERNET_HEADERS`` by name."""
IMPORTANCE = {"low": 0, "normal": 1, "high": 2}
PRIORITY = {"non-urgent": -1, "normal": 0, "urgent": 1}
SENSITIVITY = {"personal": 1, "private": 2, "company-confidential": 3}
IMPORTANCE_OUT = {0: "low", 2: "high"}
X_PRIORITY_OUT = {0: "5 (Lowest)", 2: "1 (Highest)"}
PRIORITY_OUT = {1: "urgent", -1: "non-urgent", 0xFFFFFFFF: "non-urgent"}
SENSITIVITY_OUT = {1: "Personal", 2: "Private", 3: "Company-Confidential"}
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COMMENT = re.compile(r"\([^()]*\)")
_PREFIX = re.compile(r"([^\s:\d][^\s:]{0,2}): ")
_TIME_MIN = datetime(1601, 1, 2, tzinfo=UTC)
_TIME_MAX = datetime(9999, 1, 1, tzinfo=UTC)

Fields = list[tuple[str, bytes]]
Header = bytes
"""One header field as written: folded, without its final CRLF."""


def text(raw: bytes) -> str:
    """An unstructured header value: 8-bit decoded, RFC 2047 words decoded, one line."""
    value = decode_words(header_bytes(raw.rstrip()))
    return value.replace("\r", "").replace("\n", "").replace("\x00", "")


def token(raw: bytes) -> str:
    """A structured value (ids, URLs) with its whitespace collapsed."""
    return " ".join(header_bytes(raw).replace("\x00", "").split())


def date(raw: bytes) -> datetime | None:
    value = _COMMENT.sub(" ", header_bytes(raw)).strip()
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        when = when.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return when if _TIME_MIN <= when <= _TIME_MAX else None


def subject_props(subject: str) -> dict[PropKey, Any]:
    match = _PREFIX.match(subject)
    prefix = match.group(0) if match else ""
    return {T.PidTagSubject: subject, T.PidTagSubjectPrefix: prefix,
            T.PidTagNormalizedSubject: subject[len(prefix):]}


def importance(fields: dict[str, bytes]) -> int:
    if "importance" in fields:
        return IMPORTANCE.get(token(fields["importance"]).lower(), 1)
    for name in ("x-priority", "x-msmail-priority"):
        if name in fields:
            value = token(fields[name]).lower()[:1]
            if value in ("1", "2", "h"):
                return 2
            if value in ("4", "5", "l"):
                return 0
            return 1
    if "priority" in fields:
        return PRIORITY.get(token(fields["priority"]).lower(), 0) + 1
    return 1


def envelope(fields: Fields, block: bytes,
             defect: Callable[[str], None]) -> tuple[dict[PropKey, Any], list[dict[PropKey, Any]]]:
    """The envelope properties and recipient rows of a header block."""
    props: dict[PropKey, Any] = {}
    first: dict[str, bytes] = {}
    for name, value in fields:
        first.setdefault(name, value)

    def read(name: str, how: Callable[[bytes], None]) -> None:
        if name in first:
            try:
                how(first[name])
            except Exception as exc:  # one bad field never spoils the others
                defect(f"{name}: {exc!r}")

    def sender(raw: bytes, keys: tuple[int, ...]) -> None:
        boxes = A.mailboxes(raw, limit=1)
        if boxes:
            props.update(A.person_props(boxes[0], keys))

    read("from", lambda raw: sender(raw, A.SENT_REPRESENTING))
    read("sender", lambda raw: sender(raw, A.SENDER))
    if T.PidTagSenderEmailAddress not in props and T.PidTagSentRepresentingName in props:
        for mine, theirs in zip(A.SENDER, A.SENT_REPRESENTING, strict=True):
            if theirs in props:
                props[mine] = props[theirs]
    read("reply-to", lambda raw: props.update(A.reply_to_props(A.mailboxes(raw, limit=100))))
    read("subject", lambda raw: props.update(subject_props(text(raw))))
    read("thread-topic", lambda raw: props.__setitem__(T.PidTagConversationTopic, text(raw)))
    read("thread-index", lambda raw: props.__setitem__(
        T.PidTagConversationIndex, binascii.a2b_base64(raw.strip()[:1024])))
    if T.PidTagConversationTopic not in props and T.PidTagNormalizedSubject in props:
        props[T.PidTagConversationTopic] = props[T.PidTagNormalizedSubject]
    tokens: list[tuple[str, PropKey]] = [
        ("message-id", T.PidTagInternetMessageId), ("in-reply-to", T.PidTagInReplyToId),
        ("references", T.PidTagInternetReferences), *LIST_TAGS.items(), *LIST_NAMED.items(),
        ("content-class", T.PidNameContentClass)]
    for name, key in tokens:
        read(name, partial(_set_token, props, key))
    for name, tag in (("date", T.PidTagClientSubmitTime), ("expires", T.PidTagExpiryTime),
                      ("expiry-date", T.PidTagExpiryTime), ("reply-by", T.PidTagReplyTime)):
        read(name, partial(_set_time, props, tag))
    props[T.PidTagImportance] = importance(first)
    read("priority", lambda raw: props.__setitem__(
        T.PidTagPriority, PRIORITY.get(token(raw).lower(), 0)))
    read("sensitivity", lambda raw: props.__setitem__(
        T.PidTagSensitivity, SENSITIVITY.get(token(raw).lower(), 0)))
    read("keywords", lambda raw: _keywords(props, raw))
    read("return-receipt-to", lambda raw: _receipt(props, raw))
    read("disposition-notification-to", lambda raw: _receipt(props, raw))
    props[T.PidTagTransportMessageHeaders] = header_bytes(block).replace("\x00", "")
    return props, _recipients(fields, defect)


def _set_token(props: dict[PropKey, Any], key: PropKey, raw: bytes) -> None:
    props[key] = token(raw)


def _set_time(props: dict[PropKey, Any], tag: int, raw: bytes) -> None:
    when = date(raw)
    if when is not None:
        props[tag] = when


def _keywords(props: dict[PropKey, Any], raw: bytes) -> None:
    words: list[str] = []
    for word in text(raw).split(","):
        word = word.strip()[:255]
        if word and word not in words:
            words.append(word)
    if words:
        props[T.PidNameKeywords] = words[:MAX_KEYWORDS]


def _receipt(props: dict[PropKey, Any], raw: bytes) -> None:
    props[T.PidTagReadReceiptRequested] = True
    props[T.PidTagNonReceiptNotificationRequested] = True
    boxes = A.mailboxes(raw, limit=1)
    if boxes:
        name, address = boxes[0]
        props[T.PidTagReadReceiptSmtpAddress] = address
        props[T.PidTagReadReceiptEntryId] = A.one_off_entry_id(name or address, address)
        props[T.PidTagReadReceiptSearchKey] = A.search_key(address)


def _recipients(fields: Fields, defect: Callable[[str], None]) -> list[dict[PropKey, Any]]:
    rows: list[dict[PropKey, Any]] = []
    for name, rtype in (("to", A.MAPI_TO), ("cc", A.MAPI_CC), ("bcc", A.MAPI_BCC)):
        for key, value in fields:
            if key != name:
                continue
            room = MAX_RECIPIENTS - len(rows)
            if room <= 0:
                defect(f"more than {MAX_RECIPIENTS} recipients; the rest dropped")
                return rows
            try:
                rows.extend(A.recipient(box, rtype) for box in A.mailboxes(value, limit=room))
            except Exception as exc:
                defect(f"{name}: {exc!r}")
    return rows


def finish_recipients(message: NewMessage) -> None:
    """``PidTagDisplayTo``/``Cc``/``Bcc`` from the recipient rows."""
    for rtype, tag in ((A.MAPI_TO, T.PidTagDisplayTo), (A.MAPI_CC, T.PidTagDisplayCc),
                       (A.MAPI_BCC, T.PidTagDisplayBcc)):
        names = [str(row.get(T.PidTagDisplayName, "")) for row in message.recipients
                 if row.get(T.PidTagRecipientType) == rtype]
        if names:
            message.props[tag] = "; ".join(names)


# -- writing ----------------------------------------------------------------------------------


def fold(name: str, tokens: list[str]) -> Header:
    """``name: token token ...`` broken before a token where a line would pass 78."""
    lines, line = [], name + ":"
    for token in tokens:
        if token and len(line) + 1 + len(token) > 78 and line.strip() and len(line) > len(
                name) + 1:
            lines.append(line)
            line = ""
        line += " " + token
    lines.append(line)
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")


def unstructured(name: str, value: str) -> Header:
    """Free text (Subject ...): kept readable when plain ASCII, else RFC 2047 words."""
    value = value.replace("\r", " ").replace("\n", " ")
    plain = (value.isascii() and value.isprintable() and "=?" not in value
             and value == value.strip() and all(len(w) < 900 for w in value.split(" ")))
    return fold(name, value.split(" ") if plain else charsets.encode_words(value))


def structured(name: str, value: str) -> Header:
    """Ids, URLs, list headers: whitespace collapsed, folded between words."""
    return fold(name, value.replace("\r", " ").replace("\n", " ").split())


def address_field(name: str, boxes: list[A.Mailbox]) -> Header:
    """An address list (From, To, Reply-To ...), folded between addresses and words."""
    tokens: list[str] = []
    for index, box in enumerate(boxes):
        box_tokens = A.format_mailbox(box)
        if index < len(boxes) - 1:
            box_tokens[-1] += ","
        tokens.extend(box_tokens)
    return fold(name, tokens)


def param(key: str, value: str) -> list[str]:
    """``key=value`` tokens: a token, a quoted string, or RFC 2231 (continued) UTF-8."""
    if value.isascii() and value.isprintable() and len(value) < 60 and "=?" not in value:
        if _TOKEN.fullmatch(value):
            return [f"{key}={value}"]
        return [f'{key}="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"']
    encoded = quote(value.encode("utf-8"), safe="!#$&+-.^_`|~")
    if len(encoded) < 60:
        return [f"{key}*=utf-8''{encoded}"]
    chunks, pos = [], 0
    while pos < len(encoded):
        end = min(pos + 60, len(encoded))
        while end < len(encoded) and "%" in encoded[end - 2:end]:
            end -= 1  # never split a %XX escape
        chunks.append(encoded[pos:end])
        pos = end
    return [f"{key}*{i}*={'utf-8' if i == 0 else ''}{chr(39) * 2 if i == 0 else ''}{c}"
            + (";" if i < len(chunks) - 1 else "") for i, c in enumerate(chunks)]


def with_params(name: str, value: str, params: list[tuple[str, str]]) -> Header:
    """``Content-Type: value; key=value ...`` and the like."""
    tokens = [value]
    for key, value_ in params:
        tokens[-1] += ";"
        tokens.extend(param(key, value_))
    return fold(name, tokens)


def rfc_date(value: Any) -> str | None:
    """An RFC 5322 date of a ``PT_SYSTIME`` value (a datetime, or a FILETIME integer)."""
    try:
        if isinstance(value, int):
            value = from_filetime(value)
        if not isinstance(value, datetime):
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return format_datetime(value.astimezone(UTC).replace(microsecond=0))
    except (OverflowError, ValueError):
        return None


def envelope_headers(message: NewMessage, message_id: str) -> list[Header]:
    """The header fields of a message's envelope properties (Content-* excluded)."""
    props = message.props
    out: list[Header] = []
    author = A.person_of(props, A.SENT_REPRESENTING)
    sender = A.person_of(props, A.SENDER)
    if author is None:
        author, sender = sender, None
    if author is not None:
        out.append(address_field("From", [author]))
    if sender is not None and author is not None and (
            sender[0], sender[1].lower()) != (author[0], author[1].lower()):
        out.append(address_field("Sender", [sender]))
    reply_to = A.reply_to_of(props)
    if reply_to:
        out.append(address_field("Reply-To", reply_to))
    for rtype, name in ((A.MAPI_TO, "To"), (A.MAPI_CC, "Cc"), (A.MAPI_BCC, "Bcc")):
        boxes = [box for row in message.recipients if row.get(T.PidTagRecipientType) == rtype
                 if (box := recipient_of(row)) is not None]
        if boxes:
            out.append(address_field(name, boxes))
    subject = props.get(T.PidTagSubject)
    if not isinstance(subject, str):
        prefix, rest = props.get(T.PidTagSubjectPrefix), props.get(T.PidTagNormalizedSubject)
        subject = (prefix if isinstance(prefix, str) else "") + (
            rest if isinstance(rest, str) else "") if rest is not None else None
    if isinstance(subject, str):
        out.append(unstructured("Subject", subject))
        topic = props.get(T.PidTagConversationTopic)
        if isinstance(topic, str) and topic != subject_props(subject)[T.PidTagNormalizedSubject]:
            out.append(unstructured("Thread-Topic", topic))
    index = props.get(T.PidTagConversationIndex)
    if isinstance(index, bytes) and index:
        out.append(fold("Thread-Index", [base64.b64encode(index).decode("ascii")]))
    when = next((d for tag in (T.PidTagClientSubmitTime, T.PidTagMessageDeliveryTime,
                               T.PidTagCreationTime) if (d := rfc_date(props.get(tag)))), None)
    if when:
        out.append(fold("Date", [when]))
    out.append(structured("Message-ID", message_id))
    for tag, name in ((T.PidTagInReplyToId, "In-Reply-To"),
                      (T.PidTagInternetReferences, "References")):
        if isinstance(props.get(tag), str) and props[tag].strip():
            out.append(structured(name, props[tag]))
    level = props.get(T.PidTagImportance)
    if level in IMPORTANCE_OUT:
        out += [fold("Importance", [IMPORTANCE_OUT[level]]),
                fold("X-Priority", [X_PRIORITY_OUT[level]])]
    if props.get(T.PidTagPriority) in PRIORITY_OUT:
        out.append(fold("Priority", [PRIORITY_OUT[props[T.PidTagPriority]]]))
    if props.get(T.PidTagSensitivity) in SENSITIVITY_OUT:
        out.append(fold("Sensitivity", [SENSITIVITY_OUT[props[T.PidTagSensitivity]]]))
    if props.get(T.PidTagReadReceiptRequested):
        target = _receipt_target(props) or author
        if target is not None and target[1]:
            out.append(address_field("Disposition-Notification-To", [target]))
    keywords = props.get(T.PidNameKeywords)
    if isinstance(keywords, list) and keywords:
        out.append(unstructured("Keywords", ", ".join(str(k) for k in keywords)))
    named: list[tuple[PropKey, str]] = [
        (T.PidNameContentClass, "Content-Class"),
        *((tag, name.title()) for name, tag in LIST_TAGS.items()),
        *((prop, str(prop.key)) for prop in LIST_NAMED.values())]
    for key, name in named:
        if isinstance(props.get(key), str) and props[key].strip():
            out.append(structured(name, props[key]))
    for tag, name in ((T.PidTagExpiryTime, "Expires"), (T.PidTagReplyTime, "Reply-By")):
        if (when := rfc_date(props.get(tag))) is not None:
            out.append(fold(name, [when]))
    return out


def recipient_of(row: dict[PropKey, Any]) -> A.Mailbox | None:
    address = A.smtp_address(row.get(T.PidTagSmtpAddress), row.get(T.PidTagAddressType),
                             row.get(T.PidTagEmailAddress), row.get(T.PidTagEntryId))
    name = row.get(T.PidTagDisplayName)
    name = name if isinstance(name, str) else ""
    return (name, address) if address or name else None


def _receipt_target(props: dict[PropKey, Any]) -> A.Mailbox | None:
    entry = props.get(T.PidTagReadReceiptEntryId)
    parsed = A.parse_one_off(entry) if isinstance(entry, bytes) else None
    address = props.get(T.PidTagReadReceiptSmtpAddress)
    if isinstance(address, str) and "@" in address:
        return (parsed[0] if parsed else "", address)
    if parsed and "@" in parsed[2]:
        return parsed[0], parsed[2]
    return None
