"""What a diagnostics run is asked to do: timeouts, names to resolve, TCP targets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from shared.errors import UsageError

DEFAULT_COLLECTOR_TIMEOUT = 3.0
DEFAULT_OVERALL_TIMEOUT = 5.0


@dataclass(frozen=True)
class TcpTarget:
    """A host and port to try a TCP connection to."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if not self.host or not 0 < self.port < 65536:
            raise UsageError(f"invalid TCP target {self.host!r}:{self.port}")


@dataclass(frozen=True)
class RelayClockReference:
    """The relay's wall time as the agent last heard it, and the agent's monotonic
    time when it heard it. The offset derived from it is off by at most the one-way
    delay of that message."""

    relay_time: datetime
    received_monotonic: float


@dataclass(frozen=True)
class DiagnosticsOptions:
    """Settings of one snapshot. Times are seconds.

    ``timeouts`` overrides ``collector_timeout`` per collector name; no collector
    waits past ``overall_timeout``. ``sample`` is how long CPU use and interface
    counters are watched."""

    collector_timeout: float = DEFAULT_COLLECTOR_TIMEOUT
    overall_timeout: float = DEFAULT_OVERALL_TIMEOUT
    timeouts: Mapping[str, float] = field(default_factory=dict)
    sample: float = 0.5
    top_processes: int = 5
    resolve_names: tuple[str, ...] = ()
    resolve_timeout: float = 2.0
    relay: TcpTarget | None = None
    targets: tuple[TcpTarget, ...] = ()
    probe_gateway: bool = True
    gateway_ports: tuple[int, ...] = (53, 80, 443)
    probe_timeout: float = 1.0
    relay_clock: RelayClockReference | None = None
    journal_entries: int = 50
    journal_since: str = "-24h"
    tool_timeout: float = 2.0

    def __post_init__(self) -> None:
        times = {
            "collector_timeout": self.collector_timeout,
            "overall_timeout": self.overall_timeout,
            "resolve_timeout": self.resolve_timeout,
            "probe_timeout": self.probe_timeout,
            "tool_timeout": self.tool_timeout,
            **{f"timeouts[{name}]": value for name, value in self.timeouts.items()},
        }
        for name, value in times.items():
            if not value > 0:
                raise UsageError(f"diagnostics {name} must be positive, not {value}")
        if self.sample < 0 or self.top_processes < 0 or self.journal_entries < 0:
            raise UsageError("diagnostics sample, top_processes and journal_entries must be >= 0")
        if any(not 0 < port < 65536 for port in self.gateway_ports):
            raise UsageError(f"invalid gateway ports {self.gateway_ports}")

    def timeout_for(self, collector: str) -> float:
        """How long collector ``collector`` may run, within the overall bound."""
        return min(self.timeouts.get(collector, self.collector_timeout), self.overall_timeout)
