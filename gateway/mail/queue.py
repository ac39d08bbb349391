"""The durable outbound queue under ``data_dir/queue/``.

Each message is two files in ``messages/``: ``ID.eml`` (the bytes to send,
never changed once written) and ``ID.json`` (its envelope: sender, every
recipient with its own state, DSN parameters, attempts, next attempt). Both
are written to ``tmp/`` first, fsynced, renamed into place and the directory
fsynced, so a message is either wholly queued or not at all, across restarts
and ``kill -9``. A message counts as queued once its ``.json`` exists; an
``.eml`` left alone by a crash during :meth:`QueueFiles.put` is swept later.

Whoever works on a message (the runner of any worker process, ``gateway
queue``) holds an exclusive ``flock`` on its ``.eml`` and reads the envelope
again after taking it, so one message is sent by one worker at a time and
nobody acts on a stale envelope.

After every attempt the envelope is saved before notices go out, and each
recipient remembers whether its notice was sent (``reported``): a crash between
the two sends the notice on the next pass, never twice.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.mail.settings import MailSettings

log = logging.getLogger("gateway.mail.queue")

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
QUEUE_ID = re.compile(r"[0-9A-F]{12,40}")
ORPHAN_AGE = 3600.0
"""Seconds after which an ``.eml`` without an envelope (a crash while queueing) is removed."""


@dataclass
class Recipient:
    """One envelope recipient and where its delivery stands."""

    address: str
    transport: str = "relay"
    """``relay`` (relayhost or MX) or ``local`` (a mailbox of this gateway)."""
    state: str = PENDING
    notify: list[str] | None = None
    """DSN NOTIFY values (``SUCCESS``, ``FAILURE``, ``DELAY``, ``NEVER``); None: not given."""
    orcpt: str = ""
    """DSN ORCPT (``rfc822;addr``), passed on and quoted in notices."""
    code: int = 0
    enhanced: str = ""
    text: str = ""
    """The last reply or error for this recipient."""
    remote_mta: str = ""
    action: str = ""
    """What the final notice says: ``delivered``, ``relayed`` or ``failed``."""
    reported: bool = False
    """The final notice (when one is due) was sent."""
    delay_reported: bool = False


@dataclass
class Envelope:
    id: str
    sender: str
    """The envelope sender; "" is the null sender (a bounce: never bounced)."""
    recipients: list[Recipient]
    size: int
    created: float
    queued_at: float
    """Start of the expiry clock (``requeue`` restarts it)."""
    next_attempt: float
    attempts: int = 0
    last_error: str = ""
    ret: str = ""
    """DSN RET: ``FULL``, ``HDRS`` or "" (not given)."""
    envid: str = ""
    smtputf8: bool = False

    def pending(self) -> list[Recipient]:
        return [r for r in self.recipients if r.state == PENDING]

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False,
                          separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        values: dict[str, Any] = json.loads(data)
        values["recipients"] = [Recipient(**r) for r in values["recipients"]]
        return cls(**values)


@dataclass(frozen=True)
class AttemptResult:
    """What one delivery attempt did for one recipient (SMTP reply or local result)."""

    address: str
    code: int
    enhanced: str
    text: str
    remote_mta: str = ""
    action: str = "relayed"


Transport = Callable[[Envelope, bytes, list[Recipient]], Awaitable[list[AttemptResult]]]
Reporter = Callable[[Envelope, bytes, list[Recipient], str], Awaitable[None]]
"""Sends one notice: (envelope, message, recipients concerned, "failed"|"delayed"|"delivered")."""


def new_queue_id() -> str:
    return f"{time.time_ns() // 1000:X}{secrets.token_hex(4).upper()}"


def check_queue_id(text: str) -> str:
    """``text`` as a queue id, ``ValueError`` unless it has the shape of one."""
    value = text.strip().upper()
    if not QUEUE_ID.fullmatch(value):
        raise ValueError(f"{text!r} is not a queue id")
    return value


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class QueueFiles:
    """The queue directory; every method blocks (call it in a thread)."""

    def __init__(self, root: Path):
        self.root = root
        self.messages = root / "messages"
        self.tmp = root / "tmp"

    def ensure(self) -> None:
        self.messages.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def _write(self, target: Path, data: bytes) -> None:
        tmp = self.tmp / f"{target.name}.{secrets.token_hex(4)}"
        with tmp.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)

    def put(self, raw: bytes, envelope: Envelope) -> None:
        self.ensure()
        self._write(self.messages / f"{envelope.id}.eml", raw)
        self._write(self.messages / f"{envelope.id}.json", envelope.to_json())
        _fsync_dir(self.messages)

    def save(self, envelope: Envelope) -> None:
        self._write(self.messages / f"{envelope.id}.json", envelope.to_json())
        _fsync_dir(self.messages)

    def load(self, qid: str) -> Envelope | None:
        try:
            return Envelope.from_json((self.messages / f"{qid}.json").read_bytes())
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError) as exc:
            log.error("queue: envelope of %s unreadable, left in place: %r", qid, exc)
            return None

    def read_raw(self, qid: str) -> bytes:
        return (self.messages / f"{qid}.eml").read_bytes()

    def remove(self, qid: str) -> None:
        for suffix in (".json", ".eml"):
            with contextlib.suppress(FileNotFoundError):
                (self.messages / f"{qid}{suffix}").unlink()
        _fsync_dir(self.messages)

    def ids(self) -> list[str]:
        """Ids of queued messages; sweeps old ``.eml`` files that never got an envelope."""
        if not self.messages.is_dir():
            return []
        self._sweep_tmp()
        names = os.listdir(self.messages)
        envelopes = {n[:-5] for n in names if n.endswith(".json")}
        now = time.time()
        for name in names:
            if name.endswith(".eml") and name[:-4] not in envelopes:
                path = self.messages / name
                with contextlib.suppress(FileNotFoundError):
                    if now - path.stat().st_mtime > ORPHAN_AGE:
                        path.unlink()
        return sorted(envelopes)

    def _sweep_tmp(self) -> None:
        """Remove half-written files a crash left in ``tmp/``."""
        if not self.tmp.is_dir():
            return
        limit = time.time() - ORPHAN_AGE
        for path in self.tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < limit:
                    path.unlink()

    def lock(self, qid: str, *, wait: float = 0.0) -> int | None:
        """An fd holding the message's lock, or None (gone, or busy for ``wait`` seconds)."""
        try:
            fd = os.open(self.messages / f"{qid}.eml", os.O_RDONLY)
        except FileNotFoundError:
            return None
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return None
                time.sleep(0.05)

    @staticmethod
    def unlock(fd: int) -> None:
        os.close(fd)  # closing the only descriptor drops the flock


