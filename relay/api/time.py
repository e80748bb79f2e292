"""Console API methods for time entries: list, show, edit, add manual work, approve.

Lists come in pages that fit one control message (``next`` is the cursor of the
following page, or null; see :func:`relay.api.params.page`); the console asks until
it has them all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from relay.api.context import ALL, OFFICE, Context, Method
from relay.api.params import (
    Params,
    day,
    flag,
    keyset,
    moment,
    page,
    required_text,
    text,
    whole,
)
from relay.billing.explain import render_text
from relay.core.authorization import sees_all_customers
from relay.model import ENTRY_STATUSES, BillableEntry, EntryQuery, Technician
from relay.services.names import Names
from relay.services.time_entries import MAX_NOTES, default_explanation
from shared.clock import iso
from shared.errors import UsageError

MAX_IDS = 500
MAX_MINUTES = 7 * 24 * 60  # of one manual entry; the service refuses over 24 hours


def rate_text(rate: Decimal) -> str:
    """A rate as people write it: two decimals unless it has more."""
    cents = rate.quantize(Decimal("0.01"))
    return str(cents if cents == rate else rate.normalize())


def entry_row(e: BillableEntry, names: Names, invoices: dict[str, str]) -> dict[str, Any]:
    """An entry as the console shows it (`qp time --json`: fields scripts rely on)."""
    return {
        "id": e.id,
        "session_ids": list(e.session_ids),
        "customer": names.customer(e.customer_id),
        "agent": e.agent_id,
        "agent_name": names.agent(e.agent_id),
        "technician": names.technician(e.technician_id),
        "service_type": e.service_type,
        "complexity": e.complexity,
        "urgent": e.urgent,
        "request": e.request,
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


async def time_search(ctx: Context, params: Params) -> Any:
    """Entries by customer, technician, status and local start date (both days
    included); technicians get only their own drafts."""
    services, tech = ctx.services, ctx.tech
    asked = keyset(params, ("time", "text"))
    query: dict[str, Any] = {}
    if customer := text(params, "customer"):
        query["customer_id"] = (await services.directory.customer_named(tech, customer)).id
    if who := text(params, "technician"):
        query["technician_id"] = (await services.directory.technician_named(tech, who)).id
    if status := text(params, "status"):
        if status not in ENTRY_STATUSES:
            raise UsageError(f"status must be one of {', '.join(ENTRY_STATUSES)}")
        query["status"] = status
    tz = services.entries.zone
    if first := text(params, "from"):
        begin = datetime.combine(day(first, "from"), datetime.min.time(), tz)
        query["started_from"] = begin.astimezone(UTC)
    if last := text(params, "to"):
        end = datetime.combine(day(last, "to") + timedelta(days=1), datetime.min.time(), tz)
        query["started_before"] = end.astimezone(UTC)
    if not sees_all_customers(tech):
        if (
            query.get("technician_id", tech.id) != tech.id
            or query.get("status", "draft") != "draft"
        ):
            return {"items": [], "next": None}
        query.update(technician_id=tech.id, status="draft")
    found, invoices = await services.entries.search(
        EntryQuery(**query, limit=asked.limit, after=asked.after, with_details=False)
    )
    names = await services.directory.names()
    return page(
        found, asked, lambda e: entry_row(e, names, invoices), lambda e: (e.started_at, e.id)
    )


async def _row(ctx: Context, entry: BillableEntry) -> dict[str, Any]:
    names = await ctx.services.directory.names()
    return entry_row(entry, names, await ctx.services.entries.invoice_numbers([entry]))


async def time_show(ctx: Context, params: Params) -> Any:
    """One entry with the explanation of every figure and its edit history."""
    entries = ctx.services.entries
    entry = await entries.visible(ctx.tech, required_text(params, "id"))
    names = await ctx.services.directory.names()
    row = entry_row(entry, names, await entries.invoice_numbers([entry]))
    if entry.card_digest and "facts" in entry.details:
        explanation = render_text(entry.details)
    else:
        explanation = default_explanation(entry)
    if gap := await entries.store_gap(entry):
        explanation += (
            f"\nThe relay could not write to its database for {gap} s of this work; it kept"
            " the time in memory and wrote it when it could."
        )
    history = [
        {
            "at": iso(edit.at),
            "by": names.technician(edit.actor),
            "field": edit.field,
            "old": edit.old,
            "new": edit.new,
            "reason": edit.reason,
        }
        for edit in await entries.history(entry)
    ]
    return {
        **row,
        "store_gap_seconds": gap,
        "not_billed": entry.details.get("not_billed"),
        "explanation": explanation[:30_000],
        "history": history[-50:],
    }


async def time_edit(ctx: Context, params: Params) -> Any:
    """Change an entry's service, complexity, urgency, request or notes, with a reason."""
    entries = ctx.services.entries
    entry = await entries.visible(ctx.tech, required_text(params, "id"))
    reason = required_text(params, "reason", limit=500)
    changes: dict[str, Any] = {}
    for key, field in (("service", "service_type"), ("complexity", "complexity")):
        if (value := text(params, key)) is not None:
            changes[field] = value
    if "request" in params:
        changes["request"] = text(params, "request") or ""
    if "notes" in params:
        changes["notes"] = text(params, "notes", limit=MAX_NOTES) or ""
    if "urgent" in params:
        changes["urgent"] = flag(params, "urgent")
    return await _row(ctx, await entries.edit(ctx.tech, entry, changes, reason))


