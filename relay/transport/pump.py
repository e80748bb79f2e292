"""The tunnel byte pump: one direction, WebSocket to WebSocket, with backpressure.

``send()`` waits until the frame is written to the destination socket, and the
source connection buffers at most ``max_queue`` frames, so a reader that stops
reading stalls the writer instead of growing the relay's memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from shared.protocol.close_codes import UNSUPPORTED_DATA


async def pump(
    src: Connection, dst: Connection, count: Callable[[bytes], None]
) -> Literal["src", "dst"]:
    """Copy binary frames from ``src`` to ``dst`` until one side closes.

    Returns which side closed first. Text frames are a protocol violation on a
    data tunnel and end the pump as if the source had left.
    """
    while True:
        try:
            frame = await src.recv()
        except ConnectionClosed:
            return "src"
        if isinstance(frame, str):
            await src.close(code=UNSUPPORTED_DATA, reason="binary frames only")
            return "src"
        count(frame)
        try:
            await dst.send(frame)
        except ConnectionClosed:
            return "dst"
