"""Party data an accountant accepts: VAT ids, KvK numbers, postcodes, IBANs,
countries and e-invoicing addresses checked with their check digits, refused in one
line that names the field and why, and an endpoint that follows its number."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relay.billing.invoice import Party, Supplier
from relay.billing.parties import (
    check_country,
    check_endpoint,
    check_iban,
    check_kvk,
    check_party,
    check_postcode,
    check_supplier,
    check_vat_id,
    follow_endpoint,
)
from relay.model import CustomerBilling
from shared.errors import UsageError

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def refused(call: object, *args: object) -> str:
    """The one-line message ``call(*args)`` is refused with."""
    assert callable(call)
    with pytest.raises(UsageError) as caught:
        call(*args)
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- VAT ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("NL123456782B01", "NL123456782B01"),
        ("nl 1234.56782.B01", "NL123456782B01"),  # written as people write it
        ("NL000099995B57", "NL000099995B57"),  # the Belastingdienst's example
        ("BE0431701765", "BE0431701765"),
        ("BE431701765", "BE0431701765"),  # the old nine digits
        ("DE136695976", "DE136695976"),
        ("FR40303265045", "FR40303265045"),
        ("GR094259216", "EL094259216"),  # Greece's VAT prefix is EL
    ],
)
def test_valid_vat_ids_come_back_compact(given: str, normal: str) -> None:
    assert check_vat_id(given) == normal


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("XYZ123", "vat 'XYZ123' is not a valid VAT number: unknown country code"),
        (
            "NL123456789B01",
            "vat 'NL123456789B01' is not a valid VAT number: the check digits do not match",
        ),
        (
            "BE0431701766",
            "vat 'BE0431701766' is not a valid VAT number: the check digits do not match",
        ),
        ("DE12345", "vat 'DE12345' is not a valid VAT number: wrong length for a DE VAT number"),
        (
            "GB123456789",
            "vat 'GB123456789' is not a valid VAT number: GB is not an EU member state",
        ),
    ],
)
def test_bad_vat_ids_are_refused_naming_the_field_and_why(given: str, message: str) -> None:
    assert refused(check_vat_id, given) == message


# -- KvK, postcodes, IBAN, countries, endpoints ----------------------------------------------------


def test_kvk_numbers_have_eight_digits() -> None:
    assert check_kvk("1234 5678") == "12345678"
    assert refused(check_kvk, "1234567") == (
        "kvk '1234567' is not a valid KvK number: a KvK number has 8 digits"
    )
    assert "a KvK number has 8 digits" in refused(check_kvk, "1234567a")


@pytest.mark.parametrize(
    ("country", "given", "normal"),
    [
        ("NL", "1015aa", "1015 AA"),
        ("NL", "1015 AA", "1015 AA"),
        ("BE", "1000", "1000"),
        ("DE", "10115", "10115"),
        ("SE", "11455", "114 55"),
        ("US", "94105-1234", "94105-1234"),
        ("GB", "SW1A 1AA", "SW1A 1AA"),  # no rule for it: any plain code
    ],
)
def test_postcodes_are_checked_by_country(country: str, given: str, normal: str) -> None:
    assert check_postcode(country, given) == normal


@pytest.mark.parametrize(
    ("country", "given", "why"),
    [
        ("NL", "0123 AB", "write it as in NL, e.g. 1234 AB"),  # no Dutch code starts with 0
        ("NL", "1234 SS", "write it as in NL, e.g. 1234 AB"),  # a combination never used
        ("NL", "1000", "write it as in NL, e.g. 1234 AB"),
        ("BE", "100", "write it as in BE, e.g. 1000"),
        ("AT", "9999", "write it as in AT, e.g. 1010"),  # stdnum knows the real ones
        ("US", "9410", "write it as in US, e.g. 94105"),
        ("GB", "SW1A#1AA", "use letters, digits, spaces and hyphens"),
    ],
)
def test_bad_postcodes_are_refused(country: str, given: str, why: str) -> None:
    message = refused(check_postcode, country, given)
    assert message == f"postcode {given!r} is not a valid postcode: {why}"


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("NL92ABNA0417164300", "the check digits do not match"),
        ("NL91ABNA041716430", "wrong length or format for a NL IBAN"),
        ("XX91ABNA0417164300", "unknown country code"),
    ],
)
def test_ibans_need_their_check_digits_and_length(given: str, why: str) -> None:
    assert check_iban("nl91 abna 0417 1643 00") == "NL91ABNA0417164300"
    assert refused(check_iban, given) == f"iban {given!r} is not a valid IBAN: {why}"


def test_countries_are_iso_3166() -> None:
    assert (check_country("us"), check_country("BE")) == ("US", "BE")
    assert refused(check_country, "XX") == (
        "country 'XX' is not a valid country code: use ISO 3166 alpha-2, e.g. NL, BE, US"
    )


def test_endpoints_are_checked_where_the_official_rules_check_them() -> None:
    assert check_endpoint("0106", "1234 5678") == "12345678"
    assert check_endpoint("0208", "0431701765") == "0431701765"
    assert check_endpoint("9944", "NL123456782B01") == "NL123456782B01"
    assert check_endpoint("0060", "123456789") == "123456789"  # DUNS: no rule to apply
    assert refused(check_endpoint, "0208", "0431701766") == (
        "endpoint '0431701766' is not a valid 0208 address: the check digits do not match"
    )
    assert refused(check_endpoint, "9999", "1").startswith(
        "endpoint scheme '9999' is not a valid e-invoicing scheme: not an EAS code"
    )
    assert "an OIN has 20 digits" in refused(check_endpoint, "0190", "123")


# -- parties -------------------------------------------------------------------------------------

COMPANY = Party(
    "Quarkpulse IT B.V.",
    ("Keizersgracht 100",),
    "1015aa",
    "Amsterdam",
    "NL",
    endpoint_id="12345678",
    kvk_number="1234 5678",
    vat_id="NL 1234.56782.B01",
)


def test_a_party_comes_back_normalised() -> None:
    party = check_party(COMPANY)
    assert (party.postcode, party.kvk_number, party.vat_id) == (
        "1015 AA",
        "12345678",
        "NL123456782B01",
    )


def test_the_company_is_dutch_with_kvk_dutch_vat_id_and_iban() -> None:
    supplier = check_supplier(Supplier(COMPANY, "NL91 ABNA 0417 1643 00"))
    assert (supplier.party.endpoint_scheme, supplier.party.endpoint_id) == ("0106", "12345678")
    assert supplier.iban == "NL91ABNA0417164300"
    belgian_vat = Supplier(Party(**{**vars(COMPANY), "vat_id": "BE0431701765"}), supplier.iban)
    assert refused(check_supplier, belgian_vat) == (
        "vat 'BE0431701765' is not a valid company VAT number: give the Dutch btw-id"
    )
    abroad = Party(**{**vars(COMPANY), "country_code": "BE", "postcode": "1000"})
    assert "the relay invoices as a Dutch company" in refused(
        check_supplier, Supplier(abroad, supplier.iban)
    )


# -- the endpoint follows the number it came from ------------------------------------------------

DUTCH = CustomerBilling(
    "cus-1", "Acme B.V.", ("Dorpsstraat 12",), "3511 AB", "Utrecht", "NL", "87654321", "0106",
    14, T0, kvk="87654321", vat_id="NL987654329B01",
)  # fmt: skip


def test_an_endpoint_derived_from_the_kvk_moves_with_it() -> None:
    after = follow_endpoint(DUTCH, CustomerBilling(**{**vars(DUTCH), "kvk": "11223344"}))
    assert (after.endpoint_scheme, after.endpoint_id) == ("0106", "11223344")


def test_an_endpoint_set_apart_from_the_kvk_stays() -> None:
    own = CustomerBilling(**{**vars(DUTCH), "endpoint_scheme": "0190", "endpoint_id": "1" * 20})
    after = follow_endpoint(own, CustomerBilling(**{**vars(own), "kvk": "11223344"}))
    assert (after.endpoint_scheme, after.endpoint_id) == ("0190", "1" * 20)
    # Changing both at once: the endpoint given wins.
    both = CustomerBilling(**{**vars(DUTCH), "kvk": "11223344", "endpoint_id": "55667788"})
    assert follow_endpoint(DUTCH, both).endpoint_id == "55667788"


def test_a_belgian_endpoint_follows_the_vat_id_it_came_from() -> None:
    belgian = CustomerBilling(
        "cus-2", "Lambiek BV", ("Grote Markt 5",), "1000", "Brussel", "BE", "0431701765",
        "0208", 30, T0, vat_id="BE0431701765", reverse_charge=True,
    )  # fmt: skip
    after = follow_endpoint(belgian, CustomerBilling(**{**vars(belgian), "vat_id": "BE0403170701"}))
    assert (after.endpoint_scheme, after.endpoint_id) == ("0208", "0403170701")


# -- pure ------------------------------------------------------------------------------------------

BILLING = Path(__file__).resolve().parents[2] / "relay" / "billing"


@pytest.mark.parametrize("module", ["parties", "vat", "preflight"])
def test_the_tax_rules_do_no_io(module: str) -> None:
    """Like the billing core (test_billing_purity.py), plus python-stdnum's checks."""
    allowed = {"__future__", "dataclasses", "re", "relay.model", "shared.errors"}
    for node in ast.walk(ast.parse((BILLING / f"{module}.py").read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in ("open", "print", "input"), module
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        for name in names:
            assert name in allowed or name.startswith(("relay.billing.", "stdnum")), (
                f"{module}: {name}"
            )
