"""One IMAP connection: the state machine, output buffering and command dispatch.

States follow RFC 9051 section 3: not authenticated, authenticated, selected
and logout. Commands live in the ``cmd_*`` modules and are found through the
table in ``plugins.imap.commands``; each is an ``async`` function of the
session and its arguments that writes untagged data with ``send`` and returns
the text (and code) of its tagged OK, or raises ``No``/``Bad``.

Output is collected and written with one ``drain`` per response batch (FETCH
flushes every few hundred kilobytes). Before every tagged OK the selected
mailbox is polled and other sessions' changes are reported (expunges held back
during FETCH, STORE and SEARCH, RFC 3501 section 7.4.1).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from gateway.net import ConnectionClosed, IdleTimeout, NetError
from plugins.imap import responses as R
from plugins.imap.capabilities import capabilities
from plugins.imap.errors import Answered, CommandFailed, No
from plugins.imap.mailboxes import MailboxError, MailboxTree
from plugins.imap.parser import Command, CommandError, CommandReader

if TYPE_CHECKING:
    from gateway.host import Host
    from gateway.net import Connection
    from plugins.imap.plugin import ImapService

NOT_AUTHENTICATED = "not authenticated"
AUTHENTICATED = "authenticated"
SELECTED = "selected"
LOGOUT = "logout"

FLUSH_AT = 256 * 1024
"""Buffered output is written once it grows past this many bytes."""


class Session:
    """The state of one client connection."""

    def __init__(self, service: ImapService, conn: Connection) -> None:
        self.service = service
        self.host: Host = service.host
        self.conn = conn
        self.config = service.config
        self.state = NOT_AUTHENTICATED
        self.user = ""
        """The authenticated login (canonical directory name)."""
        self.mailbox_owner = ""
        """Whose mailbox the session acts on: the user, or the target of ``target!login``."""
        self.counted = False
        self.tree: Any = None
        self.selected: Any = None
        self.saved_uids: list[int] = []
        """The SEARCHRES result ``$`` (UIDs)."""
        self.enabled: set[str] = set()
        self.condstore_seen = False
        """CONDSTORE is on once enabled or once a command used it (RFC 7162 3.1)."""
        self.out: list[bytes] = []
        self.out_size = 0
        self.started = time.monotonic()
        self.reader = CommandReader(
            conn, self._go_ahead, max_line_bytes=self.config.max_line_bytes,
            max_literal_bytes=self.config.max_literal_bytes, literal_plus=True)

    # -- modes ------------------------------------------------------------------------------

    @property
    def utf8(self) -> bool:
        """Mailbox names and strings in UTF-8 (UTF8=ACCEPT or IMAP4rev2 enabled)."""
        return "UTF8=ACCEPT" in self.enabled or "IMAP4REV2" in self.enabled

    @property
    def rev2(self) -> bool:
        return "IMAP4REV2" in self.enabled

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.enabled

    @property
    def condstore(self) -> bool:
        return self.condstore_seen or "CONDSTORE" in self.enabled or self.qresync

    @property
    def plaintext_refused(self) -> bool:
        return not self.conn.tls and not self.config.allow_plaintext_auth

    # -- output -----------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.out.append(data)
        self.out_size += len(data)

    def untagged(self, data: bytes | str) -> None:
        self.send(R.untagged(data))

    async def flush(self) -> None:
        if not self.out:
            return
        data = b"".join(self.out) if len(self.out) > 1 else self.out[0]
        self.out.clear()
        self.out_size = 0
        await self.conn.write(data)

    async def maybe_flush(self) -> None:
        if self.out_size >= FLUSH_AT:
            await self.flush()

    async def _go_ahead(self) -> None:
        self.send(R.continuation("Ready for literal data"))
        await self.flush()

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        log = self.service.log
        peer = self.conn.peer[0]
        try:
            self.send(R.status("*", "OK", "groupware gateway IMAP ready",
                               "CAPABILITY " + " ".join(capabilities(self))))
            await self.flush()
            while self.state != LOGOUT:
                try:
                    command = await self.reader.read()
                except CommandError as exc:
                    await self._refuse(exc)
                    if exc.fatal:
                        break
                    continue
                await self.execute(command)
        except IdleTimeout:
            await self._goodbye("Autologout; idle for too long")
        except (ConnectionClosed, NetError):
            pass  # closed, reset, TLS failure, a PROXY header from an untrusted address
        except asyncio.CancelledError:
            await self._goodbye("Server shutting down")
            raise
        finally:
            await self._cleanup()
            if self.user:
                log.info("imap logout user=%s client=%s seconds=%.0f", self.user, peer,
                         time.monotonic() - self.started)

    async def _goodbye(self, text: str) -> None:
        try:
            self.out.clear()
            self.untagged(b"BYE " + text.encode())
            async with asyncio.timeout(2):
                await self.flush()
        except (NetError, TimeoutError, OSError):
            pass

    async def _refuse(self, exc: CommandError) -> None:
        """Answer a command that could not be read (BAD, or NO [TOOBIG] for APPEND)."""
        self.send(R.status(exc.tag or "*", exc.kind, exc.text, exc.code))
        if exc.fatal:
            self.untagged(b"BYE the rest of that command cannot be skipped")
        await self.flush()

    async def _cleanup(self) -> None:
        selected, self.selected = self.selected, None
        if selected is not None:
            try:
                selected.close()
            except Exception:  # the session is over either way
                self.service.log.exception("closing the selected mailbox failed")
        if self.counted:
            self.service.limits.release(self.user)
            self.counted = False

    async def execute(self, command: Command) -> None:
        """Run one command and write its responses, tagged line last."""
        from plugins.imap.commands import lookup

        tag = command.tag
        try:
            spec, args = lookup(self, command)
            result = await spec.handler(self, tag, args)
            text, code = ("completed", None) if result is None else result
            await self.poll(expunges=spec.expunges)
            self.send(R.status(tag, "OK", f"{spec.name} {text}", code))
        except CommandFailed as exc:
            self.send(R.status(tag, exc.kind, exc.text, exc.code))
        except Answered:
            pass
        except (NetError, asyncio.CancelledError):
            raise
        except Exception:
            self.service.log.exception("imap command %s failed for %s", command.name,
                                       self.user or self.conn.peer[0])
            self.out.clear()
            self.out_size = 0
            self.send(R.status(tag, "NO", "internal error, the command was not completed",
                               "SERVERBUG"))
        await self.flush()

    async def poll(self, *, expunges: bool = True) -> None:
        """Report what changed in the selected mailbox since the last poll.

        When the selected mailbox is gone (deleted elsewhere) the session ends with
        ``* BYE``, as the client's idea of its state can no longer be right.
        """
        if self.selected is None:
            return

        try:
            lines = await self.selected.poll(expunges=expunges, qresync=self.qresync,
                                             condstore=self.condstore)
        except MailboxError as exc:
            self.deselect()
            self.state = LOGOUT
            self.send(R.untagged(b"BYE [UNAVAILABLE] " + (exc.text or str(exc)).encode()))
            raise Answered() from None
        for line in lines:
            self.send(line)

    # -- authentication ---------------------------------------------------------------------

    async def logged_in(self, principal: Any) -> None:
        """Enter the authenticated state for an ``AuthResult.principal``; ``No`` when refused."""
        user = principal.username
        target = (principal.attributes or {}).get("target") or ""
        if target and target.lower() != user.lower():
            await self._check_full_access(user, target)
        limit = self.config.max_connections_per_user
        if not self.service.limits.acquire(user, limit):
            self.service.log.info("imap login refused user=%s client=%s: over %d sessions",
                                  user, self.conn.peer[0], limit)
            raise No(f"too many connections for this user (limit {limit})", "LIMIT")
        self.counted = True
        self.user = user
        self.mailbox_owner = target or user
        try:
            self.tree = await MailboxTree.load(self.host, self.mailbox_owner,
                                               show_all=self.config.show_all_folders)
        except BaseException:
            self.service.limits.release(user)
            self.counted = False
            self.user = self.mailbox_owner = ""
            raise
        self.state = AUTHENTICATED
        self.conn.idle_timeout = self.config.idle_timeout
        self.service.log.info("imap login user=%s target=%s client=%s tls=%s", user,
                              target or "-", self.conn.peer[0], self.conn.tls)

    async def _check_full_access(self, user: str, target: str) -> None:
        """``target!login``: the session acts as the owner of ``target``'s mailbox, so
        ``user`` must hold full access to that store (a store-wide grant)."""
        from gateway.store import permissions
        from gateway.store.errors import NotFound

        try:
            mbox = await self.host.store.open(target)
        except NotFound:
            raise No(f"{target} has no mailbox", "AUTHORIZATIONFAILED") from None
        grant = await mbox.read(permissions.grant_of, user)
        if not grant.full_access:
            self.service.log.info("imap login refused user=%s target=%s client=%s: "
                                  "no full access", user, target, self.conn.peer[0])
            raise No(f"{user} may not open the mailbox of {target}", "AUTHORIZATIONFAILED")

    def deselect(self) -> None:
        selected, self.selected = self.selected, None
        self.saved_uids = []
        if selected is not None:
            selected.close()
        if self.state == SELECTED:
            self.state = AUTHENTICATED