async def _worker(ctx: Context, params: Params) -> Technician:
    """Whose work it is: the caller, or (for the office) the technician named."""
    if (who := text(params, "technician")) is None:
        return ctx.tech
    # A technician finds only themself (another's name answers as an unknown one).
    return await ctx.services.directory.technician_named(ctx.tech, who)


async def time_add(ctx: Context, params: Params) -> Any:
    """Manual work: ``start`` and ``end``, or ``start`` and ``minutes``, or
    ``minutes`` ending now; with ``attach``, added to that session's entry."""
    services = ctx.services
    customer = await services.directory.customer_named(ctx.tech, required_text(params, "customer"))
    worker = await _worker(ctx, params)
    tz, now = services.entries.zone, services.clock.now().replace(microsecond=0)
    minutes = (
        None
        if params.get("minutes") is None
        else whole(params, "minutes", 0, -MAX_MINUTES, MAX_MINUTES)
    )
    start_text, end_text = text(params, "start"), text(params, "end")
    if (end_text is None) == (minutes is None):
        raise UsageError("give --end or --minutes (one of them)")
    if start_text is None:
        if minutes is None:
            raise UsageError("give --start with --end")
        start, end = now - timedelta(minutes=minutes), now
    else:
        start = moment(start_text, "start", tz)
        if end_text is not None:
            end = moment(end_text, "end", tz)
        else:
            end = start + timedelta(minutes=minutes or 0)
    work = {
        "service_type": text(params, "service"),
        "started_at": start,
        "ended_at": end,
        "complexity": text(params, "complexity"),
        "urgent": flag(params, "urgent"),
        "request": text(params, "request"),
        "notes": text(params, "notes", limit=MAX_NOTES),
    }
    attach = text(params, "attach")
    entry = await services.entries.add(ctx.tech, worker, customer.id, work, now, attach)
    row = entry_row(entry, await services.directory.names(), {})
    return {**row, "not_billed": entry.details.get("not_billed"), "attached": attach is not None}


async def time_approve(ctx: Context, params: Params) -> Any:
    """Approve draft entries (all or none); approved ones are reported as such."""
    ids = params.get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise UsageError("give one or more time entry ids")
    if len(ids) > MAX_IDS:
        raise UsageError(f"approve at most {MAX_IDS} entries at a time")
    changed = await ctx.services.entries.approve(ctx.tech, ids)
    return {"approved": changed, "unchanged": [i for i in dict.fromkeys(ids) if i not in changed]}


METHODS: dict[str, Method] = {
    "time.search": Method(time_search, ALL),
    "time.show": Method(time_show, ALL),
    "time.edit": Method(time_edit, ALL),
    "time.add": Method(time_add, ALL),
    "time.approve": Method(time_approve, OFFICE),
}
