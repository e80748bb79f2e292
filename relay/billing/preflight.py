"""What the official e-invoicing rules would refuse, found before a number is
allocated (pure, no I/O).

An invoice number is handed out once and never taken back (numbering is gap-free),
so a document that NLCIUS or Peppol BIS Billing 3.0 would reject must be refused
while it is still a plan. :func:`check_invoice` runs the checks our documents can
fail: the parties' identifiers (:mod:`relay.billing.parties`), what the rules of
each VAT category demand (``BR-S-*``, ``BR-AE-*``, ``BR-O-*``) and the Dutch
rules on parties (``BR-NL-*``). The totals cannot fail: they are computed.
"""

from __future__ import annotations

from relay.billing.invoice import Invoice, Party, Supplier
from relay.billing.parties import EU_MEMBERS, HOME, check_party, check_supplier, vat_country
from relay.billing.ubl import check_parties
from shared.errors import UsageError


def check_invoice(invoice: Invoice, supplier: Supplier, customer: Party) -> None:
    """Raise a one-line :class:`UsageError` if ``invoice`` would fail the official rules.

    The message starts with ``company:`` or ``customer:`` when that party's data is
    at fault, so the caller can say where to correct it.
    """
    try:
        check_supplier(supplier)
    except UsageError as exc:
        raise UsageError(f"company: {exc}") from None
    try:
        checked = check_party(customer)
    except UsageError as exc:
        raise UsageError(f"customer: {exc}") from None
    codes = {line.vat.code for line in invoice.lines}
    if "O" in codes and codes != {"O"}:  # BR-O-11, BR-O-12
        raise UsageError(f"invoice {invoice.number}: lines outside the scope of VAT stand alone")
    country = checked.country_code
    if "O" in codes and country in EU_MEMBERS:
        raise UsageError(
            f"customer: {customer.legal_name} is in {country}, inside the EU: its work is "
            "not outside the scope of VAT"
        )
    if "AE" in codes:  # BR-AE-02: the buyer's VAT id, of another EU country
        if country == HOME or country not in EU_MEMBERS:
            raise UsageError(
                f"customer: reverse charge is for business customers in another EU country, "
                f"not in {country}"
            )
        if checked.vat_id is None or vat_country(checked.vat_id) != country:
            raise UsageError(f"customer: reverse charge needs a VAT id of {country}")
    check_parties(invoice, supplier, customer)
