"""The agent's local control socket: the client's say over running sessions.

A Unix socket in the agent's data directory (owner only). One JSON request per
line, one JSON reply per line. Commands: ``sessions``, ``end``, ``pending``,
``answer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from shared.errors import UnavailableError, UsageError

MAX_REQUEST = 16 * 1024
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def serve_control(path: Path, handler: Handler) -> asyncio.AbstractServer:
    """Listen on ``path`` (replacing a stale socket), mode 0600."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                request = json.loads(line[:MAX_REQUEST])
                if not isinstance(request, dict):
                    raise ValueError
                reply = await handler(request)
            except (ValueError, KeyError, TypeError):
                reply = {"ok": False, "error": "malformed request"}
            writer.write((json.dumps(reply) + "\n").encode())
            await writer.drain()
        finally:
            writer.close()

    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(client, path=str(path), limit=MAX_REQUEST)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return server


async def control_call(path: Path, request: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    """Send one request to a running agent; one-line errors for the CLI."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), timeout)
    except (OSError, TimeoutError):
        raise UnavailableError(
            f"no running agent at {path.parent}; start it with 'qp-agent run'"
        ) from None
    try:
        writer.write((json.dumps(request) + "\n").encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    try:
        reply = json.loads(line)
    except ValueError:
        raise UnavailableError("the agent gave no answer") from None
    if not isinstance(reply, dict):
        raise UnavailableError("the agent gave no answer")
    if not reply.get("ok", False):
        raise UsageError(str(reply.get("error", "refused")))
    return reply
