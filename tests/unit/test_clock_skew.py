"""Clock-skew refusals say the clocks differ and by how much (issue 10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.clock import CERT_CLOCK_SKEW, certificate_clock_problem, clock_difference

RELAY = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
AFTER, BEFORE = RELAY - CERT_CLOCK_SKEW, RELAY + timedelta(minutes=10)


def problem(offset: timedelta) -> str | None:
    return certificate_clock_problem(RELAY + offset, RELAY, AFTER, BEFORE, "the client")


def test_within_the_tolerance_is_no_problem() -> None:
    for offset in (timedelta(0), -CERT_CLOCK_SKEW, timedelta(minutes=9, seconds=59)):
        assert problem(offset) is None


def test_a_clock_behind_says_by_how_much() -> None:
    assert problem(-timedelta(minutes=5, seconds=3)) == (
        "the clocks differ: the client's clock is 5 min 3 s behind the relay's, more than "
        "the session certificate allows; set the clock of the client"
    )


def test_a_clock_ahead_says_by_how_much() -> None:
    found = problem(timedelta(days=1, hours=2, seconds=7))
    assert found is not None
    assert "the client's clock is 1 d 2 h 0 min 7 s ahead of the relay's" in found


def test_clock_difference_in_words() -> None:
    assert clock_difference(RELAY, RELAY) == "this computer's clock agrees with the relay's"
    assert clock_difference(RELAY + timedelta(seconds=59), RELAY) == (
        "this computer's clock is 59 s ahead of the relay's"
    )
