"""UBL 2.1 e-invoices: NLCIUS (SI-UBL 2.0) or Peppol BIS Billing 3.0 (pure, no I/O).

:func:`to_ubl` turns an :class:`~relay.billing.invoice.Invoice` into an
``Invoice`` (type 380) or a ``CreditNote`` (type 381, with a ``BillingReference``
to the invoice it cancels). Element order follows the UBL 2.1 schemas; the content
follows EN 16931 plus the Dutch ``BR-NL-*`` rules (or the Peppol rules): KvK as
endpoint and legal-entity id (scheme 0106), the VAT ids, full addresses, payment
by credit transfer to the supplier's IBAN, one ``TaxSubtotal`` per VAT category and
time in hours (unit code ``HUR``).

The tree is built with qualified tag names such as ``cbc:ID`` and the namespace
declarations on the root, so no process-wide prefix registration is needed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Literal

from relay.billing.invoice import (
    CURRENCY,
    HOUR_UNIT,
    Invoice,
    InvoiceLine,
    Party,
    Supplier,
    VatCategory,
    money,
    totals,
)
from shared.errors import UsageError

Profile = Literal["nlcius", "peppol"]

CUSTOMIZATION_IDS: dict[Profile, str] = {
    "nlcius": "urn:cen.eu:en16931:2017#compliant#urn:fdc:nen.nl:nlcius:v1.0",
    "peppol": "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0",
}
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
KVK_SCHEME = "0106"
INVOICE_TYPE = "380"
CREDIT_NOTE_TYPE = "381"
#: Reverse charge: EN 16931 wants the exemption code or a text (BR-AE-10); we give both.
REVERSE_CHARGE_CODE = "VATEX-EU-AE"
REVERSE_CHARGE_TEXT = "Btw verlegd (reverse charge)"
#: Outside the scope of VAT (BR-O-10): the exemption code and its text, as for AE.
OUTSIDE_SCOPE_CODE = "VATEX-EU-O"
OUTSIDE_SCOPE_TEXT = "Niet onderworpen aan Nederlandse btw (not subject to VAT)"
#: Document type code of an invoiced object on a line (BT-128): our ticket reference.
LINE_OBJECT_TYPE = "130"

_NS_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
_NS_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_NS_ROOT = {
    "invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "credit_note": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
}


def to_ubl(
    invoice: Invoice,
    supplier: Supplier,
    customer: Party,
    *,
    profile: Profile = "nlcius",
) -> bytes:
    """The UBL 2.1 document for ``invoice``, UTF-8 encoded with an XML declaration.

    Raises :class:`~shared.errors.UsageError` when the parties lack what the rules
    require (a Dutch customer's KvK number, a reverse-charged customer's VAT id).
    """
    if profile not in CUSTOMIZATION_IDS:
        raise UsageError(f"unknown UBL profile {profile!r}: use nlcius or peppol")
    check_parties(invoice, supplier, customer)
    credit = invoice.kind == "credit_note"
    root = ET.Element(
        "CreditNote" if credit else "Invoice",
        {"xmlns": _NS_ROOT[invoice.kind], "xmlns:cac": _NS_CAC, "xmlns:cbc": _NS_CBC},
    )
    _header(root, invoice, profile)
    # Not subject to VAT: the document names no VAT id at all (BR-O-02).
    vat_ids = not invoice.outside_scope
    _party(_el(root, "cac:AccountingSupplierParty"), supplier.party, vat_ids)
    _party(_el(root, "cac:AccountingCustomerParty"), customer, vat_ids)
    _payment(root, invoice, supplier)
    _tax_and_totals(root, invoice)
    for index, line in enumerate(invoice.lines, start=1):
        _line(root, index, line, credit)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return document


def check_parties(invoice: Invoice, supplier: Supplier, customer: Party) -> None:
    """Raise :class:`~shared.errors.UsageError` if the parties cannot carry ``invoice``."""
    if invoice.reverse_charge and not customer.vat_id:
        raise UsageError(
            f"invoice {invoice.number}: reverse charge needs the VAT id of {customer.legal_name}"
        )
    if customer.country_code == "NL" and not customer.kvk_number:
        # BR-NL-10: Dutch customers are identified by KvK number.
        raise UsageError(
            f"invoice {invoice.number}: Dutch customer {customer.legal_name} needs a KvK number"
        )


# -- parts ---------------------------------------------------------------------------


def _header(root: ET.Element, invoice: Invoice, profile: Profile) -> None:
    credit = invoice.kind == "credit_note"
    _el(root, "cbc:UBLVersionID", "2.1")
    _el(root, "cbc:CustomizationID", CUSTOMIZATION_IDS[profile])
    _el(root, "cbc:ProfileID", PROFILE_ID)
    _el(root, "cbc:ID", invoice.number)
    _el(root, "cbc:IssueDate", invoice.issue_date.isoformat())
    if credit:
        _el(root, "cbc:CreditNoteTypeCode", CREDIT_NOTE_TYPE)
    else:
        # A UBL CreditNote has no document-level due date; a credit is not "due".
        _el(root, "cbc:DueDate", invoice.due_date.isoformat())
        _el(root, "cbc:InvoiceTypeCode", INVOICE_TYPE)
    _el(root, "cbc:DocumentCurrencyCode", invoice.currency)
    _el(root, "cbc:BuyerReference", invoice.buyer_reference)
    period = _el(root, "cac:InvoicePeriod")
    _el(period, "cbc:StartDate", invoice.period.start.isoformat())
    _el(period, "cbc:EndDate", invoice.period.end.isoformat())
    if credit and invoice.original_number is not None:
        ref = _el(_el(root, "cac:BillingReference"), "cac:InvoiceDocumentReference")
        _el(ref, "cbc:ID", invoice.original_number)
        # NLCIUS discourages the preceding invoice's date (BR-NL-24); Peppol accepts it.
        if profile == "peppol" and invoice.original_issue_date is not None:
            _el(ref, "cbc:IssueDate", invoice.original_issue_date.isoformat())


def _party(role: ET.Element, party: Party, vat_id: bool) -> None:
    node = _el(role, "cac:Party")
    _el(node, "cbc:EndpointID", party.endpoint_id, schemeID=party.endpoint_scheme)
    address = _el(node, "cac:PostalAddress")
    _el(address, "cbc:StreetName", party.address_lines[0])
    if len(party.address_lines) > 1:
        _el(address, "cbc:AdditionalStreetName", party.address_lines[1])
    _el(address, "cbc:CityName", party.city)
    _el(address, "cbc:PostalZone", party.postcode)
    _el(_el(address, "cac:Country"), "cbc:IdentificationCode", party.country_code)
    if party.vat_id and vat_id:
        scheme = _el(node, "cac:PartyTaxScheme")
        _el(scheme, "cbc:CompanyID", party.vat_id)
        _el(_el(scheme, "cac:TaxScheme"), "cbc:ID", "VAT")
    legal = _el(node, "cac:PartyLegalEntity")
    _el(legal, "cbc:RegistrationName", party.legal_name)
    if party.kvk_number:
        _el(legal, "cbc:CompanyID", party.kvk_number, schemeID=KVK_SCHEME)
    if party.email:
        _el(_el(node, "cac:Contact"), "cbc:ElectronicMail", party.email)


def _payment(root: ET.Element, invoice: Invoice, supplier: Supplier) -> None:
    means = _el(root, "cac:PaymentMeans")
    _el(means, "cbc:PaymentMeansCode", supplier.payment_means_code)
    _el(means, "cbc:PaymentID", invoice.number)
    _el(_el(means, "cac:PayeeFinancialAccount"), "cbc:ID", supplier.iban)
    if invoice.kind == "credit_note":
        note = f"Creditering van factuur {invoice.original_number}"
    else:
        days = supplier.payment_terms_days
        note = f"Betaling binnen {days} dagen onder vermelding van {invoice.number}"
    _el(_el(root, "cac:PaymentTerms"), "cbc:Note", note)


def _tax_and_totals(root: ET.Element, invoice: Invoice) -> None:
    sums = totals(invoice)
    tax_total = _el(root, "cac:TaxTotal")
    _amount(tax_total, "cbc:TaxAmount", sums.tax)
    for sub in sums.vat:
        node = _el(tax_total, "cac:TaxSubtotal")
        _amount(node, "cbc:TaxableAmount", sub.base)
        _amount(node, "cbc:TaxAmount", sub.tax)
        _category(node, "cac:TaxCategory", sub.category, breakdown=True)
    legal = _el(root, "cac:LegalMonetaryTotal")
    _amount(legal, "cbc:LineExtensionAmount", sums.line_extension)
    _amount(legal, "cbc:TaxExclusiveAmount", sums.tax_exclusive)
    _amount(legal, "cbc:TaxInclusiveAmount", sums.tax_inclusive)
    _amount(legal, "cbc:PayableAmount", sums.payable)


def _line(root: ET.Element, index: int, line: InvoiceLine, credit: bool) -> None:
    node = _el(root, "cac:CreditNoteLine" if credit else "cac:InvoiceLine")
    _el(node, "cbc:ID", str(index))
    _el(node, "cbc:Note", line_note(line))
    quantity = "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity"
    _el(node, quantity, _decimal(line.quantity), unitCode=HOUR_UNIT)
    _amount(node, "cbc:LineExtensionAmount", line.line_amount)
    period = _el(node, "cac:InvoicePeriod")
    _el(period, "cbc:StartDate", line.supply_date.isoformat())
    _el(period, "cbc:EndDate", line.supply_date.isoformat())
    if line.request_ref:
        ref = _el(node, "cac:DocumentReference")
        _el(ref, "cbc:ID", line.request_ref)
        _el(ref, "cbc:DocumentTypeCode", LINE_OBJECT_TYPE)
    item = _el(node, "cac:Item")
    _el(item, "cbc:Name", line.description)
    _category(item, "cac:ClassifiedTaxCategory", line.vat, breakdown=False)
    _price(_el(node, "cac:Price"), line.unit_price)


def line_note(line: InvoiceLine) -> str:
    """The free-text line note: who worked, on what, actual against billed time."""
    parts = [f"Technicus: {line.technician}"]
    if line.request_ref:
        parts.append(f"verzoek: {line.request_ref}")
    parts.append(
        f"werkelijke tijd {line.actual_minutes} min, gefactureerd {line.billable_minutes} min"
    )
    if line.prepaid_minutes:
        parts.append(f"van strippenkaart {line.prepaid_minutes} min")
    if line.surcharges:
        parts.append("toeslagen: " + ", ".join(line.surcharges))
    return "; ".join(parts)


def _category(parent: ET.Element, tag: str, vat: VatCategory, *, breakdown: bool) -> None:
    node = _el(parent, tag)
    _el(node, "cbc:ID", vat.code)
    if not vat.outside_scope:  # category O has no rate (BR-O-05, BR-48)
        _el(node, "cbc:Percent", _decimal(vat.percent))
    if breakdown and vat.reverse_charge:
        _el(node, "cbc:TaxExemptionReasonCode", REVERSE_CHARGE_CODE)
        _el(node, "cbc:TaxExemptionReason", REVERSE_CHARGE_TEXT)
    elif breakdown and vat.outside_scope:
        _el(node, "cbc:TaxExemptionReasonCode", OUTSIDE_SCOPE_CODE)
        _el(node, "cbc:TaxExemptionReason", OUTSIDE_SCOPE_TEXT)
    _el(_el(node, "cac:TaxScheme"), "cbc:ID", "VAT")


# -- helpers -------------------------------------------------------------------------


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, attrs)
    if text is not None:
        node.text = text
    return node


def _amount(parent: ET.Element, tag: str, value: Decimal) -> ET.Element:
    """A monetary amount: two decimals (BR-DEC-*), in the document currency."""
    return _el(parent, tag, f"{money(value):f}", currencyID=CURRENCY)


def _price(parent: ET.Element, value: Decimal) -> ET.Element:
    """A unit price: at least two decimals, more only when the rate has them."""
    text = f"{money(value):f}" if value == money(value) else _decimal(value.normalize())
    return _el(parent, "cbc:PriceAmount", text, currencyID=CURRENCY)


def _decimal(value: Decimal) -> str:
    """A plain decimal literal, never in exponent form."""
    return f"{value:f}"
