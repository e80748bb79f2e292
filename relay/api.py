"""The console API: one method per technician action, authorised and audited.

Each method takes the calling technician and its parameters and returns a JSON-able
value. Errors are :class:`QPError` subclasses whose message is shown to the user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from relay.authz import ROLES, require_role, resolve_agent, sees_all_customers, visible_agents
from relay.ids import new_id, new_token, token_hash
from relay.model import Customer, EnrollToken, Technician
from shared.clock import iso
from shared.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from relay.app import Relay

Params = dict[str, Any]
#: While a console call runs: sends an ``event`` message to that console.
EMIT: ContextVar[Callable[[dict[str, Any]], Awaitable[None]] | None] = ContextVar(
    "EMIT", default=None
)
Method = Callable[["Relay", Technician, Params], Awaitable[Any]]
METHODS: dict[str, Method] = {}

SESSION_KINDS = ("exec", "shell")
MAX_NAME = 120


def method(name: str) -> Callable[[Method], Method]:
    def register(fn: Method) -> Method:
        METHODS[name] = fn
        return fn

    return register


def _str(params: Params, key: str, required: bool = True, default: str = "") -> str:
    value = params.get(key, default)
    if not isinstance(value, str) or (required and not value.strip()):
        raise UsageError(f"{key} must be a non-empty string")
    value = value.strip()
    if len(value) > MAX_NAME and key not in ("public_key",):
        raise UsageError(f"{key} is longer than {MAX_NAME} characters")
    return value


def _int(params: Params, key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise UsageError(f"{key} must be a whole number from {low} to {high}")
    return value


async def _customer_names(relay: Relay) -> dict[str, str]:
    return {c.id: c.name for c in await relay.store.list_customers()}


async def _customer_by_name(relay: Relay, tech: Technician, name: str) -> Customer:
    customer = await relay.store.find_customer(name)
    if customer is None or not (sees_all_customers(tech) or customer.id in tech.customer_ids):
        raise NotFoundError(f"no customer {name!r}; see 'qp customer list'")
    return customer


@method("whoami")
async def whoami(relay: Relay, tech: Technician, params: Params) -> Any:
    return {
        "id": tech.id,
        "name": tech.name,
        "role": tech.role,
        "level": tech.level,
        "relay_id": relay.relay_id,
        "host_ca": relay.authorities.host_ca_public,
    }


@method("customer.add")
async def customer_add(relay: Relay, tech: Technician, params: Params) -> Any:
    require_role(tech, "admin")
    name = _str(params, "name")
    customer = Customer(new_id("cus"), name, relay.clock.now())
    await relay.store.add_customer(customer)
    await relay.store.audit(relay.clock.now(), "customer_add", tech.id, customer.id, name=name)
    return {"id": customer.id, "name": name, "created_at": iso(customer.created_at)}


@method("customer.list")
async def customer_list(relay: Relay, tech: Technician, params: Params) -> Any:
    return [
        {"id": c.id, "name": c.name, "created_at": iso(c.created_at)}
        for c in await relay.store.list_customers()
        if sees_all_customers(tech) or c.id in tech.customer_ids
    ]


@method("technician.add")
async def technician_add(relay: Relay, tech: Technician, params: Params) -> Any:
    require_role(tech, "admin")
    name = _str(params, "name")
    level = _int(params, "level", 1, 1, 3)
    role = _str(params, "role", default="technician")
    if role not in ROLES:
        raise UsageError(f"role must be one of {', '.join(ROLES)}")
    names = params.get("customers", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UsageError("customers must be a list of names")
    customer_ids = tuple([(await _customer_by_name(relay, tech, n)).id for n in names])
    token = new_token("qpt")
    new = Technician(new_id("tec"), name, level, role, customer_ids, relay.clock.now())
    await relay.store.add_technician(new, token_hash(token))
    await relay.store.audit(
        relay.clock.now(), "technician_add", tech.id, new.id, name=name, role=role, level=level
    )
    return {"id": new.id, "name": name, "role": role, "level": level, "token": token}


@method("technician.list")
async def technician_list(relay: Relay, tech: Technician, params: Params) -> Any:
    require_role(tech, "admin")
    names = await _customer_names(relay)
    return [
        {
            "id": t.id,
            "name": t.name,
            "role": t.role,
            "level": t.level,
            "customers": [names.get(c, c) for c in t.customer_ids],
        }
        for t in await relay.store.list_technicians()
    ]


@method("enroll_token.create")
async def enroll_token_create(relay: Relay, tech: Technician, params: Params) -> Any:
    require_role(tech, "admin", "technician")
    customer = await _customer_by_name(relay, tech, _str(params, "customer"))
    ttl = _int(params, "ttl", 86400, 60, 30 * 86400)
    uses = _int(params, "uses", 1, 1, 10000)
    now = relay.clock.now()
    token = new_token("qpe")
    record = EnrollToken(
        new_id("enr"), customer.id, now + timedelta(seconds=ttl), uses, tech.id, now
    )
    await relay.store.add_enroll_token(record, token_hash(token))
    await relay.store.audit(now, "enroll_token_create", tech.id, record.id, customer=customer.id)
    return {
        "id": record.id,
        "token": token,
        "customer": customer.name,
        "expires_at": iso(record.expires_at),
        "uses": uses,
        "command": f"qp-agent enroll {relay.public_url} --token {token}",
    }


@method("enroll_token.revoke")
async def enroll_token_revoke(relay: Relay, tech: Technician, params: Params) -> Any:
    require_role(tech, "admin", "technician")
    token_id = _str(params, "id")
    tokens = {t.id: t for t in await relay.store.list_enroll_tokens()}
    found = tokens.get(token_id)
    if found is None or not (sees_all_customers(tech) or found.customer_id in tech.customer_ids):
        raise NotFoundError(f"no enrollment token {token_id!r}")
    await relay.store.revoke_enroll_token(token_id)
    await relay.store.audit(relay.clock.now(), "enroll_token_revoke", tech.id, token_id)
    return {"id": token_id, "revoked": True}


@method("enroll_token.list")
async def enroll_token_list(relay: Relay, tech: Technician, params: Params) -> Any:
    names = await _customer_names(relay)
    now = relay.clock.now()
    return [
        {
            "id": t.id,
            "customer": names.get(t.customer_id, t.customer_id),
            "expires_at": iso(t.expires_at),
            "uses_left": t.uses_left,
            "usable": not t.revoked and t.uses_left > 0 and t.expires_at > now,
            "revoked": t.revoked,
        }
        for t in await relay.store.list_enroll_tokens()
        if sees_all_customers(tech) or t.customer_id in tech.customer_ids
    ]


@method("agent.list")
async def agent_list(relay: Relay, tech: Technician, params: Params) -> Any:
    names = await _customer_names(relay)
    worst = await relay.store.worst_findings()
    return [
        {
            "id": a.id,
            "name": a.name,
            "customer": names.get(a.customer_id, a.customer_id),
            "online": relay.links.online(a.id),
            "revoked": a.revoked,
            "enrolled_at": iso(a.enrolled_at),
            "last_seen_at": iso(a.last_seen_at),
            "worst_finding": worst.get(a.id),
            "support": a.ephemeral,
        }
        for a in await visible_agents(relay.store, tech)
    ]


@method("agent.revoke")
async def agent_revoke(relay: Relay, tech: Technician, params: Params) -> Any:
    require_role(tech, "admin")
    agent = await resolve_agent(relay.store, tech, _str(params, "agent"))
    await relay.store.revoke_agent(agent.id)
    await relay.store.audit(relay.clock.now(), "agent_revoke", tech.id, agent.id)
    await relay.disconnect_agent(agent.id)
    return {"id": agent.id, "name": agent.name, "revoked": True}


# Session, policy and support-code methods register themselves on import.
# Billing (rates, time entries, invoices) too.
from relay import api_billing, api_diag, api_sessions  # noqa: E402,F401
