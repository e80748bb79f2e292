"""How the tunnel transport cuts SSH output into WebSocket frames (no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.wstunnel import WebSocketTransport


class FakeWebSocket:
    """Records sent frames; receiving waits forever."""

    remote_address = ("127.0.0.1", 1)
    local_address = ("127.0.0.1", 2)

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = asyncio.Event()

    async def send(self, frame: bytes) -> None:
        self.sent.append(frame)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed.set()

    def __aiter__(self) -> FakeWebSocket:
        return self

    async def __anext__(self) -> bytes:
        await asyncio.Event().wait()
        raise StopAsyncIteration


async def frames_for(chunks: list[bytes], frame_size: int) -> list[int]:
    ws = FakeWebSocket()
    transport = WebSocketTransport(ws, asyncio.Protocol(), frame_size)  # type: ignore[arg-type]
    for chunk in chunks:
        transport.write(chunk)
    transport.close()
    await asyncio.wait_for(ws.closed.wait(), 5)
    transport.abort()
    return [len(f) for f in ws.sent]


async def test_packets_are_never_split_into_tiny_remainder_frames() -> None:
    packet = 32 * 1024 + 72  # an SSH packet carrying 32 KiB of data
    sizes = await frames_for([b"x" * packet] * 8, 64 * 1024)
    assert sum(sizes) == 8 * packet
    assert min(sizes) >= 64 * 1024  # no 144-byte leftovers
    assert max(sizes) < 2 * 64 * 1024


async def test_big_writes_are_cut_below_twice_the_frame_size() -> None:
    sizes = await frames_for([b"y" * (1024 * 1024 + 5)], 64 * 1024)
    assert sum(sizes) == 1024 * 1024 + 5
    assert max(sizes) < 2 * 64 * 1024


async def test_small_writes_are_coalesced() -> None:
    sizes: list[Any] = await frames_for([b"z" * 100] * 50, 64 * 1024)
    assert sum(sizes) == 5000
    assert len(sizes) <= 2
