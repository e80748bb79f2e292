"""Ends that cannot be lost, and durations the wall clock cannot bend (real qp and
qp-agent processes; the relay runs on the test's loop so the test can hold its
database's write lock and step its wall clock)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness import BIN, World, timeout
from relay.app import Relay
from relay.model import TimeEntry
from shared.clock import SystemClock
from tests.integration.inprocess import Lines, arun, node_with_agent


class SteppedClock(SystemClock):
    """The real clocks, with a wall clock the test can step."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


async def _exec(world: World, agent: str, script: str) -> Lines:
    """``qp exec AGENT -- sh -c SCRIPT``, its stdout readable line by line."""
    return await Lines.spawn(world, [str(BIN / "qp"), "exec", agent, "--", "sh", "-c", script])


async def test_an_end_refused_by_a_locked_database_lands_once_with_its_full_time(
    world: World,
) -> None:
    async with node_with_agent(world, "lock-pc", heartbeat_interval=30) as node:
        await arun(world, [str(BIN / "qp"), "exec", "lock-pc", "--", "true"])  # snapshots done
        ledger = node.services.sessions.ledger
        run = await _exec(world, "lock-pc", "echo started; sleep 2; echo done")
        assert await run.line() == "started"
        holder = sqlite3.connect(world.relay_data / "relay.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            assert await run.line() == "done"
            assert await run.exit() == 0  # the technician's work is not held up
            # The end waits out busy_timeout, is refused, and is kept.
            while ledger.writable:
                await asyncio.sleep(0.05)
            assert len(ledger.pending) == 1
            refused = await arun(
                world, [str(BIN / "qp"), "exec", "lock-pc", "--", "true"], check=False
            )
            assert refused[0] != 0
            assert b"cannot write to its database" in refused[2]
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await asyncio.wait_for(ledger.settled(), timeout(60))
        rows = await node.store.list_sessions(10)
        entries = await node.store.list_time_entries()
    held = [r for r in rows if r.store_gap_seconds > 0]
    assert len(held) == 1 and held[0].end_reason == "completed"
    (entry,) = [e for e in entries if held[0].id in e.session_ids]
    assert entry.actual_seconds >= 2
    assert _measured(entry) > 0


def _measured(entry: TimeEntry) -> float:
    """The entry's length by its own times, checked against its whole seconds."""
    length = (entry.ended_at - entry.started_at).total_seconds()
    assert entry.actual_seconds - 1 < length <= entry.actual_seconds + 1, entry
    return length


async def test_a_wall_clock_step_back_never_shortens_an_entry(world: World) -> None:
    clock = SteppedClock()
    async with node_with_agent(world, "step-pc", clock=clock, heartbeat_interval=30) as node:
        run = await _exec(world, "step-pc", "echo started; sleep 2; echo done")
        assert await run.line() == "started"
        clock.offset = -timedelta(minutes=10)  # NTP steps the relay's clock back
        assert await run.line() == "done"
        assert await run.exit() == 0
        entries = await node.store.list_time_entries()
    (entry,) = entries
    assert entry.actual_seconds >= 2
    assert _measured(entry) >= 2  # not ten minutes less, not negative


async def test_recovery_after_a_crash_and_a_clock_step_bills_the_time_seen(world: World) -> None:
    clock = SteppedClock()
    async with node_with_agent(world, "crash-pc", clock=clock, heartbeat_interval=30) as node:
        sessions = node.services.sessions
        run = await _exec(world, "crash-pc", "echo started; sleep 30")
        assert await run.line() == "started"
        clock.offset = -timedelta(minutes=10)
        await asyncio.sleep(1.5)  # time the relay sees, on its monotonic clock
        assert await sessions.heartbeat_once() == 1
        # The crash: nothing more reaches the database, the end is never written.
        await node.store.close()
        run.proc.kill()
        await run.proc.wait()
    # A new process on the same data directory, its wall clock still stepped back.
    again = await Relay.open(world.relay_data, clock=clock)
    try:
        rows = await again.store.list_sessions(10)
        entries = await again.store.list_time_entries()
    finally:
        await again.store.close()
    assert [r.end_reason for r in rows] == ["recovered"]
    (entry,) = entries
    assert entry.actual_seconds >= 1  # seen until the last heartbeat, never 0 or less
    assert _measured(entry) >= 1


@pytest.fixture
def small_disk(world: World) -> Iterator[Path]:
    """The relay's data directory on a 4 MiB tmpfs of its own (needs root)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    world.relay_data.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(world.relay_data)],
        check=True,
    )
    try:
        yield world.relay_data
    finally:
        subprocess.run(["umount", "-l", str(world.relay_data)], check=False)


def _fill(folder: Path) -> Path:
    """Use up every free byte of ``folder``'s file system."""
    filler = folder / "filler"
    # Unbuffered: a buffered file would keep the bytes that no longer fit and fail
    # again when closed, depending on how the free space divides into writes.
    with filler.open("wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 65536)
    return filler


async def _ready(url: str) -> int:
    """The HTTP status of the relay's /readyz."""
    address = url.removeprefix("ws://")
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /readyz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
    status = (await reader.readline()).split()[1]
    writer.close()
    return int(status)


async def test_a_full_disk_refuses_new_sessions_and_loses_no_running_one(
    world: World, small_disk: Path
) -> None:
    async with node_with_agent(world, "disk-pc", heartbeat_interval=30) as node:
        await arun(world, [str(BIN / "qp"), "exec", "disk-pc", "--", "true"])  # snapshots done
        ledger = node.services.sessions.ledger
        assert await _ready(world.url) == 200
        run = await _exec(world, "disk-pc", "echo started; sleep 3; echo done")
        assert await run.line() == "started"
        filler = _fill(small_disk)
        code, _, err = await arun(
            world, [str(BIN / "qp"), "exec", "disk-pc", "--", "true"], check=False
        )
        assert code != 0
        assert err.decode().strip().splitlines() == [
            "qp: the relay cannot write to its database right now, so it starts no sessions;"
            " try again later (its operator sees why in the relay log)"
        ]
        assert await _ready(world.url) == 503
        assert await run.line() == "done"  # the running session goes on
        assert await run.exit() == 0
        while len(ledger.pending) == 0:  # its end is kept in memory
            await asyncio.sleep(0.05)
        filler.unlink()  # space returns
        await asyncio.wait_for(ledger.settled(), timeout(60))
        assert await _ready(world.url) == 200
        rows = await node.store.list_sessions(10)
        entries = await node.store.list_time_entries()
    ended = [r for r in rows if r.store_gap_seconds > 0]
    assert len(ended) == 1 and ended[0].end_reason == "completed"
    assert len([e for e in entries if ended[0].id in e.session_ids]) == 1
