"""From an ended session to its time entry, with the rate card in force.

The :class:`SessionManager` hands every closing session to :class:`Timekeeper`.
Without an imported rate card the session keeps the draft entry it carries (the
relay's ``[billing]`` default rate). With one, the entry is computed by the card
in force at the session's start (:func:`relay.billing.compute.compute_entry`):

- a session with nothing billable on its own (a failed connect shorter than the
  grace period) gets no entry;
- a reconnect — same customer, technician, agent and request, starting within the
  merge window of a draft entry's end — joins that entry: its session ids grow
  and it is recomputed from the raw facts of all its sessions with the card it
  was first computed with, so a newer card never changes an existing entry;
- otherwise the session becomes a new draft entry.

The session row and the entry are written in one transaction
(:meth:`BillingStore.close_session_billed`), once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import fields, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from relay.billing.compute import Computation, compute_entry
from relay.billing.entries import entry_from_computation
from relay.billing.facts import (
    MANUAL_PREFIX,
    EntryContext,
    SessionFacts,
    facts_from_json,
    quiet_pairs,
)
from relay.billing.merge import merge_for_card
from relay.billing.ratecard import COMPLEXITIES, LEVELS, SERVICE_TYPES, RateCard, select_card
from relay.billing.ratecard_export import card_digest
from relay.billing.ratecard_parse import parse_rate_card
from relay.billing.resolve import session_settings
from relay.core.help_requests import parse_number
from relay.model import (
    AuditEvent,
    BillableEntry,
    EntryEdit,
    EntryUpdate,
    RateCardRecord,
    SessionClose,
    TimeEntry,
)
from relay.settings import Settings
from relay.store.interface import Store
from shared.clock import Clock
from shared.errors import ConfigError, UsageError

log = logging.getLogger("qp.relay.billing")

#: (customer id, request) -> whether the request is urgent
UrgencyCheck = Callable[[str, str | None], Awaitable[bool]]


def default_card(settings: Settings) -> RateCard:
    """The card the relay bills by while the office has imported none in force: the
    ``[billing]`` rate for every service and level, no surcharges, and its rounding,
    merge window and idle threshold (by default: actual time in whole minutes,
    reconnects within 10 minutes one entry, no minimum)."""
    bill = settings.billing
    rate = f'"{bill.hourly_rate}"'
    levels = "{ " + ", ".join(f"{level} = {rate}" for level in LEVELS) + " }"
    text = "\n".join(
        [
            'name = "Relay default rates (relay.toml [billing])"',
            "effective_from = 2000-01-01",
            f'currency = "{bill.currency}"',
            f'timezone = "{settings.company.timezone}"',
            "[rates]",
            *(f"{service} = {levels}" for service in SERVICE_TYPES),
            "[complexity]",
            *(f"{name} = 1" for name in COMPLEXITIES),
            "[sessions]",
            f"merge_window_minutes = {bill.merge_window_minutes}",
            f"idle_threshold_minutes = {bill.idle_threshold_minutes}",
            "[rounding.default]",
            f"minimum_minutes = {bill.minimum_minutes}",
            f"increment_minutes = {bill.increment_minutes}",
            f'mode = "{bill.rounding}"',
            f"grace_seconds = {bill.grace_seconds}",
            "[surcharges]",
            'combine = "highest"',
            "urgent_percent = 0",
        ]
    )
    return parse_rate_card(text, "relay.toml [billing]")


class RateBook:
    """The imported rate cards, parsed once each (a card never changes: its digest
    is its content), and the relay's default card for when none is in force."""

    def __init__(self, store: Store, default: RateCard | None = None) -> None:
        self.store = store
        self._parsed: dict[str, RateCard] = {}
        self.default = default
        if default is not None:
            self._parsed[card_digest(default)] = default

    def set_default(self, card: RateCard) -> None:
        """Put a new default card in force (a settings reload); entries priced
        with the previous one still find it by its digest."""
        self._parsed[card_digest(card)] = card
        self.default = card

    def parse(self, record: RateCardRecord) -> RateCard:
        if record.digest not in self._parsed:
            self._parsed[record.digest] = parse_rate_card(record.toml, record.source_name)
        return self._parsed[record.digest]

    async def current(self) -> list[tuple[RateCardRecord, RateCard]]:
        """One card per effective date, the latest imported; by effective date."""
        latest: dict[str, RateCardRecord] = {}
        for record in await self.store.list_rate_cards():
            latest[record.effective_from.isoformat()] = record  # listed by import time
        return [(r, self.parse(r)) for _, r in sorted(latest.items())]

    async def in_force(self, at: datetime) -> tuple[RateCardRecord, RateCard] | None:
        """The card in force at ``at``; None without any card in force then."""
        current = await self.current()
        if not current:
            return None
        try:
            chosen = select_card([card for _, card in current], at)
        except ConfigError:
            return None
        return next(pair for pair in current if pair[1] is chosen)

    async def pricing(self, at: datetime) -> RateCard | None:
        """The card that prices work started at ``at``: the imported one in force,
        else the default card."""
        found = await self.in_force(at)
        return found[1] if found is not None else self.default

    async def by_digest(self, digest: str) -> RateCard | None:
        """The card an entry was computed with."""
        if digest in self._parsed:
            return self._parsed[digest]
        record = await self.store.get_rate_card(digest) if digest else None
        return None if record is None else self.parse(record)


