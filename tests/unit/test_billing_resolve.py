"""Rate resolution: the most specific rule wins, and the explanation says which."""

from __future__ import annotations

from decimal import Decimal

import pytest

from relay.billing.resolve import resolve
from relay.billing.rounding import RoundingRule
from shared.errors import UsageError
from tests.unit.billing_helpers import card

CARD = card()


@pytest.mark.parametrize(
    ("customer", "service", "level", "rate", "key"),
    [
        ("cus-1", "remote_support", 2, "90.00", "rates.remote_support.2"),
        ("cus-big", "remote_support", 2, "80.00", "customers.cus-big.rates.remote_support.2"),
        ("cus-big", "project", 3, "95.00", "customers.cus-big.rates.project"),
        ("cus-big", "remote_support", 3, "70.00", "customers.cus-big.hourly_rate"),
        ("cus-big", "phone", 1, "70.00", "customers.cus-big.hourly_rate"),
        ("cus-down", "phone", 1, "45.00", "rates.phone.1"),
    ],
)
def test_most_specific_rate_wins(
    customer: str, service: str, level: int, rate: str, key: str
) -> None:
    res = resolve(CARD, customer, service, level, "standard")
    assert res.base_rate.value == Decimal(rate)
    assert res.base_rate.key == key


def test_every_candidate_is_listed_most_specific_first() -> None:
    res = resolve(CARD, "cus-big", "remote_support", 3, "standard")
    assert [(c.key, c.value) for c in res.considered] == [
        ("customers.cus-big.rates.remote_support.3", None),
        ("customers.cus-big.rates.remote_support", None),
        ("customers.cus-big.hourly_rate", Decimal("70.00")),
        ("rates.remote_support.3", Decimal("120.00")),
    ]
    assert res.base_rate.rule == "customer agreement: every service type"


def test_complexity_multiplier_and_discount() -> None:
    card_rule = resolve(CARD, "cus-1", "remote_support", 2, "complex")
    assert card_rule.hourly_rate == Decimal("135.000")
    assert card_rule.multiplier.key == "complexity.complex"
    assert card_rule.discount_percent.value == 0
    own = resolve(CARD, "cus-big", "remote_support", 2, "complex")
    assert own.hourly_rate == Decimal("96.00")  # 80.00 × 1.2, not rounded
    assert own.multiplier.key == "customers.cus-big.complexity.complex"
    assert own.discount_percent.value == Decimal(10)
    # The customer did not agree a specialist multiplier: the card's applies.
    assert resolve(CARD, "cus-big", "remote_support", 2, "specialist").multiplier.value == 2


def test_rounding_resolves_field_by_field() -> None:
    res = resolve(CARD, "cus-big", "remote_support", 2, "standard")
    assert res.rounding_rule == RoundingRule(30, 15, "up", 60)
    assert {name: pick.key for name, pick in res.rounding.items()} == {
        "minimum_minutes": "customers.cus-big.rounding.default.minimum_minutes",
        "increment_minutes": "customers.cus-big.rounding.remote_support.increment_minutes",
        "mode": "rounding.default.mode",
        "grace_seconds": "rounding.default.grace_seconds",
    }
    assert resolve(CARD, "cus-1", "phone", 2, "standard").rounding_rule == RoundingRule(
        5, 1, "up", 60
    )
    assert resolve(CARD, "cus-big", "phone", 2, "standard").rounding_rule == RoundingRule(
        30, 1, "up", 60
    )  # customer default beats the card's phone rule


def test_surcharges_and_sessions_follow_the_customer() -> None:
    res = resolve(CARD, "cus-big", "remote_support", 2, "standard")
    percents = {w.name: p.value for w, p in res.windows}
    assert percents == {"evening": Decimal(20), "night": Decimal(100), "weekend": Decimal(50)}
    assert res.urgent.value == 0 and res.urgent.key == "customers.cus-big.surcharges.urgent"
    assert res.holiday is not None and res.holiday.value == Decimal(100)
    assert res.merge_window_minutes.value == 30
    assert res.idle_threshold_minutes.key == "sessions.idle_threshold_minutes"


@pytest.mark.parametrize(
    ("service", "level", "complexity", "problem"),
    [
        ("remote", 2, "standard", "unknown service type 'remote'"),
        ("phone", 4, "standard", "level must be 1, 2 or 3"),
        ("phone", 2, "hard", "unknown complexity 'hard'"),
    ],
)
def test_unknown_context_is_refused(
    service: str, level: int, complexity: str, problem: str
) -> None:
    with pytest.raises(UsageError, match=problem):
        resolve(CARD, "cus-1", service, level, complexity)
