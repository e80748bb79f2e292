"""Services collector: failed systemd units, or stopped Windows auto-start services."""

from __future__ import annotations

import os
import shutil
import sys

import psutil  # type: ignore[import-untyped]

from agent.diagnostics.collector import Unavailable, run_tool
from agent.diagnostics.options import DiagnosticsOptions
from shared.clock import Clock
from shared.diagnostics import Service, ServicesInfo

#: Present only while systemd is PID 1 (what ``sd_booted()`` checks).
SYSTEMD_RUNTIME = "/run/systemd/system"

_SYSTEMCTL_FAILED = [
    "systemctl",
    "list-units",
    "--failed",
    "--all",
    "--plain",
    "--no-legend",
    "--no-pager",
    "--full",
]


def collect_services(options: DiagnosticsOptions, clock: Clock) -> ServicesInfo:
    """Services that should run and do not, from the platform's service manager."""
    if sys.platform == "win32":
        return _windows_services()
    if sys.platform == "darwin":
        raise Unavailable("failed-service check covers systemd and Windows, not launchd")
    if shutil.which("systemctl") is None:
        raise Unavailable("systemctl not found: no systemd on this machine")
    if not os.path.isdir(SYSTEMD_RUNTIME):
        raise Unavailable("systemd is not the init system here (e.g. a container)")
    result = run_tool(_SYSTEMCTL_FAILED, options.tool_timeout)
    if result.returncode != 0:
        first = (result.stderr.strip().splitlines() or ["no message"])[0]
        raise Unavailable(f"systemctl failed (exit {result.returncode}): {first}")
    failed = parse_systemctl_failed(result.stdout)
    return ServicesInfo(manager="systemd", failed=tuple(failed), failed_count=len(failed))


def parse_systemctl_failed(text: str) -> list[Service]:
    """Rows of ``systemctl list-units --failed --plain --no-legend``:
    ``UNIT LOAD ACTIVE SUB DESCRIPTION…``."""
    services = []
    for line in text.splitlines():
        # Some systemd versions mark failed units with a bullet even in --plain mode.
        parts = line.strip().lstrip("●*").split(None, 4)
        if len(parts) < 4:
            continue
        unit, load, active, sub = parts[:4]
        description = parts[4] if len(parts) == 5 else ""
        services.append(
            Service(
                name=unit,
                description=description,
                state=active,
                detail=f"load={load} sub={sub}",
            )
        )
    return services


def _windows_services() -> ServicesInfo:
    iterate = getattr(psutil, "win_service_iter", None)
    if iterate is None:
        raise Unavailable("this psutil build cannot list Windows services")
    stopped = []
    for service in iterate():
        try:
            info = service.as_dict()
        except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
            continue
        if info.get("start_type") == "automatic" and info.get("status") != "running":
            stopped.append(
                Service(
                    name=str(info.get("name", "")),
                    description=str(info.get("display_name", "")),
                    state=str(info.get("status", "")),
                    detail="start type automatic",
                )
            )
    stopped.sort(key=lambda s: s.name.lower())
    return ServicesInfo(manager="windows", failed=tuple(stopped), failed_count=len(stopped))
