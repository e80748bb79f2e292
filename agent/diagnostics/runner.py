"""Take a diagnostics snapshot: every collector at once, each in its own thread and
under its own timeout, the whole bounded in time and size.

Collectors block (psutil, subprocesses, ``getaddrinfo``), so each runs in a daemon
thread of its own rather than the loop's default executor: a collector that hangs
for good keeps only its own thread, never a pool slot the next snapshot needs, and
never holds up the process exit. A collector still hung from an earlier snapshot is
not started again; it is reported ``timeout`` until its thread comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

from agent.diagnostics.collector import Collector, Unavailable
from agent.diagnostics.cpu_mem import collect_cpu, collect_memory
from agent.diagnostics.disks import collect_disks
from agent.diagnostics.findings import evaluate
from agent.diagnostics.journal import collect_journal
from agent.diagnostics.network import collect_interfaces, collect_routes
from agent.diagnostics.options import DiagnosticsOptions
from agent.diagnostics.probes import collect_dns, collect_reachability
from agent.diagnostics.services import collect_services
from agent.diagnostics.sockets import collect_sockets
from agent.diagnostics.system import collect_system
from shared.clock import Clock
from shared.diagnostics import (
    MAX_ENCODED_SIZE,
    SECTION_NAMES,
    Section,
    Snapshot,
    encoded_size,
    sanitize,
    sanitize_section,
    sections,
    with_sections,
)
from shared.errors import LocalProtocolError

# Collector name -> the thread of its run that timed out and may still be stuck.
_hung: dict[str, threading.Thread] = {}
_hung_lock = threading.Lock()


def default_collectors() -> tuple[Collector, ...]:
    """Every collector, one per section of the snapshot."""
    return (
        Collector("system", collect_system),
        Collector("cpu", collect_cpu),
        Collector("memory", collect_memory),
        Collector("disks", collect_disks),
        Collector("services", collect_services),
        Collector("interfaces", collect_interfaces),
        Collector("routes", collect_routes),
        Collector("dns", collect_dns),
        Collector("reachability", collect_reachability),
        Collector("sockets", collect_sockets),
        Collector("journal", collect_journal),
    )


async def take_snapshot(
    options: DiagnosticsOptions,
    clock: Clock,
    collectors: Sequence[Collector] | None = None,
) -> Snapshot:
    """Run ``collectors`` (default: all) and return the sanitised snapshot with its
    findings. Never raises for a collector's sake: each failure is its section's
    status. Returns within ``options.overall_timeout`` plus the (small) cost of
    sanitising; a section too large to send is replaced by an ``error``."""
    chosen = tuple(collectors) if collectors is not None else default_collectors()
    unknown = [c.name for c in chosen if c.name not in SECTION_NAMES]
    if unknown:
        raise LocalProtocolError(f"collectors for unknown sections: {', '.join(unknown)}")
    taken_at = clock.now()
    start = clock.monotonic()
    loop = asyncio.get_running_loop()
    results = await asyncio.gather(*(_run(loop, c, options, clock) for c in chosen))
    snapshot = with_sections(
        Snapshot(taken_at=taken_at, elapsed_ms=_ms(clock.monotonic() - start)),
        {c.name: section for c, section in zip(chosen, results, strict=True)},
    )
    snapshot = dataclasses.replace(snapshot, findings=tuple(evaluate(snapshot)))
    return shrink_to_fit(sanitize(snapshot))


def shrink_to_fit(snapshot: Snapshot, limit: int = MAX_ENCODED_SIZE) -> Snapshot:
    """Replace the largest sections by an ``error`` until the snapshot encodes
    within ``limit`` bytes. The findings stay: they were drawn from the full data."""
    while encoded_size(snapshot) > limit:
        name, section = max(sections(snapshot), key=lambda item: encoded_size(item[1]))
        size = encoded_size(section)
        if section.data is None:
            raise LocalProtocolError(f"snapshot over {limit} bytes with nothing left to drop")
        dropped: Section[Any] = Section(
            status="error",
            reason=f"section too large to send ({size} bytes)",
            elapsed_ms=section.elapsed_ms,
        )
        snapshot = with_sections(snapshot, {name: dropped})
    return snapshot


async def _run(
    loop: asyncio.AbstractEventLoop,
    collector: Collector,
    options: DiagnosticsOptions,
    clock: Clock,
) -> Section[Any]:
    timeout = options.timeout_for(collector.name)
    future: asyncio.Future[Section[Any]] = loop.create_future()
    with _hung_lock:
        stuck = _hung.get(collector.name)
        if stuck is not None and stuck.is_alive():
            return Section(status="timeout", reason="still hung since an earlier snapshot")
        _hung.pop(collector.name, None)
        thread = threading.Thread(
            target=_work,
            args=(loop, future, collector, options, clock),
            name=f"qp-diag-{collector.name}",
            daemon=True,
        )
        thread.start()
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError:
        with _hung_lock:
            if thread.is_alive():
                _hung[collector.name] = thread
        return Section(
            status="timeout", reason=f"no result within {timeout:g} s", elapsed_ms=_ms(timeout)
        )


def _work(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Section[Any]],
    collector: Collector,
    options: DiagnosticsOptions,
    clock: Clock,
) -> None:
    """Thread body: run the collector, turn any outcome into a checked section."""
    start = clock.monotonic()
    section: Section[Any]
    try:
        section = Section(status="ok", data=collector.collect(options, clock))
    except Unavailable as exc:
        section = Section(status="unavailable", reason=str(exc))
    except Exception as exc:  # the boundary: a collector's failure is its status
        section = Section(status="error", reason=f"{type(exc).__name__}: {exc}")
    section = dataclasses.replace(section, elapsed_ms=_ms(clock.monotonic() - start))
    try:
        section = sanitize_section(collector.name, section)
    except LocalProtocolError as exc:
        section = Section(status="error", reason=f"invalid data: {exc}")
    # The loop may be gone (snapshot over, program exiting): nobody is waiting then.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_settle, future, section)


def _settle(future: asyncio.Future[Section[Any]], section: Section[Any]) -> None:
    if not future.done():
        future.set_result(section)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
