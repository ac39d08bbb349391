"""``gateway db|domain|user|alias|altname``: the directory from the command line.

    gateway db init                     create the schema on an empty database
    gateway db upgrade                  apply schema steps; add the gateway's tables
    gateway domain add NAME [--max-users N]
    gateway domain list [--json]
    gateway user add ADDRESS [--password-stdin] [--display-name NAME]
                     [--allow LIST] [--deny LIST] [--homeserver ID]
    gateway user set ADDRESS [same options]
    gateway user passwd ADDRESS --password-stdin
    gateway user list [--json]
    gateway user del ADDRESS
    gateway alias add ALIAS ADDRESS
    gateway altname add NAME ADDRESS

The database is ``[directory] url`` of the configuration (``--config-dir``);
empty means SQLite under ``[gateway] data_dir``, whose schema any command
creates on first use. A MariaDB needs ``gateway db init`` (or is grommunio's).
Privilege names for ``--allow``/``--deny`` (comma-separated, repeatable):
imap, smtp, chgpasswd, pubaddr, web, eas, dav, chat, video, files, archive,
ews, mapi (see :mod:`gateway.directory.privileges`).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from gateway.directory import admin, schema
from gateway.directory.directory import Directory
from gateway.directory.engine import DirectoryError, create_engine
from gateway.directory.passwords import hash_password
from gateway.directory.privileges import PrivilegeError, parse_names

T = TypeVar("T")
MAX_PASSWORD = 1024


def _run(ctx: click.Context, work: Callable[[Directory], Awaitable[T]]) -> T:
    """Open the configured directory, run ``work`` with it, close it; errors as ClickException."""
    from gateway.cli import host_from_context

    host = host_from_context(ctx)
    section = host.config.directory

    async def main() -> T:
        directory = await Directory.open(section.url, host.data_dir, cache_ttl=0)
        try:
            return await work(directory)
        finally:
            await directory.close()

    return _guard(lambda: asyncio.run(main()))


def _run_engine(ctx: click.Context, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work`` with a bare engine (schema commands: no schema checks first)."""
    from gateway.cli import host_from_context

    host = host_from_context(ctx)

    async def main() -> T:
        engine = create_engine(host.config.directory.url, host.data_dir)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return _guard(lambda: asyncio.run(main()))


async def _create_store(ctx: click.Context, key: str) -> str:
    """Create and provision the store of ``key`` (an address or public:<domain>)."""
    from gateway.cli import host_from_context
    from gateway.store import Store

    host = host_from_context(ctx)
    store = Store(host.data_dir, host.config.store)
    try:
        if store.exists(key):
            return str(store.path(key))
        return str((await store.create(key)).path)
    finally:
        await store.close()


async def _create_mailbox(ctx: click.Context, directory: Directory, address: str) -> str:
    """Create a new user's store and record it in ``users.maildir``."""
    path = await _create_store(ctx, address)
    await admin.set_maildir(directory.engine, address.lower(), path)
    return path


def _guard(call: Callable[[], T]) -> T:
    try:
        return call()
    except (DirectoryError, admin.AdminError, PrivilegeError) as exc:
        raise click.ClickException(str(exc)) from None
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise click.ClickException(f"directory database error: {detail}") from None


def _read_password(from_stdin: bool, confirm: bool = True) -> str:
    """One line from standard input (without its line ending), or a hidden prompt."""
    if from_stdin:
        line = sys.stdin.readline(MAX_PASSWORD + 2)
        password = line.removesuffix("\n").removesuffix("\r")
    elif sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    else:
        raise click.UsageError("give the password on standard input with --password-stdin")
    if not password:
        raise click.ClickException("empty password refused")
    if len(password) > MAX_PASSWORD or "\0" in password:
        raise click.ClickException(f"a password has at most {MAX_PASSWORD} characters "
                                   "and no NUL byte")
    return password


def _names(values: tuple[str, ...]) -> set[str]:
    try:
        return parse_names(values)
    except PrivilegeError as exc:
        raise click.BadParameter(str(exc)) from None


