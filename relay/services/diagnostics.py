"""Diagnostics on the relay: ask agents for snapshots and keep a bounded history.

Snapshots arrive on the agent link as JSON and are parsed by the shared schema,
which caps and sanitises everything an agent says.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from relay.model import Keyset, SnapshotRecord
from relay.services.live_settings import LiveSettings, as_live
from relay.services.ports import AgentChannel
from relay.settings import Settings
from relay.store.interface import Store
from shared.clock import Clock
from shared.diagnostics import from_json, to_json
from shared.errors import NotFoundError, RemoteProtocolError, UnavailableError
from shared.protocol.messages import Message

log = logging.getLogger("qp.relay.diagnostics")

SEVERITY_ORDER = ("critical", "warning", "info")


def worst_severity(snapshot: dict[str, Any]) -> str | None:
    severities = {f.get("severity") for f in snapshot.get("findings", []) if isinstance(f, dict)}
    return next((s for s in SEVERITY_ORDER if s in severities), None)


class Diagnostics:
    """Snapshots: asked for, received, kept (bounded per agent), listed."""

    @property
    def settings(self) -> Settings:
        """The settings in force now: a reload swaps them between two uses."""
        return self._live.current

    def __init__(
        self, store: Store, channel: AgentChannel, clock: Clock, settings: Settings | LiveSettings
    ) -> None:
        self.store = store
        self.channel = channel
        self.clock = clock
        self._live = as_live(settings)
        self._pending: dict[str, tuple[str, asyncio.Future[int]]] = {}
        self._last_phase: dict[str, float] = {}
        self._with_before: set[str] = set()
        #: Snapshots kept since start; live views (and tests) wait on it to grow.
        self.kept = 0
        self._kept_changed = asyncio.Condition()

    async def keep(
        self,
        agent_id: str,
        raw: dict[str, Any],
        kind: str,
        session_id: str | None = None,
        request_id: int | None = None,
    ) -> int:
        """Validate and keep one snapshot; returns its id."""
        snapshot = from_json(raw)  # RemoteProtocolError: malformed, oversize, wrong version
        clean = to_json(snapshot)
        now = self.clock.now()
        record = SnapshotRecord(
            0,
            agent_id,
            snapshot.taken_at,
            now,
            kind,
            session_id,
            request_id,
            worst_severity(clean),
            clean,
        )
        snapshot_id = await self.store.add_snapshot(record, self.settings.snapshots_per_agent)
        async with self._kept_changed:
            self.kept += 1
            self._kept_changed.notify_all()
        return snapshot_id

    async def wait_kept(self, count: int) -> None:
        """Return once :attr:`kept` has reached ``count``."""
        async with self._kept_changed:
            await self._kept_changed.wait_for(lambda: self.kept >= count)

    async def refresh(self, agent_id: str, session_id: str | None = None, phase: str = "") -> int:
        """Ask the agent for a fresh snapshot and wait for it; returns its id."""
        ref = secrets.token_hex(8)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[ref] = (agent_id, future)
        body: dict[str, Any] = {"ref": ref, "relay_time": self.clock.now().isoformat()}
        if session_id:
            body.update(session_id=session_id, phase=phase)
        try:
            await self.channel.send(agent_id, Message("diag_request", body))
            return await asyncio.wait_for(future, self.settings.diag_timeout)
        except TimeoutError:
            raise UnavailableError("the agent sent no diagnostics in time") from None
        finally:
            self._pending.pop(ref, None)

    async def received(self, agent_id: str, body: dict[str, Any]) -> None:
        """A ``diag_snapshot`` from an agent (an answer, or a session phase)."""
        session_id = body.get("session_id") or None
        phase = body.get("phase") or ""
        kind = {"before": "session_start", "after": "session_end"}.get(phase, "refresh")
        pending = self._pending.get(body["ref"])
        if pending is not None and pending[0] != agent_id:
            pending = None  # an agent cannot answer another agent's request
        if session_id is not None:
            row = await self.store.get_session(session_id)
            if row is None or row.agent_id != agent_id:
                session_id = None
        try:
            snapshot_id = await self.keep(agent_id, body["snapshot"], kind, session_id)
        except RemoteProtocolError as exc:
            if pending is not None and not pending[1].done():
                pending[1].set_exception(exc)
            raise
        if pending is not None and not pending[1].done():
            pending[1].set_result(snapshot_id)

    async def session_phase(self, agent_id: str, session_id: str, phase: str) -> None:
        """Ask for the before/after snapshot of a session; best effort.

        A burst of short sessions (scripts running ``qp exec`` in a loop) must not
        keep the client's machine busy with diagnostics: within
        ``session_snapshot_interval`` of the agent's last one, a session's
        "before" is skipped, and so is its "after" unless it had a "before"."""
        if not self.channel.online(agent_id):
            return
        now = self.clock.monotonic()
        interval = self.settings.session_snapshot_interval
        recent = now - self._last_phase.get(agent_id, -1e9) < interval
        had_before = session_id in self._with_before
        self._with_before.discard(session_id)
        if recent and not (phase == "after" and had_before):
            return
        self._last_phase[agent_id] = now
        if phase == "before":
            self._with_before.add(session_id)
        body = {
            "ref": secrets.token_hex(8),
            "session_id": session_id,
            "phase": phase,
            "relay_time": self.clock.now().isoformat(),
        }
        try:
            await self.channel.send(agent_id, Message("diag_request", body))
        except Exception as exc:  # best effort: the session goes on without it
            log.info("no %s snapshot asked of %s: %s", phase, agent_id, exc)

    # -- reading the history ---------------------------------------------------------
    async def of_agent(self, agent_id: str, snapshot_id: int | None) -> SnapshotRecord:
        """Snapshot ``snapshot_id`` of the agent, or its latest."""
        if snapshot_id is None:
            found = await self.store.list_snapshots(agent_id, limit=1)
            if not found:
                raise NotFoundError("no diagnostics yet for this agent; use --refresh")
            return found[0]
        snap = await self.store.get_snapshot(snapshot_id)
        if snap is None or snap.agent_id != agent_id:
            raise NotFoundError(f"no snapshot {snapshot_id} for this agent")
        return snap

    async def latest(self, agent_id: str, online: bool) -> SnapshotRecord:
        """The agent's latest snapshot; a fresh one when none is stored yet and the
        agent is online (a technician asking has no reason to ask twice)."""
        found = await self.store.list_snapshots(agent_id, limit=1)
        if found:
            return found[0]
        if not online:
            raise NotFoundError("no diagnostics yet for this agent, and it is offline")
        return await self.of_agent(agent_id, await self.refresh(agent_id))

    async def history(self, agent_id: str, page: Keyset) -> list[SnapshotRecord]:
        """One page of the agent's snapshots, newest first."""
        return await self.store.list_snapshots(agent_id, page=page)

    async def pair(
        self, agent_id: str, a: int | None, b: int | None
    ) -> tuple[SnapshotRecord, SnapshotRecord]:
        """Two snapshots to compare: ``a`` and ``b``, by default the last two."""
        if a is None:
            latest = await self.store.list_snapshots(agent_id, limit=2)
            if len(latest) < 2:
                raise NotFoundError(
                    "fewer than two snapshots of this agent; take one with --refresh"
                )
            return latest[1], latest[0]
        return await self.of_agent(agent_id, a), await self.of_agent(agent_id, b)
