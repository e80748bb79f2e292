"""The relay's one WebSocket server: HTTP routing, the Origin check, and the error
mapping of every control link.

- ``/v1/agent``   agents enroll once, then keep an authenticated control link.
- ``/v1/console`` technicians log in with their token and call API methods.
- ``/v1/tunnel/<session>`` one data WebSocket per side, paired and pumped.
- ``GET /healthz`` plain ``ok``; ``GET /readyz`` ``ready``, or 503 while the store
  refuses writes (no new sessions then).

Everything else is 404; a missing or wrong subprotocol is 400. Every failure of a
link ends in a close code and one log line; the peer gets our own reason, never
exception text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from relay.services.container import Services
from relay.transport.agent_link import agent_link
from relay.transport.console_link import ConsoleLinks, console_link
from relay.transport.gate import Gate, refuse
from relay.transport.links import AgentLinks
from relay.transport.proxy_protocol import proxied_connections
from relay.transport.tunnel import PREFIX, Tunnels
from shared.errors import AuthError, ConfigError, QPError, RemoteProtocolError
from shared.protocol.close_codes import INTERNAL_ERROR, PROTOCOL_ERROR
from shared.protocol.messages import SUBPROTOCOL

log = logging.getLogger("qp.relay")


@dataclass(frozen=True)
class Listen:
    host: str
    port: int
    tls: ssl.SSLContext | None = None


class RelayServer:
    """Serves one relay node's services over WebSocket."""

    def __init__(self, services: Services, links: AgentLinks) -> None:
        self.services = services
        self.links = links
        self.gate = Gate(services.clock, services.settings.limits, services.auditor)
        self.tunnels = Tunnels(services.sessions)
        self.consoles = ConsoleLinks()
        services.directory.consoles = self.consoles  # a disable closes their links
        self._server: Server | None = None

    async def start(self, listen: Listen) -> str:
        """Start listening; returns the URL actually bound (port 0 resolved)."""
        lim = self.services.settings.limits
        if lim.proxy_protocol and listen.tls is not None:
            raise ConfigError(
                "limits.proxy_protocol needs a plain listener behind the proxy "
                "(the PROXY header comes before TLS)"
            )
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
            create_connection=(
                proxied_connections(self.gate.addresses) if lim.proxy_protocol else None
            ),
        )
        sock = next(iter(self._server.sockets))
        host, port = sock.getsockname()[:2]
        scheme = "wss" if listen.tls else "ws"
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{port}"

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=False)

    async def close(self) -> None:
        """Close every link and the listening socket."""
        await self.links.close_all()
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), 5)
            except TimeoutError:
                log.warning("connections still open 5 s after the relay stopped")

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        path = request.path
        if path == "/healthz":
            return ws.respond(HTTPStatus.OK, "ok\n")
        if path == "/readyz":
            if self.services.sessions.ledger.writable:
                return ws.respond(HTTPStatus.OK, "ready\n")
            return ws.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "not ready: the store refuses writes\n"
            )
        if path in ("/v1/agent", "/v1/console"):
            if path == "/v1/console":
                origins = request.headers.get_all("Origin")
                if len(origins) > 1:  # which one would a browser mean? neither
                    return ws.respond(HTTPStatus.BAD_REQUEST, "more than one Origin header\n")
                if origins and origins[0] not in self.services.settings.limits.allowed_origins:
                    return ws.respond(HTTPStatus.FORBIDDEN, "forbidden origin\n")
            return None
        if path.startswith(PREFIX):
            bearer = request.headers.get_all("Authorization")
            if len(bearer) > 1:
                return ws.respond(HTTPStatus.BAD_REQUEST, "more than one Authorization header\n")
            if self.tunnels.claim(ws, path, bearer[0] if bearer else "") is None:
                # Unknown session, wrong, used or expired token: one answer for all.
                asyncio.ensure_future(
                    self.services.auditor.refused(
                        "tunnel_refused",
                        "anonymous",
                        path[len(PREFIX) :][:64],
                        peer=self.gate.client(ws, request),
                    )
                )
                return ws.respond(HTTPStatus.FORBIDDEN, "forbidden\n")
            return None
        return ws.respond(HTTPStatus.NOT_FOUND, "not found\n")

    async def _route(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else ""
        if path.startswith(PREFIX):
            await self.tunnels.serve(ws)
            return
        # Control links carry small JSON messages until authenticated.
        ws.protocol.max_message_size = self.services.settings.limits.control_max_size
        if not await self.gate.open(ws):
            return
        try:
            if path == "/v1/agent":
                await agent_link(self.services, self.links, self.gate, ws)
            else:
                await console_link(self.services, self.gate, ws, self.consoles)
        except RemoteProtocolError as exc:
            log.warning("closing %s link from %s: %s", path, self.gate.client(ws), exc)
            await ws.close(code=PROTOCOL_ERROR, reason="protocol error")
        except (ConnectionClosed, TimeoutError):
            pass
        except AuthError as exc:
            await self.gate.failed(ws, exc)
        except QPError as exc:  # e.g. the database refused a write: tell, don't crash
            log.error("%s link from %s failed: %s", path, self.gate.client(ws), exc)
            await refuse(ws, exc, code=INTERNAL_ERROR)
        except Exception:
            log.exception("internal error on %s link from %s", path, self.gate.client(ws))
            with contextlib.suppress(ConnectionClosed):
                await ws.close(code=INTERNAL_ERROR, reason="internal relay error")
        finally:
            self.gate.release(ws)
