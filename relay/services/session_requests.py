"""What a technician's request for a session carries, and what it gets back."""

from __future__ import annotations

from dataclasses import dataclass

import asyncssh

from relay.model import Agent, Technician
from relay.services.ports import StateListener


@dataclass(frozen=True)
class OpenRequest:
    """A technician asks for a session on an agent (already authorised)."""

    agent: Agent
    technician: Technician
    kind: str
    user_key: asyncssh.SSHKey
    policy: dict[str, object]  # the effective policy: it travels in the offer
    permit_forwarding: bool
    request: str | None = None  # the help request's label, if any
    on_state: StateListener | None = None


@dataclass(frozen=True)
class Opened:
    """What the technician needs to dial its tunnel end."""

    session_id: str
    tunnel_url: str
    tunnel_token: str
    certificate: str
    host_ca: str
