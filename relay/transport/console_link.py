"""``/v1/console``: a technician logs in with its token, then calls API methods.

Calls run one after another per link (a console opens one link per task). Errors
become ``error`` results with our own message; an unexpected failure is logged
with its traceback and answered with a fixed text.
"""

from __future__ import annotations

import logging
from typing import Any

from websockets.asyncio.server import ServerConnection

from relay.api.context import Context
from relay.api.dispatch import call
from relay.model import Technician
from relay.services.container import Services
from relay.transport.gate import Gate, receive, shown
from shared.errors import QPError, RemoteProtocolError
from shared.protocol.messages import (
    CONSOLE_TO_RELAY,
    MAX_CONTROL_MESSAGE,
    Message,
    encode,
    error_message,
)

log = logging.getLogger("qp.relay.console")

TOO_LARGE = "the answer is too large for one message; see the relay log"


async def console_link(services: Services, gate: Gate, ws: ServerConnection) -> None:
    """Serve one console link until it closes (AuthError propagates: refused)."""
    first = await gate.first(ws, CONSOLE_TO_RELAY)
    if first is None:
        return
    if first.type != "login":
        raise RemoteProtocolError("expected login")
    tech = await services.directory.login(first.body["token"], gate.client(ws))
    gate.passed(ws)
    await ws.send(encode(Message("login_ok", {"technician": tech.name, "role": tech.role})))
    limit = services.settings.limits.control_max_size
    while True:
        msg = await receive(ws, CONSOLE_TO_RELAY, limit)
        if msg.type != "call":
            raise RemoteProtocolError("expected call")
        reply = encode(await _answer(services, tech, msg, ws))
        if len(reply.encode()) > MAX_CONTROL_MESSAGE:
            # The console would drop the link (1009): answer with an error instead.
            log.error(
                "answer to %s is %d bytes, over one message", msg.body["method"][:60], len(reply)
            )
            reply = encode(error_message("internal", TOO_LARGE, msg.id))
        await ws.send(reply)


async def _answer(
    services: Services, tech: Technician, msg: Message, ws: ServerConnection
) -> Message:
    name = msg.body["method"]

    async def emit(body: dict[str, Any]) -> None:
        await ws.send(encode(Message("event", body, msg.id)))

    try:
        current = await services.directory.current(tech.id)
        params: dict[str, Any] = msg.body.get("params") or {}
        value = await call(Context(services, current, emit), name, params)
        return Message("result", {"value": value}, msg.id)
    except QPError as exc:
        if shown(exc) is not exc:
            log.error("%s failed: %s", name[:60], exc)
        exc = shown(exc)
        return error_message(exc.code, str(exc), msg.id)
    except Exception:
        log.exception("internal error in %s", name[:60])
        return error_message("internal", "internal relay error; see the relay log", msg.id)
