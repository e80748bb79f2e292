"""Recording of what a technician's terminal showed, as asciicast v2.

Header line, then one ``[seconds, "o" | "i" | "r", data]`` event per chunk, in
order. Input is recorded only when policy says so. Files are 0600 in the agent's
data directory so the client can replay them.
"""

from __future__ import annotations

import codecs
import json
import os
import time
from pathlib import Path
from typing import IO


class CastRecorder:
    """Writes one asciicast v2 file; safe to call after a write error (it stops)."""

    def __init__(
        self, path: Path, width: int, height: int, term: str, title: str, record_input: bool
    ) -> None:
        self.path = path
        self.record_input = record_input
        self._start = time.monotonic()
        # Terminal output is bytes; split UTF-8 sequences must not become garbage.
        self._out = codecs.getincrementaldecoder("utf-8")("replace")
        self._in = codecs.getincrementaldecoder("utf-8")("replace")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._file: IO[str] | None = os.fdopen(fd, "w", encoding="utf-8")
        header = {
            "version": 2,
            "width": max(1, width),
            "height": max(1, height),
            "timestamp": int(time.time()),
            "env": {"TERM": term},
            "title": title,
        }
        self._write(header)

    def _write(self, value: object) -> None:
        if self._file is None:
            return
        try:
            self._file.write(json.dumps(value, ensure_ascii=False) + "\n")
            self._file.flush()
        except OSError:
            self.close()

    def _event(self, kind: str, text: str) -> None:
        if text:
            self._write([round(time.monotonic() - self._start, 6), kind, text])

    def output(self, data: bytes) -> None:
        self._event("o", self._out.decode(data))

    def input(self, data: bytes) -> None:
        if self.record_input:
            self._event("i", self._in.decode(data))

    def resize(self, width: int, height: int) -> None:
        self._event("r", f"{width}x{height}")

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
