"""From approved time entries to invoice lines, and between stored invoices and the
documents of :mod:`relay.billing.invoice` (pure, no I/O).

- :func:`line_for` turns one entry into one line whose amount is the entry's own
  amount to the cent (less what prepaid hours paid), at a unit price that
  reproduces it: the entry's hourly rate when that does, else the effective rate
  with six decimals.
- :func:`entry_lines` adds, when prepaid hours paid an entry's base time only
  (:mod:`relay.billing.prepaid`), the line charging the surcharges on it.
- :func:`document` rebuilds the :class:`~relay.billing.invoice.Invoice`, its
  supplier and its customer from a stored :class:`InvoiceRecord`, so every export
  of one invoice shows the same figures, however the parties' data changed since.
"""

from __future__ import annotations

import re
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
from relay.billing.prepaid import Cover
from relay.model import BillableEntry, InvoiceLineRecord, InvoiceRecord
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


def unit_price(entry: BillableEntry) -> Decimal:
    """An hourly price at which the entry's billable minutes cost exactly its amount."""
    if entry.billable_minutes <= 0:  # e.g. recovered with no time seen: nothing is charged
        if entry.amount != 0:
            raise UsageError(f"time entry {entry.id} charges {entry.amount} for no minutes")
        return entry.hourly_rate
    return price_for(entry.billable_minutes, entry.amount, entry.hourly_rate)


def price_for(minutes: int, amount: Decimal, rate: Decimal) -> Decimal:
    """An hourly price at which ``minutes`` (> 0) cost exactly ``amount``: ``rate``
    when it does, else the effective rate with up to six decimals."""
    if money(Decimal(minutes) * rate / 60) == amount:
        return rate
    price = (amount * 60 / Decimal(minutes)).quantize(PRICE_STEP, ROUND_HALF_UP)
    price = money(price) if price == money(price) else price.normalize()
    assert money(Decimal(minutes) * price / 60) == amount, (minutes, amount)
    return price


def line_for(
    entry: BillableEntry,
    supply_date: date,
    technician: str,
    vat: VatCategory,
    prepaid_minutes: int = 0,
    agent: str = "",
    title: str = "",
    notes: tuple[str, ...] = (),
) -> InvoiceLine:
    """The invoice line of one entry (its surcharges and discount described, and
    ``notes`` after them); the description ends in the entry's notes or else
    ``title``, its request's text."""
    description = _description(entry, agent)
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
        surcharges=entry.surcharges + notes,
        prepaid_minutes=prepaid_minutes,
    )


def _description(entry: BillableEntry, agent: str) -> str:
    description = SERVICE_LABELS.get(entry.service_type, entry.service_type)
    return f"{description} ({agent})" if agent else description


def entry_lines(
    entry: BillableEntry,
    supply_date: date,
    technician: str,
    vat: VatCategory,
    cover: Cover | None,
    agent: str = "",
    title: str = "",
) -> tuple[InvoiceLine, ...]:
    """The lines of one entry that prepaid hours paid ``cover`` of: its own line (see
    :func:`line_for`), and when they paid base time only, a line charging the
    surcharges on that time."""
    if cover is None:
        return (line_for(entry, supply_date, technician, vat, 0, agent, title),)
    drawn = cover.surcharge_drawn
    notes = (f"toeslag van strippenkaart ({drawn} min)",) if drawn else ()
    line = line_for(entry, supply_date, technician, vat, cover.minutes, agent, title, notes)
    if cover.surcharge_charged <= 0:
        return (line,)
    surcharge = InvoiceLine(
        description=f"Toeslagen over strippenkaarturen: {_description(entry, agent)}",
        supply_date=supply_date,
        technician=technician,
        request_ref=entry.request or None,
        actual_minutes=0,  # the time is on the entry's own line
        billable_minutes=cover.minutes,
        unit_price=price_for(cover.minutes, cover.surcharge_charged, entry.hourly_rate),
        vat=vat,
        surcharges=entry.surcharges,
    )
    return line, surcharge


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
        notes=record.notes,
        prepaid_left_minutes=record.prepaid_left_minutes,
    )
    return invoice, supplier_from_json(record.supplier), party_from_json(record.customer)
