"""Slow down guessing: failed authentications per peer address in a sliding window."""

from __future__ import annotations

from collections import deque

from shared.clock import Clock


class AuthThrottle:
    """Counts failures per key (the peer's address) over the last ``window`` seconds.

    The relay refuses further attempts from a key that reached ``limit`` failures
    until old failures age out. Memory is bounded: at most ``max_keys`` keys are
    tracked, the stalest dropped first.
    """

    def __init__(self, clock: Clock, limit: int, window: float = 60.0, max_keys: int = 10_000):
        self._clock = clock
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        cutoff = self._clock.monotonic() - self._window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def blocked(self, key: str) -> bool:
        """Whether ``key`` has used up its failures for now."""
        return len(self._recent(key)) >= self._limit

    def failed(self, key: str) -> None:
        """Record one failure for ``key``."""
        times = self._recent(key)
        if key not in self._failures:
            if len(self._failures) >= self._max_keys:
                self._failures.pop(next(iter(self._failures)))
            self._failures[key] = times
        times.append(self._clock.monotonic())
