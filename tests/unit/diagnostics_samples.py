"""Synthetic diagnostics snapshots for the pure tests: one healthy machine, and a
helper to change one section of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.diagnostics import (
    Address,
    CpuInfo,
    DisksInfo,
    DnsInfo,
    Gateway,
    Interface,
    InterfacesInfo,
    JournalEntry,
    JournalInfo,
    Listener,
    MemoryInfo,
    Mount,
    NameCheck,
    Probe,
    ProcessInfo,
    ReachabilityInfo,
    RoutesInfo,
    Section,
    ServicesInfo,
    Snapshot,
    SocketsInfo,
    SystemInfo,
    with_sections,
)

TAKEN_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
GIB = 1024**3


def ok(data: Any) -> Section[Any]:
    return Section(status="ok", data=data)


def mount(point: str = "/", percent: float = 40.0, **changes: Any) -> Mount:
    total = 100 * GIB
    used = int(total * percent / 100)
    fields: dict[str, Any] = {
        "mountpoint": point,
        "device": "/dev/sda1",
        "fstype": "ext4",
        "total_bytes": total,
        "used_bytes": used,
        "free_bytes": total - used,
        "percent": percent,
        "inodes_total": 1000,
        "inodes_used": 100,
        "inodes_free": 900,
        "read_only": False,
    }
    fields.update(changes)
    return Mount(**fields)


def process(pid: int = 100, **changes: Any) -> ProcessInfo:
    fields: dict[str, Any] = {
        "pid": pid,
        "name": "worker",
        "user": "alice",
        "command": "/usr/bin/worker --serve",
        "cpu_percent": 2.0,
        "rss_bytes": 100 * 1024**2,
        "memory_percent": 1.2,
        "cpu_time_s": 30.0,
        "started_at": TAKEN_AT - timedelta(hours=2),
    }
    fields.update(changes)
    return ProcessInfo(**fields)


def healthy() -> Snapshot:
    """A machine with nothing wrong: :func:`evaluate` finds nothing."""
    return with_sections(
        Snapshot(taken_at=TAKEN_AT),
        {
            "system": ok(
                SystemInfo(
                    hostname="pc-01",
                    os="Linux",
                    os_release="Debian GNU/Linux 12",
                    kernel="6.1.0",
                    architecture="x86_64",
                    boot_time=TAKEN_AT - timedelta(days=3),
                    pending_reboot=False,
                    timezone="Europe/Amsterdam",
                    utc_offset_minutes=60,
                    clock_offset_s=0.4,
                )
            ),
            "cpu": ok(
                CpuInfo(
                    logical_count=4,
                    physical_count=2,
                    load_1=0.5,
                    load_5=0.4,
                    load_15=0.3,
                    utilisation_percent=7.0,
                    sample_s=0.5,
                    process_count=120,
                    top_by_cpu=(process(100),),
                    top_by_memory=(process(100),),
                )
            ),
            "memory": ok(
                MemoryInfo(
                    total_bytes=16 * GIB,
                    available_bytes=10 * GIB,
                    used_bytes=6 * GIB,
                    percent=37.5,
                    swap_total_bytes=2 * GIB,
                    swap_used_bytes=0,
                    swap_percent=0.0,
                    pressure_some_avg10=0.0,
                    pressure_full_avg10=0.0,
                )
            ),
            "disks": ok(DisksInfo(mounts=(mount("/"), mount("/home", 60.0)), mount_count=2)),
            "services": ok(ServicesInfo(manager="systemd", failed=(), failed_count=0)),
            "interfaces": ok(
                InterfacesInfo(
                    interfaces=(
                        Interface(
                            name="eth0",
                            is_up=True,
                            speed_mbps=1000,
                            mtu=1500,
                            addresses=(Address("ipv4", "192.168.1.20", "255.255.255.0"),),
                            errors_in=0,
                            errors_out=0,
                            drops_in=3,
                            drops_out=0,
                            errors_rising=0,
                            drops_rising=0,
                        ),
                        # Down but unconfigured (a spare port): not a finding.
                        Interface(name="eth1", is_up=False, mtu=1500),
                    )
                )
            ),
            "routes": ok(RoutesInfo(default_gateways=(Gateway("192.168.1.1", "eth0", "ipv4"),))),
            "dns": ok(
                DnsInfo(
                    resolvers=("192.168.1.1",),
                    resolvers_source="/etc/resolv.conf",
                    checks=(NameCheck("relay.example.com", True, ("203.0.113.5",), 12.0),),
                )
            ),
            "reachability": ok(
                ReachabilityInfo(
                    probes=(
                        Probe("relay", "relay.example.com", 443, "open", 25.0),
                        Probe("gateway", "192.168.1.1", 53, "refused", 0.8),
                        Probe("target", "fileserver", 445, "open", 1.5),
                    )
                )
            ),
            "sockets": ok(
                SocketsInfo(
                    listeners=(Listener("tcp", "0.0.0.0", 22, 500, "sshd", "root"),),
                    listener_count=1,
                    established_count=4,
                )
            ),
            "journal": ok(
                JournalInfo(
                    source="journald",
                    entries=(JournalEntry(TAKEN_AT, 3, "cron.service", "job failed"),),
                )
            ),
        },
    )


def changed(snapshot: Snapshot, name: str, data: Any) -> Snapshot:
    """``snapshot`` with section ``name`` holding ``data`` (status ok)."""
    return with_sections(snapshot, {name: ok(data)})


def data(snapshot: Snapshot, name: str) -> Any:
    section: Section[Any] = getattr(snapshot, name)
    assert section.data is not None
    return section.data
