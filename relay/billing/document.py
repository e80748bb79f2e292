"""The invoice as people read it: Dutch wording, columns and figures of the HTML and
PDF invoice, shaped from an :class:`~relay.billing.invoice.Invoice` (pure, no I/O).

:func:`shape` returns an :class:`InvoiceDocument` whose every text is final: Dutch
labels, ``€ 1.234,56``, ``1 april 2026``, times as ``1:05``. A template (see
``relay/templates/invoice.html.j2``) only lays it out, so a company that adapts the
template cannot get a figure wrong.

- A column no line has a value for is left out: no prepaid hours, no *Vooruitbetaald*.
  The per-line *BTW* column appears only when the lines differ in VAT category; the
  totals always show each rate. The request and the technician are a small second
  line under the description ("Verzoek REQ-12 · door Alice"), which leaves the
  description room on A4.
- Unit prices are shown to the cent (the line amount is the exact one); a surcharge
  or discount is explained once, in a footnote that the rates of its lines point to.
- Credit notes show negative amounts, as the CSV and JSON exports do.
- An invoice paid in full from prepaid hours says so instead of asking for € 0,00.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from relay.billing.invoice import Invoice, InvoiceLine, Party, Supplier, VatCategory, money, totals

MONTHS = (
    "januari februari maart april mei juni juli augustus september oktober november december"
).split()
COUNTRIES = {
    "NL": "Nederland", "BE": "België", "DE": "Duitsland", "LU": "Luxemburg",
    "FR": "Frankrijk", "GB": "Verenigd Koninkrijk", "AT": "Oostenrijk", "ES": "Spanje",
    "IT": "Italië", "DK": "Denemarken", "SE": "Zweden", "PL": "Polen", "IE": "Ierland",
}  # fmt: skip
#: Surcharge words as the rate card and time keeping write them, in Dutch. Window
#: names a company made up itself stay as they are.
SURCHARGE_WORDS = {
    "evening": "avond", "night": "nacht", "weekend": "weekend", "saturday": "zaterdag",
    "sunday": "zondag", "morning": "ochtend", "early": "vroeg", "late": "laat",
    "after_hours": "buiten kantoortijd", "out_of_hours": "buiten kantoortijd",
    "urgent": "spoed", "holiday": "feestdag",
}  # fmt: skip
HOLIDAYS = {
    "new_years_day": "Nieuwjaarsdag", "good_friday": "Goede Vrijdag",
    "easter_sunday": "Eerste Paasdag", "easter_monday": "Tweede Paasdag",
    "kings_day": "Koningsdag", "liberation_day": "Bevrijdingsdag",
    "ascension_day": "Hemelvaartsdag", "whit_sunday": "Eerste Pinksterdag",
    "whit_monday": "Tweede Pinksterdag", "christmas_day": "Eerste Kerstdag",
    "second_christmas_day": "Tweede Kerstdag",
}  # fmt: skip
REVERSE_CHARGE_NOTE = (
    "Btw verlegd — reverse charge: VAT to be accounted for by the customer "
    "(art. 196 Council Directive 2006/112/EC)."
)
OUTSIDE_SCOPE_NOTE = (
    "Niet onderworpen aan Nederlandse btw — not subject to Dutch VAT: the service is "
    "supplied where the customer is established (art. 44 Council Directive 2006/112/EC)."
)
SETTLED_NOTE = "Volledig voldaan uit vooruitbetaalde uren"
#: ``evening + urgent +50 % (30 min)``, ``discount -10 %`` (see timekeeping's labels)
_LABEL = re.compile(r"(?P<names>.+?) (?P<sign>[+-])(?P<pct>\d+(?:\.\d+)?) %(?: \([\d.]+ min\))?")
_MARKS = ("*", "**", "***")


@dataclass(frozen=True)
class Column:
    """A column of the lines table; ``key`` doubles as the cells' CSS class."""

    key: str
    label: str
    numeric: bool = False


