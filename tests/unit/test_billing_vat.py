"""VAT categories per customer (21 % at home, reverse charge for EU businesses,
outside the scope of VAT beyond the EU), the checks that run before an invoice is
numbered, and what a category-O document says."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from relay.billing.document import OUTSIDE_SCOPE_NOTE
from relay.billing.invoice import (
    OUTSIDE_SCOPE,
    REVERSE_CHARGE,
    STANDARD,
    Invoice,
    InvoiceLine,
    Party,
    Period,
    Supplier,
    VatCategory,
    totals,
)
from relay.billing.preflight import check_invoice
from relay.billing.ubl import to_ubl
from relay.billing.vat import customer_vat
from relay.services.documents import InvoiceTemplates
from shared.errors import UsageError

NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


def category(
    country: str, vat_id: str | None = None, reverse_charge: bool = False, reason: str = ""
) -> VatCategory:
    return customer_vat(
        country,
        vat_id,
        reverse_charge=reverse_charge,
        no_reverse_charge_reason=reason,
        standard=STANDARD,
    )


def refusal(*args: object, **kw: object) -> str:
    with pytest.raises(UsageError) as caught:
        category(*args, **kw)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
    return str(caught.value)


# -- the category of a customer ----------------------------------------------------------------


def test_dutch_customers_pay_the_standard_rate() -> None:
    assert category("NL", "NL987654329B01") == STANDARD
    assert category("NL") == STANDARD


def test_a_dutch_vat_id_with_reverse_charge_is_refused() -> None:
    assert refusal("NL", "NL987654329B01", reverse_charge=True) == (
        "reverse charge ('btw verlegd') is for business customers in another EU country, "
        "not for a Dutch customer (vat 'NL987654329B01' is Dutch): Dutch customers pay Dutch VAT"
    )


def test_an_eu_business_is_reverse_charged() -> None:
    assert category("BE", "BE0431701765", reverse_charge=True) == REVERSE_CHARGE
    assert REVERSE_CHARGE.percent == 0


def test_an_eu_business_without_reverse_charge_needs_a_reason() -> None:
    assert refusal("BE", "BE0431701765") == (
        "vat 'BE0431701765' makes this a business in another EU country: invoice it with "
        "reverse charge (--reverse-charge), or give the reason to charge Dutch VAT instead "
        "(--no-reverse-charge-reason TEXT)"
    )
    assert category("BE", "BE0431701765", reason="not registered for this supply") == STANDARD


def test_an_eu_customer_without_a_vat_id_pays_dutch_vat() -> None:
    assert category("BE") == STANDARD
    assert "reverse charge needs the customer's EU VAT id" in refusal("BE", reverse_charge=True)


def test_customers_outside_the_eu_are_outside_the_scope_of_dutch_vat() -> None:
    assert category("US") == OUTSIDE_SCOPE
    assert category("CH") == OUTSIDE_SCOPE
    assert "outside the EU" in refusal("US", reverse_charge=True)


def test_a_vat_id_must_belong_to_the_customers_country() -> None:
    assert refusal("DE", "BE0431701765", reverse_charge=True) == (
        "vat 'BE0431701765' is a VAT number of BE, but the customer's country is DE"
    )
    assert "carries no VAT ids" in refusal("CH", "DE136695976")


def test_category_o_has_no_rate() -> None:
    assert OUTSIDE_SCOPE.code == "O" and OUTSIDE_SCOPE.outside_scope
    with pytest.raises(UsageError, match="category O"):
        VatCategory("O", Decimal("21"))


# -- before a number is allocated ------------------------------------------------------------

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
    ),
    iban="NL91ABNA0417164300",
)
US_CUSTOMER = Party(
    "Initech Inc.",
    ("4120 Freidrich Lane",),
    "78744",
    "Austin",
    "US",
    endpoint_id="123456789",
    endpoint_scheme="0060",
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


def invoice(vat: VatCategory, *more: VatCategory) -> Invoice:
    lines = tuple(
        InvoiceLine(
            description=f"Werk {i}",
            supply_date=date(2026, 3, 3),
            technician="Alice",
            request_ref=None,
            actual_minutes=23,
            billable_minutes=25,
            unit_price=Decimal("90.00"),
            vat=category,
        )
        for i, category in enumerate((vat, *more))
    )
    return Invoice(
        number="2026-000001",
        issue_date=date(2026, 4, 1),
        due_date=date(2026, 4, 15),
        period=Period(date(2026, 3, 1), date(2026, 3, 31)),
        buyer_reference="PO-1",
        lines=lines,
    )


def preflight_refusal(doc: Invoice, supplier: Supplier, customer: Party) -> str:
    with pytest.raises(UsageError) as caught:
        check_invoice(doc, supplier, customer)
    return str(caught.value)


def test_valid_documents_pass_the_preflight() -> None:
    check_invoice(invoice(OUTSIDE_SCOPE), SUPPLIER, US_CUSTOMER)
    check_invoice(invoice(REVERSE_CHARGE), SUPPLIER, BELGIAN)


def test_the_preflight_names_the_party_at_fault() -> None:
    bad_company = replace(SUPPLIER, party=replace(SUPPLIER.party, vat_id="NL123456789B01"))
    assert preflight_refusal(invoice(STANDARD), bad_company, BELGIAN) == (
        "company: vat 'NL123456789B01' is not a valid VAT number: the check digits do not match"
    )
    assert preflight_refusal(
        invoice(REVERSE_CHARGE), SUPPLIER, replace(BELGIAN, postcode="10000")
    ) == ("customer: postcode '10000' is not a valid postcode: write it as in BE, e.g. 1000")


def test_the_preflight_keeps_each_category_to_its_customers() -> None:
    assert "inside the EU" in preflight_refusal(invoice(OUTSIDE_SCOPE), SUPPLIER, BELGIAN)
    assert "not in US" in preflight_refusal(invoice(REVERSE_CHARGE), SUPPLIER, US_CUSTOMER)
    mixed = invoice(OUTSIDE_SCOPE, STANDARD)
    assert "outside the scope of VAT stand alone" in preflight_refusal(mixed, SUPPLIER, US_CUSTOMER)


# -- a category-O document -------------------------------------------------------------------


def test_an_outside_scope_invoice_names_no_vat_id_and_no_rate() -> None:
    doc = invoice(OUTSIDE_SCOPE)
    root = ET.fromstring(to_ubl(doc, SUPPLIER, US_CUSTOMER))
    assert root.findall(".//cac:PartyTaxScheme", NS) == []  # BR-O-02
    assert root.findall(".//cbc:Percent", NS) == []  # BR-O-05, BR-48
    subtotal = root.find("cac:TaxTotal/cac:TaxSubtotal", NS)
    assert subtotal is not None
    found = {
        path: subtotal.findtext(path, namespaces=NS)
        for path in ("cbc:TaxAmount", "cac:TaxCategory/cbc:ID", "cac:TaxCategory/cbc:Percent")
    } | {"code": subtotal.findtext("cac:TaxCategory/cbc:TaxExemptionReasonCode", None, NS)}
    assert found == {
        "cbc:TaxAmount": "0.00",
        "cac:TaxCategory/cbc:ID": "O",
        "cac:TaxCategory/cbc:Percent": None,
        "code": "VATEX-EU-O",
    }
    assert totals(doc).tax == Decimal("0.00")
    # The supplier's KvK still identifies it (BR-NL-1, BR-CO-26).
    seller = "cac:AccountingSupplierParty/cac:Party/"
    assert root.findtext(seller + "cac:PartyLegalEntity/cbc:CompanyID", None, NS) == "12345678"


def test_the_printed_invoice_says_why_there_is_no_vat() -> None:
    html = InvoiceTemplates(None).html(invoice(OUTSIDE_SCOPE), SUPPLIER, US_CUSTOMER)
    assert OUTSIDE_SCOPE_NOTE.split(" — ")[0] in html
    assert "buiten btw" in html and "verlegd" not in html
