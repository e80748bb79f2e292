"""Invoice exports: CSV and JSON (pure, no I/O). The HTML and PDF invoice are
shaped by :mod:`relay.billing.document` and rendered by the relay's services.

* CSV: one ``line`` row per invoice line, then one ``vat`` row per VAT category and
  the ``total_excl_vat``, ``vat_total``, ``total_incl_vat`` and ``payable`` rows.
  Text cells that a spreadsheet would run as a formula get a leading ``'``.
  Dialect ``rfc4180`` (the default): commas, decimal points. Dialect ``nl`` is what
  a Dutch Excel opens in columns: semicolons, decimal commas, a UTF-8 BOM.
* JSON: sorted keys, money and hours as decimal strings, dates in ISO 8601.

On a credit note every amount — line amounts, VAT bases and amounts, totals — is
negative; quantities and unit prices stay positive, and ``kind`` says which
document it is. (UBL keeps positive amounts: there the document type carries the
sign.)
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from relay.billing.invoice import (
    Invoice,
    InvoiceLine,
    Party,
    Supplier,
    Totals,
    VatCategory,
    totals,
)

CsvDialect = Literal["rfc4180", "nl"]
CSV_DIALECTS: tuple[CsvDialect, ...] = ("rfc4180", "nl")
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
_BOM = "\ufeff"  # lets Excel read the file as UTF-8


def signed(invoice: Invoice, amount: Decimal) -> Decimal:
    """``amount`` as an export shows it: negative on a credit note (never ``-0.00``)."""
    return -amount if invoice.kind == "credit_note" and amount != 0 else amount


# -- CSV ------------------------------------------------------------------------------


def to_csv(invoice: Invoice, dialect: CsvDialect = "rfc4180") -> str:
    """The invoice as CSV (header row first): lines, VAT rows, totals."""
    out = io.StringIO()
    dutch = dialect == "nl"
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, delimiter=";" if dutch else ",")
    num: Callable[[Decimal], str] = _decimal_comma if dutch else str
    writer.writeheader()
    head = {
        "invoice_number": _cell(invoice.number),
        "kind": invoice.kind,
        "issue_date": invoice.issue_date.isoformat(),
    }
    for index, line in enumerate(invoice.lines, start=1):
        amount = signed(invoice, line.line_amount)
        writer.writerow(head | _csv_line(index, line, amount, num))
    sums = totals(invoice)
    for sub in sums.vat:
        writer.writerow(
            head
            | {
                "record": "vat",
                "vat_category": sub.category.code,
                "vat_percent": num(sub.category.percent),
                "vat_base": num(signed(invoice, sub.base)),
                "vat_amount": num(signed(invoice, sub.tax)),
            }
        )
    for record, value in (
        ("total_excl_vat", sums.tax_exclusive),
        ("vat_total", sums.tax),
        ("total_incl_vat", sums.tax_inclusive),
        ("payable", sums.payable),
    ):
        writer.writerow(head | {"record": record, "amount": num(signed(invoice, value))})
    return (_BOM if dutch else "") + out.getvalue()


def _csv_line(
    index: int, line: InvoiceLine, amount: Decimal, num: Callable[[Decimal], str]
) -> dict[str, str]:
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
        "quantity_hours": num(line.quantity),
        "unit_price": num(line.unit_price),
        "surcharges": _cell("; ".join(line.surcharges)),
        "vat_category": line.vat.code,
        "vat_percent": num(line.vat.percent),
        "amount": num(amount),
    }


def _cell(text: str) -> str:
    """``text``, defused if a spreadsheet would evaluate it as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _decimal_comma(value: Decimal) -> str:
    return str(value).replace(".", ",")


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
        "lines": [_line_record(line, signed(invoice, line.line_amount)) for line in invoice.lines],
        "totals": _totals_record(sums, lambda amount: str(signed(invoice, amount))),
        "notes": list(invoice.notes),
        "prepaid_left_minutes": invoice.prepaid_left_minutes,
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


def _line_record(line: InvoiceLine, amount: Decimal) -> dict[str, Any]:
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
        "line_amount": str(amount),
    }


def _vat_record(vat: VatCategory) -> dict[str, str]:
    return {"category": vat.code, "percent": str(vat.percent)}


def _totals_record(sums: Totals, money: Callable[[Decimal], str]) -> dict[str, Any]:
    return {
        "vat": [
            _vat_record(sub.category) | {"base": money(sub.base), "tax": money(sub.tax)}
            for sub in sums.vat
        ],
        "line_extension": money(sums.line_extension),
        "tax_exclusive": money(sums.tax_exclusive),
        "tax": money(sums.tax),
        "tax_inclusive": money(sums.tax_inclusive),
        "payable": money(sums.payable),
    }