@dataclass(frozen=True)
class Cell:
    """One cell of a line: its column's key, its text, an optional footnote mark,
    and an optional second line in small print (``detail``)."""

    key: str
    text: str
    numeric: bool = False
    mark: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Footnote:
    mark: str
    text: str


@dataclass(frozen=True)
class TotalRow:
    """A row below the lines: ``key`` is ``subtotal``, ``vat`` or ``total``."""

    key: str
    label: str
    amount: str


@dataclass(frozen=True)
class PartyBlock:
    """A name and the address lines under it."""

    name: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class InvoiceDocument:
    """Everything the invoice template shows, as final text."""

    kind: str  # invoice | credit_note
    title: str  # Factuur | Creditnota
    number: str
    heading: str  # "Factuur 2026-000123"
    supplier: PartyBlock
    customer: PartyBlock
    meta: tuple[tuple[str, str], ...]
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    footnotes: tuple[Footnote, ...]
    totals: tuple[TotalRow, ...]
    notes: tuple[str, ...]  # prepaid hours used, reverse charge
    payment: str  # what to pay, by when and where; or that nothing is due
    settled: bool  # paid in full from prepaid hours
    company_ids: tuple[str, ...]  # KvK, BTW-nummer, IBAN, e-mail


def shape(invoice: Invoice, supplier: Supplier, customer: Party) -> InvoiceDocument:
    """The invoice (or credit note) as the HTML and PDF show it."""
    credit = invoice.kind == "credit_note"
    title = "Creditnota" if credit else "Factuur"
    columns = _columns(invoice.lines)
    footnotes, marks = _footnotes(invoice.lines)
    sign = -1 if credit else 1
    rows = tuple(
        _row(line, columns, marks.get(index, ""), sign) for index, line in enumerate(invoice.lines)
    )
    payment, settled = _payment(invoice, supplier)
    return InvoiceDocument(
        kind=invoice.kind,
        title=title,
        number=invoice.number,
        heading=f"{title} {invoice.number}",
        supplier=_party(supplier.party, supplier.party.country_code),
        customer=_party(customer, supplier.party.country_code),
        meta=_meta(invoice, customer),
        columns=columns,
        rows=rows,
        footnotes=footnotes,
        totals=_totals(invoice, sign),
        notes=_notes(invoice, customer),
        payment=payment,
        settled=settled,
        company_ids=_company_ids(supplier),
    )


# -- parts ------------------------------------------------------------------------------


def _party(party: Party, home_country: str) -> PartyBlock:
    lines = [*party.address_lines, f"{party.postcode} {party.city}"]
    if party.country_code != home_country:
        lines.append(COUNTRIES.get(party.country_code, party.country_code).upper())
    return PartyBlock(party.legal_name, tuple(lines))


def _meta(invoice: Invoice, customer: Party) -> tuple[tuple[str, str], ...]:
    period = period_text(invoice.period.start, invoice.period.end)
    if invoice.kind == "credit_note" and invoice.original_issue_date is not None:
        rows = [
            ("Creditnotanummer", invoice.number),
            ("Datum", long_date(invoice.issue_date)),
            (
                "Creditering van",
                f"factuur {invoice.original_number} van {long_date(invoice.original_issue_date)}",
            ),
        ]
    else:
        rows = [
            ("Factuurnummer", invoice.number),
            ("Factuurdatum", long_date(invoice.issue_date)),
            ("Vervaldatum", long_date(invoice.due_date)),
        ]
    rows += [("Periode", period), ("Uw referentie", invoice.buyer_reference)]
    if customer.vat_id:
        rows.append(("Uw BTW-nummer", customer.vat_id))
    return tuple(rows)


