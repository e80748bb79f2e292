"""CSV and JSON exports: credit notes carry negative amounts, and the ``nl`` CSV
dialect is one a Dutch Excel opens in columns (semicolons, decimal commas, BOM)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

from relay.billing.exports import to_csv, to_json
from relay.billing.invoice import credit_note_for
from tests.unit.test_billing_invoice import CUSTOMER, SUPPLIER, invoice, line, march_invoice

MONEY_FIELDS = ("vat_base", "vat_amount", "amount")


def rows(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def test_a_credit_note_csv_has_negative_amounts_and_totals() -> None:
    note = credit_note_for(march_invoice(), "2026-000124", date(2026, 4, 5))
    original = rows(to_csv(march_invoice()))
    credited = rows(to_csv(note))
    assert [r["record"] for r in credited] == [r["record"] for r in original]
    assert {r["kind"] for r in credited} == {"credit_note"}
    for before, after in zip(original, credited, strict=True):
        for field in MONEY_FIELDS:
            if before[field]:
                assert after[field] == f"-{before[field]}", (after["record"], field)
        for field in ("quantity_hours", "unit_price", "billable_minutes", "vat_percent"):
            assert after[field] == before[field]  # how much and at what rate: positive
    assert credited[-1] == credited[-1] | {"record": "payable", "amount": "-140.66"}


def test_a_credit_note_never_shows_minus_zero() -> None:
    note = credit_note_for(invoice(line(25, "90.00", prepaid=25)), "2026-000124", date(2026, 4, 5))
    assert "-0.00" not in to_csv(note) and "-0.00" not in to_json(note, SUPPLIER, CUSTOMER)


def test_a_credit_note_json_has_negative_amounts_and_totals() -> None:
    note = credit_note_for(march_invoice(), "2026-000124", date(2026, 4, 5))
    data = json.loads(to_json(note, SUPPLIER, CUSTOMER))
    assert [ln["line_amount"] for ln in data["lines"]] == ["-37.50", "-78.75"]
    assert [ln["unit_price"] for ln in data["lines"]] == ["90.00", "135.00"]
    assert data["totals"] == {
        "line_extension": "-116.25",
        "payable": "-140.66",
        "tax": "-24.41",
        "tax_exclusive": "-116.25",
        "tax_inclusive": "-140.66",
        "vat": [{"base": "-116.25", "category": "S", "percent": "21", "tax": "-24.41"}],
    }


def test_the_dutch_dialect_uses_semicolons_decimal_commas_and_a_bom() -> None:
    default = to_csv(march_invoice())
    dutch = to_csv(march_invoice(), "nl")
    assert not default.startswith("\ufeff") and default.startswith("record,invoice_number,")
    assert dutch.startswith("\ufeffrecord;invoice_number;kind;")
    assert dutch.encode("utf-8").startswith(b"\xef\xbb\xbfrecord;")
    plain, nl = rows(default), rows(dutch.removeprefix("\ufeff"), ";")
    assert len(plain) == len(nl)
    assert (nl[1]["quantity_hours"], nl[1]["unit_price"], nl[1]["amount"]) == (
        "0,583333",
        "135,00",
        "78,75",
    )
    assert nl[-1]["amount"] == "140,66" and nl[1]["description"] == "Server-update"
    for p, n in zip(plain, nl, strict=True):  # the same cells, numbers written the Dutch way
        assert {k: v.replace(".", ",") for k, v in p.items()} == {
            k: v.replace(".", ",") for k, v in n.items()
        }
    note = credit_note_for(march_invoice(), "2026-000124", date(2026, 4, 5))
    assert rows(to_csv(note, "nl").removeprefix("\ufeff"), ";")[-1]["amount"] == "-140,66"
