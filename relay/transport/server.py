"""The relay's one WebSocket server: HTTP routing, the Origin check, and the error
mapping of every control link.

- ``/v1/agent``   agents enroll once, then keep an authenticated control link.
- ``/v1/console`` technicians log in with their token and call API methods.
- ``/v1/tunnel/<session>`` one data WebSocket per side, paired and pumped.
- ``GET /healthz`` plain ``ok``; ``GET /readyz`` ``ready``, or 503 with one line
  saying why: the store refuses writes (no new sessions then), or the SSH CA keys
  are not loaded (no certificates then).
- ``GET /metrics`` Prometheus text, only to peers in ``limits.metrics_allow``
  (default loopback) and never through a proxy (a request carrying a forwarding
  header is refused: behind a local proxy every peer would look like loopback).

Everything else is 404; a missing or wrong subprotocol is 400. Every failure of a
link ends in a close code and one log line; the peer gets our own reason, never
exception text.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from relay.services.container import Services
from relay.services.metrics import CONTENT_TYPE
from relay.transport.agent_link import agent_link
from relay.transport.console_link import ConsoleLinks, console_link
from relay.transport.gate import Gate, peer, refuse
from relay.transport.links import AgentLinks
from relay.transport.proxy_protocol import proxied_connections
from relay.transport.tunnel import PREFIX, Tunnels
from shared.errors import AuthError, ConfigError, QPError, RemoteProtocolError
from shared.protocol.close_codes import INTERNAL_ERROR, PROTOCOL_ERROR
from shared.protocol.messages import SUBPROTOCOL
from shared.protocol.session_state import State

log = logging.getLogger("qp.relay")


def address_allowed(address: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``address`` is in one of the ``allowed`` addresses or networks."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(item, strict=False) for item in allowed)


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
        self.gate = Gate(services.clock, services.live, services.auditor, services.metrics)
        self.tunnels = Tunnels(services.sessions)
        self.consoles = ConsoleLinks()
        services.directory.consoles = self.consoles  # a disable closes their links
        metrics = services.metrics
        metrics.gauge("qp_agents_online", "Agents with a control link now", lambda: len(links))
        metrics.gauge(
            "qp_preauth_connections",
            "Control links waiting for their first (authentication) message",
            lambda: self.gate.waiting,
        )
        metrics.gauge_by(
            "qp_sessions",
            "Open sessions by state",
            "state",
            (s.value for s in State if s is not State.ENDED),
            lambda: Counter(live.state.value for live in services.sessions.live.values()),
        )
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
            why = self._not_ready()
            if why is None:
                return ws.respond(HTTPStatus.OK, "ready\n")
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, f"not ready: {why}\n")
        if path == "/metrics":
            return self._metrics(ws, request)
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
                self.services.metrics.auth_failed("tunnel")
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

    def _not_ready(self) -> str | None:
        """Why this node should get no traffic now; None when it is ready."""
        if not self.services.sessions.ledger.writable:
            return "the store refuses writes"
        authorities = self.services.sessions.authorities
        if authorities is None or not authorities.loaded:
            return "the SSH CA keys are not loaded"
        return None

    def _metrics(self, ws: ServerConnection, request: Request) -> Response:
        """The metrics, to allowed peers that did not come through a proxy."""
        forwarded = any(request.headers.get(h) for h in ("Forwarded", "X-Forwarded-For"))
        forwarded = forwarded or getattr(ws, "proxied", None) is not None  # a PROXY header
        if forwarded or not address_allowed(peer(ws), self.services.settings.limits.metrics_allow):
            return ws.respond(HTTPStatus.FORBIDDEN, "forbidden\n")
        response = ws.respond(HTTPStatus.OK, self.services.metrics.render().decode())
        del response.headers["Content-Type"]  # Headers is a multidict: replace, not add
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

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
