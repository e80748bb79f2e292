"""Local stdio for long transfers: threads, so files, pipes and terminals all work."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import stat
import sys
import threading
from collections.abc import Awaitable, Callable

CHUNK = 64 * 1024


class FdReader:
    """Reads a local fd in a daemon thread (so a blocked read never holds the
    process open at exit) and hands chunks over a small queue (backpressure)."""

    def __init__(self, fd: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)
        threading.Thread(target=self._run, args=(fd,), daemon=True).start()

    def _run(self, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, CHUNK)
            except OSError:
                data = b""
            try:
                asyncio.run_coroutine_threadsafe(self._queue.put(data), self._loop).result()
            except (RuntimeError, concurrent.futures.CancelledError):
                return  # the loop is gone
            if not data:
                return

    async def read(self) -> bytes:
        return await self._queue.get()


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


PIPE_CHUNK = 256 * 1024
Read = Callable[[], Awaitable[bytes]]
Write = Callable[[bytes], Awaitable[None]]


def _is_pipe(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


async def stdio_streams() -> tuple[Read, Write]:
    """Async read/write of stdin/stdout. Pipes and sockets (always the case under
    an OpenSSH ProxyCommand) use the event loop directly, which costs far less CPU
    than a thread hop per chunk; anything else falls back to threads."""
    loop = asyncio.get_running_loop()
    in_fd, out_fd = sys.stdin.fileno(), sys.stdout.fileno()
    if _is_pipe(in_fd):
        reader = asyncio.StreamReader(limit=PIPE_CHUNK)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(in_fd, "rb", 0, closefd=False)
        )

        async def read() -> bytes:
            return await reader.read(PIPE_CHUNK)

    else:
        fd_reader = FdReader(in_fd)
        read = fd_reader.read
    if _is_pipe(out_fd):
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(out_fd, "wb", 0, closefd=False)
        )
        writer = asyncio.StreamWriter(transport, protocol, None, loop)

        async def write(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

    else:

        async def write(data: bytes) -> None:
            await asyncio.to_thread(write_all, out_fd, data)

    return read, write
