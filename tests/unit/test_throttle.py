"""Failed-authentication throttle (fake clock)."""

from __future__ import annotations

from relay.core.throttle import AuthThrottle
from shared.clock import FakeClock


def test_blocks_after_the_limit_until_failures_age_out() -> None:
    clock = FakeClock()
    throttle = AuthThrottle(clock, limit=3, window=60)
    for _ in range(3):
        assert not throttle.blocked("10.0.0.1")
        throttle.failed("10.0.0.1")
        clock.advance(10)
    assert throttle.blocked("10.0.0.1")
    assert not throttle.blocked("10.0.0.2")  # other peers are unaffected
    clock.advance(31)  # the first failure (t=0) is now older than the window
    assert not throttle.blocked("10.0.0.1")


def test_memory_is_bounded() -> None:
    clock = FakeClock()
    throttle = AuthThrottle(clock, limit=1, window=60, max_keys=100)
    for i in range(1000):
        throttle.failed(f"peer-{i}")
    assert len(throttle._failures) <= 100
    assert throttle.blocked("peer-999")
