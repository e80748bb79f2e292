"""Invoice exports: CSV, JSON and a printable HTML page (pure, no I/O).

* CSV: one ``line`` row per invoice line, then one ``vat`` row per VAT category and
  the ``total_excl_vat``, ``vat_total``, ``total_incl_vat`` and ``payable`` rows.
  Text cells that a spreadsheet would run as a formula get a leading ``'``.
* JSON: sorted keys, money and hours as decimal strings, dates in ISO 8601.
* HTML: one self-contained page (inline CSS, no scripts allowed by its CSP), every
  piece of data escaped with :func:`html.escape`.

Credit notes carry the same positive amounts as the invoice they cancel; ``kind``
says which document it is.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from html import escape
from typing import Any

from relay.billing.invoice import (
    Invoice,
    InvoiceLine,
    Party,
    Supplier,
    Totals,
    VatCategory,
    money,
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
REVERSE_CHARGE_NOTE = (
    "Btw verlegd — reverse charge: VAT to be accounted for by the customer "
    "(art. 196 Council Directive 2006/112/EC)."
)
OUTSIDE_SCOPE_NOTE = (
    "Niet onderworpen aan Nederlandse btw — not subject to Dutch VAT: the service is "
    "supplied where the customer is established (art. 44 Council Directive 2006/112/EC)."
)


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


# -- HTML -----------------------------------------------------------------------------

_CSS = """
@page { size: A4; margin: 15mm; }
* { box-sizing: border-box; }
body { font: 10pt/1.4 "Helvetica Neue", Arial, sans-serif; color: #111; margin: 0 auto;
       max-width: 190mm; padding: 8mm 0; }
header { display: flex; justify-content: space-between; gap: 12mm; margin-bottom: 8mm; }
h1 { font-size: 18pt; margin: 0 0 2mm; }
h2 { font-size: 11pt; margin: 6mm 0 2mm; }
address { font-style: normal; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0 4mm; margin: 0; }
dl.meta dt { font-weight: bold; }
dl.meta dd { margin: 0; }
table { width: 100%; border-collapse: collapse; }
th, td { padding: 1.5mm 2mm; border-bottom: 0.3mm solid #ccc; vertical-align: top;
         text-align: left; }