def billable_from(
    computation: Computation,
    entry_id: str,
    created_at: datetime,
    *,
    notes: str = "",
    source: str = "session",
    keep: BillableEntry | None = None,
) -> BillableEntry:
    """The entry for ``computation``; with ``keep``, the status, notes, approval and
    revision of that earlier state of the entry carry over."""
    base = entry_from_computation(computation, entry_id, created_at, notes)
    values: dict[str, Any] = {f.name: getattr(base, f.name) for f in fields(TimeEntry)}
    # Manual work billed with (or as) an entry is no relay session of it.
    values["session_ids"] = tuple(i for i in base.session_ids if not i.startswith(MANUAL_PREFIX))
    extra: dict[str, Any] = {}
    if keep is not None:
        values.update(status=keep.status, notes=keep.notes, created_at=keep.created_at)
        extra = {
            "approved_at": keep.approved_at,
            "approved_by": keep.approved_by,
            "revision": keep.revision,
        }
    return BillableEntry(
        **values,
        complexity=computation.context.complexity,
        urgent=computation.context.urgent,
        idle_seconds=computation.idle_excluded_seconds,
        card_digest=computation.card_digest,
        surcharges=surcharge_labels(computation.explanation),
        source=source,
        **extra,
    )


def surcharge_labels(explanation: dict[str, Any]) -> tuple[str, ...]:
    """What was added to the base rate, one short label per surcharge level, plus
    the discount: ``("evening +50 % (30 min)", "discount -10 %")``."""
    sur = explanation["surcharges"]
    urgent = bool(sur["urgent"]["applies"]) and Decimal(sur["urgent"]["value"]) > 0
    labels = []
    for bucket in sur["billed"]:
        percent = Decimal(bucket["percent"])
        if percent <= 0 or bucket["billed_seconds"] <= 0:
            continue
        names = list(bucket["windows"])
        if bucket["holiday"]:
            names.append(f"holiday {bucket['holiday']}")
        if urgent:
            names.append("urgent")
        minutes = (Decimal(bucket["billed_seconds"]) / 60).quantize(Decimal("0.1"), ROUND_HALF_UP)
        shown = minutes.to_integral_value() if minutes == minutes.to_integral_value() else minutes
        labels.append(f"{' + '.join(names)} +{percent.normalize():f} % ({shown} min)")
    discount = Decimal(explanation["discount"]["value"])
    if discount > 0:
        labels.append(f"discount -{discount.normalize():f} %")
    return tuple(labels)


def entry_facts(entry: BillableEntry) -> tuple[tuple[SessionFacts, ...], EntryContext]:
    """The raw facts an entry was computed from; UsageError for default-rate entries."""
    if not entry.card_digest or "facts" not in entry.details:
        raise UsageError(
            f"time entry {entry.id} was timed at the relay's default rate, before any "
            "rate card was imported: it cannot be recomputed"
        )
    return facts_from_json(entry.details["facts"])