def _columns(lines: tuple[InvoiceLine, ...]) -> tuple[Column, ...]:
    shown = [
        (Column("datum", "Datum"), True),
        (Column("omschrijving", "Omschrijving"), True),
        (Column("werkelijk", "Werkelijk", True), True),
        (Column("vooruitbetaald", "Vooruitbetaald", True), any(ln.prepaid_minutes for ln in lines)),
        (Column("aantal", "Aantal (uur)", True), True),
        (Column("tarief", "Tarief", True), True),
        (Column("btw", "BTW", True), len({line.vat for line in lines}) > 1),
        (Column("bedrag", "Bedrag", True), True),
    ]
    return tuple(column for column, show in shown if show)


def _row(line: InvoiceLine, columns: tuple[Column, ...], mark: str, sign: int) -> tuple[Cell, ...]:
    texts = {
        "datum": short_date(line.supply_date),
        "omschrijving": line.description,
        "werkelijk": duration(line.actual_minutes),
        "vooruitbetaald": duration(line.prepaid_minutes) if line.prepaid_minutes else "",
        "aantal": duration(line.charged_minutes),
        "tarief": eur(money(line.unit_price)),
        "btw": vat_label(line.vat),
        "bedrag": eur(sign * line.line_amount),
    }
    about = [f"Verzoek {line.request_ref}"] if line.request_ref else []
    about += [f"door {line.technician}"] if line.technician.strip() else []
    return tuple(
        Cell(
            c.key,
            texts[c.key],
            c.numeric,
            mark if c.key == "tarief" else "",
            " · ".join(about) if c.key == "omschrijving" else "",
        )
        for c in columns
    )


def _footnotes(lines: Iterable[InvoiceLine]) -> tuple[tuple[Footnote, ...], dict[int, str]]:
    """One footnote per distinct explanation, and the mark of each line that has one."""
    texts: dict[str, str] = {}
    marks: dict[int, str] = {}
    for index, line in enumerate(lines):
        text = rate_note(line.surcharges)
        if not text:
            continue
        if text not in texts:
            n = len(texts)
            texts[text] = _MARKS[n] if n < len(_MARKS) else f"({n + 1})"
        marks[index] = texts[text]
    return tuple(Footnote(mark, text) for text, mark in texts.items()), marks


def _totals(invoice: Invoice, sign: int) -> tuple[TotalRow, ...]:
    sums = totals(invoice)
    rows = [TotalRow("subtotal", "Subtotaal", eur(sign * sums.tax_exclusive))]
    for sub in sums.vat:
        if sub.category.reverse_charge:
            label = "BTW verlegd"
        elif sub.category.outside_scope:
            label = "Geen btw (buiten btw)"
        else:
            label = f"BTW {percent(sub.category.percent)} over {eur(sign * sub.base)}"
        rows.append(TotalRow("vat", label, eur(sign * sub.tax)))
    rows.append(TotalRow("total", "Totaal", eur(sign * sums.payable)))
    return tuple(rows)


def _notes(invoice: Invoice, customer: Party) -> tuple[str, ...]:
    notes = []
    prepaid = sum(line.prepaid_minutes for line in invoice.lines)
    if prepaid:
        notes.append(
            f"Teruggeboekt op uw vooruitbetaalde uren: {duration(prepaid)} uur."
            if invoice.kind == "credit_note"
            else f"Verrekend met uw vooruitbetaalde uren: {duration(prepaid)} uur."
        )
    notes += invoice.notes  # what the prepaid hours paid, how, and the balance after it
    if invoice.reverse_charge:
        notes.append(f"{REVERSE_CHARGE_NOTE} BTW-nummer afnemer: {customer.vat_id or ''}")
    if invoice.outside_scope:
        notes.append(OUTSIDE_SCOPE_NOTE)
    return tuple(notes)


