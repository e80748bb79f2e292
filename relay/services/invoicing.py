"""Invoicing: a customer's approved time of one month becomes a numbered invoice.

:func:`plan_invoice` gathers the approved, uninvoiced entries whose work started
in the period (local dates in the company's time zone), draws prepaid hours,
builds the lines and checks the document against the e-invoicing rules, without
writing anything (``--dry-run`` shows exactly this). :func:`create_invoice` then
writes it: the store numbers it and locks its entries in one transaction.
Credit notes cancel an invoice in full; exports render the stored snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from relay.billing.exports import CsvDialect, to_csv, to_json
from relay.billing.invoice import (
    Invoice,
    InvoiceLine,
    Party,
    PaymentMeansCode,
    Period,
    Supplier,
    VatCategory,
    totals,
)
from relay.billing.invoice_build import (
    document,
    entry_lines,
    line_record,
    party_json,
    supplier_json,
)
from relay.billing.parties import check_party
from relay.billing.preflight import check_invoice
from relay.billing.prepaid import DEFAULT_TERMS, Terms
from relay.billing.ubl import Profile, to_ubl
from relay.billing.vat import customer_vat
from relay.core.ids import new_id
from relay.model import (
    AuditEvent,
    CreditRequest,
    Customer,
    CustomerBilling,
    EntryQuery,
    InvoiceDraft,
    InvoiceRecord,
    PrepaidDraw,
    format_number,
)
from relay.services.company import company_party, missing_flags
from relay.services.documents import InvoiceTemplates, request_titles
from relay.services.names import Names
from relay.services.prepaid import prepaid_for
from relay.settings import Company
from relay.store.interface import Store
from shared.errors import ConfigError, NotFoundError, UsageError

FORMATS = ("csv", "json", "ubl", "html", "pdf")


def supplier_for(company: Company, terms_days: int) -> Supplier:
    """The supplier on an invoice; ConfigError naming what the company data still lacks."""
    missing = missing_flags(company)
    if missing:
        raise ConfigError(
            "invoices need the company's own data: set it with qp company set "
            + " ".join(f"{flag} …" for flag in missing)
        )
    try:
        means: PaymentMeansCode = "30" if company.payment_means == "30" else "58"
        return Supplier(company_party(company), company.iban, terms_days, means)
    except UsageError as exc:
        raise ConfigError(f"company data: {exc}; correct it with qp company set") from None


def customer_party(billing: CustomerBilling) -> Party:
    return Party(
        legal_name=billing.legal_name,
        address_lines=billing.address_lines,
        postcode=billing.postcode,
        city=billing.city,
        country_code=billing.country,
        endpoint_id=billing.endpoint_id,
        endpoint_scheme=billing.endpoint_scheme,
        kvk_number=billing.kvk,
        vat_id=billing.vat_id,
        email=billing.email,
    )


def local_bounds(period: Period, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants of the period's first local midnight and the one after its end."""
    start = datetime.combine(period.start, time(0), zone).astimezone(UTC)
    after = date.fromordinal(period.end.toordinal() + 1)
    return start, datetime.combine(after, time(0), zone).astimezone(UTC)


@dataclass(frozen=True)
class Plan:
    """An invoice ready to write, and its document as it will read (``number`` is
    a preview until the store allocates the real one)."""

    draft: InvoiceDraft
    invoice: Invoice
    supplier: Supplier
    customer: Party


async def plan_invoice(
    store: Store,
    company: Company,
    customer: Customer,
    period: Period,
    *,
    reference: str | None,
    actor: str,
    now: datetime,
    prepaid_terms: Terms = DEFAULT_TERMS,
) -> Plan:
    """The invoice for ``customer``'s approved, uninvoiced work in ``period``;
    ``prepaid_terms`` are the relay's prepaid settings (a customer may have its own).
    Every invoice of a customer with prepaid hours notes their balance after it."""
    zone = ZoneInfo(company.timezone)
    billing = await store.get_customer_billing(customer.id)
    if billing is None:
        raise UsageError(
            f"customer {customer.name!r} has no billing data yet; "
            f"set it with: qp customer billing {customer.name!r} --legal-name … --address …"
        )
    supplier = supplier_for(company, billing.payment_terms_days)
    party, vat = _customer_terms(customer, billing, VatCategory("S", company.vat_percent))
    start, before = local_bounds(period, zone)
    entries = await store.query_entries(
        EntryQuery(
            customer_id=customer.id,
            status="approved",
            started_from=start,
            started_before=before,
            with_details=False,
        )
    )
    if not entries:
        raise UsageError(
            f"no approved, uninvoiced time entries for {customer.name} from "
            f"{period.start} to {period.end}; approve entries with qp time approve"
        )
    days = {e.id: e.started_at.astimezone(zone).date() for e in entries}
    issue = now.astimezone(zone).date()
    prepaid = await prepaid_for(store, customer.id, entries, days, issue, prepaid_terms)
    names = await Names.load(store)
    titles = await request_titles(store, (e.request for e in entries))
    lines: list[tuple[str, InvoiceLine]] = []
    for e in entries:
        technician = names.technician(e.technician_id)
        agent = names.agents.get(e.agent_id, "")  # manual work has no machine
        title = titles.get(e.request or "", "")
        cover = prepaid.covers.get(e.id)
        day = days[e.id]
        lines += [(e.id, ln) for ln in entry_lines(e, day, technician, vat, cover, agent, title)]
    preview = await store.next_invoice_number(issue.year)
    invoice = Invoice(
        number=format_number(issue.year, min(preview, 999_999)),
        issue_date=issue,
        due_date=supplier.due_date(issue),
        period=period,
        buyer_reference=(reference or billing.reference or customer.name).strip(),
        lines=tuple(ln for _, ln in lines),
        notes=prepaid.notes,
        prepaid_left_minutes=prepaid.left_minutes,
    )
    _preflight(customer, invoice, supplier, party)
    sums = totals(invoice)
    draft = InvoiceDraft(
        id=new_id("inv"),
        customer_id=customer.id,
        issue_date=issue,
        due_date=invoice.due_date,
        period_start=period.start,
        period_end=period.end,
        buyer_reference=invoice.buyer_reference,
        currency=invoice.currency,
        supplier=supplier_json(supplier),
        customer=party_json(party),
        total_excl_vat=sums.tax_exclusive,
        vat_total=sums.tax,
        total_incl_vat=sums.tax_inclusive,
        created_at=now,
        created_by=actor,
        lines=tuple(line_record(i, entry_id, ln) for i, (entry_id, ln) in enumerate(lines, 1)),
        entry_ids=tuple(e.id for e in entries),
        draws=tuple(
            PrepaidDraw(d.block_id, entry_id, d.minutes)
            for entry_id, cover in prepaid.covers.items()
            for d in cover.draws
        ),
        notes=invoice.notes,
        prepaid_left_minutes=invoice.prepaid_left_minutes,
    )
    return Plan(draft, invoice, supplier, party)


