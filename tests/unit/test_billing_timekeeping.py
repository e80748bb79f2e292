"""Ended sessions priced by the rate card in force: reconnects merge into the draft,
failed connects bill nothing, a new card never changes an existing entry. Real
SessionManager and SQLite file, fake clock, no sockets.

The test card bills level 2 remote support at 90.00/h (1.50 a minute), at least 15
minutes in 5-minute steps, nothing under 60 s, reconnects within 10 minutes merge.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from relay.billing.ratecard_export import card_digest
from relay.model import BillableEntry, EntryQuery, HelpRequest, RateCardRecord
from relay.services.sessions import SessionManager
from relay.settings import Settings
from relay.store.interface import Store
from shared.clock import FakeClock
from shared.protocol.session_state import Event
from tests.unit.billing_helpers import CARD_TEXT, card

MONDAY_10H = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # 10:00 in Amsterdam, no surcharge


async def import_card(store: Store, text: str = CARD_TEXT) -> str:
    parsed = card(text)
    digest = card_digest(parsed)
    record = RateCardRecord(
        digest, parsed.effective_from, parsed.name, text, "t.toml", MONDAY_10H, "tec-1"
    )
    assert await store.add_rate_card(record)
    return digest


def manager(store: Store, clock: FakeClock) -> SessionManager:
    m = SessionManager(store, clock, Settings(), "rly-1")
    m.ready_grace = 0
    return m


async def work(
    m: SessionManager, clock: FakeClock, seconds: int, request: str | None = "REQ-1"
) -> str:
    """A session with traffic in every minute, ``seconds`` long."""
    live, _ = await m.create("agt-1", "tec-1", "cus-1", "exec", request)
    for event in (Event.OFFER, Event.ACCEPT, Event.PAIRED):
        await m.advance(live, event)
    await m.ready("agt-1", live.row.id)
    left = seconds
    while left > 0:
        m.count(live, "to_agent", b"x" * 300)  # above the noise threshold
        step = min(60, left)
        clock.advance(step)
        left -= step
    await m.end(live, Event.TECHNICIAN_LEFT)
    return live.row.id


async def entries(store: Store) -> list[BillableEntry]:
    return await store.query_entries(EntryQuery())


async def test_a_session_is_priced_by_the_card_in_force(store: Store) -> None:
    digest = await import_card(store)
    clock = FakeClock(MONDAY_10H)
    sid = await work(manager(store, clock), clock, 20 * 60 + 5)
    (entry,) = await entries(store)
    assert entry.session_ids == (sid,)
    assert (entry.actual_seconds, entry.billable_minutes, entry.amount) == (
        1205,
        25,
        Decimal("37.50"),
    )
    assert (entry.card_digest, entry.request, entry.complexity) == (digest, "REQ-1", "standard")
    assert entry.details["facts"]["context"]["technician_level"] == 2  # from alice's record


async def test_a_reconnect_within_the_merge_window_joins_the_draft(store: Store) -> None:
    await import_card(store)
    clock = FakeClock(MONDAY_10H)
    m = manager(store, clock)
    first = await work(m, clock, 5 * 60)  # alone: the 15-minute minimum
    clock.advance(9 * 60 + 59)
    second = await work(m, clock, 4 * 60)
    (entry,) = await entries(store)
    assert entry.session_ids == (first, second)
    # 5 + 5 (of the 9:59 between, the idle threshold) + 4 minutes of work, one
    # 15-minute minimum (separately: 15 + 15 = 45.00).
    assert (entry.actual_seconds, entry.billable_minutes, entry.amount) == (
        840,
        15,
        Decimal("22.50"),
    )
    (edit,) = [e for e in await store.list_entry_edits(entry.id) if e.field == "session_ids"]
    assert (edit.actor, edit.new) == ("relay", f"{first},{second}")
    assert "within the merge window" in edit.reason


async def test_sessions_further_apart_or_for_another_request_stay_apart(store: Store) -> None:
    await import_card(store)
    clock = FakeClock(MONDAY_10H)
    m = manager(store, clock)
    await work(m, clock, 5 * 60)
    clock.advance(10 * 60)  # exactly the window: not "within"
    await work(m, clock, 5 * 60)
    await work(m, clock, 5 * 60, request="REQ-2")
    assert [e.amount for e in await entries(store)] == [Decimal("22.50")] * 3


async def test_a_failed_connect_bills_nothing(store: Store) -> None:
    await import_card(store)
    clock = FakeClock(MONDAY_10H)
    sid = await work(manager(store, clock), clock, 59)
    # Under the grace period: nothing billed, but the draft stays for a reconnect.
    (entry,) = await entries(store)
    assert (entry.session_ids, entry.billable_minutes, entry.amount) == (
        (sid,),
        0,
        Decimal("0.00"),
    )
    row = await store.get_session(sid)
    assert row is not None and row.end_reason == "completed"


async def test_an_approved_entry_is_not_merged_into(store: Store) -> None:
    await import_card(store)
    clock = FakeClock(MONDAY_10H)
    m = manager(store, clock)
    await work(m, clock, 5 * 60)
    (first,) = await entries(store)
    await store.approve_entries([first.id], "tec-1", clock.now())
    clock.advance(60)
    await work(m, clock, 5 * 60)
    assert [(e.status, len(e.session_ids)) for e in await entries(store)] == [
        ("approved", 1),
        ("draft", 1),
    ]


async def test_a_new_card_leaves_existing_entries_and_their_reconnects_alone(
    store: Store,
) -> None:
    old = await import_card(store)
    clock = FakeClock(MONDAY_10H)
    m = manager(store, clock)
    await work(m, clock, 20 * 60)
    (before,) = await entries(store)
    dearer = CARD_TEXT.replace(
        "remote_support = { 1 = 60.00, 2 = 90.00", "remote_support = { 1 = 60.00, 2 = 120.00"
    )
    new = await import_card(store, dearer)
    assert await store.get_entry(before.id) == before  # importing changed nothing
    clock.advance(60)
    await work(m, clock, 5 * 60)  # a reconnect: still the old card's rates
    clock.advance(3600)
    await work(m, clock, 20 * 60, request="REQ-9")  # new work: the new card
    merged, fresh = await entries(store)
    # 20 + 1 (between) + 5 minutes, rounded up once to 30 by the old card.
    assert (merged.card_digest, merged.billable_minutes, merged.amount) == (
        old,
        30,
        Decimal("45.00"),
    )
    assert (fresh.card_digest, fresh.amount) == (new, Decimal("40.00"))


async def test_recovered_sessions_are_priced_by_the_card(store: Store) -> None:
    digest = await import_card(store)
    clock = FakeClock(MONDAY_10H)
    m = manager(store, clock)
    live, _ = await m.create("agt-1", "tec-1", "cus-1", "shell", None)
    for event in (Event.OFFER, Event.ACCEPT, Event.PAIRED):
        await m.advance(live, event)
    await m.ready("agt-1", live.row.id)
    for _ in range(16):
        m.count(live, "to_agent", b"x" * 300)  # above the noise threshold
        clock.advance(60)
    await m.heartbeat_once()
    clock.advance(3600)  # the relay died; a new one starts
    assert await manager(store, clock).recover() == 1
    (entry,) = await entries(store)
    assert (entry.actual_seconds, entry.amount, entry.card_digest) == (
        960,
        Decimal("30.00"),
        digest,
    )


async def test_a_pricing_failure_still_closes_the_session_at_the_default_rate(
    store: Store,
) -> None:
    await import_card(store)
    clock = FakeClock(MONDAY_10H)
    m = manager(store, clock)

    async def broken(customer_id: str, request: str | None) -> bool:
        raise RuntimeError("help requests unavailable")

    m.timekeeper.is_urgent = broken
    sid = await work(m, clock, 20 * 60)
    (entry,) = await entries(store)
    assert (entry.session_ids, entry.card_digest, entry.amount) == ((sid,), "", Decimal("30.00"))
    row = await store.get_session(sid)
    assert row is not None and row.ended_at is not None


async def test_an_urgent_help_request_adds_the_urgent_surcharge(store: Store) -> None:
    await import_card(store)
    number = await store.add_help_request(
        HelpRequest(0, "agt-1", "cus-1", "printer on fire", True, "open", MONDAY_10H, MONDAY_10H)
    )
    clock = FakeClock(MONDAY_10H)
    await work(manager(store, clock), clock, 20 * 60, request=f"REQ-{number}")
    (entry,) = await entries(store)
    assert entry.urgent
    assert entry.amount == Decimal("37.50")  # 30.00 + 25 %
    assert entry.surcharges == ("urgent +25 % (20 min)",)
