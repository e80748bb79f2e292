"""Editing entries and recording manual work: recomputed from raw facts with the
entry's own card, history kept, invoiced entries locked, bad manual work refused,
and who may see which entry. SQLite file, fake clock, no sockets."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from relay.model import EntryQuery, Technician
from relay.services.time_entries import add_manual, edit_entry, may_see
from relay.services.timekeeping import RateBook
from relay.settings import Billing
from relay.store.interface import Store
from shared.errors import ConflictError, UsageError
from tests.unit.billing_helpers import CARD_TEXT
from tests.unit.test_billing_timekeeping import MONDAY_10H, import_card

ALICE = Technician("tec-1", "alice", 2, "technician", ("cus-1",), MONDAY_10H)
LATER = MONDAY_10H + timedelta(days=1)


def work(start: datetime, minutes: float, service: str = "phone", **extra: Any) -> dict[str, Any]:
    return {
        "service_type": service,
        "started_at": start,
        "ended_at": start + timedelta(minutes=minutes),
        **extra,
    }


async def manual(store: Store, start: datetime, minutes: float, **extra: Any) -> str:
    entry = await add_manual(
        store, RateBook(store), Billing(), ALICE, "cus-1", work(start, minutes, **extra),
        "tec-1", LATER,
    )  # fmt: skip
    return entry.id


async def test_manual_work_is_priced_by_the_card_of_its_service(store: Store) -> None:
    await import_card(store)
    entry_id = await manual(store, MONDAY_10H, 7, notes="called about the VPN")
    entry = await store.get_entry(entry_id)
    assert entry is not None
    # Phone, level 2: 60.00/h, at least 5 minutes in 1-minute steps.
    assert (entry.billable_minutes, entry.amount, entry.service_type) == (
        7,
        Decimal("7.00"),
        "phone",
    )
    assert (entry.source, entry.agent_id, entry.session_ids, entry.notes) == (
        "manual",
        "",
        (),
        "called about the VPN",
    )


async def test_manual_work_without_a_card_uses_the_default_rate(store: Store) -> None:
    entry_id = await manual(store, MONDAY_10H, 20, service="on_site")
    entry = await store.get_entry(entry_id)
    assert entry is not None and (entry.billable_minutes, entry.amount) == (20, Decimal("30.00"))
    with pytest.raises(UsageError, match="need a rate card"):
        await manual(store, LATER - timedelta(hours=2), 20, complexity="complex")


@pytest.mark.parametrize(
    ("minutes", "message"),
    [(-5, "must end after it starts .this lasts -5 min"), (0, "must end after it starts")],
)
async def test_negative_or_empty_manual_work_is_refused(
    store: Store, minutes: float, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        await manual(store, MONDAY_10H, minutes)
    assert await store.query_entries(EntryQuery()) == []


async def test_overlapping_or_future_manual_work_is_refused(store: Store) -> None:
    first = await manual(store, MONDAY_10H, 30)
    with pytest.raises(ConflictError, match=f"overlaps time entry {first}"):
        await manual(store, MONDAY_10H + timedelta(minutes=20), 30)
    with pytest.raises(UsageError, match="future"):
        await manual(store, LATER, 30)
    await manual(store, MONDAY_10H + timedelta(minutes=30), 30)  # right after: fine


async def test_an_edit_recomputes_from_raw_facts_and_records_why(store: Store) -> None:
    await import_card(store)
    entry_id = await manual(store, MONDAY_10H, 20, service="remote_support")
    entry = await store.get_entry(entry_id)
    assert entry is not None and entry.amount == Decimal("30.00")
    new = await edit_entry(
        store, RateBook(store), entry, {"complexity": "complex", "notes": "RAID rebuild"},
        "needed a specialist tool", "tec-9", LATER,
    )  # fmt: skip
    assert (new.complexity, new.amount, new.notes, new.revision) == (
        "complex",
        Decimal("45.00"),  # x 1.5 on the test card
        "RAID rebuild",
        1,
    )
    history = {e.field: e for e in await store.list_entry_edits(entry_id)}
    assert (history["amount"].old, history["amount"].new) == ("30.00", "45.00")
    assert history["complexity"].reason == "needed a specialist tool"
    assert history["complexity"].actor == "tec-9"


async def test_edits_need_a_reason_and_a_change(store: Store) -> None:
    entry_id = await manual(store, MONDAY_10H, 20)
    entry = await store.get_entry(entry_id)
    assert entry is not None
    book = RateBook(store)
    with pytest.raises(UsageError, match="reason"):
        await edit_entry(store, book, entry, {"notes": "x"}, " ", "tec-1", LATER)
    with pytest.raises(UsageError, match="nothing changed"):
        await edit_entry(store, book, entry, {"service_type": "phone"}, "why", "tec-1", LATER)
    with pytest.raises(UsageError, match="default rate"):
        await edit_entry(store, book, entry, {"complexity": "complex"}, "why", "tec-1", LATER)


async def test_invoiced_entries_never_change(store: Store) -> None:
    entry_id = await manual(store, MONDAY_10H, 20)
    entry = await store.get_entry(entry_id)
    assert entry is not None
    with pytest.raises(UsageError, match="invoiced and locked"):
        await edit_entry(
            store, RateBook(store), replace(entry, status="invoiced"), {"notes": "x"}, "why",
            "tec-1", LATER,
        )  # fmt: skip


async def test_a_new_card_does_not_change_what_an_edit_recomputes(store: Store) -> None:
    await import_card(store)
    entry_id = await manual(store, MONDAY_10H, 20, service="remote_support")
    await import_card(store, CARD_TEXT.replace("complex = 1.5", "complex = 3"))
    entry = await store.get_entry(entry_id)
    assert entry is not None
    book = RateBook(store)
    new = await edit_entry(store, book, entry, {"complexity": "complex"}, "why", "tec-1", LATER)
    assert new.amount == Decimal("45.00")  # the entry's own card: x 1.5


async def test_technicians_see_only_their_own_drafts(store: Store) -> None:
    entry_id = await manual(store, MONDAY_10H, 20)
    entry = await store.get_entry(entry_id)
    assert entry is not None
    bob = replace(ALICE, id="tec-2", name="bob")
    office = replace(ALICE, id="tec-3", name="olga", role="billing")
    assert may_see(ALICE, entry) and not may_see(bob, entry) and may_see(office, entry)
    assert not may_see(ALICE, replace(entry, status="approved"))
    assert may_see(office, replace(entry, status="invoiced"))
