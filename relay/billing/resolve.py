"""Which rule of the rate card applies to an entry: most specific wins.

Every figure comes back as a :class:`Pick` naming the card key it came from, and
the hourly rate also lists every candidate it considered, most specific first:

1. the customer's rate for this service type at this level,
2. the customer's rate for this service type at every level,
3. the customer's rate for every service,
4. the card's rate for this service type at this level.

Multipliers, discounts, surcharge percentages, rounding and session settings
resolve the same way, field by field: customer (and service type) before card.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from relay.billing.ratecard import (
    COMPLEXITIES,
    HOLIDAY,
    LEVELS,
    SERVICE_TYPES,
    URGENT,
    CustomerAgreement,
    RateCard,
    RoundingPolicy,
    TimeWindow,
)
from relay.billing.rounding import RoundingRule
from shared.errors import UsageError

ROUNDING_FIELDS = ("minimum_minutes", "increment_minutes", "mode", "grace_seconds")


@dataclass(frozen=True)
class Pick:
    """A resolved value and where it came from: a key of the card and the rule's name."""

    value: Any
    key: str
    rule: str

    def to_json(self) -> dict[str, Any]:
        value = str(self.value) if isinstance(self.value, Decimal) else self.value
        return {"value": value, "key": self.key, "rule": self.rule}


@dataclass(frozen=True)
class Candidate:
    key: str
    rule: str
    value: Decimal | None  # None: the card does not set it

    def to_json(self) -> dict[str, Any]:
        value = None if self.value is None else str(self.value)
        return {"key": self.key, "rule": self.rule, "value": value}


@dataclass(frozen=True)
class Resolution:
    customer_id: str
    service_type: str
    level: int
    complexity: str
    base_rate: Pick
    considered: tuple[Candidate, ...]
    multiplier: Pick
    discount_percent: Pick
    rounding: dict[str, Pick]  # by RoundingRule field
    merge_window_minutes: Pick
    idle_threshold_minutes: Pick
    windows: tuple[tuple[TimeWindow, Pick], ...]
    holiday: Pick | None  # None: the card has no holiday surcharge
    urgent: Pick

    @property
    def hourly_rate(self) -> Decimal:
        """Base rate × complexity multiplier, exact (no rounding)."""
        return Decimal(self.base_rate.value) * Decimal(self.multiplier.value)

    @property
    def rounding_rule(self) -> RoundingRule:
        return RoundingRule(**{name: pick.value for name, pick in self.rounding.items()})


def check_context(service_type: str, level: int, complexity: str) -> None:
    """Refuse a service type, level or complexity the card model does not know."""
    if service_type not in SERVICE_TYPES:
        raise UsageError(f"unknown service type {service_type!r}; use {', '.join(SERVICE_TYPES)}")
    if level not in LEVELS:
        raise UsageError(f"technician level must be 1, 2 or 3, not {level!r}")
    if complexity not in COMPLEXITIES:
        raise UsageError(f"unknown complexity {complexity!r}; use {', '.join(COMPLEXITIES)}")


def resolve(
    card: RateCard, customer_id: str, service_type: str, level: int, complexity: str
) -> Resolution:
    """Every rate-card figure for one entry, each with the rule that won."""
    check_context(service_type, level, complexity)
    agreement = card.customers.get(customer_id)
    considered = _rate_candidates(card, agreement, service_type, level)
    winner = next(c for c in considered if c.value is not None)
    merge, idle = session_settings(card, customer_id)
    return Resolution(
        customer_id=customer_id,
        service_type=service_type,
        level=level,
        complexity=complexity,
        base_rate=Pick(winner.value, winner.key, winner.rule),
        considered=considered,
        multiplier=_multiplier(card, agreement, complexity),
        discount_percent=_discount(agreement),
        rounding=_rounding(card, agreement, service_type),
        merge_window_minutes=merge,
        idle_threshold_minutes=idle,
        windows=tuple(
            (w, _surcharge(agreement, w.name, w.percent, f"surcharges.window.{w.name}.percent"))
            for w in card.surcharges.windows
        ),
        holiday=None
        if card.surcharges.holiday is None
        else _surcharge(
            agreement, HOLIDAY, card.surcharges.holiday.percent, "surcharges.holiday.percent"
        ),
        urgent=_surcharge(
            agreement, URGENT, card.surcharges.urgent_percent, "surcharges.urgent_percent"
        ),
    )


