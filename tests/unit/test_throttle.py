"""Failed-authentication throttle: per identity and address, never a lockout of
others (fake clock)."""

from __future__ import annotations

from relay.core.throttle import Attempt, AuthThrottle, ThrottleLimits, Verdict
from shared.clock import FakeClock

LIMITS = ThrottleLimits(per_pair=3, per_identity=5, per_address=4, window=60, max_keys=100)


def fail(throttle: AuthThrottle, attempt: Attempt, times: int) -> None:
    for _ in range(times):
        throttle.failed(attempt)


def test_an_identity_is_blocked_from_one_address_until_failures_age_out() -> None:
    clock = FakeClock()
    throttle = AuthThrottle(clock, LIMITS)
    stale = Attempt("technician:aaaa", "10.0.0.1")
    for _ in range(3):
        assert throttle.verdict(stale) is Verdict.ALLOW
        throttle.failed(stale)
        clock.advance(10)
    assert throttle.verdict(stale) is Verdict.BLOCK
    # Another identity from the same address, the same identity from elsewhere: not blocked.
    assert throttle.verdict(Attempt("technician:bbbb", "10.0.0.1")) is Verdict.ALLOW
    assert throttle.verdict(Attempt("technician:aaaa", "10.0.0.2")) is Verdict.ALLOW
    clock.advance(31)  # the first failure (t=0) is now older than the window
    assert throttle.verdict(stale) is Verdict.ALLOW


def test_many_addresses_against_one_identity_block_only_that_identity() -> None:
    throttle = AuthThrottle(FakeClock(), LIMITS)
    for i in range(5):
        throttle.failed(Attempt("agent:agt-1", f"10.0.1.{i}"))
    assert throttle.verdict(Attempt("agent:agt-1", "10.0.9.9")) is Verdict.BLOCK
    assert throttle.verdict(Attempt("agent:agt-2", "10.0.1.0")) is Verdict.ALLOW


def test_many_failures_from_one_address_only_slow_it_and_never_block_a_new_identity() -> None:
    throttle = AuthThrottle(FakeClock(), LIMITS)
    for i in range(50):  # a guesser: a different token every time
        throttle.failed(Attempt(f"technician:{i:04}", "10.0.0.1"))
    assert throttle.verdict(Attempt("technician:good", "10.0.0.1")) is Verdict.SLOW
    assert throttle.verdict(Attempt("technician:good", "10.0.0.2")) is Verdict.ALLOW


def test_a_shared_identity_is_counted_per_address_only() -> None:
    throttle = AuthThrottle(FakeClock(), LIMITS)
    for i in range(20):  # wrong support codes from many addresses, two each
        fail(throttle, Attempt("support-code", f"10.0.2.{i}", shared=True), 2)
    # Nobody is locked out of support codes by the others' guesses...
    assert throttle.verdict(Attempt("support-code", "10.0.3.1", shared=True)) is Verdict.ALLOW
    # ...but one address that guesses too often is.
    guesser = Attempt("support-code", "10.0.2.0", shared=True)
    throttle.failed(guesser)
    assert throttle.verdict(guesser) is Verdict.BLOCK


def test_memory_is_bounded_and_the_stalest_entries_go_first() -> None:
    clock = FakeClock()
    limits = ThrottleLimits(per_pair=1, per_identity=1, per_address=1, max_keys=100)
    throttle = AuthThrottle(clock, limits)
    for i in range(1000):
        throttle.failed(Attempt(f"agent:{i}", f"10.{i // 256}.{i % 256}.1"))
        clock.advance(0.01)
    assert max(len(throttle.pairs), len(throttle.identities), len(throttle.addresses)) <= 100
    assert throttle.verdict(Attempt("agent:999", "10.3.231.1")) is Verdict.BLOCK
    assert throttle.verdict(Attempt("agent:0", "10.0.0.1")) is Verdict.ALLOW  # evicted


def test_a_key_that_fails_again_is_kept_over_staler_ones() -> None:
    clock = FakeClock()
    limits = ThrottleLimits(per_pair=2, per_identity=100, per_address=100, max_keys=3)
    throttle = AuthThrottle(clock, limits)
    hammer = Attempt("agent:x", "10.0.0.9")
    throttle.failed(hammer)
    for i in range(5):
        throttle.failed(Attempt("agent:x", f"10.0.0.{i}"))
        throttle.failed(hammer)  # it failed most recently, so it is not the one evicted
    assert throttle.verdict(hammer) is Verdict.BLOCK


def test_times_kept_per_key_are_bounded_by_the_limit() -> None:
    throttle = AuthThrottle(FakeClock(), LIMITS)
    stale = Attempt("agent:a", "10.0.0.1")
    fail(throttle, stale, 10_000)
    assert throttle.pairs.count("10.0.0.1\0agent:a") == LIMITS.per_pair
