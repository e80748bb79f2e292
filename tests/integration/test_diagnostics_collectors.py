"""The real collectors on this (Linux) machine, and snapshots taken with them.

Network checks stay on 127.0.0.1: the gateway probe is off and the only name
resolved is ``localhost``. Waits are bounded by the collectors' own timeouts,
scaled with ``QP_TEST_TIMEOUT_FACTOR``; nothing sleeps.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
from rich.console import Console

from agent.diagnostics.collector import Collector
from agent.diagnostics.options import DiagnosticsOptions, RelayClockReference, TcpTarget
from agent.diagnostics.runner import default_collectors, take_snapshot
from harness import timeout
from shared.clock import Clock, SystemClock
from shared.diagnostics import JournalInfo, Listener, Mount, Snapshot, decode, encode
from shared.diagnostics_diff import diff
from shared.diagnostics_view import render_diff, render_snapshot

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux collectors")

MIB = 1024 * 1024
ALWAYS_OK = (
    "system",
    "cpu",
    "memory",
    "disks",
    "interfaces",
    "routes",
    "dns",
    "reachability",
    "sockets",
)


@pytest.fixture
def server() -> Iterator[socket.socket]:
    """A TCP server of this process, listening on 127.0.0.1 on a free port."""
    sock = socket.create_server(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


def free_closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


def loopback_options(**changes: Any) -> DiagnosticsOptions:
    fields: dict[str, Any] = {
        "collector_timeout": timeout(10),
        "overall_timeout": timeout(15),
        "sample": 0.1,
        "resolve_names": ("localhost",),
        "probe_gateway": False,
    }
    fields.update(changes)
    return DiagnosticsOptions(**fields)


def port_of(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


def ours(snapshot: Snapshot, port: int) -> list[Listener]:
    assert snapshot.sockets.data is not None
    return [item for item in snapshot.sockets.data.listeners if item.port == port]


def mount_of(path: Path, snapshot: Snapshot) -> Mount:
    """The mount holding ``path``: the longest mount point that prefixes it."""
    assert snapshot.disks.data is not None
    resolved = str(path.resolve())
    candidates = [
        m
        for m in snapshot.disks.data.mounts
        if resolved == m.mountpoint or resolved.startswith(m.mountpoint.rstrip("/") + "/")
    ]
    return max(candidates, key=lambda m: len(m.mountpoint))


async def test_every_collector_reports_real_values(server: socket.socket) -> None:
    clock = SystemClock()
    closed = free_closed_port()
    # The relay's clock (as last heard) runs 90 s behind ours.
    reference = RelayClockReference(clock.now() - timedelta(seconds=90), clock.monotonic())
    options = loopback_options(
        relay=TcpTarget("127.0.0.1", port_of(server)),
        targets=(TcpTarget("127.0.0.1", closed),),
        relay_clock=reference,
    )
    snap = await take_snapshot(options, clock)

    assert {name: getattr(snap, name).status for name in ALWAYS_OK} == dict.fromkeys(
        ALWAYS_OK, "ok"
    )
    for name in ("services", "journal"):
        section = getattr(snap, name)
        assert section.status == "ok" or (section.status == "unavailable" and section.reason)

    system, cpu, memory = snap.system.data, snap.cpu.data, snap.memory.data
    assert system is not None and cpu is not None and memory is not None
    assert system.hostname == socket.gethostname()
    assert system.os == "Linux" and system.kernel.startswith(os.uname().release)
    assert system.boot_time is not None and system.boot_time < snap.taken_at
    assert system.clock_offset_s is not None and abs(system.clock_offset_s - 90) < 1
    found = {(f.rule, f.severity, f.subject) for f in snap.findings}
    assert ("clock_off", "warning", "") in found
    assert ("target_unreachable", "warning", f"127.0.0.1:{closed}") in found
    assert cpu.logical_count == os.cpu_count()
    assert cpu.process_count and cpu.process_count > 1
    assert cpu.top_by_memory and all(p.pid > 0 for p in cpu.top_by_memory)
    assert any(p.command for p in cpu.top_by_memory)
    assert memory.total_bytes == psutil.virtual_memory().total

    # Disk figures agree with the standard library's for "/".
    assert snap.disks.data is not None
    root = next(m for m in snap.disks.data.mounts if m.mountpoint == "/")
    usage = shutil.disk_usage("/")
    assert root.total_bytes == usage.total
    slack = max(64 * MIB, usage.total // 100)  # others write to this disk meanwhile
    assert abs(root.used_bytes - usage.used) < slack
    assert abs(root.free_bytes - usage.free) < slack
    assert root.inodes_total and root.inodes_used is not None

    assert snap.interfaces.data is not None
    lo = next(i for i in snap.interfaces.data.interfaces if i.name == "lo")
    assert lo.is_up is True and lo.mtu
    assert "127.0.0.1" in [a.address for a in lo.addresses]

    assert snap.dns.data is not None
    (check,) = snap.dns.data.checks
    assert check.name == "localhost" and check.ok and "127.0.0.1" in check.addresses

    assert snap.reachability.data is not None
    relay, target = snap.reachability.data.probes
    assert (relay.role, relay.port, relay.outcome) == ("relay", port_of(server), "open")
    assert relay.latency_ms is not None
    assert (target.role, target.port, target.outcome) == ("target", closed, "refused")

    (listener,) = ours(snap, port_of(server))
    me = psutil.Process()
    assert (listener.protocol, listener.address, listener.pid) == ("tcp", "127.0.0.1", os.getpid())
    assert (listener.process, listener.user) == (me.name(), me.username())

    # What the agent sends is what the relay will read back.
    assert decode(encode(snap)) == snap


class Hang:
    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self, options: DiagnosticsOptions, clock: Clock) -> JournalInfo:
        self.release.wait()
        return JournalInfo(source="never")


async def test_a_hung_collector_does_not_hold_up_the_real_ones() -> None:
    hang = Hang()
    collectors = [c for c in default_collectors() if c.name != "journal"]
    collectors.append(Collector("journal", hang))
    options = loopback_options(timeouts={"journal": 0.3})
    try:
        snap = await take_snapshot(options, SystemClock(), collectors)
    finally:
        hang.release.set()
        for thread in threading.enumerate():
            if thread.name == "qp-diag-journal":
                thread.join(timeout(5))
    assert (snap.journal.status, snap.journal.reason) == ("timeout", "no result within 0.3 s")
    assert {name: getattr(snap, name).status for name in ALWAYS_OK} == dict.fromkeys(
        ALWAYS_OK, "ok"
    )


async def test_diff_of_real_snapshots_shows_a_new_listener_and_disk_use(
    tmp_path: Path,
) -> None:
    clock = SystemClock()
    options = loopback_options()
    before = await take_snapshot(options, clock)

    listener = socket.create_server(("127.0.0.1", 0))
    port = port_of(listener)
    ballast = tmp_path / "ballast.bin"
    with ballast.open("wb") as handle:
        handle.write(os.urandom(8 * MIB))
        handle.flush()
        os.fsync(handle.fileno())
    try:
        during = await take_snapshot(options, clock)
    finally:
        listener.close()
        ballast.unlink()
    after = await take_snapshot(options, clock)

    opened = diff(before, during)
    assert [(item.port, item.pid) for item in opened.listeners_added if item.port == port] == [
        (port, os.getpid())
    ]
    assert not [item for item in opened.listeners_removed if item.port == port]
    # Disk use on a shared disk moves for other reasons too: check the structure.
    point = mount_of(tmp_path, during).mountpoint
    (change,) = [d for d in opened.disks if d.mountpoint == point]
    assert change.old_used_bytes == mount_of(tmp_path, before).used_bytes
    assert change.new_used_bytes == mount_of(tmp_path, during).used_bytes
    assert change.total_bytes == mount_of(tmp_path, during).total_bytes

    closed = diff(during, after)
    assert [item.port for item in closed.listeners_removed if item.port == port] == [port]

    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=160, file=sink)
        render_diff(console, opened)
    text = console.export_text()
    assert "Listening sockets" in text and str(port) in text and point in text


async def test_a_real_snapshot_renders(server: socket.socket) -> None:
    snap = await take_snapshot(loopback_options(), SystemClock())
    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=160, file=sink)
        render_snapshot(console, snap)
    text = console.export_text()
    assert socket.gethostname() in text
    assert text.index("Findings" if snap.findings else "No findings") < text.index("System")
    assert str(port_of(server)) in text
