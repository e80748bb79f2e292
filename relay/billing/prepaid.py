"""Prepaid hours ("strippenkaart"): which blocks pay for which work and what they
pay of its surcharges (pure, no I/O).

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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from relay.billing.invoice import money
from relay.model import PrepaidBalance, PrepaidBlock

PAYS = ("base", "all")


@dataclass(frozen=True)
class Terms:
    """How a customer's prepaid hours meet surcharges: ``pays`` (see :data:`PAYS`)."""

    pays: str = "base"


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
