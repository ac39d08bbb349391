"""The hello line protocol: ``HELLO name`` answers a greeting, ``QUIT`` says bye."""

from __future__ import annotations

from gateway.host import Host
from gateway.net import Connection, LineTooLong


async def serve_connection(host: Host, conn: Connection) -> None:
    await conn.write(b"* hello ready\r\n")
    while True:
        try:
            line = await conn.readline()
        except LineTooLong:
            await conn.write(b"ERR line too long\r\n")
            continue
        command, _, argument = line.strip().decode("utf-8", "replace").partition(" ")
        verb = command.upper()
        if verb == "HELLO":
            name = argument.strip() or "stranger"
            await conn.write(f"{host.config.hello.greeting}, {name}!\r\n".encode())
        elif verb == "QUIT":
            await conn.write(b"BYE\r\n")
            return
        else:
            await conn.write(b"ERR unknown command\r\n")
