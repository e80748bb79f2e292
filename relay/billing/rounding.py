"""Billing maths: pure functions, ``Decimal`` money, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


@dataclass(frozen=True)
class RoundingRule:
    minimum_minutes: int = 15
    increment_minutes: int = 5
    mode: str = "up"  # up | nearest | down
    grace_seconds: int = 0


def billable_minutes(actual_seconds: int, rule: RoundingRule) -> int:
    """Minutes to bill for ``actual_seconds`` of work.

    Below the grace period nothing is billed; otherwise time is rounded to the
    increment (per started increment for ``up``; half an increment rounds up for
    ``nearest``) and never below the minimum.
    """
    seconds = max(0, actual_seconds)
    if seconds < rule.grace_seconds or seconds == 0:
        return 0
    step = rule.increment_minutes * 60
    whole, rest = divmod(seconds, step)
    if rule.mode == "up":
        steps = whole + (1 if rest else 0)
    elif rule.mode == "nearest":
        steps = whole + (1 if rest * 2 >= step else 0)
    elif rule.mode == "down":
        steps = whole
    else:
        raise ValueError(f"unknown rounding mode {rule.mode!r}")
    return max(rule.minimum_minutes, steps * rule.increment_minutes)


def amount(minutes: int, hourly_rate: Decimal) -> Decimal:
    """``minutes`` at ``hourly_rate``, rounded half-up to cents once, at the end."""
    return (Decimal(minutes) * hourly_rate / Decimal(60)).quantize(CENT, rounding=ROUND_HALF_UP)
