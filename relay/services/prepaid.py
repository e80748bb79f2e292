"""Prepaid hours for an invoice: the customer's blocks and terms, and what each
approved entry asks of them (see :mod:`relay.billing.prepaid`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from relay.billing.prepaid import Cover, Terms, Work, allocate_prepaid, surcharge_minutes
from relay.model import BillableEntry, PrepaidBalance
from relay.settings import Billing
from relay.store.interface import Store


def relay_terms(billing: Billing) -> Terms:
    """The prepaid terms of relay.toml's ``[billing]`` section."""
    return Terms(pays=billing.prepaid_pays)


@dataclass(frozen=True)
class PrepaidPlan:
    """The terms that apply, the blocks as they were, and what they pay, by entry id."""

    terms: Terms
    balances: tuple[PrepaidBalance, ...]
    covers: dict[str, Cover]


async def prepaid_for(
    store: Store,
    customer_id: str,
    entries: Sequence[BillableEntry],
    days: Mapping[str, date],
    terms: Terms,
) -> PrepaidPlan:
    """What the customer's blocks pay of ``entries`` (oldest first), supplied on ``days``."""
    balances = tuple(await store.prepaid_balances(customer_id))
    if not any(b.remaining_minutes > 0 for b in balances):
        return PrepaidPlan(terms, balances, {})
    work = [
        Work(e.id, days[e.id], e.billable_minutes, e.amount, await _surcharge(store, e))
        for e in entries
    ]
    return PrepaidPlan(terms, balances, allocate_prepaid(work, balances, terms.pays))


async def _surcharge(store: Store, entry: BillableEntry) -> Decimal:
    """The entry's surcharge minutes; bulk reads leave its explanation out, so only
    entries that list surcharges are read again, whole."""
    if not entry.surcharges or not entry.card_digest:
        return Decimal(0)
    whole = entry if entry.details else await store.get_entry(entry.id)
    return surcharge_minutes(whole.details) if whole is not None else Decimal(0)
