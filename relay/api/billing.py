"""Console methods of the office: rate cards, customers' billing data, prepaid
hours and invoices. Every method needs the ``billing`` or ``admin`` role."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any, cast

from relay.api.context import OFFICE, Context, Method
from relay.api.params import (
    Params,
    day,
    flag,
    hours_as_minutes,
    keyset,
    month,
    offset,
    page,
    required_text,
    text,
)
from relay.billing.exports import CSV_DIALECTS
from relay.billing.invoice_build import month_period
from relay.billing.prepaid import Terms, minutes_left
from relay.billing.ratecard import LEVELS, SERVICE_TYPES, RateCard
from relay.billing.ubl import Profile
from relay.core.ids import new_id
from relay.model import (
    Customer,
    CustomerBilling,
    InvoiceRecord,
    PrepaidBlock,
    PrepaidTerms,
    RateCardRecord,
)
from relay.services.invoicing import line_json, summary
from shared.clock import iso
from shared.errors import NotFoundError, UsageError

CHUNK = 30_000  # bytes of a document per export call (base64 fits one message)
SHOWN_LINES = 20


# -- rate cards ------------------------------------------------------------------------


def _card_summary(record: RateCardRecord, card: RateCard) -> dict[str, Any]:
    sur = card.surcharges
    return {
        "name": card.name,
        "effective_from": card.effective_from.isoformat(),
        "digest": record.digest,
        "currency": card.currency,
        "timezone": card.timezone,
        "rates": {s: {str(lv): str(card.rates[(s, lv)]) for lv in LEVELS} for s in SERVICE_TYPES},
        "complexity": {name: str(value) for name, value in card.complexity.items()},
        "rounding": {
            level: {k: v for k, v in vars(policy).items() if v is not None}
            for level, policy in card.rounding.items()
        },
        "sessions": vars(card.sessions),
        "surcharges": [f"{w.name} +{w.percent} %" for w in sur.windows]
        + ([f"holiday +{sur.holiday.percent} %"] if sur.holiday else [])
        + [f"urgent +{sur.urgent_percent} %"],
        "customers": {cid: a.name for cid, a in card.customers.items()},
    }


async def rates_import(ctx: Context, params: Params) -> Any:
    """Store a rate card (its TOML text, verbatim); refused with file, line and reason
    when malformed, in which case the card in force stays in force."""
    source = text(params, "source") or "rate card"
    body = params.get("text")
    if not isinstance(body, str):
        raise UsageError(f"{source} is empty")
    record, card, added, in_force = await ctx.services.office.import_card(ctx.tech, body, source)
    return {
        "digest": record.digest,
        "name": card.name,
        "effective_from": card.effective_from.isoformat(),
        "added": added,
        "in_force_now": in_force,
    }


async def rates_show(ctx: Context, params: Params) -> Any:
    """Every imported card, and what the card in force now says."""
    records, current, found = await ctx.services.office.cards()
    names = await ctx.services.directory.names()
    cards = [
        {
            "digest": r.digest,
            "name": r.name,
            "effective_from": r.effective_from.isoformat(),
            "imported_at": iso(r.imported_at),
            "imported_by": names.technician(r.imported_by),
            "source": r.source_name,
            "state": "in force"
            if found and found[0].digest == r.digest
            else ("current" if r.digest in current else "replaced"),
        }
        for r in records
    ]
    return {"cards": cards, "in_force": _card_summary(*found) if found else None}


async def rates_export(ctx: Context, params: Params) -> Any:
    """The TOML of the card in force now (or of ``digest``), as it was imported."""
    record = await ctx.services.office.card(text(params, "digest"))
    return {"digest": record.digest, "source": record.source_name, "toml": record.toml}


# -- customers' billing data and prepaid hours -------------------------------------------


def _billing_json(b: CustomerBilling) -> dict[str, Any]:
    return {
        "legal_name": b.legal_name,
        "address": list(b.address_lines),
        "postcode": b.postcode,
        "city": b.city,
        "country": b.country,
        "kvk": b.kvk,
        "vat": b.vat_id,
        "email": b.email,
        "terms": b.payment_terms_days,
        "reverse_charge": b.reverse_charge,
        "no_reverse_charge_reason": b.no_reverse_charge_reason or None,
        "endpoint": f"{b.endpoint_scheme}:{b.endpoint_id}",
        "reference": b.reference,
        "updated_at": iso(b.updated_at),
    }


def _billing_changes(params: Params) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key, name in (
        ("legal_name", "legal_name"),
        ("postcode", "postcode"),
        ("city", "city"),
        ("kvk", "kvk"),
        ("vat", "vat_id"),
        ("email", "email"),
        ("endpoint", "endpoint_id"),
        ("endpoint_scheme", "endpoint_scheme"),
        ("reference", "reference"),
    ):
        if key in params:
            changes[name] = text(params, key)
    if "country" in params:
        changes["country"] = (text(params, "country") or "").upper()
    if "address" in params:
        lines = params["address"]
        lines = [lines] if isinstance(lines, str) else lines
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise UsageError("address must be one or two lines of text")
        changes["address_lines"] = tuple(x.strip() for x in lines if x.strip())
    if "terms" in params:
        terms = params["terms"]
        if not isinstance(terms, int) or isinstance(terms, bool) or not 0 <= terms <= 365:
            raise UsageError("terms must be a number of days from 0 to 365")
        changes["payment_terms_days"] = terms
    if "reverse_charge" in params:
        changes["reverse_charge"] = flag(params, "reverse_charge")
    if "no_reverse_charge_reason" in params:
        reason = text(params, "no_reverse_charge_reason", limit=500)
        if not reason:
            raise UsageError("no_reverse_charge_reason must say why there is no reverse charge")
        changes["no_reverse_charge_reason"] = reason
    return changes


async def _customer(ctx: Context, params: Params) -> Customer:
    return await ctx.services.directory.customer_named(ctx.tech, required_text(params, "customer"))


async def customer_billing(ctx: Context, params: Params) -> Any:
    """Show a customer's billing data, or change the fields given."""
    customer = await _customer(ctx, params)
    changes = _billing_changes(params)
    office = ctx.services.office
    if not changes:
        current = await office.billing_of(customer)
        if current is None:
            raise NotFoundError(f"customer {customer.name!r} has no billing data yet")
        return {"customer": customer.name, **_billing_json(current)}
    updated = await office.set_billing(ctx.tech, customer, changes)
    return {"customer": customer.name, **_billing_json(updated)}


