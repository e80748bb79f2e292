"""Invoice documents through ``qp invoice export`` against a real relay: the PDF
reads as a Dutch invoice (checked with ``pdftotext``), and HTML, PDF, CSV (both
dialects), JSON and UBL of one invoice — and of its credit note — agree to the cent
on every line and every total. The company's own template and logo in the data
directory are used as soon as they are there."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness import World
from relay.services.documents import packaged_template
from tests.integration.billing_world import (
    BELGIAN,
    DUTCH,
    FLAT_CARD,
    add_manual,
    import_card,
    invoice,
    start_office,
)
from tests.pdf_text import MONEY, pdf_text, words
from tests.unit.test_invoice_documents import PIXEL

#: The flat card plus an evening window and an urgent surcharge; the entries below
#: are manual, at fixed past times, so their amounts do not depend on today.
CARD = (
    FLAT_CARD.replace('name = "Flat rates"', 'name = "Met toeslagen"')
    + """
[surcharges]
urgent_percent = 25

[[surcharges.window]]
name = "evening"
days = ["mon", "tue", "wed", "thu", "fri"]
from = "18:00"
to = "22:00"
percent = 50
"""
)
UBL = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
DATE_ROW = re.compile(r"\s*\d{2}-\d{2}-\d{4}\s")


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = World(Path(tmp_path_factory.mktemp("documents")))
    try:
        start_office(world)
        for name, data in (("Acme", DUTCH), ("Lambiek", BELGIAN)):
            world.qp("customer", "add", name)
            world.qp("customer", "billing", name, *data)
        import_card(world, CARD)
        yield world
    finally:
        world.close()


@dataclass(frozen=True)
class Figures:
    """What a document says the lines and totals are, signed as on a credit note."""

    lines: tuple[Decimal, ...]
    subtotal: Decimal
    vat: Decimal
    total: Decimal


def add_urgent(world: World, customer: str, start: str, minutes: int, **kw: str) -> str:
    """Manual work for an urgent request (``add_manual`` passes only valued options)."""
    args = ["time", "add", "--customer", customer, "--service", kw.pop("service", "phone")]
    args += ["--start", start, "--minutes", str(minutes), "--urgent"]
    for key, value in kw.items():
        args += [f"--{key}", value]
    entry_id: str = world.qp_json(*args)["id"]
    return entry_id


def export(world: World, number: str, fmt: str, *extra: str) -> bytes:
    out = world.root / f"{number}-{fmt}{'-'.join(extra)}"
    world.qp("invoice", "export", number, "--format", fmt, *extra, "-o", str(out))
    return out.read_bytes()


def dutch_amount(text: str) -> Decimal:
    return Decimal(text.replace("€", "").strip().replace(".", "").replace(",", "."))


class Cells(HTMLParser):
    """The text of every table cell, with its row's class and its own."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str, str]] = []
        self._row = ""
        self._cell: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        css = dict(attrs).get("class") or ""
        if tag == "tr":
            self._row = css
        elif tag == "td":
            self._cell, self._text = css, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append((self._row, self._cell, "".join(self._text)))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text.append(data)


def from_html(page: bytes) -> Figures:
    parser = Cells()
    parser.feed(page.decode())

    def amounts(row: str, cell: str) -> list[Decimal]:
        return [dutch_amount(text) for r, c, text in parser.cells if r == row and cell in c.split()]

    (subtotal,) = amounts("subtotal", "num")
    (total,) = amounts("total", "num")
    return Figures(
        tuple(amounts("line", "bedrag")), subtotal, sum(amounts("vat", "num"), Decimal(0)), total
    )


def from_pdf(text: str) -> Figures:
    """Rows starting with a date are lines (amount last); then the totals' rows."""

    def last(line: str) -> Decimal:
        return dutch_amount(MONEY.findall(line)[-1])

    rows = text.splitlines()
    lines = tuple(last(r) for r in rows if DATE_ROW.match(r) and MONEY.search(r))
    (subtotal,) = [last(r) for r in rows if r.strip().startswith("Subtotaal")]
    vat = [last(r) for r in rows if re.match(r"\s*BTW (\d|verlegd)", r)]
    (total,) = [last(r) for r in rows if r.strip().startswith("Totaal ")]
    return Figures(lines, subtotal, sum(vat, Decimal(0)), total)


