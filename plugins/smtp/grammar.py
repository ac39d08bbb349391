"""The SMTP command grammar (RFC 5321 section 4.1, with RFC 6531, 1870, 6152, 3461).

Pure functions from the text of one command line to values, raising
:class:`SyntaxProblem` with the reply the client deserves. The session
(:mod:`plugins.smtp.session`) has already refused bare CR/LF, NUL bytes,
overlong lines and invalid UTF-8; what reaches here is one decoded line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from plugins.smtp.replies import Reply

MAX_LOCAL_PART = 64
MAX_DOMAIN = 255
MAX_PATH = 256
MAX_ENVID = 100
MAX_ORCPT = 500
MAX_SIZE_DIGITS = 20

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_UTEXT = r"(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]|[^\x00-\x7f])"
_DOT_ATOM = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*\Z")
_DOT_ATOM_UTF8 = re.compile(rf"{_UTEXT}+(?:\.{_UTEXT}+)*\Z")
_QUOTED = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"\Z')
_QUOTED_UTF8 = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|[^\x00-\x7f]|\\[\x20-\x7e])*"\Z')
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_ADDRESS_LITERAL = re.compile(r"\[(?:IPv6:[0-9A-Fa-f:.]+|[0-9.]+)\]\Z")
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*\Z")
_NOTIFY = frozenset({"SUCCESS", "FAILURE", "DELAY"})


class SyntaxProblem(ValueError):
    """The command is malformed; ``reply`` says how."""

    def __init__(self, reply: Reply):
        super().__init__(reply.text)
        self.reply = reply


def split_command(line: str) -> tuple[str, str]:
    """``("MAIL", "FROM:<a@b>")`` from ``"mail FROM:<a@b>"``: verb upper-cased, rest as sent."""
    verb, _, rest = line.partition(" ")
    return verb.upper(), rest


def is_domain(text: str, *, utf8: bool = False) -> bool:
    """A host name (letters, digits, hyphens; U-labels with ``utf8``) or an address literal."""
    if _ADDRESS_LITERAL.match(text):
        return True
    if not text or len(text.encode("utf-8")) > MAX_DOMAIN:
        return False
    if utf8 and not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            return False
    return all(_LABEL.match(label) for label in text.split("."))


def check_mailbox(address: str, *, utf8: bool, problem: Reply) -> str:
    """``address`` (local@domain) when well-formed, else :class:`SyntaxProblem`.

    Non-ASCII is allowed only under SMTPUTF8; without it, the reply is 553 5.6.7.
    """
    if not utf8 and not address.isascii():
        raise SyntaxProblem(Reply(553, "5.6.7", "non-ASCII address needs the SMTPUTF8 "
                                                "parameter"))
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise SyntaxProblem(problem)
    dot_atom, quoted = (_DOT_ATOM_UTF8, _QUOTED_UTF8) if utf8 else (_DOT_ATOM, _QUOTED)
    if not (dot_atom.match(local) or quoted.match(local)):
        raise SyntaxProblem(problem)
    if len(local.encode("utf-8")) > MAX_LOCAL_PART or not is_domain(domain, utf8=utf8):
        raise SyntaxProblem(problem)
    return address


def _path(text: str, what: str, *, utf8: bool, null_ok: bool) -> tuple[str, str]:
    """``(address, rest of line)`` from ``<...> params``; the source route is dropped."""
    enhanced = "5.1.7" if what == "sender" else "5.1.3"
    problem = Reply(501, enhanced, f"malformed {what} address")
    text = text.lstrip(" ")
    if not text.startswith("<"):
        raise SyntaxProblem(Reply(501, enhanced, f"{what} address must be in angle brackets"))
    end = _closing_bracket(text)
    if end < 0:
        raise SyntaxProblem(problem)
    inner, rest = text[1:end], text[end + 1:]
    if rest and not rest.startswith(" "):
        raise SyntaxProblem(problem)
    if len(inner.encode("utf-8")) > MAX_PATH:
        raise SyntaxProblem(Reply(501, enhanced, f"{what} address too long"))
    if inner == "":
        if not null_ok:
            raise SyntaxProblem(Reply(501, enhanced, "the null address is no recipient"))
        return "", rest
    if inner.startswith("@"):  # obsolete source route: <@a,@b:user@c>
        route, colon, inner = inner.partition(":")
        if not colon or not all(h.startswith("@") and is_domain(h[1:])
                                for h in route.split(",")):
            raise SyntaxProblem(problem)
    return check_mailbox(inner, utf8=utf8, problem=problem), rest.strip(" ")


def _closing_bracket(text: str) -> int:
    """Index of the ``>`` closing the path at ``text[0]``, honouring quoted local parts."""
    quoted = escaped = False
    for index in range(1, len(text)):
        char = text[index]
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ">" and not quoted:
            return index
        elif char == "<" and not quoted:
            return -1
    return -1


def parse_params(text: str) -> dict[str, str | None]:
    """``{"SIZE": "123", "SMTPUTF8": None}`` from ``SIZE=123 SMTPUTF8`` (keys upper-cased)."""
    params: dict[str, str | None] = {}
    for item in text.split(" "):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not _KEYWORD.match(key) or (eq and not value):
            raise SyntaxProblem(Reply(501, "5.5.4", f"malformed parameter {item[:40]!r}"))
        key = key.upper()
        if key in params:
            raise SyntaxProblem(Reply(501, "5.5.4", f"parameter {key} given twice"))
        params[key] = value if eq else None
    return params


def decode_xtext(text: str, what: str) -> str:
    """RFC 3461 xtext (``+XX`` hex escapes) decoded; 501 5.5.4 when malformed."""
    if not _XTEXT.match(text):
        raise SyntaxProblem(Reply(501, "5.5.4", f"{what} is not valid xtext"))
    return re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), text)


@dataclass
class MailFrom:
    """A parsed ``MAIL FROM``: the reverse path and its parameters."""

    sender: str
    size: int | None = None
    body: str = "7BIT"
    smtputf8: bool = False
    ret: str | None = None
    """DSN RET: ``"FULL"`` or ``"HDRS"``."""
    envid: str | None = None
    """DSN ENVID, decoded."""


@dataclass
class RcptTo:
    """A parsed ``RCPT TO``: the forward path and its DSN parameters."""

    address: str
    notify: tuple[str, ...] = ()
    """DSN NOTIFY: ``("NEVER",)`` or some of SUCCESS, FAILURE, DELAY; () when not given."""
    orcpt: str | None = None
    """DSN ORCPT as ``type;address`` (the address decoded from xtext)."""
    extra: dict[str, str | None] = field(default_factory=dict)


def _unknown(params: dict[str, str | None]) -> None:
    if params:
        raise SyntaxProblem(Reply(555, "5.5.4", f"unsupported parameter {next(iter(params))}"))


def parse_mail(rest: str, *, esmtp: bool) -> MailFrom:
    """``FROM:<address> [params]`` (``rest`` is what followed the verb)."""
    if rest[:5].upper() != "FROM:":
        raise SyntaxProblem(Reply(501, "5.5.4", "syntax: MAIL FROM:<address> [parameters]"))
    probe = rest[5:]
    utf8 = esmtp and " SMTPUTF8" in f" {probe.upper()}"
    address, tail = _path(probe, "sender", utf8=utf8, null_ok=True)
    params = parse_params(tail)
    if params and not esmtp:
        raise SyntaxProblem(Reply(555, "5.5.4", "parameters need EHLO"))
    mail = MailFrom(address)
    if "SIZE" in params:
        value = params.pop("SIZE") or ""
        if not value.isdigit() or len(value) > MAX_SIZE_DIGITS:
            raise SyntaxProblem(Reply(501, "5.5.4", "SIZE must be a number"))
        mail.size = int(value)
    if "BODY" in params:
        body = (params.pop("BODY") or "").upper()
        if body not in ("7BIT", "8BITMIME"):
            raise SyntaxProblem(Reply(555, "5.5.4", f"BODY={body[:20]} is not supported"))
        mail.body = body
    if "SMTPUTF8" in params:
        if params.pop("SMTPUTF8") is not None:
            raise SyntaxProblem(Reply(501, "5.5.4", "SMTPUTF8 takes no value"))
        mail.smtputf8 = True
    if "RET" in params:
        ret = (params.pop("RET") or "").upper()
        if ret not in ("FULL", "HDRS"):
            raise SyntaxProblem(Reply(501, "5.5.4", "RET must be FULL or HDRS"))
        mail.ret = ret
    if "ENVID" in params:
        envid = decode_xtext(params.pop("ENVID") or "", "ENVID")
        if len(envid) > MAX_ENVID:
            raise SyntaxProblem(Reply(501, "5.5.4", "ENVID too long"))
        mail.envid = envid
    params.pop("AUTH", None)  # RFC 4954 section 5: accepted, not trusted
    _unknown(params)
    return mail


def parse_rcpt(rest: str, *, esmtp: bool, utf8: bool) -> RcptTo:
    """``TO:<address> [params]`` (``rest`` is what followed the verb)."""
    if rest[:3].upper() != "TO:":
        raise SyntaxProblem(Reply(501, "5.5.4", "syntax: RCPT TO:<address> [parameters]"))
    address, tail = _path(rest[3:], "recipient", utf8=utf8, null_ok=False)
    params = parse_params(tail)
    if params and not esmtp:
        raise SyntaxProblem(Reply(555, "5.5.4", "parameters need EHLO"))
    rcpt = RcptTo(address)
    if "NOTIFY" in params:
        values = tuple((params.pop("NOTIFY") or "").upper().split(","))
        if values != ("NEVER",) and (not set(values) <= _NOTIFY or len(set(values)) != len(values)):
            raise SyntaxProblem(Reply(501, "5.5.4", "NOTIFY must be NEVER or a list of "
                                                    "SUCCESS, FAILURE, DELAY"))
        rcpt.notify = values
    if "ORCPT" in params:
        kind, semi, value = (params.pop("ORCPT") or "").partition(";")
        if not semi or not _KEYWORD.match(kind) or not value:
            raise SyntaxProblem(Reply(501, "5.5.4", "ORCPT must be addr-type;xtext"))
        decoded = decode_xtext(value, "ORCPT")
        if len(decoded) > MAX_ORCPT:
            raise SyntaxProblem(Reply(501, "5.5.4", "ORCPT too long"))
        rcpt.orcpt = f"{kind};{decoded}"
    _unknown(params)
    return rcpt
