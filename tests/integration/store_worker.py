"""A separate process writing to one store, for the durability and concurrency tests.

``python -m tests.integration.store_worker DATA_DIR ADDRESS NAME COUNT [START_AT]`` creates
COUNT messages in the Inbox (each with a subject ``NAME-i`` and, every third
one, a 100 KiB attachment that lands in a blob file), marks every other one
read, and prints ``ACK <message id> <subject>`` once each write has returned.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from gateway.store import NewAttachment, NewMessage, Private, Store
from gateway.store import tags as T
from gateway.store.settings import StoreSection


async def main(data_dir: str, address: str, name: str, count: int, start_at: float) -> None:
    store = Store(Path(data_dir), StoreSection(reader_threads=2))
    mbox = await store.open(address)
    await asyncio.sleep(max(0.0, start_at - time.time()))  # start together with the others
    for i in range(count):
        message = NewMessage({T.PidTagSubject: f"{name}-{i}", T.PidTagBody: f"body {i}"})
        if i % 3 == 0:
            message.attachments.append(NewAttachment(
                {T.PidTagAttachLongFilename: f"{i}.bin"}, data=iter([os.urandom(100_000)])))
        mid = await mbox.create_message(int(Private.INBOX), message)
        if i % 2:
            await mbox.set_read([mid])
        print(f"ACK {mid} {name}-{i}", flush=True)
    await store.close()


if __name__ == "__main__":
    start_at = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), start_at))
