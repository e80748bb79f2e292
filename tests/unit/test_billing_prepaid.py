"""Prepaid hours on invoices: a block pays only for work from its first day.
SQLite file, fixed clock, no sockets."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from relay.billing.invoice_build import month_period
from relay.model import PrepaidBlock
from relay.services.invoicing import plan_invoice
from relay.store.interface import Store
from tests.unit.test_billing_invoicing import ACME, BILLING, COMPANY, NOW, approve, entry

DEC_1 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


async def test_hours_bought_on_1_december_do_not_pay_novembers_work(store: Store) -> None:
    await store.set_customer_billing(BILLING)
    bought = PrepaidBlock("pre-dec", "cus-1", 600, DEC_1, "tec-1", valid_from=date(2026, 12, 1))
    await store.add_prepaid_block(bought)
    await approve(store, entry("e-nov", datetime(2026, 11, 20, 9, 0, tzinfo=UTC), 30, "45.00"))
    period = month_period("2026-11")
    plan = await plan_invoice(store, COMPANY, ACME, period, reference=None, actor="t", now=NOW)
    (line,) = plan.invoice.lines
    assert (line.prepaid_minutes, line.line_amount, plan.draft.draws) == (0, Decimal("45.00"), ())
    # A block agreed to cover November (bought on 1 December, valid from 1 November) does.
    agreed = PrepaidBlock("pre-nov", "cus-1", 600, DEC_1, "tec-1", valid_from=date(2026, 11, 1))
    await store.add_prepaid_block(agreed)
    plan = await plan_invoice(store, COMPANY, ACME, period, reference=None, actor="t", now=NOW)
    (line,) = plan.invoice.lines
    assert (line.prepaid_minutes, line.line_amount) == (30, Decimal("0.00"))
    assert [(d.block_id, d.minutes) for d in plan.draft.draws] == [("pre-nov", 30)]
