"""Which VAT category a Dutch supplier's remote support falls in, per customer (pure).

B2B services are taxed where the customer is established (art. 44 of Council
Directive 2006/112/EC), so:

==========================================  ==========================================
customer                                    category on the invoice
==========================================  ==========================================
in the Netherlands                          ``S``, the standard rate (21 %)
in another EU country, with its VAT id      ``AE`` reverse charge, 0 %, "btw verlegd"
                                            (VATEX-EU-AE) — required, unless an
                                            explicit reason to charge Dutch VAT is on
                                            record (``no_reverse_charge_reason``)
in another EU country, without a VAT id     ``S``: not a VAT-registered business, so
                                            the supply is taxed in the Netherlands
outside the EU                              ``O``, services outside the scope of
                                            (Dutch) VAT (VATEX-EU-O); such invoices
                                            carry no VAT ids (BR-O-02)
==========================================  ==========================================

Every customer outside the EU is treated as a business (this product serves
businesses). Refusals are one-line :class:`~shared.errors.UsageError`\\ s.
"""

from __future__ import annotations

from relay.billing.invoice import OUTSIDE_SCOPE, REVERSE_CHARGE, VatCategory
from relay.billing.parties import EU_MEMBERS, HOME, vat_country
from shared.errors import UsageError


def is_eu_business(country: str, vat_id: str | None) -> bool:
    """Whether the customer is a business in another EU country (reverse charge applies)."""
    return country != HOME and country in EU_MEMBERS and bool(vat_id)


def customer_vat(
    country: str,
    vat_id: str | None,
    *,
    reverse_charge: bool,
    no_reverse_charge_reason: str,
    standard: VatCategory,
) -> VatCategory:
    """The VAT category of every line invoiced to this customer (see the module doc).

    ``vat_id`` must already be a checked EU VAT id (:func:`~relay.billing.parties.
    check_vat_id`) or None; ``standard`` is the company's standard-rate category.
    """
    in_eu = country in EU_MEMBERS
    if vat_id:
        if not in_eu:
            raise UsageError(
                f"vat {vat_id!r}: a customer in {country} (outside the EU) is invoiced outside "
                "the scope of Dutch VAT, and such an invoice carries no VAT ids; leave vat empty"
            )
        if vat_country(vat_id) != country:
            raise UsageError(
                f"vat {vat_id!r} is a VAT number of {vat_country(vat_id)}, "
                f"but the customer's country is {country}"
            )
    if reverse_charge:
        if country == HOME:
            dutch = f" (vat {vat_id!r} is Dutch)" if vat_id else ""
            raise UsageError(
                "reverse charge ('btw verlegd') is for business customers in another EU "
                f"country, not for a Dutch customer{dutch}: Dutch customers pay Dutch VAT"
            )
        if not in_eu:
            raise UsageError(
                f"reverse charge is for business customers in another EU country; {country} "
                "is outside the EU, where the work is outside the scope of Dutch VAT"
            )
        if not vat_id:
            raise UsageError("reverse charge needs the customer's EU VAT id (vat)")
        return REVERSE_CHARGE
    if not in_eu:
        return OUTSIDE_SCOPE
    if is_eu_business(country, vat_id) and not no_reverse_charge_reason.strip():
        raise UsageError(
            f"vat {vat_id!r} makes this a business in another EU country: invoice it with "
            "reverse charge (--reverse-charge), or give the reason to charge Dutch VAT "
            "instead (--no-reverse-charge-reason TEXT)"
        )
    return standard
