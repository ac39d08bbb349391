"""The host's own authentication mechanisms, registered as the internal plugin ``auth``.

:func:`gateway.host.make_plugin_manager` registers this module right after the
host's settings, so every gateway has the ``password`` mechanism
(:class:`~gateway.auth.password.PasswordMechanism`) first in ``host.auth``.
The mechanism reads ``host.directory`` and ``host.config`` on each attempt,
so it works from the moment ``Host.startup`` opens the directory and follows
SIGHUP reloads; the reload and shutdown hooks below drop its cached
credentials and LDAP connections and close its Redis client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway import hookimpl
from gateway.auth.password import PasswordMechanism


def _mechanism(host: Any) -> PasswordMechanism | None:
    found = host.auth.get(PasswordMechanism.name)
    return found if isinstance(found, PasswordMechanism) else None


@hookimpl
def gateway_auth_mechanisms(host: Any) -> Sequence[PasswordMechanism]:
    return [PasswordMechanism(host)]


@hookimpl
def gateway_reload(host: Any) -> None:
    mechanism = _mechanism(host)
    if mechanism is not None:
        mechanism.reload()


@hookimpl
async def gateway_shutdown(host: Any) -> None:
    mechanism = _mechanism(host)
    if mechanism is not None:
        await mechanism.close()