th { background: #eee; font-size: 9pt; }
td.num, th.num { text-align: right; white-space: nowrap; }
tfoot td { border-bottom: none; }
tr.grand td { font-weight: bold; border-top: 0.5mm solid #111; }
p.reverse-charge { border: 0.4mm solid #111; padding: 2mm 3mm; font-weight: bold; }
footer { margin-top: 10mm; font-size: 9pt; color: #333; border-top: 0.3mm solid #ccc;
         padding-top: 2mm; }
@media print {
  body { padding: 0; max-width: none; }
  thead { display: table-header-group; }
  tr { page-break-inside: avoid; }
}
""".strip()

_MONTHS = (
    "januari februari maart april mei juni juli augustus september oktober november december"
).split()


def to_html(invoice: Invoice, supplier: Supplier, customer: Party) -> str:
    """A printable, self-contained HTML invoice (Dutch), every value escaped."""
    credit = invoice.kind == "credit_note"
    title = f"{'Creditnota' if credit else 'Factuur'} {invoice.number}"
    sums = totals(invoice)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="nl">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{_e(title)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<div><h1>{_e(title)}</h1>{_address(supplier.party)}</div>",
        _meta(invoice, customer),
        "</header>",
        "<section><h2>Aan</h2>",
        _address(customer),
        "</section>",
        _lines_table(invoice),
        _vat_table(sums),
        _totals_table(sums, credit),
    ]
    if invoice.reverse_charge:
        parts.append(
            f'<p class="reverse-charge">{_e(REVERSE_CHARGE_NOTE)} '
            f"Btw-nummer afnemer: {_e(customer.vat_id or '')}</p>"
        )
    if invoice.outside_scope:
        parts.append(f'<p class="reverse-charge">{_e(OUTSIDE_SCOPE_NOTE)}</p>')
    parts += [_footer(invoice, supplier, sums), "</body>", "</html>", ""]
    return "\n".join(parts)


def _meta(invoice: Invoice, customer: Party) -> str:
    rows = [
        ("Nummer", invoice.number),
        ("Datum", _date(invoice.issue_date)),
    ]
    if invoice.kind == "credit_note" and invoice.original_issue_date is not None:
        rows.append(
            (
                "Creditering van",
                f"factuur {invoice.original_number} van {_date(invoice.original_issue_date)}",
            )
        )
    else:
        rows.append(("Vervaldatum", _date(invoice.due_date)))
    rows += [
        ("Periode", f"{_date(invoice.period.start)} t/m {_date(invoice.period.end)}"),
        ("Uw referentie", invoice.buyer_reference),
    ]
    if customer.vat_id:
        rows.append(("Uw btw-nummer", customer.vat_id))
    body = "".join(f"<dt>{_e(key)}</dt><dd>{_e(value)}</dd>" for key, value in rows)
    return f'<dl class="meta">{body}</dl>'


def _address(party: Party) -> str:
    lines = [
        f"<strong>{_e(party.legal_name)}</strong>",
        *(_e(line) for line in party.address_lines),
        f"{_e(party.postcode)} {_e(party.city)}",
        _e(party.country_code),
    ]
    return "<address>" + "<br>".join(lines) + "</address>"


def _lines_table(invoice: Invoice) -> str:
    head = (
        "<tr><th>Datum</th><th>Technicus</th><th>Verzoek</th><th>Omschrijving</th>"
        '<th class="num">Werkelijk</th><th class="num">Gefactureerd</th>'
        '<th class="num">Strippenkaart</th><th class="num">Tarief/uur</th>'
        '<th>Toeslagen</th><th class="num">Btw</th><th class="num">Bedrag</th></tr>'
    )
    rows = [_line_row(line) for line in invoice.lines]
    return (
        f"<h2>Werkzaamheden</h2><table><thead>{head}</thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _line_row(line: InvoiceLine) -> str:
    cells = (
        ("", _date(line.supply_date)),
        ("", line.technician),
        ("", line.request_ref or ""),
        ("", line.description),
        ("num", _duration(line.actual_minutes)),
        ("num", _duration(line.billable_minutes)),
        ("num", _duration(line.prepaid_minutes) if line.prepaid_minutes else ""),
        ("num", _eur(line.unit_price)),
        ("", ", ".join(line.surcharges)),
        ("num", _vat_label(line.vat)),
        ("num", _eur(line.line_amount)),
    )
    return "<tr>" + "".join(_td(text, cls) for cls, text in cells) + "</tr>"


def _td(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{_e(text)}</td>"


def _vat_table(sums: Totals) -> str:
    rows = "".join(
        f"<tr><td>{_e(_vat_label(sub.category))}</td>"
        f'<td class="num">{_e(_eur(sub.base))}</td>'
        f'<td class="num">{_e(_eur(sub.tax))}</td></tr>'
        for sub in sums.vat
    )
    return (
        '<h2>Btw-specificatie</h2><table class="vat"><thead><tr><th>Tarief</th>'
        '<th class="num">Grondslag</th><th class="num">Btw</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _totals_table(sums: Totals, credit: bool) -> str:
    rows = [
        ("Totaal excl. btw", sums.tax_exclusive, ""),
        ("Btw", sums.tax, ""),
        ("Totaal incl. btw", sums.tax_inclusive, ""),
        ("Te crediteren" if credit else "Te betalen", sums.payable, ' class="grand"'),
    ]
    body = "".join(
        f'<tr{cls}><td>{_e(label)}</td><td class="num">{_e(_eur(value))}</td></tr>'
        for label, value, cls in rows
    )
    return f'<h2>Totaal</h2><table class="totals"><tbody>{body}</tbody></table>'


def _footer(invoice: Invoice, supplier: Supplier, sums: Totals) -> str:
    party = supplier.party
    if invoice.kind == "credit_note":
        pay = (
            f"Dit bedrag van {_eur(sums.payable)} wordt verrekend of teruggestort; "
            f"het crediteert factuur {invoice.original_number}."
        )
    else:
        pay = (
            f"Gelieve {_eur(sums.payable)} vóór {_date(invoice.due_date)} over te maken "
            f"op {supplier.iban} t.n.v. {party.legal_name} "
            f"onder vermelding van {invoice.number}."
        )
    ids = [f"KvK {party.kvk_number}", f"btw-nummer {party.vat_id}", f"IBAN {supplier.iban}"]
    if party.email:
        ids.append(party.email)
    return f"<footer><p>{_e(pay)}</p><p>{_e(' · '.join(ids))}</p></footer>"


# -- formatting -----------------------------------------------------------------------


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _eur(value: Decimal) -> str:
    """Dutch money notation: ``€ 1.234,56`` (``-`` before the sign when negative)."""
    text = f"{money(abs(value)):,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
    return f"{'-' if value < 0 else ''}€ {text}"


def _date(day: date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _duration(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


def _vat_label(vat: VatCategory) -> str:
    if vat.outside_scope:
        return "buiten btw"
    return "verlegd" if vat.reverse_charge else f"{vat.percent} %"
