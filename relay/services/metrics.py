"""The relay's Prometheus metrics, in a registry of its own.

Each relay node has one :class:`RelayMetrics` with its own ``CollectorRegistry``
(never the process-global one), so several nodes in one test process do not
collide. Counters are bumped where things happen (cheap: a label child resolved
once, one locked add); gauges that mirror state the relay already holds (agents
online, sessions by state, pre-auth connections) are read only when scraped.

The pure layers (core, billing, model) know nothing of this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import cast

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from shared.protocol.session_state import EndReason

#: The Content-Type of :meth:`RelayMetrics.render` (text exposition format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DIRECTIONS = ("to_agent", "to_technician")
#: How authentication can fail: a control link's first message (agent, console),
#: a tunnel end's token, or a peer refused by the throttle.
AUTH_KINDS = ("agent", "console", "tunnel", "throttled")
#: Store writes take a few milliseconds on a healthy disk; seconds mean trouble.
WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

Reading = Callable[[], float]
Breakdown = Callable[[], Mapping[str, float]]


class _Live(Collector):
    """Gauges computed at scrape time from state the relay keeps anyway."""

    def __init__(self) -> None:
        self.plain: list[tuple[str, str, Reading]] = []
        self.labelled: list[tuple[str, str, str, tuple[str, ...], Breakdown]] = []

    def collect(self) -> Iterable[Metric]:
        for name, doc, read in self.plain:
            yield GaugeMetricFamily(name, doc, value=read())
        for name, doc, label, known, breakdown in self.labelled:
            family = GaugeMetricFamily(name, doc, labels=[label])
            values = dict.fromkeys(known, 0.0) | dict(breakdown())
            for key, value in sorted(values.items()):
                family.add_metric([key], value)
            yield family


class RelayMetrics:
    """Every metric of one relay node."""

    def __init__(self) -> None:
        # No ``*_created`` series: they double the output and no dashboard uses them
        # (a library-wide switch; the relay is the only exporter in its process).
        cast(Callable[[], None], disable_created_metrics)()  # untyped in the library
        self.registry = CollectorRegistry(auto_describe=False)
        reg = self.registry
        self._started = Counter(
            "qp_sessions_started", "Sessions opened (row written), by kind", ["kind"], registry=reg
        )
        self._ended = Counter(
            "qp_sessions_ended", "Sessions ended, by end reason", ["reason"], registry=reg
        )
        for reason in EndReason:
            self._ended.labels(reason.value)  # every reason shows, at 0 until it happens
        self._auth = Counter(
            "qp_auth_failures", "Refused authentications, by kind", ["kind"], registry=reg
        )
        self._auth_kinds = {kind: self._auth.labels(kind) for kind in AUTH_KINDS}
        tunnel = Counter(
            "qp_tunnel_bytes",
            "Tunnel payload bytes pumped, by direction",
            ["direction"],
            registry=reg,
        )
        self._tunnel = {d: tunnel.labels(d) for d in DIRECTIONS}
        self._write_seconds = Histogram(
            "qp_store_write_seconds",
            "Store write transactions: seconds from asking to commit or failure",
            buckets=WRITE_BUCKETS,
            registry=reg,
        )
        self._write_failures = Counter(
            "qp_store_write_failures", "Store write transactions that failed", registry=reg
        )
        reloads = Counter(
            "qp_settings_reloads", "relay.toml reloads, by result", ["result"], registry=reg
        )
        self._reloads = {r: reloads.labels(r) for r in ("applied", "refused")}
        self._live = _Live()
        reg.register(self._live)

    # -- what the relay reports ------------------------------------------------------------
    def session_started(self, kind: str) -> None:
        self._started.labels(kind).inc()

    def session_ended(self, reason: str) -> None:
        self._ended.labels(reason).inc()

    def auth_failed(self, kind: str) -> None:
        """One refused authentication; ``kind`` is one of :data:`AUTH_KINDS`."""
        self._auth_kinds[kind].inc()

    def tunnel_bytes(self, direction: str, size: int) -> None:
        self._tunnel[direction].inc(size)

    def store_write(self, seconds: float, ok: bool) -> None:
        """One store write transaction, committed (``ok``) or failed."""
        self._write_seconds.observe(seconds)
        if not ok:
            self._write_failures.inc()

    def reloaded(self, applied: bool) -> None:
        self._reloads["applied" if applied else "refused"].inc()

    # -- state read at scrape time ---------------------------------------------------------
    def gauge(self, name: str, doc: str, read: Reading) -> None:
        """A gauge whose value ``read()`` gives when scraped."""
        self._live.plain.append((name, doc, read))

    def gauge_by(
        self, name: str, doc: str, label: str, known: Iterable[str], breakdown: Breakdown
    ) -> None:
        """A gauge per ``label`` value from ``breakdown()`` when scraped; ``known``
        values show as 0 when absent."""
        self._live.labelled.append((name, doc, label, tuple(known), breakdown))

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)
