"""Behaviour every store shares for the company's own data (``0007_company.sql``)
and a customer's reason to skip reverse charge: stored whole, read back equal,
audited in the same write."""

from __future__ import annotations

from dataclasses import replace

from relay.model import AuditEvent, CompanyDetails, CustomerBilling
from relay.store.interface import Store
from tests.store.records import T0, at, seed

COMPANY = CompanyDetails(
    legal_name="Quarkpulse IT B.V.",
    address_lines=("Keizersgracht 100", "Achterhuis"),
    postcode="1015 AA",
    city="Amsterdam",
    country="NL",
    kvk="12345678",
    vat_id="NL123456782B01",
    iban="NL91ABNA0417164300",
    email="facturen@quarkpulse.example",
    payment_means="58",
    updated_at=T0,
    updated_by="tec-1",
)


async def test_the_company_is_unset_until_first_set(store: Store) -> None:
    assert await store.get_company() is None


async def test_the_company_is_one_record_replaced_whole_with_its_audit(store: Store) -> None:
    first = AuditEvent(T0, "company_set", "tec-1", "company", {"fields": ["kvk"]})
    await store.set_company(COMPANY, audit=(first,))
    assert await store.get_company() == COMPANY
    moved = replace(
        COMPANY, address_lines=("Damrak 1",), kvk="87654321", email="", updated_at=at(5)
    )
    second = AuditEvent(at(5), "company_set", "tec-2", "company", {"fields": ["address"]})
    await store.set_company(moved, audit=(second,))
    assert await store.get_company() == moved
    records = await store.list_audit()
    assert [(r.event, r.actor, r.subject, r.detail) for r in records] == [
        ("company_set", "tec-2", "company", {"fields": ["address"]}),
        ("company_set", "tec-1", "company", {"fields": ["kvk"]}),
    ]


async def test_the_reason_to_skip_reverse_charge_is_kept(store: Store) -> None:
    await seed(store)
    data = CustomerBilling(
        "cus-1", "Lambiek BV", ("Grote Markt 5",), "1000", "Brussel", "BE", "0431701765",
        "0208", 30, T0, vat_id="BE0431701765", no_reverse_charge_reason="not VAT-registered",
    )  # fmt: skip
    await store.set_customer_billing(data)
    assert await store.get_customer_billing("cus-1") == data
    cleared = replace(data, reverse_charge=True, no_reverse_charge_reason="")
    await store.set_customer_billing(cleared)
    assert await store.get_customer_billing("cus-1") == cleared
