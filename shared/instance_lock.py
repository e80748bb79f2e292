"""One running instance per data directory.

``qp-relay serve`` and ``qp-agent run`` take an exclusive ``flock`` on a lock file in
their data directory before they touch anything in it (a second relay would close
the first one's live sessions as ``recovered``; a second agent would remove the
first one's control socket). The lock file holds the holder's pid, for the message
a second instance prints; the kernel releases the lock when the holder exits, however
it exits, so a stale file never blocks a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from shared.errors import ConflictError


class InstanceLock:
    """A held lock; released by :meth:`release` or when the process exits."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def release(self) -> None:
        """Let another instance start (the file stays: removing it would race)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode().strip()
        if text.isdigit():
            return f"pid {int(text)}"
    return "a process that has not yet written its pid"


def lock_data_dir(directory: Path, name: str, program: str) -> InstanceLock:
    """Hold ``directory/name`` exclusively, or raise ConflictError naming the holder."""
    path = directory / name
    # No O_TRUNC: that would erase the holder's pid before we know we are not it.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise ConflictError(
            f"{directory} is in use by another {program} ({holder}); "
            "stop it first: one instance per data directory"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return InstanceLock(path, fd)
