"""Idle time is not billed (real relay, agent and qp processes, real time).

With an idle threshold of one minute, three technicians work on one machine at
once: one runs a command that sleeps 200 s, one a command that prints a line every
5 s for 200 s, one leaves a shell idle for three minutes and then uses it. Only
the stretches without payload beyond the threshold are excluded, to the second.
The three run side by side, so the test takes about 200 s, not 600 s.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness import BIN, World, timeout
from tests.integration.billing_world import FLAT_CARD, import_card, parallel, start_office

IDLE_CARD = FLAT_CARD.replace("idle_threshold_minutes = 5", "idle_threshold_minutes = 1")


@pytest.fixture
def shop(tmp_path: Path) -> Any:
    world = World(tmp_path)
    try:
        start_office(world)
        world.qp("customer", "add", "Acme")
        for name in ("alice", "bob", "carol"):
            world.technician(name, "Acme")
        _, data = world.enroll("Acme", "idle-pc")
        world.start_agent(data)
        import_card(world, IDLE_CARD)
        yield world
    finally:
        world.close()


def _shell_idle_then_used(world: World, idle_seconds: float) -> int:
    """``qp shell`` under a PTY: wait for the prompt, stay idle, then use it."""
    import pty

    env = world.env("carol")
    env["PS1"] = "$ "
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(str(BIN / "qp"), [str(BIN / "qp"), "shell", "idle-pc"], env)
    out = bytearray()

    def read_until(marker: bytes) -> None:
        deadline = time.monotonic() + timeout(60)
        while marker not in out:
            assert time.monotonic() < deadline, bytes(out)
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                out.extend(os.read(fd, 65536))

    os.write(fd, b"echo ready-$((6*7))\n")
    read_until(b"ready-42")
    time.sleep(idle_seconds)  # the scenario itself: a technician away from the keyboard
    os.write(fd, b"echo back-$((6*7)); exit\n")
    read_until(b"back-42")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.timeout(600)
def test_idle_stretches_beyond_the_threshold_are_excluded(shop: World) -> None:
    w = shop
    qp = str(BIN / "qp")
    printing = "for i in $(seq 40); do echo line $i; sleep 5; done"
    jobs: list[Callable[[], Any]] = [
        lambda: w.run([qp, "exec", "idle-pc", "--", "sleep", "200"], home="alice", within=300),
        lambda: w.run([qp, "exec", "idle-pc", "--", "sh", "-c", printing], home="bob", within=300),
        lambda: _shell_idle_then_used(w, 180),
    ]
    sleeping, printed, shell_status = parallel(jobs)
    assert sleeping.returncode == 0 and printed.stdout.count(b"line ") == 40
    assert shell_status == 0

    entries = {e["technician"]: e for e in w.qp_json("time")}
    assert entries["alice"]["idle_seconds"] >= 120, entries["alice"]
    assert entries["bob"]["idle_seconds"] == 0, entries["bob"]
    assert entries["carol"]["idle_seconds"] >= 100, entries["carol"]
    assert entries["alice"]["actual_seconds"] <= 200 - 120

    shown = w.qp("time", "show", entries["alice"]["id"]).stdout.decode()
    assert "excluded as idle" in shown, shown
