"""Invoice documents: parties, lines, totals, credit notes, numbers (pure, no I/O).

Money is ``Decimal``: line amounts are rounded half-up to cents once, from the
billable minutes and the hourly rate; VAT is computed per VAT category on the
summed base and rounded half-up to cents, as the EN 16931 rules (BR-CO-*) expect.
A credit note is a document of its own kind with the same, positive, amounts as
the invoice it cancels (the document type carries the sign, as in UBL).

Invalid documents cannot be built: every constructor raises
:class:`shared.errors.UsageError` with a one-line message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from shared.errors import UsageError

CENT = Decimal("0.01")
#: Hours are printed with up to six decimals: 25 minutes is 0.416667 h. The error
#: of quantity × rate against the exact amount stays far below a cent, within the
#: 0.02 tolerance Peppol allows (PEPPOL-EN16931-R120) at any plausible rate.
QUANTITY_STEP = Decimal("0.000001")
CURRENCY = "EUR"
HOUR_UNIT = "HUR"

InvoiceKind = Literal["invoice", "credit_note"]
VatCode = Literal["S", "AE", "O"]
PaymentMeansCode = Literal["30", "58"]

_NUMBER = re.compile(r"(\d{4})-(\d{6})")
_COUNTRY = re.compile(r"[A-Z]{2}")
_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")


def money(value: Decimal) -> Decimal:
    """``value`` rounded half-up to cents."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def hours(minutes: int) -> Decimal:
    """``minutes`` as hours, rounded half-up to six decimals, trailing zeros dropped."""
    exact = (Decimal(minutes) / Decimal(60)).quantize(QUANTITY_STEP, rounding=ROUND_HALF_UP)
    return _plain(exact)


