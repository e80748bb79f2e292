"""Console API methods of the office: rate cards, customers' billing data, prepaid
hours and invoices. Every method needs the ``billing`` or ``admin`` role.

Time entry methods live in :mod:`relay.api_time` (imported at the bottom, so that
``relay.api`` registers every billing method by importing this module).
"""

from __future__ import annotations

import base64
import re
from collections import OrderedDict
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, cast

from relay.api import Params, _customer_by_name, method
from relay.api_time import page, parse_day, text, zone
from relay.authz import require_role
from relay.billing.invoice_build import month_period
from relay.billing.ratecard import LEVELS, SERVICE_TYPES, RateCard
from relay.billing.ratecard_export import card_digest
from relay.billing.ratecard_parse import parse_rate_card
from relay.billing.ubl import Profile
from relay.ids import new_id
from relay.invoicing import (
    credit_invoice,
    customer_party,
    line_json,
    plan_invoice,
    render,
    summary,
)
from relay.model import CustomerBilling, PrepaidBlock, RateCardRecord, Technician
from shared.clock import iso
from shared.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from relay.app import Relay

OFFICE = ("admin", "billing")
MAX_CARD = 60_000  # characters of TOML; one control message carries it
CHUNK = 30_000  # bytes of a document per export call (base64 fits one message)
SHOWN_LINES = 20
_CACHE: OrderedDict[tuple[str, str, str], tuple[str, bytes]] = OrderedDict()
_CACHE_SIZE = 4
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
EU = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)


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


@method("rates.import")
async def rates_import(relay: Relay, tech: Technician, params: Params) -> Any:
    """Store a rate card (its TOML text, verbatim); refused with file, line and reason
    when malformed, in which case the card in force stays in force."""
    require_role(tech, *OFFICE)
    source = text(params, "source") or "rate card"
    body = params.get("text")
    if not isinstance(body, str) or not body.strip():
        raise UsageError(f"{source} is empty")
    if len(body) > MAX_CARD:
        raise UsageError(f"{source} is longer than {MAX_CARD} characters")
    card = parse_rate_card(body, source)
    now = relay.clock.now()
    digest = card_digest(card)
    record = RateCardRecord(digest, card.effective_from, card.name, body, source, now, tech.id)
    added = await relay.store.add_rate_card(record)
    await relay.store.audit(
        now, "rates_import", tech.id, digest, effective_from=card.effective_from, added=added
    )
    found = await relay.sessions.timekeeper.book.in_force(now)
    return {
        "digest": digest,
        "name": card.name,
        "effective_from": card.effective_from.isoformat(),
        "added": added,
        "in_force_now": found is not None and found[0].digest == digest,
    }


@method("rates.show")
async def rates_show(relay: Relay, tech: Technician, params: Params) -> Any:
    """Every imported card, and what the card in force now says."""
    require_role(tech, *OFFICE)
    book = relay.sessions.timekeeper.book
    names = {t.id: t.name for t in await relay.store.list_technicians()}
    current = {r.digest for r, _ in await book.current()}
    found = await book.in_force(relay.clock.now())
    cards = [
        {
            "digest": r.digest,
            "name": r.name,
            "effective_from": r.effective_from.isoformat(),
            "imported_at": iso(r.imported_at),
            "imported_by": names.get(r.imported_by, r.imported_by),
            "source": r.source_name,
            "state": "in force"
            if found and found[0].digest == r.digest
            else ("current" if r.digest in current else "replaced"),
        }
        for r in await relay.store.list_rate_cards()
    ]
    return {"cards": cards, "in_force": _card_summary(*found) if found else None}


@method("rates.export")
async def rates_export(relay: Relay, tech: Technician, params: Params) -> Any:
    """The TOML of the card in force now (or of ``digest``), as it was imported."""
    require_role(tech, *OFFICE)
    if digest := text(params, "digest"):
        record = await relay.store.get_rate_card(digest)
    else:
        found = await relay.sessions.timekeeper.book.in_force(relay.clock.now())
        record = found[0] if found else None
    if record is None:
        raise NotFoundError(
            "no such rate card; with none imported the relay bills at its [billing] default rate"
        )
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
        changes["reverse_charge"] = bool(params["reverse_charge"])
    return changes


