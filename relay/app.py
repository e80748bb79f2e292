"""The relay process: one WebSocket server with three endpoints and a health check.

- ``/v1/agent``   agents enroll once, then keep an authenticated control link.
- ``/v1/console`` technicians log in with their token and call API methods.
- ``/v1/tunnel/<session>`` one data WebSocket per side, paired and pumped.
- ``GET /healthz`` plain ``ok``.

Everything else is 404; a missing or wrong subprotocol is 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from relay import api
from relay.ca import Authorities, load_authorities
from relay.diag import Diagnostics
from relay.ids import token_hash
from relay.links import AgentLinks
from relay.model import Technician
from relay.recordings import Recordings
from relay.sessions import SessionManager, Tap
from relay.settings import Settings, load_settings
from relay.store import open_store
from relay.store.interface import Store
from relay.throttle import AuthThrottle
from shared.clock import Clock, SystemClock
from shared.errors import AuthError, QPError, RemoteProtocolError, UnavailableError
from shared.protocol.messages import (
    CONSOLE_TO_RELAY,
    SUBPROTOCOL,
    Message,
    decode,
    encode,
    error_message,
)

log = logging.getLogger("qp.relay")

DB_FILE = "relay.db"
SETTINGS_FILE = "relay.toml"
TUNNEL_PREFIX = "/v1/tunnel/"
MAX_AGENT_NAME = 64

# Close codes
PROTOCOL_ERROR = 1002
POLICY = 1008
INTERNAL = 1011
TRY_AGAIN = 1013


@dataclass(frozen=True)
class Listen:
    host: str
    port: int
    tls: ssl.SSLContext | None = None


class Relay:
    """All state of one relay node; created by :meth:`open`."""

    def __init__(
        self,
        data_dir: Path,
        store: Store,
        settings: Settings,
        authorities: Authorities,
        relay_id: str,
        clock: Clock,
        tap: Tap | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.store = store
        self.settings = settings
        self.authorities = authorities
        self.relay_id = relay_id
        self.clock = clock
        self.links = AgentLinks()
        self.sessions = SessionManager(store, clock, settings, relay_id, tap)
        self.sessions.notify_agent = self._notify_agent
        self.diag = Diagnostics(self)
        self.recordings = Recordings(data_dir)
        self.sessions.on_phase = self.diag.session_phase
        self.public_url = settings.public_url.rstrip("/")
        self._preauth = 0
        self._claimed: weakref.WeakKeyDictionary[ServerConnection, tuple[str, str]] = (
            weakref.WeakKeyDictionary()
        )
        self.throttle = AuthThrottle(clock, settings.limits.auth_failures_per_minute)
        self._server: Server | None = None
        self._background: list[asyncio.Task[None]] = []

    @classmethod
    async def open(
        cls, data_dir: Path, clock: Clock | None = None, tap: Tap | None = None
    ) -> Relay:
        """Load settings, keys and the store from an initialised data directory,
        and close sessions a previous run left open."""
        from relay.init import require_initialised

        require_initialised(data_dir)
        settings = load_settings(data_dir / SETTINGS_FILE)
        store = await open_store(f"sqlite:///{(data_dir / DB_FILE).resolve()}")
        relay_id = await store.get_meta("relay_id") or "relay"
        relay = cls(
            data_dir,
            store,
            settings,
            load_authorities(data_dir),
            relay_id,
            clock or SystemClock(),
            tap,
        )
        recovered = await relay.sessions.recover()
        if recovered:
            log.warning(
                "closed %d session(s) left open by an earlier run as 'recovered'", recovered
            )
        return relay

    # -- serving -------------------------------------------------------------------
    async def start(self, listen: Listen) -> str:
        """Start listening; returns the URL actually bound (port 0 resolved)."""
        lim = self.settings.limits
        self._server = await serve(
            self._route,
            listen.host,
            listen.port,
            ssl=listen.tls,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            compression=None,
            max_size=lim.tunnel_max_size,
            max_queue=lim.tunnel_max_queue,
            open_timeout=lim.open_timeout,
            ping_interval=lim.ping_interval,
            ping_timeout=lim.ping_timeout,
            process_request=self._process_request,
            server_header="qp-relay",
        )
        sock = next(iter(self._server.sockets))
        host, port = sock.getsockname()[:2]
        scheme = "wss" if listen.tls else "ws"
        shown = f"[{host}]" if ":" in host else host
        url = f"{scheme}://{shown}:{port}"
        if not self.public_url:
            self.public_url = url
        self._background.append(asyncio.create_task(self.sessions.heartbeat_forever()))
        return url

    async def stop(self) -> None:
        """Graceful stop: end sessions as ``relay_shutdown`` (entries written), close
        links, close the store."""
        if self._server is not None:
            self._server.close(close_connections=False)
        await self.sessions.shutdown()
        for task in self._background:
            task.cancel()
        await self.links.close_all()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        await self.store.close()

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        path = request.path
        if path == "/healthz":
            return ws.respond(HTTPStatus.OK, "ok\n")
        if path in ("/v1/agent", "/v1/console"):
            if path == "/v1/console" and not self._origin_ok(request.headers):
                return ws.respond(HTTPStatus.FORBIDDEN, "forbidden origin\n")
            return None
        if path.startswith(TUNNEL_PREFIX):
            return self._claim_tunnel(ws, request)
        return ws.respond(HTTPStatus.NOT_FOUND, "not found\n")

    def _origin_ok(self, headers: Headers) -> bool:
        origin = headers.get("Origin")
        return origin is None or origin in self.settings.limits.allowed_origins

    def _claim_tunnel(self, ws: ServerConnection, request: Request) -> Response | None:
        session_id = request.path[len(TUNNEL_PREFIX) :]
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        side = self.sessions.claim_token(session_id, token) if token else None
        if side is None:
            # Unknown session, wrong, used or expired token: one answer for all.
            asyncio.ensure_future(
                self.store.audit(
                    self.clock.now(),
                    "tunnel_refused",
                    "anonymous",
                    session_id[:64],
                    peer=str(ws.remote_address[0]) if ws.remote_address else "",
                )
            )
            return ws.respond(HTTPStatus.FORBIDDEN, "forbidden\n")
        # The handshake's answer (side) travels to the handler with the connection.
        self._claimed[ws] = (session_id, side)
        return None

    async def _route(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else ""
        if path.startswith(TUNNEL_PREFIX):
            session_id, side = self._claimed.pop(ws)
            await self.sessions.run_tunnel(session_id, side, ws)
            return
        # Control links carry small JSON messages only.
        # Small until authenticated; a linked agent may then send snapshots.
        ws.protocol.max_message_size = self.settings.limits.control_max_size
        handler: Callable[[ServerConnection], Awaitable[None]] = (
            self._agent_link if path == "/v1/agent" else self._console_link
        )
        try:
            await handler(ws)
        except RemoteProtocolError as exc:
            log.warning("closing %s link from %s: %s", path, _peer(ws), exc)
            await ws.close(code=PROTOCOL_ERROR, reason=f"protocol error: {exc}"[:120])
        except (ConnectionClosed, TimeoutError):
            pass
        except AuthError as exc:
            self.throttle.failed(_peer(ws))
            await self.refuse(ws, exc)
        except QPError as exc:  # e.g. the database refused a write: tell, don't crash
            log.error("%s link from %s failed: %s", path, _peer(ws), exc)
            await self.refuse(ws, exc, code=INTERNAL)
        except Exception:
            log.exception("internal error on %s link from %s", path, _peer(ws))
            await ws.close(code=INTERNAL, reason="internal relay error")

    async def recv(self, ws: ServerConnection, allowed: frozenset[str]) -> Message:
        limit = ws.protocol.max_message_size or self.settings.limits.control_max_size
        return decode(await ws.recv(), allowed, limit)

    async def preauth_recv(self, ws: ServerConnection, allowed: frozenset[str]) -> Message | None:
        """First message of a link, under the pre-auth cap and timeout."""
        if self._preauth >= self.settings.limits.max_preauth:
            await ws.close(code=TRY_AGAIN, reason="busy, retry later")
            return None
        if self.throttle.blocked(_peer(ws)):
            await self.store.audit(
                self.clock.now(), "auth_throttled", "anonymous", "", peer=_peer(ws)
            )
            await self.refuse(ws, UnavailableError("too many failed attempts; retry in a minute"))
            return None
        self._preauth += 1
        try:
            return await asyncio.wait_for(self.recv(ws, allowed), self.settings.limits.auth_timeout)
        finally:
            self._preauth -= 1

    # -- agents ------------------------------------------------------------------------
    async def _agent_link(self, ws: ServerConnection) -> None:
        from relay.agent_link import agent_link

        await agent_link(self, ws)

    async def refuse(self, ws: ServerConnection, exc: QPError, code: int = POLICY) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(encode(error_message(exc.code, str(exc))))
        await ws.close(code=code, reason=str(exc)[:120])

    async def _notify_agent(self, agent_id: str, session_id: str, reason: str) -> None:
        if self.links.online(agent_id):
            await self.links.send(
                agent_id, Message("session_end", {"session_id": session_id, "reason": reason})
            )

    async def disconnect_agent(self, agent_id: str) -> None:
        """Drop the agent's link and end its sessions (after a revoke)."""
        from shared.protocol.session_state import Event

        for live in list(self.sessions.live.values()):
            if live.row.agent_id == agent_id:
                await self.sessions.end(live, Event.AGENT_OFFLINE)
        await self.links.close_agent(agent_id)

    # -- technicians -------------------------------------------------------------------
    async def _console_link(self, ws: ServerConnection) -> None:
        first = await self.preauth_recv(ws, CONSOLE_TO_RELAY)
        if first is None:
            return
        if first.type != "login":
            raise RemoteProtocolError("expected login")
        tech = await self.store.technician_by_token(token_hash(first.body["token"]))
        if tech is None:
            self.throttle.failed(_peer(ws))
            await self.store.audit(
                self.clock.now(), "login_refused", "anonymous", "", peer=_peer(ws)
            )
            await self.refuse(
                ws, AuthError("the relay refused this token; ask an admin for a new one")
            )
            return
        await ws.send(encode(Message("login_ok", {"technician": tech.name, "role": tech.role})))
        while True:
            msg = await self.recv(ws, CONSOLE_TO_RELAY)
            if msg.type != "call":
                raise RemoteProtocolError("expected call")
            # Calls run one after another per link; a console opens one link per task.
            await ws.send(encode(await self._call(tech, msg, ws)))

    async def _call(self, tech: Technician, msg: Message, ws: ServerConnection) -> Message:
        name = msg.body["method"]

        async def emit(body: dict[str, Any]) -> None:
            await ws.send(encode(Message("event", body, msg.id)))

        api.EMIT.set(emit)
        fn = api.METHODS.get(name)
        try:
            if fn is None:
                raise RemoteProtocolError(f"unknown method {name[:60]!r}")
            params: dict[str, Any] = msg.body.get("params") or {}
            # Re-read the technician so a role change or disable takes effect at once.
            current = await self.store.get_technician(tech.id)
            if current is None or current.disabled:
                raise AuthError("this technician is disabled")
            value = await fn(self, current, params)
            return Message("result", {"value": value}, msg.id)
        except QPError as exc:
            return error_message(exc.code, str(exc), msg.id)
        except Exception:
            log.exception("internal error in %s", name)
            return error_message("internal", "internal relay error; see the relay log", msg.id)


def _peer(ws: ServerConnection) -> str:
    addr = ws.remote_address
    return str(addr[0]) if addr else "?"