def _plain(value: Decimal) -> Decimal:
    """``value`` without trailing zeros and never in exponent form (``1E+1``)."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


# -- numbering ------------------------------------------------------------------------


def parse_number(number: str) -> tuple[int, int]:
    """``(year, seq)`` of an invoice number made by :func:`format_number`."""
    match = _NUMBER.fullmatch(number)
    if match is None or int(match.group(2)) == 0:
        raise UsageError(f"invoice number {number!r} is not of the form YYYY-NNNNNN")
    return int(match.group(1)), int(match.group(2))


# -- parties ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    """A legal entity on an invoice: the supplier or the customer.

    ``address_lines`` holds one or two street lines (street and number, then an
    optional addition). ``endpoint_id``/``endpoint_scheme`` is the e-invoicing
    address (scheme 0106 = KvK number, 0208 = Belgian enterprise number, 9930 =
    German VAT id, ...).
    """

    legal_name: str
    address_lines: tuple[str, ...]
    postcode: str
    city: str
    country_code: str
    endpoint_id: str
    endpoint_scheme: str = "0106"
    kvk_number: str | None = None
    vat_id: str | None = None
    email: str | None = None

    def __post_init__(self) -> None:
        for name in ("legal_name", "postcode", "city", "endpoint_id", "endpoint_scheme"):
            if not getattr(self, name).strip():
                raise UsageError(f"party {self.legal_name!r}: {name} is empty")
        if not 1 <= len(self.address_lines) <= 2 or not all(
            line.strip() for line in self.address_lines
        ):
            raise UsageError(f"party {self.legal_name!r}: give one or two non-empty address lines")
        if not _COUNTRY.fullmatch(self.country_code):
            raise UsageError(
                f"party {self.legal_name!r}: country code {self.country_code!r} "
                "is not ISO 3166 alpha-2"
            )
        if self.vat_id is not None and not _COUNTRY.fullmatch(self.vat_id[:2]):
            raise UsageError(
                f"party {self.legal_name!r}: VAT id {self.vat_id!r} lacks its country prefix"
            )


def iban_is_valid(iban: str) -> bool:
    """Whether ``iban`` (spaces allowed) passes the ISO 13616 mod-97 check."""
    compact = iban.replace(" ", "").upper()
    if not _IBAN.fullmatch(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


@dataclass(frozen=True)
class Supplier:
    """The invoicing company: its party data plus payment settings.

    ``payment_means_code`` 58 is a SEPA credit transfer, 30 a plain credit transfer.
    """

    party: Party
    iban: str
    payment_terms_days: int = 14
    payment_means_code: PaymentMeansCode = "58"

    def __post_init__(self) -> None:
        if not self.party.kvk_number or not self.party.vat_id:
            raise UsageError("supplier: a KvK number and a VAT id are required on invoices")
        if not iban_is_valid(self.iban):
            raise UsageError(f"supplier: IBAN {self.iban!r} is not valid")
        if not 0 <= self.payment_terms_days <= 365:
            raise UsageError(f"supplier: payment terms of {self.payment_terms_days} days")
        object.__setattr__(self, "iban", self.iban.replace(" ", "").upper())

    def due_date(self, issue_date: date) -> date:
        """When an invoice issued on ``issue_date`` must be paid."""
        return issue_date + timedelta(days=self.payment_terms_days)


# -- lines -----------------------------------------------------------------------------


@dataclass(frozen=True)
class VatCategory:
    """A VAT category of EN 16931: ``S`` standard rate, ``AE`` reverse charge at 0 %,
    ``O`` not subject to VAT (services outside the scope of Dutch VAT; no rate is
    printed for it, the 0 here only makes the sums work)."""

    code: VatCode
    percent: Decimal

    def __post_init__(self) -> None:
        if self.code == "AE" and self.percent != 0:
            raise UsageError("VAT category AE (reverse charge) has a rate of 0 %")
        if self.code == "O" and self.percent != 0:
            raise UsageError("VAT category O (outside the scope of VAT) has no rate")
        if self.code == "S" and not 0 < self.percent < 100:
            raise UsageError(f"VAT category S needs a rate above 0 %, not {self.percent} %")
        object.__setattr__(self, "percent", _plain(self.percent))

    @property
    def reverse_charge(self) -> bool:
        return self.code == "AE"

    @property
    def outside_scope(self) -> bool:
        return self.code == "O"


STANDARD = VatCategory("S", Decimal("21"))
REVERSE_CHARGE = VatCategory("AE", Decimal("0"))
OUTSIDE_SCOPE = VatCategory("O", Decimal("0"))


@dataclass(frozen=True)
class InvoiceLine:
    """One approved time entry on an invoice.

    ``unit_price`` is the resolved hourly rate excluding VAT with every surcharge
    already applied; ``surcharges`` only describes them. Minutes drawn from a
    prepaid block are billable but not charged: the quantity is
    ``billable_minutes - prepaid_minutes`` in hours.
    """

    description: str
    supply_date: date
    technician: str
    request_ref: str | None
    actual_minutes: int
    billable_minutes: int
    unit_price: Decimal
    vat: VatCategory = STANDARD
    surcharges: tuple[str, ...] = ()
    prepaid_minutes: int = 0

    def __post_init__(self) -> None:
        if not self.description.strip():
            raise UsageError("invoice line: the description is empty")
        if self.actual_minutes < 0 or self.billable_minutes < 0:
            raise UsageError(f"invoice line {self.description!r}: negative minutes")
        if not 0 <= self.prepaid_minutes <= self.billable_minutes:
            raise UsageError(
                f"invoice line {self.description!r}: {self.prepaid_minutes} prepaid minutes "
                f"exceed the {self.billable_minutes} billable minutes"
            )
        if self.unit_price < 0:
            raise UsageError(f"invoice line {self.description!r}: negative rate")

    @property
    def charged_minutes(self) -> int:
        return self.billable_minutes - self.prepaid_minutes

    @property
    def quantity(self) -> Decimal:
        """Charged time in hours (unit code ``HUR``)."""
        return hours(self.charged_minutes)

    @property
    def line_amount(self) -> Decimal:
        """Charged minutes at the hourly rate, rounded half-up to cents once."""
        return money(Decimal(self.charged_minutes) * self.unit_price / Decimal(60))


# -- documents -----------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """The billing period, both days included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise UsageError(f"billing period ends ({self.end}) before it starts ({self.start})")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


