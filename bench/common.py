"""Shared pieces of the benchmark scripts: a relay + agent world, the direct-TCP
baseline server, throwaway keys, and small statistics helpers."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from console.profile import Profile
from console.rpc import RelayClient
from console.ssh_session import (
    KEEPALIVE,
    LOGIN_TIMEOUT,
    known_hosts_for,
    request_session,
)
from harness import Proc, World
from shared.keys import parse_certificate
from shared.transport import dial
from shared.wstunnel import WebSocketTunnel

CUSTOMER = "Bench Customer"
TECHNICIAN = "bench-tech"
AGENT_NAME = "bench-pc"


@dataclass
class Office:
    """A relay process, one technician, one enrolled agent process."""

    world: World
    relay: Proc
    agent: Proc
    agent_id: str
    tech_token: str


def start_office(world: World) -> Office:
    """Start relay + agent as real processes with :mod:`harness` (on 127.0.0.1).

    The caller owns ``world`` and must ``world.close()`` it, also on failure."""
    admin = world.init_relay()
    world.start_relay(0)
    world.login(admin)
    world.qp("customer", "add", CUSTOMER)
    tech_token = world.technician(TECHNICIAN, CUSTOMER)
    agent_id, data = world.enroll(CUSTOMER, AGENT_NAME)
    agent = world.start_agent(data)
    assert world.relay is not None
    return Office(world, world.relay, agent, agent_id, tech_token)


#: Called with a step name when that step of a connection is done.
Mark = Callable[[str], None]


async def relayed_connect(
    profile: Profile,
    agent: str,
    *,
    kind: str = "exec",
    encryption_algs: list[str] | None = None,
    mark: Mark | None = None,
) -> asyncssh.SSHClientConnection:
    """The steps of :func:`console.ssh_session.ssh_session` with the same
    ``asyncssh.connect`` arguments, optionally timed step by step and with a cipher
    choice. Error translation is left out; the caller closes the connection."""
    note: Mark = mark or (lambda _step: None)
    async with RelayClient(profile) as relay:
        note("login")
        info, key = await request_session(relay, agent, kind)
        note("session.open")
    ws = await dial(
        info["tunnel_url"],
        tunnel=True,
        headers={"Authorization": f"Bearer {info['tunnel_token']}"},
        ca_file=profile.ca_file,
    )
    note("tunnel dial")
    extra: dict[str, Any] = {}
    if encryption_algs:
        extra["encryption_algs"] = encryption_algs
    conn = await asyncssh.connect(
        info["agent_id"],
        tunnel=WebSocketTunnel(ws),
        config=None,
        username="qp",
        known_hosts=known_hosts_for(info["host_ca"]),
        client_keys=[(key, parse_certificate(info["certificate"]))],
        agent_path=None,
        password=None,
        kbdint_auth=False,
        gss_auth=False,
        compression_algs=None,
        keepalive_interval=KEEPALIVE,
        login_timeout=LOGIN_TIMEOUT,
        encoding=None,
        **extra,
    )
    note("ssh handshake")
    return conn


class Stopwatch:
    """Durations between :meth:`mark` calls, by step name (seconds)."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.steps: dict[str, float] = {}

    def mark(self, step: str) -> None:
        now = time.perf_counter()
        self.steps[step] = now - self._last
        self._last = now


@dataclass(frozen=True)
class Keys:
    host_key: Path
    host_public: str
    client_key: Path
    client_public: Path


def throwaway_keys(directory: Path) -> Keys:
    """A fresh ed25519 host key and client key (the agent's and console's type)."""
    directory.mkdir(parents=True, exist_ok=True)
    host = asyncssh.generate_private_key("ssh-ed25519")
    client = asyncssh.generate_private_key("ssh-ed25519")
    host_path = directory / "host_key"
    client_path = directory / "client_key"
    host.write_private_key(host_path)
    client.write_private_key(client_path)
    host_path.chmod(0o600)
    client_path.chmod(0o600)
    client.write_public_key(directory / "client_key.pub")
    public = host.export_public_key("openssh").decode().strip()
    return Keys(host_path, public, client_path, directory / "client_key.pub")


def start_sshd(world: World, keys: Keys, sftp_root: Path | None = None) -> tuple[Proc, int]:
    """The direct baseline server (:mod:`bench.sshd`) as its own process; with
    ``sftp_root`` it serves SFTP with the agent's confined server under that root."""
    # As a module, like the benchmarks themselves: run from the repository root.
    argv = [
        sys.executable,
        "-m",
        "bench.sshd",
        "--host-key",
        str(keys.host_key),
        "--client-key",
        str(keys.client_public),
        "--data",
        str(keys.host_key.parent / "sshd-data"),
    ]
    if sftp_root is not None:
        argv += ["--sftp-root", str(sftp_root)]
    proc = world.spawn(argv)
    line = proc.wait_line(r"^listening on \d+$", stream="stdout")
    return proc, int(line.split()[-1])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def json_line(figures: dict[str, Any]) -> str:
    """The one machine-readable line each script ends with."""
    return json.dumps(figures, sort_keys=True, separators=(",", ":"))
