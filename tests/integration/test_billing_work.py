"""Only work is billed, once (real relay, agent and qp processes, real time).

Idle: with an idle threshold of one minute, three technicians work on one machine
at once: one runs a command that sleeps 200 s, one a command that prints a line
every 5 s for 200 s, one leaves a shell idle for three minutes and then uses it.
Only the stretches without payload beyond the threshold are excluded.

Merge: three quick ``qp exec`` by one technician on one machine are one entry,
billed once, without a rate card (seconds apart) and with the sample card (90 s
apart: the card's 60 s grace applies to the merged time, so commands seconds apart
bill nothing there until the work passes it); ten 3-second commands over five
minutes with the sample card are billed as one piece of work, not dropped.

Everything runs side by side, so the test takes about five minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness import BIN, World
from tests.integration.billing_world import import_card, parallel, start_office
from tests.integration.pty_shell import PtyShell

SAMPLE_CARD = (Path(__file__).parents[2] / "relay" / "billing" / "sample_ratecard.toml").read_text()


def card_for(acme_id: str) -> str:
    """The sample card, with a one-minute idle threshold for Acme."""
    return SAMPLE_CARD + (
        f'\n[customers.{acme_id}]\nname = "Acme"\n'
        f"[customers.{acme_id}.sessions]\nidle_threshold_minutes = 1\n"
    )


@pytest.fixture
def shop(tmp_path: Path) -> Any:
    world = World(tmp_path)
    try:
        start_office(world)
        for customer, agent, people in (
            ("Acme", "idle-pc", ("alice", "bob", "carol")),
            ("Bakkerij", "kassa-pc", ("dave", "erin", "frank")),
        ):
            world.qp("customer", "add", customer)
            for name in people:
                world.technician(name, customer)
            _, data = world.enroll(customer, agent)
            world.start_agent(data)
        yield world
    finally:
        world.close()


def _mine(world: World, who: str) -> list[dict[str, Any]]:
    return [e for e in world.qp_json("time") if e["technician"] == who]


def _execs(world: World, who: str, count: int, command: str, every: float) -> None:
    """``count`` quick commands by ``who`` on kassa-pc, one every ``every`` seconds."""
    qp = str(BIN / "qp")
    for n in range(count):
        started = time.monotonic()
        world.run([qp, "exec", "kassa-pc", "--", "sh", "-c", command], home=who)
        if n < count - 1:
            time.sleep(max(0.0, every - (time.monotonic() - started)))  # the scenario


def _shell_idle_then_used(world: World, idle_seconds: float) -> int:
    """``qp shell`` under a PTY: wait for the prompt, stay idle, then use it."""
    env = world.env("carol")
    env["PS1"] = "$ "
    shell = PtyShell("idle-pc", env)
    shell.type(b"echo ready-$((6*7))\n")
    shell.read_until(b"ready-42", within=60)
    time.sleep(idle_seconds)  # the scenario itself: a technician away from the keyboard
    shell.type(b"echo back-$((6*7)); exit\n")
    shell.read_until(b"back-42", within=60)
    return shell.wait()


@pytest.mark.timeout(900)
def test_only_work_is_billed_and_reconnects_once(shop: World) -> None:
    w = shop
    qp = str(BIN / "qp")
    # Without a rate card: actual time in whole minutes, reconnects one entry.
    _execs(w, "dave", 3, "true", every=0)
    (quick,) = _mine(w, "dave")
    assert (len(quick["session_ids"]), quick["billable_minutes"]) == (3, 1), quick
    assert quick["amount"] == "1.50"

    acme_id = next(c["id"] for c in w.qp_json("customer", "list") if c["name"] == "Acme")
    import_card(w, card_for(acme_id))
    printing = "for i in $(seq 40); do echo line $i; sleep 5; done"
    jobs: list[Callable[[], Any]] = [
        lambda: w.run([qp, "exec", "idle-pc", "--", "sleep", "200"], home="alice", within=300),
        lambda: w.run([qp, "exec", "idle-pc", "--", "sh", "-c", printing], home="bob", within=300),
        lambda: _shell_idle_then_used(w, 180),
        lambda: _execs(w, "erin", 3, "true", every=45),
        lambda: _execs(w, "frank", 10, "sleep 3", every=30),
    ]
    sleeping, printed, shell_status, _, _ = parallel(jobs)
    assert sleeping.returncode == 0 and printed.stdout.count(b"line ") == 40
    assert shell_status == 0

    entries = {e["technician"]: e for e in w.qp_json("time")}
    assert entries["alice"]["idle_seconds"] >= 120, entries["alice"]
    assert entries["bob"]["idle_seconds"] == 0, entries["bob"]
    assert entries["carol"]["idle_seconds"] >= 100, entries["carol"]
    assert entries["alice"]["actual_seconds"] <= 200 - 120

    shown = w.qp("time", "show", entries["alice"]["id"]).stdout.decode()
    assert "excluded as idle" in shown, shown

    # Three quick commands over 90 s: past the card's 60 s grace together, so one
    # entry with the sample card's 15-minute minimum, once (not three times).
    (card_quick,) = _mine(w, "erin")
    assert (len(card_quick["session_ids"]), card_quick["billable_minutes"]) == (3, 15)
    (fixes,) = _mine(w, "frank")  # each under the 60 s grace, together 4.5 minutes
    assert len(fixes["session_ids"]) == 10, fixes
    assert fixes["actual_seconds"] >= 240 and fixes["billable_minutes"] == 15, fixes
