"""Storage of diagnostics snapshots and help requests (part of :class:`Store`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class SnapshotRecord:
    id: int
    agent_id: str
    taken_at: datetime
    received_at: datetime
    kind: str  # refresh | session_start | session_end | help
    session_id: str | None = None
    request_id: int | None = None
    worst: str | None = None  # most severe finding: critical | warning | info
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HelpRequest:
    id: int  # the number the client and technicians use
    agent_id: str
    customer_id: str
    text: str
    urgent: bool
    state: str  # open | assigned | in_progress | resolved | cancelled
    created_at: datetime
    updated_at: datetime
    assigned_to: str | None = None  # technician id
    resolution: str | None = None
    snapshot_id: int | None = None


class DiagnosticsStore(ABC):
    @abstractmethod
    async def add_snapshot(self, record: SnapshotRecord, keep: int) -> int:
        """Insert (``record.id`` is ignored) and return the new id. Keeps at most
        ``keep`` snapshots per agent: older ones not tied to a session or request
        are deleted in the same transaction."""

    @abstractmethod
    async def get_snapshot(self, snapshot_id: int) -> SnapshotRecord | None: ...

    @abstractmethod
    async def list_snapshots(
        self, agent_id: str | None = None, session_id: str | None = None, limit: int = 50
    ) -> list[SnapshotRecord]:
        """Newest first, filtered by agent and/or session."""

    @abstractmethod
    async def worst_findings(self) -> dict[str, str | None]:
        """agent id → the worst severity in its latest snapshot."""

    @abstractmethod
    async def add_help_request(self, request: HelpRequest) -> int:
        """Insert (``request.id`` is ignored) and return its number."""

    @abstractmethod
    async def get_help_request(self, number: int) -> HelpRequest | None: ...

    @abstractmethod
    async def list_help_requests(
        self, states: tuple[str, ...] | None = None, agent_id: str | None = None
    ) -> list[HelpRequest]:
        """Oldest first."""

    @abstractmethod
    async def update_help_request(self, number: int, expected_state: str, **changes: Any) -> bool:
        """Apply ``changes`` (state, assigned_to, resolution, updated_at) only if the
        request is still in ``expected_state``; False otherwise (someone was faster)."""
