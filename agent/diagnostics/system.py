"""System collector: host identity, OS and kernel, boot time, users, pending reboot,
time zone and the clock's offset against the relay."""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from agent.diagnostics.collector import number
from agent.diagnostics.options import DiagnosticsOptions, RelayClockReference
from shared.clock import Clock
from shared.diagnostics import LoggedInUser, SystemInfo

_ZONEINFO_MARKER = "zoneinfo/"
_DEBIAN_REBOOT_FLAG = Path("/var/run/reboot-required")


def collect_system(options: DiagnosticsOptions, clock: Clock) -> SystemInfo:
    """Identity and clocks of this machine."""
    pending, pending_reason = pending_reboot()
    offset = now_local_offset(clock)
    return SystemInfo(
        hostname=socket.gethostname(),
        os=platform.system(),
        os_release=os_release(),
        kernel=f"{platform.release()} {platform.version()}".strip(),
        architecture=platform.machine(),
        boot_time=datetime.fromtimestamp(psutil.boot_time(), UTC),
        users=tuple(_users()),
        pending_reboot=pending,
        pending_reboot_reason=pending_reason,
        timezone=timezone_name(),
        utc_offset_minutes=offset,
        clock_offset_s=clock_offset(options.relay_clock, clock),
    )


def clock_offset(reference: RelayClockReference | None, clock: Clock) -> float | None:
    """Seconds this machine's wall clock is ahead of the relay's (negative: behind).

    The relay's time now is estimated as the reference time plus the monotonic time
    elapsed since it arrived, so a slow collector does not skew the figure."""
    if reference is None:
        return None
    relay_now = reference.relay_time.timestamp() + (
        clock.monotonic() - reference.received_monotonic
    )
    return number(clock.now().timestamp() - relay_now, 3)


def now_local_offset(clock: Clock) -> int | None:
    """Minutes the machine's local time zone is ahead of UTC right now."""
    delta = clock.now().astimezone().utcoffset()
    return None if delta is None else int(delta.total_seconds() // 60)


def os_release() -> str:
    """A readable OS name and version ("Debian GNU/Linux 12 (bookworm)")."""
    if sys.platform.startswith("linux"):
        try:
            fields = platform.freedesktop_os_release()
        except OSError:
            return platform.platform()
        return fields.get("PRETTY_NAME") or fields.get("NAME", "Linux")
    if sys.platform == "darwin":
        return f"macOS {platform.mac_ver()[0]}".strip()
    if sys.platform == "win32":
        return f"Windows {platform.release()} ({platform.version()})"
    return platform.platform()


def timezone_name(
    tz_env: str | None = None,
    localtime: Path = Path("/etc/localtime"),
    timezone_file: Path = Path("/etc/timezone"),
) -> str:
    """The IANA zone name where the OS tells it, else the C library's abbreviation.

    Order: ``$TZ``, the ``/etc/localtime`` symlink, ``/etc/timezone``, ``tzname``."""
    tz = tz_env if tz_env is not None else os.environ.get("TZ")
    if tz:
        return tz.lstrip(":")
    try:
        target = os.readlink(localtime)
    except OSError:
        target = ""
    if _ZONEINFO_MARKER in target:
        return target.split(_ZONEINFO_MARKER, 1)[1]
    try:
        name = timezone_file.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        name = ""
    if name:
        return name.splitlines()[0]
    return time.tzname[0]


def pending_reboot() -> tuple[bool | None, str]:
    """Whether the OS says a reboot is pending, and why; ``None`` when it cannot tell."""
    if sys.platform == "win32":
        return _windows_pending_reboot()
    if sys.platform.startswith("linux"):
        if _DEBIAN_REBOOT_FLAG.exists():
            return True, _debian_reboot_reason()
        if Path("/etc/debian_version").exists():
            return False, ""
        return None, "no reboot-required flag on this distribution"
    return None, f"not known on {sys.platform}"


def _debian_reboot_reason() -> str:
    packages = _DEBIAN_REBOOT_FLAG.with_name("reboot-required.pkgs")
    try:
        names = sorted(set(packages.read_text(errors="replace").split()))
    except OSError:
        names = []
    reason = f"{_DEBIAN_REBOOT_FLAG} exists"
    return f"{reason} (packages: {', '.join(names[:10])})" if names else reason


if sys.platform == "win32":
    import winreg

    _REBOOT_KEYS = (
        r"SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired",
        r"SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending",
    )

    def _windows_pending_reboot() -> tuple[bool | None, str]:
        for key in _REBOOT_KEYS:
            try:
                winreg.CloseKey(winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key))
            except OSError:
                continue
            return True, f"registry key HKLM\\{key} exists"
        return False, ""

else:

    def _windows_pending_reboot() -> tuple[bool | None, str]:
        return None, "not Windows"


def _users() -> list[LoggedInUser]:
    users = []
    for entry in psutil.users():
        started = number(entry.started, 0)
        users.append(
            LoggedInUser(
                name=str(entry.name or ""),
                terminal=str(entry.terminal or ""),
                host=str(entry.host or ""),
                since=datetime.fromtimestamp(started, UTC) if started else None,
            )
        )
    return users
