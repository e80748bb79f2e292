"""Helpers for the operations tests: a relay served with extra flags, its HTTP
endpoints, its Prometheus metrics parsed, and a session held open by hand."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import asyncssh
from prometheus_client.parser import text_string_to_metric_families

from harness import BIN, Proc, World, timeout
from relay.settings import Limits
from shared.keys import generate_key, parse_certificate
from tests.integration.toolkit_helpers import open_session, profile_of, ssh_connect

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def serve(world: World, *flags: str, data: Path | None = None) -> Proc:
    """``qp-relay serve`` on 127.0.0.1:0 with ``flags``; sets the world's URL."""
    argv = [str(BIN / "qp-relay"), "serve", "--data", str(data or world.relay_data)]
    world.relay = world.spawn([*argv, "--listen", "127.0.0.1:0", *flags])
    world.url = world.relay.wait_line(r"^listening on ", stream="stdout").split()[-1]
    world.port = int(world.url.rsplit(":", 1)[1])
    return world.relay


def office_with_agent(world: World, agent: str = "ops-pc", *flags: str) -> str:
    """A relay (served with ``flags``) with customer Acme and one agent online; its id."""
    token = world.init_relay(heartbeat_interval=1)
    serve(world, *flags)
    world.login(token)
    world.qp("customer", "add", "Acme")
    agent_id, data = world.enroll("Acme", agent)
    world.start_agent(data)
    return agent_id


def http_get(world: World, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """Status and body of ``GET path`` on the relay's listener."""
    request = urllib.request.Request(f"http://127.0.0.1:{world.port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout(10)) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metrics(world: World) -> Samples:
    """Every sample ``/metrics`` shows, by name and labels."""
    status, text = http_get(world, "/metrics")
    assert status == 200, text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when it is not shown)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def relay_settings(world: World, **changes: object) -> None:
    """Set keys of ``relay.toml`` (each once, anywhere in the file) to ``changes``."""
    path = world.relay_data / "relay.toml"
    lines = path.read_text().splitlines()
    for key, new in changes.items():
        hits = [i for i, line in enumerate(lines) if line.split("=")[0].strip() == key]
        assert len(hits) == 1, key
        lines[hits[0]] = f"{key} = {json.dumps(new)}"
    path.write_text("\n".join(lines) + "\n")


def cert_minutes(info: dict[str, object]) -> int:
    """``limits.cert_minutes`` as a session's certificate shows it: its validity less
    the 2-minute skew allowance and the (default) ``limits.max_duration``."""
    cert = parse_certificate(str(info["certificate"]))
    # asyncssh keeps the validity only in these attributes (no public accessor).
    fields = vars(cert)
    minutes = (int(fields["_valid_before"]) - int(fields["_valid_after"])) // 60
    return minutes - 2 - Limits().max_duration


class HeldSession:
    """A session opened through ``session.open`` and an SSH connection over its
    tunnel: it stays active until :meth:`close`."""

    def __init__(self, info: dict[str, object], conn: asyncssh.SSHClientConnection) -> None:
        self.info = info
        self.conn = conn

    @property
    def id(self) -> str:
        return str(self.info["session_id"])

    @classmethod
    async def open(cls, world: World, agent: str, home: str = "admin") -> HeldSession:
        key = generate_key()
        info = await open_session(profile_of(world, home), agent, "exec", key)
        cert = parse_certificate(str(info["certificate"]))
        return cls(info, await ssh_connect(info, key, cert))

    async def run(self, command: str) -> str:
        """Run ``command`` on the agent; its output."""
        result = await self.conn.run(command, check=True, timeout=timeout(30))
        out = result.stdout
        return out.decode() if isinstance(out, bytes) else str(out)

    async def close(self) -> None:
        self.conn.close()
        await self.conn.wait_closed()
