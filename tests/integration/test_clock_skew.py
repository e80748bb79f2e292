"""Issue 10: when the agent's clock is off by more than the certificates allow, the
technician is told the clocks differ and by how much (real qp and qp-agent processes;
the relay runs on the test's loop with its wall clock set ahead)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from harness import BIN, World
from shared.clock import SystemClock
from tests.integration.conftest import Office
from tests.integration.inprocess import arun, node_with_agent
from tests.integration.toolkit_helpers import agent_events

AHEAD = timedelta(minutes=10)


class AheadClock(SystemClock):
    """The real clocks, the wall clock :data:`AHEAD` of the machine's."""

    def now(self) -> datetime:
        return datetime.now(UTC) + AHEAD


async def test_an_agent_clock_behind_the_relay_is_named_as_such(world: World) -> None:
    async with node_with_agent(world, "skew-pc", clock=AheadClock(), heartbeat_interval=30):
        code, out, err = await arun(
            world, [str(BIN / "qp"), "exec", "skew-pc", "--", "echo", "ran"], check=False
        )
    assert (code, out) == (255, b"")
    line = err.decode().strip()
    # About 10 minutes behind; the seconds depend on when the offer arrived.
    assert re.fullmatch(
        r"qp: the client's agent refused the session: the clocks differ: the client's clock "
        r"is (9 min 5\d|10 min 0) s behind the relay's, more than the session certificate "
        r"allows; set the clock of the client",
        line,
    ), line
    (event,) = agent_events(world.root / "agents" / "skew-pc", "clock_skew")
    assert "behind the relay's" in event["problem"]


def test_a_right_clock_still_works(office: Office) -> None:
    # Control: the same check passes a session when the clocks agree.
    assert office.world.qp("exec", "acme-pc", "--", "echo", "ran").stdout == b"ran\n"
