"""Display names for ids: the one place lists turn ``cus-…``/``agt-…``/``tec-…``
into what people read."""

from __future__ import annotations

from dataclasses import dataclass

from relay.store.interface import Store


@dataclass(frozen=True)
class Names:
    """id → name of customers, technicians and agents, read once per call."""

    customers: dict[str, str]
    technicians: dict[str, str]
    agents: dict[str, str]

    @classmethod
    async def load(cls, store: Store) -> Names:
        """Read all three from ``store``."""
        return cls(
            {c.id: c.name for c in await store.list_customers()},
            {t.id: t.name for t in await store.list_technicians()},
            {a.id: a.name for a in await store.list_agents()},
        )

    def customer(self, customer_id: str) -> str:
        """The customer's name, or the id when it is unknown."""
        return self.customers.get(customer_id, customer_id)

    def technician(self, technician_id: str) -> str:
        """The technician's name, or the id when it is unknown."""
        return self.technicians.get(technician_id, technician_id)

    def agent(self, agent_id: str) -> str:
        """The agent's name, or the id when it is unknown."""
        return self.agents.get(agent_id, agent_id)
