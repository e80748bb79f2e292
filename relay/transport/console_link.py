"""``/v1/console``: a technician logs in with its token, then calls API methods.

Calls run one after another per link (a console opens one link per task). The
token is checked again before every call, so a disabled technician or a rotated
or expired token stops at once; a disable also closes the technician's links
(:class:`ConsoleLinks`). Errors become ``error`` results with our own message; an
unexpected failure is logged with its traceback and answered with a fixed text.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from websockets.asyncio.server import ServerConnection

from relay.api.context import Context
from relay.api.dispatch import call
from relay.model import Technician
from relay.services.container import Services
from relay.transport.gate import Gate, receive, shown
from shared.errors import QPError, RemoteProtocolError
from shared.protocol.close_codes import POLICY_VIOLATION
from shared.protocol.messages import (
    CONSOLE_TO_RELAY,
    MAX_CONTROL_MESSAGE,
    Message,
    encode,
    error_message,
)

log = logging.getLogger("qp.relay.console")

TOO_LARGE = "the answer is too large for one message; see the relay log"


class ConsoleLinks:
    """technician id → the console links logged in as them on this node."""

    def __init__(self) -> None:
        self._links: defaultdict[str, set[ServerConnection]] = defaultdict(set)

    @contextlib.contextmanager
    def attached(self, technician_id: str, ws: ServerConnection) -> Iterator[None]:
        """Know ``ws`` as one of the technician's links while the block runs."""
        self._links[technician_id].add(ws)
        try:
            yield
        finally:
            links = self._links.get(technician_id)
            if links is not None:
                links.discard(ws)
                if not links:
                    del self._links[technician_id]

    async def close_technician(self, technician_id: str, reason: str) -> int:
        """Close every link of the technician (a policy close with ``reason``)."""
        links = list(self._links.pop(technician_id, ()))
        for ws in links:
            with contextlib.suppress(Exception):  # gone already: nothing to close
                await ws.close(code=POLICY_VIOLATION, reason=reason[:120])
        return len(links)


async def console_link(
    services: Services, gate: Gate, ws: ServerConnection, consoles: ConsoleLinks
) -> None:
    """Serve one console link until it closes (AuthError propagates: refused)."""
    first = await gate.first(ws, CONSOLE_TO_RELAY)
    if first is None:
        return
    if first.type != "login":
        raise RemoteProtocolError("expected login")
    token = first.body["token"]
    tech = await services.directory.login(token, gate.client(ws))
    log.info("console of %s (%s) linked from %s", tech.name, tech.role, gate.client(ws))
    gate.passed(ws)
    await ws.send(encode(Message("login_ok", {"technician": tech.name, "role": tech.role})))
    limit = services.settings.limits.control_max_size
    with consoles.attached(tech.id, ws):
        while True:
            msg = await receive(ws, CONSOLE_TO_RELAY, limit)
            if msg.type != "call":
                raise RemoteProtocolError("expected call")
            # As stored now: a role change, a disable or a new token takes effect at once.
            tech = await services.directory.login(token, gate.client(ws))
            reply = encode(await _answer(services, tech, msg, ws))
            if len(reply.encode()) > MAX_CONTROL_MESSAGE:
                # The console would drop the link (1009): answer with an error instead.
                log.error(
                    "answer to %s is %d bytes, over one message",
                    msg.body["method"][:60],
                    len(reply),
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
        params: dict[str, Any] = msg.body.get("params") or {}
        value = await call(Context(services, tech, emit), name, params)
        return Message("result", {"value": value}, msg.id)
    except QPError as exc:
        if shown(exc) is not exc:
            log.error("%s failed: %s", name[:60], exc)
        exc = shown(exc)
        return error_message(exc.code, str(exc), msg.id)
    except Exception:
        log.exception("internal error in %s", name[:60])
        return error_message("internal", "internal relay error; see the relay log", msg.id)
