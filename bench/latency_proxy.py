"""A user-space TCP proxy that adds a fixed delay to every chunk in each direction.

Usage: latency_proxy.py --delay-ms 25 LOCALPORT=HOST:PORT [...]

Listens on 127.0.0.1:LOCALPORT per mapping and forwards to HOST:PORT; each chunk read on one
side is written to the other ``delay`` later (pipelined: later chunks do not wait behind the
delay of earlier ones). Prints ``ready`` once listening; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader to writer, delivering each chunk ``delay`` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    task = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                break
        await task
    except (ConnectionError, OSError):
        task.cancel()
    finally:
        if not task.done():
            task.cancel()


async def _handle(
    client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, target: tuple[str, int], delay: float
) -> None:
    try:
        server_r, server_w = await asyncio.open_connection(*target)
    except OSError:
        client_w.close()
        return
    try:
        await asyncio.gather(_pump(client_r, server_w, delay), _pump(server_r, client_w, delay))
    finally:
        for w in (client_w, server_w):
            w.close()


async def serve(mappings: list[tuple[int, str, int]], delay: float) -> None:
    """Listen on every local port and forward until cancelled."""
    servers = []
    for port, host, target_port in mappings:

        async def handler(
            r: asyncio.StreamReader, w: asyncio.StreamWriter, t: tuple[str, int] = (host, target_port)
        ) -> None:
            await _handle(r, w, t, delay)

        servers.append(await asyncio.start_server(handler, "127.0.0.1", port, backlog=256))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    for s in servers:
        s.close()


def parse_mapping(text: str) -> tuple[int, str, int]:
    """``LOCALPORT=HOST:PORT`` -> (localport, host, port)."""
    local, _, remote = text.partition("=")
    host, _, port = remote.rpartition(":")
    return int(local), host, int(port)


def main(argv: list[str] | None = None) -> int:
    """Parse the mappings and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=25.0, help="delay per direction (ms)")
    parser.add_argument("mappings", nargs="+", help="LOCALPORT=HOST:PORT")
    args = parser.parse_args(argv)
    asyncio.run(serve([parse_mapping(m) for m in args.mappings], args.delay_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
