"""Local stdio for long transfers: threads, so files, pipes and terminals all work."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading

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
