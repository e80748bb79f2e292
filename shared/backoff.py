"""Reconnect delays: exponential with full jitter, capped (pure)."""

from __future__ import annotations

import random


def full_jitter(
    attempt: int, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None
) -> float:
    """Delay before reconnect ``attempt`` (0-based): uniform in [0, min(cap, base·2^n)].

    Full jitter spreads a reconnect storm of thousands of agents evenly instead of
    in waves (websockets' own loop has no jitter after the first try).
    """
    ceiling = min(cap, base * (2 ** min(attempt, 32)))
    return (rng or random).uniform(0, ceiling)