def from_csv(text: str, delimiter: str = ",") -> Figures:
    rows = list(csv.DictReader(io.StringIO(text), delimiter=delimiter))

    def amount(value: str) -> Decimal:
        return Decimal(value.replace(",", "."))

    (subtotal,) = [amount(r["amount"]) for r in rows if r["record"] == "total_excl_vat"]
    (vat,) = [amount(r["amount"]) for r in rows if r["record"] == "vat_total"]
    (total,) = [amount(r["amount"]) for r in rows if r["record"] == "payable"]
    assert vat == sum((amount(r["vat_amount"]) for r in rows if r["record"] == "vat"), Decimal(0))
    lines = tuple(amount(r["amount"]) for r in rows if r["record"] == "line")
    return Figures(lines, subtotal, vat, total)


def from_json(data: dict[str, Any]) -> Figures:
    sums = data["totals"]
    return Figures(
        tuple(Decimal(line["line_amount"]) for line in data["lines"]),
        Decimal(sums["tax_exclusive"]),
        Decimal(sums["tax"]),
        Decimal(sums["payable"]),
    )


def from_ubl(document: bytes) -> Figures:
    """UBL amounts are positive; a CreditNote carries the sign in its type."""
    root = ET.fromstring(document)
    credit = root.tag.endswith("}CreditNote")
    sign = -1 if credit else 1

    def amount(path: str) -> Decimal:
        (node,) = root.findall(path, UBL)
        return sign * Decimal(node.text or "")

    line = "cac:CreditNoteLine" if credit else "cac:InvoiceLine"
    return Figures(
        tuple(
            sign * Decimal(node.text or "")
            for node in root.findall(f"{line}/cbc:LineExtensionAmount", UBL)
        ),
        amount("cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount"),
        amount("cac:TaxTotal/cbc:TaxAmount"),
        amount("cac:LegalMonetaryTotal/cbc:PayableAmount"),
    )


def every_format(world: World, number: str) -> dict[str, Figures]:
    """The figures of one invoice as each export states them."""
    nl = export(world, number, "csv", "--dialect", "nl")
    assert nl.startswith(b"\xef\xbb\xbfrecord;invoice_number;")
    return {
        "html": from_html(export(world, number, "html")),
        "pdf": from_pdf(pdf_text(export(world, number, "pdf"))),
        "csv": from_csv(export(world, number, "csv").decode()),
        "csv nl": from_csv(nl.decode("utf-8-sig"), ";"),
        "json": from_json(json.loads(export(world, number, "json"))),
        "ubl": from_ubl(export(world, number, "ubl")),
    }


def test_every_export_of_an_invoice_and_its_credit_note_agrees_to_the_cent(
    office: World,
) -> None:
    entries = [
        add_manual(office, "Acme", "2025-03-03 10:00", 7, notes="Printer & <wifi>"),
        add_manual(office, "Acme", "2025-03-04 20:00", 50, service="on_site", request="REQ-1"),
        add_urgent(office, "Acme", "2025-03-05 09:00", 40, service="remote_support"),
    ]
    office.qp("prepaid", "add", "Acme", "--hours", "0.1", "--from", "2025-03-01")  # 6 of 7 min
    made = invoice(office, "Acme", "2025-03", *entries)
    lines = tuple(Decimal(line["amount"]) for line in made["shown_lines"])
    assert lines == (Decimal("1.25"), Decimal("156.25"), Decimal("95.83"))  # evening, urgent
    expected = Figures(
        lines,
        Decimal(made["total_excl_vat"]),
        Decimal(made["vat"]),
        Decimal(made["total_incl_vat"]),
    )
    assert expected.subtotal == sum(lines) and expected.total == expected.subtotal + expected.vat
    assert every_format(office, made["number"]) == dict.fromkeys(
        ("html", "pdf", "csv", "csv nl", "json", "ubl"), expected
    )

    credit = office.qp_json("invoice", "credit", made["number"], "--reason", "verkeerde maand")
    negative = Figures(
        tuple(-a for a in expected.lines), -expected.subtotal, -expected.vat, -expected.total
    )
    assert every_format(office, credit["number"]) == dict.fromkeys(
        ("html", "pdf", "csv", "csv nl", "json", "ubl"), negative
    )


