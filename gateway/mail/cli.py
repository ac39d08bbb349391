"""``gateway queue``: the outbound mail queue from the command line.

    gateway queue list [--json]
    gateway queue flush [ID]      deliver due-or-not messages now (all, or one)
    gateway queue requeue ID      due now, with a fresh expiry clock and attempt count
    gateway queue delete ID       drop a message, telling nobody

The commands work on ``data_dir/queue`` directly and take each message's lock,
so they are safe while gateways are running; ``flush`` delivers in this
process (bounces included) and prints what became of each message.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from gateway.mail.queue import PENDING, Envelope, OutboundQueue, check_queue_id

R = TypeVar("R")


def _host(ctx: click.Context) -> Any:
    from gateway.cli import host_from_context

    return host_from_context(ctx)


def _run(ctx: click.Context, work: Callable[[Any], Awaitable[R]], *, started: bool) -> R:
    """``work(service)`` with a mail service for the configured gateway; ``started``:
    with the directory and stores open (for local deliveries and bounces)."""
    from gateway.mail import MailService

    host = _host(ctx)

    async def main() -> R:
        if not started:
            return await work(MailService(host))
        await host.startup()
        try:
            service = getattr(host, "mail", None) or MailService(host)
            # The command works alone: the queue runner the host started would race it for
            # the message locks (a flushed message could still be "queued" when listed).
            await service.stop()
            host.mail = service
            return await work(service)
        finally:
            await host.shutdown()

    try:
        return asyncio.run(main())
    except (ValueError, TimeoutError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


def _age(seconds: float) -> str:
    """``2d03h``, ``3h05m``, ``4m10s`` or ``12s``."""
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _row(envelope: Envelope, now: float) -> dict[str, Any]:
    pending = [r for r in envelope.recipients if r.state == PENDING]
    errors = [f"{r.address}: {r.code} {r.text}" for r in pending if r.code]
    return {
        "id": envelope.id, "age": int(now - envelope.created), "size": envelope.size,
        "sender": envelope.sender, "recipients": [r.address for r in pending],
        "done": [f"{r.address} ({r.state})" for r in envelope.recipients if r.state != PENDING],
        "attempts": envelope.attempts, "next_attempt": int(envelope.next_attempt - now),
        "last_error": errors[0] if errors else envelope.last_error,
    }


def register(cli: click.Group) -> None:
    """Add ``gateway queue`` to the ``gateway`` command."""
    from gateway.cli import config_dir_option

    @cli.group("queue")
    @config_dir_option
    def queue() -> None:
        """The outbound mail queue: list, flush, requeue, delete."""

    @queue.command("list")
    @config_dir_option
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @click.pass_context
    def list_command(ctx: click.Context, as_json: bool) -> None:
        """Queued messages: id, age, sender, recipients, next attempt, last error."""
        async def work(service: Any) -> list[Envelope]:
            found: list[Envelope] = await service.queue.list()
            return found

        envelopes = _run(ctx, work, started=False)
        now = time.time()
        rows = [_row(e, now) for e in envelopes]
        if as_json:
            click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
            return
        if not rows:
            click.echo("queue is empty")
            return
        for row in rows:
            due = "now" if row["next_attempt"] <= 0 else f"in {_age(row['next_attempt'])}"
            click.echo(f"{row['id']}  {_age(row['age'])} old  {row['size']} bytes  "
                       f"<{row['sender']}>  attempts {row['attempts']}, next {due}")
            for address in row["recipients"]:
                click.echo(f"    to <{address}>")
            if row["last_error"]:
                click.echo(f"    last error: {row['last_error']}")
        click.echo(f"{len(rows)} message(s)")

    @queue.command("flush")
    @config_dir_option
    @click.argument("queue_id", required=False)
    @click.pass_context
    def flush(ctx: click.Context, queue_id: str | None) -> None:
        """Try every queued message (or QUEUE_ID) now, in this process."""
        wanted = _checked(queue_id) if queue_id else None

        async def work(service: Any) -> tuple[int, list[str]]:
            q: OutboundQueue = service.queue
            marked = await q.flush(wanted)
            if wanted is not None and not marked:
                raise click.ClickException(f"no queued message {wanted}")
            if wanted is None:
                await q.run_once(force=True)
            else:
                await q.process(wanted, force=True)
            left = {e.id for e in await q.list()}
            return marked, sorted(left)

        marked, left = _run(ctx, work, started=True)
        click.echo(f"flushed {marked} message(s); {len(left)} still queued")
        for qid in left:
            click.echo(f"    {qid}")

    @queue.command("requeue")
    @config_dir_option
    @click.argument("queue_id")
    @click.pass_context
    def requeue(ctx: click.Context, queue_id: str) -> None:
        """Make QUEUE_ID due now, with a fresh expiry clock and attempt count."""
        wanted = _checked(queue_id)

        async def work(service: Any) -> bool:
            done: bool = await service.queue.requeue(wanted)
            return done

        if not _run(ctx, work, started=False):
            raise click.ClickException(f"no queued message {wanted}")
        click.echo(f"requeued {wanted}")

    @queue.command("delete")
    @config_dir_option
    @click.argument("queue_id")
    @click.pass_context
    def delete(ctx: click.Context, queue_id: str) -> None:
        """Remove QUEUE_ID from the queue; nobody is told."""
        wanted = _checked(queue_id)

        async def work(service: Any) -> bool:
            done: bool = await service.queue.delete(wanted)
            return done

        if not _run(ctx, work, started=False):
            raise click.ClickException(f"no queued message {wanted}")
        click.echo(f"deleted {wanted}")


def _checked(queue_id: str) -> str:
    try:
        return check_queue_id(queue_id)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
