"""Session limits and kinds end to end: a real relay on the test's loop (so the test
can step its monotonic clock), a real qp-agent process, real qp and asyncssh clients.

The timing rules themselves are proven with a fake clock in
tests/unit/test_session_limits.py; these tests prove the wiring: the relay's one
sweeper task, the tunnel closed with the end reason, the technician's one line,
the agent's enforcement of a files session."""

from __future__ import annotations

import asyncio
import json
import time

import asyncssh
import pytest

from harness import BIN, World, timeout
from relay.app import Relay
from relay.model import Session
from shared.clock import SystemClock
from shared.errors import UnavailableError
from shared.keys import generate_key, parse_certificate
from shared.ssh_options import client_options, connect
from shared.transport import dial
from shared.wstunnel import WebSocketTunnel
from tests.integration.inprocess import Lines, arun, node_with_agent
from tests.integration.toolkit_helpers import open_session, profile_of


class SteppedMonotonic(SystemClock):
    """The real clocks, with a monotonic clock the test can move forward."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead


async def ended(node: Relay, session_id: str, within: float = 20) -> Session:
    """The session's row once it has ended (polled, bounded)."""
    deadline = time.monotonic() + timeout(within)
    while True:
        row = await node.store.get_session(session_id)
        if row is not None and row.state == "ended":
            return row
        assert time.monotonic() < deadline, f"session {session_id} did not end"
        await asyncio.sleep(0.05)


async def logged_in(node: Relay, within: float = 20) -> str:
    """The id of the one live session once the agent reported its SSH login."""
    deadline = time.monotonic() + timeout(within)
    while True:
        live = [s for s in node.services.sessions.live.values() if s.ready.is_set()]
        if live:
            return live[0].row.id
        assert time.monotonic() < deadline, "no SSH login reported"
        await asyncio.sleep(0.05)


async def test_an_idle_session_ends_and_the_technician_reads_why(world: World) -> None:
    clock = SteppedMonotonic()
    async with node_with_agent(world, "idle-pc", clock=clock, idle_timeout=30) as node:
        run = await Lines.spawn(world, [str(BIN / "qp"), "exec", "idle-pc", "--", "sleep", "600"])
        sid = await logged_in(node)
        clock.ahead += 31 * 60  # half an hour passes without a byte of payload
        out, err = await asyncio.wait_for(run.proc.communicate(), timeout(60))
        row = await ended(node, sid)
    assert row.end_reason == "idle_timeout"
    lines = [line for line in err.decode().splitlines() if line.strip()]
    assert lines == [f"qp: session {sid} ended: idle for 30 minutes (idle_timeout)"], lines
    assert run.proc.returncode != 0


async def test_a_tunnel_without_an_ssh_login_is_closed_and_not_billed(world: World) -> None:
    async with node_with_agent(world, "nologin-pc", login_timeout=1) as node:
        key = generate_key()
        info = await open_session(profile_of(world, "admin"), "nologin-pc", "exec", key)
        # The technician's end pairs with the agent's, then never logs in.
        ws = await dial(
            info["tunnel_url"],
            tunnel=True,
            headers={"Authorization": f"Bearer {info['tunnel_token']}"},
        )
        try:
            row = await ended(node, info["session_id"])
        finally:
            await ws.close()
        entries = await node.store.list_time_entries()
    assert row.end_reason == "login_timeout"
    assert row.started_at is None
    assert [e for e in entries if info["session_id"] in e.session_ids] == []


async def test_the_technician_cap_refuses_the_extra_session_in_one_line(world: World) -> None:
    async with node_with_agent(world, "cap-pc", max_sessions_per_technician=1) as node:
        await open_session(profile_of(world, "admin"), "cap-pc", "exec", generate_key())
        code, _, err = await arun(
            world, [str(BIN / "qp"), "exec", "cap-pc", "--", "true"], check=False
        )
        audit = await node.store.list_audit()
    lines = [line for line in err.decode().splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1, lines
    assert "you have 1 open session already" in lines[0]
    assert "max_sessions_per_technician" in lines[0]
    refused = [a for a in audit if a.event == "session_refused"]
    assert refused and refused[-1].detail["reason"] == "max_sessions_per_technician"


async def test_a_files_session_gets_sftp_and_no_command(world: World) -> None:
    async with node_with_agent(world, "files-pc") as _node:
        key = generate_key()
        info = await open_session(profile_of(world, "admin"), "files-pc", "files", key)
        cert = parse_certificate(info["certificate"])
        ws = await dial(
            info["tunnel_url"],
            tunnel=True,
            headers={"Authorization": f"Bearer {info['tunnel_token']}"},
        )
        options = client_options(info["agent_id"], info["host_ca"], key, cert)
        conn = await connect(info["agent_id"], options, tunnel=WebSocketTunnel(ws))
        async with conn:
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.run("id")  # exec refused
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.create_process(term_type="xterm")  # shell and pty refused
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.open_connection("127.0.0.1", 9)  # no port forwards
            async with conn.start_sftp_client() as sftp:
                assert isinstance(await sftp.listdir("."), list)  # SFTP works


async def test_the_agent_caps_ssh_connections_that_have_not_logged_in(world: World) -> None:
    async with node_with_agent(world, "preauth-pc") as _node:
        config_file = world.root / "agents" / "preauth-pc" / "agent.json"
        config = json.loads(config_file.read_text())
        config["max_preauth_ssh_per_agent"] = 1  # read at every offer
        config_file.write_text(json.dumps(config))
        admin = profile_of(world, "admin")
        # The first tunnel is up on the agent's side, its SSH login still to come.
        await open_session(admin, "preauth-pc", "exec", generate_key())
        with pytest.raises(UnavailableError, match="too many SSH logins in progress"):
            await open_session(admin, "preauth-pc", "exec", generate_key())
