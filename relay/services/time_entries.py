"""Changing time entries: edits with a reason, manual work, and who sees what.

Rules (the store makes each change atomic and refuses invoiced entries itself):

- an invoiced entry never changes; an approved one only with a recorded reason;
- an edit of the service type, complexity, urgency or request recomputes the
  entry from its raw facts with the rate card it was computed with;
- manual work (phone, on site, project…) is priced like a session by the card in
  force at its start, and may not be negative nor overlap the technician's
  other entries; work that rounds to nothing (a call shorter than the grace
  period) is kept with its actual time and the reason it bills nothing;
- manual work that overlaps a session's entry of the same technician may be
  attached to it instead: the entry is recomputed from its sessions and the
  work, with its own card, so the overlap is billed once;
- a technician sees and edits only their own draft entries; ``billing`` and
  ``admin`` see and edit every entry. Unknown and forbidden look the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from relay.billing.compute import compute_entry
from relay.billing.entries import explained_rule, not_billed_reason
from relay.billing.facts import EntryContext, manual_session
from relay.billing.ratecard import COMPLEXITIES, SERVICE_TYPES
from relay.billing.rounding import RoundingRule, amount, billable_minutes
from relay.core.authorization import sees_all_customers
from relay.core.ids import new_id
from relay.model import (
    AuditEvent,
    BillableEntry,
    EntryEdit,
    EntryQuery,
    EntryUpdate,
    Technician,
)
from relay.services.live_settings import LiveSettings, as_live
from relay.services.timekeeping import RateBook, billable_from, change_log, entry_facts
from relay.settings import Billing, Settings
from relay.store.interface import OverlapError, Store
from shared.clock import Clock, iso
from shared.errors import ConfigError, ConflictError, NotFoundError, OutOfScopeError, UsageError

EDITABLE = ("service_type", "complexity", "urgent", "request", "notes")
MAX_NOTES = 2000
MAX_MANUAL = timedelta(hours=24)


def may_see(tech: Technician, entry: BillableEntry) -> bool:
    """Billing and admins see every entry; a technician only their own drafts."""
    if sees_all_customers(tech):
        return True
    return entry.technician_id == tech.id and entry.status == "draft"


async def visible_entry(store: Store, tech: Technician, entry_id: str) -> BillableEntry:
    """The entry, if ``tech`` may see it; the same NotFoundError otherwise."""
    entry = await store.get_entry(entry_id)
    message = f"no time entry {entry_id!r} that you can see"
    if entry is None:
        raise NotFoundError(message)
    if not may_see(tech, entry):
        raise OutOfScopeError(message, "time_entry", entry_id)
    return entry


def check_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate the fields of an edit; returns them cleaned."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in EDITABLE:
            raise UsageError(f"{name} cannot be edited; edit one of {', '.join(EDITABLE)}")
        if name == "service_type" and value not in SERVICE_TYPES:
            raise UsageError(f"service must be one of {', '.join(SERVICE_TYPES)}")
        if name == "complexity" and value not in COMPLEXITIES:
            raise UsageError(f"complexity must be one of {', '.join(COMPLEXITIES)}")
        if name == "urgent" and not isinstance(value, bool):
            raise UsageError("urgent must be true or false")
        if name in ("request", "notes") and not isinstance(value, str):
            raise UsageError(f"{name} must be text")
        if name == "notes" and len(value) > MAX_NOTES:
            raise UsageError(f"notes are longer than {MAX_NOTES} characters")
        out[name] = value.strip() if isinstance(value, str) else value
    if not out:
        raise UsageError("nothing to change: give --complexity, --service, --notes or --request")
    return out


async def edit_entry(
    store: Store,
    book: RateBook,
    entry: BillableEntry,
    changes: dict[str, Any],
    reason: str,
    actor: str,
    now: datetime,
    audit: Sequence[AuditEvent] = (),
) -> BillableEntry:
    """Apply ``changes`` (see :data:`EDITABLE`) with ``reason``; recomputes the figures.
    ``audit`` is written in the same transaction as the change."""
    if not reason.strip():
        raise UsageError("give the reason for the change (--reason)")
    if entry.status == "invoiced":
        raise UsageError(
            f"time entry {entry.id} is invoiced and locked; credit its invoice to correct it"
        )
    changes = check_changes(changes)
    new = await _recomputed(book, entry, changes)
    history = change_log(entry, new, actor, now, reason.strip())
    if not history:
        raise UsageError(f"time entry {entry.id} already has these values; nothing changed")
    return await store.update_entry(EntryUpdate(new, entry.revision, history), audit=audit)


async def _recomputed(
    book: RateBook, entry: BillableEntry, changes: dict[str, Any]
) -> BillableEntry:
    request = changes.get("request", entry.request) or None
    notes = changes.get("notes", entry.notes)
    if not entry.card_digest:
        if {"complexity", "urgent"} & changes.keys():
            entry_facts(entry)  # raises: a default-rate entry has no card to price them
        service = changes.get("service_type", entry.service_type)
        return replace(entry, request=request, notes=notes, service_type=service)
    sessions, context = entry_facts(entry)
    context = EntryContext(
        technician_level=context.technician_level,
        service_type=changes.get("service_type", context.service_type),
        complexity=changes.get("complexity", context.complexity),
        urgent=changes.get("urgent", context.urgent),
    )
    sessions = tuple(replace(s, request=request) for s in sessions)
    card = await book.by_digest(entry.card_digest)
    if card is None:
        raise ConfigError(f"rate card {entry.card_digest} of time entry {entry.id} is missing")
    computation = compute_entry(sessions, card, context)
    new = billable_from(computation, entry.id, entry.created_at, source=entry.source, keep=entry)
    if computation.billable_minutes == 0:
        if entry.billable_minutes > 0 or entry.source != "manual":
            raise UsageError(
                "after this change nothing of the entry would be billable; not changed"
            )
        new = unbilled(new, explained_rule(computation.explanation))
    return replace(new, notes=notes)


def unbilled(entry: BillableEntry, rule: RoundingRule) -> BillableEntry:
    """Manual work that bills nothing under ``rule``: its actual time is kept and
    ``details["not_billed"]`` says why."""
    seconds = int((entry.ended_at - entry.started_at).total_seconds())
    reason = not_billed_reason(seconds, rule)
    return replace(entry, actual_seconds=seconds, details={**entry.details, "not_billed": reason})


async def add_manual(
    store: Store,
    book: RateBook,
    default: Billing,
    technician: Technician,
    customer_id: str,
    work: dict[str, Any],
    actor: str,
    now: datetime,
) -> BillableEntry:
    """Record manual work: ``work`` holds ``service_type``, ``started_at``,
    ``ended_at``, and optionally ``complexity``, ``urgent``, ``request``, ``notes``."""
    start, end = _checked_span(work, now)
    service = work.get("service_type")
    if service is None:
        raise UsageError("give --service (or --attach ENTRY to add the work to a session's entry)")
    if service not in SERVICE_TYPES:
        raise UsageError(f"service must be one of {', '.join(SERVICE_TYPES)}")
    entry_id = new_id("ent")
    found = await book.in_force(start)
    if found is None:
        entry = _default_manual(entry_id, default, technician, customer_id, work, now)
    else:
        context = EntryContext(
            technician_level=technician.level,
            service_type=service,
            complexity=work.get("complexity") or "standard",
            urgent=bool(work.get("urgent")),
        )
        request = work.get("request") or None
        facts = manual_session(entry_id, customer_id, technician.id, "", request, start, end)
        computation = compute_entry([facts], found[1], context)
        entry = billable_from(
            computation, entry_id, now, notes=work.get("notes") or "", source="manual"
        )
        if computation.billable_minutes == 0:
            entry = unbilled(entry, explained_rule(computation.explanation))
    created = EntryEdit(entry_id, now, actor, "created", None, "manual", "manual work")
    audit = AuditEvent(now, "time_add", actor, entry_id, {"customer": customer_id})
    try:
        await store.add_entry(entry, (created,), refuse_overlap=True, audit=(audit,))
    except OverlapError as exc:
        if exc.source != "session":
            raise
        raise ConflictError(
            f"{exc}; to add this work to that session's entry, repeat with --attach {exc.entry_id}"
        ) from exc
    return entry


def _checked_span(work: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """The start and end of manual work, if it is neither empty, too long nor future."""
    start, end = work["started_at"], work["ended_at"]
    if end <= start:
        minutes = (end - start).total_seconds() / 60
        raise UsageError(f"manual work must end after it starts (this lasts {minutes:g} min)")
    if end - start > MAX_MANUAL:
        raise UsageError("manual work longer than 24 hours: record it per day")
    if end > now + timedelta(minutes=1):
        raise UsageError(f"manual work cannot end in the future ({iso(end)})")
    return start, end


async def attach_manual(
    store: Store,
    book: RateBook,
    technician: Technician,
    customer_id: str,
    target: BillableEntry,
    work: dict[str, Any],
    actor: str,
    now: datetime,
) -> BillableEntry:
    """Add manual work (as for :func:`add_manual`) to ``target``, the entry of a
    session it overlaps: recomputed with the entry's own card from its sessions
    and the work (the overlap counts once), history and audit in one transaction."""
    start, end = _checked_span(work, now)
    _check_target(target, technician, customer_id, work, start, end)
    sessions, context = entry_facts(target)  # refuses default-rate entries
    card = await book.by_digest(target.card_digest)
    if card is None:
        raise ConfigError(f"rate card {target.card_digest} of time entry {target.id} is missing")
    piece = manual_session(
        new_id("ent"), customer_id, technician.id, target.agent_id, sessions[0].request, start, end
    )
    computation = compute_entry([*sessions, piece], card, context)
    new = billable_from(computation, target.id, target.created_at, keep=target)
    if notes := work.get("notes") or "":
        joined = f"{target.notes}; {notes}" if target.notes else notes
        new = replace(new, notes=joined[:MAX_NOTES])
    reason = "manual work attached"
    attached = EntryEdit(
        target.id, now, actor, "attached", None, f"{iso(start)} to {iso(end)}", reason
    )
    history = (*change_log(target, new, actor, now, reason), attached)
    detail = {"customer": customer_id, "from": iso(start), "to": iso(end)}
    audit = AuditEvent(now, "time_attach", actor, target.id, detail)
    update = EntryUpdate(new, target.revision, history)
    return await store.update_entry(update, audit=(audit,), refuse_overlap=(start, end))


def _check_target(
    target: BillableEntry,
    technician: Technician,
    customer_id: str,
    work: dict[str, Any],
    start: datetime,
    end: datetime,
) -> None:
    """Refuse attaching ``work`` to ``target`` unless it is the same technician's
    session work for the same customer, overlapping it, not invoiced."""
    if target.source != "session":
        raise UsageError(f"time entry {target.id} is manual work; attach to a session's entry")
    if target.technician_id != technician.id or target.customer_id != customer_id:
        raise UsageError(
            f"time entry {target.id} is not {technician.name}'s work for this customer; "
            "attach to an entry of the same technician and customer"
        )
    if target.status == "invoiced":
        raise UsageError(
            f"time entry {target.id} is invoiced and locked; credit its invoice to correct it"
        )
    if not (start < target.ended_at and end > target.started_at):
        raise UsageError(
            f"the work does not overlap time entry {target.id} "
            f"({iso(target.started_at)} to {iso(target.ended_at)}); record it on its own"
        )
    service = work.get("service_type")
    if service is not None and service != target.service_type:
        raise UsageError(
            f"time entry {target.id} is billed as {target.service_type}; "
            "leave out --service to attach the work to it"
        )
    if work.get("complexity") or work.get("urgent") or work.get("request"):
        raise UsageError(
            "attached work takes complexity, urgency and request from the entry; "
            "leave out --complexity, --urgent and --request"
        )


def _default_manual(
    entry_id: str,
    bill: Billing,
    technician: Technician,
    customer_id: str,
    work: dict[str, Any],
    now: datetime,
) -> BillableEntry:
    """Manual work at the relay's default rate (no rate card imported yet)."""
    if (work.get("complexity") or "standard") != "standard" or work.get("urgent"):
        raise UsageError("complexity and urgency need a rate card; import one with qp rates")
    rule = RoundingRule(
        bill.minimum_minutes, bill.increment_minutes, bill.rounding, bill.grace_seconds
    )
    seconds = int((work["ended_at"] - work["started_at"]).total_seconds())
    minutes = billable_minutes(seconds, rule)
    details: dict[str, Any] = {"manual": True, "rounding": rule.__dict__}
    if minutes == 0:
        details["not_billed"] = not_billed_reason(seconds, rule)
    return BillableEntry(
        id=entry_id,
        session_ids=(),
        customer_id=customer_id,
        agent_id="",
        technician_id=technician.id,
        started_at=work["started_at"],
        ended_at=work["ended_at"],
        actual_seconds=seconds,
        billable_minutes=minutes,
        hourly_rate=bill.hourly_rate,
        amount=amount(minutes, bill.hourly_rate),
        status="draft",
        created_at=now,
        service_type=work["service_type"],
        request=work.get("request") or None,
        notes=work.get("notes") or "",
        details=details,
        source="manual",
    )