def _check_billing(b: CustomerBilling) -> CustomerBilling:
    """Refuse data an e-invoice could not carry; fills the KvK endpoint by default."""
    if not b.endpoint_id and b.kvk:
        b = replace(b, endpoint_id=b.kvk, endpoint_scheme=b.endpoint_scheme or "0106")
    missing = [
        flag
        for flag, value in (
            ("--legal-name", b.legal_name),
            ("--address", b.address_lines),
            ("--postcode", b.postcode),
            ("--city", b.city),
        )
        if not value
    ]
    if missing:
        raise UsageError(f"customer billing data needs {', '.join(missing)}")
    if b.country == "NL" and not b.kvk:
        raise UsageError("a Dutch customer needs its KvK number (--kvk)")
    if not b.endpoint_id or not b.endpoint_scheme:
        raise UsageError(
            "without a KvK number give the e-invoicing address: --endpoint ID "
            "--endpoint-scheme CODE (e.g. 0208 for a Belgian enterprise number)"
        )
    if b.reverse_charge and (not b.vat_id or b.country == "NL" or b.country not in EU):
        raise UsageError(
            "reverse charge is for business customers in another EU country, with a VAT id"
        )
    if b.email and not _EMAIL.fullmatch(b.email):
        raise UsageError(f"{b.email!r} is not an e-mail address")
    try:
        customer_party(b)
    except UsageError as exc:
        raise UsageError(str(exc).replace("party ", "customer ", 1)) from None
    return b


@method("customer.billing")
async def customer_billing(relay: Relay, tech: Technician, params: Params) -> Any:
    """Show a customer's billing data, or change the fields given."""
    require_role(tech, *OFFICE)
    customer = await _customer_by_name(relay, tech, text(params, "customer", required=True) or "")
    current = await relay.store.get_customer_billing(customer.id)
    changes = _billing_changes(params)
    if not changes:
        if current is None:
            raise NotFoundError(f"customer {customer.name!r} has no billing data yet")
        return {"customer": customer.name, **_billing_json(current)}
    now = relay.clock.now()
    base = current or CustomerBilling(
        customer.id, "", (), "", "", "NL", "", "0106", 14, now, reference=""
    )
    updated = _check_billing(replace(base, **changes, updated_at=now))
    await relay.store.set_customer_billing(updated)
    await relay.store.audit(now, "customer_billing", tech.id, customer.id, fields=sorted(changes))
    return {"customer": customer.name, **_billing_json(updated)}


def _minutes(value: Any) -> int:
    try:
        hours = Decimal(str(value))
    except InvalidOperation:
        raise UsageError(f"hours {value!r} is not a number") from None
    minutes = hours * 60
    if not hours.is_finite() or minutes <= 0 or minutes != minutes.to_integral_value():
        raise UsageError("hours must be positive and come to whole minutes (e.g. 10 or 2.5)")
    return int(minutes)


@method("prepaid.add")
async def prepaid_add(relay: Relay, tech: Technician, params: Params) -> Any:
    """A block of prepaid hours; approved work draws it down before it is charged."""
    require_role(tech, *OFFICE)
    customer = await _customer_by_name(relay, tech, text(params, "customer", required=True) or "")
    expires = text(params, "expires")
    now = relay.clock.now()
    block = PrepaidBlock(
        id=new_id("pre"),
        customer_id=customer.id,
        minutes=_minutes(params.get("hours")),
        created_at=now,
        created_by=tech.id,
        expires_on=parse_day(expires, "expires") if expires else None,
        note=text(params, "note") or "",
    )
    if block.expires_on is not None and block.expires_on < now.astimezone(zone(relay)).date():
        raise UsageError(f"the block would have expired already ({block.expires_on})")
    await relay.store.add_prepaid_block(block)
    await relay.store.audit(now, "prepaid_add", tech.id, block.id, minutes=block.minutes)
    return await _balances(relay, customer.id, customer.name)


@method("prepaid.list")
async def prepaid_list(relay: Relay, tech: Technician, params: Params) -> Any:
    require_role(tech, *OFFICE)
    customer = await _customer_by_name(relay, tech, text(params, "customer", required=True) or "")
    return await _balances(relay, customer.id, customer.name)


