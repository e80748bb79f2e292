"""Active checks: resolving the configured names, and TCP connects to the relay, the
default gateways and the configured targets, with their latency."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from functools import partial

from agent.diagnostics.collector import Unavailable, number, run_parallel
from agent.diagnostics.network import configured_resolvers, default_gateways
from agent.diagnostics.options import DiagnosticsOptions
from shared.clock import Clock
from shared.diagnostics import (
    MAX_ADDRESSES,
    MAX_GATEWAYS,
    MAX_NAME_CHECKS,
    MAX_PROBES,
    DnsInfo,
    Gateway,
    NameCheck,
    Probe,
    ProbeOutcome,
    ProbeRole,
    ReachabilityInfo,
)

# Best first: any answer (even a refusal) proves the host is there.
_RANK: dict[ProbeOutcome, int] = {"open": 0, "refused": 1, "timeout": 2, "error": 3}
# Slack for thread start-up on top of a probe's own socket timeout.
_GRACE = 0.25


def collect_dns(options: DiagnosticsOptions, clock: Clock) -> DnsInfo:
    """Configured resolvers and the resolution of ``options.resolve_names``."""
    resolvers, source = configured_resolvers()
    names = options.resolve_names[:MAX_NAME_CHECKS]
    return DnsInfo(
        resolvers=tuple(resolvers),
        resolvers_source=source,
        checks=tuple(resolve_names(names, options.resolve_timeout, clock)),
    )


def resolve_names(names: tuple[str, ...], timeout: float, clock: Clock) -> list[NameCheck]:
    """Resolve every name at once; a name with no answer in ``timeout`` fails."""
    results = run_parallel([partial(resolve, name, clock) for name in names], timeout)
    return [
        result or NameCheck(name=name, ok=False, error=f"no answer within {timeout:g} s")
        for name, result in zip(names, results, strict=True)
    ]


def resolve(name: str, clock: Clock) -> NameCheck:
    """Look ``name`` up the way programs on this machine do (``getaddrinfo``)."""
    start = clock.monotonic()
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return NameCheck(name=name, ok=False, latency_ms=_ms(clock, start), error=message)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return NameCheck(
        name=name, ok=True, addresses=tuple(addresses[:MAX_ADDRESSES]), latency_ms=_ms(clock, start)
    )


@dataclass(frozen=True)
class _Job:
    role: ProbeRole
    host: str
    ports: tuple[int, ...]


def collect_reachability(options: DiagnosticsOptions, clock: Clock) -> ReachabilityInfo:
    """TCP connects to the relay, the default gateways and the configured targets.

    A gateway is tried on each of ``options.gateway_ports`` at once; it counts as
    reachable when any port answers, even with a refusal."""
    jobs = _jobs(options)[:MAX_PROBES]
    calls = [
        partial(tcp_probe, job.role, job.host, port, options.probe_timeout, clock)
        for job in jobs
        for port in job.ports
    ]
    results = iter(run_parallel(calls, options.probe_timeout + _GRACE))
    probes = []
    for job in jobs:
        tried = [
            next(results)
            or Probe(role=job.role, host=job.host, port=port, outcome="timeout", error="no answer")
            for port in job.ports
        ]
        probes.append(min(tried, key=lambda p: _RANK[p.outcome]))
    return ReachabilityInfo(probes=tuple(probes))


def _jobs(options: DiagnosticsOptions) -> list[_Job]:
    jobs = []
    if options.relay is not None:
        jobs.append(_Job("relay", options.relay.host, (options.relay.port,)))
    if options.probe_gateway and options.gateway_ports:
        try:
            gateways = default_gateways(options.tool_timeout)[:MAX_GATEWAYS]
        except Unavailable:
            gateways = []
        jobs += [_Job("gateway", _dialable(g), options.gateway_ports) for g in gateways]
    jobs += [_Job("target", t.host, (t.port,)) for t in options.targets]
    return jobs


def _dialable(gateway: Gateway) -> str:
    """A link-local IPv6 next hop needs its interface as the scope to be dialled."""
    try:
        link_local = ipaddress.ip_address(gateway.address).is_link_local
    except ValueError:
        return gateway.address
    if gateway.family == "ipv6" and link_local and gateway.interface:
        return f"{gateway.address}%{gateway.interface}"
    return gateway.address


def tcp_probe(role: ProbeRole, host: str, port: int, timeout: float, clock: Clock) -> Probe:
    """One TCP connect; latency is the time to the answer (open or refused)."""
    start = clock.monotonic()
    outcome: ProbeOutcome
    error = ""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            outcome = "open"
    except ConnectionRefusedError:
        outcome = "refused"
    except TimeoutError:
        outcome, error = "timeout", f"no answer within {timeout:g} s"
    except socket.gaierror as exc:
        outcome, error = "error", f"cannot resolve: {exc.strerror or exc}"
    except OSError as exc:
        outcome, error = "error", exc.strerror or str(exc)
    latency = _ms(clock, start) if outcome in ("open", "refused") else None
    return Probe(role=role, host=host, port=port, outcome=outcome, latency_ms=latency, error=error)


def _ms(clock: Clock, start: float) -> float | None:
    return number((clock.monotonic() - start) * 1000, 2)
