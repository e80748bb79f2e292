"""The console's diagnostics view: findings first, every section readable, and agent
strings inert whatever markup, HTML or escape sequences they carry."""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console

from shared.diagnostics import Finding, Listener, Section, Snapshot, with_sections
from shared.diagnostics_diff import diff
from shared.diagnostics_view import render_diff, render_snapshot
from tests.unit.diagnostics_samples import changed, data, healthy, mount

HOSTILE = (
    "[bold red]pwn[/] <script>alert(1)</script> :warning: "
    "\x1b[2J\x1b]0;owned\x07\x1b[31mred\x9b1m \u202eexe.txt"
)


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    console = Console(
        file=out, record=True, width=160, force_terminal=True, color_system="truecolor"
    )
    return console, out


def rendered(snapshot: Snapshot) -> str:
    console, _ = terminal()
    render_snapshot(console, snapshot)
    return console.export_text()


def test_findings_come_before_the_sections() -> None:
    snap = changed(
        healthy(), "disks", replace(data(healthy(), "disks"), mounts=(mount("/", 97.0),))
    )
    snap = replace(
        snap,
        findings=(Finding("disk_full", "critical", "Disk / is 97% full", "/", ("3.0 GiB free",)),),
    )
    text = rendered(snap)
    assert text.index("Findings") < text.index("CRITICAL") < text.index("System")
    assert "Disk / is 97% full" in text and "3.0 GiB free" in text


def test_every_section_is_shown_with_its_figures() -> None:
    text = rendered(healthy())
    assert text.startswith("Diagnostics of pc-01 at 2026-01-05T09:00:00Z")
    assert "No findings" in text
    for expected in (
        "Debian GNU/Linux 12",
        "Europe/Amsterdam (UTC+01:00)",
        "/usr/bin/worker --serve",
        "16.0 GiB",
        "/home",
        "No failed services (systemd)",
        "192.168.1.20",
        "192.168.1.1",
        "relay.example.com",
        "refused",
        "sshd",
        "job failed",
    ):
        assert expected in text, expected


def test_a_missing_section_says_why() -> None:
    snap = with_sections(
        healthy(), {"services": Section(status="unavailable", reason="systemd is not running")}
    )
    assert "unavailable: systemd is not running" in rendered(snap)


def test_agent_strings_render_inert() -> None:
    # Built directly, not parsed: the view must not rely on the parser's cleaning.
    snap = changed(healthy(), "system", replace(data(healthy(), "system"), hostname=HOSTILE))
    listener = Listener("tcp", "0.0.0.0", 8080, 1, HOSTILE, HOSTILE)
    snap = changed(snap, "sockets", replace(data(snap, "sockets"), listeners=(listener,)))
    snap = replace(snap, findings=(Finding("x", "warning", HOSTILE, HOSTILE, (HOSTILE,)),))
    console, out = terminal()
    render_snapshot(console, snap)
    raw = out.getvalue()
    # Nothing from the data reached the terminal as a control sequence…
    for sequence in ("\x1b[2J", "\x1b]0;", "\x07", "\x1b[31mred", "\x9b", "\u202e"):
        assert sequence not in raw
    text = console.export_text(clear=False)
    # …markup and emoji codes stayed literal text…
    assert "[bold red]pwn[/]" in text
    assert ":warning:" in text and "\u26a0" not in text
    assert "<script>alert(1)</script>" in text
    assert "red exe.txt" in text and "owned" not in text  # whole sequences removed
    # …and HTML export escapes it.
    html = console.export_html()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html


def test_render_diff_lists_each_kind_of_change() -> None:
    before = healthy()
    web = Listener("tcp", "127.0.0.1", 8080, 900, "python3", "alice")
    after = changed(before, "sockets", replace(data(before, "sockets"), listeners=(web,)))
    after = changed(after, "disks", replace(data(after, "disks"), mounts=(mount("/", 45.0),)))
    after = with_sections(after, {"journal": Section(status="timeout", reason="no result")})
    after = replace(after, findings=(Finding("pending_reboot", "info", "A reboot is pending"),))
    console, _ = terminal()
    render_diff(console, diff(before, after))
    text = console.export_text()
    assert text.index("New findings") < text.index("A reboot is pending") < text.index("Sections")
    assert "Recent system errors" in text and "timeout" in text
    assert "+ " in text and "8080" in text and "python3" in text
    assert "- " in text and "sshd" in text
    assert "+5.0 GiB" in text and "40% → 45%" in text


def test_render_diff_of_nothing() -> None:
    console, _ = terminal()
    render_diff(console, diff(healthy(), healthy()))
    assert "No changes." in console.export_text()
