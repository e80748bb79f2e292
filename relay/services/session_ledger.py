"""What the relay writes about sessions over time: heartbeats while they run, the
closing row with its draft time entry, and recovery after a crash.

The session manager decides *when* a session ends; this module decides *what* is
written then, always in one transaction with the audit record of the end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from relay.billing.entries import draft_entry
from relay.billing.rounding import RoundingRule
from relay.core.ids import new_id
from relay.model import AuditEvent, Session, SessionBeat, SessionClose, TimeEntry
from relay.services.live_session import LiveSession
from relay.services.timekeeping import Timekeeper
from relay.settings import Settings
from relay.store.interface import Store
from shared.clock import Clock
from shared.protocol.session_state import EndReason, State


class SessionLedger:
    """Heartbeats, closing rows and recovery of one relay node's sessions."""

    def __init__(
        self, store: Store, clock: Clock, settings: Settings, node_id: str, timekeeper: Timekeeper
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.node_id = node_id
        self.timekeeper = timekeeper

    async def close(
        self,
        live: LiveSession,
        reason: EndReason,
        ended_at: datetime,
        actual: int | None,
        audit: Sequence[AuditEvent],
    ) -> bool:
        """Write the end of ``live``: ``actual`` seconds billed (None: nothing)."""
        row = dataclasses.replace(
            live.row,
            bytes_to_agent=live.bytes_to_agent,
            bytes_to_technician=live.bytes_to_technician,
            active_minutes=len(live.minutes),
            traffic_minutes=tuple(sorted(live.minutes)),
        )
        entry = None
        if actual is not None and row.started_at is not None:
            entry = self.entry_for(row, row.started_at, ended_at, actual)
        close = SessionClose(
            session_id=row.id,
            state=State.ENDED.value,
            end_reason=reason.value,
            ended_at=ended_at,
            last_seen_at=ended_at if actual is not None else row.last_seen_at,
            bytes_to_agent=row.bytes_to_agent,
            bytes_to_technician=row.bytes_to_technician,
            active_minutes=row.active_minutes,
            entry=entry,
            traffic_minutes=row.traffic_minutes,
        )
        return await self.timekeeper.close_session(close, audit)

    def entry_for(
        self, row: Session, started_at: datetime, ended_at: datetime, actual: int
    ) -> TimeEntry:
        """The draft time entry at the relay's configured default rate; with a rate
        card imported, :class:`Timekeeper` prices (or merges) it by the card."""
        bill = self.settings.billing
        rule = RoundingRule(
            bill.minimum_minutes, bill.increment_minutes, bill.rounding, bill.grace_seconds
        )
        return draft_entry(
            row,
            new_id("ent"),
            started_at,
            ended_at,
            actual,
            bill.hourly_rate,
            rule,
            self.clock.now(),
        )

    async def heartbeat(self, active: Sequence[LiveSession]) -> int:
        """Persist last-seen time and counters of the ``active`` sessions."""
        now = self.clock.now()
        beats = [
            SessionBeat(
                session_id=live.row.id,
                last_seen_at=now,
                bytes_to_agent=live.bytes_to_agent,
                bytes_to_technician=live.bytes_to_technician,
                active_minutes=len(live.minutes),
                traffic_minutes=tuple(sorted(live.minutes)),
            )
            for live in active
        ]
        if beats:
            await self.store.heartbeat_sessions(beats)
        return len(beats)

    async def recover(self) -> int:
        """Close sessions this node left open (a crash) at their last heartbeat,
        reason ``recovered``: never bill time the relay did not see."""
        count = 0
        for row in await self.store.open_sessions(self.node_id):
            entry = None
            ended_at = row.last_seen_at or row.created_at
            if row.started_at is not None:
                seen = max(row.started_at, row.last_seen_at or row.started_at)
                actual = int((seen - row.started_at).total_seconds())
                entry = self.entry_for(row, row.started_at, seen, actual)
                ended_at = seen
            close = SessionClose(
                session_id=row.id,
                state=State.ENDED.value,
                end_reason=EndReason.RECOVERED.value,
                ended_at=ended_at,
                last_seen_at=row.last_seen_at,
                bytes_to_agent=row.bytes_to_agent,
                bytes_to_technician=row.bytes_to_technician,
                active_minutes=row.active_minutes,
                entry=entry,
                traffic_minutes=row.traffic_minutes,
            )
            audit = AuditEvent(
                self.clock.now(),
                "session_recovered",
                "relay",
                row.id,
                {"ended_at": ended_at.isoformat()},
            )
            if await self.timekeeper.close_session(close, (audit,)):
                count += 1
        return count
