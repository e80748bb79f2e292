"""Findings: small pure rules over a snapshot, one per fault a technician looks for.

Each rule is ``(snapshot) -> list[Finding]`` and says nothing about a section that
is not ``ok`` (no data, no verdict). :func:`evaluate` runs them all and puts the
critical ones first. Thresholds are the named constants below.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.capped_json import clean_text
from shared.diagnostics import (
    MAX_FINDINGS,
    MAX_STRING_LENGTH,
    SEVERITY_ORDER,
    Finding,
    Mount,
    Probe,
    ProcessInfo,
    Severity,
    Snapshot,
)
from shared.units import human_bytes

DISK_WARNING_PERCENT = 90.0
DISK_CRITICAL_PERCENT = 95.0
INODE_WARNING_PERCENT = 90.0
INODE_CRITICAL_PERCENT = 95.0
#: File systems that are full and read-only by design (snaps, CD images).
STATIC_FILESYSTEMS = frozenset({"squashfs", "iso9660", "udf", "erofs", "cramfs"})
ROOT_MOUNTS = ("/", "C:\\")
MEMORY_AVAILABLE_WARNING_PERCENT = 10.0
MEMORY_AVAILABLE_CRITICAL_PERCENT = 5.0
#: Linux PSI ``avg10``: share of the last 10 s some / all tasks stalled on memory.
PSI_SOME_WARNING = 20.0
PSI_FULL_CRITICAL = 10.0
SWAP_WARNING_PERCENT = 80.0
SWAP_WARNING_AVAILABLE_PERCENT = 20.0
#: Load per logical core, over both the 5- and 15-minute averages.
LOAD_WARNING_PER_CORE = 1.0
LOAD_CRITICAL_PER_CORE = 2.0
RUNAWAY_CPU_PERCENT = 90.0
RUNAWAY_MIN_AGE_S = 600.0
RUNAWAY_AVERAGE_CPU_PERCENT = 50.0
RUNAWAY_MEMORY_PERCENT = 50.0
RELAY_LATENCY_WARNING_MS = 300.0
CLOCK_WARNING_S = 60.0
#: Session certificates are valid for minutes: beyond this, logins start failing.
CLOCK_CRITICAL_S = 300.0
DROPS_RISING_INFO = 10

Rule = Callable[[Snapshot], list[Finding]]


def _finding(rule: str, severity: Severity, title: str, subject: str, *evidence: str) -> Finding:
    """A finding whose texts are one line each, whatever the agent data held."""
    return Finding(
        rule=rule,
        severity=severity,
        title=clean_text(title, MAX_STRING_LENGTH),
        subject=clean_text(subject, MAX_STRING_LENGTH),
        evidence=tuple(clean_text(line, MAX_STRING_LENGTH) for line in evidence),
    )


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def _judged_mounts(snapshot: Snapshot) -> list[Mount]:
    """Mounts a fullness verdict makes sense for (not read-only images)."""
    data = snapshot.disks.data
    if data is None:
        return []
    return [
        m
        for m in data.mounts
        if m.total_bytes > 0 and not m.read_only and m.fstype not in STATIC_FILESYSTEMS
    ]


# -- disks -------------------------------------------------------------------------------


def disk_full(snapshot: Snapshot) -> list[Finding]:
    """A mount at or above 90 % (warning) or 95 % (critical)."""
    found = []
    for m in _judged_mounts(snapshot):
        if m.percent < DISK_WARNING_PERCENT:
            continue
        severity: Severity = "critical" if m.percent >= DISK_CRITICAL_PERCENT else "warning"
        found.append(
            _finding(
                "disk_full",
                severity,
                f"Disk {m.mountpoint} is {m.percent:.0f}% full",
                m.mountpoint,
                f"{human_bytes(m.free_bytes)} free of {human_bytes(m.total_bytes)}",
                f"device {m.device} ({m.fstype})",
            )
        )
    return found


def inodes_low(snapshot: Snapshot) -> list[Finding]:
    """A mount running out of inodes (files can no longer be created)."""
    found = []
    for m in _judged_mounts(snapshot):
        if not m.inodes_total or m.inodes_used is None:
            continue
        used = _percent(m.inodes_used, m.inodes_total)
        if used < INODE_WARNING_PERCENT:
            continue
        severity: Severity = "critical" if used >= INODE_CRITICAL_PERCENT else "warning"
        found.append(
            _finding(
                "inodes_low",
                severity,
                f"Disk {m.mountpoint} has used {used:.0f}% of its inodes",
                m.mountpoint,
                f"{m.inodes_used} of {m.inodes_total} inodes in use",
                "many small files; new files will fail with 'No space left on device'",
            )
        )
    return found


def root_read_only(snapshot: Snapshot) -> list[Finding]:
    """The root file system mounted read-only (often after file system errors)."""
    data = snapshot.disks.data
    if data is None:
        return []
    return [
        _finding(
            "root_read_only",
            "critical",
            f"Root file system {m.mountpoint} is mounted read-only",
            m.mountpoint,
            f"device {m.device} ({m.fstype})",
            "usually remounted after disk or file system errors; check the journal",
        )
        for m in data.mounts
        if m.mountpoint in ROOT_MOUNTS and m.read_only
    ]


# -- CPU and memory -------------------------------------------------------------------------


def memory_pressure(snapshot: Snapshot) -> list[Finding]:
    """Little memory left, tasks stalling on memory, or swap nearly full."""
    mem = snapshot.memory.data
    if mem is None or mem.total_bytes <= 0:
        return []
    available = _percent(mem.available_bytes, mem.total_bytes)
    evidence = [
        f"{human_bytes(mem.available_bytes)} available of {human_bytes(mem.total_bytes)} "
        f"({available:.0f}%)",
        f"swap {mem.swap_percent:.0f}% used of {human_bytes(mem.swap_total_bytes)}",
    ]
    if mem.pressure_some_avg10 is not None:
        evidence.append(
            f"stalled on memory: some {mem.pressure_some_avg10:.1f}%, "
            f"full {mem.pressure_full_avg10 or 0:.1f}% (10 s average)"
        )
    full = mem.pressure_full_avg10 or 0.0
    if available < MEMORY_AVAILABLE_CRITICAL_PERCENT or full >= PSI_FULL_CRITICAL:
        severity: Severity = "critical"
    elif (
        available < MEMORY_AVAILABLE_WARNING_PERCENT
        or (mem.pressure_some_avg10 or 0.0) >= PSI_SOME_WARNING
        or (mem.swap_percent >= SWAP_WARNING_PERCENT and available < SWAP_WARNING_AVAILABLE_PERCENT)
    ):
        severity = "warning"
    else:
        return []
    return [_finding("memory_pressure", severity, "Memory is under pressure", "", *evidence)]


def load_high(snapshot: Snapshot) -> list[Finding]:
    """Load above the core count over both the 5- and 15-minute averages."""
    cpu = snapshot.cpu.data
    if cpu is None or not cpu.logical_count or cpu.load_5 is None or cpu.load_15 is None:
        return []
    per_core = min(cpu.load_5, cpu.load_15) / cpu.logical_count
    if per_core <= LOAD_WARNING_PER_CORE:
        return []
    severity: Severity = "critical" if per_core > LOAD_CRITICAL_PER_CORE else "warning"
    return [
        _finding(
            "load_high",
            severity,
            f"Sustained load {cpu.load_15:.1f} on {cpu.logical_count} cores",
            "",
            f"load average {cpu.load_1} / {cpu.load_5} / {cpu.load_15} (1, 5, 15 min)",
            f"CPU use over the sample: {cpu.utilisation_percent}%",
        )
    ]


def _age_s(process: ProcessInfo, now: datetime) -> float | None:
    if process.started_at is None:
        return None
    return (now - process.started_at).total_seconds()


def runaway_process(snapshot: Snapshot) -> list[Finding]:
    """A process that has kept a core busy for long, or holds half the memory."""
    cpu = snapshot.cpu.data
    if cpu is None:
        return []
    found: dict[int, Finding] = {}
    for p in cpu.top_by_cpu:
        age = _age_s(p, snapshot.taken_at)
        if (p.cpu_percent or 0.0) < RUNAWAY_CPU_PERCENT or age is None or p.cpu_time_s is None:
            continue
        average = 100.0 * p.cpu_time_s / age if age > 0 else 0.0
        if age >= RUNAWAY_MIN_AGE_S and average >= RUNAWAY_AVERAGE_CPU_PERCENT:
            found[p.pid] = _finding(
                "runaway_process",
                "warning",
                f"Process {p.name} (pid {p.pid}) keeps a CPU core busy",
                f"pid {p.pid}",
                f"{p.cpu_percent:.0f}% of a core now, {average:.0f}% on average "
                f"over {age / 60:.0f} min",
                f"user {p.user}: {p.command}",
            )
    for p in cpu.top_by_memory:
        if p.pid not in found and (p.memory_percent or 0.0) >= RUNAWAY_MEMORY_PERCENT:
            found[p.pid] = _finding(
                "runaway_process",
                "warning",
                f"Process {p.name} (pid {p.pid}) holds {p.memory_percent:.0f}% of memory",
                f"pid {p.pid}",
                f"resident {human_bytes(p.rss_bytes)}",
                f"user {p.user}: {p.command}",
            )
    return list(found.values())


# -- network ------------------------------------------------------------------------------


def no_default_route(snapshot: Snapshot) -> list[Finding]:
    """No default gateway: nothing beyond the local networks is reachable."""
    routes = snapshot.routes.data
    if routes is None or routes.default_gateways:
        return []
    return [
        _finding(
            "no_default_route",
            "critical",
            "No default route",
            "",
            "the routing table has no default gateway (IPv4 or IPv6)",
        )
    ]


def _probes(snapshot: Snapshot, role: str) -> list[Probe]:
    data = snapshot.reachability.data
    return [p for p in data.probes if p.role == role] if data is not None else []


def _describe(probe: Probe) -> str:
    detail = f" ({probe.error})" if probe.error else ""
    return f"TCP {probe.host} port {probe.port}: {probe.outcome}{detail}"


def gateway_unreachable(snapshot: Snapshot) -> list[Finding]:
    """A default gateway that answered on none of the probed ports."""
    return [
        _finding(
            "gateway_unreachable",
            "warning",
            f"Default gateway {p.host} does not answer",
            p.host,
            _describe(p),
            "a refusal would count as an answer; this was silence or an error",
        )
        for p in _probes(snapshot, "gateway")
        if p.outcome in ("timeout", "error")
    ]


def dns_not_resolving(snapshot: Snapshot) -> list[Finding]:
    """Configured names that do not resolve; critical when none does."""
    dns = snapshot.dns.data
    if dns is None:
        return []
    failed = [c for c in dns.checks if not c.ok]
    severity: Severity = "critical" if failed and len(failed) == len(dns.checks) else "warning"
    resolvers = ", ".join(dns.resolvers) or "none found"
    return [
        _finding(
            "dns_not_resolving",
            severity,
            f"DNS does not resolve {c.name}",
            c.name,
            f"error: {c.error or 'no addresses'}",
            f"resolvers: {resolvers}",
        )
        for c in failed
    ]


def relay_latency_high(snapshot: Snapshot) -> list[Finding]:
    """The relay slow to answer a TCP connect, or not answering at all."""
    found = []
    for p in _probes(snapshot, "relay"):
        if p.outcome != "open":
            found.append(
                _finding(
                    "relay_latency_high",
                    "critical",
                    f"Relay {p.host} is not reachable over TCP",
                    p.host,
                    _describe(p),
                )
            )
        elif p.latency_ms is not None and p.latency_ms >= RELAY_LATENCY_WARNING_MS:
            found.append(
                _finding(
                    "relay_latency_high",
                    "warning",
                    f"Relay {p.host} answers slowly ({p.latency_ms:.0f} ms)",
                    p.host,
                    f"TCP connect took {p.latency_ms:.0f} ms "
                    f"(threshold {RELAY_LATENCY_WARNING_MS:.0f} ms)",
                )
            )
    return found


def target_unreachable(snapshot: Snapshot) -> list[Finding]:
    """A configured TCP target that did not accept a connection."""
    return [
        _finding(
            "target_unreachable",
            "warning",
            f"{p.host} port {p.port} is not reachable",
            f"{p.host}:{p.port}",
            _describe(p),
        )
        for p in _probes(snapshot, "target")
        if p.outcome != "open"
    ]


def interface_down(snapshot: Snapshot) -> list[Finding]:
    """An interface that has IP addresses configured but is down."""
    data = snapshot.interfaces.data
    if data is None:
        return []
    return [
        _finding(
            "interface_down",
            "warning",
            f"Interface {i.name} is down",
            i.name,
            "addresses: " + ", ".join(a.address for a in i.addresses if a.family != "mac"),
        )
        for i in data.interfaces
        if i.is_up is False and any(a.family in ("ipv4", "ipv6") for a in i.addresses)
    ]


def interface_errors(snapshot: Snapshot) -> list[Finding]:
    """Error counters rising during the sample (warning), or many new drops (info)."""
    data = snapshot.interfaces.data
    if data is None:
        return []
    found = []
    for i in data.interfaces:
        totals = (
            f"since boot: {i.errors_in} errors in, {i.errors_out} out; "
            f"{i.drops_in} drops in, {i.drops_out} out"
        )
        if i.errors_rising:
            found.append(
                _finding(
                    "interface_errors",
                    "warning",
                    f"Errors rising on interface {i.name}",
                    i.name,
                    f"{i.errors_rising} new errors during the sample",
                    totals,
                )
            )
        elif (i.drops_rising or 0) >= DROPS_RISING_INFO:
            found.append(
                _finding(
                    "interface_errors",
                    "info",
                    f"Packets dropped on interface {i.name}",
                    i.name,
                    f"{i.drops_rising} new drops during the sample",
                    totals,
                )
            )
    return found


# -- system ---------------------------------------------------------------------------------


def clock_off(snapshot: Snapshot) -> list[Finding]:
    """The clock more than a minute off the relay's (critical past five minutes)."""
    system = snapshot.system.data
    if system is None or system.clock_offset_s is None:
        return []
    offset = system.clock_offset_s
    if abs(offset) <= CLOCK_WARNING_S:
        return []
    severity: Severity = "critical" if abs(offset) > CLOCK_CRITICAL_S else "warning"
    direction = "ahead of" if offset > 0 else "behind"
    return [
        _finding(
            "clock_off",
            severity,
            f"Clock is {abs(offset):.0f} s {direction} the relay",
            "",
            f"offset {offset:+.1f} s against the relay's clock",
            "time sync (NTP) may be off; certificates and logs depend on it",
        )
    ]


