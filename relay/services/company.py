"""The company's own data, the supplier on every invoice: read from the store, where
``qp company set`` writes it, with relay.toml's ``[company]`` values standing in
until the first time. The next invoice uses what is stored now: no restart.

A change is refused unless the whole is invoiceable: every required field given,
and the KvK number, Dutch VAT id, IBAN and postcode valid
(:func:`relay.billing.parties.check_supplier`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from relay.billing.invoice import Party, PaymentMeansCode, Supplier
from relay.billing.parties import (
    KVK_SCHEME,
    check_country,
    check_iban,
    check_kvk,
    check_supplier,
    check_vat_id,
)
from relay.model import AuditEvent, CompanyDetails, Technician
from relay.settings import Company
from relay.store.interface import Store
from shared.clock import Clock
from shared.errors import UsageError

#: Company fields as ``qp company set`` names them.
FLAGS = {
    "legal_name": "--legal-name",
    "address": "--address",
    "postcode": "--postcode",
    "city": "--city",
    "kvk": "--kvk",
    "vat_id": "--vat",
    "iban": "--iban",
}
CHANGEABLE = frozenset(
    "legal_name address_lines postcode city country kvk vat_id iban email payment_means".split()
)


def missing_flags(company: Company) -> list[str]:
    """The ``qp company set`` options still needed for invoices."""
    return [FLAGS[name] for name in company.missing()]


def company_party(company: Company) -> Party:
    """The company as a party: its e-invoicing address is its KvK number (scheme 0106),
    so it moves whenever the KvK number does."""
    return Party(
        legal_name=company.legal_name,
        address_lines=tuple(line for line in (company.address, company.address2) if line.strip()),
        postcode=company.postcode,
        city=company.city,
        country_code=company.country,
        endpoint_id=company.kvk,
        endpoint_scheme=KVK_SCHEME,
        kvk_number=company.kvk,
        vat_id=company.vat_id,
        email=company.email or None,
    )


def merged(defaults: Company, record: CompanyDetails | None) -> Company:
    """``defaults`` (relay.toml) overlaid with the stored data, if any."""
    if record is None:
        return defaults
    lines = (*record.address_lines, "", "")
    return replace(
        defaults,
        legal_name=record.legal_name,
        address=lines[0],
        address2=lines[1],
        postcode=record.postcode,
        city=record.city,
        country=record.country,
        kvk=record.kvk,
        vat_id=record.vat_id,
        iban=record.iban,
        email=record.email,
        payment_means=record.payment_means,
    )


def checked(company: Company) -> Supplier:
    """The company as a supplier, every field checked; UsageError naming the first
    field at fault."""
    missing = missing_flags(company)
    if missing:
        raise UsageError(f"company data needs {', '.join(missing)}")
    means: PaymentMeansCode
    if company.payment_means == "58":
        means = "58"
    elif company.payment_means == "30":
        means = "30"
    else:
        raise UsageError(
            f"payment means {company.payment_means!r} is not valid: use 58 (SEPA) or 30"
        )
    company = replace(
        company,
        country=check_country(company.country),
        kvk=check_kvk(company.kvk),
        vat_id=check_vat_id(company.vat_id),
    )
    supplier = Supplier(company_party(company), check_iban(company.iban), payment_means_code=means)
    return check_supplier(supplier)


class CompanyData:
    """Reads and changes the company's own data."""

    def __init__(self, store: Store, clock: Clock, defaults: Company) -> None:
        self.store = store
        self.clock = clock
        self.defaults = defaults

    async def current(self) -> tuple[Company, CompanyDetails | None]:
        """The data in force (stored, else relay.toml) and the stored record, if any."""
        record = await self.store.get_company()
        return merged(self.defaults, record), record

    async def set(self, actor: Technician, changes: dict[str, Any]) -> CompanyDetails:
        """Change the fields in ``changes`` (:data:`CHANGEABLE`); the result must be
        invoiceable. Written with its audit record."""
        unknown = set(changes) - CHANGEABLE
        if unknown:
            raise UsageError(f"unknown company fields: {', '.join(sorted(unknown))}")
        if not changes:
            raise UsageError("nothing to change: give at least one option (see qp company set -h)")
        company, _ = await self.current()
        values = dict(changes)
        if "address_lines" in values:
            lines = (*values.pop("address_lines"), "", "")
            values.update(address=lines[0], address2=lines[1])
        supplier = checked(replace(company, **values))
        party = supplier.party
        now = self.clock.now()
        record = CompanyDetails(
            legal_name=party.legal_name,
            address_lines=party.address_lines,
            postcode=party.postcode,
            city=party.city,
            country=party.country_code,
            kvk=party.kvk_number or "",
            vat_id=party.vat_id or "",
            iban=supplier.iban,
            email=party.email or "",
            payment_means=supplier.payment_means_code,
            updated_at=now,
            updated_by=actor.id,
        )
        detail = {"fields": sorted(changes)}
        audit = AuditEvent(now, "company_set", actor.id, "company", detail)
        await self.store.set_company(record, audit=(audit,))
        return record
