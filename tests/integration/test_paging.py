"""Long lists, real processes: every list comes in pages that fit one control
message, ``qp`` follows them, and one machine cannot flood the help queue.

Rows are written straight into the relay's database (a second connection; WAL)
with the store's own codec, many in one transaction: quick, and the relay reads
them like any others.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from harness import BIN, Proc, World, timeout
from relay.model import Agent, HelpRequest, Session
from relay.store.sqlite.codec import columns, insert_sql

AGENTS = 10_000
SESSIONS = 300  # the 200 that qp sessions shows by default already exceed 64 KiB
REQUESTS = 500
PER_AGENT = 3  # limits.help_requests_per_agent in this relay (the default is 20)
LIMIT = 64 * 1024  # limits.control_max_size, and what a console accepts


class Site:
    def __init__(self, world: World, data: Path, agent: Proc) -> None:
        self.world, self.data, self.agent = world, data, agent


def _bulk(db: sqlite3.Connection, table: str, records: list[Any], drop: tuple[str, ...]) -> None:
    rows = [columns(r, drop=drop) for r in records]
    db.executemany(insert_sql(table, rows[0]), rows)


def _fill(world: World) -> None:
    """10,000 agents, 300 ended sessions and 500 open help requests, for Acme."""
    db = sqlite3.connect(world.relay_data / "relay.db", timeout=timeout(30))
    try:
        (acme,) = db.execute("SELECT id FROM customers WHERE name = 'Acme'").fetchone()
        (alice,) = db.execute("SELECT id FROM technicians WHERE name = 'alice'").fetchone()
        base = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBulkBulkBulkBulkBulkBulkBulkBulkBulkBulkBulk"
        agents = [
            Agent(f"agt-bulk{i:05d}", f"pc-{i:05d}", acme, key, key, base) for i in range(AGENTS)
        ]
        sessions = [
            Session(
                f"ses-bulk{i:04d}",
                agents[i].id,
                alice,
                acme,
                "shell",
                "ended",
                base + timedelta(minutes=i),
                "node-bulk",
                started_at=base + timedelta(minutes=i),
                ended_at=base + timedelta(minutes=i, seconds=30),
                end_reason="technician_ended",
                request=f"TICKET-{i:04d}",
            )
            for i in range(SESSIONS)
        ]
        requests = [
            HelpRequest(
                0,
                agents[0].id,
                acme,
                f"printer offline again, number {i}; the spooler says nothing useful",
                i % 7 == 0,
                "open",
                base + timedelta(seconds=i),
                base + timedelta(seconds=i),
            )
            for i in range(REQUESTS)
        ]
        with db:
            _bulk(db, "agents", agents, ())
            _bulk(db, "sessions", sessions, ())
            _bulk(db, "help_requests", requests, ("id",))
    finally:
        db.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    world = World(Path(tmp_path_factory.mktemp("paging")))
    try:
        token = world.init_relay(help_requests_per_agent=PER_AGENT)
        world.start_relay(0)
        world.login(token)
        world.qp("customer", "add", "Acme")
        world.technician("alice", "Acme")
        _, data = world.enroll("Acme", "kassa")
        agent = world.start_agent(data)
        _fill(world)
        yield Site(world, data, agent)
    finally:
        world.close()


async def _raw_pages(world: World, method: str, **params: Any) -> tuple[list[Any], list[int]]:
    """Follow ``method``'s pages over a raw WebSocket: every item, and the size of
    every message the relay sent."""
    sizes: list[int] = []
    items: list[Any] = []
    async with connect(
        f"{world.url}/v1/console",
        subprotocols=["qp.v1"],  # type: ignore[list-item]
        max_size=None,  # measure, do not refuse: the assertion is ours
        open_timeout=timeout(10),
    ) as ws:

        async def ask(kind: str, body: dict[str, Any], msg_id: int | None) -> dict[str, Any]:
            await ws.send(json.dumps({"v": 1, "type": kind, "id": msg_id, "body": body}))
            raw = await asyncio.wait_for(ws.recv(), timeout(30))
            sizes.append(len(raw.encode() if isinstance(raw, str) else raw))
            reply: dict[str, Any] = json.loads(raw)
            return reply

        assert (await ask("login", {"token": world.admin_token}, None))["type"] == "login_ok"
        cursor = None
        for call in range(1, 10_000):
            asked = dict(params, **({"cursor": cursor} if cursor else {}))
            reply = await ask("call", {"method": method, "params": asked}, call)
            assert reply["type"] == "result", reply
            items += reply["body"]["value"]["items"]
            cursor = reply["body"]["value"]["next"]
            if cursor is None:
                break
    return items, sizes


def test_ten_thousand_agents_come_in_pages_under_the_limit(site: Site) -> None:
    world = site.world
    listed = world.qp_json("agents")  # a real qp: it refuses any message over 64 KiB
    assert len(listed) == AGENTS + 1
    assert len({a["id"] for a in listed}) == AGENTS + 1
    names = [a["name"] for a in listed]
    assert names == sorted(names)  # by name, across every page

    items, sizes = asyncio.run(_raw_pages(world, "agent.list", limit=500))
    assert len(items) == AGENTS + 1
    assert max(sizes) < LIMIT * 0.8, max(sizes)
    assert len(sizes) > 20  # many pages, each cut to fit, not one huge reply


def test_qp_sessions_beyond_64_kib(site: Site) -> None:
    world = site.world
    shown = world.qp("sessions", "--json")
    recent = json.loads(shown.stdout)
    assert len(recent) == 200  # the default: the 200 most recent
    assert recent[0]["id"] == f"ses-bulk{SESSIONS - 1:04d}"
    assert "--all" in shown.stderr.decode()  # says there are more
    everything = world.qp_json("sessions", "--all")
    assert len(everything) == SESSIONS
    assert [s["id"] for s in everything] == [f"ses-bulk{i:04d}" for i in reversed(range(SESSIONS))]
    assert [s["id"] for s in world.qp_json("sessions", "--limit", "7")] == [
        s["id"] for s in everything[:7]
    ]
    _, sizes = asyncio.run(_raw_pages(world, "session.list", limit=500))
    assert max(sizes) < LIMIT * 0.8


def test_qp_queue_with_500_requests(site: Site) -> None:
    world = site.world
    queue = world.qp_json("queue", home="alice")
    assert len(queue) == REQUESTS
    urgent = [r["urgent"] for r in queue]
    assert urgent == sorted(urgent, reverse=True)  # urgent first, across pages
    assert len({r["number"] for r in queue}) == REQUESTS
    table = world.qp("queue", "--limit", "3", home="alice").stdout.decode()
    assert table.count("REQ-") == 3
    _, sizes = asyncio.run(_raw_pages(world, "request.queue"))
    assert max(sizes) < LIMIT * 0.8


def test_one_machine_cannot_flood_the_queue(site: Site) -> None:
    world, data = site.world, site.data

    def ask(text: str) -> Any:
        argv = [str(BIN / "qp-agent"), "help", text, "--data", str(data)]
        return world.run(argv, check=False)

    for n in range(PER_AGENT):
        assert ask(f"problem {n}").returncode == 0
    refused = ask("one more")
    assert refused.returncode != 0
    error = refused.stderr.decode().strip()
    assert len(error.splitlines()) == 1, error
    assert f"{PER_AGENT} open help requests" in error and "wait until one is resolved" in error

    db = sqlite3.connect(f"file:{world.relay_data / 'relay.db'}?mode=ro", uri=True)
    try:
        audited = db.execute(
            "SELECT COUNT(*) FROM audit WHERE event = 'help_request_refused'"
        ).fetchone()[0]
        texts = {row[0] for row in db.execute("SELECT text FROM help_requests")}
    finally:
        db.close()
    assert audited == 1
    assert "one more" not in texts
