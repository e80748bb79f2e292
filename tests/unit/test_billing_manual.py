"""Manual work that rounds to nothing is kept with its actual time and the reason;
manual work overlapping a session's entry is refused with the way out, and attached
to that entry it is billed once with it. SQLite file, fake clock, no sockets."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from relay.billing.explain import render_text
from relay.model import BillableEntry, EntryQuery, Technician
from relay.services.time_entries import (
    TimeEntries,
    add_manual,
    default_explanation,
    edit_entry,
)
from relay.services.timekeeping import RateBook
from relay.settings import Billing, Settings
from relay.store.interface import Store
from shared.clock import FakeClock
from shared.errors import ConflictError, NotFoundError, UsageError
from tests.unit.test_billing_timekeeping import MONDAY_10H, import_card, manager, work

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


# -- attaching manual work to a session's entry ----------------------------------------


async def session_entry(store: Store) -> BillableEntry:
    """Alice's 20-minute session from 10:00 (Amsterdam): 30.00 on the test card."""
    clock = FakeClock(MONDAY_10H)
    await work(manager(store, clock), clock, 20 * 60)
    (entry,) = await store.query_entries(EntryQuery())
    assert (entry.billable_minutes, entry.amount) == (20, Decimal("30.00"))
    return entry


def entries_service(store: Store) -> TimeEntries:
    return TimeEntries(store, FakeClock(LATER), Settings(), RateBook(store))


def phone(start: datetime, minutes: int, **extra: Any) -> dict[str, Any]:
    end = start + timedelta(minutes=minutes)
    return {"service_type": "phone", "started_at": start, "ended_at": end, **extra}


async def test_overlapping_manual_work_is_refused_with_the_way_out(store: Store) -> None:
    await import_card(store)
    session = await session_entry(store)
    with pytest.raises(ConflictError) as caught:
        await call(store, MONDAY_10H + timedelta(minutes=15), 20 * 60)
    assert str(caught.value) == (
        f"it overlaps time entry {session.id} of the same technician (2026-01-05 09:00 to "
        f"09:20 UTC); to add this work to that session's entry, repeat with --attach {session.id}"
    )
    assert len(await store.query_entries(EntryQuery())) == 1


async def test_attached_work_joins_the_session_entry_and_counts_the_overlap_once(
    store: Store,
) -> None:
    await import_card(store)
    session = await session_entry(store)
    service = entries_service(store)
    call_work = {**phone(MONDAY_10H + timedelta(minutes=15), 20), "service_type": None}
    attached = await service.add(
        ALICE, ALICE, "cus-1", {**call_work, "notes": "called back"}, LATER, attach=session.id
    )
    # 10:00-10:35 once: 35 minutes of remote support at 90.00/h.
    assert attached.id == session.id
    assert (attached.actual_seconds, attached.billable_minutes, attached.amount) == (
        35 * 60,
        35,
        Decimal("52.50"),
    )
    assert (attached.session_ids, attached.source, attached.service_type) == (
        session.session_ids,
        "session",
        "remote_support",
    )
    assert (attached.ended_at, attached.notes) == (
        MONDAY_10H + timedelta(minutes=35),
        "called back",
    )
    history = {e.field: e for e in await store.list_entry_edits(session.id)}
    assert history["attached"].new == "2026-01-05T09:15:00Z to 2026-01-05T09:35:00Z"
    assert (history["amount"].old, history["amount"].new) == ("30.00", "52.50")
    assert history["amount"].reason == "manual work attached"
    (audit,) = [a for a in await store.list_audit() if a.event == "time_attach"]
    assert (audit.actor, audit.subject) == ("tec-1", session.id)
    assert len(await store.query_entries(EntryQuery())) == 1


async def test_attaching_is_refused_unless_it_fits(store: Store) -> None:
    await import_card(store)
    session = await session_entry(store)
    service = entries_service(store)
    manual = await call(store, MONDAY_10H + timedelta(hours=1), 10 * 60)
    cases = [
        (phone(MONDAY_10H + timedelta(minutes=30), 10), session.id, "does not overlap"),
        (phone(MONDAY_10H + timedelta(minutes=10), 20), session.id, "leave out --service"),
        (phone(MONDAY_10H + timedelta(minutes=65), 5), manual.id, "is manual work"),
        (
            {**phone(MONDAY_10H, 5), "service_type": None, "urgent": True},
            session.id,
            "leave out --complexity, --urgent and --request",
        ),
    ]
    for work_, target, message in cases:
        with pytest.raises(UsageError, match=message):
            await service.add(ALICE, ALICE, "cus-1", work_, LATER, attach=target)
    # The work may not reach into another entry of the technician either.
    reaching = {**phone(MONDAY_10H + timedelta(minutes=10), 55), "service_type": None}
    with pytest.raises(ConflictError, match=f"overlaps time entry {manual.id}"):
        await service.add(ALICE, ALICE, "cus-1", reaching, LATER, attach=session.id)
    bob = replace(ALICE, id="tec-2", name="bob")
    with pytest.raises(NotFoundError):
        await service.add(bob, bob, "cus-1", phone(MONDAY_10H, 5), LATER, attach=session.id)
    assert await store.get_entry(session.id) == session
