"""Invoice documents: numbers, hours, cents, VAT per category, credit notes, exports."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from relay.billing.exports import to_csv, to_json
from relay.billing.invoice import (
    REVERSE_CHARGE,
    STANDARD,
    Invoice,
    InvoiceLine,
    Party,
    Period,
    Supplier,
    VatCategory,
    credit_note_for,
    hours,
    parse_number,
    totals,
)
from relay.billing.ubl import to_ubl
from relay.model import format_number
from relay.services.documents import InvoiceTemplates
from shared.errors import UsageError

MARCH = Period(date(2026, 3, 1), date(2026, 3, 31))
SUPPLIER = Supplier(
    Party(
        "Quarkpulse IT B.V.",
        ("Keizersgracht 100",),
        "1015 AA",
        "Amsterdam",
        "NL",
        endpoint_id="12345678",
        kvk_number="12345678",
        vat_id="NL123456782B01",
        email="facturen@quarkpulse.example",
    ),
    iban="NL91 ABNA 0417 1643 00",
)
CUSTOMER = Party(
    "Bakkerij De Vries B.V.",
    ("Dorpsstraat 12",),
    "3511 AB",
    "Utrecht",
    "NL",
    endpoint_id="87654321",
    kvk_number="87654321",
)
BELGIAN = Party(
    "Brasserie Lambiek BV",
    ("Grote Markt 5",),
    "1000",
    "Brussel",
    "BE",
    endpoint_id="0431701765",
    endpoint_scheme="0208",
    vat_id="BE0431701765",
)


def line(
    minutes: int,
    rate: str,
    *,
    prepaid: int = 0,
    vat: VatCategory = STANDARD,
    description: str = "Printer werkt niet",
    day: int = 3,
) -> InvoiceLine:
    return InvoiceLine(
        description=description,
        supply_date=date(2026, 3, day),
        technician="Alice",
        request_ref="REQ-17",
        actual_minutes=max(0, minutes - 2),
        billable_minutes=minutes,
        unit_price=Decimal(rate),
        vat=vat,
        prepaid_minutes=prepaid,
    )


def invoice(*lines: InvoiceLine, number: str = "2026-000123") -> Invoice:
    return Invoice(
        number=number,
        issue_date=date(2026, 4, 1),
        due_date=date(2026, 4, 15),
        period=MARCH,
        buyer_reference="PO-4711",
        lines=lines,
    )


def march_invoice() -> Invoice:
    """25 min at € 90 and 65 min (30 of them prepaid) at € 135 with an evening surcharge."""
    evening = replace(
        line(65, "135.00", prepaid=30, day=10, description="Server-update"),
        technician="Bob",
        request_ref=None,
        surcharges=("avond +50 %",),
    )
    return invoice(line(25, "90.00"), evening)


# -- numbers and hours ----------------------------------------------------------------


def test_invoice_numbers_are_year_and_six_digit_sequence() -> None:
    assert format_number(2026, 123) == "2026-000123"
    assert parse_number("2026-000123") == (2026, 123)
    assert parse_number(format_number(2027, 999_999)) == (2027, 999_999)


@pytest.mark.parametrize(("year", "seq"), [(26, 1), (2026, 0), (2026, 1_000_000), (2026, -1)])
def test_format_number_refuses_what_it_cannot_print(year: int, seq: int) -> None:
    with pytest.raises(UsageError):
        format_number(year, seq)


@pytest.mark.parametrize("text", ["2026-123", "2026-000000", "26-000123", "2026-000123x", ""])
def test_parse_number_refuses_other_shapes(text: str) -> None:
    with pytest.raises(UsageError, match="YYYY-NNNNNN"):
        parse_number(text)


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(0, "0"), (25, "0.416667"), (30, "0.5"), (60, "1"), (90, "1.5"), (600, "10"), (5, "0.083333")],
)
def test_hours_are_plain_decimals_with_at_most_six_places(minutes: int, text: str) -> None:
    assert str(hours(minutes)) == text


# -- lines and totals -----------------------------------------------------------------


def test_line_amount_is_charged_minutes_at_the_hourly_rate() -> None:
    assert line(25, "90.00").line_amount == Decimal("37.50")
    prepaid = line(65, "135.00", prepaid=30)
    assert prepaid.charged_minutes == 35
    assert prepaid.quantity == Decimal("0.583333")
    assert prepaid.line_amount == Decimal("78.75")


def test_line_amount_rounds_half_up_to_cents() -> None:
    # 1 minute at € 0.30/h is € 0.005: half-up gives a cent, half-even none.
    assert line(1, "0.30").line_amount == Decimal("0.01")


def test_totals_of_a_domestic_invoice_to_the_cent() -> None:
    sums = totals(march_invoice())
    assert sums.line_extension == Decimal("116.25")
    assert sums.tax_exclusive == Decimal("116.25")
    assert [(s.category, s.base, s.tax) for s in sums.vat] == [
        (STANDARD, Decimal("116.25"), Decimal("24.41"))  # 24.4125
    ]
    assert sums.tax == Decimal("24.41")
    assert sums.tax_inclusive == sums.payable == Decimal("140.66")


def test_vat_rounds_half_up_on_the_category_base() -> None:
    # 30 min at € 21 = € 10.50; 21 % of it is € 2.205.
    assert totals(invoice(line(30, "21.00"))).tax == Decimal("2.21")


def test_vat_is_rounded_per_category_not_per_line() -> None:
    # Three lines of € 0.50: per line 0.105 → 0.11 each (0.33); per category 0.315 → 0.32.
    sums = totals(invoice(line(1, "30.00"), line(1, "30.00"), line(1, "30.00")))
    assert sums.line_extension == Decimal("1.50")
    assert sums.tax == Decimal("0.32")
    assert sums.payable == Decimal("1.82")


def test_total_is_sum_of_lines_plus_vat_for_mixed_categories() -> None:
    doc = invoice(
        line(25, "90.00"),
        line(47, "117.37", vat=REVERSE_CHARGE),
        line(13, "64.99"),
    )
    sums = totals(doc)
    amounts = [ln.line_amount for ln in doc.lines]
    assert amounts == [Decimal("37.50"), Decimal("91.94"), Decimal("14.08")]
    assert [(s.category.code, s.base, s.tax) for s in sums.vat] == [
        ("S", Decimal("51.58"), Decimal("10.83")),  # 10.8318
        ("AE", Decimal("91.94"), Decimal("0.00")),
    ]
    assert sums.line_extension == sum(amounts) == Decimal("143.52")
    assert sums.tax_inclusive == sums.line_extension + sums.tax == Decimal("154.35")
    assert doc.reverse_charge


# -- credit notes ---------------------------------------------------------------------


def test_credit_note_mirrors_the_invoice_and_references_it() -> None:
    original = march_invoice()
    credit = credit_note_for(original, "2026-000124", date(2026, 4, 5))
    assert credit.kind == "credit_note"
    assert credit.number == "2026-000124"
    assert credit.issue_date == credit.due_date == date(2026, 4, 5)
    assert (credit.original_number, credit.original_issue_date) == ("2026-000123", date(2026, 4, 1))
    assert credit.lines == original.lines
    assert (credit.period, credit.buyer_reference) == (original.period, original.buyer_reference)
    assert totals(credit) == totals(original)


def test_a_credit_note_cannot_be_credited() -> None:
    credit = credit_note_for(march_invoice(), "2026-000124", date(2026, 4, 5))
    with pytest.raises(UsageError, match="is a credit note"):
        credit_note_for(credit, "2026-000125", date(2026, 4, 6))


@pytest.mark.parametrize(
    ("number", "day", "message"),
    [
        ("2026-000123", date(2026, 4, 5), "number of its own"),
        ("2026-000124", date(2026, 3, 31), "before"),
    ],
)
def test_credit_note_needs_own_number_and_a_later_date(
    number: str, day: date, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        credit_note_for(march_invoice(), number, day)


def test_only_credit_notes_carry_an_original_and_they_must() -> None:
    doc = march_invoice()
    with pytest.raises(UsageError, match="original invoice is missing"):
        replace(doc, kind="credit_note")
    with pytest.raises(UsageError, match="only credit notes"):
        replace(doc, original_number="2026-000001")


# -- refusing bad documents -------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"currency": "USD"}, "only EUR"),
        ({"lines": ()}, "no lines"),
        ({"number": "F-123"}, "YYYY-NNNNNN"),
        ({"due_date": date(2026, 3, 31)}, "due date"),
        ({"buyer_reference": " "}, "buyer reference"),
        ({"period": Period(date(2026, 3, 4), date(2026, 3, 31))}, "outside the period"),
    ],
)
def test_invalid_invoices_cannot_be_built(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        replace(march_invoice(), **changes)


def test_vat_categories_keep_their_rates() -> None:
    with pytest.raises(UsageError, match="AE"):
        VatCategory("AE", Decimal("21"))
    with pytest.raises(UsageError, match="above 0"):
        VatCategory("S", Decimal("0"))
    assert VatCategory("S", Decimal("21.00")) == STANDARD


def test_prepaid_minutes_cannot_exceed_billable_minutes() -> None:
    with pytest.raises(UsageError, match="prepaid"):
        line(30, "90.00", prepaid=31)


def test_supplier_needs_kvk_vat_and_a_valid_iban() -> None:
    assert SUPPLIER.iban == "NL91ABNA0417164300"
    assert SUPPLIER.due_date(date(2026, 4, 1)) == date(2026, 4, 15)
    with pytest.raises(UsageError, match="IBAN"):
        replace(SUPPLIER, iban="NL92ABNA0417164300")
    with pytest.raises(UsageError, match="KvK"):
        replace(SUPPLIER, party=replace(SUPPLIER.party, kvk_number=None))


@pytest.mark.parametrize(
    "changes",
    [
        {"address_lines": ()},
        {"address_lines": ("a", "b", "c")},
        {"country_code": "nl"},
        {"vat_id": "123456789B01"},
        {"city": ""},
    ],
)
def test_invalid_parties_cannot_be_built(changes: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        replace(CUSTOMER, **changes)


def test_ubl_refuses_parties_the_rules_would_reject() -> None:
    reverse = invoice(line(25, "90.00", vat=REVERSE_CHARGE))
    with pytest.raises(UsageError, match="reverse charge needs the VAT id"):
        to_ubl(reverse, SUPPLIER, replace(BELGIAN, vat_id=None))
    with pytest.raises(UsageError, match="KvK"):
        to_ubl(march_invoice(), SUPPLIER, replace(CUSTOMER, kvk_number=None))
    with pytest.raises(UsageError, match="profile"):
        to_ubl(march_invoice(), SUPPLIER, CUSTOMER, profile="xrechnung")  # type: ignore[arg-type]


# -- exports --------------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script>"


def to_html(doc: Invoice, supplier: Supplier, customer: Party) -> str:
    """The HTML export, from the packaged template."""
    return InvoiceTemplates(None).html(doc, supplier, customer)


def test_html_escapes_every_string() -> None:
    doc = replace(
        march_invoice(),
        buyer_reference='PO" onmouseover="x',
        lines=(replace(line(25, "90.00"), description=HOSTILE, technician="<b>Eve</b>"),),
    )
    page = to_html(doc, SUPPLIER, replace(CUSTOMER, legal_name="Acme & <Zonen>"))
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;Eve&lt;/b&gt;" in page
    assert "PO&#34; onmouseover=&#34;x" in page
    assert "Acme &amp; &lt;Zonen&gt;" in page
    assert "default-src 'none'" in page  # no script may run even if escaping slipped
    assert "img-src data:" in page  # only the embedded logo


def test_html_shows_lines_vat_and_supplier_ids() -> None:
    page = to_html(march_invoice(), SUPPLIER, CUSTOMER)
    assert "Factuur 2026-000123" in page
    # actual and charged time, prepaid, rate, surcharge (once, as a footnote), amount
    for text in ("0:23", "0:25", "1:03", "0:35", "0:30", "€ 135,00", "avond +50 %", "€ 78,75"):
        assert text in page
    assert page.count("avond +50 %") == 1
    assert "BTW 21 % over € 116,25" in page and "€ 24,41" in page and "€ 140,66" in page
    assert "KvK 12345678" in page and "NL123456782B01" in page and "NL91ABNA0417164300" in page
    assert "@page" in page and "size: A4" in page
    assert "verlegd" not in page.lower()


def test_html_notes_reverse_charge_and_credit_reference() -> None:
    doc = invoice(line(25, "90.00", vat=REVERSE_CHARGE))
    page = to_html(doc, SUPPLIER, BELGIAN)
    assert "Btw verlegd" in page and "BE0431701765" in page
    credit = to_html(credit_note_for(doc, "2026-000124", date(2026, 4, 5)), SUPPLIER, BELGIAN)
    assert "Creditnota 2026-000124" in credit
    assert "factuur 2026-000123 van 1 april 2026" in credit
    assert "Te crediteren" in credit


def test_csv_has_a_row_per_line_then_vat_and_totals() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(march_invoice()))))
    assert [r["record"] for r in rows] == [
        "line",
        "line",
        "vat",
        "total_excl_vat",
        "vat_total",
        "total_incl_vat",
        "payable",
    ]
    first, second = rows[0], rows[1]
    assert (first["actual_minutes"], first["billable_minutes"], first["amount"]) == (
        "23",
        "25",
        "37.50",
    )
    assert (second["prepaid_minutes"], second["quantity_hours"], second["surcharges"]) == (
        "30",
        "0.583333",
        "avond +50 %",
    )
    assert (rows[2]["vat_base"], rows[2]["vat_amount"]) == ("116.25", "24.41")
    assert rows[-1]["amount"] == "140.66"
    assert all(r["invoice_number"] == "2026-000123" for r in rows)


def test_csv_defuses_spreadsheet_formulas() -> None:
    doc = invoice(replace(line(25, "90.00"), description='=HYPERLINK("http://x","y")'))
    rows = list(csv.DictReader(io.StringIO(to_csv(doc))))
    assert rows[0]["description"] == '\'=HYPERLINK("http://x","y")'


def test_json_has_stable_keys_and_decimal_strings() -> None:
    text = to_json(march_invoice(), SUPPLIER, CUSTOMER)
    data = json.loads(text)
    assert json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) == text
    assert data["totals"] == {
        "line_extension": "116.25",
        "payable": "140.66",
        "tax": "24.41",
        "tax_exclusive": "116.25",
        "tax_inclusive": "140.66",
        "vat": [{"base": "116.25", "category": "S", "percent": "21", "tax": "24.41"}],
    }
    assert data["lines"][1]["quantity"] == {"unit_code": "HUR", "value": "0.583333"}
    assert data["lines"][1]["unit_price"] == "135.00"
    assert data["supplier"]["kvk_number"] == "12345678"
    assert data["original"] is None
    credit = json.loads(
        to_json(
            credit_note_for(march_invoice(), "2026-000124", date(2026, 4, 5)), SUPPLIER, CUSTOMER
        )
    )
    assert credit["kind"] == "credit_note"
    assert credit["original"] == {"issue_date": "2026-04-01", "number": "2026-000123"}
