"""The company's own data through ``qp company`` against a real relay: relay.toml's
``[company]`` until the first ``qp company set``, then the database, applied to the
next invoice without a restart; checked like a customer's data; and an invoice the
official rules would refuse is refused before it is numbered, so numbering stays
gap-free."""

from __future__ import annotations

import datetime
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import World
from tests.integration.billing_world import (
    COMPANY,
    DUTCH,
    FLAT_CARD,
    add_manual,
    import_card,
    start_office,
)
from tests.integration.test_billing_tax import audit, refused
from tests.integration.test_billing_ubl import NS, Validate
from tests.integration.test_billing_ubl import validate as validate  # noqa: F401  (fixture)

#: relay.toml as an operator might have typed it: the btw-id's check digits are off.
TYPO_COMPANY = {**COMPANY, "vat_id": "NL123456789B01"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A relay whose relay.toml holds :data:`TYPO_COMPANY`, with customer Acme."""
    w = World(tmp_path)
    try:
        start_office(w, company=TYPO_COMPANY)
        w.qp("customer", "add", "Acme")
        w.qp("customer", "billing", "Acme", *DUTCH)
        import_card(w, FLAT_CARD)
        yield w
    finally:
        w.close()


def create(world: World, customer: str, day: str) -> tuple[int, str]:
    """``qp invoice create`` for an approved hour of ``customer`` on ``day``: the exit
    status and the invoice number (or the one-line refusal)."""
    world.qp("time", "approve", add_manual(world, customer, f"{day} 10:00", 60))
    args = ("invoice", "create", "--customer", customer, "--period", day[:7], "--json")
    out = world.qp(*args, check=False)
    if out.returncode:
        return out.returncode, out.stderr.decode()
    return 0, str(json.loads(out.stdout)["number"])


def supplier_of(world: World, number: str) -> tuple[str | None, str | None]:
    """(name, endpoint) of the supplier on invoice ``number``'s UBL."""
    root = ET.fromstring(world.qp("invoice", "export", number, "--format", "ubl").stdout)
    party = "cac:AccountingSupplierParty/cac:Party/"
    return (
        root.findtext(party + "cac:PartyLegalEntity/cbc:RegistrationName", None, NS),
        root.findtext(party + "cbc:EndpointID", None, NS),
    )


def test_company_data_is_set_checked_and_used_by_the_next_invoice(
    world: World, validate: Validate
) -> None:
    year = datetime.date.today().year
    shown = world.qp_json("company", "show")
    assert (shown["source"], shown["invoiceable"], shown["problem"]) == (
        "relay.toml",
        False,
        "vat 'NL123456789B01' is not a valid VAT number: the check digits do not match",
    )
    # The typo in relay.toml refuses the invoice before it is numbered.
    code, message = create(world, "Acme", "2025-03-03")
    assert code == 1
    assert message == (
        "qp: no invoice for Acme, nothing numbered: company: vat 'NL123456789B01' is not a "
        "valid VAT number: the check digits do not match; correct it with qp company set\n"
    )
    assert world.qp_json("invoice", "list") == []
    # Bad values are refused naming the field (the whole must be invoiceable, so each
    # comes with a good btw-id); nothing is stored.
    good_vat = ["--vat", "NL123456782B01"]
    for args, why in (
        ([*good_vat, "--iban", "NL92ABNA0417164300"], "iban 'NL92ABNA0417164300' is not a"),
        ([*good_vat, "--kvk", "123"], "kvk '123' is not a valid KvK number: "),
        ([*good_vat, "--postcode", "1015"], "postcode '1015' is not a valid postcode: "),
        (["--vat", "BE0431701765"], "vat 'BE0431701765' is not a valid company VAT number: "),
        (["--vat", "XYZ123"], "vat 'XYZ123' is not a valid VAT number: unknown country code"),
    ):
        assert refused(world, "company", "set", *args).startswith(why), args
    assert world.qp_json("company", "show")["source"] == "relay.toml"
    assert audit(world, "company_set") == []
    # Set: stored, audited, and the very next invoice carries it, without a restart.
    name = "Quarkpulse Remote B.V."
    shown = world.qp_json("company", "set", "--vat", "nl 1234.56782.b01", "--legal-name", name)
    assert (shown["source"], shown["invoiceable"], shown["vat"]) == (
        "database",
        True,
        "NL123456782B01",
    )
    assert audit(world, "company_set") == [("company", {"fields": ["legal_name", "vat_id"]})]
    assert (
        world.qp_json("invoice", "create", "--customer", "Acme", "--period", "2025-03")["number"]
        == f"{year}-000001"
    )  # the refused attempt took no number
    assert supplier_of(world, f"{year}-000001") == ("Quarkpulse Remote B.V.", "12345678")
    # The company's e-invoicing address is its KvK number: it moves with it.
    assert world.qp_json("company", "set", "--kvk", "11223344")["endpoint"] == "0106:11223344"
    code, number = create(world, "Acme", "2025-04-03")
    assert (code, number) == (0, f"{year}-000002")
    assert supplier_of(world, number) == ("Quarkpulse Remote B.V.", "11223344")
    document = world.qp("invoice", "export", number, "--format", "ubl").stdout
    assert validate(document, "nlcius").fatal == ()


def test_only_billing_and_admin_change_the_company(world: World) -> None:
    world.technician("bea", role="billing")
    world.technician("tim", "Acme")
    shown = world.qp_json("company", "set", "--vat", "NL123456782B01", home="bea")
    assert (shown["updated_by"], shown["invoiceable"]) == ("bea", True)
    out = world.qp("company", "set", "--city", "Utrecht", home="tim", check=False)
    assert out.returncode == 1 and out.stderr.decode().count("\n") == 1
    assert world.qp_json("company", "show")["city"] == "Amsterdam"
