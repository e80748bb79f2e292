"""Console methods of the directory: who am I, customers, technicians, enrollment
tokens, agents, and the node's status."""

from __future__ import annotations

from typing import Any

from relay.api.context import ADMIN, ALL, STAFF, Context, Method
from relay.api.params import Params, keyset, name, names, page, whole
from relay.core.authorization import ROLES
from relay.model import Agent, Customer, EnrollToken, Technician
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
        "token_expires_at": iso(tech.token_expires_at),
        "token_warning": services.directory.token_warning(tech),
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


def _by_name(record: Agent | Customer | Technician) -> tuple[str, str]:
    """The sort key of lists in name order."""
    return (record.name, record.id)


async def customer_list(ctx: Context, params: Params) -> Any:
    """One page of the customers the caller serves, by name."""
    asked = keyset(params, ("text", "text"))
    found = await ctx.services.directory.customers(ctx.tech, asked)

    def row(c: Customer) -> dict[str, Any]:
        return {"id": c.id, "name": c.name, "created_at": iso(c.created_at)}

    return page(found, asked, row, _by_name)


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
    """One page of the technicians, by name."""
    directory = ctx.services.directory
    asked = keyset(params, ("text", "text"))
    found = await directory.technicians(asked)
    names = await directory.names()

    def row(t: Technician) -> dict[str, Any]:
        return {
            "id": t.id,
            "name": t.name,
            "role": t.role,
            "level": t.level,
            "customers": [names.customer(c) for c in t.customer_ids],
            "disabled": t.disabled,
            "token_expires_at": iso(t.token_expires_at),
            "grants": list(t.grants),
        }

    return page(found, asked, row, _by_name)


async def technician_disable(ctx: Context, params: Params) -> Any:
    """Refuse the technician's logins; end their sessions and console links."""
    who, ended = await ctx.services.directory.set_disabled(ctx.tech, name(params, "name"), True)
    return {"name": who, "disabled": True, "sessions_ended": ended}


async def technician_enable(ctx: Context, params: Params) -> Any:
    who, _ = await ctx.services.directory.set_disabled(ctx.tech, name(params, "name"), False)
    return {"name": who, "disabled": False}


async def technician_rotate_token(ctx: Context, params: Params) -> Any:
    """A new token (shown once); the old one stops working at once."""
    tech, token = await ctx.services.directory.rotate_token(ctx.tech, name(params, "name"))
    return {
        "id": tech.id,
        "name": tech.name,
        "token": token,
        "token_expires_at": iso(tech.token_expires_at),
        "yours": tech.id == ctx.tech.id,
    }


async def technician_set_level(ctx: Context, params: Params) -> Any:
    level = whole(params, "level", 1, 1, 3)
    tech = await ctx.services.directory.set_level(ctx.tech, name(params, "name"), level)
    return {"name": tech.name, "level": tech.level}


async def technician_set_customers(ctx: Context, params: Params) -> Any:
    customers = params.get("customers", [])
    if not isinstance(customers, list) or not all(isinstance(n, str) for n in customers):
        raise UsageError("customers must be a list of names")
    directory = ctx.services.directory
    tech = await directory.set_customers(ctx.tech, name(params, "name"), customers)
    names = await directory.names()
    return {"name": tech.name, "customers": [names.customer(c) for c in tech.customer_ids]}


async def technician_grant(ctx: Context, params: Params) -> Any:
    """Let a billing login read recordings, diagnostics or help-request text."""
    tech = await ctx.services.directory.set_grant(
        ctx.tech, name(params, "name"), name(params, "grant"), True
    )
    return {"name": tech.name, "grants": list(tech.grants)}


async def technician_revoke_grant(ctx: Context, params: Params) -> Any:
    tech = await ctx.services.directory.set_grant(
        ctx.tech, name(params, "name"), name(params, "grant"), False
    )
    return {"name": tech.name, "grants": list(tech.grants)}


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
        "command": (
            f"qp-agent enroll {ctx.services.public_url} --token {token}"
            + ctx.services.trust_option()
        ),
    }


async def enroll_token_revoke(ctx: Context, params: Params) -> Any:
    token_id = name(params, "id")
    await ctx.services.directory.revoke_enroll_token(ctx.tech, token_id)
    return {"id": token_id, "revoked": True}


async def enroll_token_list(ctx: Context, params: Params) -> Any:
    """One page of the enrollment tokens of the caller's customers, newest first."""
    directory = ctx.services.directory
    asked = keyset(params, ("time", "text"))
    found = await directory.enroll_tokens(ctx.tech, asked)
    names = await directory.names()
    now = ctx.services.clock.now()

    def row(t: EnrollToken) -> dict[str, Any]:
        return {
            "id": t.id,
            "customer": names.customer(t.customer_id),
            "expires_at": iso(t.expires_at),
            "uses_left": t.uses_left,
            "usable": not t.revoked and t.uses_left > 0 and t.expires_at > now,
            "revoked": t.revoked,
        }

    return page(found, asked, row, lambda t: (t.created_at, t.id))


async def agent_list(ctx: Context, params: Params) -> Any:
    """One page of the agents the caller may see, by name."""
    directory = ctx.services.directory
    asked = keyset(params, ("text", "text"))
    found = await directory.agents(ctx.tech, asked)
    customers = {c.id: c.name for c in await directory.customers(ctx.tech)}
    worst = await directory.worst_findings()

    def row(a: Agent) -> dict[str, Any]:
        return {
            "id": a.id,
            "name": a.name,
            "customer": customers.get(a.customer_id, a.customer_id),
            "online": directory.online(a.id),
            "revoked": a.revoked,
            "enrolled_at": iso(a.enrolled_at),
            "last_seen_at": iso(a.last_seen_at),
            "worst_finding": worst.get(a.id),
            "support": a.ephemeral,
        }

    return page(found, asked, row, _by_name)


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
    "technician.disable": Method(technician_disable, ADMIN),
    "technician.enable": Method(technician_enable, ADMIN),
    "technician.rotate_token": Method(technician_rotate_token, ADMIN),
    "technician.set_level": Method(technician_set_level, ADMIN),
    "technician.set_customers": Method(technician_set_customers, ADMIN),
    "technician.grant": Method(technician_grant, ADMIN),
    "technician.revoke_grant": Method(technician_revoke_grant, ADMIN),
    "enroll_token.create": Method(enroll_token_create, STAFF),
    "enroll_token.revoke": Method(enroll_token_revoke, STAFF),
    "enroll_token.list": Method(enroll_token_list, ALL),
    "agent.list": Method(agent_list, ALL),
    "agent.revoke": Method(agent_revoke, ADMIN),
}
