"""Application assembly: route collisions, Exchange path case, middleware."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from gateway.app import PluginRoute, build_app, check_collisions
from gateway.config import ConfigError
from gateway.host import Host, build_host


async def nothing(request):  # pragma: no cover - never called
    raise AssertionError


def routes(*items: tuple[str, object]) -> list[PluginRoute]:
    return [PluginRoute(plugin, route) for plugin, route in items]  # type: ignore[arg-type]


@pytest.mark.parametrize(("a", "b"), [
    (Mount("/dav", routes=[]), Mount("/dav", routes=[])),
    (Mount("/dav", routes=[]), Route("/dav/principals", nothing)),
    (Mount("/EWS", routes=[]), Mount("/ews", routes=[])),
    (Route("/healthz", nothing), Route("/healthz", nothing)),
    (Mount("/", routes=[]), Route("/x", nothing)),
    (Route("/users/{name}", nothing), Route("/users/{other}", nothing)),
])
def test_collisions_refused_naming_both_plugins(a: object, b: object) -> None:
    with pytest.raises(ConfigError) as err:
        check_collisions(routes(("one", a), ("two", b)))
    assert "'one'" in str(err.value) and "'two'" in str(err.value)


def test_disjoint_and_same_plugin_routes_pass() -> None:
    check_collisions(routes(
        ("one", Mount("/dav", routes=[])), ("two", Mount("/davx", routes=[])),
        ("two", Route("/healthz", nothing)), ("three", Route("/health", nothing)),
        ("one", Route("/dav/x", nothing)),
    ))


@pytest.fixture
def probe_host(tmp_path: Path) -> Host:
    (tmp_path / "t.toml").write_text(
        f'[plugins]\nmodules = ["tests.plugins.probe"]\n'
        f'[probe]\nrecord_dir = "{tmp_path / "rec"}"\n'
        f'[http]\nmax_body_bytes = 100\ntrusted_proxies = []\n'
    )
    return build_host([tmp_path], environ={})


def test_exchange_paths_match_any_case(probe_host: Host) -> None:
    client = TestClient(build_app(probe_host))
    for path in ("/EWS/Exchange.asmx", "/ews/exchange.asmx", "/eWs/EXCHANGE.ASMX"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.text == f"exchange {path}\n"
    # Other plugins' paths keep their case.
    assert client.get("/PROBE/info").status_code == 404
    assert client.get("/probe/info").status_code == 200


def test_crash_gives_500_with_request_id(probe_host: Host) -> None:
    client = TestClient(build_app(probe_host), raise_server_exceptions=False)
    response = client.get("/probe/crash")
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert request_id in response.text and "Traceback" not in response.text


def test_body_limit_declared_and_streamed(probe_host: Host) -> None:
    client = TestClient(build_app(probe_host))
    assert client.post("/probe/body", content=b"x" * 100).text == "100\n"
    assert client.post("/probe/body", content=b"x" * 101).status_code == 413

    def chunks():
        for _ in range(5):
            yield b"y" * 40

    assert client.post("/probe/body", content=chunks()).status_code == 413
    assert client.post("/probe/body", headers={"content-length": "zz"}).status_code == 400


def test_wsgi_app_is_mounted(probe_host: Host) -> None:
    client = TestClient(build_app(probe_host))
    assert client.get("/probe-wsgi/some/where").text == "wsgi /some/where\n"


def test_metrics_count_requests_by_plugin(probe_host: Host) -> None:
    client = TestClient(build_app(probe_host))
    client.get("/probe/info")
    client.get("/nowhere")
    text = probe_host.metrics.render().decode()
    assert 'gateway_http_requests_total{method="GET",plugin="probe",status="200"} 1.0' in text
    assert 'gateway_http_requests_total{method="GET",plugin="-",status="404"} 1.0' in text
    assert 'gateway_http_request_duration_seconds_count{plugin="probe"} 1.0' in text