async def prepaid_add(ctx: Context, params: Params) -> Any:
    """A block of prepaid hours; approved work supplied from its first day (``from``,
    default today) draws it down before it is charged."""
    customer = await _customer(ctx, params)
    expires, first = text(params, "expires"), text(params, "from")
    block = PrepaidBlock(
        id=new_id("pre"),
        customer_id=customer.id,
        minutes=hours_as_minutes(params, "hours"),
        created_at=ctx.services.clock.now(),
        created_by=ctx.tech.id,
        expires_on=day(expires, "expires") if expires else None,
        note=text(params, "note") or "",
        valid_from=day(first, "from") if first else ctx.services.office.today(),
    )
    await ctx.services.office.add_prepaid(ctx.tech, block)
    return await _balances(ctx, customer)


async def prepaid_list(ctx: Context, params: Params) -> Any:
    """A customer's blocks, the balance, and a warning when it is low."""
    return await _balances(ctx, await _customer(ctx, params))


def _hours(minutes: int) -> str:
    return str((Decimal(minutes) / 60).quantize(Decimal("0.01")))


async def _balances(ctx: Context, customer: Customer) -> dict[str, Any]:
    office = ctx.services.office
    today = office.today()
    balances = await office.balances(customer)
    terms, _ = await office.prepaid_terms(customer)
    left = minutes_left(balances, today)
    low = left is not None and terms.low(left)
    blocks = [
        {
            "id": b.block.id,
            "hours": str(Decimal(b.block.minutes) / 60),
            "used_hours": _hours(b.used_minutes),
            "left_hours": _hours(b.remaining_minutes),
            "from": b.block.first_day.isoformat(),
            "expires": b.block.expires_on.isoformat() if b.block.expires_on else None,
            "expired": b.block.expires_on is not None and b.block.expires_on < today,
        }
        for b in balances
    ]
    warning = None
    if low:
        warning = (
            f"{customer.name} has {_hours(left or 0)} prepaid hours left, less than "
            f"{_hours(terms.warn_below_minutes)} (see qp prepaid terms)"
        )
    return {
        "customer": customer.name,
        "blocks": blocks,
        "left_hours": None if left is None else _hours(left),
        "pays": terms.pays,
        "warn_below_hours": _hours(terms.warn_below_minutes),
        "low": low,
        "warning": warning,
    }


def _terms_json(customer: Customer, terms: Terms, own: PrepaidTerms | None) -> dict[str, Any]:
    def source(value: object) -> str:
        return "relay.toml" if value is None else "customer"

    return {
        "customer": customer.name,
        "pays": terms.pays,
        "pays_from": source(own and own.pays),
        "warn_below_hours": _hours(terms.warn_below_minutes),
        "warn_below_from": source(own and own.warn_below_minutes),
    }


async def prepaid_terms(ctx: Context, params: Params) -> Any:
    """A customer's prepaid terms: what its prepaid hours pay of surcharges (``pays``)
    and the balance to warn below (``warn_below``, hours); ``default`` hands a setting
    back to relay.toml. Shown when nothing is changed."""
    customer = await _customer(ctx, params)
    changes: dict[str, Any] = {}
    if (pays := text(params, "pays")) is not None:
        changes["pays"] = None if pays == "default" else pays
    if (warn := params.get("warn_below")) is not None:
        changes["warn_below_minutes"] = (
            None if warn == "default" else hours_as_minutes(params, "warn_below", zero=True)
        )
    office = ctx.services.office
    if changes:
        terms, own = await office.set_prepaid_terms(ctx.tech, customer, changes)
    else:
        terms, own = await office.prepaid_terms(customer)
    return _terms_json(customer, terms, own)


