"""The invoice as people read it (relay.billing.document): Dutch labels, no empty
columns, rates to the cent with surcharges explained once, credit notes negative,
and an invoice paid from prepaid hours that says so."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from relay.billing.document import (
    SETTLED_NOTE,
    InvoiceDocument,
    eur,
    period_text,
    rate_note,
    shape,
    surcharge_dutch,
)
from relay.billing.invoice import REVERSE_CHARGE, VatCategory, credit_note_for
from tests.unit.test_billing_invoice import (
    BELGIAN,
    CUSTOMER,
    SUPPLIER,
    invoice,
    line,
    march_invoice,
)


def column(doc: InvoiceDocument, key: str) -> list[str]:
    """The texts of one column, top to bottom."""
    return [cell.text for row in doc.rows for cell in row if cell.key == key]


def test_labels_are_dutch_and_the_figures_formatted() -> None:
    doc = shape(march_invoice(), SUPPLIER, CUSTOMER)
    assert (doc.title, doc.heading) == ("Factuur", "Factuur 2026-000123")
    assert doc.meta == (
        ("Factuurnummer", "2026-000123"),
        ("Factuurdatum", "1 april 2026"),
        ("Vervaldatum", "15 april 2026"),
        ("Periode", "1 t/m 31 maart 2026"),
        ("Uw referentie", "PO-4711"),
    )
    assert [c.label for c in doc.columns] == [
        "Datum", "Omschrijving", "Werkelijk", "Vooruitbetaald", "Aantal (uur)", "Tarief", "Bedrag",
    ]  # fmt: skip
    descriptions = [(c.text, c.detail) for row in doc.rows for c in row if c.key == "omschrijving"]
    assert descriptions == [
        ("Printer werkt niet", "Verzoek REQ-17 · door Alice"),
        ("Server-update", "door Bob"),  # no request: no empty "Verzoek"
    ]
    assert column(doc, "datum") == ["03-03-2026", "10-03-2026"]
    assert column(doc, "aantal") == ["0:25", "0:35"]  # charged: 65 min less 30 prepaid
    assert column(doc, "vooruitbetaald") == ["", "0:30"]
    assert column(doc, "bedrag") == ["€ 37,50", "€ 78,75"]
    assert [(t.key, t.label, t.amount) for t in doc.totals] == [
        ("subtotal", "Subtotaal", "€ 116,25"),
        ("vat", "BTW 21 % over € 116,25", "€ 24,41"),
        ("total", "Totaal", "€ 140,66"),
    ]
    assert doc.payment == (
        "Gelieve € 140,66 vóór 15 april 2026 over te maken op NL91ABNA0417164300 t.n.v. "
        "Quarkpulse IT B.V. onder vermelding van factuurnummer 2026-000123."
    )
    assert doc.notes == ("Verrekend met uw vooruitbetaalde uren: 0:30 uur.",)
    assert doc.company_ids == (
        "KvK 12345678",
        "BTW-nummer NL123456782B01",
        "IBAN NL91ABNA0417164300",
        "facturen@quarkpulse.example",
    )


def test_a_column_without_values_is_left_out() -> None:
    plain = replace(line(25, "90.00"), request_ref=None)
    doc = shape(invoice(plain, replace(plain, supply_date=date(2026, 3, 4))), SUPPLIER, CUSTOMER)
    keys = [c.key for c in doc.columns]
    assert "vooruitbetaald" not in keys
    assert all(len(row) == len(doc.columns) for row in doc.rows)
    # One VAT rate: it shows in the totals, not on every line; two rates: on the lines.
    assert "btw" not in keys
    low = replace(plain, vat=VatCategory("S", Decimal("9")))
    mixed = shape(invoice(plain, low), SUPPLIER, CUSTOMER)
    assert column(mixed, "btw") == ["21 %", "9 %"]
    assert [t.label for t in mixed.totals if t.key == "vat"] == [
        "BTW 21 % over € 37,50",
        "BTW 9 % over € 37,50",
    ]


def test_rates_show_cents_and_a_surcharge_is_explained_once() -> None:
    evening = replace(line(60, "135.00"), surcharges=("evening +50 % (30 min)",))
    lines = (
        evening,
        replace(evening, surcharges=("evening +50 % (10 min)",), supply_date=date(2026, 3, 5)),
        replace(line(25, "93.461538"), supply_date=date(2026, 3, 6)),
        replace(
            line(30, "108.00"),
            supply_date=date(2026, 3, 7),
            surcharges=("night + urgent +100 % (5 min)", "discount -10 %"),
        ),
    )
    doc = shape(invoice(*lines), SUPPLIER, CUSTOMER)
    assert column(doc, "tarief") == ["€ 135,00", "€ 135,00", "€ 93,46", "€ 108,00"]
    marks = [cell.mark for row in doc.rows for cell in row if cell.key == "tarief"]
    assert marks == ["*", "*", "", "**"]
    assert [(f.mark, f.text) for f in doc.footnotes] == [
        ("*", "Tarief inclusief toeslag avond +50 %."),
        ("**", "Tarief inclusief toeslag nacht + spoed +100 % en korting 10 %."),
    ]
    assert all(cell.mark == "" for row in doc.rows for cell in row if cell.key != "tarief")
    assert all(cell.detail == "" for row in doc.rows for cell in row if cell.key != "omschrijving")


@pytest.mark.parametrize(
    ("label", "dutch"),
    [
        ("evening +50 % (30 min)", ("avond +50 %", False)),
        ("weekend + urgent +75 % (12.5 min)", ("weekend + spoed +75 %", False)),
        ("holiday + holiday kings_day +100 % (60 min)", ("feestdag (Koningsdag) +100 %", False)),
        ("discount -12.5 %", ("12,5 %", True)),
        ("lunch +20 % (5 min)", ("lunch +20 %", False)),  # the company's own window name
        ("avond +50 %", ("avond +50 %", False)),
        ("something else", ("something else", False)),
    ],
)
def test_surcharge_names_are_dutch(label: str, dutch: tuple[str, bool]) -> None:
    assert surcharge_dutch(label) == dutch


def test_a_rate_without_surcharges_needs_no_note() -> None:
    assert rate_note(()) == ""
    assert rate_note(("urgent +25 % (20 min)",)) == "Tarief inclusief toeslag spoed +25 %."


def test_a_credit_note_shows_negative_amounts() -> None:
    credit = credit_note_for(march_invoice(), "2026-000124", date(2026, 4, 5))
    doc = shape(credit, SUPPLIER, CUSTOMER)
    assert doc.heading == "Creditnota 2026-000124"
    assert ("Creditering van", "factuur 2026-000123 van 1 april 2026") in doc.meta
    assert "Vervaldatum" not in dict(doc.meta)
    assert column(doc, "bedrag") == ["€ -37,50", "€ -78,75"]
    assert column(doc, "tarief") == ["€ 90,00", "€ 135,00"]  # rates stay positive
    assert [t.amount for t in doc.totals] == ["€ -116,25", "€ -24,41", "€ -140,66"]
    assert doc.payment.startswith("Te crediteren: € 140,66.")
    assert doc.notes == ("Teruggeboekt op uw vooruitbetaalde uren: 0:30 uur.",)


def test_an_invoice_paid_from_prepaid_hours_says_so() -> None:
    doc = shape(
        invoice(line(25, "90.00", prepaid=25), line(60, "90.00", prepaid=60, day=4)),
        SUPPLIER,
        CUSTOMER,
    )
    assert doc.settled and doc.payment == f"{SETTLED_NOTE}."
    assert SETTLED_NOTE == "Volledig voldaan uit vooruitbetaalde uren"
    assert "Gelieve" not in doc.payment
    assert doc.notes == ("Verrekend met uw vooruitbetaalde uren: 1:25 uur.",)
    nothing = shape(invoice(line(0, "90.00")), SUPPLIER, CUSTOMER)
    assert (nothing.settled, nothing.payment) == (False, "Er is niets te betalen.")


def test_reverse_charge_and_a_foreign_address() -> None:
    doc = shape(invoice(line(25, "90.00", vat=REVERSE_CHARGE)), SUPPLIER, BELGIAN)
    assert doc.customer.lines == ("Grote Markt 5", "1000 Brussel", "BELGIË")
    assert doc.supplier.lines == ("Keizersgracht 100", "1015 AA Amsterdam")  # home: no country
    assert ("Uw BTW-nummer", "BE0431701765") in doc.meta
    assert [(t.label, t.amount) for t in doc.totals if t.key == "vat"] == [
        ("BTW verlegd", "€ 0,00")
    ]
    assert doc.notes[-1].startswith("Btw verlegd — reverse charge")
    assert doc.notes[-1].endswith("BTW-nummer afnemer: BE0431701765")


def test_money_dates_and_periods_are_written_the_dutch_way() -> None:
    assert eur(Decimal("1234567.5")) == "€ 1.234.567,50"
    assert eur(Decimal("-0.004")) == "€ 0,00"
    assert eur(Decimal("-12.345")) == "€ -12,35"
    assert period_text(date(2026, 3, 1), date(2026, 3, 31)) == "1 t/m 31 maart 2026"
    assert period_text(date(2026, 2, 15), date(2026, 3, 14)) == "15 februari t/m 14 maart 2026"
    assert period_text(date(2025, 12, 1), date(2026, 1, 31)) == (
        "1 december 2025 t/m 31 januari 2026"
    )
