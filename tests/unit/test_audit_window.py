"""The auditor: identified refusals one row each, unauthenticated ones counted per
(source address, reason) and written as one row per window; every refusal also a
structured line in the relay log. A real SQLite store, a fake clock."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from relay.services.audit import ANONYMOUS, Auditor, security_line
from relay.store.interface import Store
from shared.clock import FakeClock


async def rows(store: Store) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(event, actor, subject, detail) of the trail, oldest first."""
    return [(r.event, r.actor, r.subject, r.detail) for r in reversed(await store.list_audit())]


async def test_a_flood_of_anonymous_refusals_is_one_row_per_address_and_reason(
    store: Store,
) -> None:
    clock = FakeClock()
    auditor = Auditor(store, clock, window_seconds=60)
    for i in range(2000):
        await auditor.refused("tunnel_refused", ANONYMOUS, f"ses-{i % 3}", peer="10.0.0.1")
    await auditor.refused("login_refused", ANONYMOUS, peer="10.0.0.1")
    await auditor.refused("login_refused", ANONYMOUS, peer="10.0.0.2")
    assert await rows(store) == []  # the window is still open

    clock.advance(60)
    assert await auditor.flush(due_only=True) == 3
    written = await rows(store)
    assert [(e, a, s, d["peer"], d["count"]) for e, a, s, d in written] == [
        ("tunnel_refused", ANONYMOUS, "", "10.0.0.1", 2000),
        ("login_refused", ANONYMOUS, "", "10.0.0.1", 1),
        ("login_refused", ANONYMOUS, "", "10.0.0.2", 1),
    ]
    assert written[0][3]["subjects"] == 3  # the session ids tried differed
    assert written[0][3]["window_seconds"] == 60


async def test_windows_close_by_time_even_while_the_flood_goes_on(store: Store) -> None:
    clock = FakeClock()
    auditor = Auditor(store, clock, window_seconds=60)
    for _ in range(3):  # three windows of 100 refusals each, one second apart
        for _ in range(100):
            await auditor.refused("auth_throttled", ANONYMOUS, peer="10.0.0.9")
            clock.advance(0.6)
    await auditor.stop()  # a graceful stop writes the open window
    counts = [d["count"] for _, _, _, d in await rows(store)]
    assert sum(counts) == 300
    assert len(counts) == 3


async def test_the_buffer_is_bounded_by_keys(store: Store) -> None:
    auditor = Auditor(store, FakeClock(), window_seconds=60, max_keys=10)
    for i in range(25):
        await auditor.refused("login_refused", ANONYMOUS, peer=f"10.0.1.{i}")
    # Two early writes of ten keys each; five still counted in memory.
    assert len(await rows(store)) == 20
    await auditor.flush()
    assert len(await rows(store)) == 25


async def test_identified_refusals_are_one_row_each(store: Store) -> None:
    auditor = Auditor(store, FakeClock())
    for _ in range(3):
        await auditor.refused("role_refused", "tec-1", "technician.list", role="technician")
    assert (
        await rows(store)
        == [("role_refused", "tec-1", "technician.list", {"role": "technician"})] * 3
    )


async def test_every_refusal_is_a_structured_line_in_the_relay_log(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    auditor = Auditor(store, clock, window_seconds=60)
    with caplog.at_level(logging.INFO, logger="qp.security"):
        await auditor.refused("out_of_scope", "tec-1", "agt-9", method="diag.get", what="agent")
        for _ in range(5):
            await auditor.refused("tunnel_refused", ANONYMOUS, "ses-1", peer="10.0.0.1")
        clock.advance(60)
        await auditor.flush(due_only=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "qp.security"]
    assert lines == [
        "event=out_of_scope actor=tec-1 subject=agt-9 peer=- count=1 method=diag.get what=agent",
        # The first of a window at once, the window's count when it closes.
        "event=tunnel_refused actor=anonymous subject=ses-1 peer=10.0.0.1 count=1",
        "event=tunnel_refused actor=anonymous subject=ses-1 peer=10.0.0.1 count=5"
        " window_seconds=60",
    ]


def test_a_peer_cannot_forge_or_split_a_log_line() -> None:
    line = security_line("login_refused", ANONYMOUS, "x count=99\nevent=fake", 1, {})
    assert "\n" not in line
    assert line == (
        'event=login_refused actor=anonymous subject="x count=99\\nevent=fake" peer=- count=1'
    )
