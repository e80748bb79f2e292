"""The rate card: what the office charges, as frozen data (no parsing, no I/O).

A card is written as TOML by the office (see ``sample_ratecard.toml``), read with
:func:`relay.billing.ratecard_parse.parse_rate_card` and written back with
:func:`relay.billing.ratecard_export.to_toml`. Cards are versioned by their
``effective_from`` date; an entry records the card it used by date and digest.

Partial settings (``None`` fields) inherit from the next less specific level, so
"most specific wins" holds field by field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from shared.errors import ConfigError

SERVICE_TYPES = ("remote_support", "project", "on_call", "phone", "on_site")
LEVELS = (1, 2, 3)
COMPLEXITIES = ("standard", "complex", "specialist")
ROUNDING_MODES = ("up", "nearest", "down")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
COMBINE_MODES = ("highest", "sum")
HOLIDAY = "holiday"  # reserved surcharge names
URGENT = "urgent"


@dataclass(frozen=True)
class RoundingPolicy:
    """Rounding settings at one level; ``None`` inherits from the level below."""

    minimum_minutes: int | None = None
    increment_minutes: int | None = None
    mode: str | None = None
    grace_seconds: int | None = None


@dataclass(frozen=True)
class SessionPolicy:
    """Reconnect merge window and idle threshold; ``None`` inherits."""

    merge_window_minutes: int | None = None
    idle_threshold_minutes: int | None = None


@dataclass(frozen=True)
class TimeWindow:
    """A surcharge window in the company's wall-clock time.

    ``days`` name the day a window *starts* on; a window whose end is not after
    its start runs past midnight into the next day (``22:00``–``07:00``).
    Times are minutes of the day; ``end_minute`` may be 1440 (``24:00``).
    """

    name: str
    days: tuple[int, ...]
    start_minute: int
    end_minute: int
    percent: Decimal

    @property
    def wraps(self) -> bool:
        return self.end_minute <= self.start_minute

    def covers(self, weekday: int, minute_of_day: int) -> bool:
        """Whether wall time ``minute_of_day`` on ``weekday`` falls in the window."""
        if not self.wraps:
            return weekday in self.days and self.start_minute <= minute_of_day < self.end_minute
        if weekday in self.days and minute_of_day >= self.start_minute:
            return True
        return (weekday - 1) % 7 in self.days and minute_of_day < self.end_minute


@dataclass(frozen=True)
class HolidaySurcharge:
    percent: Decimal
    calendar: str = "NL"  # "NL" or "none" (only extra_dates)
    observe: tuple[str, ...] = ()
    extra_dates: tuple[date, ...] = ()


@dataclass(frozen=True)
class Surcharges:
    windows: tuple[TimeWindow, ...] = ()
    holiday: HolidaySurcharge | None = None
    urgent_percent: Decimal = Decimal(0)
    combine: str = "highest"  # how overlapping time windows combine; urgency always adds


@dataclass(frozen=True)
class CustomerAgreement:
    """What one customer agreed on; anything unset falls back to the card."""

    customer_id: str
    name: str = ""
    hourly_rate: Decimal | None = None  # any service, any level
    service_rates: dict[str, Decimal] = field(default_factory=dict)  # any level
    level_rates: dict[tuple[str, int], Decimal] = field(default_factory=dict)
    complexity: dict[str, Decimal] = field(default_factory=dict)
    surcharges: dict[str, Decimal] = field(default_factory=dict)  # name -> percent
    discount_percent: Decimal = Decimal(0)
    rounding: dict[str, RoundingPolicy] = field(default_factory=dict)  # "default" | service
    sessions: SessionPolicy = field(default_factory=SessionPolicy)


@dataclass(frozen=True)
class RateCard:
    effective_from: date
    rates: dict[tuple[str, int], Decimal]  # complete: every service type × level
    complexity: dict[str, Decimal]  # complete: every complexity
    rounding: dict[str, RoundingPolicy]  # "default" is complete
    sessions: SessionPolicy  # complete
    surcharges: Surcharges = field(default_factory=Surcharges)
    customers: dict[str, CustomerAgreement] = field(default_factory=dict)
    name: str = ""
    currency: str = "EUR"
    timezone: str = "Europe/Amsterdam"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def select_card(cards: Iterable[RateCard], at: datetime) -> RateCard:
    """The card in force at ``at``: the latest ``effective_from`` on or before the
    local date of ``at`` in that card's time zone."""
    best: RateCard | None = None
    for card in cards:
        if card.effective_from <= at.astimezone(card.zone).date() and (
            best is None or card.effective_from > best.effective_from
        ):
            best = card
    if best is None:
        raise ConfigError(f"no rate card is in force on {at.date().isoformat()}; import one")
    return best
