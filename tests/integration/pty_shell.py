"""``qp shell`` under a real PTY, driven like a person at a terminal."""

from __future__ import annotations

import os
import pty
import select
import time

from harness import BIN, timeout


class PtyShell:
    """A ``qp shell AGENT`` child whose terminal is a PTY this test holds."""

    def __init__(self, agent: str, env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child: becomes qp with the PTY as its terminal
            os.execve(str(BIN / "qp"), [str(BIN / "qp"), "shell", agent], env)
        self.out = bytearray()

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)

    def read_until(self, marker: bytes, within: float = 30) -> None:
        """Read what the terminal shows until ``marker`` appears."""
        deadline = time.monotonic() + timeout(within)
        while marker not in self.out:
            assert time.monotonic() < deadline, bytes(self.out)
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                self.out.extend(os.read(self.fd, 65536))

    def wait(self) -> int:
        """The exit status of ``qp shell``."""
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)
