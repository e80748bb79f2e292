"""The agent's own append-only audit log: what technicians did on this machine.

One JSON object per line in ``audit.log`` (0600) in the agent's data directory, so
the client can read it (``qp-agent log``) without trusting the relay.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()


class AgentAudit:
    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, event: str, session_id: str = "", **fields: Any) -> None:
        """Append one event; never raises (auditing must not break a session)."""
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "event": event,
            "session": session_id,
            **fields,
        }
        line = (json.dumps(entry, default=str) + "\n").encode()
        try:
            with _LOCK:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
        except OSError:
            pass

    def read(self, limit: int = 200) -> list[dict[str, Any]]:
        """The last ``limit`` events, oldest first."""
        try:
            lines = self.path.read_text().splitlines()[-limit:]
        except OSError:
            return []
        events: list[dict[str, Any]] = []
        for line in lines:
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                events.append(value)
        return events
