"""Two gateways as two nodes: a user homed on the other node is sent there.

Node A and node B each run a real ``gateway serve`` with its own SQLite
directory seeded alike (in production both read one MariaDB): the servers
table names node1 (A) and node2 (B, whose external name is B's address), and
carol is homed on node2. ``gateway autodiscover check`` asks A, gets a
redirectUrl, follows it to B and prints B's settings; JSON v2 on A names B.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from tests.harness.gateway import GatewayFactory, RunningGateway, gateway_env


def cli(gw: RunningGateway, *args: str,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config-dir", str(gw.config_dir), *args],
        input=stdin, capture_output=True, text=True, timeout=120, env=gateway_env(),
        cwd=gw.config_dir)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningGateway, ...]]:
    factory = GatewayFactory(tmp_path_factory.mktemp("nodes"))
    try:
        common = ('[plugins]\nmodules = ["tests.plugins.endpoints"]\ndisabled = ["imap", "dav"]\n'
                  '[auth]\nfailure_delay = 0.0\n')
        node_a = factory(common + '[autodiscover]\nserver_id = "node1"\n')
        node_b = factory(common + '[autodiscover]\nserver_id = "node2"\n')
        for gw in (node_a, node_b):
            assert cli(gw, "domain", "add", "example.org").returncode == 0
            with sqlite3.connect(gw.data_dir / "directory.sqlite3") as db:
                db.execute("INSERT INTO servers (id, hostname, extname) VALUES (1, 'node1', ?)",
                           (f"localhost:{node_a.https_port}",))
                db.execute("INSERT INTO servers (id, hostname, extname) VALUES (2, 'node2', ?)",
                           (f"localhost:{node_b.https_port}",))
            done = cli(gw, "user", "add", "carol@example.org", "--password-stdin",
                       "--homeserver", "2", "--display-name", "Carol", stdin="pw-carol\n")
            assert done.returncode == 0, done.stderr
        yield node_a, node_b
    finally:
        factory.stop_all()


def test_cli_check_follows_the_redirect_to_the_home_node(
        nodes: tuple[RunningGateway, RunningGateway]) -> None:
    node_a, node_b = nodes
    url_a = f"https://localhost:{node_a.https_port}/autodiscover/autodiscover.xml"
    done = cli(node_a, "autodiscover", "check", "carol@example.org", "--password-stdin",
               "--insecure", "--url", url_a, stdin="pw-carol\n")
    assert done.returncode == 0, done.stdout + done.stderr
    url_b = f"https://localhost:{node_b.https_port}/Autodiscover/Autodiscover.xml"
    assert f"-> POST {url_a}: 200" in done.stdout
    assert f"redirectUrl: {url_b}" in done.stdout
    assert f"-> POST {url_b}: 200" in done.stdout
    assert "DisplayName: Carol" in done.stdout
    assert f"EwsUrl=https://localhost:{node_b.https_port}/EWS/Exchange.asmx" in done.stdout


def test_json_v2_on_one_node_names_the_home_node(
        nodes: tuple[RunningGateway, RunningGateway]) -> None:
    node_a, node_b = nodes
    url = (f"{node_a.http_url}/autodiscover/autodiscover.json/v1.0/carol@example.org"
           "?Protocol=EWS")
    with urllib.request.urlopen(url, timeout=30) as answer:
        data = json.loads(answer.read())
    assert data == {"Protocol": "EWS",
                    "Url": f"https://localhost:{node_b.https_port}/EWS/Exchange.asmx"}