def test_the_pdf_is_a_dutch_invoice_with_its_number_and_totals(office: World) -> None:
    entries = [
        add_manual(office, "Lambiek", "2025-05-06 10:00", 33, notes="Kassa start niet op"),
        add_urgent(office, "Lambiek", "2025-05-07 19:00", 20, request="REQ-7"),
    ]
    made = invoice(office, "Lambiek", "2025-05", *entries)
    out = office.root / "f.pdf"
    done = office.qp("invoice", "export", made["number"], "--format", "pdf", "-o", str(out))
    assert done.stderr.decode() == f"wrote {out} ({out.stat().st_size} bytes)\n"
    assert out.read_bytes().startswith(b"%PDF-")
    text = pdf_text(out)
    flowing = words(out)
    total = f"€ {made['total_incl_vat'].replace('.', ',')}"
    for phrase in (
        f"Factuur {made['number']}", "Factuurnummer", "Factuurdatum", "Vervaldatum",
        "Omschrijving", "Aantal", "Tarief", "Bedrag", "Subtotaal", "BTW verlegd", "Totaal",
        "Telefonische ondersteuning: Kassa start niet op", "Verzoek REQ-7 · door admin",
        "BELGIË", "Uw BTW-nummer", "BE0431701765",
        "Tarief inclusief toeslag avond + spoed +75 %.", "Btw verlegd — reverse charge",
        f"Gelieve {total} vóór", "KvK 12345678",
    ):  # fmt: skip
        assert phrase in flowing, phrase
    assert re.search(rf"Totaal\s+{re.escape(total)}\n", text)
    assert "Vooruitbetaald" not in text  # no prepaid hours: no such column


def test_a_settled_invoice_and_the_companys_own_template_and_logo(office: World) -> None:
    entry = add_manual(office, "Acme", "2025-04-01 10:00", 10)
    office.qp("prepaid", "add", "Acme", "--hours", "1", "--from", "2025-04-01")
    made = invoice(office, "Acme", "2025-04", entry)
    assert made["total_incl_vat"] == "0.00"
    text = pdf_text(export(office, made["number"], "pdf"))
    assert "Volledig voldaan uit vooruitbetaalde uren." in text
    assert "Gelieve" not in text

    (office.relay_data / "logo.png").write_bytes(PIXEL)
    thanks = "<p>Bedankt voor uw vertrouwen, {{ doc.customer.name }}!</p>\n<footer>"
    own = office.relay_data / "invoice.html.j2"
    own.write_text(packaged_template().replace("<footer>", thanks))
    page = export(office, made["number"], "html").decode()
    assert '<img class="logo" src="data:image/png;base64,iVBORw0KGgo' in page
    assert "Bedankt voor uw vertrouwen, Acme B.V.!" in page
    text = pdf_text(export(office, made["number"], "pdf"))
    assert "Bedankt voor uw vertrouwen, Acme B.V.!" in text

    own.write_text("<p>{% if %}</p>")
    refused = office.qp("invoice", "export", made["number"], "--format", "html", check=False)
    assert (refused.returncode, refused.stderr.decode()) == (
        1,
        "qp: invoice.html.j2 in the relay's data directory, line 1: Expected an expression,"
        " got 'end of statement block'\n",
    )
    own.unlink()
    assert "Bedankt" not in export(office, made["number"], "html").decode()


def test_a_dialect_is_for_csv_only(office: World) -> None:
    out = office.qp(
        "invoice", "export", "2025-000001", "--format", "json", "--dialect", "nl", check=False
    )
    assert (out.returncode, out.stderr.decode()) == (
        1,
        "qp: --dialect is for --format csv only\n",
    )
