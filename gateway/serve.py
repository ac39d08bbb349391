"""``gateway serve``: hypercorn and the plugins' TCP services on one event loop.

The parent process checks everything an administrator could get wrong
(configuration, route collisions, TLS files, addresses in use) and binds every
listener before serving, so a mistake stops start-up with a clear message.
With ``--workers N`` it then forks N workers that share those sockets and
supervises them: SIGTERM and SIGHUP are passed on, a worker that dies is
replaced.

In a worker: SIGTERM (or SIGINT) stops accepting, lets in-flight requests and
sessions finish within ``[gateway] grace_period`` and then closes the rest;
SIGHUP re-reads the configuration (see ``Host.reload``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import hypercorn.asyncio.run as hypercorn_run
from hypercorn.asyncio.run import worker_serve
from hypercorn.asyncio.tcp_server import TCPServer as HypercornConnection
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.utils import wrap_app
from starlette.types import ASGIApp

from gateway.app import build_app
from gateway.config import ConfigError
from gateway.host import Host
from gateway.net import TcpServer, TcpService, bind_socket
from gateway.tls import certificate_paths, server_context

log = logging.getLogger("gateway.serve")


@dataclass
class Listeners:
    """Every bound listening socket of the gateway."""

    http: list[socket.socket] = field(default_factory=list)
    https: list[socket.socket] = field(default_factory=list)
    tcp: dict[str, tuple[list[socket.socket], list[socket.socket]]] = field(default_factory=dict)

    def close(self) -> None:
        for sock in self.http + self.https:
            sock.close()
        for plain, tls in self.tcp.values():
            for sock in plain + tls:
                sock.close()


def collect_services(host: Host) -> list[TcpService]:
    services: list[TcpService] = []
    names: dict[str, str] = {}
    try:
        contributions = host.call_each("gateway_tcp_services", host=host)
    except ValueError as exc:  # TcpService checks its own values when it is made
        raise ConfigError(f"a TCP service is misconfigured: {exc}") from None
    for plugin, contributed in contributions:
        for service in contributed or ():
            if not isinstance(service, TcpService):
                raise ConfigError(f"plugin {plugin!r} returned {service!r}, not a TcpService")
            if service.name in names:
                raise ConfigError(f"TCP service name {service.name!r} is used by plugins "
                                  f"{names[service.name]!r} and {plugin!r}")
            names[service.name] = plugin
            services.append(service)
    return services


def _bind(address: str, owner: str, reuse_port: bool) -> socket.socket:
    try:
        return bind_socket(address, reuse_port=reuse_port)
    except ValueError as exc:
        raise ConfigError(f"{owner}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{owner}: cannot listen on {address}: {exc.strerror or exc}") from None


def bind_listeners(host: Host, services: list[TcpService]) -> Listeners:
    listeners = Listeners()
    try:
        http = host.config.http
        listeners.http = [_bind(a, "[http] listen", False) for a in http.listen]
        listeners.https = [_bind(a, "[http] listen_tls", False) for a in http.listen_tls]
        for service in services:
            plain = [_bind(a, f"service {service.name} listen", False) for a in service.listen]
            tls = [_bind(a, f"service {service.name} listen_tls", False)
                   for a in service.listen_tls]
            listeners.tcp[service.name] = (plain, tls)
    except BaseException:
        listeners.close()
        raise
    return listeners


def hypercorn_config(host: Host, cert: Path | None, key: Path | None) -> HypercornConfig:
    http = host.config.http
    config = HypercornConfig()
    config.h11_max_incomplete_size = http.max_header_bytes
    config.h2_max_header_list_size = http.max_header_bytes
    config.keep_alive_timeout = http.keep_alive_timeout
    config.read_timeout = http.read_timeout or None
    config.graceful_timeout = host.config.gateway.grace_period
    config.include_server_header = False
    config.accesslog = None
    config.errorlog = logging.getLogger("gateway.hypercorn")
    if cert and key:
        config.certfile, config.keyfile = str(cert), str(key)
    return config


@dataclass
class Prepared:
    """What the parent made ready for the workers."""

    app: ASGIApp
    services: list[TcpService]
    listeners: Listeners
    cert: Path | None
    key: Path | None


def prepare(host: Host) -> Prepared:
    """Assemble and bind everything; raises ``ConfigError`` for an administrator to fix."""
    app = build_app(host)
    services = collect_services(host)
    needs_tls = bool(host.config.http.listen_tls) or any(
        s.listen_tls or s.starttls for s in services)
    cert, key = certificate_paths(host.config) if needs_tls else (None, None)
    if cert and key:
        server_context(cert, key)  # fail now, not in every worker, on a bad pair
    listeners = bind_listeners(host, services)
    return Prepared(app, services, listeners, cert, key)


def _counter(server: TcpServer) -> Callable[[], int]:
    return lambda: server.open_connections


class _CountedConnection(HypercornConnection):
    """hypercorn's per-connection server, counting open connections by listener.

    hypercorn has no hook for this; ``worker_serve`` looks the class up in its
    module at each accept, so the host substitutes this subclass there.
    """

    open: ClassVar[dict[str, int]] = {}

    async def run(self) -> None:
        sockname = self.writer.get_extra_info("sockname")
        tls = self.writer.get_extra_info("ssl_object") is not None
        listener = f"{'https' if tls else 'http'}:{sockname[1] if sockname else 0}"
        self.open[listener] = self.open.get(listener, 0) + 1
        try:
            await super().run()
        finally:
            self.open[listener] -= 1


def _http_counter(listener: str) -> Callable[[], int]:
    return lambda: _CountedConnection.open.get(listener, 0)


def _track_http_connections(host: Host, listeners: Listeners) -> None:
    hypercorn_run.TCPServer = _CountedConnection  # type: ignore[misc]
    for scheme, sockets in (("http", listeners.http), ("https", listeners.https)):
        for sock in sockets:
            name = f"{scheme}:{sock.getsockname()[1]}"
            host.metrics.track_connections(name, _http_counter(name))


async def run_worker(host: Host, prepared: Prepared) -> None:
    """Serve until SIGTERM/SIGINT, then drain and shut down."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reloads: set[asyncio.Task[bool]] = set()

    def reload() -> None:
        task = loop.create_task(host.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload)

    await host.startup()
    grace = host.config.gateway.grace_period
    context = None
    if prepared.cert and prepared.key:
        context = server_context(prepared.cert, prepared.key)
    servers: list[TcpServer] = []
    for service in prepared.services:
        server = TcpServer(service, context)
        plain, tls = prepared.listeners.tcp[service.name]
        await server.start(plain, tls)
        host.metrics.track_connections(service.name, _counter(server))
        servers.append(server)

    _track_http_connections(host, prepared.listeners)
    hconfig = hypercorn_config(host, prepared.cert, prepared.key)
    sockets = Sockets(prepared.listeners.https, prepared.listeners.http, [])
    http = loop.create_task(
        worker_serve(wrap_app(prepared.app, hconfig.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
                     hconfig,
                     sockets=sockets, shutdown_trigger=stop.wait),
        name="http",
    )
    # Everything made so far (modules, app, plugin state) lives as long as the
    # worker: keep it out of the collector's full scans, which otherwise walk
    # SQLAlchemy's and every plugin's objects again and again under load.
    gc.collect()
    gc.freeze()
    log.info("worker %d ready", os.getpid())
    waiter = loop.create_task(stop.wait())
    await asyncio.wait({http, waiter}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    log.info("worker %d draining (up to %.0f s)", os.getpid(), grace)
    results = await asyncio.gather(
        asyncio.wait_for(http, grace + 5), *(s.close(grace) for s in servers),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            log.error("while stopping: %r", result)
    await host.shutdown()
    log.info("worker %d stopped", os.getpid())


def raise_file_limit() -> None:
    """Every connection is a descriptor: take the hard limit the system grants."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        log.debug("open-file limit raised from %d to %d", soft, hard)


def serve(host: Host, workers: int) -> int:
    """Run the gateway in this process (one worker) or in supervised forks."""
    raise_file_limit()
    prepared = prepare(host)
    _log_listeners(host, prepared)
    if workers <= 1:
        try:
            asyncio.run(run_worker(host, prepared))
        finally:
            prepared.listeners.close()
        return 0
    return supervise(host, prepared, workers)


def _log_listeners(host: Host, prepared: Prepared) -> None:
    for address in host.config.http.listen:
        log.info("HTTP on http://%s/", address)
    for address in host.config.http.listen_tls:
        log.info("HTTPS on https://%s/ (certificate %s)", address, prepared.cert)
    for service in prepared.services:
        for address in service.listen:
            log.info("%s on %s%s", service.name, address, " (STARTTLS)" if service.starttls else "")
        for address in service.listen_tls:
            log.info("%s on %s (TLS)", service.name, address)


def _run_child(host: Host, prepared: Prepared) -> int:
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    try:
        asyncio.run(run_worker(host, prepared))
        return 0
    except Exception:
        log.exception("worker %d failed", os.getpid())
        return 1


def supervise(host: Host, prepared: Prepared, workers: int) -> int:
    """Fork ``workers`` children sharing the listeners; keep them running until SIGTERM."""
    children: dict[int, int] = {}
    stopping = False
    failures: list[float] = []

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _run_child(host, prepared)
            finally:
                os._exit(code)
        children[pid] = slot

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if signum == signal.SIGINT else signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    for slot in range(workers):
        spawn(slot)
    log.info("supervising %d workers: %s", workers, sorted(children))
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        slot = children.pop(pid, -1)
        if slot < 0 or stopping:
            continue
        log.error("worker %d exited (status %d); starting another", pid, status)
        now = time.monotonic()
        failures = [t for t in failures if now - t < 60] + [now]
        if len(failures) > 5:
            log.critical("workers keep failing; stopping the gateway")
            forward(signal.SIGTERM, None)
            continue
        spawn(slot)
    prepared.listeners.close()
    return 1 if len(failures) > 5 else 0
