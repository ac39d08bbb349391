"""Reading a request: its XML body (hostile, size-limited), Depth, and conditional headers."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request

from gateway.xmlsafe import parse, read_body
from plugins.dav.errors import DavError
from plugins.dav.resources import Context
from plugins.dav.xmlout import Element


async def xml(ctx: Context, request: Request, required: bool = True) -> Element | None:
    """The request's XML document; None for an empty body when not ``required``."""
    data = await read_body(request, ctx.settings.max_xml_bytes)
    if not data.strip():
        if required:
            raise DavError(400, message="this method needs an XML body")
        return None
    return parse(data)


def path_of(request: Request) -> str:
    """The request path as the client sent it, still percent-encoded: the ASGI ``path`` is
    decoded already, and decoding it again would let ``%2541`` name ``A``."""
    raw = request.scope.get("raw_path")
    if raw:
        return bytes(raw).split(b"?", 1)[0].decode("latin-1")
    return quote(request.scope["path"])


def prefers_minimal(request: Request) -> bool:
    """``Prefer: return=minimal`` (RFC 7240, as Apple clients send it) or Microsoft's
    ``Brief: t``: leave the 404 propstats out of a PROPFIND answer (RFC 8144 section 2)."""
    prefer = request.headers.get("prefer", "").replace(" ", "").lower()
    return "return=minimal" in prefer.split(",") or \
        request.headers.get("brief", "").strip().lower() == "t"


def depth(request: Request, default: str = "infinity") -> str:
    """The Depth header: ``"0"``, ``"1"`` or ``"infinity"``; 400 for anything else."""
    value = request.headers.get("depth", default).strip().lower()
    if value not in ("0", "1", "infinity"):
        raise DavError(400, message=f"Depth {value!r} is not 0, 1 or infinity")
    return value


def _tags(header: str) -> list[str]:
    return [t.strip() for t in header.split(",") if t.strip()]


def check_preconditions(request: Request, etag: str | None) -> None:
    """If-Match / If-None-Match (RFC 9110 13.1) against the resource's ETag (None: it does
    not exist); 412 when they fail."""
    match = request.headers.get("if-match")
    if match is not None:
        wanted = _tags(match)
        # If-Match compares strongly (RFC 9110 13.1.1): a weak tag never matches.
        if etag is None or ("*" not in wanted and etag not in wanted):
            raise DavError(412, message="If-Match failed")
    none_match = request.headers.get("if-none-match")
    if none_match is not None and etag is not None:
        wanted = _tags(none_match)
        if "*" in wanted or etag in [t.removeprefix("W/") for t in wanted]:
            if request.method in ("GET", "HEAD"):
                raise DavError(304)
            raise DavError(412, message="If-None-Match failed")