def failed_services(snapshot: Snapshot) -> list[Finding]:
    """Each failed systemd unit (warning) or stopped Windows auto-start service (info)."""
    services = snapshot.services.data
    if services is None:
        return []
    windows = services.manager == "windows"
    severity: Severity = "info" if windows else "warning"
    return [
        _finding(
            "failed_services",
            severity,
            f"Auto-start service {s.name} is stopped" if windows else f"Service {s.name} failed",
            s.name,
            *(part for part in (s.description, f"state {s.state}; {s.detail}") if part),
        )
        for s in services.failed
    ]


def pending_reboot(snapshot: Snapshot) -> list[Finding]:
    """The OS says a reboot is needed (updates waiting to take effect)."""
    system = snapshot.system.data
    if system is None or system.pending_reboot is not True:
        return []
    return [
        _finding(
            "pending_reboot",
            "info",
            "A reboot is pending",
            "",
            system.pending_reboot_reason or "the OS flags a pending reboot",
        )
    ]


RULES: tuple[Rule, ...] = (
    disk_full,
    inodes_low,
    root_read_only,
    memory_pressure,
    load_high,
    runaway_process,
    no_default_route,
    gateway_unreachable,
    dns_not_resolving,
    relay_latency_high,
    target_unreachable,
    clock_off,
    failed_services,
    pending_reboot,
    interface_down,
    interface_errors,
)


def evaluate(snapshot: Snapshot, rules: tuple[Rule, ...] = RULES) -> list[Finding]:
    """Every rule's findings, critical first (then in rule order), at most
    :data:`MAX_FINDINGS`. A rule that breaks is reported, not raised."""
    found: list[Finding] = []
    for rule in rules:
        try:
            found += rule(snapshot)
        except Exception as exc:  # one broken rule must not cost the others
            found.append(
                _finding(
                    "rule_failed",
                    "info",
                    f"Diagnostic rule {rule.__name__} failed",
                    rule.__name__,
                    f"{type(exc).__name__}: {exc}",
                )
            )
    found.sort(key=lambda f: SEVERITY_ORDER[f.severity])
    return found[:MAX_FINDINGS]
