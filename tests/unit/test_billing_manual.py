"""Manual work that rounds to nothing is kept with its actual time and the reason.
SQLite file, fake clock, no sockets."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from relay.billing.explain import render_text
from relay.model import BillableEntry, Technician
from relay.services.time_entries import add_manual, default_explanation, edit_entry
from relay.services.timekeeping import RateBook
from relay.settings import Billing
from relay.store.interface import Store
from tests.unit.test_billing_timekeeping import MONDAY_10H, import_card

ALICE = Technician("tec-1", "alice", 2, "technician", ("cus-1",), MONDAY_10H)
LATER = MONDAY_10H + timedelta(days=1)


async def call(
    store: Store, start: datetime, seconds: int, bill: Billing | None = None, **extra: Any
) -> BillableEntry:
    """Phone work of ``seconds``, recorded by alice a day later."""
    work = {
        "service_type": "phone",
        "started_at": start,
        "ended_at": start + timedelta(seconds=seconds),
        **extra,
    }
    return await add_manual(
        store, RateBook(store), bill or Billing(), ALICE, "cus-1", work, "tec-1", LATER
    )


async def test_a_call_under_the_grace_period_is_kept_with_its_time_and_why(store: Store) -> None:
    await import_card(store)  # grace 60 s
    made = await call(store, MONDAY_10H, 40, notes="wrong number")
    entry = await store.get_entry(made.id)
    assert entry is not None
    assert (entry.actual_seconds, entry.billable_minutes, entry.amount) == (40, 0, Decimal("0.00"))
    assert (entry.started_at, entry.ended_at, entry.notes) == (
        MONDAY_10H,
        MONDAY_10H + timedelta(seconds=40),
        "wrong number",
    )
    reason = "0 min 40 s is shorter than the 60 s grace period: not billed"
    assert entry.details["not_billed"] == reason
    text = render_text(entry.details)
    assert text.endswith(f"Not billed: {reason}")
    assert "the manual work is shorter than the grace period: not billed" in text
    assert "reconnect" not in text
    # Its notes can still be edited; it stays unbilled, with its time and reason.
    edited = await edit_entry(
        store, RateBook(store), entry, {"notes": "misdial"}, "typo", "tec-1", LATER
    )
    assert (edited.notes, edited.actual_seconds, edited.billable_minutes) == ("misdial", 40, 0)
    assert edited.details["not_billed"] == reason


async def test_at_the_default_rate_a_short_call_is_kept_too(store: Store) -> None:
    bill = Billing(grace_seconds=120)
    made = await call(store, MONDAY_10H, 95, bill)
    entry = await store.get_entry(made.id)
    assert entry is not None
    assert (entry.actual_seconds, entry.billable_minutes, entry.amount) == (95, 0, Decimal("0.00"))
    reason = "1 min 35 s is shorter than the 120 s grace period: not billed"
    assert default_explanation(entry).splitlines()[-1] == f"Not billed: {reason}"
    rounded_away = await call(
        store,
        MONDAY_10H + timedelta(hours=1),
        200,
        Billing(minimum_minutes=0, increment_minutes=5, rounding="down"),
    )
    assert rounded_away.details["not_billed"] == (
        "3 min 20 s rounds down to 0 minutes (steps of 5 min, minimum 0 min): not billed"
    )
    billed = await call(store, MONDAY_10H + timedelta(hours=2), 130, bill)
    assert (billed.billable_minutes, "not_billed" in billed.details) == (3, False)  # 2:10 up
