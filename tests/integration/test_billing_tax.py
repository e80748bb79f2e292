"""Tax and party data an accountant accepts, through ``qp`` against a real relay:
VAT categories per customer (21 % at home, reverse charge for EU businesses,
outside the scope of Dutch VAT beyond the EU) with their UBL validated by the
official rules offline; identifiers refused in one line naming the field and why;
the e-invoicing address following the KvK number; an invoice the official rules
would refuse is refused before it is numbered, so numbering stays gap-free. The
company's own data: ``test_billing_company.py``."""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import World
from tests.integration.billing_world import DUTCH, add_manual, invoice, office_world
from tests.integration.test_billing_ubl import BR_NL_35, NLCIUS_CHECKED, NS, Validate
from tests.integration.test_billing_ubl import validate as validate  # noqa: F401  (fixture)

GERMAN = [
    "--legal-name", "Kaiser Bau GmbH", "--address", "Unter den Linden 1", "--postcode", "10117",
    "--city", "Berlin", "--country", "DE", "--vat", "DE136695976", "--endpoint", "DE136695976",
    "--endpoint-scheme", "9930", "--terms", "30",
]  # fmt: skip
AMERICAN = [
    "--legal-name", "Initech Inc.", "--address", "4120 Freidrich Lane", "--postcode", "78744",
    "--city", "Austin", "--country", "US", "--endpoint", "123456789", "--endpoint-scheme", "0060",
    "--terms", "30",
]  # fmt: skip


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from office_world(tmp_path_factory)


def refused(world: World, *args: str) -> str:
    """The one line ``qp ARGS`` is refused with (exit status 1, no traceback)."""
    out = world.qp(*args, check=False)
    err = out.stderr.decode()
    assert out.returncode == 1, (out.stdout, err)
    assert err.startswith("qp: ") and err.count("\n") == 1, err
    return err[len("qp: ") : -1]


def audit(world: World, event: str) -> list[tuple[str, dict[str, Any]]]:
    """(subject, detail) of the relay's audit records of ``event``, oldest first."""
    db = sqlite3.connect(f"file:{world.relay_data / 'relay.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT subject, detail FROM audit WHERE event = ? ORDER BY id", (event,)
        ).fetchall()
    finally:
        db.close()
    return [(str(subject), json.loads(detail)) for subject, detail in rows]


def invoiced_ubl(world: World, customer: str, day: str, tmp: Path) -> tuple[dict[str, Any], bytes]:
    """Invoice an hour of ``customer``'s phone work on ``day`` (a day of its own: one
    technician's work never overlaps): the invoice and its NLCIUS UBL."""
    entry = add_manual(world, customer, f"{day} 10:00", 60)
    made = invoice(world, customer, day[:7], entry)
    out = tmp / f"{made['number']}.xml"
    world.qp("invoice", "export", made["number"], "--format", "ubl", "-o", str(out))
    return made, out.read_bytes()


def peppol(world: World, number: str) -> bytes:
    args = ("invoice", "export", number, "--format", "ubl", "--profile", "peppol")
    return world.qp(*args).stdout


def tax_category(document: bytes) -> dict[str, str | None]:
    """What the document's one VAT breakdown says."""
    root = ET.fromstring(document)
    (subtotal,) = root.findall("cac:TaxTotal/cac:TaxSubtotal", NS)
    return {
        "id": subtotal.findtext("cac:TaxCategory/cbc:ID", None, NS),
        "percent": subtotal.findtext("cac:TaxCategory/cbc:Percent", None, NS),
        "tax": subtotal.findtext("cbc:TaxAmount", None, NS),
        "exemption": subtotal.findtext("cac:TaxCategory/cbc:TaxExemptionReasonCode", None, NS),
    }


def vat_ids(document: bytes) -> list[str | None]:
    root = ET.fromstring(document)
    return [n.text for n in root.findall(".//cac:PartyTaxScheme/cbc:CompanyID", NS)]


# -- VAT categories ------------------------------------------------------------------------


def test_a_dutch_vat_id_with_reverse_charge_is_refused(office: World) -> None:
    office.qp("customer", "add", "Polder")
    message = refused(office, "customer", "billing", "Polder", *DUTCH, "--reverse-charge")
    assert message == (
        "reverse charge ('btw verlegd') is for business customers in another EU country, "
        "not for a Dutch customer (vat 'NL987654329B01' is Dutch): Dutch customers pay Dutch VAT"
    )
    assert "no billing data yet" in refused(office, "customer", "billing", "Polder")


