"""Sockets collector: listening sockets with their process, and how many TCP
connections are established."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from typing import Any

import psutil  # type: ignore[import-untyped]

from agent.diagnostics.collector import Unavailable
from agent.diagnostics.options import DiagnosticsOptions
from shared.clock import Clock
from shared.diagnostics import Listener, Protocol, SocketsInfo

_HIDDEN = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess)


def collect_sockets(options: DiagnosticsOptions, clock: Clock) -> SocketsInfo:
    """TCP sockets in LISTEN and unconnected bound UDP sockets, sorted by port."""
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        hint = "administrator rights" if sys.platform == "darwin" else "more privileges"
        raise Unavailable(f"listing sockets needs {hint}") from None
    owners = _Owners()
    listeners: dict[tuple[str, str, int, int | None], Listener] = {}
    established = 0
    for conn in connections:
        protocol = _protocol(conn)
        if protocol is None:
            continue
        if protocol == "tcp" and conn.status == psutil.CONN_ESTABLISHED:
            established += 1
        if not _is_listening(conn, protocol) or not conn.laddr:
            continue
        address, port = str(conn.laddr.ip), int(conn.laddr.port)
        pid = int(conn.pid) if conn.pid else None
        key = (protocol, address, port, pid)
        if key not in listeners:
            name, user = owners.describe(pid)
            listeners[key] = Listener(
                protocol=protocol, address=address, port=port, pid=pid, process=name, user=user
            )
    ordered = sorted(listeners.values(), key=lambda item: (item.port, item.protocol, item.address))
    return SocketsInfo(
        listeners=tuple(ordered), listener_count=len(ordered), established_count=established
    )


def _protocol(conn: Any) -> Protocol | None:
    if conn.type == socket.SOCK_STREAM:
        return "tcp"
    if conn.type == socket.SOCK_DGRAM:
        return "udp"
    return None


def _is_listening(conn: Any, protocol: Protocol) -> bool:
    """TCP in LISTEN; UDP bound without a peer (it receives from anyone)."""
    if protocol == "tcp":
        return bool(conn.status == psutil.CONN_LISTEN)
    return not conn.raddr


class _Owners:
    """Process name and user per pid, looked up once per snapshot."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[str, str]] = {}

    def describe(self, pid: int | None) -> tuple[str, str]:
        if pid is None:
            return "", ""
        if pid not in self._seen:
            self._seen[pid] = (_ask(pid, "name"), _ask(pid, "username"))
        return self._seen[pid]


def _ask(pid: int, what: str) -> str:
    try:
        method: Callable[[], Any] = getattr(psutil.Process(pid), what)
        return str(method())
    except _HIDDEN:
        return ""
