"""Diagnostics on the relay: ask agents for snapshots, keep a bounded history,
take help requests from clients.

Snapshots arrive on the agent link as JSON and are parsed by the shared schema,
which caps and sanitises everything an agent says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import TYPE_CHECKING, Any

from relay.help_requests import clean_text, label
from relay.model import Agent, HelpRequest, SnapshotRecord
from shared.clock import iso
from shared.diagnostics import from_json
from shared.errors import RemoteProtocolError, UnavailableError
from shared.protocol.messages import Message

if TYPE_CHECKING:
    from relay.app import Relay

log = logging.getLogger("qp.relay.diag")

SEVERITY_ORDER = ("critical", "warning", "info")


def worst_severity(snapshot: dict[str, Any]) -> str | None:
    severities = {f.get("severity") for f in snapshot.get("findings", []) if isinstance(f, dict)}
    return next((s for s in SEVERITY_ORDER if s in severities), None)


class Diagnostics:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._pending: dict[str, tuple[str, asyncio.Future[int]]] = {}
        self._last_phase: dict[str, float] = {}
        self._with_before: set[str] = set()
        self._interval = relay.settings.session_snapshot_interval

    async def store(
        self,
        agent_id: str,
        raw: dict[str, Any],
        kind: str,
        session_id: str | None = None,
        request_id: int | None = None,
    ) -> int:
        """Validate and keep one snapshot; returns its id."""
        snapshot = from_json(raw)  # RemoteProtocolError: malformed, oversize, wrong version
        from shared.diagnostics import to_json

        clean = to_json(snapshot)
        now = self.relay.clock.now()
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
        return await self.relay.store.add_snapshot(record, self.relay.settings.snapshots_per_agent)

    async def refresh(self, agent_id: str, session_id: str | None = None, phase: str = "") -> int:
        """Ask the agent for a fresh snapshot and wait for it; returns its id."""
        ref = secrets.token_hex(8)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[ref] = (agent_id, future)
        body: dict[str, Any] = {"ref": ref, "relay_time": self.relay.clock.now().isoformat()}
        if session_id:
            body.update(session_id=session_id, phase=phase)
        try:
            await self.relay.links.send(agent_id, Message("diag_request", body))
            return await asyncio.wait_for(future, self.relay.settings.diag_timeout)
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
            row = await self.relay.store.get_session(session_id)
            if row is None or row.agent_id != agent_id:
                session_id = None
        try:
            snapshot_id = await self.store(agent_id, body["snapshot"], kind, session_id)
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
        if not self.relay.links.online(agent_id):
            return
        now = self.relay.clock.monotonic()
        recent = now - self._last_phase.get(agent_id, -1e9) < self._interval
        had_before = session_id in self._with_before
        self._with_before.discard(session_id)
        if recent and not (phase == "after" and had_before):
            return
        self._last_phase[agent_id] = now
        if phase == "before":
            self._with_before.add(session_id)
        with contextlib.suppress(Exception):
            await self.relay.links.send(
                agent_id,
                Message(
                    "diag_request",
                    {
                        "ref": secrets.token_hex(8),
                        "session_id": session_id,
                        "phase": phase,
                        "relay_time": self.relay.clock.now().isoformat(),
                    },
                ),
            )

    # -- help requests from clients ---------------------------------------------------
    async def help_request(self, agent: Agent, body: dict[str, Any]) -> dict[str, Any]:
        text = clean_text(body["text"])
        if not text:
            return {"error": 'say what is wrong, e.g. qp-agent help "printer offline"'}
        snapshot_id = None
        if isinstance(body.get("snapshot"), dict):
            try:
                snapshot_id = await self.store(agent.id, body["snapshot"], "help")
            except RemoteProtocolError as exc:
                log.warning("help request from %s: snapshot refused: %s", agent.id, exc)
        now = self.relay.clock.now()
        number = await self.relay.store.add_help_request(
            HelpRequest(
                0,
                agent.id,
                agent.customer_id,
                text,
                bool(body["urgent"]),
                "open",
                now,
                now,
                snapshot_id=snapshot_id,
            )
        )
        await self.relay.store.audit(
            now, "help_request", agent.id, label(number), urgent=bool(body["urgent"])
        )
        log.info("%s from %s%s", label(number), agent.name, " (urgent)" if body["urgent"] else "")
        return {"number": number, "label": label(number), "state": "open"}

    async def help_status(self, agent: Agent) -> list[dict[str, Any]]:
        return [
            {
                "number": r.id,
                "label": label(r.id),
                "text": r.text,
                "urgent": r.urgent,
                "state": r.state,
                "created_at": iso(r.created_at),
                "updated_at": iso(r.updated_at),
                "resolution": r.resolution,
            }
            for r in await self.relay.store.list_help_requests(agent_id=agent.id)
        ]
