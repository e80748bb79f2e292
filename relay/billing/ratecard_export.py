"""Write a rate card back as TOML, in the layout of ``sample_ratecard.toml``.

The output is canonical (fixed order, every inherited card-level value spelled
out), so ``parse_rate_card(to_toml(card)) == card`` and :func:`card_digest`
identifies a card by content.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal

from relay.billing.ratecard import (
    COMPLEXITIES,
    DAYS,
    LEVELS,
    SERVICE_TYPES,
    CustomerAgreement,
    RateCard,
    RoundingPolicy,
    SessionPolicy,
    TimeWindow,
)

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def to_toml(card: RateCard) -> str:
    """The card as TOML text that :func:`parse_rate_card` reads back to an equal card."""
    out = [
        "# Quarkpulse rate card",
        f"name = {_str(card.name)}",
        f"effective_from = {card.effective_from.isoformat()}",
        f"currency = {_str(card.currency)}",
        f"timezone = {_str(card.timezone)}",
        "",
        "[rates]",
    ]
    for service in SERVICE_TYPES:
        levels = ", ".join(f"{lv} = {_num(card.rates[(service, lv)])}" for lv in LEVELS)
        out.append(f"{service} = {{ {levels} }}")
    out += ["", "[complexity]"]
    out += [f"{name} = {_num(card.complexity[name])}" for name in COMPLEXITIES]
    out += _sessions("sessions", card.sessions)
    out += _rounding("rounding", card.rounding)
    out += _surcharges(card)
    for cid in sorted(card.customers):
        out += _customer(card.customers[cid])
    return "\n".join(out) + "\n"


def card_digest(card: RateCard) -> str:
    """A short content hash of the card, recorded in every entry computed with it."""
    return hashlib.sha256(to_toml(card).encode()).hexdigest()[:16]


def _str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def _key(key: str) -> str:
    return key if _BARE.match(key) else _str(key)


def _num(value: Decimal) -> str:
    return format(value, "f")


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _sessions(prefix: str, policy: SessionPolicy) -> list[str]:
    lines = []
    if policy.merge_window_minutes is not None:
        lines.append(f"merge_window_minutes = {policy.merge_window_minutes}")
    if policy.idle_threshold_minutes is not None:
        lines.append(f"idle_threshold_minutes = {policy.idle_threshold_minutes}")
    return ["", f"[{prefix}]", *lines] if lines else []


def _rounding(prefix: str, policies: dict[str, RoundingPolicy]) -> list[str]:
    out: list[str] = []
    for level in ("default", *SERVICE_TYPES):
        policy = policies.get(level)
        if policy is None:
            continue
        out += ["", f"[{prefix}.{level}]"]
        for name in ("minimum_minutes", "increment_minutes", "mode", "grace_seconds"):
            value = getattr(policy, name)
            if value is not None:
                out.append(f"{name} = {_str(value) if isinstance(value, str) else value}")
    return out


def _window(window: TimeWindow) -> list[str]:
    days = ", ".join(_str(DAYS[d]) for d in window.days)
    return [
        "",
        "[[surcharges.window]]",
        f"name = {_str(window.name)}",
        f"days = [{days}]",
        f'from = "{_clock(window.start_minute)}"',
        f'to = "{_clock(window.end_minute)}"',
        f"percent = {_num(window.percent)}",
    ]


def _surcharges(card: RateCard) -> list[str]:
    sur = card.surcharges
    out = [
        "",
        "[surcharges]",
        f"combine = {_str(sur.combine)}",
        f"urgent_percent = {_num(sur.urgent_percent)}",
    ]
    for window in sur.windows:
        out += _window(window)
    if sur.holiday is not None:
        hol = sur.holiday
        out += [
            "",
            "[surcharges.holiday]",
            f"calendar = {_str(hol.calendar)}",
            f"percent = {_num(hol.percent)}",
            f"observe = [{', '.join(_str(n) for n in hol.observe)}]",
            f"extra_dates = [{', '.join(d.isoformat() for d in hol.extra_dates)}]",
        ]
    return out


def _customer(agreement: CustomerAgreement) -> list[str]:
    prefix = f"customers.{_key(agreement.customer_id)}"
    out = ["", f"[{prefix}]", f"name = {_str(agreement.name)}"]
    if agreement.hourly_rate is not None:
        out.append(f"hourly_rate = {_num(agreement.hourly_rate)}")
    out.append(f"discount_percent = {_num(agreement.discount_percent)}")
    rates: list[str] = []
    for service in SERVICE_TYPES:
        parts = [
            f"{lv} = {_num(agreement.level_rates[(service, lv)])}"
            for lv in LEVELS
            if (service, lv) in agreement.level_rates
        ]
        if service in agreement.service_rates:
            every = _num(agreement.service_rates[service])
            if not parts:
                rates.append(f"{service} = {every}")
                continue
            parts.insert(0, f"all = {every}")
        if parts:
            rates.append(f"{service} = {{ {', '.join(parts)} }}")
    if rates:
        out += ["", f"[{prefix}.rates]", *rates]
    if agreement.complexity:
        out += ["", f"[{prefix}.complexity]"]
        out += [
            f"{n} = {_num(agreement.complexity[n])}"
            for n in COMPLEXITIES
            if n in agreement.complexity
        ]
    if agreement.surcharges:
        out += ["", f"[{prefix}.surcharges]"]
        out += [f"{_key(n)} = {_num(p)}" for n, p in sorted(agreement.surcharges.items())]
    out += _rounding(f"{prefix}.rounding", agreement.rounding)
    out += _sessions(f"{prefix}.sessions", agreement.sessions)
    return out