def session_settings(card: RateCard, customer_id: str) -> tuple[Pick, Pick]:
    """The reconnect merge window and idle threshold (minutes) for a customer."""
    agreement = card.customers.get(customer_id)
    picks = []
    for name in ("merge_window_minutes", "idle_threshold_minutes"):
        own = None if agreement is None else getattr(agreement.sessions, name)
        if own is not None:
            picks.append(Pick(own, f"{_cust(customer_id)}.sessions.{name}", "customer agreement"))
        else:
            picks.append(Pick(getattr(card.sessions, name), f"sessions.{name}", "rate card"))
    return picks[0], picks[1]


def _cust(customer_id: str) -> str:
    return f"customers.{customer_id}"


def _rate_candidates(
    card: RateCard, agreement: CustomerAgreement | None, service: str, level: int
) -> tuple[Candidate, ...]:
    found: list[Candidate] = []
    if agreement is not None:
        cust = _cust(agreement.customer_id)
        found += [
            Candidate(
                f"{cust}.rates.{service}.{level}",
                "customer agreement: this service type at this level",
                agreement.level_rates.get((service, level)),
            ),
            Candidate(
                f"{cust}.rates.{service}",
                "customer agreement: this service type at every level",
                agreement.service_rates.get(service),
            ),
            Candidate(
                f"{cust}.hourly_rate",
                "customer agreement: every service type",
                agreement.hourly_rate,
            ),
        ]
    found.append(
        Candidate(
            f"rates.{service}.{level}",
            "rate card: service type at this level",
            card.rates[(service, level)],
        )
    )
    return tuple(found)


def _multiplier(card: RateCard, agreement: CustomerAgreement | None, complexity: str) -> Pick:
    if agreement is not None and complexity in agreement.complexity:
        return Pick(
            agreement.complexity[complexity],
            f"{_cust(agreement.customer_id)}.complexity.{complexity}",
            "customer agreement",
        )
    return Pick(card.complexity[complexity], f"complexity.{complexity}", "rate card")


def _discount(agreement: CustomerAgreement | None) -> Pick:
    if agreement is None:
        return Pick(Decimal(0), "", "no customer agreement")
    return Pick(
        agreement.discount_percent,
        f"{_cust(agreement.customer_id)}.discount_percent",
        "customer agreement",
    )


def _surcharge(
    agreement: CustomerAgreement | None, name: str, card_percent: Decimal, card_key: str
) -> Pick:
    if agreement is not None and name in agreement.surcharges:
        key = f"{_cust(agreement.customer_id)}.surcharges.{name}"
        return Pick(agreement.surcharges[name], key, "customer agreement")
    return Pick(card_percent, card_key, "rate card")


def _rounding(card: RateCard, agreement: CustomerAgreement | None, service: str) -> dict[str, Pick]:
    levels: list[tuple[RoundingPolicy | None, str, str]] = []
    if agreement is not None:
        cust = _cust(agreement.customer_id)
        levels += [
            (agreement.rounding.get(service), f"{cust}.rounding.{service}", "customer × service"),
            (agreement.rounding.get("default"), f"{cust}.rounding.default", "customer"),
        ]
    levels += [
        (card.rounding.get(service), f"rounding.{service}", "rate card × service"),
        (card.rounding["default"], "rounding.default", "rate card"),
    ]
    picks: dict[str, Pick] = {}
    for name in ROUNDING_FIELDS:
        for policy, key, rule in levels:
            value = None if policy is None else getattr(policy, name)
            if value is not None:
                picks[name] = Pick(value, f"{key}.{name}", rule)
                break
    return picks
