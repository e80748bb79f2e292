"""Invoice exports: CSV and JSON (pure, no I/O). The HTML and PDF invoice are
shaped by :mod:`relay.billing.document` and rendered by the relay's services.

* CSV: one ``line`` row per invoice line, then one ``vat`` row per VAT category and
  the ``total_excl_vat``, ``vat_total``, ``total_incl_vat`` and ``payable`` rows.
  Text cells that a spreadsheet would run as a formula get a leading ``'``.
* JSON: sorted keys, money and hours as decimal strings, dates in ISO 8601.

Credit notes carry the same positive amounts as the invoice they cancel; ``kind``
says which document it is.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from relay.billing.invoice import (
    Invoice,
    InvoiceLine,
    Party,
    Supplier,
    Totals,
    VatCategory,
    totals,
)

CSV_COLUMNS = (
    "record",
    "invoice_number",
    "kind",
    "issue_date",
    "line",
    "supply_date",
    "technician",
    "request_ref",
    "description",
    "actual_minutes",
    "billable_minutes",
    "prepaid_minutes",
    "quantity_hours",
    "unit_price",
    "surcharges",
    "vat_category",
    "vat_percent",
    "vat_base",
    "vat_amount",
    "amount",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# -- CSV ------------------------------------------------------------------------------


def to_csv(invoice: Invoice) -> str:
    """The invoice as CSV (RFC 4180, header row first): lines, VAT rows, totals."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    head = {
        "invoice_number": _cell(invoice.number),
        "kind": invoice.kind,
        "issue_date": invoice.issue_date.isoformat(),
    }
    for index, line in enumerate(invoice.lines, start=1):
        writer.writerow(head | _csv_line(index, line))
    sums = totals(invoice)
    for sub in sums.vat:
        writer.writerow(
            head
            | {
                "record": "vat",
                "vat_category": sub.category.code,
                "vat_percent": str(sub.category.percent),
                "vat_base": str(sub.base),
                "vat_amount": str(sub.tax),
            }
        )
    for record, value in (
        ("total_excl_vat", sums.tax_exclusive),
        ("vat_total", sums.tax),
        ("total_incl_vat", sums.tax_inclusive),
        ("payable", sums.payable),
    ):
        writer.writerow(head | {"record": record, "amount": str(value)})
    return out.getvalue()


def _csv_line(index: int, line: InvoiceLine) -> dict[str, str]:
    return {
        "record": "line",
        "line": str(index),
        "supply_date": line.supply_date.isoformat(),
        "technician": _cell(line.technician),
        "request_ref": _cell(line.request_ref or ""),
        "description": _cell(line.description),
        "actual_minutes": str(line.actual_minutes),
        "billable_minutes": str(line.billable_minutes),
        "prepaid_minutes": str(line.prepaid_minutes),
        "quantity_hours": str(line.quantity),
        "unit_price": str(line.unit_price),
        "surcharges": _cell("; ".join(line.surcharges)),
        "vat_category": line.vat.code,
        "vat_percent": str(line.vat.percent),
        "amount": str(line.line_amount),
    }


def _cell(text: str) -> str:
    """``text``, defused if a spreadsheet would evaluate it as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


# -- JSON -----------------------------------------------------------------------------


def to_json(invoice: Invoice, supplier: Supplier, customer: Party) -> str:
    """The invoice as JSON with sorted keys; Decimals as strings, dates ISO 8601."""
    return json.dumps(
        invoice_record(invoice, supplier, customer),
        sort_keys=True,
        indent=2,
        ensure_ascii=False,
    )


def invoice_record(invoice: Invoice, supplier: Supplier, customer: Party) -> dict[str, Any]:
    """The JSON-ready mapping behind :func:`to_json` (only str, int, bool, None, lists)."""
    sums = totals(invoice)
    original = None
    if invoice.original_number is not None and invoice.original_issue_date is not None:
        original = {
            "number": invoice.original_number,
            "issue_date": invoice.original_issue_date.isoformat(),
        }
    return {
        "kind": invoice.kind,
        "number": invoice.number,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "period": {
            "start": invoice.period.start.isoformat(),
            "end": invoice.period.end.isoformat(),
        },
        "currency": invoice.currency,
        "buyer_reference": invoice.buyer_reference,
        "original": original,
        "reverse_charge": invoice.reverse_charge,
        "supplier": _party_record(supplier.party)
        | {
            "iban": supplier.iban,
            "payment_terms_days": supplier.payment_terms_days,
            "payment_means_code": supplier.payment_means_code,
        },
        "customer": _party_record(customer),
        "lines": [_line_record(line) for line in invoice.lines],
        "totals": _totals_record(sums),
    }


def _party_record(party: Party) -> dict[str, Any]:
    return {
        "legal_name": party.legal_name,
        "address_lines": list(party.address_lines),
        "postcode": party.postcode,
        "city": party.city,
        "country_code": party.country_code,
        "kvk_number": party.kvk_number,
        "vat_id": party.vat_id,
        "email": party.email,
        "endpoint": {"id": party.endpoint_id, "scheme": party.endpoint_scheme},
    }


def _line_record(line: InvoiceLine) -> dict[str, Any]:
    return {
        "description": line.description,
        "supply_date": line.supply_date.isoformat(),
        "technician": line.technician,
        "request_ref": line.request_ref,
        "actual_minutes": line.actual_minutes,
        "billable_minutes": line.billable_minutes,
        "prepaid_minutes": line.prepaid_minutes,
        "quantity": {"value": str(line.quantity), "unit_code": "HUR"},
        "unit_price": str(line.unit_price),
        "surcharges": list(line.surcharges),
        "vat": _vat_record(line.vat),
        "line_amount": str(line.line_amount),
    }


def _vat_record(vat: VatCategory) -> dict[str, str]:
    return {"category": vat.code, "percent": str(vat.percent)}


def _totals_record(sums: Totals) -> dict[str, Any]:
    return {
        "vat": [
            _vat_record(sub.category) | {"base": str(sub.base), "tax": str(sub.tax)}
            for sub in sums.vat
        ],
        "line_extension": str(sums.line_extension),
        "tax_exclusive": str(sums.tax_exclusive),
        "tax": str(sums.tax),
        "tax_inclusive": str(sums.tax_inclusive),
        "payable": str(sums.payable),
    }
