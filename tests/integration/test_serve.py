"""A real ``gateway serve`` process: HTTP/1.1, HTTP/2, TLS, signals, bad input."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.harness.gateway import (
    REPO,
    GatewayFactory,
    RunningGateway,
    gateway_env,
    run_cli,
    wait_healthy,
)

PROBE = '[plugins]\nmodules = ["tests.plugins.probe"]\n[probe]\nrecord_dir = "{record}"\n'


def probe_config(tmp_path: Path, extra: str = "") -> str:
    return PROBE.replace("{record}", str(tmp_path / "records")) + extra


def records(tmp_path: Path, name: str) -> list[object]:
    found = []
    for path in sorted((tmp_path / "records").glob(f"{name}-*")):
        found += [json.loads(line) for line in path.read_text().splitlines()]
    return found


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks)


def test_healthz_over_http_and_https(gateway: RunningGateway) -> None:
    assert httpx.get(f"{gateway.http_url}/healthz").text == "ok\n"
    with httpx.Client(verify=gateway.ssl_context()) as client:
        response = client.get(f"{gateway.https_url}/healthz")
    assert response.status_code == 200 and response.http_version == "HTTP/1.1"
    assert "x-request-id" in response.headers
    assert "server" not in response.headers
    assert "generated a self-signed TLS certificate" in gateway.log()


def test_http2_over_tls(gateway: RunningGateway) -> None:
    with httpx.Client(verify=gateway.ssl_context(), http2=True) as client:
        responses = [client.get(f"{gateway.https_url}/healthz") for _ in range(3)]
    assert {r.http_version for r in responses} == {"HTTP/2"}


def test_metrics_only_for_allowed_addresses(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory()
    httpx.get(f"{gw.http_url}/healthz")
    text = httpx.get(f"{gw.http_url}/metrics").text
    assert 'gateway_http_requests_total{method="GET",plugin="status",status="200"}' in text
    assert "gateway_http_request_duration_seconds_bucket" in text
    deadline = time.monotonic() + 5
    while '"GET /healthz HTTP/1.1" 200' not in gw.log() and time.monotonic() < deadline:
        time.sleep(0.1)  # the access log is written in batches
    assert "plugin=status rid=" in gw.log()
    closed = gateway_factory('[status]\nmetrics_allow = ["10.0.0.0/8"]\n')
    assert httpx.get(f"{closed.http_url}/metrics").status_code == 403


def test_hook_gateway_http_routes_served_case_insensitively(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    gw = gateway_factory(probe_config(tmp_path))
    assert httpx.get(f"{gw.http_url}/ews/EXCHANGE.asmx").text == "exchange /ews/EXCHANGE.asmx\n"
    assert httpx.get(f"{gw.http_url}/probe/info").json()["label"] == "first"


def test_hook_gateway_wsgi_apps_served(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = gateway_factory(probe_config(tmp_path))
    assert httpx.get(f"{gw.http_url}/probe-wsgi/x").text == "wsgi /x\n"


def test_hook_gateway_tcp_services_with_starttls(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    gw = gateway_factory(probe_config(tmp_path, 'listen = ["127.0.0.1:{port_echo}"]\n'),
                         ports=["echo"])
    with socket.create_connection(("127.0.0.1", gw.ports["echo"]), timeout=5) as sock:
        stream = sock.makefile("rwb")
        assert stream.readline() == b"* probe\r\n"
        stream.write(b"ping\r\n")
        stream.flush()
        assert stream.readline() == b"ping\r\n"
        metrics = httpx.get(f"{gw.http_url}/metrics").text
        assert 'gateway_connections_open{listener="probe"} 1.0' in metrics
    # hypercorn keeps a connection the client closed until keep_alive_timeout
    # runs out, and the gauge reports what the server holds: so only ">= 1" here.
    gauge = f'gateway_connections_open{{listener="http:{gw.http_port}"}}'
    with httpx.Client() as client:
        text = client.get(f"{gw.http_url}/metrics").text
    assert float(text.split(gauge)[1].split()[0]) >= 1.0


def test_tcp_service_starttls_and_proxy_protocol(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    gw = gateway_factory(probe_config(
        tmp_path, 'listen = ["127.0.0.1:{port_echo}"]\nproxy_protocol = true\n'
                  'trusted_proxies = ["127.0.0.1"]\n'), ports=["echo"])
    port = gw.ports["echo"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PROXY TCP4 198.51.100.9 127.0.0.1 40000 143\r\n")
        stream = sock.makefile("rwb")
        assert stream.readline() == b"* probe\r\n"
        stream.write(b"WHO\r\nSTARTTLS\r\n")
        stream.flush()
        assert stream.readline() == b"198.51.100.9 tls=False\r\n"
        assert stream.readline() == b"OK begin TLS\r\n"
        with gw.ssl_context().wrap_socket(sock, server_hostname="localhost") as tls:
            tls_stream = tls.makefile("rwb")
            tls_stream.write(b"WHO\r\n")
            tls_stream.flush()
            assert tls_stream.readline() == b"198.51.100.9 tls=True\r\n"
    # A trusted proxy that sends no header, or garbage, is cut off.
    assert raw_exchange(port, b"HELLO there\r\n") == b""
    untrusting = gateway_factory(probe_config(
        tmp_path, 'listen = ["127.0.0.1:{port_echo}"]\nproxy_protocol = true\n'
                  'trusted_proxies = ["192.0.2.1"]\n'), ports=["echo"])
    # From an untrusted address a PROXY header is refused, not believed.
    answer = raw_exchange(untrusting.ports["echo"], b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nWHO\r\n")
    assert b"1.2.3.4" not in answer
    with socket.create_connection(("127.0.0.1", untrusting.ports["echo"]), timeout=5) as sock:
        stream = sock.makefile("rwb")
        assert stream.readline() == b"* probe\r\n"
        stream.write(b"WHO\r\n")
        stream.flush()
        assert stream.readline() == b"127.0.0.1 tls=False\r\n"
    assert "PROXY header from untrusted address 127.0.0.1" in untrusting.log()
    assert gw.proc.poll() is None and untrusting.proc.poll() is None


def test_hook_gateway_startup_and_gateway_shutdown_in_a_worker(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    gw = gateway_factory(probe_config(tmp_path))
    assert records(tmp_path, "startup") == ["first"]
    assert gw.stop() == 0
    assert records(tmp_path, "shutdown") == [""]
    assert "worker" in gw.log() and "stopped" in gw.log()


def test_hook_gateway_reload_on_sighup(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = gateway_factory(probe_config(tmp_path))
    extra = gw.config_dir / "60-test-extra.toml"
    extra.write_text(extra.read_text() + 'label = "second"\n')
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while records(tmp_path, "reload") != ["second"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert records(tmp_path, "reload") == ["second"]
    assert httpx.get(f"{gw.http_url}/probe/info").json()["label"] == "second"
    # An invalid file is refused; the gateway keeps serving the last good configuration.
    extra.write_text(extra.read_text() + "nonsense = true\n")
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload refused" not in gw.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "reload refused" in gw.log() and "nonsense" in gw.log()
    assert httpx.get(f"{gw.http_url}/probe/info").json()["label"] == "second"


def test_sigterm_drains_in_flight_requests(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = gateway_factory(probe_config(tmp_path))
    result: dict[str, object] = {}

    def slow_request() -> None:
        try:
            result["response"] = httpx.get(f"{gw.http_url}/probe/slow?seconds=1.5", timeout=10)
        except httpx.HTTPError as exc:
            result["error"] = exc

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.5)
    gw.signal(signal.SIGTERM)
    thread.join(15)
    assert gw.proc.wait(15) == 0
    response = result.get("response")
    assert isinstance(response, httpx.Response), result
    assert response.text == "slow done\n"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{gw.http_url}/healthz", timeout=2)


def test_several_workers_share_listeners(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    gw = gateway_factory(probe_config(tmp_path), args=["--workers", "2"])
    deadline = time.monotonic() + 15
    pids: set[int] = set()
    while len(pids) < 2 and time.monotonic() < deadline:
        with httpx.Client() as client:  # a new connection each time
            pids.add(client.get(f"{gw.http_url}/probe/info").json()["pid"])
    assert len(pids) == 2 and gw.proc.pid not in pids
    assert sorted(records(tmp_path, "startup")) == ["first", "first"]
    assert gw.stop() == 0
    assert len(records(tmp_path, "shutdown")) == 2


def test_forwarded_headers_only_from_trusted_proxies(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    headers = {"x-forwarded-for": "203.0.113.7, 127.0.0.1", "x-forwarded-proto": "https",
               "x-request-id": "abc-123"}
    trusting = gateway_factory(probe_config(tmp_path, '[http]\ntrusted_proxies = ["127.0.0.1"]\n'))
    info = httpx.get(f"{trusting.http_url}/probe/info", headers=headers).json()
    assert (info["client"], info["scheme"], info["request_id"]) == ("203.0.113.7", "https",
                                                                    "abc-123")
    plain = gateway_factory(probe_config(tmp_path))
    info = httpx.get(f"{plain.http_url}/probe/info", headers=headers).json()
    assert info["client"] == "127.0.0.1" and info["scheme"] == "http"
    assert info["request_id"] != "abc-123"


def test_bad_http_input_is_answered_and_the_server_lives_on(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    gw = gateway_factory(probe_config(tmp_path, "[http]\nmax_body_bytes = 1000\n"
                                                "max_header_bytes = 4096\n"
                                                "keep_alive_timeout = 1.0\n"))
    port = gw.http_port
    # Malformed request line.
    assert raw_exchange(port, b"THIS IS NOT HTTP\r\n\r\n").startswith(b"HTTP/1.1 400")
    # Oversized head.
    huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n"
    answer = raw_exchange(port, huge)
    assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), answer[:80]
    # Declared oversized body: 413 before the body is sent.
    answer = raw_exchange(port, b"POST /probe/body HTTP/1.1\r\nHost: x\r\n"
                                b"Content-Length: 5000\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413")
    # Truncated body: the client goes away; nothing breaks.
    raw_exchange(port, b"POST /probe/body HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\nabc",
                 timeout=0.5)
    # Garbage on the TLS port: at most a TLS alert, never an HTTP answer.
    assert b"HTTP/" not in raw_exchange(gw.https_port, b"\x16\x03\x01garbage" * 50)
    plain_on_tls = raw_exchange(gw.https_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not plain_on_tls.startswith(b"HTTP/1.1 200")
    # A client that connects and says nothing is closed after keep_alive_timeout.
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
        assert silent.recv(100) == b""
    assert time.monotonic() - started < 8
    # Everyone else is still served.
    assert httpx.get(f"{gw.http_url}/healthz").status_code == 200
    assert gw.proc.poll() is None
    assert "Traceback" not in gw.log()


def test_tls_handshake_garbage_leaves_tls_serving(gateway: RunningGateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.https_port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01\x00\x05hello" + b"\x00" * 100)
        with contextlib.suppress(ConnectionResetError):
            assert b"HTTP/" not in sock.recv(100)
    context = gateway.ssl_context()
    with socket.create_connection(("127.0.0.1", gateway.https_port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    assert httpx.get(f"{gateway.https_url}/healthz", verify=gateway.ssl_context()).text == "ok\n"


@pytest.mark.parametrize(("extra", "message"), [
    ("[http]\nlisten = 8080\n", "[http] listen must be a list of str"),
    ("[http]\nlisten_tsl = []\n", "unknown key 'listen_tsl'"),
    ("[imapp]\nlisten = []\n", "unknown section [imapp]"),
    ('[plugins]\nmodules = ["tests.plugins.probe", "tests.plugins.collide"]\n'
     '[probe]\nrecord_dir = "/tmp"\n', "route collision: plugin 'probe' serves '/probe'"),
    ('[http]\nlisten = ["127.0.0.1:notaport"]\n', "127.0.0.1:notaport"),
    ('[http]\ntrusted_proxies = ["10.0.0.0/33"]\n', "[http] trusted_proxies: '10.0.0.0/33'"),
])
def test_bad_configuration_stops_start_up(
    gateway_factory: GatewayFactory, extra: str, message: str
) -> None:
    gw = gateway_factory(extra, wait=False)
    assert gw.proc.wait(30) != 0
    log = gw.log()
    assert message in log, log
    assert "60-test-extra.toml" in log or "collision" in message or "notaport" in message
    assert "Traceback" not in log


def test_address_in_use_is_named(gateway_factory: GatewayFactory) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        gw = gateway_factory(f'[http]\nlisten = ["127.0.0.1:{port}"]\n', wait=False)
        assert gw.proc.wait(30) != 0
    assert f"cannot listen on 127.0.0.1:{port}" in gw.log()


def test_configured_certificate_is_served(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    from gateway.tls import generate_self_signed

    cert, key = tmp_path / "own.crt", tmp_path / "own.key"
    generate_self_signed(cert, key, ["gateway.test"])
    gw = gateway_factory(f'[tls]\ncertificate = "{cert}"\nprivate_key = "{key}"\n')
    context = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(("127.0.0.1", gw.https_port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname="gateway.test") as tls:
            assert tls.getpeercert()["subject"] == ((("commonName", "gateway.test"),),)
    assert not gw.certificate.exists()


def test_cli_config_show_masks_secrets(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "x.toml").write_text(
        '[redis]\nurl = "redis://:hunter2@127.0.0.1:6379/0"\n'
        '[plugins]\nmodules = ["tests.plugins.probe"]\n[probe]\ntoken = "s3cret"\n')
    result = run_cli("config", "show", config_dirs=[conf])
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout and "s3cret" not in result.stdout
    assert 'url = "********"' in result.stdout and 'token = "********"' in result.stdout
    assert f"{conf}" in result.stdout


def test_cli_config_dir_from_environment(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for directory, label in ((first, "one"), (second, "two")):
        directory.mkdir()
        (directory / "x.toml").write_text(
            f'[gateway]\nlog_level = "{"debug" if label == "one" else "warning"}"\n')
    env = gateway_env() | {"GATEWAY_CONFIG_DIR": f"{first}{os.pathsep}{second}"}
    out = subprocess.run([sys.executable, "-m", "gateway", "config", "show", "--json"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["gateway"]["log_level"] == "warning"


def test_cli_plugins_lists_routes_and_hooks() -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["status"]["routes"] == ["/healthz", "/metrics"]
    assert "gateway_http_routes" in plugins["status"]["hooks"]
    text = run_cli("plugins").stdout
    assert "status" in text and "routes:" in text


def test_restart_reuses_the_generated_certificate(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory()
    first = gw.certificate.read_bytes()
    gw.stop()
    with gw.log_path.open("ab") as log:
        gw.proc = subprocess.Popen(gw.proc.args, stdout=log, stderr=subprocess.STDOUT,
                                   env=gateway_env(), cwd=gw.log_path.parent)
    wait_healthy(gw)
    assert gw.certificate.read_bytes() == first
