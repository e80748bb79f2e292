"""Disks collector: every mounted file system with size, use, inodes and read-only."""

from __future__ import annotations

import os
from typing import Any

import psutil  # type: ignore[import-untyped]

from agent.diagnostics.collector import number
from agent.diagnostics.options import DiagnosticsOptions
from shared.clock import Clock
from shared.diagnostics import DisksInfo, Mount


def collect_disks(options: DiagnosticsOptions, clock: Clock) -> DisksInfo:
    """Mounted file systems backed by storage (psutil's ``all=False``: no /proc,
    /sys, cgroups), sorted by mount point. A mount whose usage cannot be read (a
    drive with no medium, a mount we may not look into) is left out."""
    mounts = []
    partitions = psutil.disk_partitions(all=False)
    for partition in partitions:
        mount = _mount(partition)
        if mount is not None:
            mounts.append(mount)
    mounts.sort(key=lambda m: m.mountpoint)
    return DisksInfo(mounts=tuple(mounts), mount_count=len(mounts))


def _mount(partition: Any) -> Mount | None:
    point = str(partition.mountpoint)
    try:
        usage = psutil.disk_usage(point)
    except OSError:
        return None
    inodes = inode_counts(point)
    return Mount(
        mountpoint=point,
        device=str(partition.device),
        fstype=str(partition.fstype),
        total_bytes=int(usage.total),
        used_bytes=int(usage.used),
        free_bytes=int(usage.free),
        percent=number(usage.percent) or 0.0,
        inodes_total=inodes[0],
        inodes_used=inodes[1],
        inodes_free=inodes[2],
        read_only=is_read_only(str(partition.opts)),
    )


def is_read_only(options: str) -> bool:
    """Whether a mount option string (``rw,relatime``) says read-only."""
    return "ro" in options.split(",")


def inode_counts(point: str) -> tuple[int | None, int | None, int | None]:
    """Total, used and free inodes; ``None`` where the OS or file system has none
    (Windows, btrfs and others that report zero)."""
    statvfs = getattr(os, "statvfs", None)
    if statvfs is None:
        return None, None, None
    try:
        st = statvfs(point)
    except OSError:
        return None, None, None
    if st.f_files <= 0:
        return None, None, None
    return st.f_files, st.f_files - st.f_ffree, st.f_favail
