"""Toolkit acceptance 4: the client's consent and the client's end.

With ``--consent attended`` a session waits for the person at the agent's machine
(``qp-agent consent SESSION --allow|--deny``); an answer is bound to one session.
``qp-agent end`` stops a running session at once: the relay records
``client_ended`` and the time entry ends at that moment.

Consent *timeout*: the agent's own 60 s timeout is not configurable, so its path
(agent answers ``consent_timeout``) is covered by unit tests with a fake clock
(tests/unit/test_toolkit_consent_timeout.py). End to end, the relay's own
``limits.consent_timeout`` (relay.toml) is set to one second in a separate world:
nothing in the test sleeps, it only waits for ``qp exec`` to give up.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.control import control_call
from harness import BIN, Proc, World
from shared.clock import parse_iso
from shared.errors import UsageError
from tests.integration.conftest import Office
from tests.integration.toolkit_helpers import (
    IsolatedAgent,
    agent_events,
    isolated_agent,
    one_line,
    qp_agent,
    session_row,
    set_policy,
    spawn_qp,
    wait_until,
)

WAITING = r"^qp: waiting for the client's consent"
NO_REQUEST = "no request is waiting for your consent"


@dataclass(frozen=True)
class Attended:
    office: Office
    agent: IsolatedAgent

    @property
    def world(self) -> World:
        return self.office.world


@pytest.fixture(scope="module")
def attended(office: Office) -> Attended:
    agent = isolated_agent(office.world, "Acme", "consent-pc")
    policy = set_policy(office.world, agent.agent_id, "--consent", "attended")
    assert policy["consent"] == "attended"
    return Attended(office, agent)


def pending(agent: IsolatedAgent) -> list[dict[str, Any]]:
    """Consent questions the running agent holds (its local control socket)."""
    reply = asyncio.run(control_call(agent.data / "control.sock", {"cmd": "pending"}))
    found: list[dict[str, Any]] = reply["pending"]
    return found


def asked(env: Attended, marker: Path) -> tuple[Proc, str]:
    """Start ``qp exec consent-pc -- touch MARKER``; wait until the client is asked."""
    qp = spawn_qp(env.world, "exec", "consent-pc", "--", "touch", str(marker))
    qp.wait_line(WAITING)
    (question,) = wait_until(lambda: pending(env.agent), "the consent question")
    sid: str = question["session"]
    assert question["technician"] == "alice" and question["kind"] == "exec"
    assert "alice asks to open a exec session" in question["question"]
    assert session_row(env.world, sid)["state"] == "awaiting_consent"
    assert qp.popen.poll() is None and not marker.exists()  # nothing ran yet
    return qp, sid


def consent(
    env: Attended, sid: str, answer: str, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    return qp_agent(env.world, "consent", sid, answer, data=env.agent.data, check=check)


def outcomes(env: Attended, sid: str) -> list[str]:
    return [e["outcome"] for e in agent_events(env.agent.data, "consent") if e["session"] == sid]


def json_of(done: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    value: list[dict[str, Any]] = json.loads(done.stdout)
    return value


def ran(env: Attended, sid: str) -> list[dict[str, Any]]:
    return [e for e in agent_events(env.agent.data, "exec") if e["session"] == sid]


def test_allow_runs_the_waiting_command(attended: Attended, tmp_path: Path) -> None:
    marker = tmp_path / "allowed-ran"
    qp, sid = asked(attended, marker)
    done = consent(attended, sid, "--allow")
    assert done.stdout == f"allowed {sid}\n".encode()
    assert qp.wait() == 0, qp.text()
    assert marker.exists()
    assert outcomes(attended, sid) == ["approved"]
    assert [e["command"] for e in ran(attended, sid)] == [f"touch {marker}"]
    row = session_row(attended.world, sid)
    assert (row["state"], row["end_reason"]) == ("ended", "completed")


def test_deny_fails_with_one_line_and_runs_nothing(attended: Attended, tmp_path: Path) -> None:
    marker = tmp_path / "denied-ran"
    qp, sid = asked(attended, marker)
    done = consent(attended, sid, "--deny")
    assert done.stdout == f"denied {sid}\n".encode()
    assert qp.wait() == 255
    lines = [line for line in qp.lines["stderr"] if line != "<eof>"]
    assert lines[0].startswith("qp: waiting for the client's consent")
    assert lines[1:] == ["qp: the client declined the session (declined by the client)"]
    assert qp.lines["stdout"] == ["<eof>"]
    assert not marker.exists()
    assert outcomes(attended, sid) == ["denied"]
    assert ran(attended, sid) == []
    row = session_row(attended.world, sid)
    assert (row["state"], row["end_reason"], row["started_at"]) == ("ended", "declined", None)
    assert not [e for e in attended.world.qp_json("time") if sid in e["session_ids"]]


def test_an_answer_for_another_session_opens_nothing(attended: Attended, tmp_path: Path) -> None:
    # A stale session id: asked, denied, over.
    first, stale = asked(attended, tmp_path / "first")
    consent(attended, stale, "--deny")
    assert first.wait() == 255

    marker = tmp_path / "second-ran"
    qp, sid = asked(attended, marker)
    for other in (stale, "ses-000000000000"):
        done = consent(attended, other, "--allow", check=False)
        assert done.returncode == 1
        assert done.stdout == f"{NO_REQUEST}\n".encode()
        # The agent itself refuses an answer that names another session.
        with pytest.raises(UsageError, match="no consent question pending"):
            asyncio.run(
                control_call(
                    attended.agent.data / "control.sock",
                    {"cmd": "answer", "session": other, "approve": True},
                )
            )
    # Still waiting, still nothing run.
    assert [p["session"] for p in pending(attended.agent)] == [sid]
    assert qp.popen.poll() is None and not marker.exists()
    assert session_row(attended.world, sid)["state"] == "awaiting_consent"
    assert outcomes(attended, sid) == [] and ran(attended, sid) == []
    # Control: the agent takes the answer that names the waiting session. (Allowing
    # it is test_allow_runs_the_waiting_command, which a product bug blocks.)
    assert consent(attended, sid, "--deny").stdout == f"denied {sid}\n".encode()
    assert qp.wait() == 255
    assert outcomes(attended, sid) == ["denied"]
    assert not marker.exists()


# -- the client ends a running session -----------------------------------------------------


def running_cat(world: World, data: Path) -> tuple[Proc, str]:
    """``qp exec acme-pc -- cat`` with its stdin kept open, known to be running."""
    qp = spawn_qp(world, "exec", "acme-pc", "--", "cat", stdin=subprocess.PIPE)
    assert qp.popen.stdin is not None
    qp.popen.stdin.write(b"ping\n")
    qp.popen.stdin.flush()
    qp.wait_line(r"^ping$", stream="stdout")  # cat runs; its stdin stays open
    running = [
        s
        for s in json_of(qp_agent(world, "sessions", "--json", data=data))
        if s["kind"] == "exec" and s["state"] == "active"
    ]
    (session,) = running
    assert session["technician"] == "alice"
    return qp, str(session["session"])


def test_client_end_stops_a_running_session_and_its_time(office: Office) -> None:
    w = office.world
    data = w.root / "agents" / "acme-pc"  # unattended: no consent needed here
    qp, sid = running_cat(w, data)

    before = datetime.now(UTC).replace(microsecond=0)
    done = qp_agent(w, "end", sid, data=data)
    after = datetime.now(UTC)
    assert done.stdout == f"ended {sid}\n".encode()

    assert qp.wait() == 255
    assert one_line(qp.text().replace("<eof>", "")).startswith(f"qp: session {sid} ended")
    row = session_row(w, sid)
    assert (row["state"], row["end_reason"]) == ("ended", "client_ended")
    ended = parse_iso(row["ended_at"])
    assert ended is not None and before <= ended <= after
    (entry,) = [e for e in w.qp_json("time", home="alice") if sid in e["session_ids"]]
    assert entry["ended_at"] == row["ended_at"]  # the entry stops when the client said so
    assert entry["started_at"] == row["started_at"]
    assert entry["actual_seconds"] >= 1
    assert [e["session"] for e in agent_events(data, "client_end")] == [sid]
    assert json_of(qp_agent(w, "sessions", "--json", data=data)) == []
    # (qp-agent end itself returns only after a 5 s timeout most of the time: a race
    # reproduced deterministically in tests/unit/test_toolkit_client_end.py.)


# -- consent timeout, end to end through the relay's limit ------------------------------------


def test_unanswered_consent_ends_as_consent_timeout(world: World, tmp_path: Path) -> None:
    token = world.init_relay(heartbeat_interval=1, offer_timeout=1, consent_timeout=1)
    world.start_relay(0)
    world.login(token)
    world.qp("customer", "add", "Initech")
    agent_id, data = world.enroll("Initech", "slow-pc")
    world.start_agent(data)
    set_policy(world, agent_id, "--consent", "attended")

    marker = tmp_path / "timeout-ran"
    done = world.run([str(BIN / "qp"), "exec", "slow-pc", "--", "touch", str(marker)], check=False)
    assert done.returncode == 255
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 2 and lines[0].startswith("qp: waiting for the client's consent")
    # One error line (its wording is a known defect: see the unit test
    # test_the_relays_consent_limit_tells_the_technician_why).
    assert lines[1].startswith("qp: "), lines
    assert not marker.exists()
    (row,) = world.qp_json("sessions")
    assert (row["state"], row["end_reason"], row["started_at"]) == (
        "ended",
        "consent_timeout",
        None,
    )
    assert world.qp_json("time") == []
    # The relay told the agent: its question is withdrawn, nothing ran.
    wait_until(lambda: agent_events(data, "session_closed"), "the agent to drop the session")
    assert asyncio.run(control_call(data / "control.sock", {"cmd": "pending"}))["pending"] == []
    assert agent_events(data, "exec") == []
