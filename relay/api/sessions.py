"""Console methods about sessions, session policy, support codes and recordings."""

from __future__ import annotations

import base64
from typing import Any

from relay.api.context import ADMIN, ALL, STAFF, Context, Method
from relay.api.grants import require_grant
from relay.api.params import Params, keyset, name, page, whole
from relay.core import help_requests as hr
from relay.core import policy as policies
from relay.core.authorization import may_serve, sees_all_customers
from relay.model import Session
from relay.services.directory import in_scope
from relay.services.names import Names
from relay.services.sessions import FORWARD_KINDS, SESSION_KINDS, OpenRequest
from shared.clock import iso
from shared.errors import NotFoundError, OutOfScopeError, UsageError
from shared.keys import parse_public_key


async def session_open(ctx: Context, params: Params) -> Any:
    """Create a session, offer it to the agent, and hand the technician what it
    needs to dial the tunnel: token, per-session certificate, host CA."""
    services, tech = ctx.services, ctx.tech
    ref = name(params, "agent")
    try:
        agent = await services.directory.agent(tech, ref)
    except OutOfScopeError:
        raise  # audited by the dispatcher, as every reference out of scope
    except NotFoundError:
        # Unknown (or revoked): the caller cannot tell, the audit log can.
        await services.auditor.refused("session_refused", tech.id, ref[:64])
        raise
    kind = name(params, "kind")
    if kind not in SESSION_KINDS:
        raise UsageError(f"kind must be one of {', '.join(SESSION_KINDS)}")
    request = name(params, "request", required=False) or None
    user_key = parse_public_key(name(params, "public_key"))
    if not services.directory.online(agent.id):
        raise NotFoundError(f"agent {agent.name!r} ({agent.id}) is offline")
    if request:
        request = await services.requests.link_session(tech, request, agent.id)
    policy = await services.directory.effective_policy(agent)
    emit = ctx.emit

    async def on_state(session_id: str, state: str) -> None:
        if emit is not None:
            await emit({"session_id": session_id, "state": state})

    opened = await services.sessions.open(
        OpenRequest(
            agent=agent,
            technician=tech,
            kind=kind,
            user_key=user_key,
            policy=policy,
            permit_forwarding=kind in FORWARD_KINDS and policies.permits_forwarding(policy),
            request=request,
            on_state=on_state if emit is not None else None,
        )
    )
    return {
        "session_id": opened.session_id,
        "agent_id": agent.id,
        "agent_name": agent.name,
        "tunnel_url": opened.tunnel_url,
        "tunnel_token": opened.tunnel_token,
        "certificate": opened.certificate,
        "host_ca": opened.host_ca,
        "relay_time": iso(services.clock.now()),  # the console names a clock difference
    }


def session_json(s: Session, names: Names) -> dict[str, Any]:
    """A session as ``qp sessions`` shows it."""
    return {
        "id": s.id,
        "agent": s.agent_id,
        "agent_name": names.agent(s.agent_id),
        "technician": names.technician(s.technician_id),
        "kind": s.kind,
        "request": s.request,
        "state": s.state,
        "end_reason": s.end_reason,
        "created_at": iso(s.created_at),
        "started_at": iso(s.started_at),
        "ended_at": iso(s.ended_at),
        "bytes_to_agent": s.bytes_to_agent,
        "bytes_to_technician": s.bytes_to_technician,
        "active_minutes": s.active_minutes,
    }


async def session_list(ctx: Context, params: Params) -> Any:
    """One page of the sessions of the caller's customers, newest first."""
    asked = in_scope(ctx.tech, keyset(params, ("time", "text")))
    found = await ctx.services.sessions.recent(asked.limit, asked)
    names = await ctx.services.directory.names()
    return page(found, asked, lambda s: session_json(s, names), lambda s: (s.created_at, s.id))


async def session_end(ctx: Context, params: Params) -> Any:
    """The technician ends a running session (``technician_ended``)."""
    sid = name(params, "session")
    await ctx.services.sessions.end_by_technician(sid, ctx.tech, sees_all_customers(ctx.tech))
    return {"id": sid, "ended": True}


async def policy_set(ctx: Context, params: Params) -> Any:
    """Merge settings into a customer's policy or an agent's overrides; a setting
    given as null is removed (falls back to the customer's or the default)."""
    raw = params.get("policy")
    if not isinstance(raw, dict):
        raise UsageError("policy must be an object")
    changes = policies.validate(raw)
    clear = [k for k, v in raw.items() if v is None and k != "sftp_root"]
    agent = name(params, "agent") if "agent" in params else None
    customer = None if agent is not None else name(params, "customer")
    directory = ctx.services.directory
    subject, effective = await directory.set_policy(
        ctx.tech, changes, clear, agent_ref=agent, customer_name=customer
    )
    return {"subject": subject, "policy": effective, "pinned": directory.pinned(subject)}


async def policy_show(ctx: Context, params: Params) -> Any:
    agent = name(params, "agent") if "agent" in params else None
    customer = None if agent is not None else name(params, "customer")
    directory = ctx.services.directory
    subject, effective = await directory.policy_of(ctx.tech, agent, customer)
    return {"subject": subject, "policy": effective, "pinned": directory.pinned(subject)}


async def support_code_create(ctx: Context, params: Params) -> Any:
    """A short single-use code for a client without an installed agent."""
    services = ctx.services
    customer = await services.directory.customer_named(ctx.tech, name(params, "customer"))
    ttl = whole(params, "ttl", 900, 60, 86400)
    request = name(params, "request", required=False) or None
    if request is not None and request.upper().startswith("REQ-"):
        # One of ours must be one the technician may see (a ticket number is free text).
        request = hr.label((await services.requests.visible(ctx.tech, request)).id)
    record, code = await services.enrollment.create_support_code(ctx.tech, customer, ttl, request)
    return {
        "id": record.id,
        "code": code,
        "customer": customer.name,
        "request": request,
        "expires_at": iso(record.expires_at),
        "command": (
            f"qp-agent support --relay {services.public_url} --code {code}"
            + services.trust_option()
        ),
    }


async def session_recording(ctx: Context, params: Params) -> Any:
    """A piece of a session's uploaded terminal recording (base64), from ``offset``."""
    sid = name(params, "session")
    await require_grant(ctx, "recordings", sid, "no recording for that session")
    row = await ctx.services.sessions.stored(sid)
    if row is None:
        raise NotFoundError("no recording for that session")
    if not may_serve(ctx.tech, row.customer_id):
        raise OutOfScopeError("no recording for that session", "session", sid)
        raise NotFoundError("no recording for that session")
    if not may_serve(ctx.tech, row.customer_id):
        raise OutOfScopeError("no recording for that session", "session", sid)
    offset = whole(params, "offset", 0, 0, 2**40)
    data, total = ctx.services.recordings.read(row.id, offset)
    return {"data": base64.b64encode(data).decode(), "offset": offset, "total": total}


METHODS: dict[str, Method] = {
    "session.open": Method(session_open, STAFF),
    "session.list": Method(session_list, ALL),
    "session.end": Method(session_end, STAFF),
    "session.recording": Method(session_recording, ALL),
    "policy.set": Method(policy_set, ADMIN),
    "policy.show": Method(policy_show, ALL),
    "support_code.create": Method(support_code_create, STAFF),
}