async def _balances(relay: Relay, customer_id: str, name: str) -> dict[str, Any]:
    today = relay.clock.now().astimezone(zone(relay)).date()
    blocks = [
        {
            "id": b.block.id,
            "hours": str(Decimal(b.block.minutes) / 60),
            "used_hours": str((Decimal(b.used_minutes) / 60).quantize(Decimal("0.01"))),
            "left_hours": str((Decimal(b.remaining_minutes) / 60).quantize(Decimal("0.01"))),
            "expires": b.block.expires_on.isoformat() if b.block.expires_on else None,
            "expired": b.block.expires_on is not None and b.block.expires_on < today,
        }
        for b in await relay.store.prepaid_balances(customer_id)
    ]
    return {"customer": name, "blocks": blocks}


# -- invoices ------------------------------------------------------------------------


@method("invoice.create")
async def invoice_create(relay: Relay, tech: Technician, params: Params) -> Any:
    """Invoice a customer's approved, uninvoiced work of one month (``dry_run``: show
    the invoice without numbering or writing it)."""
    require_role(tech, *OFFICE)
    customer = await _customer_by_name(relay, tech, text(params, "customer", required=True) or "")
    period = month_period(text(params, "period", required=True) or "")
    now = relay.clock.now()
    plan = await plan_invoice(
        relay.store,
        relay.settings.company,
        customer,
        period,
        reference=text(params, "reference"),
        actor=tech.id,
        now=now,
    )
    lines = [line_json(line) for line in plan.invoice.lines[:SHOWN_LINES]]
    prepaid = sum(d.minutes for d in plan.draft.draws)
    if params.get("dry_run"):
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
            "shown_lines": lines,
        }
    record = await relay.store.create_invoice(plan.draft)
    await relay.store.audit(
        now, "invoice_create", tech.id, record.id, number=record.number, customer=customer.id
    )
    return {
        **summary(record, customer.name),
        "dry_run": False,
        "prepaid_minutes": prepaid,
        "shown_lines": lines,
    }


@method("invoice.list")
async def invoice_list(relay: Relay, tech: Technician, params: Params) -> Any:
    require_role(tech, *OFFICE)
    customer_id = None
    if name := text(params, "customer"):
        customer_id = (await _customer_by_name(relay, tech, name)).id
    offset = params.get("offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise UsageError("offset must be a whole number")
    names = {c.id: c.name for c in await relay.store.list_customers()}
    records = await relay.store.list_invoices(customer_id)
    numbers = {r.id: r.number for r in records}
    rows = [
        {
            **summary(r, names.get(r.customer_id, r.customer_id)),
            "credits": numbers.get(r.credits_invoice_id or ""),
            "credited_by": numbers.get(r.credited_by_id or ""),
        }
        for r in records[offset:]
    ]
    return page(rows, offset, more=False)


@method("invoice.credit")
async def invoice_credit(relay: Relay, tech: Technician, params: Params) -> Any:
    """A credit note cancelling an invoice in full; its entries become approved again."""
    require_role(tech, *OFFICE)
    ref = text(params, "id", required=True) or ""
    reason = text(params, "reason", limit=500) or ""
    now = relay.clock.now()
    note, original = await credit_invoice(relay.store, ref, reason, tech.id, now, zone(relay))
    await relay.store.audit(
        now, "invoice_credit", tech.id, note.id, number=note.number, credits=original.number
    )
    customer = await relay.store.get_customer(note.customer_id)
    return {
        **summary(note, customer.name if customer else note.customer_id),
        "credits": original.number,
    }


@method("invoice.export")
async def invoice_export(relay: Relay, tech: Technician, params: Params) -> Any:
    """One chunk (base64) of the invoice as CSV, JSON, UBL or HTML, from ``offset``."""
    require_role(tech, *OFFICE)
    ref = text(params, "id", required=True) or ""
    fmt = text(params, "format") or "ubl"
    profile = text(params, "profile") or "nlcius"
    if profile not in ("nlcius", "peppol"):
        raise UsageError("profile must be nlcius or peppol")
    offset = params.get("offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise UsageError("offset must be a whole number")
    key = (ref, fmt, profile)
    if key not in _CACHE:  # invoices never change, so their renderings can be kept
        record, data = await render(relay.store, ref, fmt, cast(Profile, profile))
        _CACHE[key] = (record.number, data)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    number, data = _CACHE[key]
    chunk = data[offset : offset + CHUNK]
    end = offset + len(chunk)
    return {
        "number": number,
        "format": fmt,
        "size": len(data),
        "data": base64.b64encode(chunk).decode("ascii"),
        "next": end if end < len(data) else None,
    }
