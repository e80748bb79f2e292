"""Prepaid hours ("strippenkaart"): which blocks pay for which work, what they
pay of its surcharges, what is left, and what an invoice says about it (pure, no I/O).

- A block pays for work supplied from its first day up to and including its
  expiry day. Work is drawn oldest first; of the blocks that may pay for it, the
  one expiring first is drawn first, then the oldest.
- How a block meets surcharges (evening, weekend, holiday, urgency) is a named
  setting, ``pays``:

  ``base`` (the default)
      the block pays the billable minutes at the base rate; the surcharges on
      those minutes are still invoiced, on a line of their own;
  ``all``
      the block pays the surcharges too, drawn as minutes at the base rate: a
      weekend hour at +50 % draws 90 minutes.

- Blocks are drawn in whole minutes; a part of an entry paid by a block draws
  its share of the entry's surcharge minutes rounded up, and the minutes paid
  for are those the draw fully covers.
- The balance is what the blocks not expired hold; below the warning level
  (``warn_below_minutes``, 0: never) it is low. Every invoice of a customer with
  prepaid hours says what they paid, how, and the balance after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from relay.billing.invoice import money
from relay.model import PrepaidBalance, PrepaidBlock, PrepaidTerms

PAYS = ("base", "all")


@dataclass(frozen=True)
class Terms:
    """How a customer's prepaid hours work: what they pay of surcharges (``pays``,
    see :data:`PAYS`) and the balance below which it is low (0: never)."""

    pays: str = "base"
    warn_below_minutes: int = 120

    def low(self, left_minutes: int) -> bool:
        """Whether a balance of ``left_minutes`` is below the warning level."""
        return left_minutes < self.warn_below_minutes


DEFAULT_TERMS = Terms()


@dataclass(frozen=True)
class Work:
    """What one approved entry asks of the prepaid hours."""

    entry_id: str
    day: date  # supply date (the company's local day)
    minutes: int  # billable minutes
    amount: Decimal  # the entry's amount, surcharges included
    surcharge_minutes: Decimal = Decimal(0)  # its surcharges as minutes at the base rate


@dataclass(frozen=True)
class Draw:
    """Minutes taken from one block."""

    block_id: str
    minutes: int


@dataclass(frozen=True)
class Cover:
    """What prepaid blocks paid of one entry.

    ``minutes`` of its billable minutes were paid from ``draws``; under ``all`` the
    draws also hold the surcharge on them (:attr:`surcharge_drawn`); under ``base``
    ``surcharge_charged`` is the surcharge on them still to invoice.
    """

    minutes: int
    draws: tuple[Draw, ...]
    surcharge_charged: Decimal = Decimal("0.00")

    @property
    def drawn(self) -> int:
        """Minutes taken from the blocks."""
        return sum(d.minutes for d in self.draws)

    @property
    def surcharge_drawn(self) -> int:
        """Minutes taken from the blocks for surcharges (``all`` only)."""
        return self.drawn - self.minutes


def may_pay(block: PrepaidBlock, day: date) -> bool:
    """Whether ``block`` pays for work supplied on ``day``."""
    return block.first_day <= day and (block.expires_on is None or day <= block.expires_on)


def surcharge_minutes(explanation: dict[str, Any]) -> Decimal:
    """An entry's surcharges as minutes at its base rate: each billed second times
    its surcharge percentage (urgency included), from the entry's explanation.
    Zero for entries without one (the relay's default rate has no surcharges)."""
    billed = (explanation.get("surcharges") or {}).get("billed") or ()
    weighted = sum(
        (Decimal(b["billed_seconds"]) * Decimal(b["percent"]) for b in billed), Decimal(0)
    )
    return max(Decimal(0), weighted / 6000)  # seconds x percent -> minutes


def surcharge_share(work: Work, minutes: int) -> Decimal:
    """The surcharge on ``minutes`` of ``work``: its amount's surcharge part, pro rata."""
    if minutes <= 0 or work.minutes <= 0 or work.surcharge_minutes <= 0:
        return Decimal("0.00")
    whole = work.minutes + work.surcharge_minutes
    return money(work.amount * work.surcharge_minutes / whole * minutes / work.minutes)


def allocate_prepaid(
    work: Sequence[Work], balances: Iterable[PrepaidBalance], pays: str = "base"
) -> dict[str, Cover]:
    """What the blocks pay of each piece of ``work`` (in the order given: oldest
    first), by entry id; entries they pay nothing of are left out."""
    if pays not in PAYS:
        raise ValueError(f"unknown prepaid setting {pays!r}")
    usable = sorted(
        (b for b in balances if b.remaining_minutes > 0),
        key=lambda b: (b.block.expires_on or date.max, b.block.created_at, b.block.id),
    )
    left = {b.block.id: b.remaining_minutes for b in usable}
    out: dict[str, Cover] = {}
    for item in work:
        if item.minutes <= 0:
            continue
        blocks = [b.block.id for b in usable if left[b.block.id] and may_pay(b.block, item.day)]
        whole = Decimal(item.minutes)
        if pays == "all":
            whole += item.surcharge_minutes
        available = sum(left[block_id] for block_id in blocks)
        full = int(whole.to_integral_value(ROUND_CEILING))
        if available >= full:
            covered, need = item.minutes, full
        else:
            covered = int((available * item.minutes / whole).to_integral_value(ROUND_FLOOR))
            need = int((covered * whole / item.minutes).to_integral_value(ROUND_CEILING))
        if covered == 0:
            continue
        draws: list[Draw] = []
        for block_id in blocks:
            take = min(need, left[block_id])
            if take:
                left[block_id] -= take
                need -= take
                draws.append(Draw(block_id, take))
        charged = surcharge_share(item, covered) if pays == "base" else Decimal("0.00")
        out[item.entry_id] = Cover(covered, tuple(draws), charged)
    return out


def terms_for(default: Terms, own: PrepaidTerms | None) -> Terms:
    """The relay's ``default`` terms, overridden by what the customer has of its own."""
    if own is None:
        return default
    return Terms(
        pays=own.pays if own.pays is not None else default.pays,
        warn_below_minutes=(
            own.warn_below_minutes
            if own.warn_below_minutes is not None
            else default.warn_below_minutes
        ),
    )


def minutes_left(
    balances: Iterable[PrepaidBalance], on: date, drawn: Mapping[str, Cover] | None = None
) -> int | None:
    """Minutes the blocks not expired on ``on`` still hold (less what ``drawn`` takes);
    None when the customer never had prepaid hours."""
    listed = list(balances)
    if not listed:
        return None
    taken: dict[str, int] = {}
    for cover in (drawn or {}).values():
        for d in cover.draws:
            taken[d.block_id] = taken.get(d.block_id, 0) + d.minutes
    return sum(
        b.remaining_minutes - taken.get(b.block.id, 0)
        for b in listed
        if b.block.expires_on is None or b.block.expires_on >= on
    )


def clock_hours(minutes: int) -> str:
    """``90`` as ``1:30``."""
    return f"{minutes // 60}:{minutes % 60:02d}"


def invoice_notes(terms: Terms, covers: Mapping[str, Cover], left: int | None) -> tuple[str, ...]:
    """What an invoice says (in Dutch) about prepaid hours: what they paid and how
    surcharges were met, the balance after it, and a warning when it is low."""
    notes: list[str] = []
    paid = sum(c.minutes for c in covers.values())
    if paid and terms.pays == "base":
        notes.append(
            f"Strippenkaart: {clock_hours(paid)} uur werk betaald tegen het basistarief; "
            "toeslagen (avond, weekend, feestdag, spoed) over die uren worden gefactureerd."
        )
    elif paid:
        drawn = sum(c.drawn for c in covers.values())
        notes.append(
            f"Strippenkaart: {clock_hours(drawn)} uur afgeschreven, "
            f"{clock_hours(paid)} uur werk en {clock_hours(drawn - paid)} uur toeslagen "
            "(avond, weekend, feestdag, spoed)."
        )
    if left is not None:
        notes.append(f"Saldo strippenkaart na deze factuur: {clock_hours(left)} uur.")
        if terms.low(left):
            notes.append(
                "Let op: het saldo van uw strippenkaart is lager dan "
                f"{clock_hours(terms.warn_below_minutes)} uur."
            )
    return tuple(notes)
