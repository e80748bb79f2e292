"""Fixtures that start real relay and agent processes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import Proc, World


@dataclass
class Office:
    """A running relay with customers Acme and Globex, technicians alice (Acme)
    and bob (Globex), and one online agent per customer."""

    world: World
    acme_agent: str
    acme_proc: Proc
    globex_agent: str


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    world = World(Path(tmp_path_factory.mktemp("office")))
    try:
        token = world.init_relay(heartbeat_interval=1)
        world.start_relay(0)
        world.login(token)
        world.qp("customer", "add", "Acme")
        world.qp("customer", "add", "Globex")
        world.technician("alice", "Acme")
        world.technician("bob", "Globex")
        acme_id, acme_data = world.enroll("Acme", "acme-pc")
        acme_proc = world.start_agent(acme_data)
        globex_id, globex_data = world.enroll("Globex", "globex-pc")
        world.start_agent(globex_data)
        yield Office(world, acme_id, acme_proc, globex_id)
    finally:
        world.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A fresh, empty world for tests that restart or kill the relay."""
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.close()
