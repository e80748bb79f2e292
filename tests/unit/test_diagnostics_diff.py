"""diff() between synthetic snapshots: each kind of change, and silence when equal."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from shared.diagnostics import Finding, Listener, Section, Service, with_sections
from shared.diagnostics_diff import DiskChange, SectionChange, diff
from tests.unit.diagnostics_samples import changed, data, healthy, mount


def test_identical_snapshots_differ_in_nothing() -> None:
    changes = diff(healthy(), healthy())
    assert changes.empty
    assert changes.since == changes.until == healthy().taken_at


def test_listeners_added_and_removed() -> None:
    before = healthy()
    sockets = data(before, "sockets")
    web = Listener("tcp", "0.0.0.0", 8080, 900, "python3", "alice")
    after = changed(before, "sockets", replace(sockets, listeners=(web,), listener_count=1))
    changes = diff(before, after)
    assert changes.listeners_added == (web,)
    assert changes.listeners_removed == sockets.listeners
    assert not changes.disks


def test_a_restarted_daemon_keeps_its_listener() -> None:
    before = healthy()
    sockets = data(before, "sockets")
    restarted = tuple(replace(item, pid=(item.pid or 0) + 1) for item in sockets.listeners)
    after = changed(before, "sockets", replace(sockets, listeners=restarted))
    assert diff(before, after).empty


def test_disk_usage_change_per_mount() -> None:
    before = healthy()
    disks = data(before, "disks")
    after_mounts = (mount("/", 41.0), mount("/srv", 10.0))  # /home gone, /srv new
    after = changed(before, "disks", replace(disks, mounts=after_mounts))
    changes = diff(before, after).disks
    gib = 1024**3
    assert changes == (
        DiskChange("/", 40 * gib, 41 * gib, 40.0, 41.0, 100 * gib),
        DiskChange("/home", 60 * gib, None, 60.0, None, 100 * gib),
        DiskChange("/srv", None, 10 * gib, None, 10.0, 100 * gib),
    )
    assert changes[0].delta_bytes == gib


def test_services_newly_failed_and_recovered() -> None:
    nginx = Service("nginx.service", "web", "failed", "")
    cron = Service("cron.service", "cron", "failed", "")
    base = healthy()
    services = data(base, "services")
    before = changed(base, "services", replace(services, failed=(nginx,)))
    after = changed(base, "services", replace(services, failed=(cron,)))
    changes = diff(before, after)
    assert (changes.services_failed, changes.services_recovered) == ((cron,), (nginx,))


def test_findings_appeared_and_cleared() -> None:
    disk = Finding("disk_full", "warning", "Disk / is 91% full", "/", ("…",))
    reboot = Finding("pending_reboot", "info", "A reboot is pending", "", ())
    before = replace(healthy(), findings=(disk,))
    after = replace(healthy(), findings=(replace(disk, title="Disk / is 92% full"), reboot))
    changes = diff(before, after)
    # Same rule and subject: the same finding, even if its figures moved.
    assert (changes.findings_appeared, changes.findings_cleared) == ((reboot,), ())


def test_a_section_that_stopped_answering_is_a_status_change_not_a_guess() -> None:
    before = healthy()
    after = with_sections(before, {"disks": Section(status="timeout", reason="no result")})
    after = replace(after, taken_at=before.taken_at + timedelta(minutes=5))
    changes = diff(before, after)
    assert changes.sections_changed == (SectionChange("disks", "ok", "timeout", "no result"),)
    assert changes.disks == ()
    assert changes.until - changes.since == timedelta(minutes=5)
