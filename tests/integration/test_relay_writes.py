"""What one ``qp exec`` costs the relay's disk: every write transaction is an fsync
(``synchronous=FULL``), and scripts run ``qp exec`` in loops."""

from __future__ import annotations

import asyncio

from harness import BIN, World, timeout
from tests.integration.inprocess import arun, node_with_agent

#: Budget for ``qp exec AGENT -- true``: the session row (with its open and
#: certificate audits), the successful login (with its audit), the end with its time
#: entry and audit, and the diagnostics snapshots before and after the session.
MAX_WRITES = 5


async def test_one_exec_costs_at_most_five_write_transactions(world: World) -> None:
    # Heartbeats are written by the clock, not per session: keep them out of the count.
    async with node_with_agent(world, "writes-pc", heartbeat_interval=30) as node:
        exec_true = [str(BIN / "qp"), "exec", "writes-pc", "--", "true"]
        diagnostics = node.services.diagnostics

        before = node.store.write_transactions
        await arun(world, exec_true)
        # The first session of an agent also gets its before and after snapshots,
        # which arrive on the agent's link after qp exec has returned.
        await asyncio.wait_for(diagnostics.wait_kept(2), timeout(15))
        first = node.store.write_transactions - before

        before = node.store.write_transactions
        await arun(world, exec_true)  # within the snapshot interval: no snapshots
        second = node.store.write_transactions - before
        kept = diagnostics.kept
        rows = await node.store.list_sessions(10)

    assert kept == 2
    assert [r.end_reason for r in rows] == ["completed", "completed"]
    assert 0 < second < first <= MAX_WRITES, (first, second)
