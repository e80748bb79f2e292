"""Diagnostics and help requests end to end, with real relay, agent and consoles."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from harness import BIN, Proc, World, timeout


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Path, Proc]]:
    world = World(Path(tmp_path_factory.mktemp("help")))
    try:
        token = world.init_relay()
        world.start_relay(0)
        world.login(token)
        world.qp("customer", "add", "Bakkerij")
        world.technician("alice", "Bakkerij")
        _, data = world.enroll("Bakkerij", "kassa")
        agent = world.start_agent(data)
        yield world, data, agent
    finally:
        world.close()


def agent_cmd(world: World, data: Path, *args: str, check: bool = True) -> bytes:
    out = world.run([str(BIN / "qp-agent"), *args, "--data", str(data)], check=check)
    return out.stdout


def test_help_request_to_resolution(site: tuple[World, Path, Proc]) -> None:
    world, data, _ = site
    sent = json.loads(agent_cmd(world, data, "help", "printer offline", "--urgent", "--json"))
    label = sent["label"]
    queue = world.qp_json("queue", home="alice")
    (req,) = [r for r in queue if r["label"] == label]
    assert req["urgent"] and req["state"] == "open" and req["text"] == "printer offline"
    assert req["customer"] == "Bakkerij" and req["agent_name"] == "kassa"
    assert isinstance(req["findings"], list)  # the snapshot's findings ride along
    shown = world.qp_json("request", "show", label, home="alice")
    assert [s["kind"] for s in shown["snapshots"]] == ["help"]

    taken = world.qp_json("take", label, home="alice")
    assert (taken["state"], taken["assigned_to"]) == ("assigned", "alice")
    world.qp("exec", "kassa", "--request", label, "--", "lpstat", "-t", home="alice", check=False)

    sessions = [s for s in world.qp_json("sessions", home="alice") if s["request"] == label]
    assert len(sessions) == 1
    sid = sessions[0]["id"]
    (entry,) = [e for e in world.qp_json("time", home="alice") if sid in e["session_ids"]]
    assert entry["customer"] == "Bakkerij"
    # The relay asked for snapshots at the session's start and end: wait for both.
    kinds = _wait_for_kinds(world, label, {"session_start", "session_end"})
    assert {"help", "session_start", "session_end"} <= kinds
    assert world.qp_json("request", "show", label, home="alice")["state"] == "in_progress"

    closed = world.qp_json(
        "request", "close", label, "--resolution", "spooler restarted", home="alice"
    )
    assert closed["state"] == "resolved"
    status = json.loads(agent_cmd(world, data, "help", "--status", "--json"))
    (mine,) = [r for r in status if r["label"] == label]
    assert mine["state"] == "resolved" and mine["resolution"] == "spooler restarted"
    assert label not in {r["label"] for r in world.qp_json("queue", home="alice")}


def _wait_for_kinds(world: World, label: str, wanted: set[str]) -> set[str]:
    import time

    deadline = time.monotonic() + timeout(20)
    while True:
        shown = world.qp_json("request", "show", label, home="alice")
        ids = {s for s in shown["sessions"]}
        snaps = world.qp_json("diag", "kassa", "--list", home="alice")
        kinds = {s["kind"] for s in snaps if s["session_id"] in ids} | {
            s["kind"] for s in shown["snapshots"]
        }
        if wanted <= kinds or time.monotonic() > deadline:
            return kinds


def test_taking_twice_and_closing_unknown_requests_fail_cleanly(
    site: tuple[World, Path, Proc],
) -> None:
    world, data, _ = site
    label = json.loads(agent_cmd(world, data, "help", "mail stuck", "--json"))["label"]
    world.qp("take", label, home="alice")
    world.qp("request", "close", label, "--resolution", "done", home="alice")
    again = world.qp("take", label, home="alice", check=False)
    assert again.returncode == 1
    assert again.stderr.decode().strip() == "qp: the request is resolved; cannot take it"
    unknown = world.qp("take", "REQ-99999", home="alice", check=False)
    assert unknown.stderr.decode().strip() == "qp: no request REQ-99999 that you can see"


def test_diff_shows_a_new_listening_port(site: tuple[World, Path, Proc]) -> None:
    world, _, _ = site
    world.qp("diag", "kassa", "--refresh", "--json", home="alice")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    ballast = world.root / "ballast.bin"  # on /, like the data the agent measures
    with ballast.open("wb") as f:
        f.write(os.urandom(16 * 1024 * 1024))
        f.flush()
        os.fsync(f.fileno())
    try:
        world.qp("diag", "kassa", "--refresh", "--json", home="alice")
    finally:
        listener.close()
        ballast.unlink()
    changes = world.qp_json("diag", "kassa", "--diff", home="alice")["changes"]
    added = [entry["port"] for entry in changes["listeners_added"]]
    assert port in added
    root = [d for d in changes["disks"] if d["mountpoint"] == "/"]
    assert root and root[0]["new_used_bytes"] > root[0]["old_used_bytes"]
    table = world.qp("diag", "kassa", "--diff", home="alice").stdout.decode()
    assert str(port) in table


def test_oversize_and_malformed_snapshots_are_refused(site: tuple[World, Path, Proc]) -> None:
    """A hostile agent's snapshot never reaches the store and the relay carries on."""
    world, data, agent = site
    config = json.loads((data / "agent.json").read_text())
    since = len(world.relay.lines["stderr"]) if world.relay else 0

    async def send_bad() -> None:
        from agent.files import AgentFiles, Identity
        from shared.keys import sign_challenge
        from shared.protocol.messages import RELAY_TO_AGENT, Message, decode, encode

        ident = Identity.load(AgentFiles(data))
        url = f"{config['relay_url']}/v1/agent"
        async with connect(url, subprotocols=["qp.v1"], compression=None) as ws:  # type: ignore[list-item]
            ch = decode(await ws.recv(), RELAY_TO_AGENT)
            sig = sign_challenge(ident.identity_key, ch.body["nonce"], ch.body["relay_id"])
            await ws.send(encode(Message("auth", {"agent_id": ident.agent_id, "signature": sig})))
            decode(await ws.recv(), RELAY_TO_AGENT)
            bad = {"taken_at": "not a time", "findings": [{"severity": "<script>"}]}
            await ws.send(encode(Message("diag_snapshot", {"ref": "x", "snapshot": bad})))
            huge = {"taken_at": "2026-01-01T00:00:00Z", "system": {"x": "a" * 500_000}}
            await ws.send(encode(Message("diag_snapshot", {"ref": "y", "snapshot": huge})))
            await ws.wait_closed()
            assert ws.close_code == 1009  # the oversize message closed the link

    before = len(world.qp_json("diag", "kassa", "--list", home="alice"))
    asyncio.run(send_bad())
    assert len(world.qp_json("diag", "kassa", "--list", home="alice")) == before
    assert world.relay is not None
    log = "\n".join(world.relay.lines["stderr"][since:])
    assert "snapshot from" in log and "refused" in log and "Traceback" not in log
    # The real agent (its link was replaced by ours, then comes back) keeps working.
    agent.wait_line(r"connected to relay as", start=agent.count() - 1)
    out = world.qp("exec", "kassa", "--", "echo", "still fine", home="alice")
    assert out.stdout == b"still fine\n"


def test_diag_takes_a_fresh_snapshot_when_none_is_stored(
    site: tuple[World, Path, Proc],
) -> None:
    world, _, _ = site
    _, data = world.enroll("Bakkerij", "balie")
    world.start_agent(data)
    shown = world.qp_json("diag", "balie", home="alice")
    assert shown["agent_name"] == "balie" and shown["snapshot"]
    assert [s["id"] for s in world.qp_json("diag", "balie", "--list", home="alice")] == [
        shown["id"]
    ]
    world.enroll("Bakkerij", "magazijn")  # enrolled, never started: offline
    refused = world.qp("diag", "magazijn", home="alice", check=False)
    assert refused.returncode == 1
    assert refused.stderr.decode().strip() == (
        "qp: no diagnostics yet for this agent, and it is offline"
    )
