"""Audit records of refusals: attempts that changed nothing, so there is no change
to write them with (every change carries its own audit record)."""

from __future__ import annotations

from typing import Any

from relay.store.interface import Store
from shared.clock import Clock


class Auditor:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def refused(self, event: str, actor: str, subject: str = "", **detail: Any) -> None:
        """Append one audit record for a refused attempt."""
        await self.store.audit(self.clock.now(), event, actor, subject, **detail)
