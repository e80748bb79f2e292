"""SFTP confined to a root directory on the agent.

Paths are real paths (absolute ones are taken as they are, relative ones from the
root), and every path is resolved — symlinks included — before use: anything that
ends up outside the root is refused, so ``..``, absolute paths elsewhere and
symlinks pointing out all fail with "permission denied". New symlinks cannot be
created. Every transfer is written to the agent's audit log.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any

import asyncssh

from agent.audit import AgentAudit

MAX_PATH = 4096


class ConfinedSFTPServer(asyncssh.SFTPServer):
    """An SFTP server that never touches anything outside ``root``."""

    def __init__(
        self, chan: asyncssh.SSHServerChannel[bytes], root: str, audit: AgentAudit, session_id: str
    ) -> None:
        super().__init__(chan)
        self._root = os.fsencode(os.path.realpath(root))
        self._audit = audit
        self._session = session_id
        self._files: dict[int, tuple[str, str]] = {}

    def _inside(self, path: bytes) -> bool:
        root = self._root
        return path == root or path.startswith(root.rstrip(b"/") + b"/")

    def _refuse(self, path: bytes, why: str) -> asyncssh.SFTPPermissionDenied:
        shown = os.fsdecode(path)[:200]
        self._audit.record("file_refused", self._session, path=shown, reason=why)
        return asyncssh.SFTPPermissionDenied(f"{shown}: {why}")

    def map_path(self, path: bytes) -> bytes:
        if b"\x00" in path or len(path) > MAX_PATH:
            raise self._refuse(path[:200].replace(b"\x00", b"?"), "invalid path")
        joined = posixpath.join(self._root, path)  # an absolute path replaces the root
        real = os.fsencode(os.path.realpath(os.fsdecode(joined)))
        if not self._inside(real):
            raise self._refuse(path, "outside the allowed root")
        return posixpath.normpath(joined)

    def reverse_map_path(self, path: bytes) -> bytes:
        return path

    def exit(self) -> None:
        """Report exit status 0 when the SFTP session ends: OpenSSH's scp treats a
        channel closed without one as a failed copy."""
        self.channel.exit(0)

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise self._refuse(newpath, "creating symlinks is not allowed")

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        handle = super().open(path, pflags, attrs)
        direction = "upload" if pflags & (asyncssh.FXF_WRITE | asyncssh.FXF_CREAT) else "download"
        self._files[id(handle)] = (os.fsdecode(path), direction)
        return handle

    def close(self, file_obj: Any) -> None:
        info = self._files.pop(id(file_obj), None)
        if info is not None:
            try:
                size = os.fstat(file_obj.fileno()).st_size
            except (OSError, AttributeError, ValueError):
                size = -1
            self._audit.record("file_" + info[1], self._session, path=info[0], size=size)
        super().close(file_obj)
