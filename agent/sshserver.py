"""One technician session on the agent: dial the tunnel, serve SSH through it.

The user CA is trusted for exactly this session's principal; the session's policy
(from the relay's offer) decides the SFTP root and which port-forward
destinations are reachable, enforced here whatever the certificate says. So is the
session's kind: a ``files`` session gets the SFTP subsystem only (no command, shell,
PTY or port forward), whatever the certificate permits. When the certificate's
validity ends (``expires_in`` seconds in the offer) the agent closes the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import asyncssh
from websockets.asyncio.client import ClientConnection

from agent.audit import AgentAudit
from agent.files import Identity
from agent.processes import SessionContext, process_handler
from agent.sftp import ConfinedSFTPServer
from shared.forwarding import ForwardPolicy, IPAddress
from shared.ssh_options import server_options
from shared.transport import dial
from shared.wstunnel import WebSocketTunnel

log = logging.getLogger("qp.agent.ssh")


class SessionServer(asyncssh.SSHServer):
    """Per-connection hooks: port-forward requests checked against policy."""

    def __init__(self, ctx: SessionContext, forwards: ForwardPolicy, files_only: bool) -> None:
        self._ctx = ctx
        self._forwards = forwards
        self._files_only = files_only
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> Any:
        return self._forward(dest_host, dest_port)

    async def _forward(self, host: str, port: int) -> Any:
        assert self._conn is not None
        if self._files_only:
            self._ctx.audit.record("forward_refused", self._ctx.session_id, host=host, port=port)
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "a files session forwards no ports"
            )
        addresses = await _resolve(host, port)
        if not self._forwards.allows(host, port, addresses):
            self._ctx.audit.record("forward_refused", self._ctx.session_id, host=host, port=port)
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                f"{host}:{port} is not allowed by this customer's forwarding policy",
            )
        self._ctx.audit.record(
            "forward", self._ctx.session_id, host=host, port=port, address=str(addresses[0])
        )
        # Connect to the address we checked, not the name: no DNS rebinding.
        return await self._conn.forward_connection(str(addresses[0]), port)


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    found: list[IPAddress] = []
    for info in infos:
        try:
            found.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except ValueError:
            continue
    return found


async def open_tunnel(ident: Identity, tunnel_url: str, token: str) -> ClientConnection:
    """Dial this side of the session's tunnel with its single-use token."""
    return await dial(
        tunnel_url, tunnel=True, headers={"Authorization": f"Bearer {token}"}, ca_file=ident.ca_file
    )


def sftp_root(policy: dict[str, Any]) -> str:
    root = policy.get("sftp_root")
    return root if isinstance(root, str) and root.startswith("/") else "/"


async def serve_session(
    ident: Identity,
    session_id: str,
    ws: ClientConnection,
    ctx: SessionContext,
    policy: dict[str, Any],
    on_ready: Callable[[], Awaitable[None]] | None = None,
    *,
    kind: str = "",
    expires_in: float | None = None,
) -> None:
    """Serve SSH for ``session_id`` over ``ws`` until the technician leaves, or
    until ``expires_in`` seconds (the session certificate's validity) have passed."""
    root = sftp_root(policy)
    forwards = ForwardPolicy.from_offer(policy)
    audit: AgentAudit = ctx.audit
    files_only = kind == "files"
    options = server_options(
        ident.host_key,
        ident.host_cert,
        ident.user_ca,
        session_id,
        # Without a process factory asyncssh refuses exec and shell requests and
        # still serves the SFTP subsystem: a files session is a file boundary.
        process_factory=None if files_only else process_handler(ctx),
        sftp_factory=lambda chan: ConfinedSFTPServer(chan, root, audit, session_id),
        server_factory=lambda: SessionServer(ctx, forwards, files_only),
    )
    conn = await asyncssh.connect_reverse(
        session_id, 0, tunnel=WebSocketTunnel(ws), options=options
    )
    log.info("session %s: technician connected (%s, sftp root %s)", session_id, kind, root)
    expiry = None
    if expires_in is not None:
        # The certificate expires: no new channels after it, nor the open ones.
        expiry = asyncio.get_running_loop().call_later(max(0.0, expires_in), conn.close)
    if on_ready is not None:
        await on_ready()  # the relay bills only sessions whose login succeeded
    try:
        await conn.wait_closed()
    finally:
        if expiry is not None:
            expiry.cancel()
        conn.close()
        log.info("session %s: closed", session_id)
