"""Help requests: clients ask (with a fresh snapshot), technicians take, work and
close them. The lifecycle's rules are :mod:`relay.core.help_requests`; every move is
written together with its audit record."""

from __future__ import annotations

import json
import logging
from typing import Any

from relay.core import help_requests as hr
from relay.core.authorization import may_read, may_serve
from relay.model import Agent, AuditEvent, HelpRequest, Keyset, SnapshotRecord, Technician
from relay.services.audit import Auditor
from relay.services.diagnostics import Diagnostics
from relay.services.names import Names
from relay.store.interface import Store
from shared.clock import Clock, iso
from shared.errors import ConflictError, NotFoundError, OutOfScopeError, RemoteProtocolError

log = logging.getLogger("qp.relay.requests")

STATUS_BYTES = 40_000  # of a client's request list, inside one 64 KiB message


def snapshot_meta(s: SnapshotRecord) -> dict[str, Any]:
    """A snapshot as lists show it (without its data)."""
    return {
        "id": s.id,
        "agent": s.agent_id,
        "taken_at": iso(s.taken_at),
        "kind": s.kind,
        "session_id": s.session_id,
        "request": hr.label(s.request_id) if s.request_id else None,
        "worst": s.worst,
    }


class HelpRequests:
    """The help-request queue of the relay."""

    def __init__(
        self,
        store: Store,
        diagnostics: Diagnostics,
        clock: Clock,
        auditor: Auditor,
        per_agent: int = 20,
    ) -> None:
        self.store = store
        self.diagnostics = diagnostics
        self.clock = clock
        self.auditor = auditor
        self.per_agent = per_agent  # limits.help_requests_per_agent: open ones at a time

    # -- from clients ------------------------------------------------------------------
    async def ask(self, agent: Agent, text: str, urgent: bool, snapshot: Any) -> dict[str, Any]:
        """A client's request, with the snapshot its agent took (kept if valid)."""
        text = hr.clean_text(text)
        if not text:
            return {"error": 'say what is wrong, e.g. qp-agent help "printer offline"'}
        waiting = await self.store.count_help_requests(agent.id, hr.ACTIVE)
        if waiting >= self.per_agent:
            # Checked before the snapshot is kept: a flood costs neither rows nor disk.
            await self.auditor.refused(
                "help_request_refused", agent.id, hr.LABEL, reason="too_many_open", open=waiting
            )
            return {
                "error": f"this machine has {waiting} open help requests, the most the IT "
                "company accepts; wait until one is resolved (qp-agent help --status)"
            }
        snapshot_id = None
        if isinstance(snapshot, dict):
            try:
                snapshot_id = await self.diagnostics.keep(agent.id, snapshot, "help")
            except RemoteProtocolError as exc:
                log.warning("help request from %s: snapshot refused: %s", agent.id, exc)
        now = self.clock.now()
        request = HelpRequest(
            0, agent.id, agent.customer_id, text, urgent, "open", now, now, snapshot_id=snapshot_id
        )
        # The number is the row's id: the store puts it into the audit's subject.
        audit = AuditEvent(now, "help_request", agent.id, hr.LABEL, {"urgent": urgent})
        number = await self.store.add_help_request(request, audit=(audit,))
        log.info("%s from %s%s", hr.label(number), agent.name, " (urgent)" if urgent else "")
        return {"number": number, "label": hr.label(number), "state": "open"}

    async def status(self, agent: Agent) -> list[dict[str, Any]]:
        """The client's own requests, as ``qp-agent help --status`` shows them: the
        newest that fit :data:`STATUS_BYTES` of JSON (one message to the agent),
        oldest first."""
        shown: list[dict[str, Any]] = []
        used = 0
        for r in reversed(await self.store.list_help_requests(agent_id=agent.id)):
            row = {
                "number": r.id,
                "label": hr.label(r.id),
                "text": r.text,
                "urgent": r.urgent,
                "state": r.state,
                "created_at": iso(r.created_at),
                "updated_at": iso(r.updated_at),
                "resolution": r.resolution,
            }
            used += len(json.dumps(row))
            if shown and used > STATUS_BYTES:
                break
            shown.append(row)
        return shown[::-1]

    # -- for technicians -------------------------------------------------------------
    async def visible(self, tech: Technician, ref: str) -> HelpRequest:
        """A request the technician may see; unknown and forbidden look the same."""
        number = hr.parse_number(ref)
        found = await self.store.get_help_request(number)
        message = f"no request {hr.label(number)} that you can see"
        if found is None:
            raise NotFoundError(message)
        if not may_serve(tech, found.customer_id):
            raise OutOfScopeError(message, "request", hr.label(number))
        return found

    async def queue(
        self, tech: Technician, open_only: bool, page: Keyset
    ) -> list[tuple[HelpRequest, dict[str, Any]]]:
        """One page of the requests not yet resolved (urgent first, then oldest
        first), each with its row as the queue shows it; ``page`` carries the
        technician's customers. Without the help grant, a billing login sees
        that requests exist, not what clients wrote."""
        states = ("open",) if open_only else hr.ACTIVE
        found = await self.store.help_request_queue(states, page)
        names = await Names.load(self.store)
        shown = [(r, await self.describe(r, names)) for r in found]
        if found and not may_read(tech, "help"):
            await self.store.audit(self.clock.now(), "grant_refused", tech.id, "", grant="help")
            for _, value in shown:
                value.update(text=None, findings=[])
        return shown

    async def show(self, tech: Technician, ref: str) -> dict[str, Any]:
        """One request with its snapshots and sessions."""
        found = await self.visible(tech, ref)
        value = await self.describe(found, await Names.load(self.store))
        value["snapshots"] = [
            snapshot_meta(s)
            for s in await self.store.list_snapshots(found.agent_id, limit=200)
            if s.request_id == found.id or s.id == found.snapshot_id
        ]
        label = hr.label(found.id)
        value["sessions"] = [
            s.id for s in await self.store.list_sessions(1000) if s.request == label
        ]
        return value

    async def describe(self, r: HelpRequest, names: Names) -> dict[str, Any]:
        """A request as the queue shows it, with its top findings."""
        findings: list[dict[str, Any]] = []
        if r.snapshot_id is not None:
            snap = await self.store.get_snapshot(r.snapshot_id)
            if snap is not None:
                findings = [f for f in snap.data.get("findings", []) if isinstance(f, dict)][:3]
        return {
            "number": r.id,
            "label": hr.label(r.id),
            "customer": names.customer(r.customer_id),
            "agent": r.agent_id,
            "agent_name": names.agent(r.agent_id),
            "text": r.text,
            "urgent": r.urgent,
            "state": r.state,
            "assigned_to": names.technician(r.assigned_to) if r.assigned_to else None,
            "created_at": iso(r.created_at),
            "updated_at": iso(r.updated_at),
            "resolution": r.resolution,
            "findings": [
                {"severity": _short(f.get("severity")), "title": _short(f.get("title"))}
                for f in findings
            ],
        }

    async def move(self, actor: Technician, found: HelpRequest, action: str, **changes: Any) -> str:
        """Apply a lifecycle move with its audit; ConflictError if the request moved
        meanwhile."""
        target = hr.next_state(action, found.state)
        now = self.clock.now()
        audit = AuditEvent(
            now,
            f"request_{action}",
            actor.id,
            hr.label(found.id),
            {"from": found.state, "to": target},
        )
        moved = await self.store.update_help_request(
            found.id, found.state, audit=(audit,), state=target, updated_at=now, **changes
        )
        if not moved:
            raise ConflictError("the request changed meanwhile; look at it again")
        return target

    async def take(self, tech: Technician, ref: str) -> dict[str, Any]:
        found = await self.visible(tech, ref)
        state = await self.move(tech, found, "take", assigned_to=tech.id)
        return {"label": hr.label(found.id), "state": state, "assigned_to": tech.name}

    async def close(self, tech: Technician, ref: str, resolution: str) -> dict[str, Any]:
        found = await self.visible(tech, ref)
        resolution = hr.clean_text(resolution)
        state = await self.move(tech, found, "resolve", resolution=resolution)
        return {"label": hr.label(found.id), "state": state, "resolution": resolution}

    async def link_session(self, tech: Technician, ref: str, agent_id: str) -> str:
        """Validate ``--request`` for a session on ``agent_id``; marks it in progress.
        Returns the label stored on the session (and so on its time entry)."""
        found = await self.visible(tech, ref)
        if found.agent_id != agent_id:
            raise NotFoundError(f"{hr.label(found.id)} was not asked from this agent")
        if found.state in ("open", "assigned"):
            await self.move(tech, found, "start", assigned_to=found.assigned_to or tech.id)
        return hr.label(found.id)


def _short(value: Any) -> Any:
    """A finding's field as a list row shows it: text cut to 200 characters, so a
    snapshot's long title never makes a queue page too large to send."""
    if isinstance(value, str):
        return value[:200]
    return value if isinstance(value, int | float) or value is None else None
