"""Prepaid hours on invoices: a block pays only for work from its first day, meets
surcharges as the setting says (``base``: surcharges invoiced on a line of their
own; ``all``: drawn from the block too), and every invoice says so and shows the
balance, with a warning when it is low. SQLite file, fixed clock, no sockets."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from relay.billing.exports import to_json
from relay.billing.invoice import totals
from relay.billing.invoice_build import document, month_period
from relay.billing.prepaid import Terms, terms_for
from relay.model import BillableEntry, CreditRequest, PrepaidBlock, PrepaidTerms
from relay.services.documents import packaged_template, render_html
from relay.services.invoicing import Plan, plan_invoice
from relay.services.prepaid import relay_terms
from relay.services.time_entries import add_manual
from relay.services.timekeeping import RateBook
from relay.settings import Billing, Settings, load_settings
from relay.store.interface import Store
from shared.errors import ConfigError
from tests.unit.billing_helpers import local
from tests.unit.test_billing_invoicing import ACME, BILLING, COMPANY, NOW, approve, entry
from tests.unit.test_billing_manual import ALICE
from tests.unit.test_billing_timekeeping import import_card

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
    # The invoice still shows the balance the customer has.
    assert plan.invoice.notes == ("Saldo strippenkaart na deze factuur: 10:00 uur.",)
    assert plan.invoice.prepaid_left_minutes == plan.draft.prepaid_left_minutes == 600
    # A block agreed to cover November (bought on 1 December, valid from 1 November) does.
    agreed = PrepaidBlock("pre-nov", "cus-1", 600, DEC_1, "tec-1", valid_from=date(2026, 11, 1))
    await store.add_prepaid_block(agreed)
    plan = await plan_invoice(store, COMPANY, ACME, period, reference=None, actor="t", now=NOW)
    (line,) = plan.invoice.lines
    assert (line.prepaid_minutes, line.line_amount) == (30, Decimal("0.00"))
    assert [(d.block_id, d.minutes) for d in plan.draft.draws] == [("pre-nov", 30)]


async def weekend_hour(store: Store) -> BillableEntry:
    """Alice's remote work, Saturday 7 November 10:00-11:00: 90.00 + 50 % = 135.00."""
    await import_card(store)
    start = local("2026-11-07 10:00")
    work = {
        "service_type": "remote_support",
        "started_at": start,
        "ended_at": start + timedelta(hours=1),
    }
    made = await add_manual(store, RateBook(store), Billing(), ALICE, "cus-1", work, "tec-1", NOW)
    assert (made.amount, made.surcharges) == (Decimal("135.00"), ("weekend +50 % (60 min)",))
    await store.approve_entries([made.id], "tec-1", NOW)
    await store.set_customer_billing(BILLING)
    return made


async def plan_with(store: Store, minutes: int, pays: str) -> Plan:
    block = PrepaidBlock("pre-1", "cus-1", minutes, DEC_1, "tec-1", valid_from=date(2026, 11, 1))
    await store.add_prepaid_block(block)
    return await plan_invoice(
        store, COMPANY, ACME, month_period("2026-11"), reference=None, actor="t", now=NOW,
        prepaid_terms=Terms(pays=pays),
    )  # fmt: skip


def shown(plan: Plan) -> list[tuple[str, int, int, Decimal, Decimal, tuple[str, ...]]]:
    """Per line: description, billable and prepaid minutes, rate, amount, surcharges."""
    return [
        (ln.description, ln.billable_minutes, ln.prepaid_minutes, ln.unit_price, ln.line_amount,
         ln.surcharges)
        for ln in plan.invoice.lines
    ]  # fmt: skip


async def test_a_weekend_hour_on_base_terms_draws_the_hour_and_invoices_the_surcharge(
    store: Store,
) -> None:
    made = await weekend_hour(store)
    plan = await plan_with(store, 600, "base")
    weekend = ("weekend +50 % (60 min)",)
    assert shown(plan) == [
        ("Ondersteuning op afstand", 60, 60, Decimal("135.00"), Decimal("0.00"), weekend),
        (
            "Toeslagen over strippenkaarturen: Ondersteuning op afstand",
            60, 0, Decimal("45.00"), Decimal("45.00"), weekend,
        ),
    ]  # fmt: skip
    assert [(d.block_id, d.entry_id, d.minutes) for d in plan.draft.draws] == [
        ("pre-1", made.id, 60)
    ]
    assert [r.entry_id for r in plan.draft.lines] == [made.id, made.id]
    assert totals(plan.invoice).line_extension == plan.draft.total_excl_vat == Decimal("45.00")
    assert plan.invoice.notes == (
        "Strippenkaart: 1:00 uur werk betaald tegen het basistarief; toeslagen (avond, weekend, "
        "feestdag, spoed) over die uren worden gefactureerd.",
        "Saldo strippenkaart na deze factuur: 9:00 uur.",
    )


