"""Hook implementations of the imap plugin: the ``[imap]`` section and the IMAP listeners."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway import hookimpl
from gateway.discovery import DiscoveryRequest, Endpoint, listener_port
from gateway.host import Host
from gateway.net import Connection, TcpService
from plugins.imap.limits import ConnectionLimits
from plugins.imap.settings import ImapSection


class ImapService:
    """What every session of one worker shares: the host and the per-user session count."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.limits = ConnectionLimits()
        self.log = host.plugin_log("imap")

    @property
    def config(self) -> ImapSection:
        section: ImapSection = self.host.config.imap
        return section

    async def handle(self, conn: Connection) -> None:
        from plugins.imap.session import Session

        address = conn.peer[0]
        limit = self.config.max_connections_per_address
        if not self.limits.acquire_address(address, limit):
            self.log.info("imap: refused %s: more than %d connections from that address",
                          address, limit)
            await conn.write(b"* BYE [UNAVAILABLE] too many connections from your address\r\n")
            return
        try:
            await Session(self, conn).run()
        finally:
            self.limits.release_address(address)


@hookimpl
def gateway_config_schema() -> Mapping[str, type]:
    return {"imap": ImapSection}


@hookimpl
def gateway_tcp_services(host: Host) -> Sequence[TcpService]:
    section: ImapSection = host.config.imap
    if not section.listen and not section.listen_tls:
        return []
    service = ImapService(host)
    return [TcpService(
        name="imap",
        handler=service.handle,
        listen=list(section.listen),
        listen_tls=list(section.listen_tls),
        starttls=True,
        proxy_protocol=section.proxy_protocol,
        trusted_proxies=list(section.trusted_proxies),
        max_line_bytes=section.max_line_bytes,
        max_literal_bytes=section.max_literal_bytes,
        idle_timeout=section.login_timeout,
        # counted by ImapService.handle, which says BYE rather than closing silently
        max_connections_per_address=0,
    )]


@hookimpl
def gateway_autodiscover_endpoints(host: Host, request: DiscoveryRequest) -> Sequence[Endpoint]:
    """IMAP listeners for AutoDiscover and autoconfig: implicit TLS first, then STARTTLS."""
    section: ImapSection = host.config.imap
    found = []
    for listeners, socket_type in ((section.listen_tls, "SSL"), (section.listen, "STARTTLS")):
        for listener in listeners[:1]:
            port = listener_port(listener)
            if port:
                found.append(Endpoint("IMAP", server=request.host, port=port,
                                      settings={"SocketType": socket_type}))
    return found
