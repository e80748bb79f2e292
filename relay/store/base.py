"""The relay's storage interface: small and shaped like the domain.

Implementations live beside this module (``sqlite.py``; PostgreSQL later) and all
pass one compliance suite (``tests/store/``). Business rules stay in Python: the
store persists and queries, it never decides what is billable.

All datetimes are timezone-aware UTC. Money is ``Decimal``. Tokens are stored only
as their SHA-256 hex digest (``token_hash``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from relay.store.diag_base import DiagnosticsStore


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    created_at: datetime
    policy: dict[str, Any] = field(default_factory=dict)  # session policy (see relay.policy)


@dataclass(frozen=True)
class Technician:
    id: str
    name: str
    level: int  # expertise level 1..3
    role: str  # technician | billing | admin
    customer_ids: tuple[str, ...]  # scope; admins and billing see every customer
    created_at: datetime
    disabled: bool = False


@dataclass(frozen=True)
class EnrollToken:
    id: str
    customer_id: str
    expires_at: datetime
    uses_left: int
    created_by: str  # technician id
    created_at: datetime
    revoked: bool = False


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    customer_id: str
    identity_key: str  # OpenSSH public key line
    host_key: str  # OpenSSH public key line
    enrolled_at: datetime
    revoked: bool = False
    last_seen_at: datetime | None = None
    policy: dict[str, Any] = field(default_factory=dict)  # overrides the customer's
    ephemeral: bool = False  # a support-code agent: its identity dies with its process


@dataclass(frozen=True)
class SupportCode:
    id: str
    customer_id: str
    request: str | None
    expires_at: datetime
    created_by: str  # technician id
    created_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True)
class Session:
    id: str
    agent_id: str
    technician_id: str
    customer_id: str
    kind: str  # exec | shell | proxy | …
    state: str  # shared.protocol.session_state.State value
    created_at: datetime
    relay_node: str
    started_at: datetime | None = None  # when both tunnel ends were paired
    last_seen_at: datetime | None = None  # heartbeat while active
    ended_at: datetime | None = None
    end_reason: str | None = None
    bytes_to_agent: int = 0
    bytes_to_technician: int = 0
    active_minutes: int = 0  # minutes with traffic
    traffic_minutes: tuple[int, ...] = ()  # which minutes (from started_at) had traffic
    ticket: str | None = None


@dataclass(frozen=True)
class TimeEntry:
    id: str
    session_ids: tuple[str, ...]
    customer_id: str
    agent_id: str
    technician_id: str
    started_at: datetime
    ended_at: datetime
    actual_seconds: int
    billable_minutes: int
    hourly_rate: Decimal
    amount: Decimal
    status: str  # draft | approved | invoiced
    created_at: datetime
    service_type: str = "remote_support"
    ticket: str | None = None
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # how the figures were derived


@dataclass(frozen=True)
class SessionBeat:
    """A heartbeat of an active session: what the relay has seen so far.
    ``last_seen_at=None`` keeps the stored value."""

    session_id: str
    last_seen_at: datetime | None
    bytes_to_agent: int
    bytes_to_technician: int
    active_minutes: int
    traffic_minutes: tuple[int, ...] = ()


@dataclass(frozen=True)
class SessionClose:
    """Everything written when a session ends, in one transaction."""

    session_id: str
    state: str
    end_reason: str
    ended_at: datetime
    last_seen_at: datetime | None
    bytes_to_agent: int
    bytes_to_technician: int
    active_minutes: int
    entry: TimeEntry | None  # None when the session never became active
    traffic_minutes: tuple[int, ...] = ()


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    event: str  # e.g. enroll, enroll_refused, login_failed, session_open, cert_issued
    actor: str  # technician id, agent id, "relay" or "anonymous"
    subject: str  # what it was about (ids), may be empty
    detail: dict[str, Any]


# Imported here rather than at the top: billing_base subclasses TimeEntry (above).
from relay.store.billing_base import BillingStore  # noqa: E402


class Store(BillingStore, DiagnosticsStore, ABC):
    """Persistence for one relay (or a cluster sharing one database)."""

    # -- lifecycle -----------------------------------------------------------
    @abstractmethod
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connection; idempotent."""

    # -- relay metadata --------------------------------------------------------
    @abstractmethod
    async def get_meta(self, key: str) -> str | None:
        """A relay-wide setting stored at init (e.g. ``relay_id``)."""

    @abstractmethod
    async def set_meta(self, key: str, value: str) -> None:
        """Insert or replace a relay-wide setting."""

    # -- customers -------------------------------------------------------------
    @abstractmethod
    async def add_customer(self, customer: Customer) -> None:
        """Insert; :class:`ConflictError` if the name (case-insensitive) exists."""

    @abstractmethod
    async def get_customer(self, customer_id: str) -> Customer | None: ...

    @abstractmethod
    async def find_customer(self, name: str) -> Customer | None:
        """By name, case-insensitive."""

    @abstractmethod
    async def list_customers(self) -> list[Customer]:
        """All customers ordered by name."""

    # -- technicians -------------------------------------------------------------
    @abstractmethod
    async def add_technician(self, technician: Technician, token_hash: str) -> None:
        """Insert with the hash of its API token; ConflictError on a duplicate name."""

    @abstractmethod
    async def technician_by_token(self, token_hash: str) -> Technician | None:
        """The enabled technician holding this token, else None."""

    @abstractmethod
    async def get_technician(self, technician_id: str) -> Technician | None: ...

    @abstractmethod
    async def list_technicians(self) -> list[Technician]:
        """All technicians ordered by name."""

    # -- enrollment tokens -------------------------------------------------------
    @abstractmethod
    async def add_enroll_token(self, token: EnrollToken, token_hash: str) -> None: ...

    @abstractmethod
    async def consume_enroll_token(self, token_hash: str, now: datetime) -> EnrollToken | None:
        """Atomically use one use of a live token (not revoked, not expired, uses
        left) and return it as it was before; None if unknown or not usable."""

    @abstractmethod
    async def revoke_enroll_token(self, token_id: str) -> bool:
        """Mark revoked; False if unknown."""

    @abstractmethod
    async def list_enroll_tokens(self) -> list[EnrollToken]:
        """All tokens, newest first."""

    @abstractmethod
    async def set_customer_policy(self, customer_id: str, policy: dict[str, Any]) -> bool:
        """Replace a customer's session policy; False if unknown."""

    # -- support codes -------------------------------------------------------------
    @abstractmethod
    async def add_support_code(self, code: SupportCode, code_hash: str) -> None: ...

    @abstractmethod
    async def consume_support_code(self, code_hash: str, now: datetime) -> SupportCode | None:
        """Atomically use a live code (unused, not expired) and return it as it was
        before; None if unknown, used or expired."""

    # -- agents ------------------------------------------------------------------
    @abstractmethod
    async def add_agent(self, agent: Agent) -> None:
        """Insert; ConflictError if the id exists."""

    @abstractmethod
    async def get_agent(self, agent_id: str) -> Agent | None: ...

    @abstractmethod
    async def list_agents(self) -> list[Agent]:
        """All agents (revoked included) ordered by name, then id."""

    @abstractmethod
    async def revoke_agent(self, agent_id: str) -> bool:
        """Mark revoked; False if unknown."""

    @abstractmethod
    async def set_agent_policy(self, agent_id: str, policy: dict[str, Any]) -> bool:
        """Replace an agent's policy overrides; False if unknown."""

    @abstractmethod
    async def touch_agent(self, agent_id: str, at: datetime) -> None:
        """Record that the agent linked or was seen at ``at``."""

    # -- sessions ------------------------------------------------------------------
    @abstractmethod
    async def add_session(self, session: Session) -> None:
        """Insert a new session row (state ``requested``)."""

    @abstractmethod
    async def get_session(self, session_id: str) -> Session | None: ...

    @abstractmethod
    async def set_session_state(
        self, session_id: str, state: str, started_at: datetime | None = None
    ) -> bool:
        """Move an open session to ``state`` (and set ``started_at`` when given).
        False if the session is unknown or already ended."""

    @abstractmethod
    async def heartbeat_sessions(self, beats: list[SessionBeat]) -> None:
        """Persist ``last_seen_at``, byte counters and active minutes of open
        sessions in one transaction; beats for ended or unknown sessions are skipped."""

    @abstractmethod
    async def close_session(self, close: SessionClose) -> bool:
        """End an open session and insert its time entry, in one transaction.

        Idempotent: returns False and writes nothing if the session is already
        ended (or unknown)."""

    @abstractmethod
    async def open_sessions(self, relay_node: str | None = None) -> list[Session]:
        """Sessions not yet ended (of one node when given), oldest first."""

    @abstractmethod
    async def list_sessions(self, limit: int = 200) -> list[Session]:
        """Most recent sessions first."""

    # -- time entries ------------------------------------------------------------------
    @abstractmethod
    async def list_time_entries(self, limit: int = 1000) -> list[TimeEntry]:
        """Most recent entries first."""

    @abstractmethod
    async def get_time_entry(self, entry_id: str) -> TimeEntry | None: ...

    # -- audit ---------------------------------------------------------------------------
    @abstractmethod
    async def audit(
        self, at: datetime, event: str, actor: str, subject: str = "", **detail: Any
    ) -> None:
        """Append one audit record (never updated or deleted)."""

    @abstractmethod
    async def list_audit(self, limit: int = 200) -> list[AuditRecord]:
        """Most recent first."""
