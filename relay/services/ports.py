"""What the services need from the outside, as protocols the transport implements.

The services never hold a WebSocket: they reach agents through an
:class:`AgentChannel`, close tunnel ends through :class:`TunnelEnd`, and tell
interested parties about session phases through a :data:`PhaseListener`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from shared.errors import UnavailableError
from shared.protocol.messages import Message


class AgentChannel(Protocol):
    """The control links of the agents connected to this relay node."""

    def online(self, agent_id: str) -> bool:
        """Whether the agent has a live control link here."""
        ...

    async def send(self, agent_id: str, message: Message) -> None:
        """Send one message; :class:`UnavailableError` if the agent is offline."""
        ...

    async def close_agent(self, agent_id: str, reason: str = "agent revoked") -> None:
        """Drop the agent's link (after a revoke)."""
        ...


class ConsoleChannel(Protocol):
    """The console links of the technicians logged in to this relay node."""

    async def close_technician(self, technician_id: str, reason: str) -> int:
        """Close every console link of the technician (after a disable); how many."""
        ...


class NoConsoles:
    """A :class:`ConsoleChannel` with no console linked (unit tests, tools)."""

    async def close_technician(self, technician_id: str, reason: str) -> int:
        return 0


class TunnelEnd(Protocol):
    """One side's data connection of a session."""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close it with a WebSocket close code and a short reason."""
        ...


class OfflineChannel:
    """An :class:`AgentChannel` with no agent online (unit tests, tools)."""

    def online(self, agent_id: str) -> bool:
        return False

    async def send(self, agent_id: str, message: Message) -> None:
        raise UnavailableError("the agent is offline")

    async def close_agent(self, agent_id: str, reason: str = "agent revoked") -> None:
        return None


#: (agent id, session id, phase "before" | "after"): a session's login succeeded or it
#: ended; the diagnostics service asks for a snapshot.
PhaseListener = Callable[[str, str, str], Awaitable[None]]

#: Called with (session id, direction, bytes) for every pumped frame; tests use it to
#: prove the relay only ever sees ciphertext.
Tap = Callable[[str, str, bytes], None]

#: Tells the technician waiting for a session about its state changes:
#: (session id, new state).
StateListener = Callable[[str, str], Awaitable[None]]
