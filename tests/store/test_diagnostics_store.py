"""Compliance tests for snapshot history and help requests (every Store backend)."""

from __future__ import annotations

import asyncio

from relay.model import HelpRequest, SnapshotRecord
from relay.store.interface import Store
from tests.store.records import agent, at, seed


def snap(agent_id: str = "agt-1", minute: float = 0, **extra: object) -> SnapshotRecord:
    return SnapshotRecord(
        id=0,
        agent_id=agent_id,
        taken_at=at(minute),
        received_at=at(minute),
        kind=str(extra.pop("kind", "refresh")),
        data={"taken_at": "x", "n": minute},
        **extra,  # type: ignore[arg-type]
    )


def request(text: str = "printer offline", urgent: bool = False) -> HelpRequest:
    return HelpRequest(0, "agt-1", "cus-1", text, urgent, "open", at(0), at(0))


async def test_history_is_bounded_per_agent_but_keeps_linked_snapshots(store: Store) -> None:
    await seed(store)
    await store.add_agent(agent("agt-2", "other-pc"))
    linked = await store.add_snapshot(snap(minute=0, kind="session_start", session_id=None), 3)
    number = await store.add_help_request(
        HelpRequest(0, "agt-1", "cus-1", "help", False, "open", at(0), at(0), snapshot_id=linked)
    )
    ids = [await store.add_snapshot(snap(minute=m), keep=3) for m in range(1, 6)]
    await store.add_snapshot(snap("agt-2", 9), keep=3)
    kept = [s.id for s in await store.list_snapshots("agt-1")]
    assert kept[:3] == ids[-1:-4:-1]  # newest first
    assert linked in kept  # tied to help request `number`: never pruned
    assert len(kept) == 4
    got = await store.get_snapshot(ids[-1])
    assert got is not None and got.data == {"taken_at": "x", "n": 5}
    assert (await store.get_snapshot(linked)).request_id == number  # type: ignore[union-attr]


async def test_worst_finding_comes_from_the_latest_snapshot(store: Store) -> None:
    await seed(store)
    await store.add_snapshot(snap(minute=0, worst="critical"), 10)
    await store.add_snapshot(snap(minute=1, worst="warning"), 10)
    assert await store.worst_findings() == {"agt-1": "warning"}


async def test_help_requests_number_and_move_only_from_the_expected_state(store: Store) -> None:
    await seed(store)
    first = await store.add_help_request(request())
    second = await store.add_help_request(request("no network", urgent=True))
    assert second == first + 1
    assert await store.update_help_request(first, "open", state="assigned", assigned_to="tec-1")
    # A second technician taking the same request loses the race cleanly.
    assert not await store.update_help_request(first, "open", state="assigned", assigned_to="x")
    got = await store.get_help_request(first)
    assert got is not None and (got.state, got.assigned_to) == ("assigned", "tec-1")
    open_only = await store.list_help_requests(("open",))
    assert [r.id for r in open_only] == [second] and open_only[0].urgent


async def test_concurrent_takes_assign_once(store: Store) -> None:
    await seed(store)
    number = await store.add_help_request(request())
    results = await asyncio.gather(
        *(
            store.update_help_request(number, "open", state="assigned", assigned_to=f"t{i}")
            for i in range(6)
        )
    )
    assert sum(results) == 1