def register_directory_commands(cli: click.Group) -> None:
    """Add ``db``, ``domain``, ``user``, ``alias`` and ``altname`` to the ``gateway`` command."""
    from gateway.cli import config_dir_option

    # -- db -------------------------------------------------------------------------------------

    @cli.group()
    def db() -> None:
        """Create or upgrade the directory database."""

    @db.command("init")
    @config_dir_option
    @click.pass_context
    def db_init(ctx: click.Context) -> None:
        """Create grommunio's tables (schema 133) on an empty database.

        A database that already has them is left exactly as it is."""
        result = _run_engine(ctx, schema.init)
        click.echo(result.message)

    @db.command("upgrade")
    @config_dir_option
    @click.pass_context
    def db_upgrade(ctx: click.Context) -> None:
        """Apply the schema steps above the recorded version; refuse a newer database."""
        result = _run_engine(ctx, schema.upgrade)
        click.echo(result.message)

    # -- domain ---------------------------------------------------------------------------------

    @cli.group()
    def domain() -> None:
        """Mail domains."""

    @domain.command("add")
    @config_dir_option
    @click.argument("name")
    @click.option("--max-users", type=click.IntRange(0, 0xFFFFFFFF),
                  default=admin.DEFAULT_MAX_USERS, show_default=True,
                  help="Most users the domain may hold (domains.max_user).")
    @click.option("--no-public-store", is_flag=True,
                  help="Do not create the domain's public-folder store.")
    @click.pass_context
    def domain_add(ctx: click.Context, name: str, max_users: int,
                   no_public_store: bool) -> None:
        """Add the domain NAME and create its public-folder store."""
        domain_id = _run(ctx, lambda d: admin.add_domain(d.engine, name, max_users))
        click.echo(f"added domain {name.lower()} (id {domain_id})")
        if not no_public_store:
            path = asyncio.run(_create_store(ctx, f"public:{name.lower()}"))
            click.echo(f"created the public folders of {name.lower()} at {path}")

    @domain.command("list")
    @config_dir_option
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @click.pass_context
    def domain_list(ctx: click.Context, as_json: bool) -> None:
        """List domains with their user counts."""
        domains = _run(ctx, lambda d: admin.list_domains(d.engine))
        if as_json:
            click.echo(json.dumps([asdict(item) for item in domains], indent=2))
            return
        for item in domains:
            status = "" if item.status == 0 else f"  status={item.status}"
            click.echo(f"{item.name}  id={item.id}  users={item.users}/{item.max_users}"
                       f"{status}")

    # -- user -----------------------------------------------------------------------------------

    def user_options(func: Callable[..., Any]) -> Callable[..., Any]:
        options = [
            click.option("--password-stdin", is_flag=True,
                         help="Read the password from the first line of standard input."),
            click.option("--display-name", default=None, help="Display name (PR_DISPLAY_NAME)."),
            click.option("--allow", multiple=True, metavar="LIST",
                         help="Privileges to grant, comma-separated."),
            click.option("--deny", multiple=True, metavar="LIST",
                         help="Privileges to take away, comma-separated."),
            click.option("--homeserver", type=click.IntRange(0, 255), default=None,
                         help="servers.id of the mailbox's node (0: local)."),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    @cli.group()
    def user() -> None:
        """Users (mailboxes) and their privileges."""

    @user.command("add")
    @config_dir_option
    @click.argument("address")
    @user_options
    @click.option("--no-mailbox", is_flag=True,
                  help="Do not create the user's mailbox store (create it later with "
                       "`gateway mbox create`).")
    @click.pass_context
    def user_add(ctx: click.Context, address: str, password_stdin: bool,
                 display_name: str | None, allow: tuple[str, ...], deny: tuple[str, ...],
                 homeserver: int | None, no_mailbox: bool) -> None:
        """Add the user ADDRESS (its domain must exist) and create its mailbox.

        Without --password-stdin the user has no password (no SQL login). The
        mailbox is created here unless --no-mailbox is given or the user is
        homed on another server (--homeserver)."""
        allowed, denied = _names(allow), _names(deny)
        hashed = hash_password(_read_password(True)) if password_stdin else ""
        user_id = _run(ctx, lambda d: admin.add_user(
            d.engine, address, hashed, display_name, allowed, denied, homeserver or 0))
        click.echo(f"added user {address} (id {user_id})")
        if not no_mailbox and not homeserver:
            path = _run(ctx, lambda d: _create_mailbox(ctx, d, address))
            click.echo(f"created the mailbox of {address} at {path}")

    @user.command("set")
    @config_dir_option
    @click.argument("address")
    @user_options
    @click.pass_context
    def user_set(ctx: click.Context, address: str, password_stdin: bool,
                 display_name: str | None, allow: tuple[str, ...], deny: tuple[str, ...],
                 homeserver: int | None) -> None:
        """Change the user ADDRESS (an empty --display-name removes it)."""
        allowed, denied = _names(allow), _names(deny)
        hashed = hash_password(_read_password(True)) if password_stdin else None

        async def work(d: Directory) -> None:
            await admin.set_user(d.engine, address, display_name, allowed, denied, homeserver)
            if hashed is not None:
                await admin.set_password(d.engine, address, hashed)

        _run(ctx, work)
        click.echo(f"changed user {address}")

    @user.command("passwd")
    @config_dir_option
    @click.argument("address")
    @click.option("--password-stdin", is_flag=True,
                  help="Read the password from the first line of standard input.")
    @click.pass_context
    def user_passwd(ctx: click.Context, address: str, password_stdin: bool) -> None:
        """Set the password of the user ADDRESS (SHA-512-crypt)."""
        hashed = hash_password(_read_password(password_stdin))
        _run(ctx, lambda d: admin.set_password(d.engine, address, hashed))
        click.echo(f"password of {address} changed")

    @user.command("list")
    @config_dir_option
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @click.pass_context
    def user_list(ctx: click.Context, as_json: bool) -> None:
        """List users with their privileges and other login names."""
        users = _run(ctx, lambda d: admin.list_users(d.engine))
        if as_json:
            click.echo(json.dumps([asdict(item) for item in users], indent=2))
            return
        for item in users:
            parts = [item.username, f"id={item.id}"]
            if item.display_name:
                parts.append(f"name={item.display_name!r}")
            parts.append(f"privileges={','.join(item.privileges) or '-'}")
            if item.address_status:
                parts.append(f"status={item.address_status}")
            if item.ldap:
                parts.append("ldap")
            if item.aliases:
                parts.append(f"aliases={','.join(item.aliases)}")
            if item.altnames:
                parts.append(f"altnames={','.join(item.altnames)}")
            click.echo("  ".join(parts))

    @user.command("del")
    @config_dir_option
    @click.argument("address")
    @click.pass_context
    def user_del(ctx: click.Context, address: str) -> None:
        """Delete the user ADDRESS with its aliases, altnames and properties."""
        username = _run(ctx, lambda d: admin.delete_user(d.engine, address))
        click.echo(f"deleted user {username}")

    # -- alias, altname -------------------------------------------------------------------------

    @cli.group()
    def alias() -> None:
        """Alias addresses of users."""

    @alias.command("add")
    @config_dir_option
    @click.argument("alias_name", metavar="ALIAS")
    @click.argument("address")
    @click.pass_context
    def alias_add(ctx: click.Context, alias_name: str, address: str) -> None:
        """Make ALIAS another address (and login name) of the user ADDRESS."""
        username = _run(ctx, lambda d: admin.add_alias(d.engine, alias_name, address))
        click.echo(f"added alias {alias_name} -> {username}")

    @cli.group()
    def altname() -> None:
        """Alternative login names, such as Kerberos principals."""

    @altname.command("add")
    @config_dir_option
    @click.argument("name")
    @click.argument("address")
    @click.pass_context
    def altname_add(ctx: click.Context, name: str, address: str) -> None:
        """Make NAME another login name of the user ADDRESS."""
        username = _run(ctx, lambda d: admin.add_altname(d.engine, name, address))
        click.echo(f"added altname {name} -> {username}")
