"""Automatic session snapshots are spaced out (fake clock, no sockets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relay.services.diagnostics import Diagnostics
from shared.clock import FakeClock
from shared.protocol.messages import Message


@dataclass
class Links:
    sent: list[tuple[str, str]] = field(default_factory=list)

    def online(self, agent_id: str) -> bool:
        return True

    async def send(self, agent_id: str, message: Message) -> None:
        self.sent.append((message.body["session_id"], message.body["phase"]))


@dataclass
class Settings:
    session_snapshot_interval: int = 60


@dataclass
class FakeRelay:
    links: Links = field(default_factory=Links)
    clock: FakeClock = field(default_factory=FakeClock)
    settings: Settings = field(default_factory=Settings)
    store: Any = None  # the spacing rule decides before anything is stored


async def test_a_burst_of_sessions_gets_one_before_and_after() -> None:
    relay: Any = FakeRelay()
    diag = Diagnostics(relay.store, relay.links, relay.clock, relay.settings)
    for n in range(3):  # three quick `qp exec` in a row
        await diag.session_phase("agt-1", f"ses-{n}", "before")
        relay.clock.advance(2)
        await diag.session_phase("agt-1", f"ses-{n}", "after")
        relay.clock.advance(1)
    assert relay.links.sent == [("ses-0", "before"), ("ses-0", "after")]
    relay.clock.advance(60)
    await diag.session_phase("agt-1", "ses-9", "before")
    await diag.session_phase("agt-1", "ses-9", "after")
    assert relay.links.sent[-2:] == [("ses-9", "before"), ("ses-9", "after")]


async def test_a_long_session_always_gets_its_after() -> None:
    relay: Any = FakeRelay()
    diag = Diagnostics(relay.store, relay.links, relay.clock, relay.settings)
    await diag.session_phase("agt-1", "ses-a", "before")
    relay.clock.advance(5)
    await diag.session_phase("agt-2", "ses-b", "before")  # other agents are independent
    await diag.session_phase("agt-1", "ses-a", "after")
    assert relay.links.sent == [("ses-a", "before"), ("ses-b", "before"), ("ses-a", "after")]
