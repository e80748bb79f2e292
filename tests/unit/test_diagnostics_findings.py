"""Findings rules over synthetic snapshots: each fires on its fault and stays quiet
on a healthy machine (and just under its threshold)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from agent.diagnostics import findings as rules
from agent.diagnostics.findings import RULES, evaluate
from shared.diagnostics import (
    Address,
    Finding,
    Interface,
    NameCheck,
    Probe,
    Section,
    Service,
    Snapshot,
    with_sections,
)
from tests.unit.diagnostics_samples import TAKEN_AT, changed, data, healthy, mount, process


def only(found: list[Finding]) -> Finding:
    assert len(found) == 1, found
    return found[0]


def with_mounts(*mounts: Any) -> Snapshot:
    snap = healthy()
    return changed(snap, "disks", replace(data(snap, "disks"), mounts=mounts))


def with_memory(**changes: Any) -> Snapshot:
    snap = healthy()
    return changed(snap, "memory", replace(data(snap, "memory"), **changes))


def with_cpu(**changes: Any) -> Snapshot:
    snap = healthy()
    return changed(snap, "cpu", replace(data(snap, "cpu"), **changes))


def with_system(**changes: Any) -> Snapshot:
    snap = healthy()
    return changed(snap, "system", replace(data(snap, "system"), **changes))


def with_probes(*probes: Probe) -> Snapshot:
    snap = healthy()
    return changed(snap, "reachability", replace(data(snap, "reachability"), probes=probes))


def with_interfaces(*interfaces: Interface) -> Snapshot:
    snap = healthy()
    return changed(snap, "interfaces", replace(data(snap, "interfaces"), interfaces=interfaces))


def test_a_healthy_machine_has_no_findings() -> None:
    assert evaluate(healthy()) == []


# -- disk_full ---------------------------------------------------------------------------


@pytest.mark.parametrize(("percent", "severity"), [(90.0, "warning"), (95.0, "critical")])
def test_disk_full_fires_at_90_and_95_percent(percent: float, severity: str) -> None:
    found = only(rules.disk_full(with_mounts(mount("/var", percent))))
    assert (found.rule, found.severity, found.subject) == ("disk_full", severity, "/var")
    assert found.title == f"Disk /var is {percent:.0f}% full"
    assert "free of 100.0 GiB" in found.evidence[0]


def test_disk_full_quiet_below_90_and_on_read_only_images() -> None:
    snap = with_mounts(
        mount("/", 89.9),
        mount("/snap/core/1", 100.0, fstype="squashfs", read_only=True),
        mount("/media/cd", 100.0, fstype="iso9660"),
    )
    assert rules.disk_full(snap) == []


# -- inodes_low ----------------------------------------------------------------------------


def test_inodes_low_fires_when_nearly_exhausted() -> None:
    snap = with_mounts(mount("/", inodes_total=1000, inodes_used=970, inodes_free=30))
    found = only(rules.inodes_low(snap))
    assert (found.rule, found.severity, found.subject) == ("inodes_low", "critical", "/")
    assert "970 of 1000 inodes" in found.evidence[0]


def test_inodes_low_quiet_with_room_or_without_inode_figures() -> None:
    snap = with_mounts(
        mount("/", inodes_total=1000, inodes_used=899),
        mount("C:\\", inodes_total=None, inodes_used=None, inodes_free=None),
    )
    assert rules.inodes_low(snap) == []


# -- root_read_only --------------------------------------------------------------------------


def test_root_read_only_fires() -> None:
    found = only(rules.root_read_only(with_mounts(mount("/", read_only=True))))
    assert (found.rule, found.severity, found.subject) == ("root_read_only", "critical", "/")


def test_root_read_only_quiet_for_other_read_only_mounts() -> None:
    assert rules.root_read_only(with_mounts(mount("/"), mount("/boot/efi", read_only=True))) == []


# -- memory_pressure ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "severity"),
    [
        ({"available_bytes": int(16 * 1024**3 * 0.04)}, "critical"),
        ({"available_bytes": int(16 * 1024**3 * 0.08)}, "warning"),
        ({"pressure_full_avg10": 15.0}, "critical"),
        ({"pressure_some_avg10": 25.0}, "warning"),
        ({"swap_percent": 90.0, "available_bytes": int(16 * 1024**3 * 0.15)}, "warning"),
    ],
)
def test_memory_pressure_fires(changes: dict[str, Any], severity: str) -> None:
    found = only(rules.memory_pressure(with_memory(**changes)))
    assert (found.rule, found.severity) == ("memory_pressure", severity)
    assert "available of 16.0 GiB" in found.evidence[0]


def test_memory_pressure_quiet_just_under_each_threshold() -> None:
    total = 16 * 1024**3
    assert rules.memory_pressure(healthy()) == []
    calm = with_memory(
        available_bytes=int(total * 0.11), pressure_some_avg10=19.0, pressure_full_avg10=9.0
    )
    assert rules.memory_pressure(calm) == []
    # Swap nearly full alone is no pressure while a quarter of memory is free.
    assert (
        rules.memory_pressure(with_memory(swap_percent=95.0, available_bytes=int(total * 0.25)))
        == []
    )


# -- load_high ------------------------------------------------------------------------------


def test_load_high_fires_on_sustained_load_above_the_cores() -> None:
    found = only(rules.load_high(with_cpu(load_1=9.0, load_5=9.5, load_15=9.1)))
    assert (found.rule, found.severity) == ("load_high", "critical")
    assert found.title == "Sustained load 9.1 on 4 cores"
    warning = only(rules.load_high(with_cpu(load_1=5.0, load_5=5.0, load_15=4.5)))
    assert warning.severity == "warning"


def test_load_high_quiet_on_a_short_spike() -> None:
    # A 1-minute spike with calm 5- and 15-minute averages is not sustained.
    assert rules.load_high(with_cpu(load_1=20.0, load_5=3.9, load_15=2.0)) == []


# -- runaway_process --------------------------------------------------------------------------


def test_runaway_process_fires_on_a_core_kept_busy_for_long() -> None:
    spinner = process(
        4242,
        name="spin",
        cpu_percent=99.0,
        cpu_time_s=3 * 3600 * 0.95,
        started_at=TAKEN_AT - timedelta(hours=3),
    )
    found = only(rules.runaway_process(with_cpu(top_by_cpu=(spinner,))))
    assert (found.rule, found.severity, found.subject) == ("runaway_process", "warning", "pid 4242")
    assert found.title == "Process spin (pid 4242) keeps a CPU core busy"


def test_runaway_process_fires_on_a_memory_hog() -> None:
    hog = process(77, name="leaky", memory_percent=62.0)
    found = only(rules.runaway_process(with_cpu(top_by_memory=(hog,))))
    assert found.title == "Process leaky (pid 77) holds 62% of memory"


def test_runaway_process_quiet_for_a_busy_newcomer() -> None:
    # Busy right now, but only a minute old: a build, not a runaway.
    fresh = process(
        5, cpu_percent=100.0, cpu_time_s=55.0, started_at=TAKEN_AT - timedelta(minutes=1)
    )
    assert rules.runaway_process(with_cpu(top_by_cpu=(fresh,))) == []


# -- network ---------------------------------------------------------------------------------


def test_no_default_route_fires() -> None:
    snap = changed(healthy(), "routes", replace(data(healthy(), "routes"), default_gateways=()))
    found = only(rules.no_default_route(snap))
    assert (found.rule, found.severity) == ("no_default_route", "critical")


def test_no_default_route_quiet_when_routes_unknown() -> None:
    snap = with_sections(healthy(), {"routes": Section(status="timeout", reason="slow")})
    assert rules.no_default_route(snap) == []
    assert rules.no_default_route(healthy()) == []


def test_gateway_unreachable_fires_on_silence() -> None:
    snap = with_probes(Probe("gateway", "192.168.1.1", 53, "timeout", None, "no answer"))
    found = only(rules.gateway_unreachable(snap))
    assert (found.rule, found.severity, found.subject) == (
        "gateway_unreachable",
        "warning",
        "192.168.1.1",
    )
    assert found.evidence[0] == "TCP 192.168.1.1 port 53: timeout (no answer)"


def test_gateway_unreachable_quiet_when_it_refuses() -> None:
    # A refusal is an answer: the gateway is there.
    assert rules.gateway_unreachable(healthy()) == []


def test_dns_not_resolving_fires_critical_when_nothing_resolves() -> None:
    snap = healthy()
    dns = replace(
        data(snap, "dns"), checks=(NameCheck("relay.example.com", False, error="NXDOMAIN"),)
    )
    found = only(rules.dns_not_resolving(changed(snap, "dns", dns)))
    assert (found.rule, found.severity, found.subject) == (
        "dns_not_resolving",
        "critical",
        "relay.example.com",
    )
    assert found.evidence == ("error: NXDOMAIN", "resolvers: 192.168.1.1")


def test_dns_not_resolving_warns_when_some_names_resolve() -> None:
    snap = healthy()
    checks = (NameCheck("a.example", True, ("1.2.3.4",)), NameCheck("b.example", False))
    found = only(
        rules.dns_not_resolving(changed(snap, "dns", replace(data(snap, "dns"), checks=checks)))
    )
    assert (found.severity, found.subject) == ("warning", "b.example")


def test_dns_not_resolving_quiet_when_names_resolve() -> None:
    assert rules.dns_not_resolving(healthy()) == []


def test_relay_latency_high_fires() -> None:
    found = only(
        rules.relay_latency_high(
            with_probes(Probe("relay", "relay.example.com", 443, "open", 850.0))
        )
    )
    assert (found.rule, found.severity) == ("relay_latency_high", "warning")
    assert found.title == "Relay relay.example.com answers slowly (850 ms)"
    down = only(
        rules.relay_latency_high(
            with_probes(Probe("relay", "relay.example.com", 443, "refused", 2.0))
        )
    )
    assert down.severity == "critical"


def test_relay_latency_high_quiet_under_the_threshold() -> None:
    assert rules.relay_latency_high(with_probes(Probe("relay", "r", 443, "open", 299.0))) == []


def test_target_unreachable_fires() -> None:
    found = only(rules.target_unreachable(with_probes(Probe("target", "nas", 445, "timeout"))))
    assert (found.rule, found.subject) == ("target_unreachable", "nas:445")


def test_target_unreachable_quiet_when_open() -> None:
    assert rules.target_unreachable(healthy()) == []


def test_interface_down_fires_for_a_configured_interface() -> None:
    down = Interface(name="eth0", is_up=False, addresses=(Address("ipv4", "10.0.0.5"),))
    found = only(rules.interface_down(with_interfaces(down)))
    assert (found.rule, found.severity, found.subject) == ("interface_down", "warning", "eth0")
    assert found.evidence == ("addresses: 10.0.0.5",)


def test_interface_down_quiet_for_unconfigured_ports_and_unknown_links() -> None:
    # healthy() has eth1 down without addresses.
    assert rules.interface_down(healthy()) == []
    unknown = Interface(name="tun0", is_up=None, addresses=(Address("ipv4", "10.8.0.2"),))
    assert rules.interface_down(with_interfaces(unknown)) == []


def test_interface_errors_fire_when_rising() -> None:
    rising = Interface(name="eth0", is_up=True, errors_in=120, errors_rising=7)
    found = only(rules.interface_errors(with_interfaces(rising)))
    assert (found.rule, found.severity, found.title) == (
        "interface_errors",
        "warning",
        "Errors rising on interface eth0",
    )
    drops = only(rules.interface_errors(with_interfaces(Interface(name="wlan0", drops_rising=50))))
    assert drops.severity == "info"


def test_interface_errors_quiet_for_old_totals() -> None:
    # Errors since boot but none during the sample: history, not a current fault.
    old = Interface(name="eth0", is_up=True, errors_in=5000, errors_rising=0, drops_rising=2)
    assert rules.interface_errors(with_interfaces(old)) == []


# -- system -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "severity", "title"),
    [
        (75.0, "warning", "Clock is 75 s ahead of the relay"),
        (-400.0, "critical", "Clock is 400 s behind the relay"),
    ],
)
def test_clock_off_fires_past_a_minute(offset: float, severity: str, title: str) -> None:
    found = only(rules.clock_off(with_system(clock_offset_s=offset)))
    assert (found.rule, found.severity, found.title) == ("clock_off", severity, title)


def test_clock_off_quiet_within_a_minute_or_without_reference() -> None:
    assert rules.clock_off(with_system(clock_offset_s=-59.9)) == []
    assert rules.clock_off(with_system(clock_offset_s=None)) == []


def test_failed_services_fire_one_per_service() -> None:
    snap = healthy()
    failed = (Service("nginx.service", "A web server", "failed", "load=loaded sub=failed"),)
    services = replace(data(snap, "services"), failed=failed, failed_count=1)
    found = only(rules.failed_services(changed(snap, "services", services)))
    assert (found.rule, found.severity, found.subject, found.title) == (
        "failed_services",
        "warning",
        "nginx.service",
        "Service nginx.service failed",
    )
    windows = replace(services, manager="windows")
    assert only(rules.failed_services(changed(snap, "services", windows))).severity == "info"


def test_failed_services_quiet_when_none_failed() -> None:
    assert rules.failed_services(healthy()) == []


def test_pending_reboot_fires() -> None:
    snap = with_system(pending_reboot=True, pending_reboot_reason="/var/run/reboot-required")
    found = only(rules.pending_reboot(snap))
    assert (found.rule, found.severity, found.evidence) == (
        "pending_reboot",
        "info",
        ("/var/run/reboot-required",),
    )


def test_pending_reboot_quiet_when_unknown_or_not_needed() -> None:
    assert rules.pending_reboot(with_system(pending_reboot=None)) == []
    assert rules.pending_reboot(healthy()) == []


# -- evaluate ---------------------------------------------------------------------------------


def test_every_rule_is_registered_once() -> None:
    public = {
        name
        for name, value in vars(rules).items()
        if callable(value)
        and getattr(value, "__module__", "") == rules.__name__
        and not name.startswith("_")
        and name != "evaluate"
    }
    assert {rule.__name__ for rule in RULES} == public
    assert len(RULES) == len(set(RULES))


def test_evaluate_puts_critical_first() -> None:
    snap = with_mounts(mount("/", 91.0), mount("/data", 99.0))
    snap = changed(
        snap, "system", replace(data(snap, "system"), pending_reboot=True, clock_offset_s=90)
    )
    severities = [f.severity for f in evaluate(snap)]
    assert severities == ["critical", "warning", "warning", "info"]


def test_a_broken_rule_is_reported_not_raised() -> None:
    def broken(snapshot: Snapshot) -> list[Finding]:
        raise ZeroDivisionError("oops")

    found = only(evaluate(healthy(), (broken,)))
    assert (found.rule, found.subject) == ("rule_failed", "broken")
    assert found.evidence == ("ZeroDivisionError: oops",)


def test_titles_are_one_line() -> None:
    snap = with_mounts(mount("/evil\nmount", 99.0))
    assert all("\n" not in f.title for f in evaluate(snap))
