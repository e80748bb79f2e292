"""``qp session replay FILE``: play an asciicast v2 recording in the terminal.

Output events are written with their original timing (scaled by ``speed``,
pauses capped at ``max_wait``); input and resize events are not replayed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from shared.errors import UsageError


def read_cast(path: Path) -> tuple[dict[str, Any], list[tuple[float, str, str]]]:
    """Header and events of an asciicast v2 file; a clear error when it is not one."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        header = json.loads(lines[0])
        if not isinstance(header, dict) or header.get("version") != 2:
            raise ValueError
        events: list[tuple[float, str, str]] = []
        for line in lines[1:]:
            at, kind, data = json.loads(line)
            events.append((float(at), str(kind), str(data)))
    except (ValueError, IndexError, TypeError):
        raise UsageError(f"{path} is not an asciicast v2 recording") from None
    return header, events


def replay(path: Path, speed: float = 1.0, max_wait: float = 2.0) -> int:
    if speed <= 0:
        raise UsageError("--speed must be positive")
    _, events = read_cast(path)
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
