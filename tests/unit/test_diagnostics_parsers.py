"""The collectors' pure parts: parsers of system tables and tool output, the clock
offset, the time zone lookup, and option checking."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.diagnostics.cpu_mem import parse_psi
from agent.diagnostics.disks import is_read_only
from agent.diagnostics.journal import has_journal_files, parse_journal_json
from agent.diagnostics.network import (
    parse_netstat_defaults,
    parse_proc_ipv6_route,
    parse_proc_route,
    parse_resolv_conf,
)
from agent.diagnostics.options import DiagnosticsOptions, RelayClockReference, TcpTarget
from agent.diagnostics.services import parse_systemctl_failed
from agent.diagnostics.system import clock_offset, timezone_name
from shared.clock import FakeClock
from shared.diagnostics import Gateway, JournalEntry, Service
from shared.errors import UsageError
from shared.units import human_bytes

PROC_ROUTE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "wg0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n"
    "broken line\n"
)
PROC_IPV6_ROUTE = (
    "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
)


@pytest.mark.skipif(sys.byteorder != "little", reason="sample table is little-endian")
def test_proc_route_default_gateway() -> None:
    # The wg0 row is a default route without a next hop (no RTF_GATEWAY): not a gateway.
    assert parse_proc_route(PROC_ROUTE) == [Gateway("192.0.2.1", "eth0", "ipv4")]


def test_proc_ipv6_route_default_gateway() -> None:
    assert parse_proc_ipv6_route(PROC_IPV6_ROUTE) == [Gateway("fd00::1", "eth0", "ipv6")]


def test_netstat_defaults_of_macos() -> None:
    text = (
        "Routing tables\n\nInternet:\n"
        "Destination        Gateway            Flags           Netif Expire\n"
        "default            192.168.1.1        UGScg             en0\n"
        "default            link#17            UCSIg       bridge100      !\n"
        "127                127.0.0.1          UCS               lo0\n\n"
        "Internet6:\n"
        "default            fe80::1%en0        UGcIg             en0\n"
    )
    assert parse_netstat_defaults(text) == [
        Gateway("192.168.1.1", "en0", "ipv4"),
        Gateway("fe80::1", "en0", "ipv6"),
    ]


def test_resolv_conf() -> None:
    text = (
        "# generated\nsearch example.com\nnameserver 192.168.1.1 # router\n"
        "nameserver 192.168.1.1\nnameserver fe80::1%eth0\nnameserver not-an-ip\n"
        ";nameserver 9.9.9.9\nnameserver\tFD00::53\n"
    )
    assert parse_resolv_conf(text) == ["192.168.1.1", "fe80::1", "fd00::53"]


def test_systemctl_failed_rows() -> None:
    text = (
        "nginx.service  loaded failed failed A high performance web server\n"
        "● backup.timer loaded failed failed Nightly backup\n"
        "weird.mount not-found failed failed\n"
        "\n"
    )
    assert parse_systemctl_failed(text) == [
        Service(
            "nginx.service", "A high performance web server", "failed", "load=loaded sub=failed"
        ),
        Service("backup.timer", "Nightly backup", "failed", "load=loaded sub=failed"),
        Service("weird.mount", "", "failed", "load=not-found sub=failed"),
    ]


def test_journal_json_lines() -> None:
    lines = [
        '{"__REALTIME_TIMESTAMP": "1767603600000000", "PRIORITY": "3",'
        ' "_SYSTEMD_UNIT": "cron.service", "MESSAGE": "job failed"}',
        # Non-UTF-8 messages arrive as byte arrays.
        '{"__REALTIME_TIMESTAMP": "x", "PRIORITY": "2", "SYSLOG_IDENTIFIER": "kernel",'
        ' "MESSAGE": [73, 47, 79, 32, 255]}',
        "not json",
        "[1, 2]",
        '{"_COMM": "sshd", "MESSAGE": {"nested": true}}',
    ]
    assert parse_journal_json("\n".join(lines)) == [
        JournalEntry(datetime(2026, 1, 5, 9, 0, tzinfo=UTC), 3, "cron.service", "job failed"),
        JournalEntry(None, 2, "kernel", "I/O \ufffd"),
        JournalEntry(None, None, "sshd", ""),
    ]


def test_journal_files_are_looked_for_one_level_down(tmp_path: Path) -> None:
    assert not has_journal_files((tmp_path / "missing", tmp_path))
    machine = tmp_path / "0123456789abcdef"
    machine.mkdir()
    (machine / "system.journal").write_bytes(b"")
    assert has_journal_files((tmp_path / "missing", tmp_path))


def test_pressure_stall_information() -> None:
    text = (
        "some avg10=1.25 avg60=0.50 avg300=0.10 total=12345\n"
        "full avg10=0.75 avg60=0.20 avg300=0.00 total=678\n"
    )
    assert parse_psi(text) == (1.25, 0.75)
    assert parse_psi("") == (None, None)


@pytest.mark.parametrize(
    ("options", "read_only"),
    [("rw,relatime", False), ("ro,nosuid", True), ("rw,errors=remount-ro", False), ("", False)],
)
def test_read_only_mount_options(options: str, read_only: bool) -> None:
    assert is_read_only(options) is read_only


def test_clock_offset_against_the_relay_reference() -> None:
    clock = FakeClock()
    # The relay said 08:58:30 when we were at monotonic 1000; 20 s later we are at 09:00:20.
    reference = RelayClockReference(clock.now() - timedelta(seconds=90), clock.monotonic())
    clock.advance(20)
    assert clock_offset(reference, clock) == 90.0
    behind = RelayClockReference(clock.now() + timedelta(seconds=5), clock.monotonic())
    assert clock_offset(behind, clock) == -5.0
    assert clock_offset(None, clock) is None


def test_timezone_name_sources(tmp_path: Path) -> None:
    assert timezone_name(tz_env=":Europe/Amsterdam") == "Europe/Amsterdam"
    link = tmp_path / "localtime"
    os.symlink("/usr/share/zoneinfo/America/New_York", link)
    assert timezone_name("", link, tmp_path / "none") == "America/New_York"
    zone_file = tmp_path / "timezone"
    zone_file.write_text("Asia/Tokyo\n")
    assert timezone_name("", tmp_path / "no-link", zone_file) == "Asia/Tokyo"


def test_options_are_checked() -> None:
    with pytest.raises(UsageError, match="collector_timeout must be positive"):
        DiagnosticsOptions(collector_timeout=0)
    with pytest.raises(UsageError, match=r"timeouts\[disks\] must be positive"):
        DiagnosticsOptions(timeouts={"disks": -1})
    with pytest.raises(UsageError, match="invalid TCP target"):
        TcpTarget("relay.example.com", 70000)
    options = DiagnosticsOptions(collector_timeout=3, overall_timeout=4, timeouts={"dns": 9})
    assert (options.timeout_for("disks"), options.timeout_for("dns")) == (3, 4)


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (-5 * 1024**3, "-5.0 GiB")],
)
def test_human_bytes(value: int | None, text: str) -> None:
    assert human_bytes(value) == text
