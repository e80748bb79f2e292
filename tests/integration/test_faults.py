"""Faults: the relay crashes (kill -9) or is stopped (SIGTERM) under a live session.

Every test builds its own world (relay data directory, one customer, one agent),
because it kills or restarts the relay. Nothing sleeps: we wait for printed lines,
process exits, or a bounded poll of the relay's database.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from harness import BIN, Proc, World, timeout

T = TypeVar("T")

#: How often a bounded poll looks again (it is a poll interval, not a synchronisation).
POLL_INTERVAL = 0.05


@dataclass
class Site:
    world: World
    agent_id: str
    agent: Proc


def _site(world: World) -> Site:
    token = world.init_relay(heartbeat_interval=1)
    world.start_relay(0)
    world.login(token)
    world.qp("customer", "add", "Acme")
    agent_id, data = world.enroll("Acme", "acme-pc")
    return Site(world, agent_id, world.start_agent(data))


# -- the relay's database, read-only ------------------------------------------------------
@contextmanager
def _db(world: World) -> Iterator[sqlite3.Connection]:
    uri = f"file:{world.relay_data / 'relay.db'}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=timeout(10))) as db:
        db.row_factory = sqlite3.Row
        yield db


def _sessions(world: World) -> list[dict[str, Any]]:
    with _db(world) as db:
        return [dict(r) for r in db.execute("SELECT * FROM sessions ORDER BY created_at")]


def _entries_for(world: World, session_id: str) -> list[dict[str, Any]]:
    with _db(world) as db:
        rows = [dict(r) for r in db.execute("SELECT * FROM time_entries")]
    return [r for r in rows if session_id in json.loads(r["session_ids"])]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _poll(what: str, probe: Callable[[], T | None], within: float = 20) -> T:
    """``probe()`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + timeout(within)
    pause = threading.Event()
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        pause.wait(POLL_INTERVAL)


# -- a long-running session ------------------------------------------------------------------
def _start_cat(world: World) -> Proc:
    """``qp exec acme-pc -- cat`` with stdin held open; returns once data went
    through the tunnel both ways (so the session is paired and active)."""
    cat = world.spawn([str(BIN / "qp"), "exec", "acme-pc", "--", "cat"], stdin=subprocess.PIPE)
    assert cat.popen.stdin is not None
    cat.popen.stdin.write(b"ping\n")
    cat.popen.stdin.flush()
    cat.wait_line(r"^ping$", stream="stdout", within=30)
    return cat


def _only_session(world: World) -> dict[str, Any]:
    rows = _sessions(world)
    assert len(rows) == 1, rows
    return rows[0]


def _active_with_heartbeat(world: World) -> dict[str, Any] | None:
    """The session, once it is active and a heartbeat after its start is persisted."""
    row = _only_session(world)
    if row["state"] != "active" or not row["started_at"] or not row["last_seen_at"]:
        return None
    return row if _at(row["last_seen_at"]) > _at(row["started_at"]) else None


def _active(world: World) -> dict[str, Any] | None:
    row = _only_session(world)
    return row if row["state"] == "active" else None


def _ends(proc: Proc, within: float = 30) -> int:
    """Exit status of ``proc``, which must end by itself; all its output is read."""
    try:
        code = proc.wait(within)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{proc.argv} still running {within}s after the relay went") from None
    proc.wait_line(r"^<eof>$")
    proc.wait_line(r"^<eof>$", stream="stdout")
    return code


def _error_lines(proc: Proc) -> list[str]:
    return [line for line in proc.lines["stderr"] if line.strip() and line != "<eof>"]


# -- 1. kill -9 ------------------------------------------------------------------------------
def test_kill_9_then_restart_recovers_session_at_last_heartbeat(world: World) -> None:
    site = _site(world)
    assert world.relay is not None
    spawned_mono, spawned_wall = time.monotonic(), datetime.now(UTC)
    cat = _start_cat(world)
    beat = _poll(
        "an active session with a persisted heartbeat", lambda: _active_with_heartbeat(world)
    )
    sid = beat["id"]

    world.relay.signal(signal.SIGKILL)
    assert world.relay.wait() == -signal.SIGKILL
    killed_mono, killed_wall = time.monotonic(), datetime.now(UTC)
    seen_by_relay = killed_mono - spawned_mono

    # What the crashed relay left behind: an open session and its last heartbeat.
    crashed = _only_session(world)
    assert crashed["ended_at"] is None and crashed["state"] == "active"
    last_beat = _at(crashed["last_seen_at"])
    started = _at(crashed["started_at"])
    assert spawned_wall <= started < last_beat <= killed_wall
    assert _entries_for(world, sid) == []
    # The technician's side notices the relay is gone: one line, no hang.
    assert _ends(cat) != 0
    assert len(_error_lines(cat)) == 1, cat.text()

    world.start_relay(port=world.port)
    assert world.relay.wait_line(r"closed 1 session\(s\) .* as 'recovered'")

    row = _only_session(world)
    assert row["state"] == "ended"
    assert row["end_reason"] == "recovered"
    assert _at(row["ended_at"]) == _at(row["last_seen_at"]) == last_beat
    (entry,) = _entries_for(world, sid)
    assert _at(entry["started_at"]) == started
    assert _at(entry["ended_at"]) == last_beat
    billed = (_at(entry["ended_at"]) - _at(entry["started_at"])).total_seconds()
    assert 0 < billed <= seen_by_relay
    assert entry["actual_seconds"] <= billed
    assert entry["status"] == "draft"

    # The console API reports the same thing.
    (listed,) = [s for s in world.qp_json("sessions") if s["id"] == sid]
    assert (listed["state"], listed["end_reason"]) == ("ended", "recovered")
    (timed,) = [e for e in world.qp_json("time") if sid in e["session_ids"]]
    assert timed["id"] == entry["id"]
    assert site.agent.popen.poll() is None
    assert "Traceback" not in world.relay.text()


# -- 2. SIGTERM ---------------------------------------------------------------------------------
def test_sigterm_ends_active_session_as_relay_shutdown_and_exits_0(world: World) -> None:
    _site(world)
    relay = world.relay
    assert relay is not None
    spawned = time.monotonic()
    cat = _start_cat(world)
    sid: str = _poll("an active session", lambda: _active(world))["id"]

    relay.signal(signal.SIGTERM)
    assert relay.wait() == 0, relay.text()
    stopped = time.monotonic() - spawned
    relay.wait_line(r"^<eof>$")
    assert "relay stopped" in relay.text("stdout")
    assert "Traceback" not in relay.text()
    # The technician's side gives up rather than hanging: one line, no traceback.
    assert _ends(cat) != 0
    assert "Traceback" not in cat.text(), cat.text()
    assert len(_error_lines(cat)) == 1, cat.text()

    row = _only_session(world)
    assert row["id"] == sid
    assert (row["state"], row["end_reason"]) == ("ended", "relay_shutdown")
    (entry,) = _entries_for(world, sid)
    assert _at(entry["started_at"]) == _at(row["started_at"])
    assert _at(entry["ended_at"]) == _at(row["ended_at"])
    assert entry["status"] == "draft"
    assert 1 <= entry["actual_seconds"] <= stopped + 1  # whole seconds, rounded up
    assert (_at(entry["ended_at"]) - _at(entry["started_at"])).total_seconds() <= stopped


# -- 3. the agent comes back by itself ---------------------------------------------------------
def test_agent_reconnects_by_itself_after_relay_restart(world: World) -> None:
    site = _site(world)
    assert world.relay is not None
    before = site.agent.count("stderr")

    world.relay.signal(signal.SIGKILL)
    world.relay.wait()
    world.start_relay(port=world.port)

    site.agent.wait_line(r"connected to relay as", start=before, within=60)
    assert site.agent.popen.poll() is None  # the same process, never restarted
    (agent,) = [a for a in world.qp_json("agents") if a["id"] == site.agent_id]
    assert agent["online"] is True
    again = world.qp("exec", "acme-pc", "--", "echo", "back again")
    assert again.stdout == b"back again\n"
