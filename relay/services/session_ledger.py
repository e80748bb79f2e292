"""What the relay writes about sessions over time: heartbeats while they run, the
closing row with its draft time entry, and recovery after a crash.

The session manager decides *when* a session ends; this module decides *what* is
written then, always in one transaction with the audit record of the end.

An end is never lost: when the store refuses the write (a lock held past its busy
timeout, a full disk), the end is kept in memory and written again with backoff
until it lands, once (the store's close is idempotent). While the store refuses
writes the relay is not :attr:`SessionLedger.writable`: it starts no new sessions
and says it is not ready; the running sessions go on counting in memory, and the
outage is recorded on every session it overlapped (``store_gap_seconds``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from relay.billing.entries import draft_entry
from relay.billing.rounding import RoundingRule
from relay.core.ids import new_id
from relay.model import AuditEvent, Session, SessionBeat, SessionClose, TimeEntry
from relay.services.live_session import LiveSession
from relay.services.live_settings import LiveSettings, as_live
from relay.services.timekeeping import Timekeeper
from relay.settings import Settings
from relay.store.interface import Store
from shared.clock import Clock
from shared.errors import StorageError
from shared.protocol.session_state import EndReason, State

log = logging.getLogger("qp.relay.sessions")


#: Seconds between the first and the second try of a refused write; it doubles up
#: to :data:`RETRY_MAX`.
RETRY_FIRST = 0.5
RETRY_MAX = 30.0


@dataclass
class Outage:
    """A stretch of monotonic time during which the store refused writes."""

    since: float
    until: float | None = None

    def overlap(self, start: float, end: float) -> float:
        """Seconds of this outage within ``start``..``end``."""
        until = end if self.until is None else self.until
        return max(0.0, min(end, until) - max(start, self.since))


class SessionLedger:
    """Heartbeats, closing rows and recovery of one relay node's sessions."""

    @property
    def settings(self) -> Settings:
        """The settings in force now: a reload swaps them between two uses."""
        return self._live.current

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings | LiveSettings,
        node_id: str,
        timekeeper: Timekeeper,
    ) -> None:
        self.store = store
        self.clock = clock
        self._live = as_live(settings)
        self.node_id = node_id
        self.timekeeper = timekeeper
        #: Ends the store refused, by session id, waiting to be written again.
        self.pending: dict[str, tuple[SessionClose, tuple[AuditEvent, ...], float]] = {}
        #: When the store refused writes. A session's ``store_gap_seconds`` is how
        #: much of these fell between its creation and the write of its end.
        self.outages: list[Outage] = []
        self._retry: asyncio.Task[None] | None = None
        self._settled = asyncio.Event()
        self._settled.set()

    # -- the store's health ------------------------------------------------------------
    @property
    def writable(self) -> bool:
        """Whether the store took the last write (new sessions need it)."""
        return not self.outages or self.outages[-1].until is not None

    def refused(self, exc: Exception, since: float | None = None) -> None:
        """A write tried at monotonic ``since`` (default: now) was refused: an outage
        starts (if none is running), retries begin."""
        if self.writable:
            log.error("the store refuses writes: %s; ends are kept in memory", exc)
            self.outages.append(Outage(self.clock.monotonic() if since is None else since))
            self._settled.clear()
        self._ensure_retry()

    def took(self) -> None:
        """A write landed: a running outage is over."""
        if not self.writable:
            self.outages[-1].until = self.clock.monotonic()
            log.warning("the store takes writes again")
        if not self.pending:
            self._settled.set()

    async def settled(self) -> None:
        """Return once every kept end is written and the store takes writes."""
        await self._settled.wait()

    def gap(self, start: float, end: float) -> int:
        """Whole seconds of outage within monotonic ``start``..``end``."""
        return round(sum(o.overlap(start, end) for o in self.outages))

    async def close(
        self,
        live: LiveSession,
        reason: EndReason,
        ended_at: datetime,
        actual: int | None,
        audit: Sequence[AuditEvent],
    ) -> bool:
        """Write the end of ``live``: ``actual`` seconds billed (None: nothing). If
        the store refuses, the end is kept and written later; True either way."""
        traffic = self._traffic(live)
        noise = self.settings.billing.activity_noise_bytes
        quiet = live.quiet(noise, self.clock.monotonic()) if actual is not None else None
        row = dataclasses.replace(
            live.row,
            bytes_to_agent=live.bytes_to_agent,
            bytes_to_technician=live.bytes_to_technician,
            active_minutes=len(traffic),
            traffic_minutes=traffic,
        )
        entry = None
        if actual is not None and row.started_at is not None:
            # Both ends are anchored on the monotonic clock (LiveSession.wall), so the
            # entry's length is what the relay measured, whatever the wall clock did.
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
            quiet=quiet,
        )
        return await self.write(close, tuple(audit), live.created_mono)

    async def write(
        self, close: SessionClose, audit: tuple[AuditEvent, ...], created_mono: float
    ) -> bool:
        """Write one end; a refused write is kept for :meth:`_retry_forever`."""
        ended_mono = self.clock.monotonic()
        close = replace(close, store_gap_seconds=self.gap(created_mono, ended_mono))
        try:
            written = await self.timekeeper.close_session(close, audit)
        except StorageError as exc:  # refused after waiting: the outage began at the try
            self.pending[close.session_id] = (close, audit, created_mono)
            self.refused(exc, since=ended_mono)
            return True
        self.took()
        return written

    def _traffic(self, live: LiveSession) -> tuple[int, ...]:
        return live.traffic_minutes(self.settings.billing.activity_noise_bytes)

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
        mono = self.clock.monotonic()
        beats = []
        for live in active:
            traffic = self._traffic(live)
            beats.append(
                SessionBeat(
                    session_id=live.row.id,
                    last_seen_at=live.wall(mono),
                    bytes_to_agent=live.bytes_to_agent,
                    bytes_to_technician=live.bytes_to_technician,
                    active_minutes=len(traffic),
                    traffic_minutes=traffic,
                    quiet=live.quiet(self.settings.billing.activity_noise_bytes, mono),
                )
            )
        if beats:
            try:
                await self.store.heartbeat_sessions(beats)
            except StorageError as exc:
                self.refused(exc, since=mono)
                raise
            self.took()
        return len(beats)

    # -- writing again -------------------------------------------------------------------
    def _ensure_retry(self) -> None:
        if self._retry is None or self._retry.done():
            self._retry = asyncio.create_task(self._retry_forever())

    async def _retry_forever(self) -> None:
        """Write the kept ends again, with backoff, until all landed; with none kept,
        probe until the store takes a write."""
        delay = RETRY_FIRST
        while self.pending or not self.writable:
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
            try:
                if not self.pending:
                    await self.store.set_meta("write_probe", self.clock.now().isoformat())
                for sid, (close, audit, created_mono) in list(self.pending.items()):
                    # Until now the session's record was in memory only.
                    gap = self.gap(created_mono, self.clock.monotonic())
                    await self.timekeeper.close_session(
                        replace(close, store_gap_seconds=gap), audit
                    )
                    del self.pending[sid]
                    log.warning("session %s: end written after %d s of store outage", sid, gap)
            except StorageError as exc:
                log.info("the store still refuses writes: %s", exc)
                continue
            self.took()
            delay = RETRY_FIRST

    def stop(self) -> None:
        """Stop retrying (the relay stops); kept ends are logged as lost to this run."""
        if self._retry is not None:
            self._retry.cancel()
        for sid in self.pending:
            log.error("session %s: end not written; recovery closes it at its last heartbeat", sid)

    async def recover(self) -> int:
        """Close sessions this node left open (a crash) at their last heartbeat,
        reason ``recovered``: never bill time the relay did not see."""
        count = 0
        for row in await self.store.open_sessions(self.node_id):
            entry = None
            ended_at = row.last_seen_at or row.created_at
            if row.started_at is not None:
                seen = max(row.started_at, row.last_seen_at or row.started_at)
                # Whole seconds seen, rounded down: never bill time nobody saw. The
                # heartbeat's time is anchored on the monotonic clock like the start.
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
                quiet=row.quiet,
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
