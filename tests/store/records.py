"""The records the storage compliance suite stores, and a seed for most tests.

Fixed datetimes (:data:`T0` and :func:`at`), so every backend sees the same values.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from relay.model import (
    Agent,
    Customer,
    EnrollToken,
    Session,
    SessionBeat,
    SessionClose,
    Technician,
    TimeEntry,
)
from relay.store.interface import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


EXPIRES = at(60)  # default expiry of enrollment tokens
ENDED = at(30)  # default end of sessions, and creation of their time entries
LAST_SEEN = at(29)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def customer(id: str = "cus-1", name: str = "Acme GmbH") -> Customer:
    return Customer(id=id, name=name, created_at=T0)


def technician(
    id: str = "tec-1", name: str = "alice", customer_ids: tuple[str, ...] = ("cus-1",)
) -> Technician:
    return Technician(
        id=id, name=name, level=2, role="technician", customer_ids=customer_ids, created_at=T0
    )


def agent(id: str = "agt-1", name: str = "frontdesk-pc", customer_id: str = "cus-1") -> Agent:
    return Agent(
        id=id,
        name=name,
        customer_id=customer_id,
        identity_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIdentity agent",
        host_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost agent",
        enrolled_at=T0,
    )


def enroll_token(
    id: str = "enr-1", uses_left: int = 1, expires_at: datetime = EXPIRES, created_at: datetime = T0
) -> EnrollToken:
    return EnrollToken(
        id=id,
        customer_id="cus-1",
        expires_at=expires_at,
        uses_left=uses_left,
        created_by="tec-1",
        created_at=created_at,
    )


def session(id: str = "ses-1", created_at: datetime = T0, relay_node: str = "node-a") -> Session:
    return Session(
        id=id,
        agent_id="agt-1",
        technician_id="tec-1",
        customer_id="cus-1",
        kind="shell",
        state="requested",
        created_at=created_at,
        relay_node=relay_node,
        request="T-1234",
    )


def time_entry(
    id: str = "te-1", session_id: str = "ses-1", created_at: datetime = ENDED
) -> TimeEntry:
    return TimeEntry(
        id=id,
        session_ids=(session_id,),
        customer_id="cus-1",
        agent_id="agt-1",
        technician_id="tec-1",
        started_at=at(1),
        ended_at=at(30),
        actual_seconds=1740,
        billable_minutes=30,
        hourly_rate=Decimal("87.50"),
        amount=Decimal("43.75"),
        status="draft",
        created_at=created_at,
        request="T-1234",
        notes="printer driver reinstalled",
        details={"rounding": "15min", "increments": 2, "minimum_minutes": 15},
    )


def closing(
    session_id: str = "ses-1",
    entry: TimeEntry | None = None,
    ended_at: datetime = ENDED,
    last_seen_at: datetime | None = LAST_SEEN,
) -> SessionClose:
    return SessionClose(
        session_id=session_id,
        state="ended",
        end_reason="completed",
        ended_at=ended_at,
        last_seen_at=last_seen_at,
        bytes_to_agent=1000,
        bytes_to_technician=5000,
        active_minutes=28,
        entry=entry,
    )


def beat(
    session_id: str, last_seen_at: datetime | None, to_agent: int, to_tech: int, minutes: int
) -> SessionBeat:
    """A heartbeat of an active session."""
    return SessionBeat(
        session_id=session_id,
        last_seen_at=last_seen_at,
        bytes_to_agent=to_agent,
        bytes_to_technician=to_tech,
        active_minutes=minutes,
    )


async def seed(store: Store) -> None:
    """One customer, one technician (token "tech-token") and one agent."""
    await store.add_customer(customer())
    await store.add_technician(technician(), token_hash("tech-token"))
    await store.add_agent(agent())
