"""Baseline for the idle-connection benchmark: the hello line service on bare asyncio.

Same greeting and read loop as the example plugin, with nothing of the
gateway around it: ``python -m tests.bench.raw_line_server PORT``.
"""

from __future__ import annotations

import asyncio
import resource
import sys


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"* hello ready\r\n")
    await writer.drain()
    try:
        while line := await reader.readline():
            writer.write(b"Hello, " + line.strip() + b"!\r\n")
            await writer.drain()
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve_connection, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(int(sys.argv[1])))
