"""From approved time entries to invoice lines, and between stored invoices and the
documents of :mod:`relay.billing.invoice` (pure, no I/O).

- :func:`allocate_prepaid` draws prepaid hours for entries, oldest work first,
  from the block that expires first.
- :func:`line_for` turns one entry into one line whose amount is the entry's own
  amount to the cent (less what prepaid hours paid), at a unit price that
  reproduces it: the entry's hourly rate when that does, else the effective rate
  with six decimals.
- :func:`document` rebuilds the :class:`~relay.billing.invoice.Invoice`, its
  supplier and its customer from a stored :class:`InvoiceRecord`, so every export
  of one invoice shows the same figures, however the parties' data changed since.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from relay.billing.invoice import (
    Invoice,
    InvoiceLine,
    Party,
    PaymentMeansCode,
    Period,
    Supplier,
    VatCategory,
    VatCode,
    money,
)
from relay.model import BillableEntry, InvoiceLineRecord, InvoiceRecord, PrepaidBalance
from shared.errors import UsageError

SERVICE_LABELS = {
    "remote_support": "Ondersteuning op afstand",
    "project": "Projectwerk",
    "on_call": "Storingsdienst",
    "phone": "Telefonische ondersteuning",
    "on_site": "Ondersteuning op locatie",
}
PRICE_STEP = Decimal("0.000001")
MAX_DESCRIPTION = 200
_MONTH = re.compile(r"(\d{4})-(\d{2})")


def month_period(text: str) -> Period:
    """``2026-11`` as the period 1–30 November 2026."""
    match = _MONTH.fullmatch(text.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise UsageError(f"period {text!r} should be a month such as 2026-11")
    start = date(int(match.group(1)), int(match.group(2)), 1)
    following = (start + timedelta(days=31)).replace(day=1)
    return Period(start, following - timedelta(days=1))


@dataclass(frozen=True)
class Draw:
    block_id: str
    minutes: int


def allocate_prepaid(
    entries: Sequence[tuple[str, date, int]], balances: Iterable[PrepaidBalance]
) -> dict[str, list[Draw]]:
    """Prepaid minutes per entry id, for ``(entry id, supply date, billable minutes)``
    in the order given (oldest work first). A block pays for work supplied from its
    first day up to and including its expiry day; the block expiring first is
    drawn first."""
    usable = sorted(
        (b for b in balances if b.remaining_minutes > 0),
        key=lambda b: (b.block.expires_on or date.max, b.block.created_at, b.block.id),
    )
    left = {b.block.id: b.remaining_minutes for b in usable}
    out: dict[str, list[Draw]] = {}
    for entry_id, day, minutes in entries:
        need = minutes
        for balance in usable:
            block = balance.block
            if need == 0:
                break
            if left[block.id] == 0 or day < block.first_day:
                continue
            if block.expires_on is not None and day > block.expires_on:
                continue
            take = min(need, left[block.id])
            left[block.id] -= take
            need -= take
            out.setdefault(entry_id, []).append(Draw(block.id, take))
    return out


def unit_price(entry: BillableEntry) -> Decimal:
    """An hourly price at which the entry's billable minutes cost exactly its amount."""
    minutes = entry.billable_minutes
    if minutes <= 0:  # e.g. recovered with no time seen: nothing is charged
        if entry.amount != 0:
            raise UsageError(f"time entry {entry.id} charges {entry.amount} for no minutes")
        return entry.hourly_rate
    if money(Decimal(minutes) * entry.hourly_rate / 60) == entry.amount:
        return entry.hourly_rate
    price = (entry.amount * 60 / Decimal(minutes)).quantize(PRICE_STEP, ROUND_HALF_UP)
    price = money(price) if price == money(price) else price.normalize()
    assert money(Decimal(minutes) * price / 60) == entry.amount, entry.id
    return price


