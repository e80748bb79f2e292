"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.model import Agent, Customer, Technician
from relay.store.interface import Store
from relay.store.sqlite import SQLiteStore
from shared.clock import FakeClock


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A real SQLite store with customer cus-1, technician tec-1 and agent agt-1."""
    s = SQLiteStore(str(tmp_path / "relay.db"))
    await s.open()
    clock = FakeClock()
    await s.add_customer(Customer("cus-1", "Acme", clock.now()))
    await s.add_technician(
        Technician("tec-1", "alice", 2, "technician", ("cus-1",), clock.now()), "h"
    )
    await s.add_agent(Agent("agt-1", "pc", "cus-1", "ssh-ed25519 A", "ssh-ed25519 B", clock.now()))
    try:
        yield s
    finally:
        await s.close()
