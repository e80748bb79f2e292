"""From approved entries to an invoice: month periods in local time, prepaid hours
drawn first, exact line amounts, VAT or reverse charge, the supplier data relay.toml
must hold, and stored invoices read back as the same documents."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.billing.invoice import STANDARD, money, totals
from relay.billing.invoice_build import document, line_for, month_period
from relay.billing.prepaid import Work, allocate_prepaid
from relay.model import (
    BillableEntry,
    CreditRequest,
    Customer,
    CustomerBilling,
    PrepaidBalance,
    PrepaidBlock,
)
from relay.services.invoicing import plan_invoice
from relay.settings import Company
from relay.store.interface import Store
from shared.errors import ConfigError, UsageError
from tests.unit.test_billing_timekeeping import MONDAY_10H

COMPANY = Company(
    legal_name="Quarkpulse IT B.V.",
    address="Keizersgracht 100",
    postcode="1015 AA",
    city="Amsterdam",
    kvk="12345678",
    vat_id="NL123456782B01",
    iban="NL91ABNA0417164300",
)
ACME = Customer("cus-1", "Acme", MONDAY_10H)
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
BILLING = CustomerBilling(
    "cus-1", "Acme B.V.", ("Dorpsstraat 1",), "1234 AB", "Utrecht", "NL", "87654321", "0106",
    30, MONDAY_10H, kvk="87654321", vat_id="NL987654329B01",
)  # fmt: skip


def entry(
    entry_id: str, start: datetime, minutes: int, amount: str, rate: str = "90.00"
) -> BillableEntry:
    return BillableEntry(
        id=entry_id,
        session_ids=(),
        customer_id="cus-1",
        agent_id="",
        technician_id="tec-1",
        started_at=start,
        ended_at=start + timedelta(minutes=minutes),
        actual_seconds=minutes * 60 - 20,
        billable_minutes=minutes,
        hourly_rate=Decimal(rate),
        amount=Decimal(amount),
        status="draft",
        created_at=start,
        service_type="phone",
        request="REQ-3",
        source="manual",
        surcharges=("evening +50 % (10 min)",),
    )


def block(block_id: str, minutes: int, expires: date | None, used: int = 0) -> PrepaidBalance:
    made = MONDAY_10H + timedelta(minutes=len(block_id))
    return PrepaidBalance(PrepaidBlock(block_id, "cus-1", minutes, made, "tec-1", expires), used)


def test_a_period_is_one_calendar_month() -> None:
    assert month_period("2026-02").end == date(2026, 2, 28)
    assert month_period("2024-02").end == date(2024, 2, 29)
    assert (month_period("2026-12").start, month_period("2026-12").end) == (
        date(2026, 12, 1),
        date(2026, 12, 31),
    )
    for bad in ("2026-13", "2026-1", "november"):
        with pytest.raises(UsageError, match="month such as"):
            month_period(bad)


def test_prepaid_hours_go_to_the_oldest_work_from_the_block_expiring_first() -> None:
    blocks = [block("late", 60, None), block("soon", 30, date(2026, 11, 10), used=10)]
    paid = Decimal("1.00")
    covers = allocate_prepaid(
        [
            Work("e1", date(2026, 11, 3), 15, paid),
            Work("e2", date(2026, 11, 12), 60, paid),
            Work("e3", date(2026, 11, 20), 30, paid),
        ],
        blocks,
    )
    assert [(d.block_id, d.minutes) for d in covers["e1"].draws] == [("soon", 15)]
    # "soon" has 5 minutes left but expired on the 10th; "late" pays 60 of e2.
    assert [(d.block_id, d.minutes) for d in covers["e2"].draws] == [("late", 60)]
    assert "e3" not in covers


@given(cents=st.integers(1, 10**7), minutes=st.integers(1, 10**4))
def test_a_line_charges_exactly_the_entry_amount(cents: int, minutes: int) -> None:
    amount = Decimal(cents) / 100
    e = entry("e", MONDAY_10H, minutes, f"{amount:.2f}", rate="77.77")
    line = line_for(e, date(2026, 1, 5), "alice", STANDARD)
    assert line.line_amount == money(amount)


def test_a_line_shows_the_rate_when_it_reproduces_the_amount() -> None:
    e = entry("e", MONDAY_10H, 25, "37.50")
    line = line_for(e, date(2026, 1, 5), "alice", STANDARD, prepaid_minutes=10, agent="pc")
    assert (line.unit_price, line.line_amount, line.actual_minutes) == (
        Decimal("90.00"),
        Decimal("22.50"),
        25,
    )
    assert line.description == "Telefonische ondersteuning (pc)"
    surcharged = entry("e", MONDAY_10H, 15, "45.00")
    assert line_for(surcharged, date(2026, 1, 5), "a", STANDARD).unit_price == Decimal("180.00")


async def approve(store: Store, *entries: BillableEntry) -> None:
    for e in entries:
        await store.add_entry(e)
    await store.approve_entries([e.id for e in entries], "tec-1", NOW)


async def test_the_period_is_local_and_prepaid_hours_are_drawn_first(store: Store) -> None:
    await store.set_customer_billing(BILLING)
    await store.add_prepaid_block(PrepaidBlock("pre-1", "cus-1", 30, MONDAY_10H, "tec-1"))
    # 23:30 on 30 November in Amsterdam is 22:30 UTC; 00:30 on 1 December is 23:30 UTC.
    november = entry("e-nov", datetime(2026, 11, 30, 22, 30, tzinfo=UTC), 20, "30.00")
    december = entry("e-dec", datetime(2026, 11, 30, 23, 30, tzinfo=UTC), 20, "30.00")
    early = entry("e-early", datetime(2026, 11, 2, 9, 0, tzinfo=UTC), 25, "37.50")
    await approve(store, november, december, early)
    plan = await plan_invoice(
        store, COMPANY, ACME, month_period("2026-11"), reference=None, actor="tec-1", now=NOW
    )
    lines = plan.invoice.lines
    assert [line.supply_date for line in lines] == [date(2026, 11, 2), date(2026, 11, 30)]
    assert [(line.prepaid_minutes, line.line_amount) for line in lines] == [
        (25, Decimal("0.00")),
        (5, Decimal("22.50")),
    ]
    sums = totals(plan.invoice)
    assert (sums.line_extension, sums.tax, sums.payable) == (
        Decimal("22.50"),
        Decimal("4.73"),
        Decimal("27.23"),
    )
    assert plan.draft.total_incl_vat == sums.line_extension + sums.tax
    assert plan.invoice.due_date == date(2026, 12, 2) + timedelta(days=30)
    assert plan.invoice.buyer_reference == "Acme"
    assert plan.draft.entry_ids == ("e-early", "e-nov")
    # Planning writes nothing: the entries stay approved, the number stays free.
    assert (await store.get_entry("e-nov")).status == "approved"  # type: ignore[union-attr]
    assert await store.next_invoice_number(2026) == 1


async def test_reverse_charge_lines_carry_no_vat(store: Store) -> None:
    belgian = replace(
        BILLING, country="BE", postcode="1000", kvk=None, vat_id="BE0431701765",
        endpoint_id="0431701765", endpoint_scheme="0208", reverse_charge=True,
    )  # fmt: skip
    await store.set_customer_billing(belgian)
    await approve(store, entry("e1", datetime(2026, 11, 3, 9, 0, tzinfo=UTC), 20, "30.00"))
    plan = await plan_invoice(
        store, COMPANY, ACME, month_period("2026-11"), reference="PO-9", actor="tec-1", now=NOW
    )
    assert {line.vat.code for line in plan.invoice.lines} == {"AE"}
    assert (totals(plan.invoice).tax, plan.invoice.buyer_reference) == (Decimal("0.00"), "PO-9")


async def test_invoicing_needs_the_company_and_the_customer_data(store: Store) -> None:
    period = month_period("2026-11")
    with pytest.raises(UsageError, match="no billing data yet"):
        await plan_invoice(store, COMPANY, ACME, period, reference=None, actor="t", now=NOW)
    await store.set_customer_billing(BILLING)
    incomplete = replace(COMPANY, kvk="", iban=" ")
    with pytest.raises(ConfigError, match="with qp company set --kvk … --iban …$"):
        await plan_invoice(store, incomplete, ACME, period, reference=None, actor="t", now=NOW)
    with pytest.raises(UsageError, match="no approved, uninvoiced time entries"):
        await plan_invoice(store, COMPANY, ACME, period, reference=None, actor="t", now=NOW)


async def test_a_stored_invoice_reads_back_as_the_same_document(store: Store) -> None:
    await store.set_customer_billing(BILLING)
    await approve(store, entry("e1", datetime(2026, 11, 3, 9, 0, tzinfo=UTC), 20, "30.00"))
    plan = await plan_invoice(
        store, COMPANY, ACME, month_period("2026-11"), reference=None, actor="t", now=NOW
    )
    record = await store.create_invoice(plan.draft)
    invoice, supplier, party = document(record)
    assert invoice == replace(plan.invoice, number=record.number)
    assert (supplier, party) == (plan.supplier, plan.customer)
    note = await store.credit_invoice(CreditRequest("inv-c", record.id, NOW.date(), NOW, "t", ""))
    credit, _, _ = document(note, record)
    assert (credit.kind, credit.original_number, totals(credit)) == (
        "credit_note",
        record.number,
        totals(invoice),
    )
    with pytest.raises(UsageError, match="credited invoice is missing"):
        document(note)
