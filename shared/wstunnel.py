"""Carry an SSH connection over a WebSocket: the ``tunnel=`` object asyncssh takes.

asyncssh calls ``create_connection(factory, host, port)`` and gets back an
``asyncio.Transport`` that we implement on top of a websockets connection:
writes are coalesced into binary frames of at most ``frame_size`` bytes and sent
one at a time (``send()`` waits for the socket, which is our backpressure);
received frames go straight to ``protocol.data_received``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from shared.protocol.close_codes import INTERNAL_ERROR, UNSUPPORTED_DATA

#: Frames of 32–128 KiB went through the relay fastest (spike notes).
DEFAULT_FRAME_SIZE = 64 * 1024


class WebSocketTransport(asyncio.Transport):
    """An ``asyncio.Transport`` whose wire is one WebSocket connection."""

    def __init__(
        self, ws: Connection, protocol: asyncio.Protocol, frame_size: int = DEFAULT_FRAME_SIZE
    ) -> None:
        super().__init__()
        self._ws = ws
        self._protocol = protocol
        self._frame_size = frame_size
        self._chunks: deque[bytes] = deque()
        self._pending = asyncio.Event()
        self._closing = False
        self._lost = False
        self._writer = asyncio.create_task(self._write_loop())
        self._reader = asyncio.create_task(self._read_loop())

    # -- asyncio.Transport -------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        raw = bytes(data)
        step = self._frame_size
        if len(raw) <= step:
            self._chunks.append(raw)
        else:  # keep every frame under 2 x frame_size
            self._chunks.extend(raw[i : i + step] for i in range(0, len(raw), step))
        self._pending.set()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def can_write_eof(self) -> bool:
        return False

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Flush what is queued, then close the WebSocket."""
        self._closing = True
        self._pending.set()

    def abort(self) -> None:
        self._closing = True
        self._chunks.clear()
        self._writer.cancel()
        self._reader.cancel()
        asyncio.ensure_future(self._ws.close(code=INTERNAL_ERROR, reason="aborted"))
        self._connection_lost(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._ws.remote_address
        if name == "sockname":
            return self._ws.local_address
        return default

    def get_write_buffer_size(self) -> int:
        return sum(len(chunk) for chunk in self._chunks)

    # -- pumps ---------------------------------------------------------------
    async def _write_loop(self) -> None:
        try:
            while True:
                await self._pending.wait()
                self._pending.clear()
                while self._chunks:
                    await self._ws.send(self._take_frame())
                if self._closing:
                    await self._ws.close()
                    return
        except ConnectionClosed:
            return

    def _take_frame(self) -> bytes:
        # Whole chunks only: splitting at exactly frame_size left a tiny remainder
        # frame after almost every full one (two 32 KiB SSH packets exceed 64 KiB),
        # doubling the frames the relay pumps. A frame may thus exceed frame_size by
        # one chunk, far below the relay's tunnel_max_size.
        first = self._chunks.popleft()
        if not self._chunks or len(first) >= self._frame_size:
            return first
        parts = [first]
        size = len(first)
        while self._chunks and size < self._frame_size:
            chunk = self._chunks.popleft()
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    async def _read_loop(self) -> None:
        exc: Exception | None = None
        try:
            async for frame in self._ws:
                if isinstance(frame, str):
                    exc = ConnectionError("text frame on a data tunnel")
                    await self._ws.close(code=UNSUPPORTED_DATA, reason="binary frames only")
                    break
                self._protocol.data_received(frame)
        except ConnectionClosed as closed:
            exc = ConnectionError(f"tunnel closed: {closed}")
        finally:
            self._closing = True
            self._connection_lost(exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._protocol.connection_lost(exc)


class WebSocketTunnel:
    """What asyncssh's ``tunnel=`` argument needs, for one already-open WebSocket."""

    def __init__(self, ws: Connection, frame_size: int = DEFAULT_FRAME_SIZE) -> None:
        self._ws = ws
        self._frame_size = frame_size

    async def create_connection(
        self, session_factory: Callable[[], asyncio.Protocol], host: str, port: int
    ) -> tuple[asyncio.Transport, asyncio.Protocol]:
        protocol = session_factory()
        transport = WebSocketTransport(self._ws, protocol, self._frame_size)
        protocol.connection_made(transport)
        return transport, protocol

    def close(self) -> None:
        asyncio.ensure_future(self._ws.close())

    async def wait_closed(self) -> None:
        with contextlib.suppress(Exception):
            await self._ws.wait_closed()
