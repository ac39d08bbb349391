"""Hook implementations of the CalDAV/CardDAV plugin.

Everything under ``[dav] context_path`` (``/dav``) goes through Basic/Negotiate
authentication (privilege ``dav``) to :class:`plugins.dav.app.DavApp`; AutoDiscover
and ``/.well-known/caldav`` and ``/carddav`` learn the URL from
``gateway_autodiscover_endpoints``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.routing import BaseRoute, Mount

from gateway import hookimpl
from gateway.auth.http import HttpAuth
from gateway.discovery import DiscoveryRequest, Endpoint
from gateway.host import Host
from plugins.dav.app import DavApp
from plugins.dav.settings import DavSection


@hookimpl
def gateway_config_schema() -> Mapping[str, type]:
    return {"dav": DavSection}


@hookimpl
def gateway_http_routes(host: Host) -> Sequence[BaseRoute]:
    section: DavSection = host.config.dav
    app = HttpAuth(DavApp(host), host, "dav", schemes=section.auth_schemes)
    return [Mount(section.context_path, app=app)]


@hookimpl
def gateway_autodiscover_endpoints(host: Host, request: DiscoveryRequest) -> Sequence[Endpoint]:
    section: DavSection = host.config.dav
    url = request.base_url.rstrip("/") + section.context_path + "/"
    return [Endpoint("CalDAV", url=url), Endpoint("CardDAV", url=url)]