def test_a_belgian_business_is_reverse_charged_at_zero_and_passes_the_rules(
    office: World, validate: Validate, tmp_path: Path
) -> None:
    shown = office.qp_json("customer", "billing", "Lambiek")
    assert (shown["vat"], shown["reverse_charge"], shown["endpoint"]) == (
        "BE0431701765",
        True,
        "0208:0431701765",
    )
    made, document = invoiced_ubl(office, "Lambiek", "2025-04-01", tmp_path)
    assert (made["vat"], made["total_excl_vat"]) == ("0.00", "75.00")  # an hour at 75.00
    assert tax_category(document) == {
        "id": "AE",
        "percent": "0",
        "tax": "0.00",
        "exemption": "VATEX-EU-AE",
    }
    assert vat_ids(document) == ["NL123456782B01", "BE0431701765"]
    verdict = validate(document, "nlcius")
    assert (verdict.checked, verdict.fatal, verdict.warnings) == (NLCIUS_CHECKED, (), (BR_NL_35,))
    assert validate(peppol(office, made["number"]), "peppol").fatal == ()
    html = office.qp("invoice", "export", made["number"], "--format", "html").stdout.decode()
    assert "Btw verlegd" in html and "BE0431701765" in html


def test_an_eu_business_without_reverse_charge_needs_an_audited_reason(
    office: World, validate: Validate, tmp_path: Path
) -> None:
    office.qp("customer", "add", "Kaiser")
    message = refused(office, "customer", "billing", "Kaiser", *GERMAN)
    assert message == (
        "vat 'DE136695976' makes this a business in another EU country: invoice it with "
        "reverse charge (--reverse-charge), or give the reason to charge Dutch VAT instead "
        "(--no-reverse-charge-reason TEXT)"
    )
    both = ["--reverse-charge", "--no-reverse-charge-reason", "x"]
    assert "leave out --reverse-charge" in refused(
        office, "customer", "billing", "Kaiser", *GERMAN, *both
    )
    assert audit(office, "no_reverse_charge") == []
    reason = "Dutch VAT agreed: the work is done for its Dutch branch"
    args = ("customer", "billing", "Kaiser", *GERMAN, "--no-reverse-charge-reason", reason)
    shown = office.qp_json(*args)
    assert (shown["reverse_charge"], shown["no_reverse_charge_reason"]) == (False, reason)
    ((subject, detail),) = audit(office, "no_reverse_charge")
    assert detail == {"reason": reason, "country": "DE", "vat": "DE136695976"}
    customers = {c["name"]: c["id"] for c in office.qp_json("customer", "list")}
    assert subject == customers["Kaiser"]
    # The reason stays on record while other data changes, and is charged as agreed.
    office.qp("customer", "billing", "Kaiser", "--city", "Berlin-Mitte")
    made, document = invoiced_ubl(office, "Kaiser", "2025-04-02", tmp_path)
    assert (made["total_excl_vat"], made["vat"]) == ("75.00", "15.75")  # 21 %
    assert tax_category(document)["id"] == "S"
    assert validate(document, "nlcius").fatal == ()
    assert validate(peppol(office, made["number"]), "peppol").fatal == ()
    # Reverse charge switched on ends the override.
    shown = office.qp_json("customer", "billing", "Kaiser", "--reverse-charge")
    assert (shown["reverse_charge"], shown["no_reverse_charge_reason"]) == (True, None)


def test_a_us_customer_is_outside_the_scope_of_dutch_vat(
    office: World, validate: Validate, tmp_path: Path
) -> None:
    office.qp("customer", "add", "Initech")
    assert "carries no VAT ids" in refused(
        office, "customer", "billing", "Initech", *AMERICAN, "--vat", "DE136695976"
    )
    assert "outside the EU" in refused(
        office, "customer", "billing", "Initech", *AMERICAN, "--reverse-charge"
    )
    office.qp("customer", "billing", "Initech", *AMERICAN)
    made, document = invoiced_ubl(office, "Initech", "2025-04-03", tmp_path)
    assert (made["total_excl_vat"], made["vat"], made["total_incl_vat"]) == (
        "75.00",
        "0.00",
        "75.00",
    )
    assert tax_category(document) == {
        "id": "O",
        "percent": None,
        "tax": "0.00",
        "exemption": "VATEX-EU-O",
    }
    assert vat_ids(document) == []  # BR-O-02: no VAT id, not even the supplier's
    verdict = validate(document, "nlcius")
    assert (verdict.checked, verdict.fatal, verdict.warnings) == (NLCIUS_CHECKED, (), (BR_NL_35,))
    assert validate(peppol(office, made["number"]), "peppol").fatal == ()
    html = office.qp("invoice", "export", made["number"], "--format", "html").stdout.decode()
    assert "Niet onderworpen aan Nederlandse btw" in html


