"""Internet messages that map to special MAPI message classes (MS-OXCMAIL 2.4, MS-OXOSMIME).

- S/MIME stays opaque, as Outlook expects: a clear-signed message
  (multipart/signed, pkcs7-signature) becomes ``IPM.Note.SMIME.MultipartSigned``
  with one attachment ``smime.p7m`` holding the multipart/signed entity
  (its Content-Type line, a blank line, its body), the signed text also read
  into the body properties for previews and search; an opaque or encrypted
  one (application/pkcs7-mime) becomes ``IPM.Note.SMIME`` with the CMS data as
  ``smime.p7m``.
- multipart/report: delivery status (RFC 3464) → ``REPORT.IPM.Note.NDR``,
  ``.DR``, ``.Delayed.DR``, ``.Relayed.DR``, ``.Expanded.DR`` by the worst
  action, with the reported recipients as the recipient rows; disposition
  notifications (RFC 8098) → ``REPORT.IPM.Note.IPNRN`` / ``IPNNRN``.
- text/calendar → :func:`gateway.convert.mime_in.calendar_part`.
- application/ms-tnef (winmail.dat) → decoded by :mod:`gateway.convert.tnef`
  and merged: the MIME envelope stays, the rest of TNEF's properties win and
  its attachments replace winmail.dat.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gateway.convert import addresses as A
from gateway.convert.mime_headers import text
from gateway.convert.mime_parts import RENDERING_POSITION_NONE, children, filename_props
from gateway.store import tags as T
from gateway.store.objects import NewAttachment, NewMessage
from gateway.store.txn import PropKey

if TYPE_CHECKING:
    from gateway.convert.mime_in import Content
    from gateway.convert.mime_parts import Budget, Part

SMIME_SIGNATURE = ("application/pkcs7-signature", "application/x-pkcs7-signature")
SMIME_OPAQUE = ("application/pkcs7-mime", "application/x-pkcs7-mime")
SEVERITY = {"delivered": 0, "expanded": 1, "relayed": 2, "delayed": 3, "failed": 4}
REPORT_CLASS = ("REPORT.IPM.Note.DR", "REPORT.IPM.Note.Expanded.DR",
                "REPORT.IPM.Note.Relayed.DR", "REPORT.IPM.Note.Delayed.DR",
                "REPORT.IPM.Note.NDR")
REPORT_TYPES = ("message/delivery-status", "message/global-delivery-status",
                "message/disposition-notification", "message/global-disposition-notification")
MAX_REPORT_BYTES = 1 << 20
MAPI_DIAG_NO_DIAGNOSTIC = 0xFFFFFFFF
ENVELOPE_KEYS = {*A.SENDER, *A.SENT_REPRESENTING, T.PidTagDisplayTo, T.PidTagDisplayCc,
                 T.PidTagDisplayBcc, T.PidTagInternetMessageId, T.PidTagInReplyToId,
                 T.PidTagInternetReferences, T.PidTagClientSubmitTime,
                 T.PidTagTransportMessageHeaders, T.PidTagReplyRecipientEntries,
                 T.PidTagReplyRecipientNames}
"""What the MIME header block says and a TNEF stream does not override."""


def top_level(part: Part, ctype: str, message: NewMessage, content: Content,
              budget: Budget, depth: int, embed: int) -> bool:
    """Handle a message whose top-level type is special; False: walk it as usual."""
    if ctype == "multipart/signed" and (part.param("protocol") or "").lower() in SMIME_SIGNATURE:
        return _signed(part, message, content, budget, depth, embed)
    if ctype in SMIME_OPAQUE:
        message.props[T.PidTagMessageClass] = "IPM.Note.SMIME"
        content.attachments.append(_p7m(part.payload(), ctype))
        return True
    if ctype == "multipart/report":
        return _report(part, message, content, budget, depth, embed)
    return False


def _p7m(data: bytes, ctype: str) -> NewAttachment:
    props: dict[PropKey, Any] = {T.PidTagAttachMethod: 1, T.PidTagAttachMimeTag: ctype,
                                 T.PidTagRenderingPosition: RENDERING_POSITION_NONE}
    props.update(filename_props("smime.p7m"))
    return NewAttachment(props=props, data=[data])


def _signed(part: Part, message: NewMessage, content: Content, budget: Budget,
            depth: int, embed: int) -> bool:
    from gateway.convert import mime_in

    split = children(part, budget)
    if split is None or not split[0]:
        return False
    message.props[T.PidTagMessageClass] = "IPM.Note.SMIME.MultipartSigned"
    signed = mime_in.Content()
    mime_in.walk(split[0][0], signed, budget, depth + 1, embed, True)
    content.plain, content.html = signed.plain, signed.html
    head = b"Content-Type: " + (part.get("content-type") or b"multipart/signed") + b"\r\n\r\n"
    content.attachments.append(_p7m(head + part.raw[part.body:part.end], "multipart/signed"))
    return True


# -- reports ------------------------------------------------------------------------------------


def _report(part: Part, message: NewMessage, content: Content, budget: Budget,
            depth: int, embed: int) -> bool:
    from gateway.convert import mime_in

    split = children(part, budget)
    if split is None or not split[0]:
        return False
    reports = sum(child.ctype() in REPORT_TYPES for child in split[0])
    for index, child in enumerate(split[0]):
        ctype = child.ctype()
        if index == 0 and ctype in REPORT_TYPES and reports > 1:
            ctype = "text/plain"  # the human-readable part, mislabelled
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            _delivery_status(child.payload()[:MAX_REPORT_BYTES], message)
        elif ctype in ("message/disposition-notification",
                       "message/global-disposition-notification"):
            _disposition(child.payload()[:MAX_REPORT_BYTES], message)
        elif index == 0 and ctype == "text/plain":
            mime_in.leaf(child, ctype, content, True)
        else:
            before = len(content.attachments)
            mime_in.walk(child, content, budget, depth + 1, embed, index == 0)
            for attachment in content.attachments[before:]:
                if attachment.embedded is not None:
                    subject = attachment.embedded.props.get(T.PidTagSubject)
                    if subject:
                        message.props[T.PidTagOriginalSubject] = subject
    if not content.has_body:  # some MTAs write the explanation as the preamble
        first = split[0][0]
        preamble = part.raw[part.body:first.start].rstrip(b"\r\n").rpartition(b"\n")[0]
        text = preamble.decode("utf-8", "replace").strip()
        if text:
            content.plain.append((text, None))
    return True


def _records(data: bytes) -> list[dict[str, str]]:
    """The field groups of a report: per-message fields, then one group per recipient
    (a group starts at a blank line, or at a recipient field the group already has)."""
    records: list[dict[str, str]] = [{}]
    for group in re.split(rb"\r?\n[ \t]*\r?\n", data.strip()):
        if records[-1]:
            records.append({})
        for line in re.split(rb"\r?\n(?![ \t])", group.strip()):
            name, colon, value = line.partition(b":")
            if not colon:
                continue
            key = name.strip().lower().decode("ascii", "replace")
            current = records[-1]
            if key in ("final-recipient", "original-recipient") and current and (
                    key in current or "final-recipient" in current
                    or not current.keys() & {"original-recipient", "action", "status"}):
                records.append(current := {})
            current.setdefault(key, text(value).strip())
    return [record for record in records if record]


def _address(value: str) -> str:
    return value.split(";", 1)[-1].strip().strip("<>").strip()


def _status_code(status: str) -> int | None:
    match = re.match(r"\s*([245])\.(\d{1,3})\.(\d{1,3})", status)
    if not match:
        return None
    kind, subject, detail = (int(g) for g in match.groups())
    return 100 * kind + 10 * min(subject, 9) + min(detail, 9)


def _delivery_status(data: bytes, message: NewMessage) -> None:
    records = _records(data)
    rows: list[dict[PropKey, Any]] = []
    worst = -1
    for record in records:
        address = _address(record.get("final-recipient", record.get("original-recipient", "")))
        action = record.get("action", "").lower().split()[0] if record.get("action") else ""
        if "@" not in address or action not in SEVERITY:
            continue
        worst = max(worst, SEVERITY[action])
        row = A.recipient((record.get("x-display-name", ""), address), A.MAPI_TO)
        status = record.get("status", "")
        remote = _address(record.get("remote-mta", ""))
        diagnostic = record.get("diagnostic-code", "")
        row[T.PidTagSupplementaryInfo] = record.get("x-supplementary-info") or (
            f"<{remote} #{status}{' ' + _address(diagnostic) if diagnostic else ''}>")
        code = _status_code(status)
        if code is not None:
            row[T.PidTagNonDeliveryReportStatusCode] = code
        if action == "failed":
            row[T.PidTagNonDeliveryReportReasonCode] = 0  # MAPI_REASON_TRANSFER_FAILED
            row[T.PidTagNonDeliveryReportDiagCode] = MAPI_DIAG_NO_DIAGNOSTIC
        if T.PidTagClientSubmitTime in message.props:
            row[T.PidTagReportTime] = message.props[T.PidTagClientSubmitTime]
        rows.append(row)
    if worst >= 0:
        message.props[T.PidTagMessageClass] = REPORT_CLASS[worst]
        message.recipients = rows


def _disposition(data: bytes, message: NewMessage) -> None:
    fields: dict[str, str] = {}
    for record in _records(data):
        for key, value in record.items():
            fields.setdefault(key, value)
    disposition = fields.get("disposition", "")
    kind = disposition.partition(";")[2].strip().split("/", 1)[0].strip().lower()
    if kind in ("displayed", "dispatched", "processed"):
        message.props[T.PidTagMessageClass] = "REPORT.IPM.Note.IPNRN"
    elif kind in ("deleted", "denied", "failed"):
        message.props[T.PidTagMessageClass] = "REPORT.IPM.Note.IPNNRN"
    else:
        return
    message.props[T.PidTagReportText] = disposition
    original = fields.get("original-message-id")
    if original:
        message.props[T.PidTagOriginalMessageId] = original
    recipient = _address(fields.get("original-recipient") or fields.get("final-recipient", ""))
    if recipient:
        message.props[T.PidTagOriginalDisplayTo] = recipient


# -- after the walk: calendar and TNEF ----------------------------------------------------------


_METHOD = re.compile(rb"(?im)^METHOD[^:\r\n]*:\s*([A-Za-z-]+)")
_PARTSTAT = re.compile(rb"(?i)PARTSTAT=\"?([A-Za-z-]+)")
MEETING_CLASSES = {b"REQUEST": "IPM.Schedule.Meeting.Request",
                   b"CANCEL": "IPM.Schedule.Meeting.Canceled",
                   b"COUNTER": "IPM.Schedule.Meeting.Resp.Tent"}
RESPONSE_CLASSES = {b"ACCEPTED": "IPM.Schedule.Meeting.Resp.Pos",
                    b"DECLINED": "IPM.Schedule.Meeting.Resp.Neg",
                    b"TENTATIVE": "IPM.Schedule.Meeting.Resp.Tent"}


def meeting_class(ics: bytes) -> str | None:
    """The meeting message class of an iTIP object (REQUEST, REPLY, CANCEL, COUNTER)."""
    unfolded = re.sub(rb"\r?\n[ \t]", b"", ics)
    method = _METHOD.search(unfolded)
    if method is None:
        return None
    name = method.group(1).upper()
    if name == b"REPLY":
        for line in unfolded.splitlines():
            if line[:8].upper() == b"ATTENDEE":
                status = _PARTSTAT.search(line)
                if status:
                    return RESPONSE_CLASSES.get(status.group(1).upper(),
                                                "IPM.Schedule.Meeting.Resp.Tent")
        return "IPM.Schedule.Meeting.Resp.Tent"
    return MEETING_CLASSES.get(name)




def after_walk(message: NewMessage, content: Content, budget: Budget) -> None:
    from gateway.convert import mime_in

    cls = str(message.props.get(T.PidTagMessageClass, ""))
    if content.calendar is not None and not cls.startswith(("REPORT.", "IPM.Note.SMIME")):
        try:
            mime_in.calendar_part(message, content.calendar)
        except Exception as exc:
            budget.defect(f"calendar part: {exc!r}")
    for attachment, data in content.tnef:
        try:
            _merge_tnef(message, attachment, data)
        except Exception as exc:  # the TNEF decoder is optional here; winmail.dat stays
            budget.defect(f"winmail.dat kept as is: {exc!r}")


def _merge_tnef(message: NewMessage, attachment: NewAttachment, data: bytes) -> None:
    from gateway.convert import tnef

    decoded = tnef.decode(data)
    for key, value in decoded.props.items():
        if key not in ENVELOPE_KEYS or key not in message.props:
            message.props[key] = value
    if not message.recipients:
        message.recipients = list(decoded.recipients)
    message.attachments = [a for a in message.attachments if a is not attachment]
    message.attachments.extend(decoded.attachments)
