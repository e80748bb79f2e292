"""Billing maths: minimum, increment, modes, grace, cents."""

from __future__ import annotations

from decimal import Decimal

import pytest

from relay.billing.rounding import RoundingRule, amount, billable_minutes

UP = RoundingRule(minimum_minutes=15, increment_minutes=5, mode="up")


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [(0, 0), (1, 15), (60, 15), (15 * 60, 15), (15 * 60 + 1, 20), (20 * 60, 20), (61 * 60, 65)],
)
def test_up_bills_per_started_increment_above_the_minimum(seconds: int, minutes: int) -> None:
    assert billable_minutes(seconds, UP) == minutes


@pytest.mark.parametrize(
    ("mode", "seconds", "minutes"),
    [
        ("nearest", 22 * 60 + 29, 20),
        ("nearest", 22 * 60 + 30, 25),  # exactly half an increment rounds up
        ("down", 24 * 60 + 59, 20),
        ("down", 3 * 60, 15),  # never below the minimum
    ],
)
def test_other_modes(mode: str, seconds: int, minutes: int) -> None:
    assert billable_minutes(seconds, RoundingRule(15, 5, mode)) == minutes


def test_grace_period_bills_nothing() -> None:
    rule = RoundingRule(15, 5, "up", grace_seconds=30)
    assert billable_minutes(29, rule) == 0
    assert billable_minutes(30, rule) == 15


def test_negative_durations_never_bill() -> None:
    assert billable_minutes(-500, UP) == 0


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown rounding mode"):
        billable_minutes(100, RoundingRule(15, 5, "sideways"))


@pytest.mark.parametrize(
    ("minutes", "rate", "expected"),
    [
        (15, Decimal("90.00"), Decimal("22.50")),
        (20, Decimal("95.00"), Decimal("31.67")),  # 31.666… half-up to cents at the end
        (1, Decimal("0.30"), Decimal("0.01")),  # 0.005 rounds half up
        (0, Decimal("120"), Decimal("0.00")),
    ],
)
def test_amount_rounds_half_up_to_cents_once(
    minutes: int, rate: Decimal, expected: Decimal
) -> None:
    assert amount(minutes, rate) == expected
