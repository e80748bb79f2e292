"""CPU and memory collectors: load, utilisation over a short sample, the busiest and
the largest processes, memory, swap and (Linux) memory pressure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from agent.diagnostics.collector import Unavailable, count, number
from agent.diagnostics.options import DiagnosticsOptions
from shared.clock import Clock
from shared.diagnostics import MAX_PROCESSES, CpuInfo, MemoryInfo, ProcessInfo

_PSI_MEMORY = Path("/proc/pressure/memory")
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess)
_HIDDEN = (psutil.AccessDenied, *_GONE)


@dataclass
class _Sampled:
    process: Any  # psutil.Process
    cpu_percent: float
    rss: int


def collect_cpu(options: DiagnosticsOptions, clock: Clock) -> CpuInfo:
    """Core counts, load averages, and CPU use over ``options.sample`` seconds, with
    the top processes by CPU and by memory."""
    # Fresh Process objects, not process_iter's shared cache: each keeps its own CPU
    # baseline, so concurrent snapshots do not disturb each other's sample.
    processes = []
    for pid in psutil.pids():
        try:
            process = psutil.Process(pid)
            process.cpu_percent(None)
        except _HIDDEN:
            continue
        processes.append(process)
    # cpu_percent with an interval keeps its own baseline too; it is the sample wait.
    utilisation = psutil.cpu_percent(interval=options.sample) if options.sample else None
    sampled = _sample(processes)
    memory_total = int(psutil.virtual_memory().total)
    top = min(options.top_processes, MAX_PROCESSES)
    by_cpu = sorted(sampled, key=lambda s: (-s.cpu_percent, s.process.pid))[:top]
    by_memory = sorted(sampled, key=lambda s: (-s.rss, s.process.pid))[:top]
    load = _load_average()
    return CpuInfo(
        logical_count=count(psutil.cpu_count(logical=True)),
        physical_count=count(psutil.cpu_count(logical=False)),
        load_1=load[0],
        load_5=load[1],
        load_15=load[2],
        utilisation_percent=number(utilisation),
        sample_s=options.sample,
        process_count=len(processes),
        top_by_cpu=tuple(_describe(s, memory_total) for s in by_cpu),
        top_by_memory=tuple(_describe(s, memory_total) for s in by_memory),
    )


def collect_memory(options: DiagnosticsOptions, clock: Clock) -> MemoryInfo:
    """Memory and swap use; Linux pressure stall figures where the kernel has them."""
    memory = psutil.virtual_memory()
    try:
        swap = psutil.swap_memory()
    except (OSError, RuntimeError):
        swap = None
    some, full = parse_psi(_read(_PSI_MEMORY))
    return MemoryInfo(
        total_bytes=int(memory.total),
        available_bytes=int(memory.available),
        used_bytes=int(memory.used),
        percent=number(memory.percent) or 0.0,
        swap_total_bytes=int(swap.total) if swap else 0,
        swap_used_bytes=int(swap.used) if swap else 0,
        swap_percent=(number(swap.percent) or 0.0) if swap else 0.0,
        pressure_some_avg10=some,
        pressure_full_avg10=full,
    )


def parse_psi(text: str) -> tuple[float | None, float | None]:
    """``avg10`` of the ``some`` and ``full`` lines of a ``/proc/pressure`` file."""
    found: dict[str, float | None] = {"some": None, "full": None}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind not in found:
            continue
        for part in rest.split():
            key, _, value = part.partition("=")
            if key == "avg10":
                found[kind] = number(value, 2)
    return found["some"], found["full"]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def _load_average() -> tuple[float | None, float | None, float | None]:
    try:
        one, five, fifteen = psutil.getloadavg()
    except (AttributeError, OSError):
        return None, None, None
    return number(one, 2), number(five, 2), number(fifteen, 2)


def _sample(processes: list[Any]) -> list[_Sampled]:
    sampled = []
    for process in processes:
        try:
            with process.oneshot():
                cpu = number(process.cpu_percent(None)) or 0.0
                rss = int(process.memory_info().rss)
        except _HIDDEN:
            continue
        sampled.append(_Sampled(process, cpu, rss))
    if not sampled and processes:
        raise Unavailable("no process could be inspected")
    return sampled


def _describe(sampled: _Sampled, memory_total: int) -> ProcessInfo:
    """The expensive details, fetched only for the processes shown."""
    process = sampled.process
    info = ProcessInfo(
        pid=int(process.pid),
        cpu_percent=sampled.cpu_percent,
        rss_bytes=sampled.rss,
        memory_percent=number(100 * sampled.rss / memory_total) if memory_total else None,
    )
    try:
        with process.oneshot():
            name = str(process.name())
            started = datetime.fromtimestamp(process.create_time(), UTC)
            times = process.cpu_times()
            cpu_time = number(float(times.user) + float(times.system), 2)
            user = _guard(process.username)
            command = _guard(lambda: " ".join(str(arg) for arg in process.cmdline()))
    except _HIDDEN:
        return info
    return ProcessInfo(
        pid=info.pid,
        name=name,
        user=user,
        command=command or f"[{name}]",
        cpu_percent=info.cpu_percent,
        rss_bytes=info.rss_bytes,
        memory_percent=info.memory_percent,
        cpu_time_s=cpu_time,
        started_at=started,
    )


def _guard(call: Any) -> str:
    """A detail some processes deny us (another user's, on macOS/Windows): ``""``."""
    try:
        return str(call())
    except psutil.AccessDenied:
        return ""
