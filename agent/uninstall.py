"""``qp-agent uninstall``: the relay forgets this machine, the service goes, the data
directory goes (the log of what technicians did here can be kept).

Order matters: the running agent unlinks first (it holds the link and the identity
the relay trusts), then the service is disabled so systemd does not start it again,
then the process is waited for, and only then are its files removed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from agent.control import control_call
from agent.files import AgentFiles
from shared.errors import ConfigError, UsageError

UNIT = "qp-agent.service"
UNIT_DIRS = (Path("/etc/systemd/system"), Path("/lib/systemd/system"))
EXIT_WAIT = 10.0  # seconds for the agent process to leave after unlinking


async def unlink(files: AgentFiles) -> str:
    """Ask the running agent to unlink from its relay; the agent id it had."""
    reply = await control_call(files.control_socket, {"cmd": "unlink"}, timeout=30)
    value = reply.get("value") or {}
    return str(value.get("unlinked", ""))


def remove_service(say: Callable[[str], None]) -> None:
    """Disable and remove the systemd unit, when one is installed and we may."""
    units = [d / UNIT for d in UNIT_DIRS if (d / UNIT).exists()]
    if not units:
        return
    if os.geteuid() != 0 or shutil.which("systemctl") is None:
        raise ConfigError(f"{units[0]} is installed: run qp-agent uninstall as root to remove it")
    subprocess.run(["systemctl", "disable", "--now", UNIT], check=False, timeout=60)
    for unit in units:
        unit.unlink()
    subprocess.run(["systemctl", "daemon-reload"], check=False, timeout=60)
    say(f"removed the {UNIT} service")


def wait_for_exit(pid: object, within: float = EXIT_WAIT) -> None:
    """Wait until the agent process ``pid`` has left; SIGTERM it if it lingers."""
    if not isinstance(pid, int) or pid <= 0:
        return
    deadline = time.monotonic() + within
    signalled = False
    while _alive(pid):
        if time.monotonic() > deadline:
            if signalled:
                raise ConfigError(f"the agent (pid {pid}) did not stop; stop it and run again")
            os.kill(pid, signal.SIGTERM)
            signalled, deadline = True, time.monotonic() + within
        time.sleep(0.05)  # polling another process's exit: there is no event to wait on


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for its parent to reap it."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def keep_log(files: AgentFiles, target: Path) -> None:
    """Copy the audit log to ``target`` (0600) before the data directory goes."""
    if target.resolve().is_relative_to(files.root.resolve()):
        raise UsageError("--keep-log must point outside the agent's data directory")
    data = files.audit_log.read_bytes() if files.audit_log.exists() else b""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def remove_data(files: AgentFiles) -> None:
    """Remove the data directory, after checking it is an agent's."""
    if not files.config.exists():
        raise ConfigError(f"{files.root} does not look like an agent's data directory")
    shutil.rmtree(files.root)
