"""Console API methods for time entries: list, show, edit, add manual work, approve.

Lists come in pages that fit one control message (``next`` is the offset of the
following page, or null); the console asks until it has them all.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from relay.api import Params, _customer_by_name, method
from relay.authz import require_role, sees_all_customers
from relay.billing.explain import render_text
from relay.model import ENTRY_STATUSES, BillableEntry, EntryQuery, Technician
from relay.time_entries import (
    MAX_NOTES,
    add_manual,
    default_explanation,
    edit_entry,
    visible_entry,
)
from shared.clock import iso
from shared.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from relay.app import Relay

PAGE_BYTES = 56_000  # of JSON per page, inside one 64 KiB control message
PAGE_ROWS = 500
MAX_IDS = 500


def text(params: Params, key: str, limit: int = 200, required: bool = False) -> str | None:
    """A string parameter, stripped; None when absent (UsageError when required)."""
    value = params.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise UsageError(f"{key} is required")
        return None
    if not isinstance(value, str):
        raise UsageError(f"{key} must be text")
    if len(value) > limit:
        raise UsageError(f"{key} is longer than {limit} characters")
    return value.strip()


def zone(relay: Relay) -> ZoneInfo:
    return ZoneInfo(relay.settings.company.timezone)


def parse_day(value: str, key: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{key} {value!r} should be a date such as 2026-11-03") from None


def parse_when(value: str, key: str, tz: ZoneInfo) -> datetime:
    """A moment written as ``2026-11-03 14:00`` (company time) or with an offset."""
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{key} {value!r} should be a time such as '2026-11-03 14:00'") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(UTC).replace(microsecond=0)


def page(rows: list[dict[str, Any]], offset: int, more: bool) -> dict[str, Any]:
    """As many of ``rows`` as fit :data:`PAGE_BYTES`; ``next`` says where to go on."""
    used, items = 0, list[dict[str, Any]]()
    for row in rows:
        size = len(json.dumps(row, separators=(",", ":")))
        if items and used + size > PAGE_BYTES:
            break
        used += size
        items.append(row)
    done = len(items) == len(rows) and not more
    return {"items": items, "next": None if done else offset + len(items)}


class Names:
    """Display names for ids, read once per call."""

    def __init__(self, customers: dict[str, str], techs: dict[str, str], agents: dict[str, str]):
        self.customers, self.techs, self.agents = customers, techs, agents

    @classmethod
    async def load(cls, relay: Relay) -> Names:
        store = relay.store
        return cls(
            {c.id: c.name for c in await store.list_customers()},
            {t.id: t.name for t in await store.list_technicians()},
            {a.id: a.name for a in await store.list_agents()},
        )


def rate_text(rate: Decimal) -> str:
    """A rate as people write it: two decimals unless it has more."""
    cents = rate.quantize(Decimal("0.01"))
    return str(cents if cents == rate else rate.normalize())


def entry_row(e: BillableEntry, names: Names, invoices: dict[str, str]) -> dict[str, Any]:
    """An entry as the console shows it (`qp time --json`: fields scripts rely on)."""
    return {
        "id": e.id,
        "session_ids": list(e.session_ids),
        "customer": names.customers.get(e.customer_id, e.customer_id),
        "agent": e.agent_id,
        "agent_name": names.agents.get(e.agent_id, e.agent_id),
        "technician": names.techs.get(e.technician_id, e.technician_id),
        "service_type": e.service_type,
        "complexity": e.complexity,
        "urgent": e.urgent,
        "request": e.ticket,
        "started_at": iso(e.started_at),
        "ended_at": iso(e.ended_at),
        "actual_seconds": e.actual_seconds,
        "idle_seconds": e.idle_seconds,
        "billable_minutes": e.billable_minutes,
        "hourly_rate": rate_text(e.hourly_rate),
        "surcharges": list(e.surcharges),
        "amount": str(e.amount),
        "status": e.status,
        "source": e.source,
        "notes": e.notes,
        "rate_card": e.card_digest or None,
        "approved_at": iso(e.approved_at),
        "invoice": invoices.get(e.invoice_id or "", e.invoice_id),
        "revision": e.revision,
    }


async def _invoice_numbers(relay: Relay, entries: list[BillableEntry]) -> dict[str, str]:
    if not any(e.invoice_id for e in entries):
        return {}
    return {i.id: i.number for i in await relay.store.list_invoices()}


async def _technician_named(relay: Relay, name: str) -> Technician:
    for tech in await relay.store.list_technicians():
        if tech.name == name or tech.id == name:
            return tech
    raise NotFoundError(f"no technician {name!r}; see qp technician list")


@method("time.search")
async def time_search(relay: Relay, tech: Technician, params: Params) -> Any:
    """Entries by customer, technician, status and local start date (both days
    included); technicians get only their own drafts."""
    offset = params.get("offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise UsageError("offset must be a whole number")
    query: dict[str, Any] = {}
    if name := text(params, "customer"):
        query["customer_id"] = (await _customer_by_name(relay, tech, name)).id
    if name := text(params, "technician"):
        query["technician_id"] = (await _technician_named(relay, name)).id
    if status := text(params, "status"):
        if status not in ENTRY_STATUSES:
            raise UsageError(f"status must be one of {', '.join(ENTRY_STATUSES)}")
        query["status"] = status
    tz = zone(relay)
    if day := text(params, "from"):
        start = datetime.combine(parse_day(day, "from"), datetime.min.time(), tz)
        query["started_from"] = start.astimezone(UTC)
    if day := text(params, "to"):
        end = datetime.combine(parse_day(day, "to") + timedelta(days=1), datetime.min.time(), tz)
        query["started_before"] = end.astimezone(UTC)
    if not sees_all_customers(tech):
        if (
            query.get("technician_id", tech.id) != tech.id
            or query.get("status", "draft") != "draft"
        ):
            return {"items": [], "next": None}
        query.update(technician_id=tech.id, status="draft")
    found = await relay.store.query_entries(
        EntryQuery(**query, limit=PAGE_ROWS + 1, offset=offset, with_details=False)
    )
    names = await Names.load(relay)
    invoices = await _invoice_numbers(relay, found)
    rows = [entry_row(e, names, invoices) for e in found[:PAGE_ROWS]]
    return page(rows, offset, more=len(found) > PAGE_ROWS)


@method("time.show")
async def time_show(relay: Relay, tech: Technician, params: Params) -> Any:
    """One entry with the explanation of every figure and its edit history."""
    entry = await visible_entry(relay.store, tech, text(params, "id", required=True) or "")
    names = await Names.load(relay)
    row = entry_row(entry, names, await _invoice_numbers(relay, [entry]))
    if entry.card_digest and "facts" in entry.details:
        explanation = render_text(entry.details)
    else:
        explanation = default_explanation(entry)
    history = [
        {
            "at": iso(edit.at),
            "by": names.techs.get(edit.actor, edit.actor),
            "field": edit.field,
            "old": edit.old,
            "new": edit.new,
            "reason": edit.reason,
        }
        for edit in await relay.store.list_entry_edits(entry.id)
    ]
    return {**row, "explanation": explanation[:30_000], "history": history[-50:]}


@method("time.edit")
async def time_edit(relay: Relay, tech: Technician, params: Params) -> Any:
    """Change an entry's service, complexity, urgency, request or notes, with a reason."""
    entry = await visible_entry(relay.store, tech, text(params, "id", required=True) or "")
    reason = text(params, "reason", limit=500, required=True) or ""
    changes: dict[str, Any] = {}
    for key, field in (("service", "service_type"), ("complexity", "complexity")):
        if (value := text(params, key)) is not None:
            changes[field] = value
    if "request" in params:
        changes["ticket"] = text(params, "request") or ""
    if "notes" in params:
        changes["notes"] = text(params, "notes", limit=MAX_NOTES) or ""
    if "urgent" in params:
        changes["urgent"] = params["urgent"]
    now = relay.clock.now()
    new = await edit_entry(
        relay.store, relay.sessions.timekeeper.book, entry, changes, reason, tech.id, now
    )
    await relay.store.audit(
        now, "time_edit", tech.id, entry.id, fields=sorted(changes), reason=reason
    )
    names = await Names.load(relay)
    return entry_row(new, names, await _invoice_numbers(relay, [new]))


