"""Console methods of the directory: who am I, customers, technicians, enrollment
tokens, agents, and the node's status."""

from __future__ import annotations

from typing import Any

from relay.api.context import ADMIN, ALL, STAFF, Context, Method
from relay.api.params import Params, name, names, whole
from relay.core.authorization import ROLES
from shared.clock import iso
from shared.errors import UsageError


async def whoami(ctx: Context, params: Params) -> Any:
    tech, services = ctx.tech, ctx.services
    return {
        "id": tech.id,
        "name": tech.name,
        "role": tech.role,
        "level": tech.level,
        "relay_id": services.relay_id,
        "host_ca": services.authorities.host_ca_public,
    }


async def relay_status(ctx: Context, params: Params) -> Any:
    """What this node is doing now (operators, benchmarks)."""
    services = ctx.services
    return {
        "relay_id": services.relay_id,
        "live_sessions": len(services.sessions.live),
        "store_write_transactions": services.store_writes(),
    }


async def customer_add(ctx: Context, params: Params) -> Any:
    customer = await ctx.services.directory.add_customer(ctx.tech, name(params, "name"))
    return {"id": customer.id, "name": customer.name, "created_at": iso(customer.created_at)}


async def customer_list(ctx: Context, params: Params) -> Any:
    return [
        {"id": c.id, "name": c.name, "created_at": iso(c.created_at)}
        for c in await ctx.services.directory.customers(ctx.tech)
    ]


async def technician_add(ctx: Context, params: Params) -> Any:
    level = whole(params, "level", 1, 1, 3)
    role = name(params, "role", default="technician")
    if role not in ROLES:
        raise UsageError(f"role must be one of {', '.join(ROLES)}")
    customers = names(params, "customers")
    new, token = await ctx.services.directory.add_technician(
        ctx.tech, name(params, "name"), level, role, customers
    )
    return {"id": new.id, "name": new.name, "role": role, "level": level, "token": token}


async def technician_list(ctx: Context, params: Params) -> Any:
    directory = ctx.services.directory
    names = await directory.names()
    return [
        {
            "id": t.id,
            "name": t.name,
            "role": t.role,
            "level": t.level,
            "customers": [names.customer(c) for c in t.customer_ids],
        }
        for t in await directory.technicians()
    ]


async def enroll_token_create(ctx: Context, params: Params) -> Any:
    directory = ctx.services.directory
    customer = await directory.customer_named(ctx.tech, name(params, "customer"))
    ttl = whole(params, "ttl", 86400, 60, 30 * 86400)
    uses = whole(params, "uses", 1, 1, 10000)
    record, token = await directory.create_enroll_token(ctx.tech, customer, ttl, uses)
    return {
        "id": record.id,
        "token": token,
        "customer": customer.name,
        "expires_at": iso(record.expires_at),
        "uses": uses,
        "command": f"qp-agent enroll {ctx.services.public_url} --token {token}",
    }


async def enroll_token_revoke(ctx: Context, params: Params) -> Any:
    token_id = name(params, "id")
    await ctx.services.directory.revoke_enroll_token(ctx.tech, token_id)
    return {"id": token_id, "revoked": True}


async def enroll_token_list(ctx: Context, params: Params) -> Any:
    directory = ctx.services.directory
    names = await directory.names()
    now = ctx.services.clock.now()
    return [
        {
            "id": t.id,
            "customer": names.customer(t.customer_id),
            "expires_at": iso(t.expires_at),
            "uses_left": t.uses_left,
            "usable": not t.revoked and t.uses_left > 0 and t.expires_at > now,
            "revoked": t.revoked,
        }
        for t in await directory.enroll_tokens(ctx.tech)
    ]


async def agent_list(ctx: Context, params: Params) -> Any:
    directory = ctx.services.directory
    names = await directory.names()
    worst = await directory.worst_findings()
    return [
        {
            "id": a.id,
            "name": a.name,
            "customer": names.customer(a.customer_id),
            "online": directory.online(a.id),
            "revoked": a.revoked,
            "enrolled_at": iso(a.enrolled_at),
            "last_seen_at": iso(a.last_seen_at),
            "worst_finding": worst.get(a.id),
            "support": a.ephemeral,
        }
        for a in await directory.agents(ctx.tech)
    ]


async def agent_revoke(ctx: Context, params: Params) -> Any:
    agent = await ctx.services.directory.revoke_agent(ctx.tech, name(params, "agent"))
    return {"id": agent.id, "name": agent.name, "revoked": True}


METHODS: dict[str, Method] = {
    "whoami": Method(whoami, ALL),
    "relay.status": Method(relay_status, ADMIN),
    "customer.add": Method(customer_add, ADMIN),
    "customer.list": Method(customer_list, ALL),
    "technician.add": Method(technician_add, ADMIN),
    "technician.list": Method(technician_list, ADMIN),
    "enroll_token.create": Method(enroll_token_create, STAFF),
    "enroll_token.revoke": Method(enroll_token_revoke, STAFF),
    "enroll_token.list": Method(enroll_token_list, ALL),
    "agent.list": Method(agent_list, ALL),
    "agent.revoke": Method(agent_revoke, ADMIN),
}
