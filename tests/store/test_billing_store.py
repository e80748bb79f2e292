"""Behaviour every store shares for billing: rate cards, billable entries and their
history, customers' billing data, prepaid hours, invoices and credit notes.

Backend-agnostic (the ``store`` fixture runs it once per backend); fixed datetimes.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from relay.model import (
    BillableEntry,
    CreditRequest,
    CustomerBilling,
    EntryEdit,
    EntryQuery,
    EntryUpdate,
    InvoiceDraft,
    InvoiceLineRecord,
    PrepaidBlock,
    PrepaidDraw,
    RateCardRecord,
)
from relay.store.interface import Store
from shared.errors import ConflictError, NotFoundError, QPError
from tests.store.records import T0, at, closing, seed, session, technician

DAY = date(2026, 1, 5)


def entry(
    id: str = "ent-1", start: float = 0, minutes: float = 30, **changes: object
) -> BillableEntry:
    base = BillableEntry(
        id=id,
        session_ids=("ses-1",),
        customer_id="cus-1",
        agent_id="agt-1",
        technician_id="tec-1",
        started_at=at(start),
        ended_at=at(start + minutes),
        actual_seconds=int(minutes * 60),
        billable_minutes=30,
        hourly_rate=Decimal("90.00"),
        amount=Decimal("45.00"),
        status="draft",
        created_at=at(start + minutes),
        request="REQ-7",
        details={"facts": {"sessions": []}},
        complexity="complex",
        urgent=True,
        idle_seconds=120,
        card_digest="abc123",
        surcharges=("evening +50 % (30 min)",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def card(
    digest: str = "d1", effective: date = date(2026, 1, 1), minute: float = 0
) -> RateCardRecord:
    return RateCardRecord(
        digest, effective, f"card {digest}", "name = 'x'\n", "rates.toml", at(minute), "tec-1"
    )


def line(position: int, entry_id: str | None, amount: str = "45.00") -> InvoiceLineRecord:
    return InvoiceLineRecord(
        position=position,
        entry_id=entry_id,
        description="Ondersteuning op afstand",
        supply_date=DAY,
        technician="alice",
        request_ref="REQ-7",
        actual_minutes=28,
        billable_minutes=30,
        prepaid_minutes=0,
        unit_price=Decimal("90.00"),
        vat_code="S",
        vat_percent=Decimal("21"),
        surcharges=("evening +50 % (30 min)",),
        amount=Decimal(amount),
    )


def draft(
    id: str = "inv-1",
    entry_ids: tuple[str, ...] = ("ent-1",),
    issue: date = date(2026, 2, 1),
    draws: tuple[PrepaidDraw, ...] = (),
) -> InvoiceDraft:
    return InvoiceDraft(
        id=id,
        customer_id="cus-1",
        issue_date=issue,
        due_date=issue + timedelta(days=14),
        period_start=date(2026, 1, 1),
        period_end=date(2026, 1, 31),
        buyer_reference="PO-1",
        currency="EUR",
        supplier={"party": {"legal_name": "Quarkpulse IT B.V."}, "iban": "NL91ABNA0417164300"},
        customer={"legal_name": "Acme B.V."},
        total_excl_vat=Decimal("45.00") * len(entry_ids),
        vat_total=Decimal("9.45") * len(entry_ids),
        total_incl_vat=Decimal("54.45") * len(entry_ids),
        created_at=at(60 * 24 * 27),
        created_by="tec-1",
        lines=tuple(line(i, e) for i, e in enumerate(entry_ids, 1)),
        entry_ids=entry_ids,
        draws=draws,
    )


async def approved(store: Store, *ids: str) -> None:
    for n, entry_id in enumerate(ids):
        await store.add_entry(entry(entry_id, start=60 * n, session_ids=()))
    await store.approve_entries(list(ids), "tec-1", at(600))


# -- rate cards ------------------------------------------------------------------------


async def test_rate_cards_are_kept_by_digest_in_effective_order(store: Store) -> None:
    assert await store.add_rate_card(card("d2", date(2026, 6, 1), minute=1))
    assert await store.add_rate_card(card("d1", date(2026, 1, 1), minute=2))
    assert not await store.add_rate_card(card("d1", date(2026, 1, 1), minute=3))
    assert [c.digest for c in await store.list_rate_cards()] == ["d1", "d2"]
    assert await store.get_rate_card("d1") == card("d1", date(2026, 1, 1), minute=2)
    assert await store.get_rate_card("nope") is None


# -- entries ------------------------------------------------------------------------------


async def test_billable_entry_round_trips_every_field(store: Store) -> None:
    await seed(store)
    e = entry(approved_at=at(40), approved_by="tec-1", notes="ok")
    await store.add_entry(e)
    assert await store.get_entry("ent-1") == e
    (light,) = await store.query_entries(EntryQuery(with_details=False))
    assert light == replace(e, details={})
    # The spine's view of the same row still works.
    (plain,) = await store.list_time_entries()
    assert (plain.id, plain.amount, plain.request) == ("ent-1", Decimal("45.00"), "REQ-7")


async def test_entries_are_queried_by_filters_in_start_order(store: Store) -> None:
    await seed(store)
    await store.add_technician(technician("tec-2", "bob"), "h2")
    await store.add_entry(entry("ent-3", start=120))
    await store.add_entry(entry("ent-1", start=0))
    await store.add_entry(entry("ent-2", start=60, technician_id="tec-2", status="approved"))

    async def ids(**filters: object) -> list[str]:
        return [e.id for e in await store.query_entries(EntryQuery(**filters))]  # type: ignore[arg-type]

    assert await ids() == ["ent-1", "ent-2", "ent-3"]
    assert await ids(technician_id="tec-2") == ["ent-2"]
    assert await ids(status="draft") == ["ent-1", "ent-3"]
    assert await ids(started_from=at(60), started_before=at(120)) == ["ent-2"]
    assert await ids(limit=2) == ["ent-1", "ent-2"]
    assert await ids(limit=2, offset=2) == ["ent-3"]


async def test_manual_work_needs_no_agent_but_a_named_agent_must_exist(store: Store) -> None:
    await seed(store)
    await store.add_entry(entry(agent_id="", session_ids=(), source="manual"))
    assert (await store.get_entry("ent-1")) is not None
    with pytest.raises(QPError):
        await store.add_entry(entry("ent-2", start=100, agent_id="agt-missing"))


async def test_overlapping_work_of_one_technician_is_refused(store: Store) -> None:
    await seed(store)
    await store.add_entry(entry("ent-1", start=0, minutes=30))
    with pytest.raises(ConflictError, match="ent-1"):
        await store.add_entry(entry("ent-2", start=29, minutes=10), refuse_overlap=True)
    await store.add_entry(entry("ent-3", start=30, minutes=10), refuse_overlap=True)  # adjacent
    await store.add_technician(technician("tec-2", "bob"), "h2")
    await store.add_entry(entry("ent-4", start=5, technician_id="tec-2"), refuse_overlap=True)
    assert await store.get_entry("ent-2") is None


async def test_update_needs_the_expected_revision_and_keeps_history(store: Store) -> None:
    await seed(store)
    await store.add_entry(entry())
    edit = EntryEdit("ent-1", at(50), "tec-1", "complexity", "complex", "standard", "typo")
    new = await store.update_entry(EntryUpdate(entry(complexity="standard"), 0, (edit,)))
    assert (new.complexity, new.revision) == ("standard", 1)
    with pytest.raises(ConflictError, match="changed meanwhile"):
        await store.update_entry(EntryUpdate(entry(notes="stale"), 0))
    with pytest.raises(NotFoundError):
        await store.update_entry(EntryUpdate(entry("ent-x"), 0))
    assert await store.list_entry_edits("ent-1") == [edit]


async def test_approval_is_all_or_nothing_and_recorded(store: Store) -> None:
    await seed(store)
    await store.add_entry(entry("ent-1"))
    await store.add_entry(entry("ent-2", start=60))
    with pytest.raises(NotFoundError):
        await store.approve_entries(["ent-1", "ent-missing"], "tec-1", at(100))
    assert (await store.get_entry("ent-1")).status == "draft"  # type: ignore[union-attr]
    assert await store.approve_entries(["ent-1", "ent-2"], "tec-1", at(100)) == ["ent-1", "ent-2"]
    assert await store.approve_entries(["ent-1"], "tec-1", at(101)) == []
    got = await store.get_entry("ent-1")
    assert got is not None and (got.status, got.approved_at, got.approved_by) == (
        "approved",
        at(100),
        "tec-1",
    )
    (edit,) = await store.list_entry_edits("ent-1")
    assert (edit.field, edit.old, edit.new) == ("status", "draft", "approved")


# -- closing a session into an entry -------------------------------------------------------


async def test_a_reconnect_joins_the_draft_in_the_same_transaction(store: Store) -> None:
    await seed(store)
    await store.add_entry(entry("ent-1", start=0, minutes=20))
    await store.add_session(session("ses-2"))
    target = await store.find_merge_target("cus-1", "tec-1", "agt-1", "REQ-7", at(15))
    assert target is not None and target.id == "ent-1"
    assert await store.find_merge_target("cus-1", "tec-1", "agt-1", "REQ-8", at(15)) is None
    assert await store.find_merge_target("cus-1", "tec-1", "agt-1", "REQ-7", at(21)) is None
    merged = entry("ent-1", minutes=40, session_ids=("ses-1", "ses-2"))
    edit = EntryEdit("ent-1", at(40), "relay", "session_ids", "ses-1", "ses-1,ses-2", "reconnect")
    new_entry = entry("ent-2", start=25, session_ids=("ses-2",))
    close = closing("ses-2", entry=new_entry)
    assert await store.close_session_billed(close, EntryUpdate(merged, 0, (edit,)))
    assert not await store.close_session_billed(close, EntryUpdate(merged, 1, (edit,)))
    assert [e.id for e in await store.query_entries(EntryQuery())] == ["ent-1"]
    got = await store.get_entry("ent-1")
    assert got is not None and got.session_ids == ("ses-1", "ses-2") and got.revision == 1
    assert (await store.get_session("ses-2")).end_reason == "completed"  # type: ignore[union-attr]
    assert await store.list_entry_edits("ent-1") == [edit]


async def test_a_draft_approved_meanwhile_is_left_alone(store: Store) -> None:
    await seed(store)
    await store.add_entry(entry("ent-1"))
    await store.approve_entries(["ent-1"], "tec-1", at(31))
    await store.add_session(session("ses-2"))
    new_entry = entry("ent-2", start=35, session_ids=("ses-2",))
    merged = entry("ent-1", minutes=40, session_ids=("ses-1", "ses-2"))
    assert await store.close_session_billed(
        closing("ses-2", entry=new_entry), EntryUpdate(merged, 0)
    )
    assert [e.id for e in await store.query_entries(EntryQuery())] == ["ent-1", "ent-2"]
    assert (await store.get_entry("ent-1")).session_ids == ("ses-1",)  # type: ignore[union-attr]


# -- customers and prepaid hours -------------------------------------------------------------


async def test_customer_billing_data_is_replaced_whole(store: Store) -> None:
    await seed(store)
    data = CustomerBilling(
        "cus-1", "Acme B.V.", ("Dorpsstraat 1", "Achter"), "1234 AB", "Utrecht", "NL",
        "87654321", "0106", 14, T0, kvk="87654321", vat_id="NL987654329B01",
        email="a@acme.example",
    )  # fmt: skip
    await store.set_customer_billing(data)
    changed = replace(data, reverse_charge=True, payment_terms_days=30, email=None)
    await store.set_customer_billing(changed)
    assert await store.get_customer_billing("cus-1") == changed
    assert await store.get_customer_billing("cus-2") is None
    with pytest.raises(ConflictError):
        await store.set_customer_billing(replace(data, customer_id="cus-unknown"))


async def test_prepaid_blocks_show_what_was_drawn(store: Store) -> None:
    await seed(store)
    await store.add_prepaid_block(PrepaidBlock("pre-1", "cus-1", 600, T0, "tec-1", DAY, "10 h"))
    await store.add_prepaid_block(PrepaidBlock("pre-2", "cus-1", 60, at(1), "tec-1"))
    await approved(store, "ent-1")
    await store.create_invoice(draft(draws=(PrepaidDraw("pre-1", "ent-1", 30),)))
    (first, second) = await store.prepaid_balances("cus-1")
    assert (first.block.id, first.used_minutes, first.remaining_minutes) == ("pre-1", 30, 570)
    assert (second.block.expires_on, second.remaining_minutes) == (None, 60)


# -- invoices ----------------------------------------------------------------------------------


async def test_invoice_numbers_count_per_year_and_lock_the_entries(store: Store) -> None:
    await seed(store)
    await approved(store, "ent-1", "ent-2", "ent-3")
    assert await store.next_invoice_number(2026) == 1
    first = await store.create_invoice(draft("inv-1", ("ent-1",)))
    second = await store.create_invoice(draft("inv-2", ("ent-2",)))
    other_year = await store.create_invoice(draft("inv-3", ("ent-3",), issue=date(2027, 1, 2)))
    assert [first.number, second.number, other_year.number] == [
        "2026-000001",
        "2026-000002",
        "2027-000001",
    ]
    assert first.lines == draft("inv-1").lines and first.line_count == 1
    locked = await store.get_entry("ent-1")
    assert locked is not None and (locked.status, locked.invoice_id) == ("invoiced", "inv-1")
    with pytest.raises(ConflictError, match="invoiced and locked"):
        await store.update_entry(EntryUpdate(replace(locked, notes="x"), locked.revision))
    with pytest.raises(ConflictError):
        await store.approve_entries(["ent-1"], "tec-1", at(1000))


async def test_an_invoice_of_unapproved_entries_writes_nothing_and_uses_no_number(
    store: Store,
) -> None:
    await seed(store)
    await store.add_entry(entry("ent-1"))  # a draft
    with pytest.raises(ConflictError):
        await store.create_invoice(draft("inv-1", ("ent-1",)))
    assert await store.list_invoices() == []
    assert await store.next_invoice_number(2026) == 1
    await store.add_prepaid_block(PrepaidBlock("pre-1", "cus-1", 20, T0, "tec-1"))
    await store.approve_entries(["ent-1"], "tec-1", at(40))
    with pytest.raises(ConflictError, match="prepaid"):
        await store.create_invoice(draft(draws=(PrepaidDraw("pre-1", "ent-1", 30),)))
    assert (await store.get_entry("ent-1")).status == "approved"  # type: ignore[union-attr]


async def test_concurrent_invoices_get_unique_gap_free_numbers(store: Store) -> None:
    await seed(store)
    ids = [f"ent-{n:02d}" for n in range(20)]
    await approved(store, *ids)
    made = await asyncio.gather(
        *(store.create_invoice(draft(f"inv-{n:02d}", (ids[n],))) for n in range(20))
    )
    assert sorted(r.number for r in made) == [f"2026-{n:06d}" for n in range(1, 21)]


async def test_credit_note_cancels_the_invoice_and_releases_its_entries(store: Store) -> None:
    await seed(store)
    await store.add_prepaid_block(PrepaidBlock("pre-1", "cus-1", 600, T0, "tec-1"))
    await approved(store, "ent-1", "ent-2")
    invoice = await store.create_invoice(
        draft("inv-1", ("ent-1", "ent-2"), draws=(PrepaidDraw("pre-1", "ent-1", 30),))
    )
    request = CreditRequest("inv-c", "inv-1", date(2026, 2, 3), at(60 * 24 * 29), "tec-1", "oops")
    note = await store.credit_invoice(request)
    assert (note.number, note.kind, note.credits_invoice_id) == (
        "2026-000002",
        "credit_note",
        "inv-1",
    )
    assert note.lines == invoice.lines and note.total_incl_vat == invoice.total_incl_vat
    again = await store.get_invoice("2026-000001")
    assert again is not None and again.credited_by_id == "inv-c"
    released = await store.get_entry("ent-1")
    assert released is not None and (released.status, released.invoice_id) == ("approved", None)
    assert (await store.prepaid_balances("cus-1"))[0].used_minutes == 0
    edits = await store.list_entry_edits("ent-2")
    assert [(e.old, e.new) for e in edits][-2:] == [
        ("approved", "invoiced"),
        ("invoiced", "approved"),
    ]
    with pytest.raises(ConflictError, match="already credited"):
        await store.credit_invoice(replace(request, id="inv-d"))
    with pytest.raises(ConflictError, match="credit note"):
        await store.credit_invoice(replace(request, id="inv-e", original_id="inv-c"))
    with pytest.raises(NotFoundError):
        await store.credit_invoice(replace(request, id="inv-f", original_id="inv-x"))
    assert [r.number for r in await store.list_invoices()] == ["2026-000002", "2026-000001"]
    assert [r.number for r in await store.list_invoices("cus-2")] == []


async def test_invoices_are_found_by_id_or_number(store: Store) -> None:
    await seed(store)
    await approved(store, "ent-1")
    made = await store.create_invoice(draft())
    assert await store.get_invoice("inv-1") == made
    assert await store.get_invoice(made.number) == made
    assert await store.get_invoice("2026-000009") is None
