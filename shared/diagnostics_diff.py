"""What changed between two diagnostics snapshots of one agent (pure).

:func:`diff` compares an earlier and a later :class:`~shared.diagnostics.Snapshot`:
listening sockets added or removed, per-mount disk usage, services newly failed or
recovered, findings that appeared or cleared, and sections whose status changed.
A section that is not ``ok`` in either snapshot cannot be compared; its status
change is reported instead of a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from shared.diagnostics import (
    SECTION_NAMES,
    Finding,
    Listener,
    Section,
    Service,
    Snapshot,
    Status,
    finding_key,
)

T = TypeVar("T")


@dataclass(frozen=True)
class DiskChange:
    """Usage of one mount point before and after; ``None`` where it was not mounted."""

    mountpoint: str
    old_used_bytes: int | None
    new_used_bytes: int | None
    old_percent: float | None
    new_percent: float | None
    total_bytes: int

    @property
    def delta_bytes(self) -> int:
        """Growth in used bytes (negative when space was freed)."""
        return (self.new_used_bytes or 0) - (self.old_used_bytes or 0)


@dataclass(frozen=True)
class SectionChange:
    name: str
    old_status: Status
    new_status: Status
    reason: str


@dataclass(frozen=True)
class SnapshotDiff:
    """Structured changes from snapshot ``since`` to snapshot ``until``."""

    since: datetime
    until: datetime
    listeners_added: tuple[Listener, ...] = ()
    listeners_removed: tuple[Listener, ...] = ()
    disks: tuple[DiskChange, ...] = ()
    services_failed: tuple[Service, ...] = ()
    services_recovered: tuple[Service, ...] = ()
    findings_appeared: tuple[Finding, ...] = ()
    findings_cleared: tuple[Finding, ...] = ()
    sections_changed: tuple[SectionChange, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing worth showing changed."""
        return not (
            self.listeners_added
            or self.listeners_removed
            or self.disks
            or self.services_failed
            or self.services_recovered
            or self.findings_appeared
            or self.findings_cleared
            or self.sections_changed
        )


def diff(a: Snapshot, b: Snapshot) -> SnapshotDiff:
    """Changes from the earlier snapshot ``a`` to the later snapshot ``b``."""
    added, removed = _listener_changes(a, b)
    failed, recovered = _service_changes(a, b)
    appeared, cleared = _added_removed(a.findings, b.findings, finding_key)
    return SnapshotDiff(
        since=a.taken_at,
        until=b.taken_at,
        listeners_added=added,
        listeners_removed=removed,
        disks=_disk_changes(a, b),
        services_failed=failed,
        services_recovered=recovered,
        findings_appeared=appeared,
        findings_cleared=cleared,
        sections_changed=_section_changes(a, b),
    )


def listener_key(listener: Listener) -> tuple[str, str, int, str]:
    """Identity of a listening socket across snapshots (a restart keeps it)."""
    return (listener.protocol, listener.address, listener.port, listener.process)


def _added_removed(
    old: Iterable[T], new: Iterable[T], key: Callable[[T], Hashable]
) -> tuple[tuple[T, ...], tuple[T, ...]]:
    old_by_key = {key(item): item for item in old}
    new_by_key = {key(item): item for item in new}
    added = tuple(item for k, item in new_by_key.items() if k not in old_by_key)
    removed = tuple(item for k, item in old_by_key.items() if k not in new_by_key)
    return added, removed


def _listener_changes(
    a: Snapshot, b: Snapshot
) -> tuple[tuple[Listener, ...], tuple[Listener, ...]]:
    if a.sockets.data is None or b.sockets.data is None:
        return (), ()
    added, removed = _added_removed(
        a.sockets.data.listeners, b.sockets.data.listeners, listener_key
    )
    order = sorted(added, key=listener_key), sorted(removed, key=listener_key)
    return tuple(order[0]), tuple(order[1])


def _service_changes(a: Snapshot, b: Snapshot) -> tuple[tuple[Service, ...], tuple[Service, ...]]:
    if a.services.data is None or b.services.data is None:
        return (), ()

    def name(service: Service) -> str:
        return service.name

    return _added_removed(a.services.data.failed, b.services.data.failed, name)


def _disk_changes(a: Snapshot, b: Snapshot) -> tuple[DiskChange, ...]:
    if a.disks.data is None or b.disks.data is None:
        return ()
    old = {m.mountpoint: m for m in a.disks.data.mounts}
    new = {m.mountpoint: m for m in b.disks.data.mounts}
    changes: list[DiskChange] = []
    for point in sorted(old.keys() | new.keys()):
        before, after = old.get(point), new.get(point)
        latest = after or before
        assert latest is not None
        if before and after and before.used_bytes == after.used_bytes:
            continue
        changes.append(
            DiskChange(
                mountpoint=point,
                old_used_bytes=before.used_bytes if before else None,
                new_used_bytes=after.used_bytes if after else None,
                old_percent=before.percent if before else None,
                new_percent=after.percent if after else None,
                total_bytes=latest.total_bytes,
            )
        )
    return tuple(changes)


def _section_changes(a: Snapshot, b: Snapshot) -> tuple[SectionChange, ...]:
    changes = []
    for name in SECTION_NAMES:
        old: Section[Any] = getattr(a, name)
        new: Section[Any] = getattr(b, name)
        if old.status != new.status:
            changes.append(SectionChange(name, old.status, new.status, new.reason))
    return tuple(changes)
