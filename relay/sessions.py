"""Live sessions on this relay: offers, tunnel pairing, timing, and the end of each.

The lifecycle itself is the table in :mod:`shared.protocol.session_state`; this
module feeds it events, persists every move, pumps the paired tunnels, and turns
each ended session into its draft time entry, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from websockets.asyncio.server import ServerConnection

from relay.billing.entries import draft_entry
from relay.billing.rounding import RoundingRule
from relay.ids import new_id, new_token, same_secret, token_hash
from relay.model import Session, SessionBeat, SessionClose, TimeEntry
from relay.pump import pump
from relay.settings import Settings
from relay.store.interface import Store
from relay.timekeeping import Timekeeper
from shared.clock import Clock
from shared.errors import UnavailableError
from shared.protocol.session_state import EndReason, Event, State, next_state

log = logging.getLogger("qp.relay.sessions")

AGENT, TECHNICIAN = "agent", "technician"
SIDES = (AGENT, TECHNICIAN)

#: Called with (session id, direction, bytes) for every pumped frame; tests use it
#: to prove the relay only ever sees ciphertext.
Tap = Callable[[str, str, bytes], None]


@dataclass
class TunnelToken:
    hash: str
    expires: float  # monotonic
    used: bool = False


@dataclass
class LiveSession:
    """What the relay holds in memory for one open session."""

    row: Session
    state: State
    tokens: dict[str, TunnelToken]
    accepted: asyncio.Future[str | None]
    ends: dict[str, ServerConnection] = field(default_factory=dict)
    paired: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    started_mono: float | None = None
    bytes_to_agent: int = 0
    bytes_to_technician: int = 0
    minutes: set[int] = field(default_factory=set)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: Tells the technician waiting for this session about state changes.
    on_state: Callable[[str], Awaitable[None]] | None = None
    #: Set when the agent reports that the technician's SSH login succeeded.
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class SessionManager:
    """Owns every open session of this relay node."""

    def __init__(
        self, store: Store, clock: Clock, settings: Settings, node_id: str, tap: Tap | None = None
    ) -> None:
        self.store = store
        #: Writes each ended session with its entry, priced by the rate card in force.
        self.timekeeper = Timekeeper(store, clock)
        self.clock = clock
        self.settings = settings
        self.node_id = node_id
        self.tap = tap
        self.live: dict[str, LiveSession] = {}
        self._end_lock = asyncio.Lock()
        #: Seconds an ending session waits for a late "ready" from its agent.
        self.ready_grace = 1.0

    # -- creation ---------------------------------------------------------------
    async def create(
        self,
        agent_id: str,
        technician_id: str,
        customer_id: str,
        kind: str,
        ticket: str | None = None,
    ) -> tuple[LiveSession, dict[str, str]]:
        """Write the session row (before anyone is offered anything) and mint one
        single-use tunnel token per side. Returns the live session and the tokens."""
        now = self.clock.now()
        row = Session(
            id=new_id("ses"),
            agent_id=agent_id,
            technician_id=technician_id,
            customer_id=customer_id,
            kind=kind,
            state=State.REQUESTED.value,
            created_at=now,
            relay_node=self.node_id,
            ticket=ticket,
        )
        # A failed write refuses the session: never an unbilled session.
        await self.store.add_session(row)
        ttl = self.settings.limits.tunnel_token_ttl
        plain = {side: new_token("qpx") for side in SIDES}
        tokens = {
            side: TunnelToken(token_hash(tok), self.clock.monotonic() + ttl)
            for side, tok in plain.items()
        }
        live = LiveSession(row, State.REQUESTED, tokens, asyncio.get_running_loop().create_future())
        self.live[row.id] = live
        return live, plain

    async def advance(self, live: LiveSession, event: Event) -> None:
        """Apply a non-ending event and persist the new state."""
        state, reason = next_state(live.state, event)
        if reason is not None:
            await self.end(live, event)
            return
        live.state = state
        started = None
        if state is State.ACTIVE:
            # The clock runs from pairing; started_at is persisted once the agent
            # reports a successful SSH login (ready), so a refused login bills nothing.
            now = self.clock.now()
            live.row = dataclasses.replace(live.row, started_at=now, last_seen_at=now)
            live.started_mono = self.clock.monotonic()
        await self.store.set_session_state(live.row.id, state.value, started)
        ttl = self.settings.limits.tunnel_token_ttl
        if state is State.AWAITING_CONSENT:
            # A person may take the whole consent timeout; the agent dials after.
            agent = live.tokens[AGENT]
            agent.expires = self.clock.monotonic() + self.settings.limits.consent_timeout + ttl
        if state is State.CONNECTING:
            # The technician learns its token only now: its time to use it starts now.
            live.tokens[TECHNICIAN].expires = self.clock.monotonic() + ttl
            live.tasks.append(asyncio.create_task(self._pair_watchdog(live)))

    # -- offers -------------------------------------------------------------------
    def resolve_offer(self, agent_id: str, session_id: str, decline_reason: str | None) -> None:
        """The agent answered an offer. Answers for sessions that are not this
        agent's, or not waiting, are ignored."""
        live = self.live.get(session_id)
        if live is None or live.row.agent_id != agent_id or live.accepted.done():
            return
        live.accepted.set_result(decline_reason)

    async def wait_accept(self, live: LiveSession) -> None:
        """Wait for the agent's answer (and the client's consent, where asked);
        end the session and raise if it never comes or is no."""
        lim = self.settings.limits
        waited = 0.0
        while True:
            window = lim.offer_timeout
            try:
                reason = await asyncio.wait_for(asyncio.shield(live.accepted), window)
                break
            except TimeoutError:
                waited += window
                if live.state is State.AWAITING_CONSENT and waited < lim.consent_timeout:
                    continue  # a person is deciding: give them the consent timeout
                event = (
                    Event.CONSENT_TIMEOUT
                    if live.state is State.AWAITING_CONSENT
                    else Event.AGENT_OFFLINE
                )
                await self.end(live, event)
                if event is Event.CONSENT_TIMEOUT:
                    raise UnavailableError(
                        "the client did not answer the consent request in time"
                    ) from None
                raise UnavailableError("no answer from the agent; try again") from None
        if reason is None:
            await self.advance(live, Event.ACCEPT)
            return
        if live.state is State.ENDED:
            raise UnavailableError(f"the session ended before it started: {reason}")
        if reason == "consent_timeout" and live.state is State.AWAITING_CONSENT:
            await self.end(live, Event.CONSENT_TIMEOUT)
            raise UnavailableError("the client did not answer the consent request in time")
        await self.end(live, Event.DECLINE)
        raise UnavailableError(f"the client declined the session ({reason[:200]})")

    async def consent_pending(self, agent_id: str, session_id: str) -> None:
        """The agent is asking its user: the technician waits for consent."""
        live = self.live.get(session_id)
        if live is None or live.row.agent_id != agent_id or live.state is not State.OFFERED:
            return
        await self.advance(live, Event.ASK_CONSENT)
        await self.store.audit(self.clock.now(), "consent_asked", agent_id, session_id)
        if live.on_state is not None:
            with contextlib.suppress(Exception):
                await live.on_state(State.AWAITING_CONSENT.value)

    async def ready(self, agent_id: str, session_id: str) -> None:
        """The agent accepted the technician's SSH login: the session is billable."""
        live = self.live.get(session_id)
        if live is None or live.row.agent_id != agent_id or live.state is not State.ACTIVE:
            return
        if live.ready.is_set():
            return
        live.ready.set()
        await self.store.set_session_state(session_id, State.ACTIVE.value, live.row.started_at)
        await self.store.audit(self.clock.now(), "session_authenticated", agent_id, session_id)
        if self.on_phase is not None:
            await self.on_phase(agent_id, session_id, "before")

    async def client_ended(self, agent_id: str, session_id: str) -> None:
        """The client ended the session on their machine (``qp-agent end``)."""
        live = self.live.get(session_id)
        if live is not None and live.row.agent_id == agent_id:
            await self.end(live, Event.CLIENT_ENDED)

    async def agent_gone(self, agent_id: str) -> None:
        """The agent's control link dropped: sessions it had not yet joined end."""
        for live in list(self.live.values()):
            if live.row.agent_id == agent_id and live.state in (State.OFFERED, State.REQUESTED):
                await self.end(live, Event.AGENT_OFFLINE)

    # -- tunnels ---------------------------------------------------------------------
    def claim_token(self, session_id: str, token: str) -> str | None:
        """Use a tunnel token: returns the side it belongs to, or None if it is
        unknown, expired, already used, or the session takes no tunnels now."""
        live = self.live.get(session_id)
        if live is None or live.state not in (
            State.OFFERED,
            State.AWAITING_CONSENT,
            State.CONNECTING,
        ):
            return None
        digest = token_hash(token)
        for side, tok in live.tokens.items():
            if same_secret(tok.hash, digest):
                # Consent given, the agent dials before it reports "accept"; the
                # technician gets its token only after that.
                if live.state is State.AWAITING_CONSENT and side != AGENT:
                    return None
                if tok.used or self.clock.monotonic() > tok.expires or side in live.ends:
                    return None
                tok.used = True
                return side
        return None

    async def run_tunnel(self, session_id: str, side: str, ws: ServerConnection) -> None:
        """Serve one tunnel end until the session is over."""
        live = self.live.get(session_id)
        if live is None or side in live.ends or live.state is State.ENDED:
            await ws.close(code=1008, reason="forbidden")
            return
        live.ends[side] = ws
        if len(live.ends) == 2:
            await self.advance(live, Event.PAIRED)
            live.paired.set()
        await live.paired.wait()  # the pair watchdog ends the session on timeout
        if live.state is not State.ACTIVE:
            return
        other = live.ends[TECHNICIAN if side == AGENT else AGENT]
        direction = "to_technician" if side == AGENT else "to_agent"
        closed = await pump(ws, other, lambda data: self._count(live, direction, data))
        left = side if closed == "src" else (TECHNICIAN if side == AGENT else AGENT)
        await self.end(live, Event.TECHNICIAN_LEFT if left == TECHNICIAN else Event.CLIENT_LEFT)

    def _count(self, live: LiveSession, direction: str, data: bytes) -> None:
        if direction == "to_agent":
            live.bytes_to_agent += len(data)
        else:
            live.bytes_to_technician += len(data)
        if live.started_mono is not None:
            live.minutes.add(int((self.clock.monotonic() - live.started_mono) // 60))
        if self.tap is not None:
            self.tap(live.row.id, direction, data)

    async def _pair_watchdog(self, live: LiveSession) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(live.paired.wait(), self.settings.limits.pair_timeout)
            return
        await self.end(live, Event.TUNNEL_TIMEOUT)

    # -- the end ------------------------------------------------------------------------
    async def end(self, live: LiveSession, event: Event) -> bool:
        """End ``live`` because of ``event``: close its tunnels, write the row and
        its time entry in one transaction. Idempotent; True if this call ended it."""
        async with self._end_lock:
            if live.state is State.ENDED:
                return False
            state, reason = next_state(live.state, event)
            assert reason is not None, f"{event} does not end a session"
            was_active = live.state is State.ACTIVE
            live.state = State.ENDED
        if was_active and not live.ready.is_set():
            # "ready" travels on the agent's control link, the tunnel close on
            # another connection: give the message a moment to arrive.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.ready.wait(), self.ready_grace)
            if not live.ready.is_set():
                was_active = False  # the SSH login never succeeded: nothing to bill
                await self.store.audit(
                    self.clock.now(), "session_unauthenticated", live.row.agent_id, live.row.id
                )
        now = self.clock.now()
        actual = 0
        if was_active and live.started_mono is not None:
            # Whole seconds, rounded up: a connected session is never 0 s long.
            actual = math.ceil(self.clock.monotonic() - live.started_mono)
        close = self._closing(live, reason, now, actual if was_active else None)
        try:
            await self.timekeeper.close_session(close)
        finally:
            self.live.pop(live.row.id, None)
            live.paired.set()  # release a tunnel end still waiting for its partner
            live.finished.set()
            if not live.accepted.done():
                live.accepted.set_result(reason.value)
            code = 1001 if reason is EndReason.RELAY_SHUTDOWN else 1000
            for ws in live.ends.values():
                asyncio.ensure_future(ws.close(code=code, reason=reason.value))
            for task in live.tasks:
                if task is not asyncio.current_task():
                    task.cancel()
        log.info("session %s ended: %s after %ss", live.row.id, reason.value, actual)
        await self.store.audit(
            now,
            "session_end",
            live.row.technician_id,
            live.row.id,
            reason=reason.value,
            actual_seconds=actual,
        )
        await self._notify_end(live, reason)
        if self.on_phase is not None and live.ready.is_set():
            await self.on_phase(live.row.agent_id, live.row.id, "after")
        return True

    def _closing(
        self, live: LiveSession, reason: EndReason, ended_at: datetime, actual: int | None
    ) -> SessionClose:
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
        return SessionClose(
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

    #: Set by the relay: asks the agent for a snapshot when a session starts
    #: (phase "before") and ends ("after").
    on_phase: Callable[[str, str, str], Awaitable[None]] | None = None

    #: Set by the relay: tells an agent that a session it serves is over.
    notify_agent: Callable[[str, str, str], Awaitable[None]] | None = None

    async def _notify_end(self, live: LiveSession, reason: EndReason) -> None:
        if self.notify_agent is not None:
            with contextlib.suppress(Exception):
                await self.notify_agent(live.row.agent_id, live.row.id, reason.value)

    # -- heartbeat, recovery, shutdown -----------------------------------------------------
    async def heartbeat_once(self) -> int:
        """Persist last-seen time and counters of every active session."""
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
            for live in self.live.values()
            if live.state is State.ACTIVE
        ]
        if beats:
            await self.store.heartbeat_sessions(beats)
        return len(beats)

    async def heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            try:
                await self.heartbeat_once()
            except Exception as exc:  # keep beating; the next one may succeed
                log.error("heartbeat not persisted: %s", exc)

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
            if await self.timekeeper.close_session(close):
                count += 1
                await self.store.audit(
                    self.clock.now(),
                    "session_recovered",
                    "relay",
                    row.id,
                    ended_at=ended_at.isoformat(),
                )
        return count

    async def shutdown(self) -> None:
        """End every open session as ``relay_shutdown`` and write its entry."""
        for live in list(self.live.values()):
            await self.end(live, Event.SHUTDOWN)

    def require_live(self, session_id: str) -> LiveSession:
        live = self.live.get(session_id)
        if live is None:
            raise UnavailableError("the session is over")
        return live
