"""Shared helpers for the technician-toolkit acceptance tests (test_toolkit_*.py)."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import secrets
import select
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from console.profile import Profile
from console.rpc import RelayClient
from harness import BIN, Proc, World, timeout
from shared.keys import public_text
from shared.ssh_options import client_options, connect
from shared.transport import dial
from shared.wstunnel import WebSocketTunnel

T = TypeVar("T")


@dataclass(frozen=True)
class IsolatedAgent:
    """An agent enrolled for one test module only, so its policy and its audit log
    are not shared with other tests."""

    agent_id: str
    name: str
    data: Path
    proc: Proc


def isolated_agent(world: World, customer: str, name: str) -> IsolatedAgent:
    agent_id, data = world.enroll(customer, name)
    return IsolatedAgent(agent_id, name, data, world.start_agent(data))


def set_policy(world: World, agent: str, *flags: str) -> dict[str, Any]:
    """``qp agent policy AGENT FLAGS…`` as admin; the effective policy."""
    value: dict[str, Any] = world.qp_json("agent", "policy", agent, *flags)["policy"]
    return value


def one_line(stderr: bytes | str) -> str:
    """The only non-empty line of a failed command's stderr."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def agent_events(data: Path, event: str | None = None) -> list[dict[str, Any]]:
    """The agent's own audit log (``<data>/audit.log``), optionally one event kind."""
    path = data / "audit.log"
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if event is None or e.get("event") == event]


def wait_until(check: Callable[[], T | None], what: str, within: float = 15) -> T:
    """Poll ``check`` until it returns something truthy; bounded by ``within``."""
    deadline = time.monotonic() + timeout(within)
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def session_row(world: World, session_id: str, home: str = "admin") -> dict[str, Any]:
    rows = {s["id"]: s for s in world.qp_json("sessions", home=home)}
    row: dict[str, Any] = rows[session_id]
    return row


def wait_session_ended(world: World, session_id: str, within: float = 15) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        row = session_row(world, session_id)
        return row if row["state"] == "ended" else None

    return wait_until(ended, f"session {session_id} to end", within)


def spawn_qp(world: World, *args: str, home: str = "alice", stdin: int | None = None) -> Proc:
    """A long-running ``qp`` (forward, exec waiting for consent…) as a Proc."""
    return world.spawn([str(BIN / "qp"), *args], home=home, stdin=stdin)


def qp_agent(
    world: World, *args: str, data: Path, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """``qp-agent ARGS --data DATA`` (the client's side of the machine)."""
    return world.run([str(BIN / "qp-agent"), *args, "--data", str(data)], check=check)


def drive_pty(
    argv: list[str], env: dict[str, str], lines: list[bytes], within: float = 30
) -> tuple[bytes, int]:
    """Run ``argv`` on a fresh PTY, type ``lines`` one by one (each once the previous
    one has been echoed back), return everything shown and the exit code."""
    pid, fd = pty.fork()
    if pid == 0:  # child: the PTY is its controlling terminal
        os.execve(argv[0], argv, env)
    out = b""
    sent = 0
    deadline = time.monotonic() + timeout(within)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
        if sent < len(lines) and (sent == 0 or lines[sent - 1].strip() in out):
            os.write(fd, lines[sent])
            sent += 1
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return out, os.waitstatus_to_exitcode(status)


# -- talking SSH to an agent by hand (crafted certificates) ----------------------------------


def profile_of(world: World, home: str) -> Profile:
    """The profile ``qp login`` saved for ``home``."""
    data = json.loads((world.root / "qp" / home / "profile.json").read_text())
    return Profile(str(data["url"]), str(data["token"]))


async def open_session(
    profile: Profile, agent: str, kind: str, key: asyncssh.SSHKey
) -> dict[str, Any]:
    """``session.open`` for our own ``key``, as console/ssh_session.py does it."""
    async with RelayClient(profile) as client:
        info: dict[str, Any] = await client.call(
            "session.open", agent=agent, kind=kind, public_key=public_text(key)
        )
    return info


def craft_certificate(
    world: World,
    key: asyncssh.SSHKey,
    session_id: str,
    permit_port_forwarding: bool = True,
) -> asyncssh.SSHCertificate:
    """A user certificate for ``session:<id>`` signed with the relay's own user CA."""
    ca = asyncssh.read_private_key(world.relay_data / "user_ca")
    now = int(time.time())
    return ca.generate_user_certificate(
        key,
        key_id=f"crafted/{session_id}",
        principals=[f"session:{session_id}"],
        valid_after=now - 60,
        valid_before=now + 600,
        permit_port_forwarding=permit_port_forwarding,
        permit_pty=False,
        permit_agent_forwarding=False,
        permit_x11_forwarding=False,
        permit_user_rc=False,
    )


async def ssh_connect(
    info: dict[str, Any], key: asyncssh.SSHKey, cert: asyncssh.SSHCertificate
) -> asyncssh.SSHClientConnection:
    """Dial the technician's end of the tunnel and log in with ``key`` + ``cert``."""
    ws = await dial(
        info["tunnel_url"],
        tunnel=True,
        headers={"Authorization": f"Bearer {info['tunnel_token']}"},
    )
    options = client_options(info["agent_id"], info["host_ca"], key, cert)
    return await connect(info["agent_id"], options, tunnel=WebSocketTunnel(ws))


# -- a web server "behind the agent" ------------------------------------------------------


@dataclass
class Web:
    """A tiny HTTP server "behind the agent" that remembers what it served."""

    server: ThreadingHTTPServer
    body: bytes
    paths: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])


def start_web() -> Web:
    web: Web

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            web.paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(web.body)))
            self.end_headers()
            self.wfile.write(web.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    web = Web(server, f"behind the agent {secrets.token_hex(8)}\n".encode())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return web
