"""A program run as a child process whose output lines can be waited for.

Everything waits on what the programs print (``listening on …``, ``connected to
relay as …``), never on a sleep. Timeouts scale with ``QP_TEST_TIMEOUT_FACTOR``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

FACTOR = float(os.environ.get("QP_TEST_TIMEOUT_FACTOR", "1"))
BIN = Path(sys.executable).parent


def timeout(seconds: float) -> float:
    """A timeout scaled for slow machines."""
    return seconds * FACTOR


class Proc:
    """A long-running program whose output lines we can wait for."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        stdin: int | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = argv
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._cond = threading.Condition()
        for name in ("stdout", "stderr"):
            stream = getattr(self.popen, name)
            threading.Thread(target=self._read, args=(name, stream), daemon=True).start()

    def _read(self, name: str, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            with self._cond:
                self.lines[name].append(raw.decode(errors="replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines[name].append("<eof>")
            self._cond.notify_all()

    def wait_line(
        self, pattern: str, stream: str = "stderr", within: float = 15, start: int = 0
    ) -> str:
        """The first line (from index ``start``) matching regex ``pattern``."""
        rx = re.compile(pattern)
        found: list[str] = []

        def ready() -> bool:
            for line in self.lines[stream][start:]:
                if rx.search(line):
                    found.append(line)
                    return True
            return "<eof>" in self.lines[stream]

        with self._cond:
            self._cond.wait_for(ready, timeout(within))
        if not found:
            raise AssertionError(
                f"{self.argv[0]}: no line matching {pattern!r} on {stream} within {within}s;\n"
                f"stdout: {self.lines['stdout'][-20:]}\nstderr: {self.lines['stderr'][-20:]}"
            )
        return found[0]

    def count(self, stream: str = "stderr") -> int:
        """Lines read so far on ``stream``: a ``start`` for a later :meth:`wait_line`."""
        with self._cond:
            return len(self.lines[stream])

    def text(self, stream: str = "stderr") -> str:
        """Everything read so far on ``stream``, one line per line."""
        with self._cond:
            return "\n".join(self.lines[stream])

    def signal(self, sig: int) -> None:
        """Send ``sig`` unless the program has already exited."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def wait(self, within: float = 30) -> int:
        """The exit status, waiting at most ``within`` (scaled) seconds."""
        return self.popen.wait(timeout(within))

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited in time."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout(10))
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
