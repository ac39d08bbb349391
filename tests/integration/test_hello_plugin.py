"""The example third-party plugin: installed by pip, found by entry point, disabled by config."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx

from tests.harness.gateway import GatewayFactory, run_cli

HELLO = '[hello]\ngreeting = "Hi"\nlisten = ["127.0.0.1:{port_hello}"]\n'


def plugin_names(pythonpath: list[Path], config_dirs: list[Path] = ()) -> dict[str, dict]:
    result = run_cli("plugins", "--json", pythonpath=pythonpath, config_dirs=config_dirs)
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)}


def test_listed_once_installed(hello_plugin_path: Path) -> None:
    assert "hello" not in plugin_names([])
    hello = plugin_names([hello_plugin_path])["hello"]
    assert hello["version"] == "0.1.0"
    assert hello["source"] == "entry point (gateway-hello-plugin)"
    assert hello["routes"] == ["/hello"]
    assert hello["listeners"] == ["hello 127.0.0.1:1790"]
    assert "gateway_tcp_services" in hello["hooks"]


def test_serves_http_and_its_line_service(
    gateway_factory: GatewayFactory, hello_plugin_path: Path
) -> None:
    gw = gateway_factory(HELLO, ports=["hello"], pythonpath=[hello_plugin_path])
    assert httpx.get(f"{gw.http_url}/hello/bob").text == "Hi, bob!\n"
    assert httpx.get(f"{gw.http_url}/hello/").text == "Hi, world!\n"
    with socket.create_connection(("127.0.0.1", gw.ports["hello"]), timeout=5) as sock:
        stream = sock.makefile("rwb")
        assert stream.readline() == b"* hello ready\r\n"
        stream.write(b"HELLO carol\r\n" + b"X" * 10000 + b"\r\nNOPE\r\nQUIT\r\n")
        stream.flush()
        assert stream.readline() == b"Hi, carol!\r\n"
        assert stream.readline() == b"ERR line too long\r\n"
        assert stream.readline() == b"ERR unknown command\r\n"
        assert stream.readline() == b"BYE\r\n"
        assert stream.readline() == b""


def test_plugin_cli_command(hello_plugin_path: Path, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "hello.toml").write_text('[hello]\ngreeting = "Howdy"\n')
    result = run_cli("hello", "dave", config_dirs=[conf], pythonpath=[hello_plugin_path])
    assert (result.returncode, result.stdout) == (0, "Howdy, dave!\n"), result.stderr


def test_disappears_when_disabled(
    gateway_factory: GatewayFactory, hello_plugin_path: Path, tmp_path: Path
) -> None:
    disabled = '[plugins]\ndisabled = ["hello"]\n' + HELLO
    gw = gateway_factory(disabled, ports=["hello"], pythonpath=[hello_plugin_path])
    assert httpx.get(f"{gw.http_url}/hello/bob").status_code == 404
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", gw.ports["hello"])) != 0
    assert "hello" not in plugin_names([hello_plugin_path], [gw.config_dir])
