"""Deliver one message from a separate gateway process (for the notification test).

``python -m tests.integration.store_deliver ADDRESS SUBJECT`` builds a host from
the environment (``GATEWAY__...`` variables: data dir, Redis URL), opens the
store of ADDRESS and stores a message in its Inbox as new mail.
"""

from __future__ import annotations

import asyncio
import os
import sys

from gateway.host import Host, load_config
from gateway.store import NewMessage, Private
from gateway.store import tags as T


async def main(address: str, subject: str) -> None:
    config, pm, plugins = load_config([], os.environ)
    host = Host(config, pm, plugins, environ=os.environ)
    await host.startup()
    try:
        mbox = await host.store.open(address)
        await mbox.create_message(int(Private.INBOX), NewMessage({T.PidTagSubject: subject}),
                                  new_mail=True)
    finally:
        await host.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
