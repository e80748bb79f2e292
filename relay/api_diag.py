"""Console API: diagnostics snapshots, the help-request queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relay import help_requests as hr
from relay.api import Params, _int, _str, method
from relay.authz import may_serve, require_role, resolve_agent, sees_all_customers
from relay.model import HelpRequest, SnapshotRecord
from shared.clock import iso
from shared.errors import ConflictError, NotFoundError, UnavailableError

if TYPE_CHECKING:
    from relay.app import Relay


def _snapshot_meta(s: SnapshotRecord) -> dict[str, Any]:
    return {
        "id": s.id,
        "agent": s.agent_id,
        "taken_at": iso(s.taken_at),
        "kind": s.kind,
        "session_id": s.session_id,
        "request": hr.label(s.request_id) if s.request_id else None,
        "worst": s.worst,
    }


async def _agent_snapshot(relay: Relay, agent_id: str, ref: int | None) -> SnapshotRecord:
    if ref is None:
        found = await relay.store.list_snapshots(agent_id, limit=1)
        if not found:
            raise NotFoundError("no diagnostics yet for this agent; use --refresh")
        return found[0]
    snap = await relay.store.get_snapshot(ref)
    if snap is None or snap.agent_id != agent_id:
        raise NotFoundError(f"no snapshot {ref} for this agent")
    return snap


@method("diag.get")
async def diag_get(relay: Relay, tech: Any, params: Params) -> Any:
    """The latest (or a fresh, with ``refresh``) snapshot of an agent."""
    agent = await resolve_agent(relay.store, tech, _str(params, "agent"))
    if params.get("refresh"):
        if not relay.links.online(agent.id):
            raise UnavailableError(
                f"agent {agent.name!r} is offline; drop --refresh to see the last"
            )
        snapshot_id = await relay.diag.refresh(agent.id)
        snap = await _agent_snapshot(relay, agent.id, snapshot_id)
    else:
        ref = params.get("id")
        snap = await _agent_snapshot(relay, agent.id, ref if isinstance(ref, int) else None)
    return {**_snapshot_meta(snap), "agent_name": agent.name, "snapshot": snap.data}


@method("diag.list")
async def diag_list(relay: Relay, tech: Any, params: Params) -> Any:
    agent = await resolve_agent(relay.store, tech, _str(params, "agent"))
    limit = _int(params, "limit", 50, 1, 1000)
    return [_snapshot_meta(s) for s in await relay.store.list_snapshots(agent.id, limit=limit)]


@method("diag.pair")
async def diag_pair(relay: Relay, tech: Any, params: Params) -> Any:
    """Two snapshots to compare: ``a`` and ``b`` (ids), default the last two."""
    agent = await resolve_agent(relay.store, tech, _str(params, "agent"))
    a, b = params.get("a"), params.get("b")
    if a is None:
        latest = await relay.store.list_snapshots(agent.id, limit=2)
        if len(latest) < 2:
            raise NotFoundError("fewer than two snapshots of this agent; take one with --refresh")
        older, newer = latest[1], latest[0]
    else:
        older = await _agent_snapshot(relay, agent.id, int(a))
        newer = await _agent_snapshot(relay, agent.id, int(b) if b is not None else None)
    return {
        "a": {**_snapshot_meta(older), "snapshot": older.data},
        "b": {**_snapshot_meta(newer), "snapshot": newer.data},
    }


async def _request_json(relay: Relay, r: HelpRequest) -> dict[str, Any]:
    agent = await relay.store.get_agent(r.agent_id)
    customer = await relay.store.get_customer(r.customer_id)
    assignee = await relay.store.get_technician(r.assigned_to) if r.assigned_to else None
    findings: list[dict[str, Any]] = []
    if r.snapshot_id is not None:
        snap = await relay.store.get_snapshot(r.snapshot_id)
        if snap is not None:
            findings = [f for f in snap.data.get("findings", []) if isinstance(f, dict)][:3]
    return {
        "number": r.id,
        "label": hr.label(r.id),
        "customer": customer.name if customer else r.customer_id,
        "agent": r.agent_id,
        "agent_name": agent.name if agent else r.agent_id,
        "text": r.text,
        "urgent": r.urgent,
        "state": r.state,
        "assigned_to": assignee.name if assignee else None,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
        "resolution": r.resolution,
        "findings": [{"severity": f.get("severity"), "title": f.get("title")} for f in findings],
    }


async def visible_request(relay: Relay, tech: Any, ref: str) -> HelpRequest:
    """A request the technician may see; unknown and forbidden look the same."""
    number = hr.parse_number(ref)
    found = await relay.store.get_help_request(number)
    if found is None or not may_serve(tech, found.customer_id):
        raise NotFoundError(f"no request {hr.label(number)} that you can see")
    return found


@method("request.queue")
async def request_queue(relay: Relay, tech: Any, params: Params) -> Any:
    """Requests not yet resolved: urgent first, then oldest first."""
    states = ("open",) if params.get("open_only") else hr.ACTIVE
    found = [
        r
        for r in await relay.store.list_help_requests(states)
        if sees_all_customers(tech) or r.customer_id in tech.customer_ids
    ]
    found.sort(key=lambda r: (not r.urgent, r.created_at, r.id))
    return [await _request_json(relay, r) for r in found]


@method("request.show")
async def request_show(relay: Relay, tech: Any, params: Params) -> Any:
    found = await visible_request(relay, tech, _str(params, "request"))
    value = await _request_json(relay, found)
    value["snapshots"] = [
        _snapshot_meta(s)
        for s in await relay.store.list_snapshots(found.agent_id, limit=200)
        if s.request_id == found.id or s.id == found.snapshot_id
    ]
    sessions = [s for s in await relay.store.list_sessions(1000) if s.ticket == hr.label(found.id)]
    value["sessions"] = [s.id for s in sessions]
    return value


async def move(relay: Relay, tech: Any, found: HelpRequest, action: str, **changes: Any) -> str:
    """Apply a lifecycle move, audited; ConflictError if the request moved meanwhile."""
    target = hr.next_state(action, found.state)
    now = relay.clock.now()
    if not await relay.store.update_help_request(
        found.id, found.state, state=target, updated_at=now, **changes
    ):
        raise ConflictError("the request changed meanwhile; look at it again")
    await relay.store.audit(
        now,
        f"request_{action}",
        tech.id if tech else "agent",
        hr.label(found.id),
        **{"from": found.state, "to": target},
    )
    return target


@method("request.take")
async def request_take(relay: Relay, tech: Any, params: Params) -> Any:
    require_role(tech, "admin", "technician")
    found = await visible_request(relay, tech, _str(params, "request"))
    state = await move(relay, tech, found, "take", assigned_to=tech.id)
    return {"label": hr.label(found.id), "state": state, "assigned_to": tech.name}


@method("request.close")
async def request_close(relay: Relay, tech: Any, params: Params) -> Any:
    require_role(tech, "admin", "technician")
    found = await visible_request(relay, tech, _str(params, "request"))
    resolution = hr.clean_text(_str(params, "resolution"))
    state = await move(relay, tech, found, "resolve", resolution=resolution)
    return {"label": hr.label(found.id), "state": state, "resolution": resolution}


async def link_session(relay: Relay, tech: Any, ref: str, agent_id: str) -> str:
    """Validate ``--request`` for a session on ``agent_id``; marks it in progress.
    Returns the label stored on the session (and so on its time entry)."""
    found = await visible_request(relay, tech, ref)
    if found.agent_id != agent_id:
        raise NotFoundError(f"{hr.label(found.id)} was not asked from this agent")
    if found.state in ("open", "assigned"):
        await move(relay, tech, found, "start", assigned_to=found.assigned_to or tech.id)
    return hr.label(found.id)
