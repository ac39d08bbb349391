"""The plugin manager factory and the hooks the host calls in-process."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gateway.auth import Credentials
from gateway.config import ConfigError
from gateway.discovery import DiscoveryRequest
from gateway.events import StoreEvent
from gateway.host import Host, build_host, make_plugin_manager


def config_dir(tmp_path: Path, text: str) -> Path:
    directory = tmp_path / "conf"
    directory.mkdir(exist_ok=True)
    (directory / "t.toml").write_text(text)
    return directory


@pytest.fixture
def probe_host(tmp_path: Path) -> Host:
    directory = config_dir(tmp_path, f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n'
                                     f'[plugins]\nmodules = ["tests.plugins.probe"]\n'
                                     f'[probe]\nrecord_dir = "{tmp_path / "rec"}"\n')
    return build_host([directory], environ={})


def records(host: Host, name: str) -> list[object]:
    found = []
    for path in Path(host.config.probe.record_dir).glob(f"{name}-*"):
        found += [json.loads(line) for line in path.read_text().splitlines()]
    return found


def test_factory_makes_independent_managers() -> None:
    first, _ = make_plugin_manager()
    second, _ = make_plugin_manager(disabled=["status"])
    assert first is not second
    assert first.has_plugin("status") and not second.has_plugin("status")


def test_builtins_come_from_entry_points() -> None:
    _, infos = make_plugin_manager()
    assert infos["status"].source == "entry point (groupware-gateway)"
    assert infos["core"].source == "host"


def test_misspelt_hook_is_refused_naming_the_plugin(tmp_path: Path) -> None:
    directory = config_dir(tmp_path, '[plugins]\nmodules = ["tests.plugins.typo"]\n')
    with pytest.raises(ConfigError, match=r"typo.*gateway_http_route"):
        build_host([directory], environ={})


def test_section_declared_twice_is_refused(tmp_path: Path) -> None:
    directory = config_dir(tmp_path, '[plugins]\nmodules = ["tests.plugins.dup_section"]\n')
    with pytest.raises(ConfigError, match=r"\[http\] is declared by both plugin 'core'"):
        build_host([directory], environ={})


def test_unimportable_module_is_named(tmp_path: Path) -> None:
    directory = config_dir(tmp_path, '[plugins]\nmodules = ["tests.plugins.nonexistent"]\n')
    with pytest.raises(ConfigError, match=r"cannot import 'tests\.plugins\.nonexistent'"):
        build_host([directory], environ={})


def test_hook_gateway_config_schema(probe_host: Host) -> None:
    assert probe_host.config.probe.label == "first"
    assert probe_host.config.as_dict()["probe"]["token"] == ""
    assert "probe" in probe_host.config.sections()


async def test_hook_gateway_auth_mechanisms(probe_host: Host) -> None:
    assert probe_host.auth.names == ["password", "probe-static"]  # the host's own first
    good = await probe_host.auth.authenticate(
        Credentials("password", "test", "127.0.0.1", "alice", b"secret"))
    assert good.ok and good.principal and good.principal.username == "alice@example.org"
    bad = await probe_host.auth.authenticate(
        Credentials("password", "test", "127.0.0.1", "alice", b"wrong"))
    assert not bad.ok and bad.reason == "wrong password"
    other = await probe_host.auth.authenticate(Credentials("gssapi", "test", "127.0.0.1"))
    assert not other.ok and "no mechanism" in other.reason


def test_auth_mechanism_names_are_unique(probe_host: Host) -> None:
    with pytest.raises(ValueError, match="already registered"):
        probe_host.register_auth_mechanisms()


async def test_hook_gateway_store_event_in_process(probe_host: Host) -> None:
    event = StoreEvent("alice@example.org", "new_mail", folder_id=5, object_id=9)
    async with probe_host.notifier.subscribe("alice@example.org") as queue:
        await probe_host.notifier.publish(event)
        assert queue.get_nowait() == event
    await probe_host.notifier.publish(StoreEvent("bob@example.org", "new_mail"))
    assert records(probe_host, "event") == [
        {"mailbox": "alice@example.org", "kind": "new_mail"},
        {"mailbox": "bob@example.org", "kind": "new_mail"},
    ]


def test_store_event_json_round_trip_and_hostile_input() -> None:
    event = StoreEvent("a@b", "object_modified", 1, 2, 3, {"flags": ["\\Seen"]})
    assert StoreEvent.from_json(event.to_json()) == event
    for bad in (b"[]", b"{}", b'{"mailbox": 1}'):
        with pytest.raises(ValueError):
            StoreEvent.from_json(bad)
    with pytest.raises(TypeError):
        StoreEvent.from_json(b'{"mailbox": "a", "kind": "k", "evil": 1}')


def test_hook_gateway_autodiscover_endpoints(probe_host: Host) -> None:
    request = DiscoveryRequest("alice@example.org", "outlook", "https://mail.example.org/")
    found = probe_host.call_each("gateway_autodiscover_endpoints", host=probe_host,
                                 request=request)
    assert [(p, [e.url for e in eps]) for p, eps in found if p == "probe"] == [
        ("probe", ["https://mail.example.org/EWS/Exchange.asmx"])]


async def test_hook_gateway_startup_and_gateway_shutdown_in_process(probe_host: Host) -> None:
    await probe_host.startup()
    await probe_host.shutdown()
    assert records(probe_host, "startup") == ["first"]
    assert records(probe_host, "shutdown") == [""]


async def test_hook_gateway_reload_keeps_old_config_when_new_is_bad(
    probe_host: Host, tmp_path: Path
) -> None:
    conf = tmp_path / "conf" / "t.toml"
    conf.write_text(conf.read_text() + 'label = "second"\n')
    assert await probe_host.reload()
    assert probe_host.config.probe.label == "second"
    conf.write_text(conf.read_text() + "bogus = 1\n")
    assert not await probe_host.reload()
    assert probe_host.config.probe.label == "second"
    assert records(probe_host, "reload") == ["second"]


def test_hook_gateway_cli_commands() -> None:
    pm, _ = make_plugin_manager(modules=["tests.plugins.probe"])

    @click.group()
    def group() -> None: ...

    pm.hook.gateway_cli_commands(cli=group)
    result = CliRunner().invoke(group, ["probe-hello"])
    assert result.exit_code == 0 and result.output == "hello from the probe plugin\n"
