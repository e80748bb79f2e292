"""Console API methods about sessions, time entries, policies and support codes."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from relay import policy as policies
from relay.api import EMIT, Params, _customer_by_name, _customer_names, _int, _str, method
from relay.authz import require_role, resolve_agent, sees_all_customers
from relay.ids import new_id, token_hash
from relay.model import Session, SupportCode, Technician
from relay.support_codes import new_code, normalise_code
from shared.clock import iso
from shared.errors import NotFoundError, UsageError
from shared.keys import certificate_text, parse_public_key
from shared.protocol.messages import Message
from shared.protocol.session_state import Event

if TYPE_CHECKING:
    from relay.app import Relay

SESSION_KINDS = ("exec", "shell", "files", "forward", "proxy")
PTY_KINDS = ("shell", "proxy")
FORWARD_KINDS = ("forward", "proxy")


@method("session.open")
async def session_open(relay: Relay, tech: Technician, params: Params) -> Any:
    """Create a session, offer it to the agent, and hand the technician what it
    needs to dial the tunnel: token, per-session certificate, host CA."""
    require_role(tech, "admin", "technician")
    ref = _str(params, "agent")
    try:
        agent = await resolve_agent(relay.store, tech, ref)
    except NotFoundError:
        # Unknown or forbidden: the caller cannot tell, the audit log can.
        await relay.store.audit(relay.clock.now(), "session_refused", tech.id, ref[:64])
        raise
    kind = _str(params, "kind")
    if kind not in SESSION_KINDS:
        raise UsageError(f"kind must be one of {', '.join(SESSION_KINDS)}")
    request = _str(params, "request", required=False) or None
    user_key = parse_public_key(_str(params, "public_key"))
    if not relay.links.online(agent.id):
        raise NotFoundError(f"agent {agent.name!r} ({agent.id}) is offline")
    if request:
        from relay.api_diag import link_session

        request = await link_session(relay, tech, request, agent.id)
    customer = await relay.store.get_customer(agent.customer_id)
    effective = policies.effective(customer.policy if customer else {}, agent.policy)
    forwarding = kind in FORWARD_KINDS and policies.permits_forwarding(effective)
    sessions = relay.sessions
    live, tokens = await sessions.create(agent.id, tech.id, agent.customer_id, kind, request)
    sid = live.row.id
    now = relay.clock.now()
    await relay.store.audit(
        now, "session_open", tech.id, sid, agent=agent.id, kind=kind, request=request or ""
    )
    cert = relay.authorities.sign_session_user(
        user_key,
        sid,
        tech.id,
        now,
        relay.settings.limits.cert_minutes,
        permit_pty=kind in PTY_KINDS,
        permit_port_forwarding=forwarding,
    )
    await relay.store.audit(now, "cert_issued", tech.id, sid, principal=f"session:{sid}")
    tunnel_url = f"{relay.public_url}/v1/tunnel/{sid}"
    await sessions.advance(live, Event.OFFER)
    offer = {
        "session_id": sid,
        "tunnel_url": tunnel_url,
        "tunnel_token": tokens["agent"],
        "technician": tech.name,
        "kind": kind,
        "request": request or "",
        "policy": effective,
    }
    emit = EMIT.get()
    if emit is not None:

        async def on_state(state: str) -> None:
            await emit({"session_id": sid, "state": state})

        live.on_state = on_state
    try:
        await relay.links.send(agent.id, Message("session_offer", offer))
    except Exception:
        await sessions.end(live, Event.AGENT_OFFLINE)
        raise
    await sessions.wait_accept(live)
    return {
        "session_id": sid,
        "agent_id": agent.id,
        "agent_name": agent.name,
        "tunnel_url": tunnel_url,
        "tunnel_token": tokens["technician"],
        "certificate": certificate_text(cert),
        "host_ca": relay.authorities.host_ca_public,
    }


def session_json(s: Session, agents: dict[str, str], techs: dict[str, str]) -> dict[str, Any]:
    return {
        "id": s.id,
        "agent": s.agent_id,
        "agent_name": agents.get(s.agent_id, s.agent_id),
        "technician": techs.get(s.technician_id, s.technician_id),
        "kind": s.kind,
        "request": s.ticket,
        "state": s.state,
        "end_reason": s.end_reason,
        "created_at": iso(s.created_at),
        "started_at": iso(s.started_at),
        "ended_at": iso(s.ended_at),
        "bytes_to_agent": s.bytes_to_agent,
        "bytes_to_technician": s.bytes_to_technician,
        "active_minutes": s.active_minutes,
    }


async def _names(relay: Relay) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    agents = {a.id: a.name for a in await relay.store.list_agents()}
    techs = {t.id: t.name for t in await relay.store.list_technicians()}
    return agents, techs, await _customer_names(relay)


@method("session.list")
async def session_list(relay: Relay, tech: Technician, params: Params) -> Any:
    agents, techs, _ = await _names(relay)
    limit = _int(params, "limit", 200, 1, 10000)
    return [
        session_json(s, agents, techs)
        for s in await relay.store.list_sessions(limit)
        if sees_all_customers(tech) or s.customer_id in tech.customer_ids
    ]


@method("session.end")
async def session_end(relay: Relay, tech: Technician, params: Params) -> Any:
    """The technician ends a running session (``technician_ended``)."""
    require_role(tech, "admin", "technician")
    sid = _str(params, "session")
    live = relay.sessions.live.get(sid)
    if live is None or not (sees_all_customers(tech) or live.row.technician_id == tech.id):
        raise NotFoundError(f"no running session {sid!r} of yours")
    await relay.sessions.end(live, Event.TECHNICIAN_ENDED)
    return {"id": sid, "ended": True}


def _policy_params(params: Params) -> dict[str, Any]:
    raw = params.get("policy")
    if not isinstance(raw, dict):
        raise UsageError("policy must be an object")
    return policies.validate(raw)


@method("policy.set")
async def policy_set(relay: Relay, tech: Technician, params: Params) -> Any:
    """Merge settings into a customer's policy or an agent's overrides; a setting
    given as null is removed (falls back to the customer's or the default)."""
    require_role(tech, "admin")
    changes = _policy_params(params)
    clear = [k for k, v in params["policy"].items() if v is None and k != "sftp_root"]
    if "agent" in params:
        agent = await resolve_agent(relay.store, tech, _str(params, "agent"))
        merged = {**agent.policy, **changes}
        for key in clear:
            merged.pop(key, None)
        await relay.store.set_agent_policy(agent.id, merged)
        subject, customer_policy = agent.id, None
        customer = await relay.store.get_customer(agent.customer_id)
        customer_policy = customer.policy if customer else {}
        agent_policy = merged
    else:
        customer = await _customer_by_name(relay, tech, _str(params, "customer"))
        merged = {**customer.policy, **changes}
        for key in clear:
            merged.pop(key, None)
        await relay.store.set_customer_policy(customer.id, merged)
        subject, customer_policy, agent_policy = customer.id, merged, {}
    await relay.store.audit(relay.clock.now(), "policy_set", tech.id, subject, **changes)
    return {"subject": subject, "policy": policies.effective(customer_policy or {}, agent_policy)}


@method("policy.show")
async def policy_show(relay: Relay, tech: Technician, params: Params) -> Any:
    if "agent" in params:
        agent = await resolve_agent(relay.store, tech, _str(params, "agent"))
        customer = await relay.store.get_customer(agent.customer_id)
        cpol = customer.policy if customer else {}
        return {"subject": agent.id, "policy": policies.effective(cpol, agent.policy)}
    customer = await _customer_by_name(relay, tech, _str(params, "customer"))
    return {"subject": customer.id, "policy": policies.effective(customer.policy, {})}


@method("support_code.create")
async def support_code_create(relay: Relay, tech: Technician, params: Params) -> Any:
    """A short single-use code for a client without an installed agent."""
    require_role(tech, "admin", "technician")
    customer = await _customer_by_name(relay, tech, _str(params, "customer"))
    ttl = _int(params, "ttl", 900, 60, 86400)
    request = _str(params, "request", required=False) or None
    now = relay.clock.now()
    code = new_code()
    record = SupportCode(
        new_id("sup"), customer.id, request, now + timedelta(seconds=ttl), tech.id, now
    )
    await relay.store.add_support_code(record, token_hash(normalise_code(code)))
    await relay.store.audit(now, "support_code_create", tech.id, record.id, customer=customer.id)
    return {
        "id": record.id,
        "code": code,
        "customer": customer.name,
        "request": request,
        "expires_at": iso(record.expires_at),
        "command": f"qp-agent support --relay {relay.public_url} --code {code}",
    }


@method("session.recording")
async def session_recording(relay: Relay, tech: Technician, params: Params) -> Any:
    """A piece of a session's uploaded terminal recording (base64), from ``offset``."""
    sid = _str(params, "session")
    row = await relay.store.get_session(sid)
    if row is None or not (sees_all_customers(tech) or row.customer_id in tech.customer_ids):
        raise NotFoundError("no recording for that session")
    offset = _int(params, "offset", 0, 0, 2**40)
    data, total = relay.recordings.read(row.id, offset)
    return {"data": base64.b64encode(data).decode(), "offset": offset, "total": total}
