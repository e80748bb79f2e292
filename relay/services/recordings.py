"""Terminal recordings uploaded by agents (when policy asks), kept beside the
database: ``<data>/recordings/<session>.cast``, 0600, append-only in order."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from shared.errors import NotFoundError, RemoteProtocolError
from shared.secrets_io import make_private_dir

#: Largest recording the relay keeps for one session.
MAX_RECORDING = 32 * 1024 * 1024
#: Bytes per read for ``qp session replay`` (base64 must fit a console message).
READ_CHUNK = 32 * 1024


class Recordings:
    def __init__(self, data_dir: Path, limit: int = MAX_RECORDING) -> None:
        self.folder = data_dir / "recordings"
        self.limit = limit

    def path(self, session_id: str) -> Path:
        if not session_id.replace("-", "").isalnum():
            raise NotFoundError("no recording for that session")
        return self.folder / f"{session_id}.cast"

    def append(self, session_id: str, offset: int, data_b64: str) -> int:
        """Add a chunk at ``offset`` (which must be the current size); returns the
        new size. Out-of-order, oversize or undecodable chunks are refused."""
        try:
            data = base64.b64decode(data_b64, validate=True)
        except (binascii.Error, ValueError):
            raise RemoteProtocolError("recording chunk is not base64") from None
        make_private_dir(self.folder)
        path = self.path(session_id)
        size = path.stat().st_size if path.exists() else 0
        if offset != size:
            raise RemoteProtocolError(f"recording chunk at {offset}, expected {size}")
        if size + len(data) > self.limit:
            raise RemoteProtocolError("recording exceeds the relay's size limit")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return size + len(data)

    def read(self, session_id: str, offset: int) -> tuple[bytes, int]:
        """Up to READ_CHUNK bytes from ``offset`` and the file's total size."""
        path = self.path(session_id)
        if not path.exists():
            raise NotFoundError("no recording for that session")
        with path.open("rb") as f:
            f.seek(max(0, offset))
            data = f.read(READ_CHUNK)
        return data, path.stat().st_size
