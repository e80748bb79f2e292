"""The console's control link: log in, call API methods."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from console.profile import Profile
from shared.errors import AuthError, RemoteProtocolError, UnavailableError, error_from_code
from shared.protocol.messages import RELAY_TO_CONSOLE, Message, decode, encode
from shared.transport import dial


class RelayClient:
    """``async with RelayClient(profile) as relay: await relay.call("agent.list")``"""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self.technician = ""
        self.role = ""

    async def __aenter__(self) -> RelayClient:
        self._ws = await dial(f"{self.profile.url}/v1/console", ca_file=self.profile.ca_file)
        try:
            await self._ws.send(encode(Message("login", {"token": self.profile.token})))
            reply = await self._receive()
        except BaseException:
            await self._ws.close()
            raise
        if reply.type == "error":
            await self._ws.close()
            raise AuthError(reply.body["message"])
        self.technician = reply.body["technician"]
        self.role = reply.body["role"]
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def _receive(self) -> Message:
        assert self._ws is not None
        try:
            return decode(await self._ws.recv(), RELAY_TO_CONSOLE)
        except ConnectionClosed as exc:
            reason = exc.rcvd.reason if exc.rcvd and exc.rcvd.reason else "connection closed"
            raise UnavailableError(f"the relay closed the connection: {reason}") from None

    async def call(
        self, method: str, on_event: Callable[[dict[str, Any]], None] | None = None, **params: Any
    ) -> Any:
        """Call ``method``; returns its value or raises the error the relay reported.
        ``on_event`` sees progress events (e.g. waiting for the client's consent)."""
        assert self._ws is not None, "use RelayClient as an async context manager"
        msg_id = next(self._ids)
        try:
            await self._ws.send(
                encode(Message("call", {"method": method, "params": params}, msg_id))
            )
        except ConnectionClosed:
            raise UnavailableError("the relay closed the connection") from None
        reply = await self._receive()
        while reply.type == "event":
            if on_event is not None and reply.id == msg_id:
                on_event(reply.body)
            reply = await self._receive()
        if reply.type == "error" and reply.id is None:  # the relay refused the link itself
            raise error_from_code(reply.body["code"], reply.body["message"])
        if reply.id != msg_id:
            raise RemoteProtocolError("reply does not match the call")
        if reply.type == "error":
            raise error_from_code(reply.body["code"], reply.body["message"])
        return reply.body["value"]