def change_log(
    before: BillableEntry, after: BillableEntry, actor: str, at: datetime, reason: str
) -> tuple[EntryEdit, ...]:
    """One history record per changed field that people see."""
    shown = (
        "session_ids",
        "service_type",
        "complexity",
        "urgent",
        "request",
        "notes",
        "started_at",
        "ended_at",
        "actual_seconds",
        "billable_minutes",
        "hourly_rate",
        "amount",
    )
    edits = []
    for name in shown:
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            edits.append(EntryEdit(after.id, at, actor, name, _text(old), _text(new), reason))
    return tuple(edits)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class Timekeeper:
    """Writes each ended session and its entry (see the module docstring)."""

    def __init__(self, store: Store, clock: Clock, default: RateCard | None = None) -> None:
        self.store = store
        self.clock = clock
        self.book = RateBook(store, default)
        #: Whether a session's request is urgent; by default asks the help requests.
        self.is_urgent: UrgencyCheck = self._help_request_urgent
        self._lock = asyncio.Lock()  # one merge decision at a time on this node

    async def close_session(self, close: SessionClose, audit: Sequence[AuditEvent] = ()) -> bool:
        """Write ``close`` with ``audit`` in one transaction; True if this call ended
        the session (False: it was over, and nothing is written)."""
        if close.entry is None:
            return await self.store.close_session(close, audit=audit)
        async with self._lock:
            try:
                priced = await self._priced(close, close.entry)
            except Exception:  # never leave a session open over a pricing failure
                log.exception("session %s: billed at the default rate", close.session_id)
                priced = None
            if priced is None:
                # the [billing] default rate
                return await self.store.close_session(close, audit=audit)
            new, merge = priced
            if new is None:  # a failed connect: nothing to bill
                return await self.store.close_session(replace(close, entry=None), audit=audit)
            billed = replace(close, entry=new)
            return await self.store.close_session_billed(billed, merge, audit=audit)

    async def _priced(
        self, close: SessionClose, draft: TimeEntry
    ) -> tuple[BillableEntry | None, EntryUpdate | None] | None:
        """The entry by the card that prices it (None: no card at all), and the
        merge into the previous draft if the session is a reconnect. A session that
        bills nothing on its own (shorter than the grace period) still gets its
        draft, so that reconnects can join it and bill the work once."""
        facts = _facts(close, draft)
        card = await self.book.pricing(facts.started_at)
        if card is None:
            return None
        alone = compute_entry([facts], card, await self._context(draft))
        # Billing counts whole seconds; the entry of one session keeps the times the
        # relay measured (a merged entry spans its sessions' whole seconds).
        new = replace(
            billable_from(alone, draft.id, draft.created_at),
            started_at=draft.started_at,
            ended_at=draft.ended_at,
        )
        return new, await self._merge(facts, card)

    async def _context(self, draft: TimeEntry) -> EntryContext:
        tech = await self.store.get_technician(draft.technician_id)
        urgent = await self.is_urgent(draft.customer_id, draft.request)
        return EntryContext(technician_level=tech.level if tech else 1, urgent=urgent)

    async def _merge(self, facts: SessionFacts, card: RateCard) -> EntryUpdate | None:
        """The update that joins ``facts`` to the previous draft, if it is a reconnect."""
        window = int(session_settings(card, facts.customer_id)[0].value)
        target = await self.store.find_merge_target(
            facts.customer_id,
            facts.technician_id,
            facts.agent_id,
            facts.request,
            facts.started_at - timedelta(minutes=window),
        )
        if target is None:
            return None
        frozen = await self.book.by_digest(target.card_digest)
        if frozen is None:
            return None
        sessions, context = entry_facts(target)
        if any(s.session_id == facts.session_id for s in sessions):
            return None
        groups = merge_for_card([*sessions, facts], frozen)  # the merge rule, as billed
        if len(groups) != 1:
            return None
        merged = billable_from(
            compute_entry(groups[0], frozen, context), target.id, target.created_at, keep=target
        )
        reason = f"reconnect {facts.session_id} within the merge window"
        history = change_log(target, merged, "relay", self.clock.now(), reason)
        log.info("session %s joins time entry %s", facts.session_id, target.id)
        return EntryUpdate(merged, target.revision, history)

    async def _help_request_urgent(self, customer_id: str, request: str | None) -> bool:
        if not request:
            return False
        try:
            number = parse_number(request)
        except UsageError:
            return False  # a ticket of another system: urgency unknown
        found = await self.store.get_help_request(number)
        return found is not None and found.customer_id == customer_id and found.urgent


def _facts(close: SessionClose, draft: TimeEntry) -> SessionFacts:
    """The raw facts of a closing session; its length is the relay's measured time."""
    return SessionFacts(
        session_id=close.session_id,
        customer_id=draft.customer_id,
        technician_id=draft.technician_id,
        agent_id=draft.agent_id,
        request=draft.request,
        started_at=draft.started_at,
        ended_at=draft.started_at + timedelta(seconds=draft.actual_seconds),
        traffic_minutes=frozenset(close.traffic_minutes),
        quiet=None if close.quiet is None else quiet_pairs(close.quiet),
    )
