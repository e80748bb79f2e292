"""Prepaid hours for an invoice: the customer's blocks and terms (relay.toml's
``[billing]`` defaults, changed by the customer's own), what each approved entry
asks of them, and the balance after it (see :mod:`relay.billing.prepaid`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from relay.billing.prepaid import (
    Cover,
    Terms,
    Work,
    allocate_prepaid,
    invoice_notes,
    minutes_left,
    surcharge_minutes,
    terms_for,
)
from relay.model import BillableEntry
from relay.settings import Billing
from relay.store.interface import Store


def relay_terms(billing: Billing) -> Terms:
    """The prepaid terms of relay.toml's ``[billing]`` section."""
    warn = int(billing.prepaid_warn_below_hours * 60)
    return Terms(pays=billing.prepaid_pays, warn_below_minutes=warn)


async def customer_terms(store: Store, customer_id: str, default: Terms) -> Terms:
    """The relay's ``default`` terms as the customer's own settings change them."""
    return terms_for(default, await store.get_prepaid_terms(customer_id))


@dataclass(frozen=True)
class PrepaidPlan:
    """The customer's terms, what the blocks pay by entry id, the balance after the
    invoice (None: no prepaid hours) and what the invoice says about it."""

    terms: Terms
    covers: dict[str, Cover]
    left_minutes: int | None
    notes: tuple[str, ...]


async def prepaid_for(
    store: Store,
    customer_id: str,
    entries: Sequence[BillableEntry],
    days: Mapping[str, date],
    issue: date,
    default: Terms,
) -> PrepaidPlan:
    """What the customer's blocks pay of ``entries`` (oldest first), supplied on
    ``days``, for an invoice issued on ``issue``."""
    terms = await customer_terms(store, customer_id, default)
    balances = await store.prepaid_balances(customer_id)
    covers: dict[str, Cover] = {}
    if any(b.remaining_minutes > 0 for b in balances):
        work = [
            Work(e.id, days[e.id], e.billable_minutes, e.amount, await _surcharge(store, e))
            for e in entries
        ]
        covers = allocate_prepaid(work, balances, terms.pays)
    left = minutes_left(balances, issue, covers)
    return PrepaidPlan(terms, covers, left, invoice_notes(terms, covers, left))


async def _surcharge(store: Store, entry: BillableEntry) -> Decimal:
    """The entry's surcharge minutes; bulk reads leave its explanation out, so only
    entries that list surcharges are read again, whole."""
    if not entry.surcharges or not entry.card_digest:
        return Decimal(0)
    whole = entry if entry.details else await store.get_entry(entry.id)
    return surcharge_minutes(whole.details) if whole is not None else Decimal(0)
