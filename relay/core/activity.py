"""What counts as work in a session's tunnel (pure): payload bytes per minute above
a noise threshold, and the quiet stretches between them, to the second.

The relay passes tunnel payload only (liveness is WebSocket ping/pong, which it
terminates), so bytes mean work. A minute whose bytes stay at or below the noise
threshold (an SSH rekey) is not work; a quiet stretch runs from the last payload
of one working minute to the first payload of the next.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Quiet stretches shorter than this are not recorded (idle thresholds are whole
#: minutes, so a shorter one never matters).
MIN_QUIET_SECONDS = 60


@dataclass
class Minute:
    """Payload of one minute of a session: bytes, and the seconds (from the start)
    of its first and last frame."""

    bytes: int
    first: float
    last: float


def record(minutes: dict[int, Minute], second: float, size: int) -> None:
    """Account ``size`` payload bytes at ``second`` from the session's start."""
    index = int(second // 60)
    found = minutes.get(index)
    if found is None:
        minutes[index] = Minute(size, second, second)
    else:
        found.bytes += size
        found.last = second


def working(minutes: dict[int, Minute], noise: int) -> list[int]:
    """The minutes (from the start) that carried more than ``noise`` bytes."""
    return sorted(i for i, m in minutes.items() if m.bytes > noise)


def quiet(minutes: dict[int, Minute], noise: int, length: float) -> tuple[int, ...]:
    """Quiet stretches of at least :data:`MIN_QUIET_SECONDS` in a session of
    ``length`` seconds, flat: ``(from, to, from, to, …)`` whole seconds."""
    flat: list[int] = []
    edge = 0.0  # the last payload so far (the start counts as one: the handshake)
    for index in working(minutes, noise):
        minute = minutes[index]
        if minute.first - edge >= MIN_QUIET_SECONDS:
            flat += [int(edge), int(minute.first)]
        edge = max(edge, minute.last)
    if length - edge >= MIN_QUIET_SECONDS:
        flat += [int(edge), int(length)]
    return tuple(flat)
