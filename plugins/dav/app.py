"""The DAV application: one ASGI app under the context path, dispatching by method.

Each method lives in its own module (``plugins/dav/m_*.py``) as
``async def handle(ctx, request) -> Response``. Errors become their DAV
answers here: :class:`DavError` with its precondition body, malformed XML 400,
oversized bodies 413, store refusals 403/404/507 — never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.store import AccessDenied, Collision, NotFound, QuotaExceeded, StoreError, TooBig
from gateway.xmlsafe import BadXml, BodyTooLarge
from plugins.dav import (
    acl,
    m_delete,
    m_get,
    m_mkcol,
    m_move,
    m_options,
    m_post,
    m_propfind,
    m_proppatch,
    m_put,
    m_report,
    r_principal,
)
from plugins.dav.errors import DavError
from plugins.dav.parsed import ParsedCalendars
from plugins.dav.resources import Context
from plugins.dav.xmlout import error_response

if TYPE_CHECKING:
    from gateway.host import Host

log = logging.getLogger("gateway.plugins.dav")
r_principal.register()

Handler = Callable[[Context, Request], Awaitable[Response]]
METHODS: dict[str, Handler] = {
    "OPTIONS": m_options.handle,
    "PROPFIND": m_propfind.handle,
    "PROPPATCH": m_proppatch.handle,
    "GET": m_get.handle,
    "HEAD": m_get.handle,
    "PUT": m_put.handle,
    "DELETE": m_delete.handle,
    "MKCOL": m_mkcol.handle,
    "MKCALENDAR": m_mkcol.handle,
    "REPORT": m_report.handle,
    "MOVE": m_move.handle,
    "ACL": acl.handle,
    "POST": m_post.handle,
}


class DavApp:
    """The ASGI app behind authentication (``scope["gateway.principal"]`` is set)."""

    def __init__(self, host: Host):
        self.host = host
        self.parsed = ParsedCalendars(host.config.dav.parsed_cache_items)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.answer(request)
        await response(scope, receive, send)

    async def answer(self, request: Request) -> Response:
        handler = METHODS.get(request.method)
        if handler is None:
            return Response(f"{request.method} is not supported here\n", status_code=405,
                            headers={"Allow": m_options.ALLOW})
        ctx = Context.of(self.host, request.scope, self.parsed)
        try:
            return await handler(ctx, request)
        except DavError as exc:
            return error_response(exc.status, exc.condition, exc.message)
        except BadXml as exc:
            return error_response(400, None, f"malformed XML: {exc}")
        except BodyTooLarge:
            return error_response(413, None, "request body too large")
        except AccessDenied:
            return error_response(403, "{DAV:}need-privileges", "not allowed")
        except NotFound:
            return error_response(404, None, "not found")
        except Collision as exc:
            return error_response(409, None, str(exc))
        except QuotaExceeded:
            return error_response(507, "{DAV:}quota-not-exceeded", "mailbox quota exceeded")
        except TooBig as exc:
            return error_response(507, None, str(exc))
        except StoreError as exc:
            return error_response(409, None, str(exc))
