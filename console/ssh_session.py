"""Open a relay session and connect SSH through its tunnel, end to end.

The technician's key is made fresh for every session and never leaves memory; the
relay certifies it for this session only. The agent's host certificate must be
signed by the relay's host CA for principal = agent id, or we abort before auth.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncssh

from console.output import say
from console.profile import Profile
from console.rpc import RelayClient
from shared.clock import clock_difference, parse_iso
from shared.errors import AuthError, UnavailableError
from shared.keys import generate_key, parse_certificate, public_text
from shared.protocol.end_text import describe
from shared.ssh_options import client_options, connect
from shared.transport import dial
from shared.wstunnel import WebSocketTunnel


@dataclass(frozen=True)
class Opened:
    session_id: str
    agent_id: str
    agent_name: str


def relay_ended(ws: Any, session_id: str) -> str | None:
    """``session <id> ended: <why> (<reason>)`` when the relay closed the tunnel
    with an end reason other than a plain completion; None otherwise."""
    rcvd = ws.protocol.close_rcvd
    if rcvd is None or not rcvd.reason or rcvd.reason.startswith("completed"):
        return None
    return describe(rcvd.reason, session_id)


def say_progress(event: dict[str, Any]) -> None:
    """Tell the technician what the session is waiting for (stderr, one line)."""
    if event.get("state") == "awaiting_consent":
        say("qp: waiting for the client's consent…", err=True)


async def request_session(
    relay: RelayClient,
    agent: str,
    kind: str,
    key: asyncssh.SSHKey | None = None,
    request: str | None = None,
) -> tuple[dict[str, Any], asyncssh.SSHKey]:
    """Open a session on the relay for ``key`` (a fresh one by default)."""
    key = key or generate_key()
    params: dict[str, Any] = {"agent": agent, "kind": kind, "public_key": public_text(key)}
    if request:
        params["request"] = request
    info = await relay.call("session.open", on_event=say_progress, **params)
    return info, key


def host_key_refused(
    exc: asyncssh.HostKeyNotVerifiable, agent_id: str, relay_time: str | None
) -> AuthError:
    """The line for a refused host key; a certificate refused for its validity
    period is this computer's clock disagreeing with the relay's, and says so."""
    if "not yet valid" in str(exc) or "expired" in str(exc):
        try:
            when = parse_iso(relay_time) if isinstance(relay_time, str) else None
        except ValueError:
            when = None  # not known: say the clocks differ without the amount
        diff = f": {clock_difference(datetime.now(UTC), when)}" if when else ""
        return AuthError(
            f"agent {agent_id}'s host certificate is not valid by this computer's clock; "
            f"the clocks differ{diff}. Set this computer's clock (or the relay's) right"
        )
    return AuthError(
        f"agent {agent_id} presented a host key the relay's host CA did not certify; "
        "connection aborted"
    )


@contextlib.asynccontextmanager
async def ssh_session(
    profile: Profile, agent: str, kind: str, request: str | None = None
) -> AsyncIterator[tuple[asyncssh.SSHClientConnection, Opened]]:
    """Yield an SSH connection to ``agent`` for a new session of ``kind``."""
    async with RelayClient(profile) as relay:
        info, key = await request_session(relay, agent, kind, request=request)
    cert = parse_certificate(info["certificate"])
    ws = await dial(
        info["tunnel_url"],
        tunnel=True,
        headers={"Authorization": f"Bearer {info['tunnel_token']}"},
        ca_file=profile.ca_file,
    )
    try:
        options = client_options(info["agent_id"], info["host_ca"], key, cert)
        conn = await connect(info["agent_id"], options, tunnel=WebSocketTunnel(ws))
    except asyncssh.HostKeyNotVerifiable as exc:
        await ws.close()
        raise host_key_refused(exc, info["agent_id"], info.get("relay_time")) from exc
    except asyncssh.PermissionDenied as exc:
        await ws.close()
        raise AuthError("the agent refused the session certificate") from exc
    except (asyncssh.Error, OSError) as exc:
        await ws.close()
        raise UnavailableError(f"SSH to the agent failed: {exc}") from exc
    opened = Opened(info["session_id"], info["agent_id"], info["agent_name"])
    try:
        yield conn, opened
    except (asyncssh.Error, ConnectionError) as exc:
        # The tunnel went away under us: the relay stopped or ended the session, the
        # client ended it, or the network broke. One line, no traceback.
        ended = relay_ended(ws, opened.session_id)
        if ended is not None:
            raise UnavailableError(ended) from exc
        reason = getattr(exc, "reason", "") or str(exc) or type(exc).__name__
        raise UnavailableError(f"session {opened.session_id} ended: {reason}") from exc
    else:
        # A command or shell cut off by the relay ends "normally" (status 255):
        # say why, in one line.
        ended = relay_ended(ws, opened.session_id)
        if ended is not None:
            say(f"qp: {ended}", err=True)
    finally:
        conn.close()
        with contextlib.suppress(Exception):
            await conn.wait_closed()