# -- invoices ------------------------------------------------------------------------


async def invoice_create(ctx: Context, params: Params) -> Any:
    """Invoice a customer's approved, uninvoiced work of one month (``dry_run``: show
    the invoice without numbering or writing it)."""
    customer = await _customer(ctx, params)
    period = month_period(month(params, "period"))
    office = ctx.services.office
    plan = await office.plan(ctx.tech, customer, period, text(params, "reference"))
    lines = [line_json(line) for line in plan.invoice.lines[:SHOWN_LINES]]
    prepaid = sum(d.minutes for d in plan.draft.draws)
    if flag(params, "dry_run"):
        draft = plan.draft
        return {
            "dry_run": True,
            "number": f"{plan.invoice.number} (preview, not reserved)",
            "customer": customer.name,
            "issue_date": draft.issue_date.isoformat(),
            "due_date": draft.due_date.isoformat(),
            "period": f"{period.start}..{period.end}",
            "total_excl_vat": str(draft.total_excl_vat),
            "vat": str(draft.vat_total),
            "total_incl_vat": str(draft.total_incl_vat),
            "lines": len(draft.lines),
            "prepaid_minutes": prepaid,
            "notes": list(plan.invoice.notes),
            "shown_lines": lines,
        }
    record = await office.create_invoice(ctx.tech, plan)
    return {
        **summary(record, customer.name),
        "dry_run": False,
        "prepaid_minutes": prepaid,
        "notes": list(record.notes),
        "shown_lines": lines,
    }


async def invoice_list(ctx: Context, params: Params) -> Any:
    customer = None
    if name := text(params, "customer"):
        customer = await ctx.services.directory.customer_named(ctx.tech, name)
    asked = keyset(params, ("int", "int"))
    office = ctx.services.office
    found = await office.invoices(customer, asked)
    names = await ctx.services.directory.names()
    # A credit note and its invoice may fall on different pages: numbers of all.
    numbers = {r.id: r.number for r in await office.invoices(None)} if found else {}

    def row(r: InvoiceRecord) -> dict[str, Any]:
        return {
            **summary(r, names.customer(r.customer_id)),
            "credits": numbers.get(r.credits_invoice_id or ""),
            "credited_by": numbers.get(r.credited_by_id or ""),
        }

    return page(found, asked, row, _number_key)


def _number_key(r: InvoiceRecord) -> tuple[int, int]:
    """An invoice's sort key: year and sequence (``2026-000042`` → 2026, 42)."""
    year, _, seq = r.number.partition("-")
    return (int(year), int(seq))


async def invoice_credit(ctx: Context, params: Params) -> Any:
    """A credit note cancelling an invoice in full; its entries become approved again."""
    ref = required_text(params, "id")
    reason = text(params, "reason", limit=500) or ""
    note, original, customer = await ctx.services.office.credit(ctx.tech, ref, reason)
    return {**summary(note, customer), "credits": original.number}


async def invoice_export(ctx: Context, params: Params) -> Any:
    """One chunk (base64) of the invoice as CSV, JSON, UBL, HTML or PDF, from ``offset``."""
    ref = required_text(params, "id")
    fmt = text(params, "format") or "ubl"
    profile = text(params, "profile") or "nlcius"
    if profile not in ("nlcius", "peppol"):
        raise UsageError("profile must be nlcius or peppol")
    dialect = text(params, "dialect") or "rfc4180"
    if dialect not in CSV_DIALECTS:
        raise UsageError(f"dialect must be {' or '.join(CSV_DIALECTS)}")
    if dialect != "rfc4180" and fmt != "csv":
        raise UsageError("a dialect is for CSV exports only")
    start = offset(params)
    number, data = await ctx.services.office.rendered(ref, fmt, cast(Profile, profile), dialect)
    chunk = data[start : start + CHUNK]
    end = start + len(chunk)
    return {
        "number": number,
        "format": fmt,
        "size": len(data),
        "data": base64.b64encode(chunk).decode("ascii"),
        "next": end if end < len(data) else None,
    }


METHODS: dict[str, Method] = {
    "rates.import": Method(rates_import, OFFICE),
    "rates.show": Method(rates_show, OFFICE),
    "rates.export": Method(rates_export, OFFICE),
    "customer.billing": Method(customer_billing, OFFICE),
    "prepaid.add": Method(prepaid_add, OFFICE),
    "prepaid.list": Method(prepaid_list, OFFICE),
    "prepaid.terms": Method(prepaid_terms, OFFICE),
    "invoice.create": Method(invoice_create, OFFICE),
    "invoice.list": Method(invoice_list, OFFICE),
    "invoice.credit": Method(invoice_credit, OFFICE),
    "invoice.export": Method(invoice_export, OFFICE),
}
