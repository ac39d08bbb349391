"""The IMAP plugin's AutoDiscover / autoconfig entries come from its configured listeners."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.discovery import DiscoveryRequest
from gateway.host import Host, load_config

REQUEST = DiscoveryRequest("alice@example.test", "autoconfig", "https://mail.example.test")


def _host(tmp_path: Path, **imap: str) -> Host:
    env = dict(os.environ, GATEWAY__GATEWAY__DATA_DIR=str(tmp_path),
               **{f"GATEWAY__IMAP__{key.upper()}": value for key, value in imap.items()})
    config, pm, plugins = load_config([], env)
    return Host(config, pm, plugins, environ=env)


@pytest.mark.hook("gateway_autodiscover_endpoints")
def test_imap_advertises_tls_first_then_starttls(tmp_path: Path) -> None:
    host = _host(tmp_path, listen='["0.0.0.0:143"]', listen_tls='["[::]:993", "0.0.0.0:9993"]')
    found = dict(host.call_each("gateway_autodiscover_endpoints", host=host, request=REQUEST))
    assert [(e.protocol, e.server, e.port, e.settings["SocketType"]) for e in found["imap"]] == [
        ("IMAP", "mail.example.test", 993, "SSL"), ("IMAP", "mail.example.test", 143, "STARTTLS")]


def test_imap_without_listeners_advertises_nothing(tmp_path: Path) -> None:
    host = _host(tmp_path, listen="[]", listen_tls="[]")
    found = dict(host.call_each("gateway_autodiscover_endpoints", host=host, request=REQUEST))
    assert found["imap"] == []