@dataclass(frozen=True)
class Invoice:
    """An invoice or a credit note; credit notes name the invoice they cancel."""

    number: str
    issue_date: date
    due_date: date
    period: Period
    buyer_reference: str
    lines: tuple[InvoiceLine, ...]
    kind: InvoiceKind = "invoice"
    currency: str = CURRENCY
    original_number: str | None = None
    original_issue_date: date | None = None
    notes: tuple[str, ...] = ()  # free text printed with the invoice (prepaid hours)
    prepaid_left_minutes: int | None = None  # prepaid balance after it; None: no blocks

    def __post_init__(self) -> None:
        parse_number(self.number)
        if self.currency != CURRENCY:
            raise UsageError(f"invoice {self.number}: only {CURRENCY} is supported")
        if not self.buyer_reference.strip():
            raise UsageError(f"invoice {self.number}: the buyer reference is empty")
        if not self.lines:
            raise UsageError(f"invoice {self.number}: no lines")
        if self.due_date < self.issue_date:
            raise UsageError(f"invoice {self.number}: due date before the issue date")
        for line in self.lines:
            if line.supply_date not in self.period:
                raise UsageError(
                    f"invoice {self.number}: {line.description!r} was supplied on "
                    f"{line.supply_date}, outside the period {self.period.start}..{self.period.end}"
                )
        has_original = self.original_number is not None and self.original_issue_date is not None
        if self.kind == "credit_note":
            if not has_original:
                raise UsageError(f"credit note {self.number}: the original invoice is missing")
        elif self.original_number is not None or self.original_issue_date is not None:
            raise UsageError(f"invoice {self.number}: only credit notes reference an original")

    @property
    def reverse_charge(self) -> bool:
        """Whether any line is reverse-charged ("btw verlegd")."""
        return any(line.vat.reverse_charge for line in self.lines)

    @property
    def outside_scope(self) -> bool:
        """Whether any line is outside the scope of VAT (then no VAT ids, BR-O-02)."""
        return any(line.vat.outside_scope for line in self.lines)


def credit_note_for(invoice: Invoice, number: str, issue_date: date) -> Invoice:
    """The credit note cancelling ``invoice`` in full: same lines, its own number."""
    if invoice.kind != "invoice":
        raise UsageError(f"{invoice.number} is a credit note; credit the invoice itself")
    if issue_date < invoice.issue_date:
        raise UsageError(f"credit note {number}: issued before invoice {invoice.number}")
    if number == invoice.number:
        raise UsageError(f"credit note {number}: needs a number of its own")
    return replace(
        invoice,
        number=number,
        issue_date=issue_date,
        due_date=issue_date,
        kind="credit_note",
        original_number=invoice.number,
        original_issue_date=invoice.issue_date,
    )


# -- totals ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VatSubtotal:
    """Base and VAT of one category (one ``cac:TaxSubtotal``)."""

    category: VatCategory
    base: Decimal
    tax: Decimal


@dataclass(frozen=True)
class Totals:
    """Document totals (``cac:TaxTotal`` and ``cac:LegalMonetaryTotal``)."""

    vat: tuple[VatSubtotal, ...]
    line_extension: Decimal
    tax_exclusive: Decimal
    tax: Decimal
    tax_inclusive: Decimal
    payable: Decimal


def vat_subtotals(lines: Iterable[InvoiceLine]) -> tuple[VatSubtotal, ...]:
    """Per VAT category, in order of first use: the summed base and its VAT.

    VAT is rounded per category, not per line, so that base × rate = tax holds
    for the document (BR-CO-17).
    """
    bases: dict[VatCategory, Decimal] = {}
    for line in lines:
        bases[line.vat] = bases.get(line.vat, Decimal(0)) + line.line_amount
    return tuple(
        VatSubtotal(category, base, money(base * category.percent / Decimal(100)))
        for category, base in bases.items()
    )


def totals(invoice: Invoice) -> Totals:
    """The totals of ``invoice``: Σ lines, VAT per category, with and without VAT."""
    subtotals = vat_subtotals(invoice.lines)
    line_extension = sum((line.line_amount for line in invoice.lines), Decimal("0.00"))
    tax = sum((sub.tax for sub in subtotals), Decimal("0.00"))
    inclusive = line_extension + tax
    return Totals(
        vat=subtotals,
        line_extension=line_extension,
        tax_exclusive=line_extension,
        tax=tax,
        tax_inclusive=inclusive,
        payable=inclusive,
    )
