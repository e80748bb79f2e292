"""The agent's side of diagnostics: options from its config, snapshots on request.

Config (``agent.json`` key ``diagnostics``, all optional)::

    {"probe_gateway": true, "targets": ["192.168.1.10:631"], "resolve": ["example.nl"]}
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from agent.diagnostics.options import DiagnosticsOptions, RelayClockReference, TcpTarget
from agent.diagnostics.runner import take_snapshot
from shared.clock import SystemClock, parse_iso
from shared.diagnostics import Snapshot
from shared.errors import ConfigError, UsageError


def _target(text: str) -> TcpTarget:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"diagnostics target {text!r} should be HOST:PORT")
    return TcpTarget(host.strip("[]"), int(port))


def relay_target(relay_url: str) -> TcpTarget | None:
    try:
        parts = urlsplit(relay_url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError:
        return None
    return TcpTarget(parts.hostname, port) if parts.hostname else None


def options_from(
    config: dict[str, Any], relay_url: str | None = None, relay_time: str | None = None
) -> DiagnosticsOptions:
    """Diagnostics options for this agent, from its config and the relay's hints."""
    raw = config.get("diagnostics", {})
    if not isinstance(raw, dict):
        raise ConfigError("'diagnostics' in agent.json must be an object")
    clock_ref = None
    if relay_time:
        try:
            when: datetime | None = parse_iso(relay_time)
        except ValueError:
            when = None
        if when is not None:
            clock_ref = RelayClockReference(when, time.monotonic())
    try:
        return DiagnosticsOptions(
            relay=relay_target(relay_url) if relay_url else None,
            targets=tuple(_target(str(t)) for t in raw.get("targets", [])),
            resolve_names=tuple(str(n) for n in raw.get("resolve", [])),
            probe_gateway=bool(raw.get("probe_gateway", True)),
            relay_clock=clock_ref,
        )
    except UsageError as exc:
        raise ConfigError(f"diagnostics settings in agent.json: {exc}") from None


async def snapshot(options: DiagnosticsOptions) -> Snapshot:
    return await take_snapshot(options, SystemClock())
