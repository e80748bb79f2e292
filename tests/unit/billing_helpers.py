"""A fixed rate card and session builders for the billing tests.

Rates are chosen so amounts are easy to check by hand: level 2 remote support is
90.00/h, i.e. 1.50 a minute; +50 % makes 2.25 a minute, +100 % makes 3.00.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from relay.billing.facts import SessionFacts
from relay.billing.ratecard import RateCard
from relay.billing.ratecard_parse import parse_rate_card

AMS = ZoneInfo("Europe/Amsterdam")

CARD_TEXT = """\
name = "Test card"
effective_from = 2026-01-01
currency = "EUR"
timezone = "Europe/Amsterdam"

[rates]
remote_support = { 1 = 60.00, 2 = 90.00, 3 = 120.00 }
project = { 1 = 70.00, 2 = 100.00, 3 = 130.00 }
on_call = { 1 = 100.00, 2 = 120.00, 3 = 150.00 }
phone = { 1 = 45.00, 2 = 60.00, 3 = 75.00 }
on_site = { 1 = 80.00, 2 = 95.00, 3 = 110.00 }

[complexity]
standard = 1
complex = 1.5
specialist = 2

[sessions]
merge_window_minutes = 10
idle_threshold_minutes = 5

[rounding.default]
minimum_minutes = 15
increment_minutes = 5
mode = "up"
grace_seconds = 60

[rounding.phone]
minimum_minutes = 5
increment_minutes = 1

[surcharges]
combine = "highest"
urgent_percent = 25

[[surcharges.window]]
name = "evening"
days = ["mon", "tue", "wed", "thu", "fri"]
from = "18:00"
to = "22:00"
percent = 50

[[surcharges.window]]
name = "night"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
from = "22:00"
to = "07:00"
percent = 100

[[surcharges.window]]
name = "weekend"
days = ["sat", "sun"]
from = "00:00"
to = "24:00"
percent = 50

[surcharges.holiday]
calendar = "NL"
percent = 100

[customers.cus-big]
name = "Big Customer BV"
hourly_rate = 70.00
discount_percent = 10

[customers.cus-big.rates]
remote_support = { 2 = 80.00 }
project = 95.00

[customers.cus-big.complexity]
complex = 1.2

[customers.cus-big.surcharges]
evening = 20
urgent = 0

[customers.cus-big.rounding.default]
minimum_minutes = 30

[customers.cus-big.rounding.remote_support]
increment_minutes = 15

[customers.cus-big.sessions]
merge_window_minutes = 30

[customers.cus-down.rounding.default]
mode = "down"
"""


def card(text: str = CARD_TEXT) -> RateCard:
    return parse_rate_card(text, "test.toml")


def local(text: str) -> datetime:
    """An Amsterdam wall time (``2026-01-05 10:00``) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=AMS)


def session(
    start: datetime,
    minutes: float,
    *,
    sid: str = "ses-1",
    customer: str = "cus-1",
    request: str | None = "T-1",
    traffic: Iterable[int] | None = None,
    technician: str = "tec-1",
    agent: str = "agt-1",
) -> SessionFacts:
    """A session of ``minutes`` (real elapsed time) from ``start``; traffic in every
    minute unless ``traffic`` lists the minute indices that had some."""
    start = start.astimezone(UTC)  # wall-clock arithmetic would get DST days wrong
    end = start + timedelta(seconds=round(minutes * 60))
    count = -(-round(minutes * 60) // 60)
    return SessionFacts(
        session_id=sid,
        customer_id=customer,
        technician_id=technician,
        agent_id=agent,
        request=request,
        started_at=start,
        ended_at=end,
        traffic_minutes=frozenset(range(count) if traffic is None else traffic),
    )


def between(start: datetime, end: datetime, **kwargs: object) -> SessionFacts:
    """A session from ``start`` to ``end`` (real elapsed time, DST included)."""
    elapsed = (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 60
    return session(start, elapsed, **kwargs)  # type: ignore[arg-type]
