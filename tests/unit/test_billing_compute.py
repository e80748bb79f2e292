"""Whole entries with exact amounts: windows, midnight, DST, holidays, urgency,
agreements, idle time, merged reconnects, and the explanation of each step.

Level 2 remote support on the test card is 90.00/h = 1.50 a minute.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from relay.billing.compute import Computation, compute_entry, recompute
from relay.billing.entries import entry_from_computation
from relay.billing.facts import EntryContext, SessionFacts
from shared.errors import ConfigError, UsageError
from tests.unit.billing_helpers import CARD_TEXT, between, card, local, session

CARD = card()
L2 = EntryContext(technician_level=2)
NIGHT_BLOCK = (
    '[[surcharges.window]]\nname = "night"\n'
    'days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
    'from = "22:00"\nto = "07:00"\npercent = 100\n\n'
)


def compute(*sessions: SessionFacts, context: EntryContext = L2, text: str = "") -> Computation:
    return compute_entry(sessions, card(text) if text else CARD, context)


def test_plain_weekday_session() -> None:
    c = compute(session(local("2026-01-05 10:00"), 20))
    assert (c.actual_seconds, c.billable_minutes, c.amount) == (1200, 20, Decimal("30.00"))
    assert c.hourly_rate == Decimal("90.00")


def test_minimum_and_started_increment() -> None:
    assert compute(session(local("2026-01-05 10:00"), 3)).amount == Decimal("22.50")
    c = compute(session(local("2026-01-05 10:00"), 20 + 1 / 60))
    assert (c.billable_minutes, c.amount) == (25, Decimal("37.50"))


def test_a_failed_connect_bills_nothing() -> None:
    c = compute(session(local("2026-01-05 10:00"), 40 / 60))
    assert (c.billable_minutes, c.amount) == (0, Decimal("0.00"))
    assert c.explanation["sessions"]["failed_connects"][0]["seconds"] == 40
    assert "shorter than the grace period: nothing billed" in c.explain_text()


def test_idle_minutes_beyond_the_threshold_are_excluded_and_shown() -> None:
    c = compute(session(local("2026-01-05 10:00"), 40, traffic=[*range(10), *range(30, 40)]))
    assert (c.span_seconds, c.idle_excluded_seconds, c.actual_seconds) == (2400, 900, 1500)
    assert (c.billable_minutes, c.amount) == (25, Decimal("37.50"))
    assert c.explanation["idle"]["excluded"] == [
        {"from": "2026-01-05T09:15:00Z", "to": "2026-01-05T09:30:00Z", "seconds": 900}
    ]
    assert "15 min beyond the 5-minute threshold excluded" in c.explain_text()


def test_across_midnight_from_weekend_into_monday() -> None:
    no_night = CARD_TEXT.replace(NIGHT_BLOCK, "")
    assert no_night != CARD_TEXT
    c = compute(between(local("2026-01-11 23:50"), local("2026-01-12 00:20")), text=no_night)
    # Sunday 10 min at +50 % (2.25/min) + Monday 20 min plain (1.50/min).
    assert (c.billable_minutes, c.amount) == (30, Decimal("52.50"))
    assert [(b["windows"], b["billed_seconds"]) for b in c.explanation["surcharges"]["billed"]] == [
        (["weekend"], 600),
        ([], 1200),
    ]


def test_across_midnight_into_a_holiday_highest_or_sum() -> None:
    s = between(local("2026-12-24 23:45"), local("2026-12-25 00:15"))
    assert compute(s).amount == Decimal("90.00")  # night +100 % throughout
    summed = compute(s, text=CARD_TEXT.replace('combine = "highest"', 'combine = "sum"'))
    # 15 min night (3.00/min) + 15 min night and Christmas (+200 %, 4.50/min).
    assert summed.amount == Decimal("112.50")


def test_spring_dst_change_bills_the_real_hour() -> None:
    # 2026-03-29 01:30-03:30 on the wall clock is one real hour (02:00 CET -> 03:00 CEST).
    c = compute(between(local("2026-03-29 01:30"), local("2026-03-29 03:30")))
    assert (c.actual_seconds, c.billable_minutes, c.amount) == (3600, 60, Decimal("180.00"))
    seg = c.explanation["surcharges"]["segments"]
    assert (seg[0]["local_from"], seg[-1]["local_to"]) == (
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:30:00+02:00",
    )


def test_spring_dst_change_moves_the_window_edge() -> None:
    # 06:30-07:30 CEST: half night (+100 %), half weekend (+50 %).
    c = compute(between(local("2026-03-29 06:30"), local("2026-03-29 07:30")))
    assert c.amount == Decimal("157.50")  # 30 x 3.00 + 30 x 2.25; a fixed +01:00 gives 180.00


def test_autumn_dst_change_bills_the_repeated_hour() -> None:
    # 2026-10-25 01:30 CEST to 03:30 CET is three real hours, all night (+100 %).
    c = compute(between(local("2026-10-25 01:30"), local("2026-10-25 03:30")))
    assert (c.actual_seconds, c.billable_minutes, c.amount) == (10800, 180, Decimal("540.00"))
    c = compute(between(local("2026-10-25 06:30"), local("2026-10-25 07:30")))
    assert c.amount == Decimal("157.50")  # a fixed +02:00 would give 135.00


@pytest.mark.parametrize(
    ("start", "minutes", "amount", "holiday"),
    [
        ("2026-04-27 10:00", 30, "90.00", "kings_day"),  # Monday, +100 %
        ("2026-12-25 14:00", 45, "135.00", "christmas_day"),  # Friday, +100 %
        ("2026-04-26 10:00", 30, "67.50", None),  # the Sunday before: weekend +50 %
        ("2026-04-28 10:00", 30, "45.00", None),  # the Tuesday after: plain
    ],
)
def test_dutch_public_holidays(start: str, minutes: int, amount: str, holiday: str | None) -> None:
    c = compute(session(local(start), minutes))
    assert c.amount == Decimal(amount)
    assert c.explanation["surcharges"]["segments"][0]["holiday"] == holiday


def test_urgency_adds_to_every_minute() -> None:
    urgent = EntryContext(2, urgent=True)
    assert compute(session(local("2026-01-05 10:00"), 20), context=urgent).amount == Decimal(
        "37.50"
    )  # +25 %
    evening = compute(session(local("2026-01-05 18:00"), 20), context=urgent)
    assert evening.amount == Decimal("52.50")  # +50 % + 25 %


def test_rounding_adds_time_at_the_lowest_surcharge() -> None:
    # 17:50-18:02: 10 min plain, 2 min evening; 3 min rounding surplus at plain.
    c = compute(session(local("2026-01-05 17:50"), 12))
    assert (c.billable_minutes, c.amount) == (15, Decimal("24.00"))  # 13 x 1.50 + 2 x 2.25
    assert c.explanation["surcharges"]["rounding_adjustment_seconds"] == 180
    assert "Rounding adds 3 min 00 s, billed at the entry's lowest surcharge" in c.explain_text()


def test_customer_agreement_rates_rounding_surcharges_and_discount() -> None:
    s = session(local("2026-01-05 18:00"), 20, customer="cus-big")
    c = compute(s, context=EntryContext(2, "remote_support", "complex", urgent=True))
    # 80.00 x 1.2 = 96.00/h; minimum 30 min; evening +20 %; urgent 0 %; discount 10 %.
    assert c.hourly_rate == Decimal("96.00")
    assert c.billable_minutes == 30
    assert c.amount == Decimal("51.84")  # 30/60 x 96.00 x 1.20 x 0.90
    text = c.explain_text()
    assert "customers.cus-big.rates.remote_support.2" in text
    assert "less specific, not used: customers.cus-big.hourly_rate = 70.00" in text
    assert "less specific, not used: rates.remote_support.2 = 90.00" in text
    project = compute(s, context=EntryContext(3, "project")).explain_text()
    assert "more specific, not set: customers.cus-big.rates.project.3" in project
    assert "Discount: 10 % (customer agreement: customers.cus-big.discount_percent)" in text


def test_phone_rounding_per_service_type() -> None:
    c = compute(session(local("2026-01-05 10:00"), 3.5), context=EntryContext(2, "phone"))
    assert (c.billable_minutes, c.amount) == (5, Decimal("5.00"))  # 60.00/h, minimum 5


def test_reconnects_are_one_entry_and_the_minimum_is_charged_once() -> None:
    a = session(local("2026-01-05 10:00"), 5, sid="a")
    b = session(local("2026-01-05 10:08"), 5, sid="b")
    merged = compute(a, b)
    # One piece of work from 10:00 to 10:13: the 3 minutes between count as work.
    assert (merged.actual_seconds, merged.billable_minutes, merged.amount) == (
        780,
        15,
        Decimal("22.50"),
    )
    assert merged.session_ids == ("a", "b")
    assert (compute(a).amount, compute(b).amount) == (Decimal("22.50"), Decimal("22.50"))
    assert "Merged 2 sessions: gaps 3 min 00 s" in merged.explain_text()
    assert "between sessions 3 min 00 s: counted as work" in merged.explain_text()


def test_time_between_reconnects_counts_up_to_the_idle_threshold() -> None:
    a = session(local("2026-01-05 10:00"), 19, sid="a", customer="cus-down")
    b = session(local("2026-01-05 10:27"), 19, sid="b", customer="cus-down")
    c = compute(a, b)
    # 19 + 5 (of the 8 minutes between, the idle threshold) + 19 = 43 min, rounded
    # down once in 5-minute steps for this customer.
    assert (c.actual_seconds, c.idle_excluded_seconds) == (43 * 60, 3 * 60)
    assert (c.billable_minutes, c.amount) == (40, Decimal("60.00"))
    assert c.explanation["merge"]["between"][0]["kept_seconds"] == 300
    assert "3 min 00 s beyond the idle threshold excluded" in c.explain_text()


def test_short_reconnects_together_pass_the_grace_period() -> None:
    # Ten 3-second commands over 5 minutes: each alone is under the 60 s grace.
    starts = [local("2026-01-05 10:00") + timedelta(seconds=30 * i) for i in range(10)]
    fixes = [session(t, 3 / 60, sid=f"s{i}") for i, t in enumerate(starts)]
    assert compute(fixes[0]).billable_minutes == 0
    c = compute(*fixes)
    assert c.actual_seconds == 273  # first start to last end: one piece of work
    assert (c.billable_minutes, c.amount) == (15, Decimal("22.50"))  # minimum, once


def test_overlapping_sessions_bill_their_time_once() -> None:
    a = session(local("2026-01-05 10:00"), 30, sid="a")
    b = session(local("2026-01-05 10:10"), 10, sid="b")
    assert compute(a, b).actual_seconds == 1800


def test_sessions_of_different_work_are_refused() -> None:
    a = session(local("2026-01-05 10:00"), 5, sid="a")
    b = session(local("2026-01-05 10:08"), 5, sid="b", request="T-2")
    with pytest.raises(UsageError, match="must share"):
        compute(a, b)
    with pytest.raises(UsageError, match="twice"):
        compute(a, a)
    with pytest.raises(UsageError, match="at least one session"):
        compute()


def test_explanation_is_json_and_recomputes_to_the_same_amount() -> None:
    a = session(local("2026-03-29 01:30"), 40, sid="a", traffic=[0, 1, 2, 20, 21])
    b = session(local("2026-03-29 03:15"), 30, sid="b")
    c = compute(a, b, context=EntryContext(3, "on_call", "specialist", urgent=True))
    stored = json.loads(json.dumps(c.explanation))
    again = recompute(stored, CARD)
    assert (again.amount, again.billable_minutes, again.explanation) == (
        c.amount,
        c.billable_minutes,
        c.explanation,
    )
    with pytest.raises(ConfigError, match="computed with rate card"):
        recompute(stored, card(CARD_TEXT.replace("2 = 90.00", "2 = 91.00")))


def test_explanation_text_walks_every_step() -> None:
    c = compute(session(local("2026-03-29 01:30"), 60, traffic=[*range(10), *range(30, 60)]))
    text = c.explain_text()
    for expected in (
        "Rate card 'Test card' effective 2026-01-01",
        "idle minutes 10-29 (20 min): 15 min beyond the 5-minute threshold excluded",
        "Time: 60 min 00 s in sessions - 15 min 00 s idle excluded = 45 min 00 s actual",
        "-> 45 min",
        "Rate: EUR 90.00/h (rate card: service type at this level: rates.remote_support.2)",
        "Sun 2026-03-29 03:00:00+02:00 to Sun 2026-03-29 03:30:00+02:00: 30 min 00 s night",
        "= EUR 135.00 (rounded half-up to cents)",
    ):
        assert expected in text, expected


def test_entry_record_from_a_computation() -> None:
    c = compute(session(local("2026-01-05 10:00"), 20, sid="ses-9"))
    created = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    entry = entry_from_computation(c, "ent-1", created)
    assert entry.session_ids == ("ses-9",)
    assert (entry.amount, entry.billable_minutes, entry.status) == (Decimal("30.00"), 20, "draft")
    assert entry.started_at == local("2026-01-05 10:00")
    assert entry.ended_at - entry.started_at == timedelta(minutes=20)
    assert entry.request == "T-1" and entry.details["card"]["digest"] == c.card_digest


@pytest.mark.parametrize(
    ("mode", "minutes", "billed"),
    [
        ("up", 22.5, 25),
        ("nearest", 22.4, 20),
        ("nearest", 22.5, 25),  # half an increment rounds up
        ("down", 24.9, 20),
        ("down", 3, 15),  # never below the minimum
    ],
)
def test_rounding_modes_in_an_entry(mode: str, minutes: float, billed: int) -> None:
    text = CARD_TEXT.replace('mode = "up"', f'mode = "{mode}"')
    c = compute(session(local("2026-01-05 10:00"), minutes), text=text)
    assert c.billable_minutes == billed
    assert c.amount == Decimal(billed) * Decimal("1.50")
    assert c.explanation["rounding"]["rule"]["mode"]["key"] == "rounding.default.mode"


def test_rounding_down_takes_time_off_the_dearest_window() -> None:
    # Mon 17:55-18:19:54 rounds down to 20 min: 4 min 54 s come off the evening part.
    text = CARD_TEXT.replace('mode = "up"', 'mode = "down"')
    c = compute(session(local("2026-01-05 17:55"), 24.9), text=text)
    billed = {
        tuple(b["windows"]): b["billed_seconds"] for b in c.explanation["surcharges"]["billed"]
    }
    assert billed == {(): 300, ("evening",): 900}
    assert c.amount == Decimal("41.25")  # 5 x 1.50 + 15 x 2.25
