"""Compliance for prepaid hours beyond drawing them: a block keeps the first day of
work it pays for (the day it was bought unless given)."""

from __future__ import annotations

from datetime import date

from relay.model import PrepaidBlock
from relay.store.interface import Store
from tests.store.records import T0, seed


async def test_a_block_keeps_its_first_day(store: Store) -> None:
    await seed(store)
    backdated = PrepaidBlock("pre-1", "cus-1", 600, T0, "tec-1", valid_from=date(2025, 12, 1))
    await store.add_prepaid_block(backdated)
    await store.add_prepaid_block(PrepaidBlock("pre-2", "cus-1", 60, T0, "tec-1"))
    first, second = (b.block for b in await store.prepaid_balances("cus-1"))
    assert first == backdated
    assert (second.valid_from, second.first_day) == (T0.date(), T0.date())