async def test_a_weekend_hour_on_all_terms_draws_its_surcharge_too(store: Store) -> None:
    await weekend_hour(store)
    plan = await plan_with(store, 600, "all")
    assert shown(plan) == [
        (
            "Ondersteuning op afstand", 60, 60, Decimal("135.00"), Decimal("0.00"),
            ("weekend +50 % (60 min)", "toeslag van strippenkaart (30 min)"),
        ),
    ]  # fmt: skip
    assert [d.minutes for d in plan.draft.draws] == [90]
    assert plan.draft.total_excl_vat == Decimal("0.00")
    assert plan.invoice.notes == (
        "Strippenkaart: 1:30 uur afgeschreven, 1:00 uur werk en 0:30 uur toeslagen "
        "(avond, weekend, feestdag, spoed).",
        "Saldo strippenkaart na deze factuur: 8:30 uur.",
    )


@pytest.mark.parametrize(
    ("pays", "drawn", "amounts"),
    [
        # 45 minutes pay 45 minutes of base time; the rest and the surcharge on the 45.
        ("base", 45, [Decimal("33.75"), Decimal("33.75")]),
        # 45 minutes pay 30 minutes with their surcharge; the other 30 are charged.
        ("all", 45, [Decimal("67.50")]),
    ],
)
async def test_a_block_too_small_pays_what_it_can(
    store: Store, pays: str, drawn: int, amounts: list[Decimal]
) -> None:
    await weekend_hour(store)
    plan = await plan_with(store, 45, pays)
    assert [d.minutes for d in plan.draft.draws] == [drawn]
    assert [ln.line_amount for ln in plan.invoice.lines] == amounts
    assert plan.invoice.notes[-2:] == (
        "Saldo strippenkaart na deze factuur: 0:00 uur.",
        "Let op: het saldo van uw strippenkaart is lager dan 2:00 uur.",
    )


async def test_the_balance_and_notes_are_kept_with_the_invoice_and_printed(
    store: Store,
) -> None:
    await weekend_hour(store)
    plan = await plan_with(store, 150, "base")
    record = await store.create_invoice(plan.draft)
    assert (record.notes, record.prepaid_left_minutes) == (plan.invoice.notes, 90)
    invoice, supplier, party = document(record)
    assert invoice == replace(plan.invoice, number=record.number)
    data = json.loads(to_json(invoice, supplier, party))
    assert (data["notes"], data["prepaid_left_minutes"]) == (list(plan.invoice.notes), 90)
    page = render_html(packaged_template(), "invoice.html.j2", invoice, supplier, party)
    assert '<p class="note">Saldo strippenkaart na deze factuur: 1:30 uur.</p>' in page
    assert "Let op: het saldo van uw strippenkaart is lager dan 2:00 uur." in page
    # A credit note gives the minutes back; it prints no balance of its own.
    note = await store.credit_invoice(CreditRequest("inv-c", record.id, NOW.date(), NOW, "t", ""))
    assert (note.notes, note.prepaid_left_minutes) == ((), None)
    assert (await store.prepaid_balances("cus-1"))[0].remaining_minutes == 150


async def test_a_customer_without_prepaid_hours_gets_no_notes(store: Store) -> None:
    await weekend_hour(store)
    plan = await plan_invoice(
        store, COMPANY, ACME, month_period("2026-11"), reference=None, actor="t", now=NOW
    )
    assert (plan.invoice.notes, plan.invoice.prepaid_left_minutes) == ((), None)
    assert [ln.line_amount for ln in plan.invoice.lines] == [Decimal("135.00")]


async def test_a_customers_own_terms_beat_the_relays(store: Store) -> None:
    await weekend_hour(store)
    own = PrepaidTerms("cus-1", NOW, "tec-1", pays="all", warn_below_minutes=600)
    await store.set_prepaid_terms(own)
    plan = await plan_with(store, 600, "base")  # the relay's terms say base
    assert [d.minutes for d in plan.draft.draws] == [90]
    assert plan.invoice.notes[-1] == (
        "Let op: het saldo van uw strippenkaart is lager dan 10:00 uur."
    )
    assert terms_for(Terms("base", 120), PrepaidTerms("cus-1", NOW, "t")) == Terms("base", 120)
    assert terms_for(Terms(), replace(own, pays=None)) == Terms("base", 600)
    assert not Terms(warn_below_minutes=0).low(0)


def test_prepaid_settings_in_relay_toml(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text('[billing]\nprepaid_pays = "all"\nprepaid_warn_below_hours = "1.5"\n')
    assert relay_terms(load_settings(path).billing) == Terms("all", 90)
    assert relay_terms(Settings().billing) == Terms("base", 120)
    for text, problem in (
        ('prepaid_pays = "some"', "prepaid_pays must be"),
        ('prepaid_warn_below_hours = "-1"', "prepaid_warn_below_hours must be"),
        ('prepaid_warn_below_hours = "0.001"', "prepaid_warn_below_hours must be"),
    ):
        path.write_text(f"[billing]\n{text}\n")
        with pytest.raises(ConfigError, match=problem):
            load_settings(path)
