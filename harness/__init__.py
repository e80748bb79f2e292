"""Real processes on loopback: a relay, agents and consoles, for tests, demo and bench.

:class:`Proc` runs one program and waits on the lines it prints; :class:`World` is a
relay data directory with the processes and profiles around it. Timeouts scale with
``QP_TEST_TIMEOUT_FACTOR`` (:data:`FACTOR`, :func:`timeout`).
"""

from __future__ import annotations

from harness.processes import BIN, FACTOR, Proc, timeout
from harness.world import World

__all__ = ["BIN", "FACTOR", "Proc", "World", "timeout"]
