"""The company's own data: relay.toml's values until the first change, then the
stored ones (unit level; through ``qp``: tests/integration/test_billing_company.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from relay.model import Technician
from relay.services.company import CompanyData, checked, merged
from relay.settings import Company
from relay.store.interface import Store
from shared.clock import FakeClock
from shared.errors import UsageError

TOML = Company(
    legal_name="Quarkpulse IT B.V.",
    address="Keizersgracht 100",
    postcode="1015 AA",
    city="Amsterdam",
    kvk="12345678",
    vat_id="NL123456782B01",
    iban="NL91ABNA0417164300",
    timezone="Europe/Amsterdam",
)
BEA = Technician("tec-1", "bea", 2, "billing", (), datetime(2026, 1, 5, tzinfo=UTC))


async def test_relay_toml_stands_in_until_the_first_change(store: Store) -> None:
    data = CompanyData(store, FakeClock(), TOML)
    assert await data.current() == (TOML, None)
    record = await data.set(BEA, {"address_lines": ("Damrak 1", "3e etage"), "postcode": "1012lg"})
    assert (record.address_lines, record.postcode, record.updated_by) == (
        ("Damrak 1", "3e etage"),
        "1012 LG",
        "tec-1",
    )
    company, stored = await data.current()
    assert stored == record
    assert company == replace(TOML, address="Damrak 1", address2="3e etage", postcode="1012 LG")
    assert merged(TOML, stored) == company


async def test_a_change_must_leave_the_company_invoiceable(store: Store) -> None:
    data = CompanyData(store, FakeClock(), replace(TOML, iban="", kvk=""))
    with pytest.raises(UsageError, match="^company data needs --kvk, --iban$"):
        await data.set(BEA, {"city": "Utrecht"})
    with pytest.raises(UsageError, match="^nothing to change"):
        await data.set(BEA, {})
    assert await store.get_company() is None


def test_payment_means_are_58_or_30() -> None:
    assert checked(replace(TOML, payment_means="30")).payment_means_code == "30"
    with pytest.raises(UsageError, match="payment means '31' is not valid"):
        checked(replace(TOML, payment_means="31"))
