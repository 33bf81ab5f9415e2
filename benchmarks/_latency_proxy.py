"""A loopback TCP proxy that adds network latency, for benchmarks of a "remote" MongoDB.

``python -m benchmarks._latency_proxy TARGET_PORT RTT_MS [--max-seconds S] [--max-connections N]``

Listens on a free port of 127.0.0.1, prints ``listening on PORT`` and forwards every connection to
``127.0.0.1:TARGET_PORT``, delaying each chunk by half the round-trip time in each direction. A
chunk is held until its own deadline, not behind the previous chunk's delay, so the added latency
does not cap the bandwidth (as on a real link). Bytes pass through unchanged, so TLS works
end-to-end between the client and the server.

Bounded: loopback only (both ends), at most ``--max-connections`` connections at a time (further
ones are refused), and the process stops itself after ``--max-seconds`` or as soon as its standard
input closes (its parent exited), whichever comes first. Use :class:`LatencyProxy` to run it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import threading
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
CHUNK = 256 * 1024


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    async def read() -> None:
        try:
            while data := await reader.read(CHUNK):
                queue.put_nowait((loop.time() + delay, data))
        except (ConnectionError, OSError):
            pass
        finally:
            queue.put_nowait(None)

    reading = asyncio.create_task(read())
    try:
        while (item := await queue.get()) is not None:
            deadline, data = item
            wait = deadline - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()
    except (ConnectionError, OSError):
        pass
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading


async def _serve(target_port: int, rtt_ms: float, max_seconds: float, max_connections: int) -> None:
    delay = rtt_ms / 2000.0
    open_connections = 0
    # The connection handlers still running, cancelled and awaited when the proxy stops (else the
    # loop closes with them pending and each one prints a warning).
    handlers: set[asyncio.Task[Any]] = set()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        nonlocal open_connections
        if open_connections >= max_connections:
            client_writer.close()
            return
        open_connections += 1
        current = asyncio.current_task()
        if current is not None:
            handlers.add(current)
            current.add_done_callback(handlers.discard)
        try:
            server_reader, server_writer = await asyncio.open_connection(HOST, target_port)
        except OSError:
            open_connections -= 1
            client_writer.close()
            return
        try:
            await asyncio.gather(
                _pump(client_reader, server_writer, delay),
                _pump(server_reader, client_writer, delay),
            )
        except asyncio.CancelledError:
            pass  # the proxy is stopping
        finally:
            open_connections -= 1
            for writer in (client_writer, server_writer):
                with contextlib.suppress(Exception):
                    writer.close()

    server = await asyncio.start_server(handle, HOST, 0, limit=CHUNK)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on {port}", flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.create_future()

    def watch_stdin() -> None:
        sys.stdin.buffer.read()  # returns at EOF: the parent closed the pipe or exited
        loop.call_soon_threadsafe(lambda: stdin_closed.done() or stdin_closed.set_result(None))

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    async with server:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stdin_closed, max_seconds)
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


class LatencyProxy:
    """Run the proxy in a child process in front of ``127.0.0.1:target_port``; ``port`` is where to connect."""

    def __init__(self, target_port: int, rtt_ms: float, *, max_seconds: float = 1800, max_connections: int = 2000):
        self.target_port = target_port
        self.rtt_ms = rtt_ms
        self.max_seconds = max_seconds
        self.max_connections = max_connections
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> int:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                __name__,
                str(self.target_port),
                str(self.rtt_ms),
                "--max-seconds",
                str(self.max_seconds),
                "--max-connections",
                str(self.max_connections),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"latency proxy did not start: {line!r}")
        self.port = int(line.split()[-1])
        return self.port

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> LatencyProxy:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._latency_proxy")
    parser.add_argument("target_port", type=int)
    parser.add_argument("rtt_ms", type=float)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument("--max-connections", type=int, default=2000)
    args = parser.parse_args(argv)
    if not 0 <= args.rtt_ms <= 1000:
        parser.error("rtt_ms must be between 0 and 1000")
    asyncio.run(_serve(args.target_port, args.rtt_ms, args.max_seconds, args.max_connections))


if __name__ == "__main__":
    main()
