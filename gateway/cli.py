"""The ``gateway`` command.

Built-in commands: ``serve``, ``plugins``, ``config show``. Plugins add their
own through ``gateway_cli_commands``.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Any

import click
import tomli_w

from gateway import __version__
from gateway.app import collect_routes
from gateway.config import ConfigError
from gateway.directory.cli import register_directory_commands
from gateway.host import Host, build_host, make_plugin_manager
from gateway.mail.cli import register as register_queue_commands
from gateway.store.cli import register_mbox_commands

LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


@dataclass
class CliState:
    config_dirs: list[str] = field(default_factory=list)


def _add_config_dirs(ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> None:
    state = ctx.ensure_object(CliState)
    # The option exists on the group and on each command, so the environment
    # variable is seen twice: keep each directory once, in first-seen order.
    state.config_dirs.extend(d for d in value if d not in state.config_dirs)


config_dir_option = click.option(
    "--config-dir", "config_dirs", multiple=True, expose_value=False,
    type=click.Path(exists=True, file_okay=False), envvar="GATEWAY_CONFIG_DIR",
    callback=_add_config_dirs,
    help="Directory of *.toml fragments layered over the defaults; repeatable. "
         "Env: GATEWAY_CONFIG_DIR (colon-separated).",
)


def host_from_context(ctx: click.Context) -> Host:
    """Build the host from the command line's config directories (for plugin commands too)."""
    state = ctx.ensure_object(CliState)
    try:
        return build_host(state.config_dirs)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def setup_logging(level: str) -> None:
    logging.basicConfig(format=LOG_FORMAT, level=level.upper(), stream=sys.stderr, force=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gateway")
@config_dir_option
def cli() -> None:
    """Groupware gateway: Exchange-style, DAV and Internet mail protocols over one store."""


@cli.command()
@config_dir_option
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes sharing the listeners (default: [gateway] workers).")
@click.pass_context
def serve(ctx: click.Context, workers: int | None) -> None:
    """Serve HTTP(S) and every plugin's TCP service until SIGTERM."""
    from gateway.serve import serve as run

    host = host_from_context(ctx)
    setup_logging(host.config.gateway.log_level)
    try:
        code = run(host, workers or host.config.gateway.workers)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


def describe_plugins(host: Host) -> list[dict[str, Any]]:
    """Each loaded plugin with its version, routes, listeners and hooks."""
    from gateway.serve import collect_services

    routes: dict[str, list[str]] = {}
    for item in collect_routes(host):
        routes.setdefault(item.plugin, []).append(item.path)
    listeners: dict[str, list[str]] = {}
    for plugin, services in host.call_each("gateway_tcp_services", host=host):
        for service in services or ():
            addresses = [*service.listen, *(f"{a} (tls)" for a in service.listen_tls)]
            listeners.setdefault(plugin, []).append(f"{service.name} {', '.join(addresses)}")
    collect_services(host)  # the same checks serve makes
    described = []
    for name, info in host.plugins.items():
        hooks = sorted(c.name for c in host.pm.get_hookcallers(info.plugin) or ())
        described.append({
            "name": name, "version": info.version, "source": info.source,
            "routes": routes.get(name, []), "listeners": listeners.get(name, []),
            "hooks": hooks,
        })
    return described


@cli.command()
@config_dir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List loaded plugins: version, routes, listeners and hooks."""
    host = host_from_context(ctx)
    try:
        described = describe_plugins(host)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(described, indent=2))
        return
    for plugin in described:
        click.echo(f"{plugin['name']} {plugin['version']}  [{plugin['source']}]")
        for label in ("routes", "listeners", "hooks"):
            if plugin[label]:
                click.echo(f"  {label + ':':<11}{', '.join(plugin[label])}")


@cli.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("show")
@config_dir_option
@click.option("--json", "as_json", is_flag=True, help="JSON instead of TOML.")
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Print the merged configuration, secrets masked."""
    host = host_from_context(ctx)
    data = host.config.as_dict(mask_secrets=True)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    cleaned = {s: {k: v for k, v in values.items() if v is not None} for s, values in data.items()}
    click.echo(f"# layered from: defaults, {', '.join(map(str, host.config.directories))}")
    click.echo(tomli_w.dumps(cleaned), nl=False)


def _add_plugin_commands(group: click.Group) -> None:
    """Commands of every installed plugin (configuration is not read yet)."""
    try:
        pm, _ = make_plugin_manager()
    except ConfigError as exc:
        click.echo(f"warning: plugin commands unavailable: {exc}", err=True)
        return
    pm.hook.gateway_cli_commands(cli=group)


register_directory_commands(cli)
register_mbox_commands(cli)
register_queue_commands(cli)


def main() -> None:
    _add_plugin_commands(cli)
    cli(prog_name="gateway")


if __name__ == "__main__":
    main()
