"""The directory: customers, technicians, enrollment tokens, agents and their
session policies. Every change is written with its audit record; every lookup
applies the caller's scope, so unknown and forbidden look the same."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from relay.core import policy as policies
from relay.core.authorization import may_serve, resolve_agent, visible_agents
from relay.core.ids import new_id, new_token, token_hash
from relay.model import Agent, AuditEvent, Customer, EnrollToken, Technician
from relay.services.names import Names
from relay.services.ports import AgentChannel
from relay.services.sessions import SessionManager
from relay.store.interface import Store
from shared.clock import Clock
from shared.errors import AuthError, NotFoundError


class Directory:
    """Who and what the relay knows."""

    def __init__(
        self, store: Store, clock: Clock, channel: AgentChannel, sessions: SessionManager
    ) -> None:
        self.store = store
        self.clock = clock
        self.channel = channel
        self.sessions = sessions
        #: What linked agents' clients pinned on their own machines (agent id ->
        #: settings), as each reported on its link; the relay cannot override it.
        self._pins: dict[str, dict[str, Any]] = {}

    async def names(self) -> Names:
        """Display names for every id, read once."""
        return await Names.load(self.store)

    # -- technicians' logins ------------------------------------------------------------
    async def login(self, token: str, peer: str) -> Technician:
        """The enabled technician holding ``token``; AuthError (audited) otherwise."""
        tech = await self.store.technician_by_token(token_hash(token))
        if tech is None:
            await self.store.audit(self.clock.now(), "login_refused", "anonymous", "", peer=peer)
            raise AuthError("the relay refused this token; ask an admin for a new one")
        return tech

    async def current(self, technician_id: str) -> Technician:
        """The technician as stored now, so a role change or disable takes effect at
        once; AuthError if disabled or gone."""
        tech = await self.store.get_technician(technician_id)
        if tech is None or tech.disabled:
            raise AuthError("this technician is disabled")
        return tech

    # -- customers ---------------------------------------------------------------------
    async def add_customer(self, actor: Technician, name: str) -> Customer:
        now = self.clock.now()
        customer = Customer(new_id("cus"), name, now)
        audit = AuditEvent(now, "customer_add", actor.id, customer.id, {"name": name})
        await self.store.add_customer(customer, audit=(audit,))
        return customer

    async def customers(self, tech: Technician) -> list[Customer]:
        """The customers ``tech`` may serve, by name."""
        return [c for c in await self.store.list_customers() if may_serve(tech, c.id)]

    async def customer_named(self, tech: Technician, name: str) -> Customer:
        """A customer by name within ``tech``'s scope."""
        customer = await self.store.find_customer(name)
        if customer is None or not may_serve(tech, customer.id):
            raise NotFoundError(f"no customer {name!r}; see 'qp customer list'")
        return customer

    # -- technicians -------------------------------------------------------------------
    async def add_technician(
        self, actor: Technician, name: str, level: int, role: str, customers: list[str]
    ) -> tuple[Technician, str]:
        """A new technician and its API token (shown once)."""
        scope = tuple([(await self.customer_named(actor, n)).id for n in customers])
        token = new_token("qpt")
        now = self.clock.now()
        new = Technician(new_id("tec"), name, level, role, scope, now)
        detail = {"name": name, "role": role, "level": level}
        audit = AuditEvent(now, "technician_add", actor.id, new.id, detail)
        await self.store.add_technician(new, token_hash(token), audit=(audit,))
        return new, token

    async def technicians(self) -> list[Technician]:
        return await self.store.list_technicians()

    async def technician_named(self, name: str) -> Technician:
        """A technician by name or id."""
        for tech in await self.store.list_technicians():
            if tech.name == name or tech.id == name:
                return tech
        raise NotFoundError(f"no technician {name!r}; see qp technician list")

    # -- enrollment tokens ----------------------------------------------------------------
    async def create_enroll_token(
        self, actor: Technician, customer: Customer, ttl: int, uses: int
    ) -> tuple[EnrollToken, str]:
        """A token for ``customer``'s machines to enroll with; the secret is shown once."""
        now = self.clock.now()
        token = new_token("qpe")
        record = EnrollToken(
            new_id("enr"), customer.id, now + timedelta(seconds=ttl), uses, actor.id, now
        )
        audit = AuditEvent(
            now, "enroll_token_create", actor.id, record.id, {"customer": customer.id}
        )
        await self.store.add_enroll_token(record, token_hash(token), audit=(audit,))
        return record, token

    async def enroll_tokens(self, tech: Technician) -> list[EnrollToken]:
        return [t for t in await self.store.list_enroll_tokens() if may_serve(tech, t.customer_id)]

    async def revoke_enroll_token(self, actor: Technician, token_id: str) -> None:
        found = {t.id: t for t in await self.enroll_tokens(actor)}.get(token_id)
        if found is None:
            raise NotFoundError(f"no enrollment token {token_id!r}")
        audit = AuditEvent(self.clock.now(), "enroll_token_revoke", actor.id, token_id)
        await self.store.revoke_enroll_token(token_id, audit=(audit,))

    # -- agents --------------------------------------------------------------------------
    async def agents(self, tech: Technician) -> list[Agent]:
        """The agents ``tech`` may see, revoked ones included."""
        return visible_agents(await self.store.list_agents(), tech)

    async def agent(self, tech: Technician, ref: str) -> Agent:
        """An agent by id or unique name that ``tech`` may reach."""
        return resolve_agent(await self.store.list_agents(), tech, ref)

    async def worst_findings(self) -> dict[str, str | None]:
        return await self.store.worst_findings()

    async def seen(self, agent_id: str) -> None:
        """Note that the agent linked or left now."""
        await self.store.touch_agent(agent_id, self.clock.now())

    def online(self, agent_id: str) -> bool:
        return self.channel.online(agent_id)

    async def revoke_agent(self, actor: Technician, ref: str) -> Agent:
        """Revoke an agent: its sessions end and its link drops."""
        agent = await self.agent(actor, ref)
        audit = AuditEvent(self.clock.now(), "agent_revoke", actor.id, agent.id)
        await self.store.revoke_agent(agent.id, audit=(audit,))
        await self.sessions.end_agent_sessions(agent.id)
        await self.channel.close_agent(agent.id)
        return agent

    async def unlink_agent(self, agent: Agent) -> None:
        """The agent asked to be forgotten (``qp-agent uninstall``): revoked like an
        admin's revoke, with the agent as the actor. Its link is closed by the caller
        after the reply, so the agent hears that it worked."""
        audit = AuditEvent(self.clock.now(), "agent_uninstall", agent.id, agent.id)
        await self.store.revoke_agent(agent.id, audit=(audit,))
        await self.sessions.end_agent_sessions(agent.id)

    # -- session policy ------------------------------------------------------------------
    async def effective_policy(self, agent: Agent) -> dict[str, Any]:
        """Defaults, then the customer's policy, then the agent's overrides, then
        what the client pinned on its machine."""
        customer = await self.store.get_customer(agent.customer_id)
        found = policies.effective(customer.policy if customer else {}, agent.policy)
        return {**found, **self.pinned(agent.id)}

    def client_pinned(self, agent_id: str, consent: str | None) -> None:
        """The agent reported its client's consent pin (None or "": none)."""
        if consent in policies.CLIENT_PINS:
            self._pins[agent_id] = {"consent": consent}
        else:
            self._pins.pop(agent_id, None)

    def pinned(self, agent_id: str) -> dict[str, Any]:
        """The settings the agent's client pinned, as last reported."""
        return dict(self._pins.get(agent_id, {}))

    async def set_policy(
        self,
        actor: Technician,
        changes: dict[str, Any],
        clear: list[str],
        agent_ref: str | None = None,
        customer_name: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Merge ``changes`` into an agent's overrides or a customer's policy and drop
        the ``clear`` keys; returns the subject and its effective policy."""
        now = self.clock.now()
        if agent_ref is not None:
            agent = await self.agent(actor, agent_ref)
            merged = _merge(agent.policy, changes, clear)
            audit = AuditEvent(now, "policy_set", actor.id, agent.id, changes)
            await self.store.set_agent_policy(agent.id, merged, audit=(audit,))
            customer = await self.store.get_customer(agent.customer_id)
            found = policies.effective(customer.policy if customer else {}, merged)
            return agent.id, {**found, **self.pinned(agent.id)}
        customer = await self.customer_named(actor, customer_name or "")
        merged = _merge(customer.policy, changes, clear)
        audit = AuditEvent(now, "policy_set", actor.id, customer.id, changes)
        await self.store.set_customer_policy(customer.id, merged, audit=(audit,))
        return customer.id, policies.effective(merged, {})

    async def policy_of(
        self, tech: Technician, agent_ref: str | None, customer_name: str | None
    ) -> tuple[str, dict[str, Any]]:
        """The effective policy of an agent, or of a customer's machines."""
        if agent_ref is not None:
            agent = await self.agent(tech, agent_ref)
            return agent.id, await self.effective_policy(agent)
        customer = await self.customer_named(tech, customer_name or "")
        return customer.id, policies.effective(customer.policy, {})


def _merge(current: dict[str, Any], changes: dict[str, Any], clear: list[str]) -> dict[str, Any]:
    merged = {**current, **changes}
    for key in clear:
        merged.pop(key, None)
    return merged