# -- identifiers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ["--vat", "NL123456789B01"],
            "vat 'NL123456789B01' is not a valid VAT number: the check digits do not match",
        ),
        (["--vat", "XYZ123"], "vat 'XYZ123' is not a valid VAT number: unknown country code"),
        (
            ["--kvk", "1234567"],
            "kvk '1234567' is not a valid KvK number: a KvK number has 8 digits",
        ),
        (
            ["--postcode", "3511"],
            "postcode '3511' is not a valid postcode: write it as in NL, e.g. 1234 AB",
        ),
        (
            ["--country", "XX"],
            "country 'XX' is not a valid country code: use ISO 3166 alpha-2, e.g. NL, BE, US",
        ),
        (
            ["--endpoint", "1", "--endpoint-scheme", "9999"],
            "endpoint scheme '9999' is not a valid e-invoicing scheme: not an EAS code "
            "(e.g. 0106 KvK, 0208 Belgian enterprise number, 0060 DUNS)",
        ),
    ],
)
def test_bad_identifiers_are_refused_naming_the_field_and_why(
    office: World, change: list[str], message: str
) -> None:
    before = office.qp_json("customer", "billing", "Acme")
    assert refused(office, "customer", "billing", "Acme", *change) == message
    assert office.qp_json("customer", "billing", "Acme") == before


def test_identifiers_are_stored_as_an_accountant_writes_them(office: World) -> None:
    office.qp("customer", "add", "Tidy")
    args = [*DUTCH, "--postcode", "3511ab", "--kvk", "8765 4321", "--vat", "nl 9876.54329.b01"]
    shown = office.qp_json("customer", "billing", "Tidy", *args)
    assert (shown["postcode"], shown["kvk"], shown["vat"]) == (
        "3511 AB",
        "87654321",
        "NL987654329B01",
    )


def test_changing_the_kvk_moves_the_endpoint_derived_from_it(office: World) -> None:
    office.qp("customer", "add", "Movers")
    assert office.qp_json("customer", "billing", "Movers", *DUTCH)["endpoint"] == "0106:87654321"
    moved = office.qp_json("customer", "billing", "Movers", "--kvk", "11223344")
    assert (moved["kvk"], moved["endpoint"]) == ("11223344", "0106:11223344")
    oin = "0" * 19 + "1"
    own = ["--endpoint", oin, "--endpoint-scheme", "0190"]
    assert office.qp_json("customer", "billing", "Movers", *own)["endpoint"] == f"0190:{oin}"
    kept = office.qp_json("customer", "billing", "Movers", "--kvk", "55667788")
    assert (kept["kvk"], kept["endpoint"]) == ("55667788", f"0190:{oin}")


def test_a_belgian_endpoint_comes_from_its_vat_id(office: World) -> None:
    office.qp("customer", "add", "Gent")
    args = [
        "--legal-name", "Brasserie Gent BV", "--address", "Korenmarkt 1", "--postcode", "9000",
        "--city", "Gent", "--country", "BE", "--vat", "BE0431701765", "--reverse-charge",
    ]  # fmt: skip
    shown = office.qp_json("customer", "billing", "Gent", *args)
    assert shown["endpoint"] == "0208:0431701765"
    moved = office.qp_json("customer", "billing", "Gent", "--vat", "BE0403170701")
    assert moved["endpoint"] == "0208:0403170701"


# -- numbering -------------------------------------------------------------------------------


def test_a_refused_invoice_takes_no_number(office: World) -> None:
    """Data stored before these rules existed (written here straight into the
    database) is refused when an invoice would carry it, before it is numbered."""
    office.qp("customer", "add", "Oldie")
    office.qp("customer", "billing", "Oldie", *DUTCH)
    db = sqlite3.connect(office.relay_data / "relay.db")
    with db:
        db.execute(
            "UPDATE customer_billing SET vat_id = 'NL987654321B01' WHERE customer_id = "
            "(SELECT id FROM customers WHERE name = 'Oldie')"
        )
    db.close()
    office.qp("time", "approve", add_manual(office, "Oldie", "2025-05-02 10:00", 60))
    numbers = [i["number"] for i in office.qp_json("invoice", "list")]
    create = ("invoice", "create", "--customer", "Oldie", "--period", "2025-05")
    assert refused(office, *create) == (
        "no invoice for Oldie, nothing numbered: vat 'NL987654321B01' is not a valid VAT "
        "number: the check digits do not match; correct it with qp customer billing 'Oldie'"
    )
    assert [i["number"] for i in office.qp_json("invoice", "list")] == numbers
    office.qp("customer", "billing", "Oldie", "--vat", "NL987654329B01")
    made = office.qp_json(*create)
    last = max((n for n in numbers if n[:4] == made["number"][:4]), default="0000-000000")
    assert int(made["number"][5:]) == int(last[5:]) + 1  # no gap where the refusal was