@dataclass
class OutboundQueue:
    """Queued messages and the runner that delivers them when due."""

    root: Path
    settings: MailSettings
    transport: Transport
    report: Reporter
    files: QueueFiles = field(init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _inflight: dict[str, asyncio.Task[None]] = field(default_factory=dict, init=False)
    _known: dict[str, float] = field(default_factory=dict, init=False)
    """Queue id → when it is next due (0: a notice is owed), from the last scan and
    this process's own work; the directory is read again every ``scan_interval``."""
    _scanned: float = field(default=0.0, init=False)
    grace: float = 10.0
    """Seconds :meth:`stop` lets deliveries under way finish before cancelling them."""

    def __post_init__(self) -> None:
        self.files = QueueFiles(self.root)

    # -- adding ---------------------------------------------------------------------------------
    async def enqueue(self, raw: bytes, sender: str, recipients: list[Recipient], *,
                      ret: str = "", envid: str = "", smtputf8: bool = False) -> str:
        """Queue ``raw`` durably; returns its id. Due at once."""
        now = time.time()
        envelope = Envelope(id=new_queue_id(), sender=sender, recipients=recipients,
                            size=len(raw), created=now, queued_at=now, next_attempt=now,
                            ret=ret, envid=envid, smtputf8=smtputf8)
        await asyncio.to_thread(self.files.put, raw, envelope)
        self._known[envelope.id] = envelope.next_attempt
        log.info("queued %s from <%s> to %d recipient(s), %d bytes", envelope.id, sender,
                 len(recipients), len(raw))
        self.wake()
        return envelope.id

    # -- administration -------------------------------------------------------------------------
    async def list(self) -> list[Envelope]:
        def run() -> list[Envelope]:
            found = (self.files.load(qid) for qid in self.files.ids())
            return [e for e in found if e is not None]
        return sorted(await asyncio.to_thread(run), key=lambda e: e.created)

    async def _change(self, qid: str, change: Callable[[Envelope], bool]) -> bool:
        """Apply ``change`` to one envelope under its lock; False when there is no such id.
        ``change`` returns False to delete the message instead of saving it."""
        def run() -> bool:
            fd = self.files.lock(qid, wait=30.0)
            if fd is None:
                if self.files.load(qid) is not None:
                    raise TimeoutError(f"{qid} is being delivered; try again")
                return False
            try:
                envelope = self.files.load(qid)
                if envelope is None:
                    return False
                if change(envelope):
                    self.files.save(envelope)
                    self._known[qid] = envelope.next_attempt
                else:
                    self.files.remove(qid)
                    self._known.pop(qid, None)
                return True
            finally:
                self.files.unlock(fd)
        done = await asyncio.to_thread(run)
        self.wake()
        return done

    async def flush(self, qid: str | None = None) -> int:
        """Make one message, or all, due now; how many."""
        def due(envelope: Envelope) -> bool:
            envelope.next_attempt = min(envelope.next_attempt, time.time())
            return True
        ids = [check_queue_id(qid)] if qid else await asyncio.to_thread(self.files.ids)
        return sum([await self._change(i, due) for i in ids])

    async def requeue(self, qid: str) -> bool:
        """Due now with a fresh expiry clock and attempt count."""
        def again(envelope: Envelope) -> bool:
            envelope.next_attempt = envelope.queued_at = time.time()
            envelope.attempts = 0
            return True
        return await self._change(check_queue_id(qid), again)

    async def delete(self, qid: str) -> bool:
        """Drop a message without notice to anyone."""
        return await self._change(check_queue_id(qid), lambda _: False)

    # -- the runner -----------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        await asyncio.to_thread(self.files.ensure)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="mail-queue")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pending = list(self._inflight.values())
        if pending:  # a delivery cut off after the relay's 250 would be sent twice
            await asyncio.wait(pending, timeout=self.grace)
        for job in pending:
            job.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once(wait=False)
            except Exception:
                log.exception("queue: pass failed")
            waiting = [when for qid, when in self._known.items() if qid not in self._inflight]
            pause = self.settings.scan_interval
            if waiting:
                pause = min(pause, max(min(waiting) - time.time(), 0.05))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def _due(self, now: float, force: bool) -> builtins.list[str]:
        if force or now - self._scanned >= self.settings.scan_interval:
            envelopes = await self.list()
            self._known = {e.id: 0.0 if _unreported(e) else e.next_attempt for e in envelopes}
            self._scanned = now
        due = [qid for qid, when in self._known.items()
               if (force or when <= now) and qid not in self._inflight]
        return sorted(due, key=lambda qid: self._known[qid])

    async def run_once(self, *, wait: bool = True, force: bool = False) -> int:
        """Start delivering every due message (bounded by ``concurrency``); how many started.
        ``wait``: until those deliveries end. ``force``: due or not (and read the
        directory again first)."""
        due = await self._due(time.time(), force)
        jobs = []
        for qid in due:
            if len(self._inflight) >= self.settings.concurrency:
                break
            job = asyncio.create_task(self._guarded(qid, force), name=f"mail-queue-{qid}")
            self._inflight[qid] = job
            jobs.append(job)
        if wait:
            await asyncio.gather(*jobs, return_exceptions=True)
        return len(jobs)

    async def _guarded(self, qid: str, force: bool) -> None:
        try:
            await self.process(qid, force=force)
        except Exception:
            log.exception("queue: delivering %s failed", qid)
            self._known[qid] = time.time() + self.settings.scan_interval  # not in a loop
        finally:
            self._inflight.pop(qid, None)
            self.wake()  # a slot is free: look for more

    async def process(self, qid: str, *, force: bool = False) -> None:
        """One attempt at one message, under its lock."""
        fd = await asyncio.to_thread(self.files.lock, qid)
        if fd is None:  # gone, or another worker has it: look again at the next scan
            self._known[qid] = time.time() + self.settings.scan_interval
            return
        try:
            envelope = await asyncio.to_thread(self.files.load, qid)
            if envelope is None:
                self._known.pop(qid, None)
                return
            raw = await asyncio.to_thread(self.files.read_raw, qid)
            await self._send_reports(envelope, raw)
            now = time.time()
            if envelope.pending() and (force or envelope.next_attempt <= now):
                if now - envelope.queued_at >= self.settings.max_queue_age:
                    self._expire(envelope, now)
                else:
                    await self._attempt(envelope, raw, now)
                await self._save(envelope)
                await self._send_reports(envelope, raw)
            if not envelope.pending() and not _unreported(envelope):
                await asyncio.to_thread(self.files.remove, qid)
                self._known.pop(qid, None)
                log.info("%s: done after %d attempt(s)", qid, envelope.attempts)
            else:
                self._known[qid] = envelope.next_attempt
        finally:
            await asyncio.to_thread(self.files.unlock, fd)

    async def _save(self, envelope: Envelope) -> None:
        await asyncio.to_thread(self.files.save, envelope)

    def _expire(self, envelope: Envelope, now: float) -> None:
        age = int(now - envelope.queued_at)
        for r in envelope.pending():
            r.state, r.action = FAILED, "failed"
            r.code, r.enhanced = r.code if r.code >= 400 else 451, "4.4.7"
            r.text = (f"delivery time expired: still undelivered after {age} s and "
                      f"{envelope.attempts} attempt(s); last error: "
                      f"{r.text or envelope.last_error or 'none'}")
        log.warning("%s: expired after %d s", envelope.id, age)

    async def _attempt(self, envelope: Envelope, raw: bytes, now: float) -> None:
        pending = envelope.pending()
        try:
            results = {r.address.lower(): r for r in await self.transport(envelope, raw, pending)}
        except Exception as exc:
            log.exception("%s: transport failed", envelope.id)
            results = {r.address.lower(): AttemptResult(r.address, 451, "4.3.0",
                                                        f"local error: {exc!r}")
                       for r in pending}
        envelope.attempts += 1
        errors = []
        for r in pending:
            result = results.get(r.address.lower()) or AttemptResult(
                r.address, 451, "4.3.0", "no result for this recipient")
            r.code, r.enhanced, r.text = result.code, result.enhanced, result.text
            r.remote_mta = result.remote_mta or r.remote_mta
            if 200 <= result.code < 300:
                r.state, r.action = DELIVERED, result.action
            elif result.code >= 500:
                r.state, r.action = FAILED, "failed"
            else:
                errors.append(f"{r.address}: {result.code} {result.text}")
        still = envelope.pending()
        if still:
            schedule = self.settings.retry_schedule
            delay = schedule[min(envelope.attempts - 1, len(schedule) - 1)]
            envelope.next_attempt = now + delay
            envelope.last_error = errors[0] if errors else envelope.last_error
            log.info("%s: %d recipient(s) deferred, next attempt in %d s: %s", envelope.id,
                     len(still), delay, envelope.last_error)
        for r in envelope.recipients:
            if r.state != PENDING and r.code and not r.action:
                r.action = "failed"

    async def _send_reports(self, envelope: Envelope, raw: bytes) -> None:
        """Notices due and not yet sent: failures, successes asked for, delay warnings."""
        by_action: dict[str, list[Recipient]] = {}
        for r in envelope.recipients:
            if r.state != PENDING and not r.reported:
                by_action.setdefault(r.action or "failed", []).append(r)
        warn_after = self.settings.delay_warning
        if warn_after and time.time() - envelope.created >= warn_after:
            for r in envelope.pending():
                if not r.delay_reported and r.notify and "DELAY" in r.notify:
                    by_action.setdefault("delayed", []).append(r)
        if not by_action:
            return
        for action, concerned in by_action.items():
            await self.report(envelope, raw, concerned, action)
            for r in concerned:
                if action == "delayed":
                    r.delay_reported = True
                else:
                    r.reported = True
        await self._save(envelope)


def _unreported(envelope: Envelope) -> bool:
    return any(r.state != PENDING and not r.reported for r in envelope.recipients)