@method("time.add")
async def time_add(relay: Relay, tech: Technician, params: Params) -> Any:
    """Manual work: ``start`` and ``end``, or ``start`` and ``minutes``, or
    ``minutes`` ending now."""
    require_role(tech, "admin", "billing", "technician")
    customer = await _customer_by_name(relay, tech, text(params, "customer", required=True) or "")
    worker = tech
    if (name := text(params, "technician")) is not None:
        other = await _technician_named(relay, name)
        if other.id != tech.id and not sees_all_customers(tech):
            raise NotFoundError(f"no technician {name!r}; see qp technician list")
        worker = other
    tz, now = zone(relay), relay.clock.now().replace(microsecond=0)
    minutes = params.get("minutes")
    if minutes is not None and (not isinstance(minutes, int) or isinstance(minutes, bool)):
        raise UsageError("minutes must be a whole number")
    start_text, end_text = text(params, "start"), text(params, "end")
    if (end_text is None) == (minutes is None):
        raise UsageError("give --end or --minutes (one of them)")
    if start_text is None:
        if minutes is None:
            raise UsageError("give --start with --end")
        start, end = now - timedelta(minutes=minutes), now
    else:
        start = parse_when(start_text, "start", tz)
        if end_text is not None:
            end = parse_when(end_text, "end", tz)
        else:
            end = start + timedelta(minutes=minutes or 0)
    work = {
        "service_type": text(params, "service", required=True),
        "started_at": start,
        "ended_at": end,
        "complexity": text(params, "complexity"),
        "urgent": bool(params.get("urgent", False)),
        "ticket": text(params, "request"),
        "notes": text(params, "notes", limit=MAX_NOTES),
    }
    book = relay.sessions.timekeeper.book
    entry = await add_manual(
        relay.store, book, relay.settings.billing, worker, customer.id, work, tech.id, now
    )
    await relay.store.audit(now, "time_add", tech.id, entry.id, customer=customer.id)
    return entry_row(entry, await Names.load(relay), {})


@method("time.approve")
async def time_approve(relay: Relay, tech: Technician, params: Params) -> Any:
    """Approve draft entries (all or none); approved ones are reported as such."""
    require_role(tech, "admin", "billing")
    ids = params.get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise UsageError("give one or more time entry ids")
    if len(ids) > MAX_IDS:
        raise UsageError(f"approve at most {MAX_IDS} entries at a time")
    now = relay.clock.now()
    changed = await relay.store.approve_entries(ids, tech.id, now)
    for entry_id in changed:
        await relay.store.audit(now, "time_approve", tech.id, entry_id)
    return {"approved": changed, "unchanged": [i for i in dict.fromkeys(ids) if i not in changed]}
