"""Rendering invoices (relay.services.documents): the packaged template or the
company's own from the data directory, its logo, autoescape and the sandbox, and
PDFs whose text holds what the HTML holds while nothing outside is fetched."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from relay.billing.invoice import credit_note_for
from relay.services.documents import (
    LOGO_FILE,
    TEMPLATE_FILE,
    InvoiceTemplates,
    html_to_pdf,
    packaged_template,
)
from shared.errors import ConfigError
from tests.pdf_text import euros, pdf_text
from tests.unit.test_billing_invoice import CUSTOMER, SUPPLIER, invoice, line, march_invoice

#: The smallest valid PNG: one transparent pixel.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4a300"
    "00000049454e44ae426082"
)


def test_the_packaged_template_is_package_data() -> None:
    text = packaged_template()
    assert "{{ doc.heading }}" in text and "Content-Security-Policy" in text
    # pyproject ships it: the wheel must carry the file the relay reads.
    assert (
        '"relay" = ["templates/*.j2"]' in (Path(__file__).parents[2] / "pyproject.toml").read_text()
    )


def test_a_template_and_logo_in_the_data_directory_replace_the_packaged_ones(
    tmp_path: Path,
) -> None:
    templates = InvoiceTemplates(tmp_path)
    before = templates.version()
    page = templates.html(march_invoice(), SUPPLIER, CUSTOMER)
    assert "<img" not in page and "Factuur 2026-000123" in page
    (tmp_path / LOGO_FILE).write_bytes(PIXEL)
    (tmp_path / TEMPLATE_FILE).write_text(
        "<h1>{{ doc.heading }} voor {{ doc.customer.name }}</h1>"
        '{% if logo %}<img src="{{ logo }}">{% endif %}'
        "{% for row in doc.totals %}<p>{{ row.label }}: {{ row.amount }}</p>{% endfor %}"
    )
    assert templates.version() != before  # cached renderings are not reused
    hostile = replace(CUSTOMER, legal_name="<b>Acme</b> & Zn")
    page = templates.html(march_invoice(), SUPPLIER, hostile)
    assert page.startswith("<h1>Factuur 2026-000123 voor &lt;b&gt;Acme&lt;/b&gt; &amp; Zn</h1>")
    assert '<img src="data:image/png;base64,iVBORw0KGgo' in page
    assert "<p>Totaal: € 140,66</p>" in page


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "<p>{% for x in doc.rows %}</p>",
            rf"^{TEMPLATE_FILE} in the relay's data directory, line 1: Unexpected end of template",
        ),
        ("<p>{{ doc.no_such_thing }}</p>", "has no attribute 'no_such_thing'"),
        ("{{ doc.__class__.__mro__ }}", "__class__"),  # the sandbox hides internals
    ],
)
def test_a_broken_company_template_is_refused_with_where_and_why(
    tmp_path: Path, template: str, message: str
) -> None:
    (tmp_path / TEMPLATE_FILE).write_text(template)
    with pytest.raises(ConfigError, match=message):
        InvoiceTemplates(tmp_path).html(march_invoice(), SUPPLIER, CUSTOMER)


def test_a_logo_must_be_a_png_of_reasonable_size(tmp_path: Path) -> None:
    (tmp_path / LOGO_FILE).write_bytes(b"GIF89a....")
    with pytest.raises(
        ConfigError, match="^logo.png in the relay's data directory is not a PNG image"
    ):
        InvoiceTemplates(tmp_path).html(march_invoice(), SUPPLIER, CUSTOMER)
    (tmp_path / LOGO_FILE).write_bytes(PIXEL + bytes(2 * 1024 * 1024))
    with pytest.raises(
        ConfigError, match="^logo.png in the relay's data directory is larger than 1024 KiB"
    ):
        InvoiceTemplates(tmp_path).html(march_invoice(), SUPPLIER, CUSTOMER)


async def test_the_pdf_reads_like_the_html() -> None:
    templates = InvoiceTemplates(None)
    pdf = await templates.pdf(march_invoice(), SUPPLIER, CUSTOMER)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    for words in ("Factuur 2026-000123", "Factuurnummer", "Vervaldatum", "Omschrijving",
                  "Aantal", "Tarief", "Bedrag", "Subtotaal", "Totaal",
                  "Tarief inclusief toeslag avond +50 %.", "Pagina 1 van 1"):  # fmt: skip
        assert words in text, words
    # Rate and amount of each line, subtotal, VAT base and VAT, total, the sum asked for.
    assert [str(a) for a in euros(text)] == [
        "90.00", "37.50", "135.00", "78.75", "116.25", "116.25", "24.41", "140.66", "140.66",
    ]  # fmt: skip


async def test_a_credit_note_pdf_is_negative_and_a_settled_one_asks_for_nothing() -> None:
    templates = InvoiceTemplates(None)
    credit = credit_note_for(march_invoice(), "2026-000124", date(2026, 4, 5))
    text = pdf_text(await templates.pdf(credit, SUPPLIER, CUSTOMER))
    assert "Creditnota 2026-000124" in text and "€ -140,66" in text
    settled = invoice(line(25, "90.00", prepaid=25))
    text = pdf_text(await templates.pdf(settled, SUPPLIER, CUSTOMER))
    assert "Volledig voldaan uit vooruitbetaalde uren" in text
    assert "Gelieve" not in text


def test_a_pdf_fetches_nothing_but_data_urls(tmp_path: Path) -> None:
    leak = tmp_path / "leak.css"
    leak.write_text('body::after { content: "GELEKT"; }')
    page = (
        f'<link rel="stylesheet" href="{leak.as_uri()}">'
        '<img src="http://127.0.0.1:9/tracker.png" alt="">'
        f'<img src="{(tmp_path / "x.png").as_uri()}" alt="">'
        "<p>Factuur 2026-000999</p>"
    )
    (tmp_path / "x.png").write_bytes(PIXEL)
    text = pdf_text(html_to_pdf(page))
    assert "Factuur 2026-000999" in text
    assert "GELEKT" not in text
