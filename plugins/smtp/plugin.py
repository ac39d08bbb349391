"""Hook implementations of the smtp plugin: LMTP/SMTP delivery and SMTP submission.

Two TCP services: ``smtp-delivery`` on ``[smtp] delivery_listen`` (the MTA
hands over mail for local mailboxes, LMTP or SMTP by greeting, see
:mod:`plugins.smtp.session`) and ``smtp-submission`` on
``submission_listen`` (STARTTLS) and ``submission_listen_tls`` (implicit
TLS). The protocol engine is :mod:`plugins.smtp.session`; what each listener
accepts is its policy (:mod:`plugins.smtp.delivery_policy`,
:mod:`plugins.smtp.submission_policy`); local delivery itself lives in
:mod:`gateway.mail.delivery`, shared with the submission path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway import hookimpl
from gateway.discovery import DiscoveryRequest, Endpoint, listener_port
from gateway.host import Host
from gateway.mail.delivery import local_hostname
from gateway.net import Connection, TcpService
from plugins.smtp.delivery_policy import DeliveryPolicy
from plugins.smtp.ratelimit import ConnectionRate
from plugins.smtp.session import MAX_AUTH_LINE, Policy, Session
from plugins.smtp.settings import SmtpSection
from plugins.smtp.submission_policy import SubmissionPolicy


@hookimpl
def gateway_config_schema() -> Mapping[str, type]:
    return {"smtp": SmtpSection}


def _service(host: Host, name: str, make_policy: type[DeliveryPolicy] | type[SubmissionPolicy],
             listen: list[str], listen_tls: list[str], starttls: bool) -> TcpService:
    settings: SmtpSection = host.config.smtp
    rate = ConnectionRate(settings.max_connections_per_minute)

    async def handler(conn: Connection) -> None:
        current: SmtpSection = host.config.smtp  # limits follow a reload
        rate.per_minute = current.max_connections_per_minute
        policy: Policy = make_policy(host, current, rate)
        hostname = current.hostname or local_hostname(host)
        await Session(conn, policy, current, hostname).run()

    return TcpService(
        name=name, handler=handler, listen=list(listen), listen_tls=list(listen_tls),
        starttls=starttls, proxy_protocol=settings.proxy_protocol,
        trusted_proxies=list(settings.trusted_proxies), max_line_bytes=MAX_AUTH_LINE,
        max_literal_bytes=0, idle_timeout=settings.idle_timeout,
        max_connections_per_address=settings.max_connections_per_address)


@hookimpl
def gateway_tcp_services(host: Host) -> Sequence[TcpService]:
    settings: SmtpSection = host.config.smtp
    services = []
    if settings.delivery_listen:
        services.append(_service(host, "smtp-delivery", DeliveryPolicy,
                                 settings.delivery_listen, [], starttls=False))
    if settings.submission_listen or settings.submission_listen_tls:
        services.append(_service(host, "smtp-submission", SubmissionPolicy,
                                 settings.submission_listen, settings.submission_listen_tls,
                                 starttls=True))
    return services


@hookimpl
def gateway_autodiscover_endpoints(host: Host, request: DiscoveryRequest) -> Sequence[Endpoint]:
    """Submission listeners for AutoDiscover and autoconfig: implicit TLS first."""
    settings: SmtpSection = host.config.smtp
    found = []
    for listeners, socket_type in ((settings.submission_listen_tls, "SSL"),
                                   (settings.submission_listen, "STARTTLS")):
        for listener in listeners[:1]:
            port = listener_port(listener)
            if port:
                found.append(Endpoint("SMTP", server=request.host, port=port,
                                      settings={"SocketType": socket_type}))
    return found