def _customer_terms(
    customer: Customer, billing: CustomerBilling, standard: VatCategory
) -> tuple[Party, VatCategory]:
    """The customer's party and VAT category, checked as ``qp customer billing`` checks
    them: data stored before a rule existed is refused here, before numbering."""
    try:
        party = check_party(customer_party(billing))
        vat = customer_vat(
            party.country_code,
            party.vat_id,
            reverse_charge=billing.reverse_charge,
            no_reverse_charge_reason=billing.no_reverse_charge_reason,
            standard=standard,
        )
    except UsageError as exc:
        raise UsageError(
            f"no invoice for {customer.name}, nothing numbered: {exc}; "
            f"correct it with qp customer billing {customer.name!r}"
        ) from None
    return party, vat


def _preflight(customer: Customer, invoice: Invoice, supplier: Supplier, party: Party) -> None:
    """Refuse, before a number is allocated, what the official rules would refuse."""
    try:
        check_invoice(invoice, supplier, party)
    except UsageError as exc:
        where = f"qp customer billing {customer.name!r}"
        if str(exc).startswith("company:"):
            where = "qp company set"
        raise UsageError(
            f"no invoice for {customer.name}, nothing numbered: {exc}; correct it with {where}"
        ) from None


async def credit_invoice(
    store: Store, ref: str, reason: str, actor: str, now: datetime, zone: ZoneInfo
) -> tuple[InvoiceRecord, InvoiceRecord]:
    """The credit note cancelling invoice ``ref``, and that invoice (audited with it)."""
    original = await store.get_invoice(ref)
    if original is None:
        raise NotFoundError(f"no invoice {ref!r}; see qp invoice list")
    issue = now.astimezone(zone).date()
    if issue < original.issue_date:
        raise UsageError(f"a credit note cannot predate invoice {original.number}")
    request = CreditRequest(new_id("inv"), original.id, issue, now, actor, reason.strip())
    detail = {"credits": original.number}
    audit = AuditEvent(now, "invoice_credit", actor, request.id, detail)
    return await store.credit_invoice(request, audit=(audit,)), original


async def render(
    store: Store,
    ref: str,
    fmt: str,
    profile: Profile,
    *,
    dialect: CsvDialect = "rfc4180",
    templates: InvoiceTemplates | None = None,
) -> tuple[InvoiceRecord, bytes]:
    """The stored invoice ``ref`` as ``fmt`` (csv, json, ubl, html, pdf); HTML and PDF
    through ``templates`` (the packaged template when none are given)."""
    if fmt not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}")
    record = await store.get_invoice(ref)
    if record is None:
        raise NotFoundError(f"no invoice {ref!r}; see qp invoice list")
    original = None
    if record.credits_invoice_id is not None:
        original = await store.get_invoice(record.credits_invoice_id)
    invoice, supplier, party = document(record, original)
    if fmt == "ubl":
        return record, to_ubl(invoice, supplier, party, profile=profile)
    pages = templates or InvoiceTemplates(None)
    if fmt == "pdf":
        return record, await pages.pdf(invoice, supplier, party)
    text = {
        "csv": lambda: to_csv(invoice, dialect),
        "json": lambda: to_json(invoice, supplier, party),
        "html": lambda: pages.html(invoice, supplier, party),
    }[fmt]()
    return record, text.encode()


def summary(record: InvoiceRecord, customer: str) -> dict[str, Any]:
    """An invoice as ``qp invoice list`` shows it."""
    return {
        "id": record.id,
        "number": record.number,
        "kind": record.kind,
        "customer": customer,
        "issue_date": record.issue_date.isoformat(),
        "due_date": record.due_date.isoformat(),
        "period": f"{record.period_start.isoformat()}..{record.period_end.isoformat()}",
        "total_excl_vat": str(record.total_excl_vat),
        "vat": str(record.vat_total),
        "total_incl_vat": str(record.total_incl_vat),
        "lines": record.line_count or len(record.lines),
        "credits": record.credits_invoice_id,
        "credited_by": record.credited_by_id,
    }


def line_json(line: InvoiceLine) -> dict[str, Any]:
    return {
        "date": line.supply_date.isoformat(),
        "technician": line.technician,
        "request": line.request_ref,
        "description": line.description,
        "actual_minutes": line.actual_minutes,
        "billable_minutes": line.billable_minutes,
        "prepaid_minutes": line.prepaid_minutes,
        "rate": str(line.unit_price),
        "surcharges": list(line.surcharges),
        "amount": str(line.line_amount),
    }