def line_for(
    entry: BillableEntry,
    supply_date: date,
    technician: str,
    vat: VatCategory,
    prepaid_minutes: int = 0,
    agent: str = "",
    title: str = "",
) -> InvoiceLine:
    """The invoice line of one entry (its surcharges and discount described); the
    description ends in the entry's notes or else ``title``, its request's text."""
    description = SERVICE_LABELS.get(entry.service_type, entry.service_type)
    if agent:
        description += f" ({agent})"
    if note := " ".join(entry.notes.split()) or " ".join(title.split()):
        description += f": {note}"
    actual = (Decimal(entry.actual_seconds) / 60).quantize(Decimal(1), ROUND_HALF_UP)
    return InvoiceLine(
        description=description[:MAX_DESCRIPTION],
        supply_date=supply_date,
        technician=technician,
        request_ref=entry.request or None,
        actual_minutes=int(actual),
        billable_minutes=entry.billable_minutes,
        unit_price=unit_price(entry),
        vat=vat,
        surcharges=entry.surcharges,
        prepaid_minutes=prepaid_minutes,
    )


def line_record(position: int, entry_id: str | None, line: InvoiceLine) -> InvoiceLineRecord:
    return InvoiceLineRecord(
        position=position,
        entry_id=entry_id,
        description=line.description,
        supply_date=line.supply_date,
        technician=line.technician,
        request_ref=line.request_ref,
        actual_minutes=line.actual_minutes,
        billable_minutes=line.billable_minutes,
        prepaid_minutes=line.prepaid_minutes,
        unit_price=line.unit_price,
        vat_code=line.vat.code,
        vat_percent=line.vat.percent,
        surcharges=line.surcharges,
        amount=line.line_amount,
    )


def line_from_record(record: InvoiceLineRecord) -> InvoiceLine:
    codes: dict[str, VatCode] = {"S": "S", "AE": "AE", "O": "O"}
    if record.vat_code not in codes:
        raise UsageError(f"unknown VAT category {record.vat_code!r} on a stored invoice line")
    return InvoiceLine(
        description=record.description,
        supply_date=record.supply_date,
        technician=record.technician,
        request_ref=record.request_ref,
        actual_minutes=record.actual_minutes,
        billable_minutes=record.billable_minutes,
        unit_price=record.unit_price,
        vat=VatCategory(codes[record.vat_code], record.vat_percent),
        surcharges=record.surcharges,
        prepaid_minutes=record.prepaid_minutes,
    )


# -- party snapshots ----------------------------------------------------------------------


def party_json(party: Party) -> dict[str, Any]:
    return {
        "legal_name": party.legal_name,
        "address_lines": list(party.address_lines),
        "postcode": party.postcode,
        "city": party.city,
        "country_code": party.country_code,
        "endpoint_id": party.endpoint_id,
        "endpoint_scheme": party.endpoint_scheme,
        "kvk_number": party.kvk_number,
        "vat_id": party.vat_id,
        "email": party.email,
    }


def party_from_json(data: dict[str, Any]) -> Party:
    return Party(**{**data, "address_lines": tuple(data["address_lines"])})


def supplier_json(supplier: Supplier) -> dict[str, Any]:
    return {
        "party": party_json(supplier.party),
        "iban": supplier.iban,
        "payment_terms_days": supplier.payment_terms_days,
        "payment_means_code": supplier.payment_means_code,
    }


def supplier_from_json(data: dict[str, Any]) -> Supplier:
    means: PaymentMeansCode = "30" if data["payment_means_code"] == "30" else "58"
    return Supplier(
        party_from_json(data["party"]),
        iban=data["iban"],
        payment_terms_days=int(data["payment_terms_days"]),
        payment_means_code=means,
    )


def document(
    record: InvoiceRecord, original: InvoiceRecord | None = None
) -> tuple[Invoice, Supplier, Party]:
    """The document stored as ``record`` (a credit note needs its ``original``)."""
    credit = record.kind == "credit_note"
    if credit and original is None:
        raise UsageError(f"credit note {record.number}: the credited invoice is missing")
    invoice = Invoice(
        number=record.number,
        issue_date=record.issue_date,
        due_date=record.due_date,
        period=Period(record.period_start, record.period_end),
        buyer_reference=record.buyer_reference,
        lines=tuple(line_from_record(line) for line in record.lines),
        kind="credit_note" if credit else "invoice",
        currency=record.currency,
        original_number=original.number if credit and original else None,
        original_issue_date=original.issue_date if credit and original else None,
    )
    return invoice, supplier_from_json(record.supplier), party_from_json(record.customer)
