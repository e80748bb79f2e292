"""UBL 2.1 exports of invoices made through ``qp`` against a real relay pass the
official Dutch rules (NLCIUS / SI-UBL 2.0) with the offline kit in
``../shared/validation``: a domestic invoice with prepaid hours, a reverse-charge
invoice and a credit note. Like ``test_billing_ubl.py``, this module is skipped only
when the kit folder is absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import World
from tests.integration.billing_world import add_manual, invoice, office_world
from tests.integration.test_billing_ubl import BR_NL_35, NLCIUS_CHECKED, Validate
from tests.integration.test_billing_ubl import validate as validate  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from office_world(tmp_path_factory)


def ubl(world: World, number: str, out: Path) -> bytes:
    world.qp("invoice", "export", number, "--format", "ubl", "-o", str(out))
    return out.read_bytes()


def test_domestic_reverse_charge_and_credit_note_pass_nlcius(
    office: World, validate: Validate, tmp_path: Path
) -> None:
    entries = [
        add_manual(office, "Acme", "2025-03-03 10:00", 7, notes="Printer & <wifi>"),
        add_manual(office, "Acme", "2025-03-04 20:00", 50, service="on_site", request="REQ-1"),
    ]
    march = office.qp_json(
        "time", "--customer", "Acme", "--from", "2025-03-01", "--to", "2025-03-31"
    )
    assert [e["id"] for e in march] == entries
    office.qp("prepaid", "add", "Acme", "--hours", "0.1", "--from", "2025-03-01")  # 6 minutes
    domestic = invoice(office, "Acme", "2025-03", *entries)
    assert domestic["prepaid_minutes"] == 6
    assert domestic["shown_lines"][0]["prepaid_minutes"] == 6
    (block,) = office.qp_json("prepaid", "list", "Acme")["blocks"]
    assert (block["used_hours"], block["left_hours"]) == ("0.10", "0.00")
    foreign = invoice(
        office, "Lambiek", "2025-03", add_manual(office, "Lambiek", "2025-03-05 09:00", 33)
    )
    credit = office.qp_json("invoice", "credit", domestic["number"], "--reason", "wrong month")
    assert credit["credits"] == domestic["number"]
    for made, expected_warnings in (
        (domestic, ()),
        (foreign, (BR_NL_35,)),  # the exemption code the brief asks for; NLCIUS discourages it
        (credit, ()),
    ):
        document = ubl(office, made["number"], tmp_path / f"{made['number']}.xml")
        verdict = validate(document, "nlcius")
        assert verdict.checked == NLCIUS_CHECKED
        assert verdict.fatal == (), (made["number"], verdict.fatal)
        assert verdict.warnings == expected_warnings
        peppol = office.qp(
            "invoice", "export", made["number"], "--format", "ubl", "--profile", "peppol"
        )
        assert validate(peppol.stdout, "peppol").fatal == ()
    html = office.qp("invoice", "export", domestic["number"], "--format", "html").stdout.decode()
    assert "Printer &amp; &lt;wifi&gt;" in html and "<wifi>" not in html
    csv = office.qp("invoice", "export", domestic["number"], "--format", "csv").stdout.decode()
    assert csv.splitlines()[0].startswith("record,invoice_number,kind")
    (block,) = office.qp_json("prepaid", "list", "Acme")["blocks"]
    assert block["left_hours"] == "0.10"  # the credit note gave the prepaid minutes back
    # Crediting released the entries: they can be corrected and invoiced again.
    statuses = {e["id"]: e["status"] for e in office.qp_json("time", "--customer", "Acme")}
    assert [statuses[e] for e in entries] == ["approved", "approved"]
