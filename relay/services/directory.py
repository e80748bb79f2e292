"""The directory: customers, technicians, enrollment tokens, agents and their
session policies. Every change is written with its audit record; every lookup
applies the caller's scope, so unknown and forbidden look the same."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import timedelta
from typing import Any

from relay.core import policy as policies
from relay.core.authorization import (
    GRANTS,
    may_serve,
    resolve_agent,
    sees_all_customers,
    visible_agents,
)
from relay.core.ids import new_id, new_token, token_hash
from relay.model import (
    Agent,
    AuditEvent,
    Customer,
    EnrollToken,
    Keyset,
    Technician,
    TechnicianChange,
)
from relay.services.audit import ANONYMOUS, Auditor
from relay.services.names import Names
from relay.services.ports import AgentChannel, ConsoleChannel, NoConsoles
from relay.services.sessions import SessionManager
from relay.settings import Limits
from relay.store.interface import Store
from shared.clock import Clock, iso
from shared.errors import AuthError, NotFoundError, OutOfScopeError, UsageError

#: The one answer to an unknown or a disabled technician's token.
REFUSED = "the relay refused this token; ask an admin for a new one"


class Directory:
    """Who and what the relay knows."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        channel: AgentChannel,
        sessions: SessionManager,
        auditor: Auditor,
    ) -> None:
        self.store = store
        self.clock = clock
        self.channel = channel
        self.sessions = sessions
        #: The consoles linked to this node; the transport attaches its own.
        self.consoles: ConsoleChannel = NoConsoles()
        self.auditor = auditor
        #: What linked agents' clients pinned on their own machines (agent id ->
        #: settings), as each reported on its link; the relay cannot override it.
        self._pins: dict[str, dict[str, Any]] = {}

    async def names(self) -> Names:
        """Display names for every id, read once."""
        return await Names.load(self.store)

    # -- technicians' logins ------------------------------------------------------------
    async def login(self, token: str, peer: str) -> Technician:
        """The enabled technician holding ``token`` with a live token; AuthError
        (audited with the reason) otherwise. Unknown and disabled get the same
        answer; an expired token is told so, with the way to a new one. Checked
        again before every call of a console link, so a disable or a rotation
        takes effect at once."""
        tech = await self.store.technician_holding(token_hash(token))
        now = self.clock.now()
        if tech is None:  # anonymous: counted per address and window
            await self.auditor.refused(
                "login_refused", ANONYMOUS, peer=peer, reason="unknown_token"
            )
            raise AuthError(REFUSED)
        if tech.disabled:
            await self.auditor.refused("login_refused", tech.id, peer=peer, reason="disabled")
            raise AuthError(REFUSED)
        if tech.token_expires_at is not None and tech.token_expires_at <= now:
            await self.auditor.refused("login_refused", tech.id, peer=peer, reason="token_expired")
            raise AuthError(
                f"your token expired on {tech.token_expires_at:%Y-%m-%d}; ask an admin for a "
                f"new one (qp technician rotate-token {tech.name}), then run qp login again"
            )
        return tech

    def token_warning(self, tech: Technician) -> str | None:
        """A line for the technician when their token expires within the warning
        window of ``limits.technician_token_warn_days``, else None."""
        if tech.token_expires_at is None:
            return None
        left = tech.token_expires_at - self.clock.now()
        if left > timedelta(days=self._limits.technician_token_warn_days):
            return None
        days = max(0, left.days)
        return (
            f"your token expires on {tech.token_expires_at:%Y-%m-%d} (in {days} day(s)); "
            f"ask an admin for a new one: qp technician rotate-token {tech.name}"
        )

    async def stamp_token_expiry(self) -> int:
        """Give tokens made before expiry existed the full lifetime from now (an
        upgrade never locks anyone out); how many got it."""
        now = self.clock.now()
        expires = now + timedelta(days=self._limits.technician_token_days)
        audit = AuditEvent(now, "token_expiry_stamped", "relay", "", {"expires_at": iso(expires)})
        return await self.store.stamp_token_expiry(expires, audit=(audit,))

    @property
    def _limits(self) -> Limits:
        return self.sessions.settings.limits

    # -- customers ---------------------------------------------------------------------
    async def add_customer(self, actor: Technician, name: str) -> Customer:
        now = self.clock.now()
        customer = Customer(new_id("cus"), name, now)
        audit = AuditEvent(now, "customer_add", actor.id, customer.id, {"name": name})
        await self.store.add_customer(customer, audit=(audit,))
        return customer

    async def customers(self, tech: Technician, page: Keyset | None = None) -> list[Customer]:
        """The customers ``tech`` may serve (all, or one page), by name."""
        if page is not None:
            return await self.store.list_customers(in_scope(tech, page))
        return [c for c in await self.store.list_customers() if may_serve(tech, c.id)]

    async def customer_named(self, tech: Technician, name: str) -> Customer:
        """A customer by name within ``tech``'s scope."""
        customer = await self.store.find_customer(name)
        message = f"no customer {name!r}; see 'qp customer list'"
        if customer is None:
            raise NotFoundError(message)
        if not may_serve(tech, customer.id):
            raise OutOfScopeError(message, "customer", name)
        return customer

    # -- technicians -------------------------------------------------------------------
    async def add_technician(
        self, actor: Technician, name: str, level: int, role: str, customers: list[str]
    ) -> tuple[Technician, str]:
        """A new technician and its API token (shown once)."""
        scope = tuple([(await self.customer_named(actor, n)).id for n in customers])
        token = new_token("qpt")
        now = self.clock.now()
        expires = now + timedelta(days=self._limits.technician_token_days)
        new = Technician(new_id("tec"), name, level, role, scope, now, token_expires_at=expires)
        detail = {"name": name, "role": role, "level": level}
        audit = AuditEvent(now, "technician_add", actor.id, new.id, detail)
        await self.store.add_technician(new, token_hash(token), audit=(audit,))
        return new, token

    async def technicians(self, page: Keyset | None = None) -> list[Technician]:
        """Every technician (or one page), by name."""
        return await self.store.list_technicians(page)

    async def technician_named(self, caller: Technician, name: str) -> Technician:
        """A technician by name or id. A technician (who cannot list the others)
        finds only themself: another's name gets the answer an unknown one gets."""
        message = f"no technician {name!r}; see qp technician list"
        for tech in await self.store.list_technicians():
            if tech.name == name or tech.id == name:
                if tech.id != caller.id and not sees_all_customers(caller):
                    raise OutOfScopeError(message, "technician", name)
                return tech
        raise NotFoundError(message)

    async def set_disabled(self, actor: Technician, ref: str, disabled: bool) -> tuple[str, int]:
        """Disable (their logins are refused, their sessions and console links end)
        or enable a technician; returns their name and how many sessions ended."""
        tech = await self.technician_named(actor, ref)
        if disabled and tech.id == actor.id:
            raise UsageError("you cannot disable yourself; another admin can")
        event = "technician_disable" if disabled else "technician_enable"
        await self._change(actor, tech, event, TechnicianChange(disabled=disabled))
        if not disabled:
            return tech.name, 0
        ended = await self.sessions.end_technician_sessions(tech.id)
        await self.consoles.close_technician(tech.id, REFUSED)
        return tech.name, ended

    async def rotate_token(self, actor: Technician, ref: str) -> tuple[Technician, str]:
        """A new token for a technician (shown once); the old one stops working at
        once. Returns the technician as changed and the token."""
        tech = await self.technician_named(actor, ref)
        token = new_token("qpt")
        expires = self.clock.now() + timedelta(days=self._limits.technician_token_days)
        change = TechnicianChange(token_hash=token_hash(token), token_expires_at=expires)
        await self._change(actor, tech, "technician_token_rotate", change, expires_at=iso(expires))
        return dataclasses.replace(tech, token_expires_at=expires), token

    async def set_level(self, actor: Technician, ref: str, level: int) -> Technician:
        tech = await self.technician_named(actor, ref)
        await self._change(actor, tech, "technician_set_level", TechnicianChange(level=level))
        return dataclasses.replace(tech, level=level)

    async def set_customers(self, actor: Technician, ref: str, names: list[str]) -> Technician:
        """Replace the customers a technician may serve."""
        tech = await self.technician_named(actor, ref)
        scope = tuple([(await self.customer_named(actor, n)).id for n in names])
        change = TechnicianChange(customer_ids=scope)
        await self._change(actor, tech, "technician_set_customers", change, customers=list(scope))
        return dataclasses.replace(tech, customer_ids=scope)

    async def set_grant(self, actor: Technician, ref: str, grant: str, on: bool) -> Technician:
        """Grant (or revoke) a billing login the reading of ``grant`` content."""
        if grant not in GRANTS:
            raise UsageError(f"grant must be one of {', '.join(GRANTS)}")
        tech = await self.technician_named(actor, ref)
        if tech.role != "billing":
            raise UsageError(
                f"{tech.name} has the {tech.role} role; grants apply to billing logins only"
            )
        held = set(tech.grants) | {grant} if on else set(tech.grants) - {grant}
        grants = tuple(g for g in GRANTS if g in held)
        event = "technician_grant" if on else "technician_revoke_grant"
        await self._change(actor, tech, event, TechnicianChange(grants=grants), grant=grant)
        return dataclasses.replace(tech, grants=grants)

    async def _change(
        self,
        actor: Technician,
        tech: Technician,
        event: str,
        change: TechnicianChange,
        **detail: Any,
    ) -> None:
        audit = AuditEvent(self.clock.now(), event, actor.id, tech.id, detail)
        if not await self.store.update_technician(tech.id, change, audit=(audit,)):
            raise NotFoundError(f"no technician {tech.name!r}; see qp technician list")

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

    async def enroll_tokens(
        self, tech: Technician, page: Keyset | None = None
    ) -> list[EnrollToken]:
        """The tokens of customers ``tech`` may serve (all, or one page), newest first."""
        if page is not None:
            return await self.store.list_enroll_tokens(in_scope(tech, page))
        return [t for t in await self.store.list_enroll_tokens() if may_serve(tech, t.customer_id)]

    async def revoke_enroll_token(self, actor: Technician, token_id: str) -> None:
        found = {t.id: t for t in await self.store.list_enroll_tokens()}.get(token_id)
        message = f"no enrollment token {token_id!r}"
        if found is None:
            raise NotFoundError(message)
        if not may_serve(actor, found.customer_id):
            raise OutOfScopeError(message, "enroll_token", token_id)
        audit = AuditEvent(self.clock.now(), "enroll_token_revoke", actor.id, token_id)
        await self.store.revoke_enroll_token(token_id, audit=(audit,))

    # -- agents --------------------------------------------------------------------------
    async def agents(self, tech: Technician, page: Keyset | None = None) -> list[Agent]:
        """The agents ``tech`` may see (all, or one page), revoked ones included."""
        if page is not None:
            return await self.store.list_agents(in_scope(tech, page))
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


def in_scope(tech: Technician, page: Keyset) -> Keyset:
    """``page`` limited to the customers ``tech`` may serve (all for the office)."""
    return page if sees_all_customers(tech) else replace(page, customer_ids=tech.customer_ids)
