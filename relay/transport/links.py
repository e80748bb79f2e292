"""The agents currently linked to this relay node."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from shared.errors import UnavailableError
from shared.protocol.close_codes import GOING_AWAY, NORMAL_CLOSURE, POLICY_VIOLATION
from shared.protocol.messages import Message, encode

log = logging.getLogger("qp.relay.agents")


@dataclass
class AgentLink:
    agent_id: str
    ws: ServerConnection
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, message: Message) -> None:
        async with self.lock:
            await self.ws.send(encode(message))


class AgentLinks:
    """agent id → its live control link (at most one: a newer link replaces an older)."""

    def __init__(self) -> None:
        self._links: dict[str, AgentLink] = {}

    def online(self, agent_id: str) -> bool:
        return agent_id in self._links

    async def attach(self, link: AgentLink) -> None:
        old = self._links.get(link.agent_id)
        self._links[link.agent_id] = link
        if old is not None:
            await old.ws.close(code=NORMAL_CLOSURE, reason="replaced by a newer link")

    def detach(self, link: AgentLink) -> bool:
        """Forget ``link`` if it is still the current one; True if it was."""
        if self._links.get(link.agent_id) is link:
            del self._links[link.agent_id]
            return True
        return False

    async def send(self, agent_id: str, message: Message) -> None:
        link = self._links.get(agent_id)
        if link is None:
            raise UnavailableError("the agent is offline")
        try:
            await link.send(message)
        except ConnectionClosed:
            raise UnavailableError("the agent is offline") from None

    async def close_agent(self, agent_id: str, reason: str = "agent revoked") -> None:
        link = self._links.pop(agent_id, None)
        if link is not None:
            await _close(link, POLICY_VIOLATION, reason)

    async def close_all(self, code: int = GOING_AWAY, reason: str = "relay shutting down") -> None:
        for link in list(self._links.values()):
            await _close(link, code, reason)

    def __len__(self) -> int:
        return len(self._links)


async def _close(link: AgentLink, code: int, reason: str) -> None:
    """Close a link; one that cannot be closed cleanly is gone anyway."""
    try:
        await link.ws.close(code=code, reason=reason)
    except Exception as exc:
        log.info("link of agent %s did not close cleanly: %s", link.agent_id, exc)