def default_explanation(entry: BillableEntry) -> str:
    """How an entry at the relay's default rate was derived (no rate card)."""
    rounding = entry.details.get("rounding", {})
    rule = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in rounding.items())
    lines = [
        f"Timed at the relay's default rate (no rate card was imported): "
        f"{entry.actual_seconds} s actual",
        f"Rounding: {rule or 'default'} -> {entry.billable_minutes} min",
        f"Amount: {entry.billable_minutes} min x {entry.hourly_rate}/h = {entry.amount}",
    ]
    if entry.details.get("not_billed"):
        lines.append(f"Not billed: {entry.details['not_billed']}")
    return "\n".join(lines)


class TimeEntries:
    """Time entries as the office and technicians work with them."""

    @property
    def settings(self) -> Settings:
        """The settings in force now: a reload swaps them between two uses."""
        return self._live.current

    def __init__(
        self, store: Store, clock: Clock, settings: Settings | LiveSettings, book: RateBook
    ) -> None:
        self.store = store
        self.clock = clock
        self._live = as_live(settings)
        self.book = book

    @property
    def zone(self) -> ZoneInfo:
        """The company's time zone: days and local times are read in it."""
        return ZoneInfo(self.settings.company.timezone)

    async def search(self, query: EntryQuery) -> tuple[list[BillableEntry], dict[str, str]]:
        """Entries matching ``query`` and the numbers of the invoices they are on."""
        found = await self.store.query_entries(query)
        return found, await self.invoice_numbers(found)

    async def invoice_numbers(self, entries: list[BillableEntry]) -> dict[str, str]:
        """invoice id → number, for the invoices ``entries`` are on."""
        if not any(e.invoice_id for e in entries):
            return {}
        return {i.id: i.number for i in await self.store.list_invoices()}

    async def visible(self, tech: Technician, entry_id: str) -> BillableEntry:
        return await visible_entry(self.store, tech, entry_id)

    async def store_gap(self, entry: BillableEntry) -> int:
        """Seconds of the entry's sessions the relay timed in memory only (its
        database refused writes then)."""
        rows = [await self.store.get_session(sid) for sid in entry.session_ids]
        return sum(row.store_gap_seconds for row in rows if row is not None)

    async def history(self, entry: BillableEntry) -> list[EntryEdit]:
        return await self.store.list_entry_edits(entry.id)

    async def edit(
        self, tech: Technician, entry: BillableEntry, changes: dict[str, Any], reason: str
    ) -> BillableEntry:
        """Change an entry with a reason; audited in the same transaction."""
        now = self.clock.now()
        detail = {"fields": sorted(changes), "reason": reason}
        audit = AuditEvent(now, "time_edit", tech.id, entry.id, detail)
        return await edit_entry(
            self.store, self.book, entry, changes, reason, tech.id, now, audit=(audit,)
        )

    async def add(
        self,
        actor: Technician,
        worker: Technician,
        customer_id: str,
        work: dict[str, Any],
        now: datetime,
        attach: str | None = None,
    ) -> BillableEntry:
        """Record manual work (see :func:`add_manual`), or add it to the session
        entry ``attach`` (see :func:`attach_manual`); audited with it."""
        if attach is not None:
            target = await visible_entry(self.store, actor, attach)
            return await attach_manual(
                self.store, self.book, worker, customer_id, target, work, actor.id, now
            )
        return await add_manual(
            self.store, self.book, self.settings.billing, worker, customer_id, work, actor.id, now
        )

    async def approve(self, tech: Technician, ids: list[str]) -> list[str]:
        """Approve drafts (all or none); returns the ids that changed."""
        now = self.clock.now()
        audit = tuple(AuditEvent(now, "time_approve", tech.id, i) for i in dict.fromkeys(ids))
        return await self.store.approve_entries(ids, tech.id, now, audit=audit)
