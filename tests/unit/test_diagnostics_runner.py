"""The snapshot runner with injected collectors: a hung collector times out while
the others complete, failures become statuses, and size stays bounded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from agent.diagnostics.collector import Collector, Unavailable
from agent.diagnostics.options import DiagnosticsOptions
from agent.diagnostics.runner import take_snapshot
from harness import timeout
from shared.clock import Clock, FakeClock
from shared.diagnostics import (
    MAX_ENCODED_SIZE,
    Listener,
    SocketsInfo,
    encoded_size,
)
from shared.errors import LocalProtocolError
from tests.unit.diagnostics_samples import data, healthy, mount

HEALTHY = healthy()


def returns(name: str, value: Any) -> Collector:
    return Collector(name, lambda options, clock: value)


def fakes(*replacements: Collector) -> list[Collector]:
    """A collector per section returning ``healthy()``'s data, some replaced."""
    chosen = {c.name: c for c in replacements}
    names = ["system", "cpu", "memory", "disks", "services", "interfaces", "routes", "dns"]
    names += ["reachability", "sockets", "journal"]
    return [chosen.get(name) or returns(name, data(HEALTHY, name)) for name in names]


class Hang:
    """A collector body that blocks until released (the test always releases it)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, options: DiagnosticsOptions, clock: Clock) -> Any:
        self.calls += 1
        self.entered.set()
        self.release.wait()
        return data(HEALTHY, "journal")


@pytest.fixture
def hang() -> Iterator[Hang]:
    body = Hang()
    yield body
    body.release.set()
    for thread in threading.enumerate():
        if thread.name == "qp-diag-journal":
            thread.join(timeout(5))


async def test_a_hung_collector_times_out_while_the_others_complete(hang: Hang) -> None:
    options = DiagnosticsOptions(collector_timeout=timeout(5), timeouts={"journal": 0.2})
    clock = FakeClock()
    snap = await take_snapshot(options, clock, fakes(Collector("journal", hang)))
    assert snap.journal.status == "timeout"
    assert snap.journal.reason == "no result within 0.2 s"
    assert snap.journal.data is None
    others = [getattr(snap, n).status for n in ("system", "cpu", "disks", "sockets", "dns")]
    assert others == ["ok"] * 5
    assert snap.disks == replace(HEALTHY.disks, elapsed_ms=0)
    assert snap.taken_at == clock.now()


async def test_a_still_hung_collector_is_not_started_again(hang: Hang) -> None:
    options = DiagnosticsOptions(collector_timeout=timeout(5), timeouts={"journal": 0.2})
    collectors = fakes(Collector("journal", hang))
    await take_snapshot(options, FakeClock(), collectors)
    second = await take_snapshot(options, FakeClock(), collectors)
    assert second.journal.status == "timeout"
    assert second.journal.reason == "still hung since an earlier snapshot"
    assert hang.calls == 1
    # Once it comes back, the next snapshot runs it again.
    hang.release.set()
    for thread in threading.enumerate():
        if thread.name == "qp-diag-journal":
            thread.join(timeout(5))
    third = await take_snapshot(options, FakeClock(), collectors)
    assert third.journal.status == "ok"
    assert hang.calls == 2


async def test_the_overall_bound_caps_every_collector(hang: Hang) -> None:
    options = DiagnosticsOptions(
        collector_timeout=timeout(5), overall_timeout=0.2, timeouts={"journal": 60}
    )
    snap = await take_snapshot(options, FakeClock(), fakes(Collector("journal", hang)))
    assert (snap.journal.status, snap.journal.reason) == ("timeout", "no result within 0.2 s")


async def test_failures_become_statuses_with_reasons() -> None:
    def broken(options: DiagnosticsOptions, clock: Clock) -> Any:
        return 1 / 0

    def missing(options: DiagnosticsOptions, clock: Clock) -> Any:
        raise Unavailable("systemctl not found")

    def wrong(options: DiagnosticsOptions, clock: Clock) -> Any:
        return SocketsInfo(listener_count="many")  # type: ignore[arg-type]

    snap = await take_snapshot(
        DiagnosticsOptions(),
        FakeClock(),
        fakes(
            Collector("cpu", broken), Collector("services", missing), Collector("sockets", wrong)
        ),
    )
    assert (snap.cpu.status, snap.cpu.reason) == ("error", "ZeroDivisionError: division by zero")
    assert (snap.services.status, snap.services.reason) == ("unavailable", "systemctl not found")
    assert snap.sockets.status == "error"
    assert "listener_count must be a 64-bit integer" in snap.sockets.reason
    assert snap.disks.status == "ok"


async def test_findings_are_evaluated_on_the_snapshot() -> None:
    full = replace(data(HEALTHY, "disks"), mounts=(mount("/", 97.0),))
    snap = await take_snapshot(DiagnosticsOptions(), FakeClock(), fakes(returns("disks", full)))
    assert [(f.rule, f.severity, f.subject) for f in snap.findings] == [
        ("disk_full", "critical", "/")
    ]


async def test_an_oversize_section_is_dropped_to_keep_the_snapshot_sendable() -> None:
    wide = "\U0001d54f" * 128  # four bytes each in UTF-8
    listeners = tuple(Listener("tcp", wide, port, 1, wide, wide) for port in range(1, 257))
    huge = SocketsInfo(listeners=listeners, listener_count=256)
    snap = await take_snapshot(DiagnosticsOptions(), FakeClock(), fakes(returns("sockets", huge)))
    assert snap.sockets.status == "error"
    assert snap.sockets.reason.startswith("section too large to send (")
    assert snap.disks.status == "ok"
    assert encoded_size(snap) <= MAX_ENCODED_SIZE


async def test_unknown_collector_names_are_refused() -> None:
    with pytest.raises(LocalProtocolError, match="collectors for unknown sections: gpu"):
        await take_snapshot(DiagnosticsOptions(), FakeClock(), [returns("gpu", None)])
