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
from console.ssh_session import request_session
from harness import Proc, World
from shared.keys import (
    certificate_text,
    generate_key,
    parse_certificate,
    public_text,
    save_private_key,
)
from shared.ssh_options import client_options, connect
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
    """The steps of :func:`console.ssh_session.ssh_session` with the same SSH options,
    optionally timed step by step and with a cipher choice. Error translation is left
    out; the caller closes the connection."""
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
    certificate = parse_certificate(info["certificate"])
    options = client_options(
        info["agent_id"], info["host_ca"], key, certificate, encryption_algs=encryption_algs
    )
    conn = await connect(info["agent_id"], options, tunnel=WebSocketTunnel(ws))
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


#: bench.sshd stands in for this agent, serving this session.
DIRECT_AGENT_ID = "agt-bench-direct"
DIRECT_SESSION_ID = "ses-bench-direct"


@dataclass(frozen=True)
class Keys:
    """Throwaway keys and certificates for the direct baseline, trusted the way the
    console and the agent trust each other (see :mod:`shared.ssh_options`)."""

    host_key: Path  # bench.sshd's, certified by host_ca for DIRECT_AGENT_ID
    host_cert: Path
    host_ca: str  # public: what clients trust
    user_ca: Path  # public: what bench.sshd trusts, for session:DIRECT_SESSION_ID
    client_key: Path  # the technician's, certified by user_ca
    client_cert: Path
    known_hosts: Path  # OpenSSH's view of host_ca, as qp ssh-config writes it

    def console_options(self, cipher: str) -> asyncssh.SSHClientConnectionOptions:
        """The console's SSH options for bench.sshd, with ``cipher``."""
        key = asyncssh.read_private_key(self.client_key)
        cert = asyncssh.read_certificate(self.client_cert)
        return client_options(DIRECT_AGENT_ID, self.host_ca, key, cert, encryption_algs=[cipher])

    def openssh_args(self, port: int) -> list[str]:
        """``ssh`` options for bench.sshd on ``port``: certificates both ways and strict
        host-key checking, like the ``Host`` blocks of ``qp ssh-config``."""
        return [
            "-F",
            "/dev/null",
            "-p",
            str(port),
            "-i",
            str(self.client_key),
            "-o",
            f"CertificateFile={self.client_cert}",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"HostKeyAlias={DIRECT_AGENT_ID}",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
        ]


def throwaway_keys(directory: Path) -> Keys:
    """Fresh CAs, an ed25519 host key and client key (the agent's and console's type)
    and their certificates, valid for a day, written to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    host_ca, user_ca, host, client = (generate_key() for _ in range(4))
    host_cert = host_ca.generate_host_certificate(
        host, key_id="bench-direct", principals=[DIRECT_AGENT_ID], valid_before="+1d"
    )
    client_cert = user_ca.generate_user_certificate(
        client,
        key_id="bench-direct",
        principals=[f"session:{DIRECT_SESSION_ID}"],
        valid_before="+1d",
    )
    keys = Keys(
        host_key=directory / "host_key",
        host_cert=directory / "host_key-cert.pub",
        host_ca=public_text(host_ca),
        user_ca=directory / "user_ca.pub",
        client_key=directory / "client_key",
        client_cert=directory / "client_key-cert.pub",
        known_hosts=directory / "known_hosts",
    )
    save_private_key(keys.host_key, host)
    save_private_key(keys.client_key, client)
    keys.host_cert.write_text(certificate_text(host_cert) + "\n")
    keys.client_cert.write_text(certificate_text(client_cert) + "\n")
    keys.user_ca.write_text(public_text(user_ca) + "\n")
    keys.known_hosts.write_text(f"@cert-authority {DIRECT_AGENT_ID} {keys.host_ca}\n")
    return keys


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
        "--host-cert",
        str(keys.host_cert),
        "--user-ca",
        str(keys.user_ca),
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
