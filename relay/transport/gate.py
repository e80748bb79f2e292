"""The pre-auth gate: the first message of every control link, under a cap on
unauthenticated connections, a timeout, and a throttle on failed authentication.

A refusal always answers the first message (an ``error`` with the reason, then a
close with the same reason), so the peer can tell a refusal from a dropped link.
"""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from relay.core.throttle import AuthThrottle
from relay.services.audit import Auditor
from relay.settings import Limits
from shared.clock import Clock
from shared.errors import QPError, StorageError, UnavailableError
from shared.protocol.close_codes import POLICY_VIOLATION, TRY_AGAIN_LATER
from shared.protocol.messages import Message, decode, encode, error_message


def peer(ws: ServerConnection) -> str:
    """The peer's address as the throttle and the audit log know it."""
    addr = ws.remote_address
    return str(addr[0]) if addr else "?"


def shown(exc: QPError) -> QPError:
    """What a peer is told of ``exc``: our own message; a storage failure's text
    (the database's words) stays in the relay's log."""
    if isinstance(exc, StorageError):
        return UnavailableError("the relay could not store this; try again later")
    return exc


async def refuse(ws: ServerConnection, exc: QPError, code: int = POLICY_VIOLATION) -> None:
    """Tell the peer why (our own message, never a traceback) and close."""
    exc = shown(exc)
    with contextlib.suppress(ConnectionClosed):
        await ws.send(encode(error_message(exc.code, str(exc))))
    await ws.close(code=code, reason=str(exc)[:120])


async def receive(ws: ServerConnection, allowed: frozenset[str], limit: int) -> Message:
    """The next control message, decoded and checked against ``allowed``."""
    return decode(await ws.recv(), allowed, ws.protocol.max_message_size or limit)


class Gate:
    """Admits the first message of a link, or refuses it with a reason."""

    def __init__(self, clock: Clock, limits: Limits, auditor: Auditor) -> None:
        self.limits = limits
        self.auditor = auditor
        self.throttle = AuthThrottle(clock, limits.auth_failures_per_minute)
        self._waiting = 0

    def failed(self, ws: ServerConnection) -> None:
        """Count a failed authentication from this peer."""
        self.throttle.failed(peer(ws))

    def throttled(self, ws: ServerConnection) -> bool:
        return self.throttle.blocked(peer(ws))

    async def first(self, ws: ServerConnection, allowed: frozenset[str]) -> Message | None:
        """The link's first message; None when the link was refused (busy, or its
        peer throttled: then the message is answered with the reason, and audited)."""
        if self._waiting >= self.limits.max_preauth:
            await ws.close(code=TRY_AGAIN_LATER, reason="busy, retry later")
            return None
        self._waiting += 1
        try:
            message = await asyncio.wait_for(
                receive(ws, allowed, self.limits.control_max_size), self.limits.auth_timeout
            )
        finally:
            self._waiting -= 1
        if self.throttled(ws):
            await self.auditor.refused("auth_throttled", "anonymous", peer=peer(ws))
            await refuse(ws, UnavailableError("too many failed attempts; retry in a minute"))
            return None
        return message
