"""Live sessions on this relay node: one owner for each session's whole life.

:meth:`SessionManager.open` writes the row, offers the session to the agent, waits
for its answer (and the client's consent), and hands the technician what it needs
to dial; tunnel ends join and leave through :meth:`claim`, :meth:`join` and
:meth:`left`; :meth:`end` closes the row and its time entry once. The lifecycle's
rules are the tables in :mod:`shared.protocol.session_state`: this module feeds
them events, persists the states they name, and acts on the result. Heartbeats,
recovery and the draft entry are in :mod:`relay.services.session_ledger`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import Sequence
from datetime import timedelta

from relay.core import activity, tunnel_tokens
from relay.core.ids import new_id
from relay.model import Agent, AuditEvent, Keyset, Session, Technician
from relay.services.audit import Auditor
from relay.services.authorities import CLOCK_SKEW, Authorities
from relay.services.live_session import LiveSession
from relay.services.live_settings import LiveSettings, ReadsLiveSettings, as_live
from relay.services.metrics import RelayMetrics
from relay.services.ports import (
    AgentChannel,
    OfflineChannel,
    PhaseListener,
    Tap,
    TunnelEnd,
)
from relay.services.session_ledger import SessionLedger
from relay.services.session_limits import certificate_minutes, overdue
from relay.services.session_requests import Opened as Opened
from relay.services.session_requests import OpenRequest as OpenRequest
from relay.services.timekeeping import Timekeeper, default_card
from relay.settings import Settings
from relay.store.interface import Store
from shared.clock import Clock, iso
from shared.errors import NotFoundError, OutOfScopeError, StorageError, UnavailableError
from shared.keys import certificate_text
from shared.protocol.close_codes import GOING_AWAY, NORMAL_CLOSURE, POLICY_VIOLATION
from shared.protocol.end_text import close_reason
from shared.protocol.messages import Message
from shared.protocol.session_state import (
    AGENT,
    ANSWERABLE,
    BILLED,
    ENDED_BY_LINK_LOSS,
    PERSISTED,
    TECHNICIAN,
    EndReason,
    Event,
    State,
    can_apply,
    next_state,
)

log = logging.getLogger("qp.relay.sessions")

NOT_WRITABLE = (
    "the relay cannot write to its database right now, so it starts no sessions; "
    "try again later (its operator sees why in the relay log)"
)
SESSION_KINDS = ("exec", "shell", "files", "forward", "proxy")
PTY_KINDS = ("shell", "proxy")
FORWARD_KINDS = ("forward", "proxy")
#: Seconds between two sweeps for sessions past a limit (idle, length, login).
SWEEP_SECONDS = 1.0


class SessionManager(ReadsLiveSettings):
    """Owns every open session of this relay node."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings | LiveSettings,
        node_id: str,
        *,
        channel: AgentChannel | None = None,
        authorities: Authorities | None = None,
        on_phase: PhaseListener | None = None,
        tap: Tap | None = None,
        public_url: str = "",
        metrics: RelayMetrics | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self._live = as_live(settings)
        self.node_id = node_id
        self.channel: AgentChannel = channel if channel is not None else OfflineChannel()
        self.authorities = authorities
        self.on_phase = on_phase
        self.tap = tap
        self.public_url = public_url
        self.metrics = metrics if metrics is not None else RelayMetrics()
        #: Writes each ended session with its entry, priced by the rate card in force.
        self.timekeeper = Timekeeper(store, clock, default_card(self.settings))
        self.ledger = SessionLedger(store, clock, self._live, node_id, self.timekeeper)
        self._live.on_swap(lambda _old, new: self.timekeeper.book.set_default(default_card(new)))
        self.live: dict[str, LiveSession] = {}
        self._end_lock = asyncio.Lock()
        #: Seconds an ending session waits for a late "ready" from its agent.
        self.ready_grace = 1.0
        #: Opens in progress per technician, counted against their cap until live.
        self._opening: dict[str, int] = {}

    # -- opening ---------------------------------------------------------------------
    async def open(self, request: OpenRequest) -> Opened:
        """Write the session row, offer the session to the agent, wait for its
        answer (and the client's consent where policy asks), and return what the
        technician dials with. Raises with the reason when it does not start."""
        if self.authorities is None:
            raise UnavailableError("this relay node signs no certificates")
        agent, tech = request.agent, request.technician
        if not self.ledger.writable:
            raise UnavailableError(NOT_WRITABLE)
        if not self.channel.online(agent.id):
            raise NotFoundError(f"agent {agent.name!r} ({agent.id}) is offline")
        await self._admit(tech, agent)
        return await self._open(request)

    async def _admit(self, tech: Technician, agent: Agent) -> None:
        """Refuse (and audit) a session beyond the technician's concurrent cap."""
        cap = self.settings.limits.max_sessions_per_technician
        running = sum(1 for live in self.live.values() if live.row.technician_id == tech.id)
        if running + self._opening.get(tech.id, 0) < cap:
            return
        await Auditor(self.store, self.clock).refused(
            "session_refused", tech.id, agent.id, reason="max_sessions_per_technician", cap=cap
        )
        plural = "s" if cap != 1 else ""
        raise UnavailableError(
            f"you have {cap} open session{plural} already, the most this relay allows "
            f"(limits.max_sessions_per_technician = {cap}); end one with "
            "`qp session end ID` and try again"
        )

    async def _open(self, request: OpenRequest) -> Opened:
        assert self.authorities is not None
        agent, tech = request.agent, request.technician
        sid = new_id("ses")
        now = self.clock.now()
        cert = self.authorities.sign_session_user(
            request.user_key,
            sid,
            tech.id,
            now,
            certificate_minutes(self.settings.limits),
            permit_pty=request.kind in PTY_KINDS,
            permit_port_forwarding=request.permit_forwarding,
            kind=request.kind,
        )
        audit = (
            AuditEvent(
                now,
                "session_open",
                tech.id,
                sid,
                {"agent": agent.id, "kind": request.kind, "request": request.request or ""},
            ),
            AuditEvent(now, "cert_issued", tech.id, sid, {"principal": f"session:{sid}"}),
        )
        # Until its row is live, this open counts against the technician's cap here.
        self._opening[tech.id] = self._opening.get(tech.id, 0) + 1
        try:
            live, tokens = await self.create(
                agent.id, tech.id, agent.customer_id, request.kind, request.request, sid, audit
            )
        finally:
            self._opening[tech.id] -= 1
            if not self._opening[tech.id]:
                del self._opening[tech.id]
        live.on_state = request.on_state
        await self.advance(live, Event.OFFER)
        tunnel_url = f"{self.public_url}/v1/tunnel/{sid}"
        offer = {
            "session_id": sid,
            "tunnel_url": tunnel_url,
            "tunnel_token": tokens[AGENT],
            "technician": tech.name,
            "kind": request.kind,
            "request": request.request or "",
            "policy": request.policy,
            "expires_in": certificate_minutes(self.settings.limits) * 60,
            # The agent checks its clock against these before it accepts, so a wrong
            # clock is reported as one, not as a refused certificate.
            "relay_time": iso(now),
            "cert_valid_after": iso(now - CLOCK_SKEW),
            "cert_valid_before": iso(
                now + timedelta(minutes=certificate_minutes(self.settings.limits))
            ),
        }
        try:
            await self.channel.send(agent.id, Message("session_offer", offer))
        except Exception:
            await self.end(live, Event.AGENT_OFFLINE)
            raise
        await self.wait_accept(live)
        return Opened(
            sid,
            tunnel_url,
            tokens[TECHNICIAN],
            certificate_text(cert),
            self.authorities.host_ca_public,
        )

    async def create(
        self,
        agent_id: str,
        technician_id: str,
        customer_id: str,
        kind: str,
        request: str | None = None,
        session_id: str | None = None,
        audit: Sequence[AuditEvent] = (),
    ) -> tuple[LiveSession, dict[str, str]]:
        """Write the session row — before anyone is offered anything — with ``audit``
        in the same transaction, and mint one single-use tunnel token per side.
        Returns the live session and the tokens to hand out."""
        state = State.REQUESTED
        created_mono = self.clock.monotonic()
        row = Session(
            id=session_id or new_id("ses"),
            agent_id=agent_id,
            technician_id=technician_id,
            customer_id=customer_id,
            kind=kind,
            state=state.value,
            created_at=self.clock.now(),
            relay_node=self.node_id,
            request=request,
        )
        # A failed write refuses the session: never an unbilled session.
        try:
            await self.store.add_session(row, audit=audit)
        except StorageError as exc:
            self.ledger.refused(exc, since=created_mono)
            raise UnavailableError(NOT_WRITABLE) from None
        kept, plain = tunnel_tokens.mint(
            self.clock.monotonic(), self.settings.limits.tunnel_token_ttl
        )
        future = asyncio.get_running_loop().create_future()
        live = LiveSession(row, state, kept, future, created_mono)
        self.live[row.id] = live
        self.metrics.session_started(kind)
        return live, plain

    async def advance(
        self, live: LiveSession, event: Event, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Apply a non-ending event; persist the new state where the table says so."""
        state, reason = next_state(live.state, event)
        if reason is not None:
            await self.end(live, event)
            return
        live.state = state
        lim = self.settings.limits
        tunnel_tokens.restart(
            live.tokens, state, self.clock.monotonic(), lim.tunnel_token_ttl, lim.consent_timeout
        )
        if state in PERSISTED:
            await self.store.set_session_state(live.row.id, state.value, audit=audit)
        if state is State.CONNECTING:
            live.tasks.append(asyncio.create_task(self._pair_watchdog(live)))
        if state is State.ACTIVE and event is Event.PAIRED:
            # The clock runs from pairing; started_at is persisted once the agent
            # reports a successful SSH login, so a refused login bills nothing.
            live.started_mono = self.clock.monotonic()
            now = live.wall(live.started_mono)
            live.row = dataclasses.replace(live.row, started_at=now, last_seen_at=now)

    async def recording_stored(self, agent_id: str, session_id: str, size: int) -> None:
        """Audit a terminal recording an agent finished uploading."""
        now = self.clock.now()
        await self.store.audit(now, "recording_stored", agent_id, session_id, bytes=size)

    async def recent(self, limit: int, page: Keyset | None = None) -> list[Session]:
        """The most recent sessions of the relay (``limit``, or one page), newest
        first. A session open on this node shows the state it is in now (short-lived
        states are not written)."""
        rows = await self.store.list_sessions(limit, page)
        return [self._as_now(row) for row in rows]

    def _as_now(self, row: Session) -> Session:
        live = self.live.get(row.id)
        if live is None or live.state.value == row.state:
            return row
        return dataclasses.replace(row, state=live.state.value)

    async def stored(self, session_id: str) -> Session | None:
        """A session's row, open or ended (open ones in the state they are in now)."""
        row = await self.store.get_session(session_id)
        return None if row is None else self._as_now(row)

    # -- the agent's answers -------------------------------------------------------------
    def _of_agent(self, agent_id: str, session_id: str) -> LiveSession | None:
        live = self.live.get(session_id)
        return live if live is not None and live.row.agent_id == agent_id else None

    def resolve_offer(
        self, agent_id: str, session_id: str, decline_reason: str | None, by_agent: bool = False
    ) -> None:
        """The agent answered an offer (``by_agent``: the agent itself refused it,
        not the person at the machine). Answers for sessions that are not this
        agent's, or not waiting for one, are ignored."""
        live = self._of_agent(agent_id, session_id)
        if live is None or live.state not in ANSWERABLE or live.accepted.done():
            return
        live.declined_by_agent = by_agent
        live.accepted.set_result(decline_reason)

    async def wait_accept(self, live: LiveSession) -> None:
        """Wait for the agent's answer (and the client's consent, where asked);
        end the session and raise if it never comes or is no."""
        lim = self.settings.limits
        waited = 0.0
        while True:
            try:
                reason = await asyncio.wait_for(asyncio.shield(live.accepted), lim.offer_timeout)
                break
            except TimeoutError:
                waited += lim.offer_timeout
                asking = live.state is State.AWAITING_CONSENT
                if asking and waited < lim.consent_timeout:
                    continue  # a person is deciding: give them the consent timeout
                await self.end(live, Event.CONSENT_TIMEOUT if asking else Event.AGENT_OFFLINE)
                if asking:
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
        if live.declined_by_agent:
            raise UnavailableError(f"the client's agent refused the session: {reason[:200]}")
        raise UnavailableError(f"the client declined the session ({reason[:200]})")

    async def consent_pending(self, agent_id: str, session_id: str) -> None:
        """The agent is asking its user: the technician waits for consent."""
        live = self._of_agent(agent_id, session_id)
        if live is None or not can_apply(live.state, Event.ASK_CONSENT):
            return
        asked = AuditEvent(self.clock.now(), "consent_asked", agent_id, session_id)
        await self.advance(live, Event.ASK_CONSENT, audit=(asked,))
        if live.on_state is not None:
            try:
                await live.on_state(session_id, State.AWAITING_CONSENT.value)
            except Exception as exc:  # the technician's link may be gone; the session goes on
                log.info("session %s: consent notice not delivered: %s", session_id, exc)

    async def ready(self, agent_id: str, session_id: str) -> None:
        """The agent accepted the technician's SSH login: the session is billable."""
        live = self._of_agent(agent_id, session_id)
        if live is None or not can_apply(live.state, Event.LOGIN_OK) or live.ready.is_set():
            return
        live.ready.set()
        live.login_mono = self.clock.monotonic()
        now = self.clock.now()
        try:
            await self.store.set_session_state(
                session_id,
                State.ACTIVE.value,
                live.row.started_at,
                audit=(AuditEvent(now, "session_authenticated", agent_id, session_id),),
            )
        except StorageError as exc:  # billed all the same: the end carries the entry
            self.ledger.refused(exc)
        if self.on_phase is not None:
            await self.on_phase(agent_id, session_id, "before")

    async def client_ended(self, agent_id: str, session_id: str) -> None:
        """The client ended the session on their machine (``qp-agent end``)."""
        live = self._of_agent(agent_id, session_id)
        if live is not None:
            await self.end(live, Event.CLIENT_ENDED)

    async def agent_gone(self, agent_id: str) -> None:
        """The agent's control link dropped: sessions it had not yet joined end."""
        for live in list(self.live.values()):
            if live.row.agent_id == agent_id and live.state in ENDED_BY_LINK_LOSS:
                await self.end(live, Event.AGENT_OFFLINE)

    async def end_agent_sessions(self, agent_id: str) -> None:
        """End every session of an agent (after a revoke)."""
        for live in list(self.live.values()):
            if live.row.agent_id == agent_id:
                await self.end(live, Event.AGENT_OFFLINE)

    async def end_technician_sessions(self, technician_id: str) -> int:
        """End every open session of a technician as ``technician_disabled`` (an
        admin disabled them); how many this call ended."""
        ended = 0
        for live in list(self.live.values()):
            if live.row.technician_id == technician_id and await self.end(
                live, Event.TECHNICIAN_DISABLED
            ):
                ended += 1
        return ended

    async def end_by_technician(self, session_id: str, tech: Technician, sees_all: bool) -> None:
        """The technician ends a running session; unknown and not theirs look alike."""
        live = self.live.get(session_id)
        message = f"no running session {session_id!r} of yours"
        row = live.row if live is not None else await self.store.get_session(session_id)
        if row is not None and not (sees_all or row.technician_id == tech.id):
            raise OutOfScopeError(message, "session", session_id)
        if live is None:
            raise NotFoundError(message)
        await self.end(live, Event.TECHNICIAN_ENDED)

    # -- tunnels -------------------------------------------------------------------------
    def claim_token(self, session_id: str, token: str) -> str | None:
        """Use a tunnel token: the side it belongs to, or None (unknown, expired,
        used, or the session takes no tunnel from that side now)."""
        live = self.live.get(session_id)
        if live is None:
            return None
        return tunnel_tokens.claim(
            live.tokens, live.state, token, set(live.ends), self.clock.monotonic()
        )

    async def join(self, session_id: str, side: str, end: TunnelEnd) -> LiveSession | None:
        """A claimed tunnel end connected: wait for its partner. Returns the live
        session once both are paired and it is active; None if it never will be
        (the end has been closed then)."""
        live = self.live.get(session_id)
        if live is None or side in live.ends or live.state is State.ENDED:
            await end.close(POLICY_VIOLATION, "forbidden")
            return None
        live.ends[side] = end
        if len(live.ends) == 2:
            await self.advance(live, Event.PAIRED)
            live.paired.set()
        await live.paired.wait()  # the pair watchdog ends the session on timeout
        return live if live.state is BILLED else None

    def count(self, live: LiveSession, direction: str, data: bytes) -> None:
        """Account one pumped frame (``to_agent`` or ``to_technician``)."""
        if direction == "to_agent":
            live.bytes_to_agent += len(data)
        else:
            live.bytes_to_technician += len(data)
        self.metrics.tunnel_bytes(direction, len(data))
        if live.started_mono is not None:
            second = self.clock.monotonic() - live.started_mono
            activity.record(live.payload, second, len(data))
        if self.tap is not None:
            self.tap(live.row.id, direction, data)

    async def left(self, live: LiveSession, side: str) -> None:
        """A tunnel end went away: the session is over."""
        await self.end(live, Event.TECHNICIAN_LEFT if side == TECHNICIAN else Event.CLIENT_LEFT)

    async def _pair_watchdog(self, live: LiveSession) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(live.paired.wait(), self.settings.limits.pair_timeout)
            return
        await self.end(live, Event.TUNNEL_TIMEOUT)

    # -- the end -------------------------------------------------------------------------
    async def end(self, live: LiveSession, event: Event) -> bool:
        """End ``live`` because of ``event``: close its tunnels, write the row, its
        time entry and the audit record in one transaction. Idempotent; True if this
        call ended it."""
        async with self._end_lock:
            if live.state is State.ENDED:
                return False
            _, reason = next_state(live.state, event)
            assert reason is not None, f"{event} does not end a session"
            billed = live.state is BILLED
            live.state = State.ENDED
        audit: list[AuditEvent] = []
        if billed and not live.ready.is_set():
            # "ready" travels on the agent's control link, the tunnel close on
            # another connection: give the message a moment to arrive.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.ready.wait(), self.ready_grace)
            if not live.ready.is_set():
                billed = False  # the SSH login never succeeded: nothing to bill
                audit.append(
                    AuditEvent(
                        self.clock.now(), "session_unauthenticated", live.row.agent_id, live.row.id
                    )
                )
        actual = 0
        mono = self.clock.monotonic()
        if billed and live.started_mono is not None:
            # Whole seconds, rounded up: a connected session is never 0 s long.
            actual = math.ceil(mono - live.started_mono)
        now = live.wall(mono)
        audit.append(
            AuditEvent(
                now,
                "session_end",
                live.row.technician_id,
                live.row.id,
                {"reason": reason.value, "actual_seconds": actual},
            )
        )
        try:
            await self.ledger.close(live, reason, now, actual if billed else None, audit)
        finally:
            self._release(live, reason)
            self.metrics.session_ended(reason.value)
        extra = {"session": live.row.id, "reason": reason.value, "seconds": actual}
        log.info("session %s ended: %s after %ss", live.row.id, reason.value, actual, extra=extra)
        await self._notify_end(live, reason)
        if self.on_phase is not None and live.ready.is_set():
            await self.on_phase(live.row.agent_id, live.row.id, "after")
        return True

    def _release(self, live: LiveSession, reason: EndReason) -> None:
        """Forget the session and let go of everything waiting on it."""
        self.live.pop(live.row.id, None)
        live.paired.set()  # release a tunnel end still waiting for its partner
        live.finished.set()
        if not live.accepted.done():
            live.accepted.set_result(reason.value)
        code = GOING_AWAY if reason is EndReason.RELAY_SHUTDOWN else NORMAL_CLOSURE
        why = close_reason(reason.value, live.end_detail)  # the technician's one line
        for end in live.ends.values():
            asyncio.ensure_future(end.close(code, why))
        for task in live.tasks:
            if task is not asyncio.current_task():
                task.cancel()

    async def _notify_end(self, live: LiveSession, reason: EndReason) -> None:
        """Tell the agent that a session it serves is over (best effort)."""
        if not self.channel.online(live.row.agent_id):
            return
        body = {"session_id": live.row.id, "reason": reason.value}
        try:
            await self.channel.send(live.row.agent_id, Message("session_end", body))
        except Exception as exc:  # its link dropped meanwhile: it learns from the tunnel
            log.info("session %s: end notice not delivered: %s", live.row.id, exc)

    # -- heartbeat, recovery, shutdown ---------------------------------------------------
    async def heartbeat_once(self) -> int:
        """Persist last-seen time and counters of every active session."""
        return await self.ledger.heartbeat(
            [live for live in self.live.values() if live.state is BILLED]
        )

    async def heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            try:
                await self.heartbeat_once()
            except Exception as exc:  # keep beating; the next one may succeed
                log.error("heartbeat not persisted: %s", exc)

    async def sweep_once(self) -> int:
        """End every session past a limit (see :mod:`relay.services.session_limits`);
        how many ended."""
        noise = self.settings.billing.activity_noise_bytes
        count = 0
        for live in list(self.live.values()):
            due = overdue(live, self.settings.limits, noise, self.clock.monotonic())
            if due is not None:
                live.end_detail = due[1]
                count += await self.end(live, due[0])
        return count

    async def sweep_forever(self) -> None:
        """One task for all sessions' limits, rather than a timer per session."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.sweep_once()
            except Exception as exc:  # keep sweeping; one bad end must not stop the limits
                log.error("session limits not enforced this round: %s", exc)

    async def recover(self) -> int:
        """Close sessions this node left open (a crash) at their last heartbeat."""
        return await self.ledger.recover()

    async def shutdown(self) -> None:
        """End every open session as ``relay_shutdown`` and write its entry."""
        for live in list(self.live.values()):
            await self.end(live, Event.SHUTDOWN)
