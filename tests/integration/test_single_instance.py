"""One instance per data directory: a second ``qp-relay serve`` or ``qp-agent run`` on
a directory in use exits at once with one line naming the holder, and touches nothing
(the relay's live session is not closed as ``recovered``, the agent's control socket
stays), so the first one's session completes with the right entry."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import BIN, Proc, World
from tests.integration.toolkit_helpers import one_line, spawn_qp, wait_until

#: The second instance must be gone long before this; a generous bound because the
#: shared test machine can take seconds just to start an interpreter.
EXIT_WITHIN = 10


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    try:
        token = world.init_relay()
        world.start_relay(0)
        world.login(token)
        world.qp("customer", "add", "Acme")
        yield world
    finally:
        world.close()


def _active(world: World) -> dict[str, Any] | None:
    rows = [s for s in world.qp_json("sessions") if s["state"] == "active"]
    return rows[0] if rows else None


def _long_session(world: World) -> tuple[Proc, Proc, Path, str]:
    """An enrolled, running agent and a ``qp exec`` on it that waits for a line."""
    _, data = world.enroll("Acme", "pc")
    agent = world.start_agent(data)
    qp = spawn_qp(
        world, "exec", "pc", "--", "sh", "-c", "read line; echo got $line", home="admin",
        stdin=subprocess.PIPE,
    )  # fmt: skip
    session = wait_until(lambda: _active(world), "an active session")
    return qp, agent, data, str(session["id"])


def _finish(world: World, qp: Proc, sid: str) -> None:
    """Let the session end normally; it ends 'completed' with its time entry."""
    assert qp.popen.stdin is not None
    qp.popen.stdin.write(b"done\n")
    qp.popen.stdin.close()
    assert qp.wait() == 0
    assert qp.wait_line(r"^got done$", stream="stdout")
    (row,) = [s for s in world.qp_json("sessions") if s["id"] == sid]
    assert (row["state"], row["end_reason"]) == ("ended", "completed")
    (entry,) = [e for e in world.qp_json("time") if sid in e["session_ids"]]
    assert (entry["customer"], entry["technician"], entry["status"]) == ("Acme", "admin", "draft")


def test_a_second_relay_on_the_same_directory_exits_naming_the_first(world: World) -> None:
    assert world.relay is not None
    qp, _, _, sid = _long_session(world)
    argv = [str(BIN / "qp-relay"), "serve", "--data", str(world.relay_data), "--listen"]
    second = world.run([*argv, "127.0.0.1:0"], check=False, within=EXIT_WITHIN)
    assert second.returncode != 0
    line = one_line(second.stderr)
    assert line.startswith("qp-relay: "), line
    assert f"pid {world.relay.popen.pid}" in line, line
    assert second.stdout == b""
    (row,) = [s for s in world.qp_json("sessions") if s["id"] == sid]
    assert row["state"] == "active"  # not closed as 'recovered' by the second relay
    _finish(world, qp, sid)
    assert "recovered" not in world.relay.text()


def test_a_second_agent_on_the_same_directory_exits_naming_the_first(world: World) -> None:
    qp, first, data, sid = _long_session(world)
    run = [str(BIN / "qp-agent"), "run", "--data", str(data)]
    second = world.run(run, home="client", check=False, within=EXIT_WITHIN)
    assert second.returncode != 0
    line = one_line(second.stderr)
    assert line.startswith("qp-agent: "), line
    assert f"pid {first.popen.pid}" in line, line
    # The first agent's control socket is still there and answers.
    listed = world.run(
        [str(BIN / "qp-agent"), "sessions", "--data", str(data), "--json"], home="client"
    )
    assert sid in listed.stdout.decode()
    _finish(world, qp, sid)
    assert first.popen.poll() is None
