"""``/v1/tunnel/<session>``: claim a tunnel end at the handshake, then pump.

The token is checked while the HTTP upgrade is answered, so a refused end never
becomes a WebSocket; the side it claimed travels to the connection handler in a
weak map keyed by the connection.
"""

from __future__ import annotations

import weakref

from websockets.asyncio.server import ServerConnection

from relay.services.sessions import SessionManager
from relay.transport.pump import pump
from shared.protocol.session_state import AGENT, TECHNICIAN

PREFIX = "/v1/tunnel/"


class TunnelSocket:
    """A tunnel end as the session manager sees it."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code=code, reason=reason)


class Tunnels:
    """Claims and serves the tunnel ends of this node's sessions."""

    def __init__(self, sessions: SessionManager) -> None:
        self.sessions = sessions
        self._claimed: weakref.WeakKeyDictionary[ServerConnection, tuple[str, str]] = (
            weakref.WeakKeyDictionary()
        )

    def claim(self, ws: ServerConnection, path: str, authorization: str) -> str | None:
        """Use the bearer token of a tunnel request; the session id if it is good."""
        session_id = path[len(PREFIX) :]
        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        side = self.sessions.claim_token(session_id, token) if token else None
        if side is None:
            return None
        self._claimed[ws] = (session_id, side)
        return session_id

    async def serve(self, ws: ServerConnection) -> None:
        """Serve one claimed tunnel end until the session is over."""
        session_id, side = self._claimed.pop(ws)
        live = await self.sessions.join(session_id, side, TunnelSocket(ws))
        if live is None:
            return
        other = live.ends[TECHNICIAN if side == AGENT else AGENT]
        assert isinstance(other, TunnelSocket)
        direction = "to_technician" if side == AGENT else "to_agent"
        closed = await pump(ws, other.ws, lambda data: self.sessions.count(live, direction, data))
        left = side if closed == "src" else (TECHNICIAN if side == AGENT else AGENT)
        await self.sessions.left(live, left)
