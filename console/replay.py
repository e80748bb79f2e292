"""``qp session replay FILE``: play an asciicast v2 recording in the terminal.

Output events are written with their original timing (scaled by ``speed``,
pauses capped at ``max_wait``); input and resize events are not replayed.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

from console.profile import Profile
from shared.errors import UsageError


def read_cast(path: Path) -> tuple[dict[str, Any], list[tuple[float, str, str]]]:
    """Header and events of an asciicast v2 file; a clear error when it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return parse_cast(text, str(path))


def parse_cast(text: str, source: str) -> tuple[dict[str, Any], list[tuple[float, str, str]]]:
    """Header and events of asciicast v2 text."""
    lines = text.splitlines()
    try:
        header = json.loads(lines[0])
        if not isinstance(header, dict) or header.get("version") != 2:
            raise ValueError
        events: list[tuple[float, str, str]] = []
        for line in lines[1:]:
            at, kind, data = json.loads(line)
            events.append((float(at), str(kind), str(data)))
    except (ValueError, IndexError, TypeError):
        raise UsageError(f"{source} is not an asciicast v2 recording") from None
    return header, events


def replay(path: Path, speed: float = 1.0, max_wait: float = 2.0) -> int:
    """Play a local asciicast file."""
    return _play(read_cast(path)[1], speed, max_wait)


def replay_text(text: str, source: str, speed: float = 1.0, max_wait: float = 2.0) -> int:
    """Play asciicast text fetched from the relay."""
    return _play(parse_cast(text, source)[1], speed, max_wait)


async def fetch_recording(profile: Profile, session_id: str) -> str:
    """The whole recording of ``session_id`` as uploaded to the relay."""
    from console.rpc import RelayClient

    chunks: list[bytes] = []
    offset = 0
    async with RelayClient(profile) as relay:
        while True:
            piece = await relay.call("session.recording", session=session_id, offset=offset)
            data = base64.b64decode(piece["data"])
            chunks.append(data)
            offset += len(data)
            if not data or offset >= piece["total"]:
                break
    return b"".join(chunks).decode("utf-8", errors="replace")


def _play(events: list[tuple[float, str, str]], speed: float, max_wait: float) -> int:
    if speed <= 0:
        raise UsageError("--speed must be positive")
    previous = 0.0
    out = sys.stdout
    for at, kind, data in events:
        if kind != "o":
            continue
        pause = min(max(0.0, at - previous), max_wait) / speed
        previous = at
        if pause > 0:
            time.sleep(pause)
        out.write(data)
        out.flush()
    return 0
