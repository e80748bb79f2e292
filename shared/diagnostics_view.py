"""Show a diagnostics snapshot, or what changed between two, to a technician.

Findings come first, then one readable block per section. Every string that came
from an agent is untrusted (architecture.md §7): it reaches the console only as a
:class:`rich.text.Text` (never markup, never a format string) after
:func:`shared.capped_json.clean_text` has dropped control characters, so HTML, ANSI
escapes and rich markup in agent data print as inert text. Pure: no I/O beyond the
console passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from shared.capped_json import clean_text
from shared.clock import iso
from shared.diagnostics import (
    MAX_MESSAGE_LENGTH,
    CpuInfo,
    DisksInfo,
    DnsInfo,
    Finding,
    InterfacesInfo,
    JournalInfo,
    Listener,
    MemoryInfo,
    ProcessInfo,
    ReachabilityInfo,
    RoutesInfo,
    Section,
    ServicesInfo,
    Snapshot,
    SocketsInfo,
    SystemInfo,
    sections,
)
from shared.diagnostics_diff import SnapshotDiff
from shared.units import human_bytes

SEVERITY_STYLES = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
STATUS_STYLES = {"ok": "green", "unavailable": "dim", "timeout": "red", "error": "red"}
SECTION_TITLES = {
    "system": "System",
    "cpu": "CPU",
    "memory": "Memory",
    "disks": "Disks",
    "services": "Services",
    "interfaces": "Network interfaces",
    "routes": "Routes",
    "dns": "DNS",
    "reachability": "Reachability",
    "sockets": "Listening sockets",
    "journal": "Recent system errors",
}


def t(value: object, style: str = "", limit: int = MAX_MESSAGE_LENGTH) -> Text:
    """A safe cell: any value as plain text, control characters removed."""
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, bool):
        value = "yes" if value else "no"
    return Text(clean_text(str(value), limit), style=style)


def _when(value: datetime | None) -> Text:
    return t(iso(value))


def _table(title: str | Text, *columns: str) -> Table:
    """A table whose title is never parsed as markup (it may hold agent text)."""
    caption = t(title) if isinstance(title, str) else title
    table = Table(
        title=caption or None, title_justify="left", box=box.SIMPLE_HEAD, title_style="bold"
    )
    for heading in columns:
        table.add_column(heading, overflow="fold")
    return table


def _pairs(rows: Iterable[tuple[str, Text]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(Text(label), value)
    return grid


def _percent(value: float | None) -> Text:
    return t(None if value is None else f"{value:.0f}%")


# -- the snapshot ------------------------------------------------------------------------


def render_snapshot(console: Console, snapshot: Snapshot) -> None:
    """Print ``snapshot``: header, findings, then each section (or why it is missing)."""
    host = snapshot.system.data.hostname if snapshot.system.data else "unknown host"
    header = Text("Diagnostics of ", style="bold")
    header.append_text(t(host, "bold"))
    header.append(f" at {iso(snapshot.taken_at)} (took {snapshot.elapsed_ms} ms)")
    console.print(header)
    console.print(findings_table(snapshot.findings))
    for name, section in sections(snapshot):
        console.print(Text(SECTION_TITLES[name], style="bold underline"))
        if section.status != "ok" or section.data is None:
            console.print(_status_line(section))
            continue
        for renderable in _RENDERERS[name](section.data):
            console.print(renderable)


def findings_table(findings: Iterable[Finding]) -> RenderableType:
    """The findings, in the order given (the agent sorts critical first)."""
    rows = list(findings)
    if not rows:
        return Text("No findings: nothing wrong was detected.", style="green")
    table = _table("Findings", "Severity", "Finding", "Evidence")
    for f in rows:
        style = SEVERITY_STYLES.get(f.severity, "")
        evidence = Text("\n").join(t(line) for line in f.evidence)
        table.add_row(t(f.severity.upper(), style), t(f.title, style), evidence)
    return table


def _status_line(section: Section[Any]) -> Text:
    line = t(section.status, STATUS_STYLES.get(section.status, ""))
    if section.reason:
        line.append(": ")
        line.append_text(t(section.reason))
    return line


def _system(data: SystemInfo) -> list[RenderableType]:
    users = ", ".join(f"{u.name}@{u.terminal or '?'}" for u in data.users) or "none"
    offset = data.utc_offset_minutes
    zone = data.timezone
    if offset is not None:
        zone += f" (UTC{'-' if offset < 0 else '+'}{abs(offset) // 60:02d}:{abs(offset) % 60:02d})"
    clock = None if data.clock_offset_s is None else f"{data.clock_offset_s:+.1f} s vs relay"
    reboot = data.pending_reboot
    reboot_text = "unknown" if reboot is None else ("yes" if reboot else "no")
    if data.pending_reboot_reason:
        reboot_text += f" ({data.pending_reboot_reason})"
    return [
        _pairs(
            [
                ("Host", t(data.hostname)),
                ("OS", t(data.os_release or data.os)),
                ("Kernel", t(data.kernel)),
                ("Architecture", t(data.architecture)),
                ("Booted", _when(data.boot_time)),
                ("Time zone", t(zone)),
                ("Clock offset", t(clock)),
                ("Pending reboot", t(reboot_text)),
                ("Logged in", t(users)),
            ]
        )
    ]


def _processes(title: str, processes: Iterable[ProcessInfo]) -> Table:
    table = _table(title, "PID", "User", "CPU", "Memory", "Command")
    for p in processes:
        table.add_row(
            t(p.pid),
            t(p.user),
            _percent(p.cpu_percent),
            t(human_bytes(p.rss_bytes)),
            t(p.command or p.name),
        )
    return table


def _cpu(data: CpuInfo) -> list[RenderableType]:
    load = f"{data.load_1} / {data.load_5} / {data.load_15}"
    return [
        _pairs(
            [
                ("Cores", t(f"{data.logical_count} logical, {data.physical_count} physical")),
                ("Load (1/5/15 min)", t(load)),
                ("Utilisation", t(f"{data.utilisation_percent}% over {data.sample_s:g} s")),
                ("Processes", t(data.process_count)),
            ]
        ),
        _processes("Top processes by CPU", data.top_by_cpu),
        _processes("Top processes by memory", data.top_by_memory),
    ]


def _memory(data: MemoryInfo) -> list[RenderableType]:
    pressure = (
        None
        if data.pressure_some_avg10 is None
        else f"some {data.pressure_some_avg10}%, full {data.pressure_full_avg10}% (10 s)"
    )
    used = f"{human_bytes(data.used_bytes)} of {human_bytes(data.total_bytes)}"
    swap = f"{human_bytes(data.swap_used_bytes)} of {human_bytes(data.swap_total_bytes)}"
    return [
        _pairs(
            [
                ("Memory used", t(f"{used} ({data.percent:.0f}%)")),
                ("Available", t(human_bytes(data.available_bytes))),
                ("Swap used", t(f"{swap} ({data.swap_percent:.0f}%)")),
                ("Stalled on memory", t(pressure)),
            ]
        )
    ]


def _disks(data: DisksInfo) -> list[RenderableType]:
    table = _table("", "Mount", "Device", "Type", "Size", "Used", "Free", "Use", "Inodes", "RO")
    for m in data.mounts:
        inodes = (
            None
            if not m.inodes_total or m.inodes_used is None
            else f"{100 * m.inodes_used / m.inodes_total:.0f}%"
        )
        table.add_row(
            t(m.mountpoint),
            t(m.device),
            t(m.fstype),
            t(human_bytes(m.total_bytes)),
            t(human_bytes(m.used_bytes)),
            t(human_bytes(m.free_bytes)),
            _percent(m.percent),
            t(inodes),
            t(m.read_only, "bold red" if m.read_only else ""),
        )
    return [table]


def _services(data: ServicesInfo) -> list[RenderableType]:
    if not data.failed:
        return [t(f"No failed services ({data.manager}).", "green")]
    table = _table(f"{data.failed_count} not running ({data.manager})", "Name", "State", "Detail")
    for s in data.failed:
        table.add_row(
            t(s.name), t(s.state, "red"), t(" — ".join(p for p in (s.description, s.detail) if p))
        )
    return [table]


def _interfaces(data: InterfacesInfo) -> list[RenderableType]:
    table = _table("", "Name", "Link", "Speed", "MTU", "Addresses", "Errors in/out", "Drops in/out")
    for i in data.interfaces:
        link = "unknown" if i.is_up is None else ("up" if i.is_up else "down")
        rising = f" (+{i.errors_rising} now)" if i.errors_rising else ""
        table.add_row(
            t(i.name),
            t(link, "" if i.is_up is not False else "red"),
            t(None if i.speed_mbps is None else f"{i.speed_mbps} Mb/s"),
            t(i.mtu),
            Text("\n").join(t(a.address) for a in i.addresses if a.family != "mac"),
            t(f"{i.errors_in}/{i.errors_out}{rising}", "red" if rising else ""),
            t(f"{i.drops_in}/{i.drops_out}"),
        )
    return [table]


def _routes(data: RoutesInfo) -> list[RenderableType]:
    if not data.default_gateways:
        return [t("No default gateway.", "bold red")]
    table = _table("", "Default gateway", "Interface", "Family")
    for g in data.default_gateways:
        table.add_row(t(g.address), t(g.interface), t(g.family))
    return [table]


def _dns(data: DnsInfo) -> list[RenderableType]:
    out: list[RenderableType] = [
        _pairs([("Resolvers", t(", ".join(data.resolvers) or data.resolvers_source or "none"))])
    ]
    if data.checks:
        table = _table("", "Name", "Result", "Addresses", "Time")
        for c in data.checks:
            result = t("resolves", "green") if c.ok else t(c.error or "fails", "red")
            latency = None if c.latency_ms is None else f"{c.latency_ms:.0f} ms"
            table.add_row(t(c.name), result, t(", ".join(c.addresses)), t(latency))
        out.append(table)
    return out


def _reachability(data: ReachabilityInfo) -> list[RenderableType]:
    if not data.probes:
        return [t("No TCP targets were probed.", "dim")]
    table = _table("", "Role", "Host", "Port", "Outcome", "Latency", "Error")
    for p in data.probes:
        latency = None if p.latency_ms is None else f"{p.latency_ms:.0f} ms"
        style = "green" if p.outcome == "open" else "red"
        table.add_row(
            t(p.role), t(p.host), t(p.port), t(p.outcome, style), t(latency), t(p.error or None)
        )
    return [table]


def _listener_row(listener: Listener) -> list[Text]:
    return [
        t(listener.protocol),
        t(listener.address),
        t(listener.port),
        t(listener.pid),
        t(listener.process),
        t(listener.user),
    ]


def _sockets(data: SocketsInfo) -> list[RenderableType]:
    shown = len(data.listeners)
    more = f" (showing {shown})" if data.listener_count > shown else ""
    summary = f"{data.listener_count} listening{more}; {data.established_count} TCP established"
    table = _table(summary, "Proto", "Address", "Port", "PID", "Process", "User")
    for listener in data.listeners:
        table.add_row(*_listener_row(listener))
    return [table]


def _journal(data: JournalInfo) -> list[RenderableType]:
    if not data.entries:
        return [t(f"No recent errors ({data.source}).", "green")]
    table = _table("", "Time", "Prio", "Unit", "Message")
    for e in data.entries:
        table.add_row(_when(e.time), t(e.priority), t(e.unit), t(e.message))
    return [table]


_RENDERERS: dict[str, Callable[[Any], list[RenderableType]]] = {
    "system": _system,
    "cpu": _cpu,
    "memory": _memory,
    "disks": _disks,
    "services": _services,
    "interfaces": _interfaces,
    "routes": _routes,
    "dns": _dns,
    "reachability": _reachability,
    "sockets": _sockets,
    "journal": _journal,
}


# -- the diff ------------------------------------------------------------------------------


def render_diff(console: Console, changes: SnapshotDiff) -> None:
    """Print what changed between two snapshots, findings first."""
    console.print(Text(f"Changes from {iso(changes.since)} to {iso(changes.until)}", style="bold"))
    if changes.empty:
        console.print(Text("No changes.", style="green"))
        return
    if changes.findings_appeared:
        console.print(Text("New findings", style="bold underline"))
        console.print(findings_table(changes.findings_appeared))
    if changes.findings_cleared:
        table = _table("Cleared findings", "Severity", "Finding")
        for f in changes.findings_cleared:
            table.add_row(t(f.severity.upper(), "dim"), t(f.title, "green"))
        console.print(table)
    if changes.sections_changed:
        table = _table("Sections", "Section", "Before", "After", "Reason")
        for c in changes.sections_changed:
            table.add_row(
                t(SECTION_TITLES.get(c.name, c.name)),
                t(c.old_status, STATUS_STYLES.get(c.old_status, "")),
                t(c.new_status, STATUS_STYLES.get(c.new_status, "")),
                t(c.reason or None),
            )
        console.print(table)
    _render_listener_changes(console, changes)
    _render_disk_changes(console, changes)
    _render_service_changes(console, changes)


def _render_listener_changes(console: Console, changes: SnapshotDiff) -> None:
    if not (changes.listeners_added or changes.listeners_removed):
        return
    table = _table("Listening sockets", "", "Proto", "Address", "Port", "PID", "Process", "User")
    for listener in changes.listeners_added:
        table.add_row(t("+", "green"), *_listener_row(listener))
    for listener in changes.listeners_removed:
        table.add_row(t("-", "red"), *_listener_row(listener))
    console.print(table)


def _render_disk_changes(console: Console, changes: SnapshotDiff) -> None:
    if not changes.disks:
        return
    table = _table("Disk usage", "Mount", "Used before", "Used after", "Change", "Use")
    for d in changes.disks:
        sign = "+" if d.delta_bytes > 0 else ""
        use = f"{_pct(d.old_percent)} → {_pct(d.new_percent)}"
        table.add_row(
            t(d.mountpoint),
            t(human_bytes(d.old_used_bytes)),
            t(human_bytes(d.new_used_bytes)),
            t(f"{sign}{human_bytes(d.delta_bytes)}", "yellow" if d.delta_bytes > 0 else "green"),
            t(use),
        )
    console.print(table)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _render_service_changes(console: Console, changes: SnapshotDiff) -> None:
    if not (changes.services_failed or changes.services_recovered):
        return
    table = _table("Services", "", "Name", "State")
    for s in changes.services_failed:
        table.add_row(t("failed", "red"), t(s.name), t(s.state))
    for s in changes.services_recovered:
        table.add_row(t("recovered", "green"), t(s.name), t(s.state))
    console.print(table)
