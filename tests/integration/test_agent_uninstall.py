"""``qp-agent uninstall``: the relay forgets the machine, the agent stops, its data
directory goes, and the log of what technicians did can be kept."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import BIN, World, timeout


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    try:
        token = w.init_relay()
        w.start_relay(0)
        w.login(token)
        w.qp("customer", "add", "Acme")
        yield w
    finally:
        w.close()


def test_uninstall_unlinks_stops_and_removes(world: World, tmp_path: Path) -> None:
    agent_id, data = world.enroll("Acme", "old-pc")
    agent = world.start_agent(data)
    world.qp("exec", "old-pc", "--", "true")  # leaves a record in the agent's log
    kept = tmp_path / "kept-log.jsonl"

    done = world.run(
        [str(BIN / "qp-agent"), "uninstall", "--data", str(data), "--yes", "--keep-log", str(kept)]
    )
    lines = done.stdout.decode().splitlines()
    assert lines == [
        f"the relay forgot this machine ({agent_id})",
        f"kept the log of what technicians did here in {kept}",
        f"removed {data}",
    ]
    assert agent.popen.wait(timeout(10)) == 0  # it stopped by itself, not killed
    assert not data.exists()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert b"uninstall" in kept.read_bytes()  # the log up to the very end

    (row,) = [a for a in world.qp_json("agents") if a["id"] == agent_id]
    assert row["revoked"] is True
    with sqlite3.connect(world.relay_data / "relay.db") as db:
        rows = db.execute(
            "SELECT actor, subject FROM audit WHERE event = 'agent_uninstall'"
        ).fetchall()
    assert rows == [(agent_id, agent_id)]


def test_uninstall_refuses_without_confirmation_or_a_running_agent(world: World) -> None:
    agent_id, data = world.enroll("Acme", "idle-pc")
    unconfirmed = world.run([str(BIN / "qp-agent"), "uninstall", "--data", str(data)], check=False)
    assert unconfirmed.returncode == 1
    assert unconfirmed.stderr.decode().strip() == (
        "qp-agent: uninstall removes this agent for good; add --yes to confirm"
    )
    stopped = world.run(
        [str(BIN / "qp-agent"), "uninstall", "--data", str(data), "--yes"], check=False
    )
    assert stopped.returncode == 1 and b"the agent is not running" in stopped.stderr
    assert data.exists()
    offline = world.run(
        [str(BIN / "qp-agent"), "uninstall", "--data", str(data), "--yes", "--offline"]
    )
    assert offline.stdout.decode().splitlines() == [
        f"not linked: ask your IT company to revoke {agent_id}",
        f"removed {data}",
    ]
    assert not data.exists()
