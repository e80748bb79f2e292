"""Compliance for prepaid hours beyond drawing them: a block keeps the first day of
work it pays for (the day it was bought unless given), a customer's own prepaid
terms are kept, and an invoice keeps the prepaid notes and balance it printed."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from relay.model import CreditRequest, PrepaidBlock, PrepaidTerms
from relay.store.interface import Store
from shared.errors import ConflictError
from tests.store.records import T0, at, seed
from tests.store.test_billing_store import approved, draft


async def test_a_block_keeps_its_first_day(store: Store) -> None:
    await seed(store)
    backdated = PrepaidBlock("pre-1", "cus-1", 600, T0, "tec-1", valid_from=date(2025, 12, 1))
    await store.add_prepaid_block(backdated)
    await store.add_prepaid_block(PrepaidBlock("pre-2", "cus-1", 60, T0, "tec-1"))
    first, second = (b.block for b in await store.prepaid_balances("cus-1"))
    assert first == backdated
    assert (second.valid_from, second.first_day) == (T0.date(), T0.date())


async def test_a_customers_prepaid_terms_are_replaced_whole(store: Store) -> None:
    await seed(store)
    assert await store.get_prepaid_terms("cus-1") is None
    terms = PrepaidTerms("cus-1", T0, "tec-1", pays="all", warn_below_minutes=300)
    await store.set_prepaid_terms(terms)
    assert await store.get_prepaid_terms("cus-1") == terms
    back = PrepaidTerms("cus-1", at(5), "tec-2", warn_below_minutes=0)
    await store.set_prepaid_terms(back)
    assert await store.get_prepaid_terms("cus-1") == back
    with pytest.raises(ConflictError):
        await store.set_prepaid_terms(replace(terms, customer_id="cus-unknown"))


async def test_an_invoice_keeps_its_prepaid_notes_and_balance(store: Store) -> None:
    await seed(store)
    await approved(store, "ent-1", "ent-2")
    notes = ("Saldo strippenkaart na deze factuur: 1:30 uur.", "Let op: …")
    made = await store.create_invoice(replace(draft(), notes=notes, prepaid_left_minutes=90))
    plain = await store.create_invoice(draft("inv-2", ("ent-2",)))
    kept = await store.get_invoice(made.number)
    assert kept is not None
    assert (made.notes, made.prepaid_left_minutes) == (notes, 90)
    assert (kept.notes, kept.prepaid_left_minutes) == (notes, 90)
    assert (plain.notes, plain.prepaid_left_minutes) == ((), None)
    listed = {r.number: r for r in await store.list_invoices()}
    assert listed[made.number].notes == notes
    credit = await store.credit_invoice(
        CreditRequest("inv-c", made.id, date(2026, 2, 2), at(60), "tec-1", "")
    )
    assert (credit.notes, credit.prepaid_left_minutes) == ((), None)
