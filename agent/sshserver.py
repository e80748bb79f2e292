"""One technician session on the agent: dial the tunnel, serve SSH through it."""

from __future__ import annotations

import logging

import asyncssh
from websockets.asyncio.client import ClientConnection

from agent.files import Identity
from agent.processes import handle_process
from shared.transport import dial
from shared.wstunnel import WebSocketTunnel

log = logging.getLogger("qp.agent.ssh")

LOGIN_TIMEOUT = 30
KEEPALIVE = 30


def authorized_for(user_ca: str, session_id: str) -> asyncssh.SSHAuthorizedKeys:
    """Trust the user CA for exactly this session's principal.

    The ``principals=`` restriction matters: without it asyncssh would accept a
    certificate with no principals at all (spike notes, trap 2).
    """
    if not session_id.replace("-", "").isalnum():
        raise ValueError("malformed session id")
    return asyncssh.import_authorized_keys(
        f'cert-authority,principals="session:{session_id}" {user_ca}\n'
    )


async def open_tunnel(ident: Identity, tunnel_url: str, token: str) -> ClientConnection:
    """Dial this side of the session's tunnel with its single-use token."""
    return await dial(
        tunnel_url, tunnel=True, headers={"Authorization": f"Bearer {token}"}, ca_file=ident.ca_file
    )


async def serve_session(ident: Identity, session_id: str, ws: ClientConnection) -> None:
    """Serve SSH for ``session_id`` over ``ws`` until the technician leaves."""
    conn = await asyncssh.connect_reverse(
        session_id,
        0,
        tunnel=WebSocketTunnel(ws),
        config=None,
        server_host_keys=[(ident.host_key, ident.host_cert)],
        authorized_client_keys=authorized_for(ident.user_ca, session_id),
        process_factory=handle_process,
        encoding=None,
        login_timeout=LOGIN_TIMEOUT,
        keepalive_interval=KEEPALIVE,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        sftp_factory=None,
        compression_algs=None,
    )
    log.info("session %s: technician connected", session_id)
    try:
        await conn.wait_closed()
    finally:
        conn.close()
        log.info("session %s: closed", session_id)
