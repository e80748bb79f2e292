"""What a collector is, and the few helpers every collector shares.

A collector is a plain blocking function ``(options, clock) -> data`` that the
runner calls in a worker thread. It returns the data class of its section, or
raises :class:`Unavailable` when the platform cannot answer (a missing tool, an OS
psutil does not support). Any other exception becomes an ``error`` section.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from agent.diagnostics.options import DiagnosticsOptions
from shared.clock import Clock

T = TypeVar("T")

CollectFn = Callable[[DiagnosticsOptions, Clock], Any]


class Unavailable(Exception):
    """The platform cannot answer this collector; ``str()`` says why."""


@dataclass(frozen=True)
class Collector:
    """One named collector; ``name`` is its section of the snapshot."""

    name: str
    collect: CollectFn


def run_tool(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a system tool with a timeout, output captured as text.

    A missing tool is :class:`Unavailable`; a tool that overruns is killed and
    reported as :class:`TimeoutError`."""
    path = shutil.which(argv[0])
    if path is None:
        raise Unavailable(f"{argv[0]} not found")
    try:
        return subprocess.run(
            [path, *argv[1:]],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{argv[0]} gave no answer within {timeout:g} s") from None


def run_parallel(calls: Sequence[Callable[[], T]], timeout: float) -> list[T | None]:
    """Run ``calls`` at once in daemon threads; ``None`` for each not done in time.

    For blocking calls with no timeout of their own (``getaddrinfo``): a call that
    hangs is abandoned, and as a daemon thread it never holds up the process exit.
    Each call turns its own failures into a result; one that raises reads as ``None``."""
    results: list[T | None] = [None] * len(calls)

    def run(index: int, call: Callable[[], T]) -> None:
        results[index] = call()

    threads = [
        threading.Thread(target=run, args=(i, call), daemon=True, name="qp-diag-call")
        for i, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    # A thread still alive may yet write its slot; the copy is what the caller sees.
    return list(results)


def number(value: Any, digits: int = 1) -> float | None:
    """A finite float rounded to ``digits``, or ``None`` (psutil may give NaN)."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return round(result, digits) if math.isfinite(result) else None


def count(value: Any) -> int | None:
    """A non-negative integer counter, or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if 0 <= value < 2**63 else None
