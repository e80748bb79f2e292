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
import secrets
import ssl
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
from relay.ids import new_id, token_hash
from relay.links import AgentLink, AgentLinks
from relay.sessions import SessionManager, Tap
from relay.settings import Settings, load_settings
from relay.store import open_store
from relay.store.base import Agent, Store, Technician
from relay.throttle import AuthThrottle
from shared.clock import Clock, SystemClock
from shared.errors import AuthError, QPError, RemoteProtocolError, UnavailableError
from shared.keys import (
    certificate_text,
    parse_public_key,
    public_text,
    verify_challenge,
)
from shared.protocol.messages import (
    AGENT_TO_RELAY,
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
        self.public_url = settings.public_url.rstrip("/")
        self._preauth = 0
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
        ws.qp_tunnel = (session_id, side)  # type: ignore[attr-defined]
        return None

    async def _route(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else ""
        if path.startswith(TUNNEL_PREFIX):
            session_id, side = ws.qp_tunnel  # type: ignore[attr-defined]
            await self.sessions.run_tunnel(session_id, side, ws)
            return
        # Control links carry small JSON messages only.
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
            await self._refuse(ws, exc)
        except QPError as exc:  # e.g. the database refused a write: tell, don't crash
            log.error("%s link from %s failed: %s", path, _peer(ws), exc)
            await self._refuse(ws, exc, code=INTERNAL)
        except Exception:
            log.exception("internal error on %s link from %s", path, _peer(ws))
            await ws.close(code=INTERNAL, reason="internal relay error")

    async def _recv(self, ws: ServerConnection, allowed: frozenset[str]) -> Message:
        return decode(await ws.recv(), allowed, self.settings.limits.control_max_size)

    async def _preauth_recv(self, ws: ServerConnection, allowed: frozenset[str]) -> Message | None:
        """First message of a link, under the pre-auth cap and timeout."""
        if self._preauth >= self.settings.limits.max_preauth:
            await ws.close(code=TRY_AGAIN, reason="busy, retry later")
            return None
        if self.throttle.blocked(_peer(ws)):
            await self.store.audit(
                self.clock.now(), "auth_throttled", "anonymous", "", peer=_peer(ws)
            )
            await self._refuse(ws, UnavailableError("too many failed attempts; retry in a minute"))
            return None
        self._preauth += 1
        try:
            return await asyncio.wait_for(
                self._recv(ws, allowed), self.settings.limits.auth_timeout
            )
        finally:
            self._preauth -= 1

    # -- agents ------------------------------------------------------------------------
    async def _agent_link(self, ws: ServerConnection) -> None:
        nonce = secrets.token_urlsafe(24)
        await ws.send(encode(Message("challenge", {"nonce": nonce, "relay_id": self.relay_id})))
        first = await self._preauth_recv(ws, AGENT_TO_RELAY)
        if first is None:
            return
        if first.type == "enroll":
            await self._enroll(ws, first, nonce)
            return
        if first.type != "auth":
            raise RemoteProtocolError(f"expected auth, got {first.type}")
        agent = await self.store.get_agent(first.body["agent_id"][:64])
        try:
            if agent is None or agent.revoked:
                raise AuthError("authentication failed")
            verify_challenge(agent.identity_key, first.body["signature"], nonce, self.relay_id)
        except AuthError:
            self.throttle.failed(_peer(ws))
            await self.store.audit(
                self.clock.now(),
                "agent_auth_refused",
                first.body["agent_id"][:64],
                "",
                peer=_peer(ws),
            )
            await self._refuse(ws, AuthError("authentication failed"))
            return
        link = AgentLink(agent.id, ws)
        await self.links.attach(link)
        await self.store.touch_agent(agent.id, self.clock.now())
        log.info("agent %s (%s) online from %s", agent.id, agent.name, _peer(ws))
        try:
            await link.send(Message("welcome", {"agent_id": agent.id, "name": agent.name}))
            while True:
                msg = await self._recv(ws, AGENT_TO_RELAY)
                if msg.type == "session_accept":
                    self.sessions.resolve_offer(agent.id, msg.body["session_id"], None)
                elif msg.type == "session_decline":
                    reason = msg.body["reason"][:200] or "declined"
                    self.sessions.resolve_offer(agent.id, msg.body["session_id"], reason)
                else:
                    raise RemoteProtocolError(f"unexpected {msg.type} on a linked agent")
        finally:
            if self.links.detach(link):
                await self.sessions.agent_gone(agent.id)
                with contextlib.suppress(Exception):
                    await self.store.touch_agent(agent.id, self.clock.now())
                log.info("agent %s offline", agent.id)

    async def _enroll(self, ws: ServerConnection, msg: Message, nonce: str) -> None:
        body = msg.body
        now = self.clock.now()
        identity = parse_public_key(body["identity_key"])
        host_key = parse_public_key(body["host_key"])
        # Proof that the enrolling party holds the identity key it registers.
        verify_challenge(public_text(identity), body["signature"], nonce, self.relay_id)
        token = await self.store.consume_enroll_token(token_hash(body["token"]), now)
        if token is None:
            self.throttle.failed(_peer(ws))
            await self.store.audit(now, "enroll_refused", "anonymous", "", peer=_peer(ws))
            await self._refuse(ws, AuthError("enrollment token is invalid, expired or used up"))
            return
        name = "".join(ch for ch in body["name"] if ch.isprintable())[:MAX_AGENT_NAME] or "agent"
        agent = Agent(
            id=new_id("agt"),
            name=name,
            customer_id=token.customer_id,
            identity_key=public_text(identity),
            host_key=public_text(host_key),
            enrolled_at=now,
        )
        await self.store.add_agent(agent)
        cert = self.authorities.sign_host(
            host_key, agent.id, now, self.settings.limits.host_cert_days
        )
        await self.store.audit(
            now, "enroll", agent.id, agent.customer_id, token=token.id, name=name
        )
        await ws.send(
            encode(
                Message(
                    "enrolled",
                    {
                        "agent_id": agent.id,
                        "name": name,
                        "host_certificate": certificate_text(cert),
                        "user_ca": self.authorities.user_ca_public,
                        "host_ca": self.authorities.host_ca_public,
                    },
                )
            )
        )
        await ws.close()

    async def _refuse(self, ws: ServerConnection, exc: QPError, code: int = POLICY) -> None:
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
        first = await self._preauth_recv(ws, CONSOLE_TO_RELAY)
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
            await self._refuse(
                ws, AuthError("the relay refused this token; ask an admin for a new one")
            )
            return
        await ws.send(encode(Message("login_ok", {"technician": tech.name, "role": tech.role})))
        while True:
            msg = await self._recv(ws, CONSOLE_TO_RELAY)
            if msg.type != "call":
                raise RemoteProtocolError("expected call")
            # Calls run one after another per link; a console opens one link per task.
            await ws.send(encode(await self._call(tech, msg)))

    async def _call(self, tech: Technician, msg: Message) -> Message:
        name = msg.body["method"]
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
