"""Who may do what. Unknown and forbidden look the same to a caller."""

from __future__ import annotations

from relay.model import Agent, Technician
from shared.errors import AuthError, NotFoundError, OutOfScopeError

ROLES = ("technician", "billing", "admin")

#: What a billing login reads only when an admin granted it: terminal recordings,
#: diagnostics content, help-request text. Other roles are not limited by grants.
GRANTS = ("recordings", "diagnostics", "help")


def require_role(tech: Technician, *roles: str) -> None:
    """Refuse unless ``tech`` has one of ``roles``."""
    if tech.role not in roles:
        raise AuthError(f"this needs the {' or '.join(roles)} role")


def sees_all_customers(tech: Technician) -> bool:
    """Admins and the office see every customer; technicians only their own."""
    return tech.role in ("admin", "billing")


def may_read(tech: Technician, grant: str) -> bool:
    """Whether ``tech`` may read content of kind ``grant`` (one of :data:`GRANTS`):
    the office sees metadata, time and invoices, content only when granted."""
    return tech.role != "billing" or grant in tech.grants


def may_serve(tech: Technician, customer_id: str) -> bool:
    """Whether ``tech`` may see and serve this customer's agents."""
    return sees_all_customers(tech) or customer_id in tech.customer_ids


def visible_agents(agents: list[Agent], tech: Technician) -> list[Agent]:
    """The agents among ``agents`` whose customer ``tech`` may serve."""
    return [a for a in agents if may_serve(tech, a.customer_id)]


def resolve_agent(agents: list[Agent], tech: Technician, ref: str) -> Agent:
    """An agent by id, or by name when that name is unique among what ``tech`` may
    see. Revoked, unknown and forbidden agents give the very same error."""
    candidates = [a for a in visible_agents(agents, tech) if not a.revoked]
    by_id = [a for a in candidates if a.id == ref]
    if by_id:
        return by_id[0]
    by_name = [a for a in candidates if a.name == ref]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        ids = ", ".join(a.id for a in by_name)
        raise NotFoundError(f"agent name {ref!r} is ambiguous: use one of the ids {ids}")
    message = f"no agent {ref!r} that you can reach"
    if any(a.id == ref or a.name == ref for a in agents if not may_serve(tech, a.customer_id)):
        raise OutOfScopeError(message, "agent", ref)
    raise NotFoundError(message)