def _payment(invoice: Invoice, supplier: Supplier) -> tuple[str, bool]:
    payable = totals(invoice).payable
    party = supplier.party
    if invoice.kind == "credit_note":
        return (
            f"Te crediteren: {eur(payable)}. Dit bedrag wordt verrekend of teruggestort; "
            f"deze creditnota crediteert factuur {invoice.original_number}.",
            False,
        )
    if payable == 0:
        if any(line.prepaid_minutes for line in invoice.lines):
            return f"{SETTLED_NOTE}.", True
        return "Er is niets te betalen.", False
    return (
        f"Gelieve {eur(payable)} vóór {long_date(invoice.due_date)} over te maken op "
        f"{supplier.iban} t.n.v. {party.legal_name} onder vermelding van factuurnummer "
        f"{invoice.number}.",
        False,
    )


def _company_ids(supplier: Supplier) -> tuple[str, ...]:
    party = supplier.party
    ids = [f"KvK {party.kvk_number}", f"BTW-nummer {party.vat_id}", f"IBAN {supplier.iban}"]
    if party.email:
        ids.append(party.email)
    return tuple(ids)


# -- surcharges ---------------------------------------------------------------------------


def surcharge_dutch(label: str) -> tuple[str, bool]:
    """``evening +50 % (30 min)`` as ``("avond +50 %", False)``; a discount as
    ``("10 %", True)``. Labels of another form come back as they are."""
    match = _LABEL.fullmatch(label.strip())
    if match is None:
        return label.strip(), False
    pct = match["pct"].replace(".", ",")
    if match["names"] == "discount":
        return f"{pct} %", True
    names: list[str] = []
    for name in match["names"].split(" + "):
        word, _, holiday = name.partition(" ")
        dutch = SURCHARGE_WORDS.get(word, word)
        if holiday:
            dutch = f"{dutch} ({HOLIDAYS.get(holiday, holiday.replace('_', ' '))})"
        if dutch not in names:
            names.append(dutch)
    if any(n.startswith("feestdag (") for n in names) and "feestdag" in names:
        names.remove("feestdag")  # "holiday + holiday kings_day": the day says it
    return f"{' + '.join(names)} {match['sign']}{pct} %", False


def rate_note(labels: Iterable[str]) -> str:
    """What a line's rate includes, in one sentence ("" when it is the plain rate)."""
    surcharges: list[str] = []
    discounts: list[str] = []
    for label in labels:
        text, discount = surcharge_dutch(label)
        target = discounts if discount else surcharges
        if text and text not in target:
            target.append(text)
    parts = []
    if surcharges:
        parts.append("toeslag " + _and(surcharges))
    if discounts:
        parts.append("korting " + _and(discounts))
    return f"Tarief inclusief {' en '.join(parts)}." if parts else ""


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} en {items[-1]}"


# -- formatting ---------------------------------------------------------------------------


def eur(value: Decimal) -> str:
    """Dutch money notation: ``€ 1.234,56``, ``€ -1.234,56``."""
    text = f"{money(abs(value)):,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
    return f"€ {'-' if value < 0 and money(value) != 0 else ''}{text}"


def long_date(day: date) -> str:
    """``1 april 2026``"""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def period_text(start: date, end: date) -> str:
    """``1 t/m 31 maart 2026``; across months or years as much as is needed."""
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day} t/m {long_date(end)}"
    if start.year == end.year:
        return f"{start.day} {MONTHS[start.month - 1]} t/m {long_date(end)}"
    return f"{long_date(start)} t/m {long_date(end)}"


def short_date(day: date) -> str:
    """``03-04-2026``"""
    return f"{day.day:02d}-{day.month:02d}-{day.year}"


def duration(minutes: int) -> str:
    """Hours and minutes: ``1:05``."""
    return f"{minutes // 60}:{minutes % 60:02d}"


def percent(value: Decimal) -> str:
    """``21 %``, ``5,5 %``"""
    return f"{value.normalize():f} %".replace(".", ",")


def vat_label(vat: VatCategory) -> str:
    """A line's VAT as the lines table shows it."""
    if vat.outside_scope:
        return "buiten btw"
    return "verlegd" if vat.reverse_charge else percent(vat.percent)
