"""``gateway mbox``: mailbox stores from the command line.

    gateway mbox create ADDRESS [--language LANG] [--no-directory]
    gateway mbox stats ADDRESS [--json]
    gateway mbox check ADDRESS
    gateway mbox import ADDRESS FOLDER PATH
    gateway mbox export ADDRESS FOLDER FILE

ADDRESS is a user's primary address, or ``public:<domain>`` for a domain's
public folders. FOLDER is a path below the top of the store ("Inbox",
"Inbox/Lists/python"); a default folder may also be named in English or by
its role (inbox, sent, trash ...) whatever the store's language. Stores live
under ``[gateway] data_dir`` with the limits of the ``[store]`` section.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.store import folders, importer
from gateway.store.check import check_store, store_stats
from gateway.store.errors import InvalidArgument, NotFound, StoreError
from gateway.store.exporter import export_mbox
from gateway.store.folder_names import ENGLISH, normal_language
from gateway.store.importer import (
    ImportResult,
    Unparseable,
    import_path,
    source_kind,
    source_size,
)
from gateway.store.mailbox import Mailbox
from gateway.store.provision import PRIVATE_TREE, ROLES
from gateway.store.special import Private, Public
from gateway.store.store import PUBLIC_PREFIX, Store, normal_key
from gateway.store.txn import Txn

R = TypeVar("R")


def _host(ctx: click.Context) -> Any:
    from gateway.cli import host_from_context

    return host_from_context(ctx)


def _run(ctx: click.Context, work: Callable[[Store, Any], Awaitable[R]]) -> R:
    """Run ``work(store, host)`` on the configured stores; store errors as ClickException."""
    host = _host(ctx)

    async def main() -> R:
        store = Store(host.data_dir, host.config.store)
        try:
            return await work(store, host)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except (StoreError, Unparseable, OSError) as exc:
        raise click.ClickException(str(exc)) from None


async def _open(store: Store, address: str) -> Mailbox:
    key = normal_key(address)
    if not store.exists(key):
        raise click.ClickException(f"{key} has no store (create it with "
                                   f"`gateway mbox create {key}`)")
    return await store.open(key)


# -- folder paths -------------------------------------------------------------------------------

_TOP_LEVEL: set[Private] = {Private(spec.folder) for spec in PRIVATE_TREE
                             if spec.parent == Private.IPM_SUBTREE}


def _default_folder(name: str) -> int | None:
    """A top-level default folder by its English name or role ("Inbox", "sent")."""
    wanted = name.casefold()
    for folder in _TOP_LEVEL:
        if ENGLISH[folder].casefold() == wanted:
            return int(folder)
    role = ROLES.get(wanted)
    return int(role) if role in _TOP_LEVEL else None


def resolve_folder(txn: Txn, path: str, create: bool = False) -> int:
    """The folder at ``path`` below the IPM subtree; missing ones made when ``create``."""
    parts = [part for part in path.strip("/").split("/") if part]
    if not parts:
        raise InvalidArgument("give a folder such as Inbox or Inbox/Archive")
    current = int(Public.IPM_SUBTREE if txn.info.public else Private.IPM_SUBTREE)
    for depth, name in enumerate(parts):
        found = folders.find_child(txn, current, name)
        if found is None and depth == 0 and not txn.info.public:
            found = _default_folder(name)
        if found is None:
            if not create:
                raise NotFound(f"there is no folder {path!r}")
            found = folders.create(txn, current, name, "IPF.Note")
        current = found
    return current


# -- create -------------------------------------------------------------------------------------


async def _directory_language(host: Any, key: str) -> tuple[str, str | None]:
    """``(store key, user language)`` from the directory; ClickException when unknown."""
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.directory.engine import DirectoryError

    try:
        return await _lookup(host, key)
    except (DirectoryError, SQLAlchemyError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise click.ClickException(f"directory: {detail} (or give --no-directory)") from None


async def _record_maildir(host: Any, key: str, path: Path) -> None:
    """Write the store's path into the user's ``maildir``, as grommunio keeps it."""
    from gateway.directory import admin
    from gateway.directory.directory import Directory

    directory = await Directory.open(host.config.directory.url, host.data_dir, cache_ttl=0)
    try:
        await admin.set_maildir(directory.engine, key, str(path))
    finally:
        await directory.close()


async def _lookup(host: Any, key: str) -> tuple[str, str | None]:
    from gateway.directory import admin
    from gateway.directory.directory import Directory

    directory = await Directory.open(host.config.directory.url, host.data_dir, cache_ttl=0)
    try:
        if key.startswith(PUBLIC_PREFIX):
            domain = key[len(PUBLIC_PREFIX):]
            if domain not in {d.name for d in await admin.list_domains(directory.engine)}:
                raise click.ClickException(f"the directory has no domain {domain!r} "
                                           "(or give --no-directory)")
            return key, None
        found = await directory.resolve_login(key)
        if found.user is None:
            raise click.ClickException(f"the directory has no user {key!r} ({found.reason}; "
                                       "add it with `gateway user add`, or give --no-directory)")
        return normal_key(found.user.username), found.user.lang or None
    finally:
        await directory.close()


def _count_folders(txn: Txn) -> int:
    return int(txn.conn.execute("SELECT count(*) FROM folders").fetchone()[0])


# -- the group ----------------------------------------------------------------------------------


def make_mbox_group() -> click.Group:
    """The ``mbox`` command group (built on demand: it needs :mod:`gateway.cli`)."""
    from gateway.cli import config_dir_option

    @click.group()
    def mbox() -> None:
        """Mailbox stores: create, inspect, check, import and export mail."""

    @mbox.command("create")
    @config_dir_option
    @click.argument("address")
    @click.option("--language", default=None, metavar="LANG",
                  help="Language of the folder names (en, de, fr, es, it; de_DE works too). "
                       "Default: the user's language in the directory, else [store] language.")
    @click.option("--no-directory", is_flag=True,
                  help="Create the store even though the directory has no such user "
                       "(or, for public:<domain>, no such domain).")
    @click.pass_context
    def create(ctx: click.Context, address: str, language: str | None,
               no_directory: bool) -> None:
        """Create and provision the store of ADDRESS (a user, or public:<domain>).

        The user must exist in the directory unless --no-directory is given;
        the store is keyed by the user's primary address even when ADDRESS is
        an alias. The folder names follow --language, else the user's language.
        """
        async def work(store: Store, host: Any) -> tuple[str, str, int, Path]:
            key, user_language = normal_key(address), None
            if not no_directory:
                key, user_language = await _directory_language(host, key)
            if store.exists(key):
                raise click.ClickException(f"{key} has a store already ({store.path(key)})")
            chosen = normal_language(language or user_language or store.section.language)
            mailbox = await store.create(key, chosen)
            if not no_directory and not key.startswith(PUBLIC_PREFIX):
                await _record_maildir(host, key, mailbox.path)
            return key, chosen, await mailbox.read(_count_folders), mailbox.path

        key, chosen, count, path = _run(ctx, work)
        click.echo(f"created the store of {key} at {path} ({count} folders, language {chosen})")

    @mbox.command("stats")
    @config_dir_option
    @click.argument("address")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @click.pass_context
    def stats(ctx: click.Context, address: str, as_json: bool) -> None:
        """The folder tree of ADDRESS's store with message counts and sizes."""
        async def work(store: Store, _host: Any) -> dict[str, Any]:
            mailbox = await _open(store, address)
            return await mailbox.read(store_stats)

        report = _run(ctx, work)
        if as_json:
            click.echo(json.dumps(report, indent=2))
            return
        click.echo(f"{report['key']}  {report['path']}  ({report['kind']}, language "
                   f"{report['language']}, schema {report['schema']})")
        click.echo(f"{'messages':>9} {'unread':>7} {'fai':>5} {'bytes':>12}  folder")
        for row in report["folders"]:
            click.echo(f"{row['messages']:>9} {row['unread']:>7} {row['associated']:>5} "
                       f"{row['size']:>12}  {'  ' * row['depth']}{row['name']} "
                       f"[{row['id']}]")
        if report["unlisted_folders"]:
            click.echo(f"{report['unlisted_folders']} folder(s) cannot be reached from the root "
                       "(see `gateway mbox check`)", err=True)
        click.echo(f"total: {len(report['folders'])} folders, {report['messages']} messages, "
                   f"{report['total_size']} bytes; last change number "
                   f"{report['last_change_number']}")

    @mbox.command("check")
    @config_dir_option
    @click.argument("address")
    @click.pass_context
    def check(ctx: click.Context, address: str) -> None:
        """Check the consistency of ADDRESS's store; exit 1 when something is wrong.

        SQLite's integrity check, blob references and reference counts, blob
        files, the folder tree, message sizes, the size total and IMAP UIDs.
        Blob files nothing refers to (left by a crash) are listed but are no
        fault.
        """
        async def work(store: Store, _host: Any) -> tuple[list[str], list[str]]:
            mailbox = await _open(store, address)
            return await mailbox.read(check_store)

        problems, notes = _run(ctx, work)
        for note in notes:
            click.echo(f"note: {note}")
        for problem in problems:
            click.echo(f"problem: {problem}", err=True)
        if problems:
            raise click.ClickException(f"{len(problems)} problem(s) found")
        click.echo("ok")

    @mbox.command("import")
    @config_dir_option
    @click.argument("address")
    @click.argument("folder")
    @click.argument("path", type=click.Path(exists=True, path_type=Path))
    @click.pass_context
    def import_(ctx: click.Context, address: str, folder: str, path: Path) -> None:
        """Import PATH (an .eml file, an mbox file or a Maildir) into FOLDER.

        FOLDER is created below the top of the store when missing. Messages
        that are not Internet mail are skipped with a warning.
        """
        # Warnings are printed below; keep the logging fallback from printing them twice.
        logging.getLogger(importer.__name__).addHandler(logging.NullHandler())

        async def work(store: Store, _host: Any) -> tuple[ImportResult, float]:
            mailbox = await _open(store, address)
            folder_id = await mailbox.write(resolve_folder, folder, True)
            kind = await asyncio.to_thread(source_kind, path)
            total = await asyncio.to_thread(source_size, path, kind)
            started = time.monotonic()
            with click.progressbar(length=max(total, 1), label=f"importing {kind}",
                                   file=sys.stderr) as bar:
                seen = 0

                def progress(result: ImportResult) -> None:
                    nonlocal seen
                    bar.update(result.bytes_read - seen)
                    seen = result.bytes_read

                result = await import_path(mailbox, folder_id, path, progress, kind)
            return result, time.monotonic() - started

        result, seconds = _run(ctx, work)
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
        rate = result.imported / seconds if seconds > 0 else 0.0
        click.echo(f"imported {result.imported} messages into {folder} "
                   f"({result.skipped} skipped) in {seconds:.1f} s, {rate:.0f} messages/s")

    @mbox.command("export")
    @config_dir_option
    @click.argument("address")
    @click.argument("folder")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.pass_context
    def export(ctx: click.Context, address: str, folder: str, file: Path) -> None:
        """Write the messages of FOLDER to FILE as an mbox (mboxrd) file.

        Messages that did not arrive as Internet mail (made in Outlook and
        the like) have no original form yet and are skipped, counted.
        """
        async def work(store: Store, _host: Any) -> Any:
            mailbox = await _open(store, address)
            folder_id = await mailbox.read(resolve_folder, folder)
            out = await asyncio.to_thread(open, file, "wb")
            try:
                return await export_mbox(mailbox, folder_id, out)
            finally:
                await asyncio.to_thread(out.close)

        result = _run(ctx, work)
        skipped = (f"; {result.without_original} without an Internet form skipped"
                   if result.without_original else "")
        click.echo(f"exported {result.exported} messages ({result.bytes_written} bytes) "
                   f"to {file}{skipped}")

    return mbox


def register_mbox_commands(cli: click.Group) -> None:
    """Add ``mbox`` to the ``gateway`` command."""
    cli.add_command(make_mbox_group())
