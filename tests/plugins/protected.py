"""A test plugin with routes behind :class:`gateway.auth.http.HttpAuth`.

Loaded with ``[plugins] modules = ["tests.plugins.protected"]``. Routes, all
served by the same handler, which answers with who is logged in:

* ``/open/``            no authentication (for the benchmark's baseline);
* ``/protected/``       Basic and Negotiate, protocol ``ews``;
* ``/basic-only/``      Basic only (mounted through Starlette ``middleware=``);
* ``/negotiate-only/``  Negotiate only.

It also contributes a password mechanism accepting ``[protected] username``
with ``[protected] password`` (only when ``username`` is set), so Basic works
without users in the directory.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router

from gateway import hookimpl
from gateway.auth import AuthResult, Credentials, Principal
from gateway.auth.http import PRINCIPAL, HttpAuth
from gateway.config import option
from gateway.host import Host


@dataclass
class ProtectedSection:
    username: str = option("", "The one user name the test mechanism accepts; empty: none.")
    password: str = option("", "Its password.", secret=True)


class StaticPasswordMechanism:
    """Accepts ``[protected] username`` / ``password`` and nothing else."""

    name = "protected-static"
    kinds = frozenset({"password"})

    def __init__(self, host: Host):
        self.host = host

    async def authenticate(self, credentials: Credentials) -> AuthResult:
        section = self.host.config.protected
        if (section.username and credentials.username == section.username
                and hmac.compare_digest(credentials.secret, section.password.encode())):
            return AuthResult(Principal(section.username, self.name))
        return AuthResult(reason="not the test user or wrong password")


async def whoami(request: Request) -> Response:
    principal = request.scope.get(PRINCIPAL)
    if principal is None:
        return PlainTextResponse("anonymous\n")
    krb5 = principal.attributes.get("krb5_principal", "-")
    return PlainTextResponse(
        f"user={principal.username} mechanism={principal.mechanism} krb5={krb5}\n")


def _routes() -> list[BaseRoute]:
    return [Route("/", whoami, methods=["GET", "POST"])]


@hookimpl
def gateway_config_schema() -> Mapping[str, type]:
    return {"protected": ProtectedSection}


@hookimpl
def gateway_auth_mechanisms(host: Host) -> Sequence[StaticPasswordMechanism]:
    return [StaticPasswordMechanism(host)]


@hookimpl
def gateway_http_routes(host: Host) -> Sequence[BaseRoute]:
    return [
        Mount("/open", routes=_routes()),
        Mount("/protected", app=HttpAuth(Router(routes=_routes()), host, "ews")),
        Mount("/basic-only", routes=_routes(),
              middleware=[Middleware(HttpAuth, host=host, protocol="ews", schemes=["basic"])]),
        Mount("/negotiate-only",
              app=HttpAuth(Router(routes=_routes()), host, "ews", schemes=["negotiate"])),
    ]
